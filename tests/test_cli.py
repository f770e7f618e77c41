"""The ``nllkit`` command: ``nllkit explain`` and its error handling.

The numbers printed are checked against nllkit itself on the same data; the
PyTorch and NumPy code the command prints is run here (PyTorch only if it is
installed) and must give the same value.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nllkit
from nllkit.cli import _explain, main
from nllkit.cli._explain import DEFAULT_INPUT, DEFAULT_TARGET, explain

# The tutorial example: torch 2.13 float32 gives 1.4124741554260254; float64
# (what the command computes) 1.4124740939099016.
TUTORIAL_F32 = 1.4124741554260254
TUTORIAL_F64 = 1.4124740939099016


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def result_line(text: str, call: str) -> Any:
    """The value printed after ``call(...) =`` as a float or a list of floats."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(call + "("):
            value = line.split(" = ", 1)[1]
            return json.loads(value.replace("nan", "NaN").replace("inf", "Infinity"))
    raise AssertionError(f"no line starting with {call}( in the output")


def code_block(text: str, title: str) -> list[str]:
    """The code lines printed under ``title`` in step 7."""
    lines = text.splitlines()
    start = lines.index(f"   {title}:") + 2
    block = []
    for line in lines[start:]:
        if not line.startswith("      "):
            break
        block.append(line[6:])
    return block


def run_code(block: list[str]) -> Any:
    """Execute all lines but the last and return the value of the last."""
    namespace: dict[str, Any] = {}
    exec("\n".join(block[:-1]), namespace)
    return eval(block[-1], namespace)


# --- the default example -------------------------------------------------------------


def test_default_example_prints_the_tutorial_value(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "explain")
    assert code == 0
    assert err == ""
    assert "1.41247" in out
    nll = result_line(out, "nllkit.nll_loss")
    ce = result_line(out, "nllkit.cross_entropy")
    assert nll == ce == pytest.approx(TUTORIAL_F64, rel=1e-15)
    assert "They agree (identical)" in out
    assert repr(TUTORIAL_F32) in out
    for step in range(1, 8):
        assert f"\n{step}. " in out


def test_default_example_shows_the_intermediate_steps(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "explain")
    # log_softmax of row 0 and each row's logsumexp (torch-semantics.md, section 0).
    assert "-0.925487" in out
    assert "0.930887" in out
    # The picked entries are marked: row 0 class 0, row 1 class 2, row 2 class 3.
    assert "[-0.925487]" in out
    assert "[-1.15606]" in out
    assert "[-2.15587]" in out
    assert "mean         = 4.23742 / 3 = 1.41247" in out


def test_explain_function_matches_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "explain")
    assert explain() == out
    explicit = explain(DEFAULT_INPUT, DEFAULT_TARGET)
    assert result_line(explicit, "nllkit.cross_entropy") == result_line(out, "nllkit.cross_entropy")
    assert code_block(explicit, "PyTorch") == code_block(out, "PyTorch")
    assert code_block(explicit, "NumPy") == code_block(out, "NumPy")


# --- custom data -----------------------------------------------------------------------

X = [[1.5, -0.3, 0.2, 2.0], [0.1, 0.0, -1.2, 0.7], [-2.0, 3.1, 0.4, 0.4], [0.9, 0.8, 0.7, -0.6]]
W = [0.5, 2.0, 1.0, 1.5]

CASES = [
    # input, target, weight, ignore_index, reduction, label_smoothing
    (X, [3, 0, 1, 2], None, -100, "mean", 0.0),
    (X, [3, 0, 1, 2], W, -100, "mean", 0.0),
    (X, [3, 0, 1, 2], W, -100, "sum", 0.0),
    (X, [3, 0, 1, 2], None, -100, "none", 0.0),
    (X, [3, -100, 1, 2], W, -100, "mean", 0.0),
    (X, [3, -1, 1, -1], None, -1, "none", 0.0),
    (X, [3, 0, 1, 2], None, 1, "mean", 0.0),
    (X, [3, 0, 1, 2], None, -100, "mean", 0.2),
    (X, [3, 0, 1, 2], W, -100, "mean", 0.1),
    (X, [3, -100, 1, 2], W, -100, "sum", 0.3),
    (X, [3, -100, 1, 2], W, -100, "none", 0.3),
    (X, [3, -100, 1, 2], None, -100, "mean", 1.0),
    (X[0], 2, None, -100, "mean", 0.0),
    (X[0], 2, W, -100, "none", 0.25),
    (X[0], 2, None, 2, "mean", 0.0),  # the only sample is ignored: nan
    ([[1e4, 0.0, -1e4]], [2], None, -100, "mean", 0.0),
]


