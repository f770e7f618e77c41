"""``nllkit bench``: the quick run as a smoke test, and the harness's parts.

The quick run happens once per module (about half a minute); its JSON is
checked for structure and for ratios that are positive finite numbers.
Assertions about PyTorch, JAX, bfloat16 and plotting are skipped when those
are not installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nllkit
from nllkit.bench._cases import Case
from nllkit.bench._harness import Progress, Settings, run_case
from nllkit.bench._memory import PeakMemory, probe
from nllkit.cli import main

ROOT = Path(__file__).resolve().parent.parent
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_JAX = importlib.util.find_spec("jax") is not None
HAS_ML_DTYPES = importlib.util.find_spec("ml_dtypes") is not None
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

RESULT_KEYS = {
    "case",
    "loss",
    "mode",
    "shape",
    "dtype",
    "implementation",
    "median_ms",
    "iqr_ms",
    "min_ms",
    "times_ms",
    "ratio_to_nllkit",
    "limit",
    "ratio_to_limit",
    "peak_extra_mib",
}


def positive_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def invoke(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One ``nllkit bench --quick --json FILE`` (with ``--plot`` when matplotlib is installed)."""
    folder = tmp_path_factory.mktemp("bench")
    json_path, png_path = folder / "bench.json", folder / "bench.png"
    argv = ["bench", "--quick", "--json", str(json_path)]
    if HAS_MATPLOTLIB:
        argv += ["--plot", str(png_path)]
    torch_threads = None
    if HAS_TORCH:
        import torch

        torch_threads = torch.get_num_threads()
    code, out, err = invoke(*argv)
    after = None
    if HAS_TORCH:
        import torch

        after = torch.get_num_threads()
    yield {
        "code": code,
        "out": out,
        "err": err,
        "data": json.loads(json_path.read_text()) if json_path.exists() else None,
        "png": png_path,
        "torch_threads": (torch_threads, after),
    }


