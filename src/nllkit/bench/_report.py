"""Showing a run: the text table, the JSON file and the bar chart.

matplotlib is optional (the ``plot`` extra): it is imported only by
:func:`require_plotting` and :func:`write_plot`.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from nllkit.bench._cases import NLLKIT, format_shape
from nllkit.bench._harness import Report, Result

__all__ = ["PLOT_HINT", "check_writable", "format_table", "require_plotting", "to_json", "write_json", "write_plot"]

#: The one line that tells how to get plotting.
PLOT_HINT = "--plot needs matplotlib, which is not installed: pip install 'nllkit[plot]'"

SCHEMA = "nllkit-bench/1"

_HEADER = ("case", "implementation", "median ms", "IQR ms", "min ms", "x nllkit", "x limit", "peak MiB")


def align(lines: Sequence[Sequence[str]], left: Collection[int]) -> list[str]:
    """Rows of cells as aligned text: the columns in `left` left-justified, the others right-justified."""
    widths = [max(len(line[j]) for line in lines) for j in range(len(lines[0]))]
    return [
        "  ".join(
            cell.ljust(w) if j in left else cell.rjust(w) for j, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    ]


def _ms(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _row(r: Result, first: bool) -> list[str]:
    return [
        r.case if first else "",
        r.implementation + (f" ({r.limit} limit)" if r.implementation == r.limit else ""),
        _ms(r.median_ms),
        _ms(r.iqr_ms),
        _ms(r.min_ms),
        _ratio(r.ratio_to_nllkit),
        _ratio(r.ratio_to_limit),
        _mib(r.peak_extra_mib),
    ]


def format_table(report: Report) -> str:
    """The results as an aligned text table, followed by the skipped implementations.

    Parameters
    ----------
    report : Report

    Returns
    -------
    str
        Ends with a newline. ``x nllkit`` and ``x limit`` are ratios of
        medians; ``peak MiB`` is the extra memory at the peak of one call.
    """
    rows: list[list[str]] = []
    previous = None
    for r in report.results:
        if previous is not None and r.case != previous:
            rows.append([])
        rows.append(_row(r, r.case != previous))
        previous = r.case
    full = [row for row in rows if row]
    widths = [max(len(x) for x in column) for column in zip(_HEADER, *full, strict=False)]

    def line(cells: list[str] | tuple[str, ...]) -> str:
        left = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1])]
        right = [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    env = report.environment
    threads = env.get("threads", {}).get("requested")
    lines = [
        f"nllkit {env.get('versions', {}).get('nllkit')} on {env.get('cpu')}, {threads} thread(s); "
        "times in ms (median, interquartile range, fastest)",
        "x nllkit: median / nllkit's median; x limit: median / the limit's (read: one read of the input, "
        "copy: copy into a reused buffer)",
        f"peak MiB: {env.get('memory_method')}",
        "",
        line(_HEADER),
    ]
    lines += [line(row) if row else "" for row in rows]
    if report.skipped:
        lines += ["", "skipped:"]
        lines += [f"  {s.case}: {s.implementation}: {s.reason}" for s in report.skipped]
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data.

    Parameters
    ----------
    report : Report

    Returns
    -------
    dict
        ``schema``, ``environment``, ``settings``, ``results`` (one object per
        case and implementation, with ``times_ms``, ``median_ms``, ``iqr_ms``,
        ``min_ms``, ``ratio_to_nllkit``, ``ratio_to_limit``, ``limit`` and
        ``peak_extra_mib``) and ``skipped``.
    """
    return {
        "schema": SCHEMA,
        "environment": report.environment,
        "settings": report.settings,
        "results": [
            {
                "case": r.case,
                "loss": r.loss,
                "mode": r.mode,
                "shape": list(r.shape),
                "dtype": r.dtype,
                "implementation": r.implementation,
                "median_ms": r.median_ms,
                "iqr_ms": r.iqr_ms,
                "min_ms": r.min_ms,
                "times_ms": list(r.times_ms),
                "ratio_to_nllkit": r.ratio_to_nllkit,
                "limit": r.limit,
                "ratio_to_limit": r.ratio_to_limit,
                "peak_extra_mib": r.peak_extra_mib,
            }
            for r in report.results
        ],
        "skipped": [{"case": s.case, "implementation": s.implementation, "reason": s.reason} for s in report.skipped],
    }


