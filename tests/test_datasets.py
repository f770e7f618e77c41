"""The embedded datasets and ``nllkit datasets``.

The values are checked against what their sources state: Bortkiewicz's table
(109, 65, 22, 3 and 1 corps-years with 0 to 4 deaths), the summary statistics
the NIST/SEMATECH e-Handbook quotes for ZARR13.DAT (N = 195, mean 9.261460,
standard deviation 0.022789, minimum 9.196848, maximum 9.327973, median
9.261952), and for BIRNSAUN.DAT its 101 values in the NIST file's order,
which lists the sorted values in 6 columns of 17 read row by row.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nllkit import datasets
from nllkit.cli import main
from nllkit.cli._data import read_column

ROOT = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_names_and_default() -> None:
    assert datasets.names() == ("horse-kicks", "heat-flow-meter", "fatigue-life")
    assert datasets.DEFAULT == datasets.names()[0] == "horse-kicks"


def test_horse_kicks_is_bortkiewicz_table() -> None:
    kicks = datasets.load("horse-kicks")
    assert kicks.values.tolist() == [0, 1, 2, 3, 4]
    assert kicks.weights is not None
    assert kicks.weights.tolist() == [109, 65, 22, 3, 1]
    assert kicks.n == 200
    assert float(kicks.values @ kicks.weights) == 122  # deaths in all; the Poisson MLE is 0.61
    assert (kicks.support, kicks.default_family, kicks.columns) == ("counts", "poisson", ("deaths", "corps_years"))


def test_heat_flow_meter_matches_nist_statistics() -> None:
    flow = datasets.load("heat-flow-meter")
    y = flow.values
    assert flow.weights is None and y.dtype == np.float64 and y.shape == (195,)
    # The e-Handbook prints 6 decimals (Dataplot's output): 9.261460 and 0.022789.
    assert abs(y.mean() - 9.261460) < 1e-6
    assert abs(y.std(ddof=1) - 0.022789) < 1e-6
    assert (y.min(), y.max(), np.median(y)) == (9.196848, 9.327973, 9.261952)
    assert y[:5].tolist() == [9.206343, 9.299992, 9.277895, 9.305795, 9.275351]
    assert (flow.support, flow.default_family) == ("positive", "normal")


def test_fatigue_life_matches_nist_file() -> None:
    life = datasets.load("fatigue-life")
    y = life.values
    assert life.weights is None and y.shape == (101,)
    assert np.all(y == np.round(y)) and y.min() == 370 and y.max() == 2440
    assert y.sum() == 141492
    # The file lists the sorted values in 6 columns of 17, read across.
    full = np.concatenate([y, np.full(1, np.inf)]).reshape(17, 6)
    assert np.all(np.diff(full.T.ravel()) >= 0)
    assert (life.support, life.default_family) == ("positive", "weibull")


@pytest.mark.parametrize("name", datasets.names())
def test_every_dataset_is_documented_and_in_its_support(name: str) -> None:
    d = datasets.load(name)
    assert d.name == name and d.title and d.description and d.source and d.licence and d.reference
    assert d.url.startswith("https://")
    assert np.all(np.isfinite(d.values))
    if d.support == "counts":
        assert np.all(d.values >= 0) and np.all(d.values == np.round(d.values))
    elif d.support == "positive":
        assert np.all(d.values > 0)
    if d.weights is not None:
        assert d.weights.shape == d.values.shape and np.all(d.weights > 0)
    assert name in (ROOT / "docs" / "datasets.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", datasets.names())
def test_support_and_default_family_agree_with_the_families(name: str) -> None:
    registry = pytest.importorskip("nllkit.distributions._registry")
    d = datasets.load(name)
    family = registry.get_family(d.default_family)
    assert family.name == d.default_family
    assert not np.any(family.support.outside(d.values))
    # The fatigue lives are whole kilocycles, so integers: measurements rounded, not counts.
    assert registry.support_kind(d.values) == ("counts" if name == "fatigue-life" else d.support)


def test_load_returns_fresh_arrays() -> None:
    first = datasets.load("horse-kicks")
    first.values[0] = 99.0
    assert datasets.load("horse-kicks").values[0] == 0.0


def test_unknown_dataset_lists_the_datasets() -> None:
    with pytest.raises(ValueError, match=r"no dataset 'kicks'; the datasets are: horse-kicks, heat-flow-meter"):
        datasets.load("kicks")


# --- nllkit datasets -----------------------------------------------------------------


def test_cli_lists_every_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "datasets")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["name", "n", "support", "default"]
    for name in datasets.names():
        d = datasets.load(name)
        row = next(line for line in lines if line.startswith(name + " "))
        assert str(d.n) in row and d.default_family in row and d.reference in row and d.title in row
    assert "horse-kicks" in lines[-1]  # names the default of nllkit fit


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "datasets", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["default"] == "horse-kicks"
    assert [d["name"] for d in data["datasets"]] == list(datasets.names())
    assert data["datasets"][0]["n"] == 200 and data["datasets"][0]["support"] == "counts"
    code, out, _ = run(capsys, "datasets", "horse-kicks", "--format", "json")
    one = json.loads(out)
    assert one["values"] == [0, 1, 2, 3, 4] and one["weights"] == [109, 65, 22, 3, 1]


def test_cli_details(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "datasets", "heat-flow-meter")
    assert code == 0
    assert out.startswith("heat-flow-meter: ")
    assert "observations:   195" in out and "ZARR13.DAT" in out and "17 U.S.C. 105" in out
    assert "9.206343 9.299992" in out


@pytest.mark.parametrize("name", datasets.names())
def test_cli_csv_reads_back(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str) -> None:
    code, out, _ = run(capsys, "datasets", name, "--csv")
    assert code == 0
    d = datasets.load(name)
    path = tmp_path / f"{name}.csv"
    path.write_text(out, encoding="utf-8")
    count_column = d.columns[1] if len(d.columns) > 1 else None
    values, weights, _ = read_column(str(path), d.columns[0], count_column)
    np.testing.assert_array_equal(values, d.values)
    if d.weights is None:
        assert weights is None
    else:
        np.testing.assert_array_equal(weights, d.weights)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["datasets", "nope"], "nllkit datasets: no dataset 'nope'; the datasets are: horse-kicks, "),
        (["datasets", "--csv"], "nllkit datasets: --csv needs a dataset NAME"),
        (["datasets", "horse-kicks", "--csv", "--format", "json"], "nllkit datasets: --csv and --format json"),
    ],
)
def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.skipif(importlib.util.find_spec("hatchling") is None, reason="needs hatchling (the build backend)")
def test_wheel_ships_the_data(tmp_path: Path) -> None:
    """Hatchling's wheel holds the CSV files next to the loader."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("nllkit-*.whl")
    files = set(zipfile.ZipFile(wheel).namelist())
    for name in ("horse_kicks.csv", "heat_flow_meter.csv", "fatigue_life.csv", "__init__.py"):
        assert f"nllkit/datasets/{name}" in files
