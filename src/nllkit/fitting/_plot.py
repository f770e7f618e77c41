r"""Diagnostic plots of fitted distributions: density, Q-Q, P-P and CDF, for one fit or several overlaid.

Four views of the same question, whether the fitted law describes the data
(fitdistrplus' ``denscomp``, ``qqcomp``, ``ppcomp`` and ``cdfcomp``):

``'density'``
    A histogram of the data (continuous families) or the bar chart of the
    observed relative frequencies :math:`w_v / n` (discrete families), with
    the fitted density or probability mass function :math:`f(x; \hat\theta)`.
``'qq'``
    The fitted quantiles :math:`F^{-1}(p_i; \hat\theta)` (x axis) against the
    sorted data :math:`x_{(i)}` (y axis), with the line :math:`y = x`.
``'pp'``
    The fitted CDF :math:`F(x_{(i)}; \hat\theta)` (x axis) against the
    empirical probabilities :math:`p_i` (y axis), with :math:`y = x`.
``'cdf'``
    The empirical step CDF :math:`\hat F(x) = \sum_{x_i \le x} w_i / n`
    with the fitted CDF.

The plotting positions are Hazen's, :math:`p_i = (C_i - w_i / 2) / n` with
:math:`C_i` the cumulative weight of the sorted values up to and including
:math:`x_{(i)}` (:math:`(i - 1/2)/n` for an unweighted sample): they stay
inside (0, 1), so that every fitted quantile is finite. For discrete data,
which come as a table of distinct values, the P-P plot compares the CDFs
themselves, :math:`F(v)` against :math:`\hat F(v) = C_v / n`. Both axes of the
Q-Q and P-P plots follow fitdistrplus: the model on x, the data on y. Q-Q and
P-P plots of more than :data:`MAX_POINTS` values show that many, evenly spaced
in rank.

matplotlib is an optional dependency (``pip install 'nllkit[plot]'``),
imported only when a plot is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nllkit.distributions._family import FloatArray, Sample

if TYPE_CHECKING:
    from nllkit.fitting._result import Fit

__all__ = ["KINDS", "MAX_POINTS", "observed", "plot", "positions"]

#: The kinds of plot; ``'all'`` draws the other four on a 2x2 figure.
KINDS = ("density", "qq", "pp", "cdf", "all")
#: At most this many points in a Q-Q or P-P plot (evenly spaced in rank beyond it).
MAX_POINTS = 2000
_PLOT_EXTRA = "pip install 'nllkit[plot]' (or pip install matplotlib)"
_TITLES = {"density": "Density", "qq": "Q-Q plot", "pp": "P-P plot", "cdf": "CDF"}
#: Histogram bins beyond this are merged: more only draws noise.
_MAX_BINS = 100
#: Points of the fitted curves of continuous families.
_GRID = 400
#: The longest run of integers a discrete fit is drawn at.
_MAX_INTEGERS = 2000


def pyplot(fn: str) -> Any:
    """``matplotlib.pyplot``, or an ImportError naming the extra to install.

    Parameters
    ----------
    fn : str
        The calling function, for the message.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f"{fn}: plotting needs matplotlib: {_PLOT_EXTRA}") from None
    return plt


def observed(fn: str, result: Fit) -> Sample:
    """The data a fit was made on (:attr:`Fit.data`), sorted by value.

    A discrete sample is the table of distinct values and their total
    weights the fit used; a continuous one lists every value.

    Parameters
    ----------
    fn : str
        The public function's name, for error messages.
    result : Fit

    Returns
    -------
    Sample

    Raises
    ------
    ValueError
        Censored data: their empirical distribution needs a Turnbull or
        Kaplan-Meier estimate, which these plots do not draw.
    """
    from nllkit.fitting._bootstrap import uncensored

    sample = uncensored(fn, result)
    order = np.argsort(sample.x, kind="stable")
    return Sample(sample.x[order], sample.w[order])


def positions(sample: Sample) -> FloatArray:
    r"""Hazen's plotting positions :math:`p_i = (C_i - w_i / 2) / n` of a sorted weighted sample.

    Parameters
    ----------
    sample : Sample
        Sorted by value.

    Returns
    -------
    ndarray
        In (0, 1), increasing; :math:`(i - 1/2) / n` for unit weights.

    Examples
    --------
    >>> import numpy as np
    >>> positions(Sample(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4)))
    array([0.125, 0.375, 0.625, 0.875])
    """
    return (np.cumsum(sample.w) - 0.5 * sample.w) / sample.n


