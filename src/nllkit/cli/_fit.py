"""``nllkit fit``: fit a distribution to a column of numbers by maximum likelihood.

The data come from a file (CSV, TSV, Parquet, ``.npy``, or ``-`` for
standard input, read by :mod:`nllkit.cli._data`) or, with no file, from an
embedded dataset (:data:`nllkit.datasets.DEFAULT` unless ``--dataset`` names
another). One family prints the table of :meth:`nllkit.fitting.Fit.summary`
with the chosen intervals; ``--family auto`` fits the plausible families and
prints the table of :func:`nllkit.fitting.compare`. ``--format json`` prints
the library's own records (``to_dict()``) with NaN and infinities as ``null``.

Defaults: the family is the dataset's default family for an embedded dataset,
and ``auto`` for a file (a file's data come with no family; the comparison
says which fits best). ``auto`` tries the families of the data's support
(:data:`~nllkit.distributions._registry.AUTO_FAMILIES`): for an embedded
dataset its documented support, so integer-valued lifetimes are not taken
for counts. Long work (``auto``, bootstrap, ``--gof``) shows a progress bar
on standard error when it is a terminal, nothing in a pipe.

Randomness: ``--ci bootstrap`` and ``--gof`` use ``--seed``, or a fresh seed
that the output reports, so that every run can be repeated exactly.

Censored data (continuous families) come in one of two forms. ``--censored
LOWER UPPER`` names two columns of bounds, row by row ``LOWER <= X <= UPPER``,
in the convention of fitdistrplus's ``fitdistcens``: equal bounds are an exact
value, a missing (empty, NA, NaN) or ``-inf`` lower bound a left-censored one,
a missing or ``inf`` upper bound a right-censored one, two finite bounds an
interval (read by :func:`nllkit.cli._data.read_bounds`, the only reader that
takes missing cells; see :meth:`nllkit.fitting.Censored.from_bounds`). Or the
value column with a 0/1 column, ``--right-censored FLAG`` (1: the value is only
known to be at least this, a survival time still running) or
``--left-censored FLAG`` (1: at most this, below a detection limit); see
:meth:`nllkit.fitting.Censored.right_censored`. Censored data take
``--family auto`` (a comparison without the KS column) and ``--ci bootstrap``
with the nonparametric bootstrap (the default for them: a parametric one would
need a model of the censoring); ``--gof`` and ``--plot`` need exact values.

Every problem with the input is one line on standard error and exit code 2
(see :mod:`nllkit.cli`): a missing file, a missing column (listing the
columns), a non-numeric value (with its row), empty data, data outside the
family's support (how many, and the first one's row), an unknown family
(listing the families), a bad ``--fixed``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nllkit import datasets
from nllkit.cli._data import Bounds, read_bounds, read_data

if TYPE_CHECKING:
    from nllkit.distributions._family import Family
    from nllkit.fitting import Censored, Fit

# The library is imported where it is used, not here: every ``nllkit`` command
# builds this parser, and importing the families (scipy.stats) costs ~1 s.

NAME = "fit"
#: The one-line summary in ``nllkit --help``.
HELP = "fit a distribution to data by maximum likelihood"

DESCRIPTION = f"""\
Fit a distribution to a column of numbers by maximum likelihood and print the
estimates with standard errors and confidence intervals, the log-likelihood,
AIC and BIC; '--family auto' fits every family that suits the data and ranks
them by AIC.

With no FILE, fits the embedded dataset {datasets.DEFAULT} (or --dataset NAME;
'nllkit datasets' lists them) with its default family. A FILE is CSV, TSV,
Parquet or .npy, or '-' for CSV/TSV on standard input; its family defaults to
auto. Censored data: --censored LOWER UPPER reads two columns of bounds (an
empty, NA or NaN cell is an open end), or a 0/1 column named by
--right-censored or --left-censored marks censored values."""

#: Replaced by the list of families when the help is shown (see _HelpFormatter).
_FAMILIES = "{families}"

EPILOG = f"""\
{_FAMILIES}