def by_case(data: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    cases: dict[str, dict[str, dict[str, Any]]] = {}
    for r in data["results"]:
        cases.setdefault(r["case"], {})[r["implementation"]] = r
    return cases


def test_quick_run_succeeds_and_prints_a_table(quick: dict[str, Any]) -> None:
    assert quick["code"] == 0, quick["err"]
    assert "Traceback" not in quick["err"]
    header = next(line for line in quick["out"].splitlines() if line.startswith("case"))
    for column in ("implementation", "median ms", "IQR ms", "x nllkit", "x limit", "peak MiB"):
        assert column in header
    assert "cross_entropy fwd+bwd 512x32000 float32" in quick["out"]
    # Progress goes to stderr as plain lines (not a terminal here).
    assert "\r" not in quick["err"]
    assert "bench [1/" in quick["err"]


def test_json_structure(quick: dict[str, Any]) -> None:
    data = quick["data"]
    assert data is not None
    assert data["schema"] == "nllkit-bench/1"
    env = data["environment"]
    for key in ("date", "python", "platform", "cpu", "logical_cpus", "versions", "threads", "memory_method"):
        assert key in env, key
    assert env["versions"]["nllkit"] == nllkit.__version__
    assert env["versions"]["numpy"] == np.__version__
    assert env["threads"]["requested"] == 2
    assert data["settings"]["quick"] is True
    assert data["settings"]["threads"] == 2
    assert data["results"], "no results"
    for r in data["results"]:
        assert set(r) == RESULT_KEYS, r["case"]
        assert r["mode"] in ("fwd", "fwd+bwd")
        assert r["limit"] == ("read" if r["mode"] == "fwd" else "copy")
        assert len(r["times_ms"]) >= data["settings"]["min_repetitions"]
        assert all(positive_finite(t) for t in r["times_ms"])
        for key in ("median_ms", "min_ms"):
            assert positive_finite(r[key]), (r["case"], r["implementation"], key)
        assert r["iqr_ms"] >= 0
        assert r["peak_extra_mib"] is None or r["peak_extra_mib"] >= 0
    for s in data["skipped"]:
        assert set(s) == {"case", "implementation", "reason"} and s["reason"]


def test_every_ratio_is_positive_and_finite(quick: dict[str, Any]) -> None:
    data = quick["data"]
    bad = [
        (r["case"], r["implementation"], key, r[key])
        for r in data["results"]
        for key in ("ratio_to_nllkit", "ratio_to_limit")
        if not positive_finite(r[key])
    ]
    assert not bad, f"ratios that are not positive finite numbers: {bad}; skipped: {data['skipped']}"


def test_every_case_has_nllkit_and_its_limit(quick: dict[str, Any]) -> None:
    cases = by_case(quick["data"])
    expected = {
        "cross_entropy fwd 512x32000 float32",
        "cross_entropy fwd+bwd 512x32000 float32",
        "cross_entropy fwd 8192x10 float32",
        "cross_entropy fwd+bwd 8192x10 float32",
        "poisson_nll_loss fwd+bwd 1M float32",
        "gaussian_nll_loss fwd+bwd 1M float32",
    }
    if HAS_ML_DTYPES:
        expected |= {"cross_entropy fwd 512x32000 bfloat16", "cross_entropy fwd+bwd 8192x10 bfloat16"}
    assert expected <= set(cases)
    for name, rows in cases.items():
        assert "nllkit" in rows, name
        limit = "read" if " fwd " in name else "copy"
        assert limit in rows, name
        assert rows["nllkit"]["ratio_to_nllkit"] == 1.0
        assert rows[limit]["ratio_to_limit"] == 1.0
        if name.startswith("cross_entropy"):
            assert "numpy naive" in rows, name


def test_in_place_variant_measured_when_present(quick: dict[str, Any]) -> None:
    data = quick["data"]
    cases = by_case(data)
    fwd_bwd = [name for name in cases if name.startswith("cross_entropy fwd+bwd")]
    if hasattr(nllkit, "cross_entropy_with_grad"):
        for name in fwd_bwd:
            assert "nllkit in-place" in cases[name], name
    else:
        skipped = {(s["case"], s["implementation"]) for s in data["skipped"]}
        for name in fwd_bwd:
            assert (name, "nllkit in-place") in skipped


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_torch_in_every_case_and_threads_restored(quick: dict[str, Any]) -> None:
    for name, rows in by_case(quick["data"]).items():
        assert "torch" in rows, name
    assert quick["data"]["environment"]["threads"]["torch"] == "torch.set_num_threads(2)"
    before, after = quick["torch_threads"]
    assert before == after


@pytest.mark.skipif(not HAS_JAX, reason="jax is not installed")
def test_jax_in_every_cross_entropy_case(quick: dict[str, Any]) -> None:
    for name, rows in by_case(quick["data"]).items():
        if name.startswith("cross_entropy"):
            assert "jax jit" in rows, name
    # The test session imported JAX first, so XLA_FLAGS could not be set, and the report says so.
    assert "xla" in quick["data"]["environment"]["threads"]


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_plot_written(quick: dict[str, Any]) -> None:
    assert quick["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- errors: one line, exit 2, before any measuring ------------------------------------


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("nllkit bench"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_plot_without_matplotlib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code, out, err = invoke("bench", "--quick", "--plot", str(tmp_path / "p.png"))
    assert_one_line_error(code, out, err, "pip install 'nllkit[plot]'")


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_plot_bad_extension(tmp_path: Path) -> None:
    code, out, err = invoke("bench", "--quick", "--plot", str(tmp_path / "p.nope"))
    assert_one_line_error(code, out, err, "extension")


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_bad_threads(value: str) -> None:
    code, out, err = invoke("bench", "--threads", value)
    assert_one_line_error(code, out, err, "--threads", "positive integer")


def test_json_in_missing_folder(tmp_path: Path) -> None:
    code, out, err = invoke("bench", "--quick", "--json", str(tmp_path / "no" / "such" / "b.json"))
    assert_one_line_error(code, out, err, "--json", "does not exist")


# --- the harness's parts ---------------------------------------------------------------


def test_run_case_interleaves_round_robin_and_prepares_outside_the_clock() -> None:
    log: list[str] = []

    def logger(entry: str) -> Callable[[], None]:
        return lambda: log.append(entry)

    case = Case("toy", "fwd+bwd", (3,), "float32", limit="copy")
    for name in ("nllkit", "peer", "copy"):
        case.add(name, logger(name), prepare=logger("prep " + name))
    settings = Settings(warmup=1, min_repetitions=4, max_repetitions=4, target_seconds=0.0)
    results, skipped = run_case(case, settings, memory=None)
    assert not skipped
    calls = [entry for entry in log if not entry.startswith("prep ")]
    # Every call is directly preceded by its own preparation.
    for i, entry in enumerate(log):
        if not entry.startswith("prep "):
            assert log[i - 1] == "prep " + entry
    warmup, rounds = calls[:3], calls[3:]
    assert warmup == ["nllkit", "peer", "copy"]
    assert len(rounds) == 12
    assert [rounds[3 * k : 3 * k + 3] for k in range(4)] == [
        ["nllkit", "peer", "copy"],
        ["peer", "copy", "nllkit"],
        ["copy", "nllkit", "peer"],
        ["nllkit", "peer", "copy"],
    ]
    rows = {r.implementation: r for r in results}
    assert [r.implementation for r in results] == ["nllkit", "peer", "copy"]
    assert rows["nllkit"].ratio_to_nllkit == 1.0 and rows["copy"].ratio_to_limit == 1.0
    assert all(len(r.times_ms) == 4 and r.peak_extra_mib is None for r in results)


def test_run_case_reports_a_failing_implementation_and_goes_on() -> None:
    def broken() -> None:
        raise RuntimeError("no kernel for this dtype\nsecond line")

    case = Case("toy", "fwd", (3,), "float32", limit="read")
    case.add("nllkit", lambda: None)
    case.add("peer", broken)
    case.add("read", lambda: None)
    case.skip("absent", "not installed")
    settings = Settings(warmup=1, min_repetitions=3, max_repetitions=3, target_seconds=0.0)
    results, skipped = run_case(case, settings, memory=probe())
    assert [r.implementation for r in results] == ["nllkit", "read"]
    reasons = {s.implementation: s.reason for s in skipped}
    assert reasons["absent"] == "not installed"
    assert reasons["peer"] == "RuntimeError: no kernel for this dtype second line"


@pytest.mark.parametrize("method", ["rss", "tracemalloc"])
def test_peak_memory_sees_a_temporary(method: str) -> None:
    if method == "rss" and probe().method != "rss":
        pytest.skip("no /proc/self/clear_refs here")
    memory = PeakMemory(method)

    def temporary() -> float:
        a = np.ones(64 * 2**20 // 8)  # 64 MiB, freed before returning
        return float(a[0])

    assert 60 <= memory.measure(temporary) <= 80
    assert memory.measure(lambda: None) < 4


def test_progress_plain_lines_off_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    progress.step("case 1")
    progress.detail("repetition 1/5")
    progress.close()
    assert stream.getvalue() == "case 1\n"


def test_progress_rewrites_one_line_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = Progress(stream)
    progress.step("case 1: a long status")
    progress.detail("short")
    progress.close()
    text = stream.getvalue()
    assert "\n" not in text
    assert text.startswith("\rcase 1: a long status\rshort")
    assert text.endswith("\r")


def test_benchmarks_script_is_the_command() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "nllkit bench" in done.stdout and "--quick" in done.stdout


def _side_table(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["bench", *args, "--quick"]) == 0
    return capsys.readouterr().out.splitlines()


def test_linear_quick_times_both_and_measures_less_working_memory(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    lines = _side_table(capsys, "--linear")
    rows = [line.split() for line in lines[1:] if line.startswith(("float32", "bfloat16"))]
    assert [r[0] for r in rows] == ["float32", "float32", "bfloat16", "bfloat16"]
    assert [r[4] for r in rows] == ["torch", "nllkit.torch"] * 2  # 'torch naive' is two words
    nllkit_rows = [r for r in rows if "nllkit.torch" in r]
    for row in nllkit_rows:
        seconds, working_ratio = float(row[5]), float(row[-1])
        assert seconds > 0 and 0 <= working_ratio < 1  # never the N x V logits


def test_fit_quick_lists_every_family(capsys: pytest.CaptureFixture[str]) -> None:
    from nllkit.distributions import FAMILY_NAMES

    lines = _side_table(capsys, "--fit", "--n", "2000")
    assert sorted(line.split()[0] for line in lines[1 : 1 + len(FAMILY_NAMES)]) == sorted(FAMILY_NAMES)
    assert all(" ok " in line for line in lines[1 : 1 + len(FAMILY_NAMES)])


def test_side_benchmarks_refuse_json_and_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--fit", "--json", "x.json"]) == 2
    assert main(["bench", "--fit", "--linear"]) == 2
    err = capsys.readouterr().err
    assert "--json and --plot are for the loss benchmark, not --fit" in err
    assert "--fit and --linear are separate benchmarks" in err