def check_writable(option: str, path: str | os.PathLike[str]) -> None:
    """Fail early when `path` cannot be written (its folder is missing).

    Raises
    ------
    ValueError
        The parent folder does not exist or is not a folder.
    """
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise ValueError(f"{option} {os.fspath(path)}: the folder {parent} does not exist")
    if Path(path).is_dir():
        raise ValueError(f"{option} {os.fspath(path)}: is a folder, not a file")


def write_json(report: Report, path: str | os.PathLike[str]) -> None:
    """Write :func:`to_json` of `report` to `path` (UTF-8, indented).

    Raises
    ------
    ValueError
        The file cannot be written (one-line message).
    """
    text = json.dumps(to_json(report), indent=2, allow_nan=False) + "\n"
    try:
        Path(path).expanduser().write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"--json {os.fspath(path)}: cannot write it: {exc.strerror or exc}") from None


def require_plotting(path: str | os.PathLike[str]) -> None:
    """Check, before a run, that :func:`write_plot` will be able to write `path`.

    Raises
    ------
    ValueError
        matplotlib is not installed (the message is :data:`PLOT_HINT`), the
        file's extension is not an image format matplotlib writes, or its
        folder does not exist.
    """
    try:
        figure_module = importlib.import_module("matplotlib.figure")
    except ImportError:
        raise ValueError(PLOT_HINT) from None
    check_writable("--plot", path)
    suffix = Path(path).suffix.lstrip(".").lower()
    formats = figure_module.Figure().canvas.get_supported_filetypes()
    if suffix not in formats:
        raise ValueError(
            f"--plot {os.fspath(path)}: the extension must be one of {', '.join(sorted(formats))} (such as results.png)"
        )


_PLOT_ORDER = (NLLKIT, "nllkit in-place", "nllkit.torch", "torch", "jax jit", "numpy naive")
_SHORT_DTYPES = {"float32": "f32", "bfloat16": "bf16"}
_SHORT_LOSSES = {"cross_entropy": "CE", "poisson_nll_loss": "Poisson", "gaussian_nll_loss": "Gaussian"}


def _plot_order(name: str) -> tuple[int, str]:
    return (_PLOT_ORDER.index(name) if name in _PLOT_ORDER else len(_PLOT_ORDER), name)


def _plot_label(r: Result) -> str:
    shape = format_shape(r.shape)
    return f"{_SHORT_LOSSES.get(r.loss, r.loss)} {r.mode}\n{shape}\n{_SHORT_DTYPES.get(r.dtype, r.dtype)}"


def write_plot(report: Report, path: str | os.PathLike[str]) -> None:
    """A grouped bar chart: per case, each implementation's time over the case's limit.

    The limits themselves are the line at 1; the y axis is logarithmic.

    Parameters
    ----------
    report : Report
    path : str or path-like
        The image file (its extension chooses the format, such as ``.png``).

    Raises
    ------
    ValueError
        matplotlib is not installed, or the file cannot be written.
    """
    try:
        figure_module = importlib.import_module("matplotlib.figure")
    except ImportError:
        raise ValueError(PLOT_HINT) from None
    rows = [r for r in report.results if r.implementation != r.limit and r.ratio_to_limit is not None]
    cases = list(dict.fromkeys(r.case for r in rows))
    names = sorted(dict.fromkeys(r.implementation for r in rows), key=_plot_order)
    ratio = {(r.case, r.implementation): r.ratio_to_limit for r in rows}

    labels = {r.case: _plot_label(r) for r in rows}
    figure = figure_module.Figure(figsize=(max(8.0, 1.0 * len(cases) + 2), 6.0), layout="constrained")
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        xs = [i + (k - (len(names) - 1) / 2) * width for i, case in enumerate(cases) if (case, name) in ratio]
        ys = [ratio[case, name] for case in cases if (case, name) in ratio]
        axes.bar(xs, ys, width=width, label=name)
    axes.axhline(1.0, color="black", linewidth=1, linestyle="--", label="limit (read / copy)")
    axes.set_yscale("log")
    axes.set_xticks(range(len(cases)))
    axes.set_xticklabels([labels[c] for c in cases], fontsize=7)
    axes.set_ylabel("median time / limit's median (lower is better)")
    env = report.environment
    axes.set_title(f"nllkit bench: {env.get('cpu')}, {env.get('threads', {}).get('requested')} thread(s)", fontsize=9)
    axes.legend(fontsize=8)
    try:
        figure.savefig(Path(path).expanduser(), dpi=120)
    except OSError as exc:
        raise ValueError(f"--plot {os.fspath(path)}: cannot write it: {exc.strerror or exc}") from None