examples:
  nllkit fit
  nllkit fit --dataset fatigue-life --family auto --plot fatigue.png
  nllkit fit data.csv --column x --family gamma --ci profile
  nllkit fit data.csv --column x --family normal --fixed loc=0
  nllkit fit lifetimes.csv --censored lower upper --family weibull
  nllkit datasets heat-flow-meter --csv | nllkit fit - --family normal --format json"""

_CI_CHOICES = ("wald", "profile", "bootstrap")
_BOOT_KINDS = ("parametric", "nonparametric")
_PLOT_KINDS = ("all", "density", "qq", "pp", "cdf")
#: Overlaying more fits than this makes the plots of --family auto unreadable.
_PLOT_MAX_FITS = 4


# --- options -------------------------------------------------------------------------


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Lists the families in the epilog only when the help is shown: listing them imports them."""

    def add_text(self, text: str | None) -> None:
        if text is not None and _FAMILIES in text:
            from nllkit.distributions._registry import FAMILY_NAMES

            names = textwrap.fill("families: " + ", ".join(FAMILY_NAMES) + ", auto", 79, break_on_hyphens=False)
            text = text.replace(_FAMILIES, names)
        super().add_text(text)


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1); got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1); got {text!r}")
    return value


def _integer(minimum: int, expected: str) -> Callable[[str], int]:
    """An argparse type: an integer of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {expected}; got {text!r}")
        return value

    return parse


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``nllkit fit`` to `parser`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    parser.add_argument("file", nargs="?", metavar="FILE", help="CSV, TSV, Parquet or .npy file, or - for stdin")
    parser.add_argument(
        "--dataset",
        metavar="NAME",
        help=f"fit an embedded dataset instead of a FILE: {', '.join(datasets.names())} (default {datasets.DEFAULT})",
    )
    parser.add_argument("--column", metavar="NAME", help="the data column: its header name or number from 1")
    parser.add_argument("--weights", metavar="COLUMN", help="a column of non-negative weights (counts)")
    parser.add_argument(
        "--family",
        metavar="NAME",
        help="a family, or auto to compare the plausible ones (default: the dataset's family; auto for a FILE)",
    )
    parser.add_argument(
        "--fixed",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="hold a parameter at a value, such as loc=0 (repeat it, or separate with commas)",
    )
    parser.add_argument("--ci", choices=_CI_CHOICES, default="wald", help="confidence intervals (default: wald)")
    parser.add_argument(
        "--boot-kind",
        choices=_BOOT_KINDS,
        help="resample from the fitted law or from the data, for --ci bootstrap "
        "(default: parametric; nonparametric, the only kind, for censored data)",
    )
    parser.add_argument("--level", type=_level, default=0.95, help="confidence level (default: 0.95)")
    parser.add_argument("--gof", action="store_true", help="goodness-of-fit tests (KS, CvM, AD; chi-square)")
    parser.add_argument(
        "--n-boot",
        type=_integer(1, "a positive integer"),
        metavar="N",
        help="bootstrap refits for --ci bootstrap (default 999) and --gof (default 199)",
    )
    parser.add_argument(
        "--seed",
        type=_integer(0, "a non-negative integer"),
        metavar="INT",
        help="seed of --ci bootstrap and --gof (default: a fresh one, printed for reruns)",
    )
    censoring = parser.add_mutually_exclusive_group()
    censoring.add_argument(
        "--censored",
        nargs=2,
        metavar=("LOWER", "UPPER"),
        help="censored data as two columns of bounds, LOWER <= X <= UPPER: equal is exact, an empty/NA/NaN or "
        "-inf LOWER left-censored, an empty/NA/NaN or inf UPPER right-censored, else an interval (replaces --column)",
    )
    censoring.add_argument(
        "--right-censored",
        metavar="FLAG",
        help="a column of 0/1: 1 marks a value censored on the right (X >= value, as a survival time)",
    )
    censoring.add_argument(
        "--left-censored",
        metavar="FLAG",
        help="a column of 0/1: 1 marks a value censored on the left (X <= value, as a detection limit)",
    )
    parser.add_argument(
        "--plot",
        metavar="OUT.png",
        help=f"write diagnostic plots (needs matplotlib); auto overlays the {_PLOT_MAX_FITS} best fits",
    )
    parser.add_argument(
        "--plot-kind", choices=_PLOT_KINDS, default="all", help="which plot --plot draws (default: all four)"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")


# --- the data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Input:
    """The data to fit, where they come from, and where each value is for error messages."""

    values: np.ndarray
    weights: np.ndarray | None
    where: Callable[[int], str]
    header: list[str]
    record: dict[str, Any]
    default_family: str = "auto"
    #: The families ``--family auto`` tries; None: those that suit the values (``candidates``).
    families: Sequence[str] | None = None
    censored: Censored | None = None


def _load(args: argparse.Namespace) -> _Input:
    if args.file is not None and args.dataset is not None:
        raise ValueError(f"give a FILE or --dataset, not both; got {args.file!r} and --dataset {args.dataset!r}")
    if args.file is None:
        if args.column is not None or args.weights is not None:
            raise ValueError("--column and --weights choose columns of a FILE; no FILE was given")
        censoring = {
            "--censored": args.censored,
            "--right-censored": args.right_censored,
            "--left-censored": args.left_censored,
        }
        option = next((name for name, value in censoring.items() if value is not None), None)
        if option is not None:
            raise ValueError(f"{option} reads columns of a FILE; no FILE was given (the datasets are uncensored)")
        return _dataset(args.dataset or datasets.DEFAULT)
    if args.censored is not None:
        if args.column is not None:
            raise ValueError("--censored LOWER UPPER names the data's columns; --column cannot be used with it")
        lower, upper = args.censored
        return _bounds(read_bounds(args.file, lower, upper, args.weights), args.weights)
    if args.file == "-" and (args.right_censored or args.left_censored):
        raise ValueError("--right-censored and --left-censored read a second column of a FILE, not of standard input")
    column = read_data(args.file, args.column, args.weights)
    header = [f"data: {column.description}"]
    record: dict[str, Any] = {
        "file": column.source,
        "column": column.name,
        "weights": args.weights,
        "values": int(column.values.size),
    }
    censored = None
    flag_column = args.right_censored or args.left_censored
    if flag_column is not None:
        side = "right" if args.right_censored else "left"
        flags = read_data(args.file, flag_column, None, option=f"--{side}-censored")
        bad = np.flatnonzero((flags.values != 0.0) & (flags.values != 1.0))
        if bad.size:
            raise ValueError(
                f"--{side}-censored column {flags.name} must hold 0 or 1; {bad.size} value(s) do not, "
                f"the first is {flags.values[bad[0]]:g} in {flags.where(int(bad[0]))}"
            )
        marked = flags.values == 1.0
        from nllkit.fitting import Censored

        make = Censored.right_censored if side == "right" else Censored.left_censored
        censored = make(column.values, marked)
        header.append(f"censored: {int(marked.sum())} value(s) {side}-censored (column {flags.name} is 1)")
        record["censored"] = {"side": side, "column": flags.name, "count": int(marked.sum())}
    return _Input(
        values=column.values,
        weights=column.weights,
        where=column.where,
        header=header,
        record=record,
        censored=censored,
    )


def _bounds(bounds: Bounds, weights: str | None) -> _Input:
    """The input of ``--censored LOWER UPPER``: each row a censored observation, in file order."""
    from nllkit.fitting import Censored

    censored = Censored.from_bounds(bounds.lower, bounds.upper)
    kinds = censored.kinds()
    counts = {kind: int(np.count_nonzero(kinds == kind)) for kind in ("exact", "left", "right", "interval")}
    described = ", ".join(
        f"{count} {kind}" + ("-censored" if kind != "exact" else "") for kind, count in counts.items()
    )
    return _Input(
        # A stand-in value per row, for where a value is needed: the finite bound, the lower of two.
        values=np.where(np.isfinite(censored.lower), censored.lower, censored.upper),
        weights=bounds.weights,
        where=bounds.where,
        header=[f"data: {bounds.description}", f"censored: {described}"],
        record={
            "file": bounds.source,
            "censored": {"lower": bounds.names[0], "upper": bounds.names[1], **counts},
            "weights": weights,
            "values": len(censored),
        },
        censored=censored,
    )


def _dataset(name: str) -> _Input:
    from nllkit.distributions._registry import AUTO_FAMILIES

    dataset = datasets.load(name)
    first = dataset.columns[0]

    def where(index: int) -> str:
        return f"entry {index + 1} of dataset {name} (column {first!r})"

    return _Input(
        values=dataset.values,
        weights=dataset.weights,
        where=where,
        header=[
            f"data: {name}, an embedded dataset: {dataset.title} ({dataset.n} observations)",
            f"source: {dataset.reference}, {dataset.url} (nllkit datasets {name})",
        ],
        record={
            "dataset": name,
            "title": dataset.title,
            "n": dataset.n,
            "source": dataset.source,
            "reference": dataset.reference,
            "url": dataset.url,
        },
        default_family=dataset.default_family,
        # The support is the dataset's documented one: integer-valued lifetimes are not counts.
        families=AUTO_FAMILIES[dataset.support],
    )


def _check_support(family: Family, data: _Input) -> None:
    """Name the count and first row of the values outside the family's support.

    For censored data: the exact values, and the censored rows that lie
    wholly outside it (probability zero under every member of the family);
    rows that reach beyond it are fine (the library moves their bounds onto it).
    """
    support = family.support
    if data.censored is None:
        bad, what = support.outside(data.values), "value(s) are"
    else:
        if family.discrete:
            raise ValueError(f"censored data need a continuous family; got {family.name}, a discrete family")
        lower, upper = data.censored.lower, data.censored.upper
        exact = lower == upper
        bad = np.where(exact, support.outside(lower), (upper <= support.lower) | (lower >= support.upper))
        what = "row(s) of exact values or censoring bounds are"
    if data.weights is not None:
        bad &= data.weights > 0.0  # values of weight zero are dropped, as by the library
    if bad.any():
        where = np.flatnonzero(bad)
        first = int(where[0])
        if data.censored is None:
            value = f"{data.values[first]:g}"
        else:
            value = f"[{data.censored.lower[first]:g}, {data.censored.upper[first]:g}]"
        raise ValueError(
            f"{where.size} {what} outside the support of {family.name} ({support.describe()}): "
            f"the first is {value} in {data.where(first)}"
        )


def _parse_fixed(items: Sequence[str]) -> dict[str, float]:
    fixed: dict[str, float] = {}
    for item in (part.strip() for text in items for part in text.split(",")):
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name or not text:
            raise ValueError(f"--fixed must be NAME=VALUE, such as loc=0; got {item!r}")
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"--fixed {name} must be a number; got {text!r}") from None
        if name in fixed:
            raise ValueError(f"--fixed must name each parameter once; got {name!r} twice")
        fixed[name] = value
    return fixed


# --- checks before any work --------------------------------------------------------------------


def _check_options(args: argparse.Namespace, auto: bool, censored: bool) -> None:
    """Refuse combinations of options that cannot be honoured, before any work is done."""
    if auto and args.fixed:
        raise ValueError("--fixed holds a parameter of one family; it cannot be used with --family auto")
    if auto and args.ci != "wald":
        raise ValueError(f"--ci {args.ci} gives intervals of one family's parameters; choose a --family, not auto")
    if args.n_boot is not None and not (args.gof or args.ci == "bootstrap"):
        raise ValueError("--n-boot sets the bootstrap refits of --ci bootstrap or --gof; neither was given")
    if args.boot_kind is not None and args.ci != "bootstrap":
        raise ValueError(f"--boot-kind {args.boot_kind} applies to --ci bootstrap; got --ci {args.ci}")
    if censored and args.ci == "bootstrap" and args.boot_kind == "parametric":
        raise ValueError(
            "--boot-kind parametric needs uncensored data (simulating censored data would need a model of the "
            "censoring); use --boot-kind nonparametric, which resamples the censored rows"
        )
    if censored and (args.gof or args.plot is not None):
        option = "--gof" if args.gof else "--plot"
        raise ValueError(
            f"{option} needs uncensored data (the empirical distribution of censored data is not supported)"
        )
    if args.plot is not None:
        _check_plot_target(args.plot)


def _check_plot_target(path: str) -> None:
    """Fail before fitting, not after: matplotlib, a known image format, an existing directory."""
    from nllkit.fitting._plot import pyplot

    try:
        plt = pyplot("--plot")
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    figure = plt.figure()
    formats = figure.canvas.get_supported_filetypes()
    plt.close(figure)
    if extension not in formats:
        raise ValueError(f"--plot must end with an image format ({', '.join(sorted(formats))}); got {path!r}")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise ValueError(f"--plot {path}: no such directory {folder!r}")


# --- fitting ---------------------------------------------------------------------------------


def _guarded(what: str, work: Callable[[], Any]) -> Any:
    """Run `work`, printing nllkit's warnings as one line each and numerical failures as a ValueError.

    ValueError and TypeError already explain bad input; a LinAlgError (a
    ValueError), an overflow or a missing optional module is reported as a
    failure to `what`.
    """
    from nllkit.fitting._warnings import FitWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = work()
        except (ValueError, TypeError):
            raise
        except (ArithmeticError, RuntimeError, ImportError) as exc:
            raise ValueError(f"cannot {what}: {type(exc).__name__}: {exc}") from None
    # numpy's RuntimeWarnings come from trial points of the optimizer; the fit's status says what matters.
    for caught_warning in caught:
        if issubclass(caught_warning.category, FitWarning):
            print(f"nllkit fit: warning: {' '.join(str(caught_warning.message).split())}", file=sys.stderr)
    return result


class _Bar:
    """A progress bar on standard error when it is a terminal; nothing in pipes and files."""

    _WIDTH = 24

    def __init__(self) -> None:
        from nllkit.bench._harness import Progress

        self._status = Progress(sys.stderr if sys.stderr.isatty() else None)
        self._shown = -1

    def show(self, done: int, total: int, label: str) -> None:
        filled = self._WIDTH * done // total if total else self._WIDTH
        if filled == self._shown and done != total:
            return  # one redraw per cell, not per refit
        self._shown = filled
        self._status.detail(f"[{'#' * filled}{'.' * (self._WIDTH - filled)}] {done}/{total} {label}")

    def tracker(self, label: str) -> Callable[[int, int], None]:
        return lambda done, total: self.show(done, total, label)

    def close(self) -> None:
        self._status.close()
        self._shown = -1


def _seed(args: argparse.Namespace) -> int:
    """--seed, or a fresh one that the output reports, so that any run can be repeated."""
    if args.seed is not None:
        return int(args.seed)
    return int(np.random.SeedSequence().generate_state(1)[0])


def _boot_options(args: argparse.Namespace, seed: int, censored: bool) -> dict[str, Any]:
    # Censored rows can only be resampled whole: nonparametric is the one kind for them.
    kind = args.boot_kind or ("nonparametric" if censored else "parametric")
    options: dict[str, Any] = {"kind": kind, "seed": seed}
    if args.n_boot is not None:
        options["n_boot"] = args.n_boot
    return options


def _gof(result: Fit, args: argparse.Namespace, seed: int, bar: _Bar, label: str) -> Any:
    options: dict[str, Any] = {"seed": seed, "progress": bar.tracker(label)}
    if args.n_boot is not None:
        options["n_boot"] = args.n_boot
    try:
        return _guarded(f"test the fit of {result.family.name}", lambda: result.gof(**options))
    finally:
        bar.close()


def _json_ready(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null (``json.dumps`` would write the invalid ``NaN``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    return value


def _single(args: argparse.Namespace, data: _Input, name: str) -> tuple[list[str], dict[str, Any], Any]:
    from nllkit.distributions._registry import get_family
    from nllkit.fitting._fit import fit

    family = get_family(name)
    fixed = _parse_fixed(args.fixed)
    _check_support(family, data)
    values = data.values if data.censored is None else data.censored
    result = _guarded(f"fit {family.name}", lambda: fit(values, family, weights=data.weights, fixed=fixed or None))
    bar = _Bar()
    seed = _seed(args)  # used by --ci bootstrap and --gof only
    options: dict[str, Any] = {}
    record: dict[str, Any] = {"fit": result.to_dict()}
    text: list[str] = []
    if args.ci == "bootstrap":
        options = _boot_options(args, seed, data.censored is not None)
        try:
            boot = _guarded(
                "bootstrap", lambda: result.bootstrap(**options, progress=bar.tracker(f"bootstrap {family.name}"))
            )
        finally:
            bar.close()
        # Functions of the parameters: the fitted law's mean and median.
        mean, median = boot.ci_mean(args.level), boot.ci_quantile(0.5, args.level)
        record["bootstrap"] = {**boot.to_dict(args.level), "mean": list(mean), "median": list(median)}
        text.append(
            f"{boot.kind} bootstrap: {boot.n_boot} refits ({boot.n_failed} failed), seed {seed}; "
            f"{100.0 * args.level:g}% CI of the mean [{mean[0]:.6g}, {mean[1]:.6g}], "
            f"of the median [{median[0]:.6g}, {median[1]:.6g}]"
        )
    # With an int seed the bootstrap above is cached on the fit: ci() and summary() reuse it.
    intervals = _guarded(f"compute {args.ci} intervals", lambda: result.ci(args.level, args.ci, **options))
    record["ci"] = {"method": args.ci, "level": args.level, "intervals": {k: list(v) for k, v in intervals.items()}}
    gof = _gof(result, args, seed, bar, f"goodness of fit of {family.name}") if args.gof else None
    record["gof"] = None if gof is None else gof.to_dict()
    summary = _guarded("summarize", lambda: result.summary(args.level, args.ci, **options))
    return [summary, *text, *([] if gof is None else ["", str(gof)])], record, result


def _gof_table(reports: dict[str, Any], seed: int) -> list[str]:
    """One row of p-values per family: the comparison's companion (each report alone is a table)."""
    from nllkit.fitting._gof import NAMES
    from nllkit.fitting._result import format_rows

    keys = list(dict.fromkeys(key for report in reports.values() for key in report.pvalue))
    rows = [("family", *(NAMES[key] for key in keys), "failed")]
    for family, report in reports.items():
        cells = [f"{report.pvalue[key]:.3g}" if key in report.pvalue else "" for key in keys]
        rows.append((family, *cells, f"{report.n_failed}/{report.n_boot}"))
    n_boot = max(report.n_boot for report in reports.values())
    return [
        f"goodness of fit: p-values by parametric bootstrap ({n_boot} refits with re-estimated parameters, "
        f"seed {seed})",
        *format_rows(rows),
    ]