def plot(fits: Sequence[Fit], kind: str = "all", *, ax: Any = None, fn: str = "plot") -> Any:
    """Draw one kind of diagnostic plot, or all four, for fits of the same data.

    Parameters
    ----------
    fits : sequence of Fit
        One fit, or several of the same data to overlay (the data are taken
        from the first).
    kind : {'density', 'qq', 'pp', 'cdf', 'all'}
        What to draw (see the module notes); ``'all'`` is a 2x2 figure of the
        four, density and CDF on top.
    ax : matplotlib Axes, optional
        Where to draw one kind; a new figure when None. Must be None for ``'all'``.
    fn : str
        The public function's name, for error messages.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (``ax``'s figure when given).

    Raises
    ------
    ValueError
        An unknown ``kind``, ``ax`` given with ``kind='all'``, or no fit.
    ImportError
        matplotlib is not installed.
    """
    if kind not in KINDS:
        raise ValueError(f"{fn}: kind must be one of {', '.join(map(repr, KINDS))}; got {kind!r}")
    if not fits:
        raise ValueError(f"{fn}: fits must hold at least one fit; got none")
    if kind == "all" and ax is not None:
        raise ValueError(f"{fn}: ax must be None for kind='all' (it draws a 2x2 figure); got {type(ax).__name__}")
    plt = pyplot(fn)
    sample = observed(fn, fits[0])
    if len(fits) == 1:
        labels = [f"{fits[0].family.name} fit"]
        title = repr(fits[0].dist)
    else:
        labels = [result.family.name for result in fits]
        title = f"{len(fits)} fits of {sample.n:g} observations"
    if kind == "all":
        figure, axes = plt.subplots(2, 2, figsize=(10.0, 7.5), layout="constrained")
        for panel, which in zip(axes.ravel(), ("density", "cdf", "qq", "pp"), strict=True):
            _draw(panel, which, sample, fits, labels)
        axes[0, 0].legend(fontsize="small")
        figure.suptitle(title)
        return figure
    if ax is None:
        figure, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    _draw(ax, kind, sample, fits, labels)
    ax.legend(fontsize="small")
    return ax.figure


def _draw(ax: Any, kind: str, sample: Sample, fits: Sequence[Fit], labels: Sequence[str]) -> None:
    discrete = fits[0].family.discrete
    {"density": _density, "qq": _qq, "pp": _pp, "cdf": _cdf}[kind](ax, sample, fits, labels, discrete)
    ax.set_title(_TITLES[kind])


def _range(sample: Sample) -> tuple[float, float]:
    """The data's range widened by 5% on each side (or by 1 for a single value)."""
    low, high = float(sample.x[0]), float(sample.x[-1])
    pad = 0.05 * (high - low) if high > low else max(1.0, 0.1 * abs(low))
    return low - pad, high + pad


def _curve_grid(sample: Sample, fits: Sequence[Fit]) -> FloatArray:
    """Where a continuous fit's curves are drawn: the padded data range, inside some family's support."""
    low, high = _range(sample)
    low = max(low, min(result.family.support.lower for result in fits))
    high = min(high, max(result.family.support.upper for result in fits))
    return np.linspace(low, high, _GRID)


def _integer_grid(sample: Sample, fits: Sequence[Fit]) -> FloatArray:
    """The integers a discrete fit is drawn at: the data's range and each fit's central 99.8%."""
    low, high = float(sample.x[0]), float(sample.x[-1])
    for result in fits:
        ends = np.asarray(result.dist.ppf(np.array([0.001, 0.999])), dtype=float)
        if np.all(np.isfinite(ends)):
            low, high = min(low, float(ends[0])), max(high, float(ends[1]))
    low, high = math.floor(low), math.ceil(high)
    if high - low <= _MAX_INTEGERS:
        return np.arange(low, high + 1, dtype=float)
    return np.unique(np.round(np.linspace(low, high, _MAX_INTEGERS + 1)))


def _bins(sample: Sample) -> FloatArray:
    """Histogram bin edges: numpy's 'auto' rule for unit weights, Sturges' on the total weight otherwise."""
    if np.all(sample.w == 1.0):
        edges = np.histogram_bin_edges(sample.x, bins="auto")
        if edges.size - 1 <= _MAX_BINS:
            return edges
        return np.histogram_bin_edges(sample.x, bins=_MAX_BINS)
    # numpy's rules cannot take weights; Sturges' needs only the sample size.
    count = min(_MAX_BINS, math.ceil(math.log2(max(sample.n, 1.0))) + 1)
    return np.histogram_bin_edges(sample.x, bins=count)