def argv_of(case: tuple[Any, ...]) -> list[str]:
    x, y, w, ignore_index, reduction, eps = case
    argv = ["explain", "--input", json.dumps(x), "--target", json.dumps(y)]
    if w is not None:
        argv += ["--weight", json.dumps(w)]
    return argv + [f"--ignore-index={ignore_index}", "--reduction", reduction, "--label-smoothing", str(eps)]


def expected_of(case: tuple[Any, ...]) -> Any:
    x, y, w, ignore_index, reduction, eps = case
    with np.errstate(invalid="ignore"):  # an all-ignored 'mean' is 0 / 0
        return nllkit.cross_entropy(
            np.asarray(x, dtype=np.float64),
            np.asarray(y),
            None if w is None else np.asarray(w, dtype=np.float64),
            ignore_index,
            reduction,
            eps,
        )


@pytest.mark.parametrize("case", CASES)
def test_custom_data_prints_nllkits_cross_entropy(
    case: tuple[Any, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv_of(case))
    assert (code, err) == (0, "")
    printed = np.asarray(result_line(out, "nllkit.cross_entropy"), dtype=np.float64)
    np.testing.assert_array_equal(printed, np.asarray(expected_of(case)))


@pytest.mark.parametrize("case", CASES)
def test_identity_lines_agree(case: tuple[Any, ...], capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, *argv_of(case))
    ce = np.asarray(result_line(out, "nllkit.cross_entropy"), dtype=np.float64)
    nll = np.asarray(result_line(out, "nllkit.nll_loss"), dtype=np.float64)
    if case[-1] == 0:
        np.testing.assert_array_equal(nll, ce)
        assert "They agree (identical)" in out
    else:
        assert "These differ: label smoothing" in out
        assert "which agrees with cross_entropy" in out


@pytest.mark.parametrize("case", CASES)
def test_printed_numpy_code_gives_the_same_value(
    case: tuple[Any, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, *argv_of(case))
    with np.errstate(all="ignore"):
        value = run_code(code_block(out, "NumPy"))
    np.testing.assert_allclose(np.asarray(value), np.asarray(expected_of(case)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_printed_pytorch_code_gives_the_same_value(
    case: tuple[Any, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    _, out, _ = run(capsys, *argv_of(case))
    value = run_code(code_block(out, "PyTorch"))
    np.testing.assert_allclose(value.numpy(), np.asarray(expected_of(case)), rtol=1e-12, atol=1e-12)


def test_ignored_rows_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "explain", "--target", "[0, -100, 3]")
    assert "Row 1 is ignored because y == ignore_index (-100)" in out
    _, out, _ = run(capsys, "explain", "--target", "[1, 1, 3]", "--ignore-index", "1")
    assert "Rows 0, 1 are ignored" in out
    assert "ignore_index=1 is also a real class" in out


def test_all_rows_ignored_gives_nan(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "explain", "--target", "[-100, -100, -100]")
    assert (code, err) == (0, "")
    assert "Every row is ignored: the mean is 0 / 0 = nan" in out
    assert np.isnan(result_line(out, "nllkit.cross_entropy"))


def test_non_finite_logits_are_written_as_python_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "explain", "--input", "[[0, -Infinity, 1], [NaN, 1, 2]]", "--target", "[2, -100]"
    )
    assert code == 0
    assert "float('-inf')" in out
    assert "float('nan')" in out
    value = run_code(code_block(out, "NumPy"))
    assert value == pytest.approx(float(result_line(out, "nllkit.cross_entropy")), rel=1e-12)


# --- errors --------------------------------------------------------------------------------

ERRORS = [
    (["explain", "--input", "[[1, 2]", "--target", "[0]"], "--input must be valid JSON"),
    (["explain", "--input", "[[1, 2]]", "--target", "[0"], "--target must be valid JSON"),
    (["explain", "--weight", "[1, x]"], "--weight must be valid JSON"),
    (["explain", "--input", "[[1, 2], [3]]", "--target", "[0, 1]"], "rows of equal length"),
    (["explain", "--input", '[[1, "a"]]', "--target", "[0]"], 'got "a" at position (0, 1)'),
    (["explain", "--input", "[[1, true]]", "--target", "[0]"], "got true at position (0, 1)"),
    (["explain", "--input", "[1, [2]]", "--target", "0"], "not a mix of numbers and lists"),
    (["explain", "--input", "[[[1]]]", "--target", "[0]"], "more than 2 levels of lists"),
    (["explain", "--input", "5", "--target", "0"], "--input must be a non-empty list"),
    (["explain", "--input", "[]", "--target", "0"], "--input must be a non-empty list"),
    (["explain", "--input", "[[1, 2]]"], "--target is required when --input is given"),
    (["explain", "--target", "[0, 2]"], "--target must be a list of 3 class indices, one per row"),
    (["explain", "--target", "1"], "--target must be a list of 3 class indices"),
    (["explain", "--input", "[1, 2]", "--target", "[0, 1]"], "--target must be a single class index"),
    (["explain", "--target", "[0, 2.0, 3]"], "--target must hold integer class indices; got 2.0"),
    (["explain", "--target", "[0, 99999999999999999999, 3]"], "int64 range"),
    (["explain", "--target", "[0, 4, 3]"], "cross_entropy: target must be a class index in [0, 4)"),
    (["explain", "--target", "[0, -1, 3]"], "got -1 at position (1,)"),
    (["explain", "--weight", "[1, 2]"], "--weight must be a list of 4 numbers, one per class"),
    (["explain", "--label-smoothing", "1.5"], "--label-smoothing must be between 0 and 1; got 1.5"),
    (["explain", "--label-smoothing", "-0.1"], "--label-smoothing must be between 0 and 1"),
    (["explain", "--label-smoothing", "nan"], "--label-smoothing must be between 0 and 1"),
    (["explain", "--label-smoothing", "abc"], "invalid float value"),
    (["explain", "--reduction", "avg"], "invalid choice: 'avg'"),
    (["explain", "--ignore-index", "1.5"], "invalid int value"),
    (["explain", "--ignore-index", "99999999999999999999"], "int64 range"),
    (["explain", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "required: COMMAND"),
]


@pytest.mark.parametrize(("argv", "message"), ERRORS)
def test_errors_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("nllkit")
    assert message in err
    assert "Traceback" not in err


def test_data_errors_name_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run(capsys, "explain", "--target", "[0, 4, 3]")
    assert err.startswith("nllkit explain: cross_entropy: ")


def test_internal_error_is_one_line_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(_explain, "explain", broken)
    code, _, err = run(capsys, "explain")
    assert code == 1
    assert err == "nllkit explain: internal error: RuntimeError: boom second line (please report this)\n"


@pytest.mark.parametrize("argv", [["--help"], ["explain", "--help"], ["--version"]])
def test_help_exits_0(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 0
    assert err == ""
    assert "explain" in out or "nllkit 0." in out


def test_explain_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "explain", "--help")
    for option in ("--input", "--target", "--weight", "--ignore-index", "--reduction", "--label-smoothing"):
        assert option in out


# --- as a program ----------------------------------------------------------------------------


def _run_process(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_python_dash_m_nllkit() -> None:
    proc = _run_process(sys.executable, "-m", "nllkit", "explain")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert result_line(proc.stdout, "nllkit.cross_entropy") == pytest.approx(TUTORIAL_F64, rel=1e-15)


def test_python_dash_m_nllkit_error_has_no_traceback() -> None:
    proc = _run_process(sys.executable, "-m", "nllkit", "explain", "--target", "[0, 9, 3]")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_installed_console_script() -> None:
    script = Path(sys.executable).with_name("nllkit")
    if not script.exists():
        pytest.skip("the nllkit console script is not installed next to this Python")
    proc = _run_process(str(script), "explain", "--reduction", "sum")
    assert proc.returncode == 0, proc.stderr
    assert "Reduction 'sum'" in proc.stdout
    proc = _run_process(str(script), "explain", "--reduction", "avg")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1


def test_the_cli_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys, nllkit.cli, nllkit.cli._explain; "
        "from nllkit.cli import main; main(['explain']); "
        "heavy = [m for m in ('torch', 'jax', 'matplotlib') if m in sys.modules]; "
        "print('HEAVY', heavy, file=sys.stderr); sys.exit(1 if heavy else 0)"
    )
    proc = _run_process(sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