def _auto(args: argparse.Namespace, data: _Input) -> tuple[list[str], dict[str, Any], Any]:
    from nllkit.fitting._compare import candidates, compare

    values = data.values if data.censored is None else data.censored
    families = candidates(values) if data.families is None else tuple(data.families)
    bar = _Bar()
    bar.show(0, len(families), f"fitting {len(families)} families ...")
    try:
        comparison = _guarded("compare families", lambda: compare(values, families, weights=data.weights))
    finally:
        bar.close()
    if comparison.rows[0].fit is None:
        raise ValueError(f"no family could be fitted: {comparison.rows[0].family}: {comparison.rows[0].error}")
    text = [str(comparison), "", f"best by AIC: {comparison.best.family.name}"]
    gof: dict[str, Any] | None = None
    if args.gof:
        seed = _seed(args)
        fitted = [row for row in comparison.rows if row.fit is not None]
        gof = {}
        for number, row in enumerate(fitted, start=1):
            label = f"goodness of fit {number}/{len(fitted)}: {row.family}"
            gof[row.family] = _gof(row.fit, args, seed, bar, label)
        text += ["", *_gof_table(gof, seed)]
    record = {
        "comparison": comparison.to_dict(),
        "best": comparison.best.family.name,
        "gof": None if gof is None else {family: report.to_dict() for family, report in gof.items()},
    }
    return text, record, comparison