def _density(ax: Any, sample: Sample, fits: Sequence[Fit], labels: Sequence[str], discrete: bool) -> None:
    if discrete:
        gaps = np.diff(sample.x)
        width = 0.8 * float(gaps.min()) if gaps.size else 0.8
        ax.bar(sample.x, sample.w / sample.n, width=width, color="0.85", edgecolor="0.55", label="data")
        grid = _integer_grid(sample, fits)
        for result, label in zip(fits, labels, strict=True):
            ax.plot(grid, result.dist.pdf(grid), "o-", markersize=4, linewidth=1, label=label)
        ax.set_ylabel("probability")
    else:
        heights, _, _ = ax.hist(
            sample.x, bins=_bins(sample), weights=sample.w, density=True, color="0.85", edgecolor="0.55", label="data"
        )
        grid = _curve_grid(sample, fits)
        tallest = 0.0
        for result, label in zip(fits, labels, strict=True):
            pdf = np.asarray(result.dist.pdf(grid), dtype=float)
            ax.plot(grid, pdf, label=label)
            finite = pdf[np.isfinite(pdf)]
            tallest = max(tallest, float(finite.max(initial=0.0)))
        # A density that diverges at the edge of its support (gamma with shape < 1) would squash the histogram.
        top = float(np.max(heights))
        if tallest > 3.0 * top > 0.0:
            ax.set_ylim(0.0, 3.0 * top)
        ax.set_ylabel("density")
    ax.set_xlabel("value")


def _thinned(sample: Sample, p: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The sorted values and their positions, at most MAX_POINTS of them evenly spaced in rank."""
    if sample.x.size <= MAX_POINTS:
        return sample.x, p
    keep = np.unique(np.linspace(0, sample.x.size - 1, MAX_POINTS).round().astype(np.intp))
    return sample.x[keep], p[keep]


def _diagonal(ax: Any, low: float, high: float) -> None:
    ax.plot([low, high], [low, high], color="0.4", linestyle="--", linewidth=1, label="_y = x")


def _qq(ax: Any, sample: Sample, fits: Sequence[Fit], labels: Sequence[str], discrete: bool) -> None:
    values, p = _thinned(sample, positions(sample))
    low, high = float(values[0]), float(values[-1])
    for result, label in zip(fits, labels, strict=True):
        quantiles = np.asarray(result.dist.ppf(p), dtype=float)
        ax.plot(quantiles, values, "o", markersize=3, alpha=0.7, label=label)
        finite = quantiles[np.isfinite(quantiles)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    _diagonal(ax, low, high)
    ax.set_xlabel("fitted quantiles")
    ax.set_ylabel("data (sorted)")


def _pp(ax: Any, sample: Sample, fits: Sequence[Fit], labels: Sequence[str], discrete: bool) -> None:
    # Discrete data are a table of distinct values: compare the two CDFs at them.
    p = np.cumsum(sample.w) / sample.n if discrete else positions(sample)
    values, p = _thinned(sample, p)
    for result, label in zip(fits, labels, strict=True):
        ax.plot(np.asarray(result.dist.cdf(values), dtype=float), p, "o", markersize=3, alpha=0.7, label=label)
    _diagonal(ax, 0.0, 1.0)
    ax.set_xlabel("fitted probabilities")
    ax.set_ylabel("empirical probabilities")


def _cdf(ax: Any, sample: Sample, fits: Sequence[Fit], labels: Sequence[str], discrete: bool) -> None:
    grid = _integer_grid(sample, fits) if discrete else _curve_grid(sample, fits)
    ecdf = np.cumsum(sample.w) / sample.n
    # The empirical CDF as a step function: 0 left of the smallest value, 1 from the largest on.
    left, right = min(float(grid[0]), float(sample.x[0])), max(float(grid[-1]), float(sample.x[-1]))
    steps_x = np.concatenate(([left], sample.x, [right]))
    steps_y = np.concatenate(([0.0], ecdf, [1.0]))
    ax.step(steps_x, steps_y, where="post", color="black", linewidth=1.2, label="data")
    for result, label in zip(fits, labels, strict=True):
        cdf = np.asarray(result.dist.cdf(grid), dtype=float)
        if discrete:
            ax.step(grid, cdf, where="post", label=label)
        else:
            ax.plot(grid, cdf, label=label)
    ax.set_xlabel("value")
    ax.set_ylabel("cumulative probability")
