"""``nllkit fit``: the output against the library's results, every error path, plots and progress.

The JSON output must be the library's own ``to_dict()`` records (NaN and
infinities as null); the tables must hold the library's numbers; every bad
input must exit with code 2 and print one line on stderr, never a traceback.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from nllkit import datasets
from nllkit.cli import _fit, main
from nllkit.distributions._registry import AUTO_FAMILIES, FAMILY_NAMES
from nllkit.fitting import Censored, compare, fit
from nllkit.fitting import _fit as fitting_module
from nllkit.fitting._compare import Comparison


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["fit", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run(capsys, *argv, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def strict(value: Any) -> Any:
    """A library record as strict JSON reads it back: NaN and infinities are null, tuples lists."""
    return json.loads(json.dumps(_nulls(value), allow_nan=False))


def _nulls(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _nulls(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nulls(item) for item in value]
    return value


def error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one-line message of a run that must fail with exit code 2."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("nllkit fit: ")
    return lines[0].removeprefix("nllkit fit: ")


@pytest.fixture
def csv(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str, name: str = "data.csv") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


@pytest.fixture(scope="module")
def kicks() -> datasets.Dataset:
    return datasets.load("horse-kicks")


# --- the default run and the tables ----------------------------------------------------------------


def test_no_argument_fits_the_default_dataset_with_its_family(capsys, kicks) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys)
    assert code == 0 and err == ""
    expected = fit(kicks.values, "poisson", weights=kicks.weights)
    lines = out.splitlines()
    assert lines[0].startswith(f"data: {datasets.DEFAULT}, an embedded dataset: {kicks.title} (200 observations)")
    assert lines[1] == f"source: {kicks.reference}, {kicks.url} (nllkit datasets {datasets.DEFAULT})"
    assert expected.summary() in out
    # The numbers themselves: Bortkiewicz's 122 deaths in 200 corps-years.
    assert expected.params["rate"] == 0.61
    assert "rate           0.61" in out and f"loglik {expected.loglik:.6g}" in out


def test_a_single_family_prints_the_summary_with_the_chosen_intervals(capsys) -> None:  # type: ignore[no-untyped-def]
    flow = datasets.load("fatigue-life")
    code, out, _ = run(capsys, "--dataset", "fatigue-life", "--family", "gamma", "--ci", "profile", "--level", "0.9")
    assert code == 0
    expected = fit(flow.values, "gamma")
    assert expected.summary(0.9, "profile") in out
    assert "90% CI (profile)" in out


def test_auto_prints_the_comparison_of_the_datasets_support(capsys) -> None:  # type: ignore[no-untyped-def]
    life = datasets.load("fatigue-life")
    code, out, _ = run(capsys, "--dataset", "fatigue-life", "--family", "auto")
    assert code == 0
    # Integer-valued kilocycles: the dataset's documented support (positive), not counts.
    expected = compare(life.values, AUTO_FAMILIES["positive"])
    assert str(expected) in out
    assert f"best by AIC: {expected.best.family.name}" in out


def test_a_file_defaults_to_auto(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(4).gamma(3.0, 2.0, size=60)
    path = csv("x\n" + "\n".join(repr(float(v)) for v in x) + "\n")
    code, out, _ = run(capsys, path)
    assert code == 0
    assert out.splitlines()[0] == "data: data.csv, column 'x' (60 values)"
    assert str(compare(x)) in out


# --- JSON against the library ---------------------------------------------------------------------


def test_json_of_a_single_fit_is_the_library_record(capsys, kicks) -> None:  # type: ignore[no-untyped-def]
    document = run_json(capsys)
    expected = fit(kicks.values, "poisson", weights=kicks.weights)
    assert document["fit"] == strict(expected.to_dict())
    assert document["ci"] == {"method": "wald", "level": 0.95, "intervals": strict(expected.ci())}
    assert document["data"]["dataset"] == datasets.DEFAULT and document["data"]["reference"] == kicks.reference
    assert document["gof"] is None and document["plot"] is None


def test_json_of_a_file_with_weights_and_fixed(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    path = csv("id,value,w\na,1.5,1\nb,2.25,3\nc,0.5,2\nd,4.0,1\n")
    document = run_json(capsys, path, "--column", "value", "--weights", "w", "--family", "normal", "--fixed", "loc=2")
    x, w = np.array([1.5, 2.25, 0.5, 4.0]), np.array([1.0, 3.0, 2.0, 1.0])
    expected = fit(x, "normal", weights=w, fixed={"loc": 2.0})
    assert document["fit"] == strict(expected.to_dict())
    assert document["fit"]["fixed"] == ["loc"]
    # The weighted MLE of the scale about a held mean, by hand.
    assert document["fit"]["params"]["scale"] == pytest.approx(math.sqrt(np.sum(w * (x - 2.0) ** 2) / w.sum()))
    assert document["data"] == {"file": "data.csv", "column": "'value'", "weights": "w", "values": 4}


def test_json_is_strict_nan_becomes_null(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, csv("x\n1\n1\n1\n"), "--family", "normal", "--format", "json")
    assert code == 0
    document = json.loads(out, parse_constant=lambda constant: pytest.fail(f"not strict JSON: {constant}"))
    with pytest.warns(Warning):
        expected = fit(np.ones(3), "normal")
    assert document["fit"] == strict(expected.to_dict())
    assert document["fit"]["se"] == {"loc": None, "scale": None} and document["fit"]["loglik"] is None
    # The library's HessianWarning is one line on stderr.
    assert err.count("\n") == 1 and err.startswith("nllkit fit: warning: normal: ")


def test_json_of_auto_is_the_comparison_record(capsys, kicks) -> None:  # type: ignore[no-untyped-def]
    document = run_json(capsys, "--family", "auto")
    expected = compare(kicks.values, AUTO_FAMILIES["counts"], weights=kicks.weights)
    assert document["comparison"] == strict(expected.to_dict())
    assert document["best"] == "poisson"
    assert document["comparison"]["rows"][0]["family"] == "poisson"


# --- bootstrap and goodness of fit ----------------------------------------------------------------


def test_bootstrap_is_reproducible_with_a_seed_and_equals_the_library(capsys, kicks) -> None:  # type: ignore[no-untyped-def]
    argv = ("--ci", "bootstrap", "--n-boot", "40", "--seed", "7")
    first, second = run_json(capsys, *argv), run_json(capsys, *argv)
    assert first == second
    expected = fit(kicks.values, "poisson", weights=kicks.weights)
    assert first["ci"]["intervals"] == strict(expected.ci(0.95, "bootstrap", n_boot=40, seed=7))
    boot = expected.bootstrap(40, seed=7)
    assert first["bootstrap"]["ci"] == strict(boot.to_dict()["ci"])
    assert first["bootstrap"]["seed"] == 7 and first["bootstrap"]["n_boot"] == 40
    # The mean of a Poisson law is its rate: the same interval.
    assert first["bootstrap"]["mean"] == pytest.approx(first["ci"]["intervals"]["rate"], rel=1e-12)
    other = run_json(capsys, "--ci", "bootstrap", "--n-boot", "40", "--seed", "8")
    assert other["ci"] != first["ci"]


def test_bootstrap_without_a_seed_reports_the_one_it_drew(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "--ci", "bootstrap", "--n-boot", "20", "--boot-kind", "nonparametric")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("nonparametric bootstrap: 20 refits"))
    seed = int(line.split("seed ")[1].split(";")[0])
    again = run_json(capsys, "--ci", "bootstrap", "--n-boot", "20", "--boot-kind", "nonparametric", "--seed", str(seed))
    low, high = again["ci"]["intervals"]["rate"]
    assert f"[{low:.6g}, {high:.6g}]" in out


def test_gof_equals_the_library_and_is_seeded(capsys, kicks) -> None:  # type: ignore[no-untyped-def]
    document = run_json(capsys, "--gof", "--n-boot", "30", "--seed", "3")
    expected = fit(kicks.values, "poisson", weights=kicks.weights).gof(30, seed=3)
    assert document["gof"] == strict(expected.to_dict())
    code, out, _ = run(capsys, "--gof", "--n-boot", "30", "--seed", "3")
    assert code == 0 and str(expected) in out


def test_gof_of_auto_is_a_table_of_p_values(capsys) -> None:  # type: ignore[no-untyped-def]
    heat = datasets.load("heat-flow-meter")
    argv = ("--dataset", "heat-flow-meter", "--family", "auto", "--gof", "--n-boot", "10", "--seed", "1")
    document = run_json(capsys, *argv)
    comparison = compare(heat.values, AUTO_FAMILIES["positive"])
    assert set(document["gof"]) == {row.family for row in comparison if row.fit is not None}
    normal = comparison["normal"].fit
    assert document["gof"]["normal"] == strict(normal.gof(10, seed=1).to_dict())
    code, out, _ = run(capsys, *argv)
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("normal ") and "/10" in line)
    assert row.split()[1:] == [f"{normal.gof(10, seed=1).pvalue[k]:.3g}" for k in ("ks", "cvm", "ad")] + ["0/10"]


# --- censored data ----------------------------------------------------------------------------------


def test_right_censored_flags_fit_as_scipy(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    times, flags = [3.0, 5.0, 8.0, 2.0, 7.0, 4.0, 6.5, 1.5], [0, 1, 0, 0, 1, 0, 1, 0]
    path = csv("time,censored\n" + "".join(f"{t},{c}\n" for t, c in zip(times, flags, strict=True)))
    document = run_json(capsys, path, "--column", "time", "--right-censored", "censored", "--family", "weibull")
    expected = fit(Censored.right_censored(times, np.array(flags, dtype=bool)), "weibull")
    assert document["fit"] == strict(expected.to_dict())
    assert document["data"]["censored"] == {"side": "right", "column": "'censored'", "count": 3}
    data = stats.CensoredData.right_censored(times, flags)
    shape, _, scale = stats.weibull_min.fit(data, floc=0)
    assert document["fit"]["params"]["shape"] == pytest.approx(shape, rel=1e-4)
    assert document["fit"]["params"]["scale"] == pytest.approx(scale, rel=1e-4)
    t, c = np.array(times), np.array(flags, dtype=bool)

    def loglik(k: float, lam: float) -> float:
        law = stats.weibull_min(k, scale=lam)
        return float(law.logpdf(t[~c]).sum() + law.logsf(t[c]).sum())

    # scipy's optimizer stops a little short: its log-likelihood is not higher than ours.
    ours = loglik(document["fit"]["params"]["shape"], document["fit"]["params"]["scale"])
    assert document["fit"]["loglik"] == pytest.approx(ours, rel=1e-12)
    assert ours >= loglik(shape, scale)


def test_left_censored_flags(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    path = csv("level,below\n0.5,1\n1.2,0\n0.5,1\n2.5,0\n1.7,0\n0.9,0\n")
    document = run_json(capsys, path, "--column", "level", "--left-censored", "below", "--family", "lognormal")
    censored = Censored.left_censored([0.5, 1.2, 0.5, 2.5, 1.7, 0.9], np.array([1, 0, 1, 0, 0, 0], dtype=bool))
    assert document["fit"] == strict(fit(censored, "lognormal").to_dict())


# Every kind of row of the fitdistcens convention, with each spelling of an open end.
BOUNDS_CSV = (
    "lower,upper\n2.1,2.1\n3.5,3.5\n,1.0\n4.0,\n6.2,6.2\n1.5,3.0\n5.0,NA\n0.8,0.8\n3.0,4.5\n"
    "-inf,0.5\n7.1,7.1\n2.6,inf\n9.0,NaN\n"
)
LOWER = [2.1, 3.5, None, 4.0, 6.2, 1.5, 5.0, 0.8, 3.0, -np.inf, 7.1, 2.6, 9.0]
UPPER = [2.1, 3.5, 1.0, None, 6.2, 3.0, None, 0.8, 4.5, 0.5, 7.1, np.inf, None]


def test_censored_bounds_fit_as_the_library_and_scipy(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    path = csv(BOUNDS_CSV)
    document = run_json(capsys, path, "--censored", "lower", "upper", "--family", "weibull")
    data = Censored.from_bounds(LOWER, UPPER)
    expected = fit(data, "weibull")
    assert document["fit"] == strict(expected.to_dict())
    counts = {"exact": 5, "left": 2, "right": 4, "interval": 2}
    assert document["data"] == {
        "file": "data.csv",
        "censored": {"lower": "'lower'", "upper": "'upper'", **counts},
        "weights": None,
        "values": 13,
    }
    # The oracle: the censored log-likelihood written with scipy's law, at our estimate, and scipy's own fit.
    shape, scale = expected.params["shape"], expected.params["scale"]
    law = stats.weibull_min(shape, scale=scale)
    lo, hi = data.lower, data.upper
    kinds = data.kinds()
    loglik = (
        law.logpdf(lo[kinds == "exact"]).sum()
        + law.logcdf(hi[kinds == "left"]).sum()
        + law.logsf(lo[kinds == "right"]).sum()
        + np.log(law.cdf(hi[kinds == "interval"]) - law.cdf(lo[kinds == "interval"])).sum()
    )
    assert document["fit"]["loglik"] == pytest.approx(loglik, rel=1e-12)
    k, _, lam = stats.weibull_min.fit(data.to_scipy(), floc=0)
    assert document["fit"]["params"]["shape"] == pytest.approx(k, rel=1e-3)
    assert document["fit"]["params"]["scale"] == pytest.approx(lam, rel=1e-3)
    code, out, _ = run(capsys, path, "--censored", "lower", "upper", "--family", "weibull")
    assert code == 0
    assert out.splitlines()[:2] == [
        "data: data.csv, bounds in columns 'lower' and 'upper' (13 rows)",
        "censored: 5 exact, 2 left-censored, 4 right-censored, 2 interval-censored",
    ]
    assert expected.summary() in out
    assert "censored data: 5 exact, 2 left-censored, 4 right-censored, 2 interval-censored (n 13)" in out


def test_censored_bounds_from_stdin_by_number_with_weights(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    text = "".join(f"{lo},{hi},{w}\n" for lo, hi, w in [(1, 1, 2), ("", 2, 1), (3, "", 1), (0.5, 1.5, 3), (2, 2, 1)])
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    document = run_json(capsys, "-", "--censored", "1", "2", "--weights", "3", "--family", "exponential")
    data = Censored.from_bounds([1, None, 3, 0.5, 2], [1, 2, None, 1.5, 2])
    assert document["fit"] == strict(fit(data, "exponential", weights=[2, 1, 1, 3, 1]).to_dict())
    assert document["data"]["weights"] == "3" and document["fit"]["n"] == 8.0


def test_censored_bounds_auto_is_the_censored_comparison(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    path = csv(BOUNDS_CSV)
    data = Censored.from_bounds(LOWER, UPPER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the command prints them on stderr
        expected = compare(data, "auto")
    document = run_json(capsys, path, "--censored", "lower", "upper")
    assert document["comparison"] == strict(expected.to_dict())
    assert document["best"] == expected.best.family.name
    assert all(row["ks"] is None for row in document["comparison"]["rows"])
    code, out, _ = run(capsys, path, "--censored", "lower", "upper", "--family", "auto")
    assert code == 0
    assert str(expected) in out
    assert "KS omitted: censored data (8 of 13 observations censored) have no ECDF" in out


def test_censored_bootstrap_is_nonparametric(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    path = csv(BOUNDS_CSV)
    argv = (path, "--censored", "lower", "upper", "--family", "exponential", "--ci", "bootstrap")
    document = run_json(capsys, *argv, "--n-boot", "40", "--seed", "3")
    result = fit(Censored.from_bounds(LOWER, UPPER), "exponential")
    boot = result.bootstrap(40, kind="nonparametric", seed=3)
    assert document["bootstrap"]["kind"] == "nonparametric"
    assert document["ci"]["intervals"]["rate"] == list(boot.ci(0.95)["rate"])
    assert document["bootstrap"]["mean"] == list(boot.ci_mean(0.95))
    explicit = run_json(capsys, *argv, "--n-boot", "40", "--seed", "3", "--boot-kind", "nonparametric")
    assert explicit == document
    assert error(capsys, *argv, "--boot-kind", "parametric") == (
        "--boot-kind parametric needs uncensored data (simulating censored data would need a model of the "
        "censoring); use --boot-kind nonparametric, which resamples the censored rows"
    )


def test_censored_bounds_errors(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    def bounds(text: str, *more: str) -> str:
        return error(capsys, csv(text), "--censored", "lo", "hi", "--family", "weibull", *more)

    where = "of data.csv (columns 'lo' and 'hi')"
    assert bounds("lo,hi\n1,2\n3,2.5\n") == f"lower bound 3 is above upper bound 2.5 in row 3 {where}; 1 row(s) are so"
    assert bounds("lo,hi\n1,2\n,NA\n") == (
        f"no finite bound (lower missing, upper missing) in row 3 {where}: "
        "each row must bound the value on at least one side; 1 row(s) are so"
    )
    assert bounds("lo,hi\n1,2\ninf,5\n").startswith(f"lower bound inf in row 3 {where}: a lower bound is finite")
    assert bounds("lo,hi\n1,-inf\n").startswith(f"upper bound -inf in row 2 {where}: an upper bound is finite")
    assert bounds("lo,hi\n1,2\n1,x\n") == "non-numeric value 'x' in row 3, column 'hi' of data.csv"
    assert bounds("lo,up\n1,2\n") == "--censored 'hi': no such column in data.csv; its columns are 'lo', 'up'"
    assert bounds("lo,hi\n1,2\n", "--column", "lo") == (
        "--censored LOWER UPPER names the data's columns; --column cannot be used with it"
    )
    # The family's support, with the row as the user sees it: an exact value, a row wholly below it.
    assert bounds("lo,hi\n1,2\n-1,-1\n3,3\n") == (
        "1 row(s) of exact values or censoring bounds are outside the support of weibull (reals in (0, inf)): "
        "the first is [-1, -1] in row 3 of data.csv"
    )
    assert bounds("lo,hi\n1,2\n3,3\n,0\n,-2\n").startswith("2 row(s) of exact values or censoring bounds")
    assert bounds("lo,hi\n1,2\n3,3\n,0\n").endswith("the first is [-inf, 0] in row 4 of data.csv")
    assert error(capsys, csv("lo,hi\n1,2\n"), "--censored", "lo", "hi", "--family", "poisson") == (
        "censored data need a continuous family; got poisson, a discrete family"
    )
    good = csv("lo,hi\n1,2\n3,3\n", "good.csv")
    assert error(capsys, good, "--censored", "lo", "hi", "--family", "weibull", "--gof").startswith(
        "--gof needs uncensored data"
    )
    assert error(capsys, good, "--censored", "lo", "hi", "--plot", "out.png").startswith("--plot needs uncensored data")
    assert error(capsys, good, "--censored", "lo").startswith("argument --censored: expected 2 arguments")
    assert error(capsys, good, "--censored", "lo", "hi", "--right-censored", "hi").startswith(
        "argument --right-censored: not allowed with argument --censored"
    )
    assert error(capsys, "--censored", "lo", "hi") == (
        "--censored reads columns of a FILE; no FILE was given (the datasets are uncensored)"
    )
    assert error(capsys, "--dataset", "fatigue-life", "--right-censored", "c").startswith("--right-censored reads")
    # A weight of zero drops a row, as in the library: it cannot be outside the support.
    document = run_json(
        capsys,
        csv("lo,hi,w\n1,2,1\n-1,-1,0\n3,3,1\n", "w.csv"),
        "--censored",
        "lo",
        "hi",
        "--weights",
        "w",
        "--family",
        "weibull",
    )
    assert document["fit"]["n"] == 2.0


# --- plots ---------------------------------------------------------------------------------------------


@pytest.fixture
def agg() -> Any:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    return matplotlib


def test_plot_writes_a_png(capsys, tmp_path: Path, agg) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "kicks.png"
    code, out, _ = run(capsys, "--plot", str(target))
    assert code == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.rstrip().endswith(f"plots (all) written to {target}")
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []  # the figure is closed after saving


def test_plot_of_auto_overlays_the_best_fits(capsys, tmp_path: Path, agg, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    drawn: list[Any] = []
    original = Comparison.plot

    def spy(self, kind="all", *, ax=None, families=None):  # type: ignore[no-untyped-def]
        drawn.append((kind, families))
        return original(self, kind, ax=ax, families=families)

    monkeypatch.setattr(Comparison, "plot", spy)
    target = tmp_path / "auto.svg"
    document = run_json(
        capsys, "--dataset", "fatigue-life", "--family", "auto", "--plot", str(target), "--plot-kind", "qq"
    )
    assert target.read_text().lstrip().startswith("<?xml")
    best = [row["family"] for row in document["comparison"]["rows"]][: _fit._PLOT_MAX_FITS]
    assert drawn == [("qq", best)] and document["plot"] == str(target)


# --- progress -----------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(capsys, "--ci", "bootstrap", "--n-boot", "10", "--seed", "1")
    assert code == 0 and err == ""  # not a terminal: nothing
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["fit", "--ci", "bootstrap", "--n-boot", "10", "--seed", "1"]) == 0
    shown = terminal.getvalue()
    assert "\r[" in shown and "10/10 bootstrap poisson" in shown
    assert shown.endswith("\r")  # the line is cleared at the end


def test_progress_of_auto_on_a_terminal(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["fit", "--family", "auto", "--gof", "--n-boot", "5", "--seed", "1"]) == 0
    shown = terminal.getvalue()
    assert "0/5 fitting 5 families" in shown and "goodness of fit 5/5" in shown


# --- errors -------------------------------------------------------------------------------------------


def test_missing_file(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert error(capsys, str(tmp_path / "nope.csv")) == f"no such file: {tmp_path / 'nope.csv'}"


def test_missing_column_lists_the_columns(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    message = error(capsys, csv("a,b\n1,2\n"), "--column", "x")
    assert message == "--column 'x': no such column in data.csv; its columns are 'a', 'b'"


def test_non_numeric_value_names_its_row(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    message = error(capsys, csv("x\n1\n2\nabc\n"), "--family", "normal")
    assert message == "non-numeric value 'abc' in row 4, column 'x' of data.csv"


def test_empty_data(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    assert error(capsys, csv("x\n")) == "no data in data.csv: it has a header row ('x') and no values"


def test_data_outside_the_support_counts_and_names_the_first_row(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    message = error(capsys, csv("x\n1.5\n2\n-3\n4\n-0.5\n"), "--family", "gamma")
    assert (
        message
        == "2 value(s) are outside the support of gamma (reals in (0, inf)): the first is -3 in row 4 of data.csv"
    )


def test_data_outside_the_support_of_a_dataset(capsys) -> None:  # type: ignore[no-untyped-def]
    message = error(capsys, "--family", "bernoulli")
    assert message == (
        "3 value(s) are outside the support of bernoulli (integers in [0, 1]): "
        "the first is 2 in entry 3 of dataset horse-kicks (column 'deaths')"
    )


def test_weight_zero_values_are_not_outside_the_support(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    document = run_json(capsys, csv("x,w\n1,1\n-2,0\n3,2\n"), "--column", "x", "--weights", "w", "--family", "gamma")
    assert document["fit"] == strict(fit([1.0, 3.0], "gamma", weights=[1.0, 2.0]).to_dict())


def test_unknown_family_lists_the_families(capsys) -> None:  # type: ignore[no-untyped-def]
    message = error(capsys, "--family", "gumbel")
    assert message == f"--family must be auto or one of {', '.join(FAMILY_NAMES)}; got 'gumbel'"


@pytest.mark.parametrize(
    ("fixed", "expected"),
    [
        ("rate", "--fixed must be NAME=VALUE, such as loc=0; got 'rate'"),
        ("=1", "--fixed must be NAME=VALUE, such as loc=0; got '=1'"),
        ("rate=", "--fixed must be NAME=VALUE, such as loc=0; got 'rate='"),
        ("rate=fast", "--fixed rate must be a number; got 'fast'"),
        ("rate=1,rate=2", "--fixed must name each parameter once; got 'rate' twice"),
        ("mu=1", "poisson: fixed must name parameters of the family (rate); got 'mu'"),
        ("rate=-1", "poisson: fixed rate must be positive and finite; got -1.0"),
    ],
)
def test_bad_fixed(capsys, fixed: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    assert error(capsys, "--fixed", fixed) == expected


def test_fixed_repeated_and_comma_separated(capsys) -> None:  # type: ignore[no-untyped-def]
    flow = datasets.load("heat-flow-meter")
    one = run_json(capsys, "--dataset", "heat-flow-meter", "--fixed", "loc=9.26", "--fixed", "scale=0.02")
    two = run_json(capsys, "--dataset", "heat-flow-meter", "--fixed", "loc=9.26,scale=0.02")
    assert one == two
    assert one["fit"] == strict(fit(flow.values, "normal", fixed={"loc": 9.26, "scale": 0.02}).to_dict())


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("--dataset", "iris"), "no dataset 'iris'; the datasets are: horse-kicks, heat-flow-meter, fatigue-life"),
        (("--column", "x"), "--column and --weights choose columns of a FILE; no FILE was given"),
        (("--family", "auto", "--fixed", "rate=1"), "--fixed holds a parameter of one family; it cannot be used"),
        (("--family", "auto", "--ci", "profile"), "--ci profile gives intervals of one family's parameters"),
        (
            (
                "--n-boot",
                "10",
            ),
            "--n-boot sets the bootstrap refits of --ci bootstrap or --gof; neither was given",
        ),
        (("--boot-kind", "nonparametric"), "--boot-kind nonparametric applies to --ci bootstrap; got --ci wald"),
        (("--plot", "out.txt"), "--plot must end with an image format ("),
        (("--plot", "/no/such/dir/out.png"), "--plot /no/such/dir/out.png: no such directory '/no/such/dir'"),
        (("--level", "1.5"), "argument --level: must be in (0, 1); got '1.5'"),
        (("--n-boot", "0"), "argument --n-boot: must be a positive integer; got '0'"),
        (("--seed", "-1"), "argument --seed: must be a non-negative integer; got '-1'"),
        (("--ci", "bca"), "argument --ci: invalid choice: 'bca'"),
    ],
)
def test_bad_options(capsys, argv: tuple[str, ...], expected: str) -> None:  # type: ignore[no-untyped-def]
    assert error(capsys, *argv).startswith(expected)


def test_file_and_dataset_together(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    path = csv("x\n1\n")
    assert error(capsys, path, "--dataset", "horse-kicks").startswith("give a FILE or --dataset, not both")


def test_censored_errors(capsys, csv) -> None:  # type: ignore[no-untyped-def]
    path = csv("t,c\n1,0\n2,2\n3,1\n")
    base = (path, "--column", "t", "--right-censored", "c")
    message = error(capsys, *base, "--family", "weibull")
    assert (
        message
        == "--right-censored column 'c' must hold 0 or 1; 1 value(s) do not, the first is 2 in row 3 of data.csv"
    )
    good = csv("t,c\n1,0\n2,1\n3,0\n", "good.csv")
    flags = (good, "--column", "t", "--right-censored", "c")
    assert error(capsys, *flags, "--family", "weibull", "--gof").startswith("--gof needs uncensored data")
    assert error(capsys, "-", "--right-censored", "c").startswith("--right-censored and --left-censored read")
    # A missing flag column is named by the option that asked for it, not by --column.
    assert error(capsys, good, "--column", "t", "--left-censored", "nope", "--family", "weibull") == (
        "--left-censored 'nope': no such column in good.csv; its columns are 't', 'c'"
    )


def test_plot_without_matplotlib_names_the_extra(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    assert error(capsys, "--plot", "out.png") == (
        "--plot: plotting needs matplotlib: pip install 'nllkit[plot]' (or pip install matplotlib)"
    )


@pytest.mark.parametrize("failure", [FloatingPointError("overflow in exp"), RuntimeError("no progress")])
def test_numerical_failures_of_the_fit_are_one_line(capsys, monkeypatch, failure: Exception) -> None:  # type: ignore[no-untyped-def]
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise failure

    monkeypatch.setattr(fitting_module, "fit", broken)
    assert error(capsys) == f"cannot fit poisson: {type(failure).__name__}: {failure}"


def test_the_command_line_does_not_import_the_families_until_it_fits() -> None:
    # Every nllkit command builds the fit parser; the families (scipy.stats) cost ~1 s to import.
    code = "import sys, nllkit.cli; print([m for m in ('nllkit.distributions', 'nllkit.fitting') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_installed_command_runs_without_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nllkit", "fit", str(tmp_path / "missing.csv")], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr == f"nllkit fit: no such file: {tmp_path / 'missing.csv'}\n"


# --- the documentation shows real output ----------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _block_after(text: str, marker: str) -> str:
    """The first fenced block that starts after `marker` (its lines without the fences)."""
    rest = text[text.index(marker) + len(marker) :]
    start = rest.index("```\n") + 4
    return rest[start : rest.index("```", start)]


def test_readme_and_guide_show_the_real_default_output(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys)
    assert code == 0
    readme = (ROOT / "README.md").read_text()
    assert _block_after(readme, "pip install . && nllkit fit\n```\n") == out
    guide = (ROOT / "docs" / "fitting.md").read_text()
    assert _block_after(guide, "log-likelihood, AIC, AICc, BIC, and the optimizer's status. The default run:\n") == (
        "$ nllkit fit\n" + out
    )


def test_guide_shows_the_real_censored_output(capsys, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    guide = (ROOT / "docs" / "fitting.md").read_text()
    block = _block_after(guide, "(the header is row 1).\n")
    session = iter(block.split("$ ")[1:])
    listing, run_it, failing = next(session), next(session), next(session)
    name = listing.splitlines()[0].removeprefix("cat ")
    (tmp_path / name).write_text(listing.split("\n", 1)[1])
    monkeypatch.chdir(tmp_path)
    command, expected = run_it.split("\n", 1)
    code, out, _ = run(capsys, *command.split()[2:])
    assert code == 0 and out == expected
    # The failing example pipes its own two rows in.
    command, expected = failing.split("\n", 1)
    monkeypatch.setattr(sys, "stdin", io.StringIO("lower,upper\n1,2\n3,2.5\n"))
    assert command.startswith("printf 'lower,upper\\n1,2\\n3,2.5\\n' | nllkit fit ")
    code, out, err = run(capsys, *command.split(" | ")[1].split()[2:])
    assert code == 2 and err == expected