def _write_plot(target: Any, args: argparse.Namespace) -> None:
    from nllkit.fitting._compare import Comparison
    from nllkit.fitting._plot import pyplot

    plt = pyplot("--plot")
    if isinstance(target, Comparison):
        best = [row.family for row in target.rows if row.fit is not None][:_PLOT_MAX_FITS]
        figure = _guarded("plot", lambda: target.plot(args.plot_kind, families=best))
    else:
        figure = _guarded("plot", lambda: target.plot(args.plot_kind))
    try:
        figure.savefig(args.plot, dpi=100)
    except OSError as exc:
        raise ValueError(f"cannot write --plot {args.plot}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)


def run(args: argparse.Namespace) -> int:
    """Fit as the options of ``nllkit fit`` ask and print the result.

    Parameters
    ----------
    args : argparse.Namespace
        The options added by :func:`configure`.

    Returns
    -------
    int
        0.

    Raises
    ------
    ValueError
        Bad input or options, with a one-line message (see the module notes).

    Examples
    --------
    >>> from nllkit.cli import main
    >>> main(["fit", "--dataset", "heat-flow-meter"])  # doctest: +ELLIPSIS
    data: heat-flow-meter, an embedded dataset: Heat flow meter calibration factor (NIST, 1990) (195 observations)
    source: NIST/SEMATECH e-Handbook 1.4.2.8, ...
    <BLANKLINE>
    normal fitted by maximum likelihood
    parameter   estimate        SE           95% CI (Wald)
    loc          9.26146  0.001628      [9.25827, 9.26465]
    scale      0.0227303  0.001151  [0.0204744, 0.0249862]
    loglik 461.198  AIC -918.396  AICc -918.334  BIC -911.85  n 195  k 2
    converged: yes; closed-form maximum-likelihood estimate
    0
    """
    from nllkit.distributions._registry import FAMILY_NAMES, get_family

    data = _load(args)
    name = args.family if args.family is not None else data.default_family
    auto = name.strip().lower() == "auto"
    if not auto:
        try:
            name = get_family(name).name
        except ValueError:
            raise ValueError(f"--family must be auto or one of {', '.join(FAMILY_NAMES)}; got {name!r}") from None
    _check_options(args, auto, data.censored is not None)
    text, record, target = _auto(args, data) if auto else _single(args, data, name)
    if args.plot is not None:
        _write_plot(target, args)
    if args.format == "json":
        document = {"data": data.record, **record, "plot": args.plot}
        print(json.dumps(_json_ready(document), indent=2, allow_nan=False))
        return 0
    print("\n".join([*data.header, "", *text]))
    if args.plot is not None:
        print(f"\nplots ({args.plot_kind}) written to {args.plot}")
    return 0


#: Formats ``nllkit fit --help``.
FORMATTER: type[argparse.HelpFormatter] = _HelpFormatter
