"""``compare``: several families fitted to the same data, ranked by AIC (never by histogram error)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nllkit.distributions._family import Family, Sample
from nllkit.distributions._registry import AUTO_FAMILIES, auto_families, support_kind
from nllkit.fitting._censored import Censored
from nllkit.fitting._fit import check_values, check_weights, fit
from nllkit.fitting._result import Fit, format_rows
from nllkit.fitting._warnings import FitWarning

__all__ = ["Comparison", "Row", "candidates", "compare", "ks_distance"]


def ks_distance(table: Sample, family: Family, theta: np.ndarray) -> float:
    r"""The Kolmogorov-Smirnov distance between a weighted sample's ECDF and a model CDF.

    .. math:: D = \sup_x |\hat F(x) - F(x)|
       = \max_i \max\bigl(|\hat F(v_i) - F(v_i)|,\; |\hat F(v_{i-1}) - F(v_i^-)|\bigr)

    over the sorted distinct values :math:`v_i` with :math:`\hat F(v_0) = 0`;
    :math:`F(v^-)` is :math:`F(v)` for a continuous family and :math:`F(v - 1)`
    on the integers, where the ECDF is flat between observed values while the
    model's CDF still climbs. Unweighted and continuous, this is the statistic
    of ``scipy.stats.kstest``.

    Parameters
    ----------
    table : Sample
        A compressed sample (sorted distinct values).
    family : Family
    theta : ndarray
    """
    ecdf = np.cumsum(table.w) / table.n
    before = np.concatenate(([0.0], ecdf[:-1]))
    model = np.asarray(family.cdf(table.x, *theta), dtype=float)
    left = np.asarray(family.cdf(table.x - 1.0, *theta), dtype=float) if family.support.integer else model
    return float(max(np.max(np.abs(ecdf - model)), np.max(np.abs(before - left))))


@dataclass(frozen=True)
class Row:
    """One family's line of a :class:`Comparison` (``fit`` is None and ``error`` set when it failed)."""

    family: str
    fit: Fit | None = None
    error: str | None = None
    delta_aic: float = math.nan
    weight: float = math.nan
    ks: float = math.nan
    warnings: tuple[str, ...] = ()

    @property
    def params(self) -> dict[str, float]:
        return {} if self.fit is None else self.fit.params

    @property
    def loglik(self) -> float:
        return math.nan if self.fit is None else self.fit.loglik

    @property
    def k(self) -> int:
        return 0 if self.fit is None else self.fit.k

    @property
    def aic(self) -> float:
        return math.nan if self.fit is None else self.fit.aic

    @property
    def bic(self) -> float:
        return math.nan if self.fit is None else self.fit.bic

    @property
    def converged(self) -> bool:
        return self.fit is not None and self.fit.converged

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "params": self.params,
            "k": self.k,
            "loglik": self.loglik,
            "aic": self.aic,
            "delta_aic": self.delta_aic,
            "aic_weight": self.weight,
            "bic": self.bic,
            "ks": self.ks,
            "converged": self.converged,
            "error": self.error,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Comparison:
    r"""Families fitted to the same data, best (lowest AIC) first; failed fits last, with their error.

    ``delta_aic`` is :math:`\mathrm{AIC} - \min \mathrm{AIC}` and ``weight`` the
    Akaike weight :math:`e^{-\Delta/2} / \sum_j e^{-\Delta_j/2}` over the fits
    that succeeded; ``ks`` is the Kolmogorov-Smirnov distance of the fitted
    CDF (a description, not a test: its null distribution ignores that the
    parameters were estimated). Censored data have no ECDF to measure it
    against: ``ks`` is NaN, the printed table leaves the column out, and
    ``note`` says why.
    """

    rows: tuple[Row, ...]
    n: float = field(default=math.nan)
    note: str = ""

    @property
    def best(self) -> Fit:
        """The fit with the lowest AIC."""
        if self.rows[0].fit is None:
            raise ValueError("compare: no family could be fitted")
        return self.rows[0].fit

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | str) -> Row:
        if isinstance(key, str):
            for row in self.rows:
                if row.family == key:
                    return row
            raise KeyError(key)
        return self.rows[key]

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "rows": [row.to_dict() for row in self.rows], "note": self.note}

    def plot(self, kind: str = "all", *, ax: Any = None, families: Sequence[str] | None = None) -> Any:
        """The fits overlaid on the diagnostic plots of :meth:`Fit.plot` (needs matplotlib).

        Parameters
        ----------
        kind : {'density', 'qq', 'pp', 'cdf', 'all'}
            As for :meth:`Fit.plot`.
        ax : matplotlib Axes, optional
            Where to draw a single kind; a new figure when None.
        families : sequence of str, optional
            The rows to draw, by family name; every fitted row (best first) when None.

        Returns
        -------
        matplotlib.figure.Figure

        Examples
        --------
        >>> import matplotlib; matplotlib.use("Agg")  # draw off screen, for files
        >>> import numpy as np
        >>> x = np.random.default_rng(2).poisson(3.0, size=300)
        >>> figure = compare(x, ["poisson", "geometric"]).plot("cdf")
        >>> [line.get_label() for line in figure.axes[0].get_lines()]
        ['data', 'poisson', 'geometric']
        >>> import matplotlib.pyplot as plt; plt.close(figure)  # pyplot keeps every figure until closed
        """
        from nllkit.fitting._plot import plot

        if families is None:
            fits = [row.fit for row in self.rows if row.fit is not None]
        else:
            fits = []
            for name in families:
                row = next((row for row in self.rows if row.family == name and row.fit is not None), None)
                if row is None or row.fit is None:
                    fitted = [row.family for row in self.rows if row.fit is not None]
                    raise ValueError(
                        f"Comparison.plot: families must name fitted rows ({', '.join(fitted)}); got {name!r}"
                    )
                fits.append(row.fit)
        return plot(fits, kind, ax=ax, fn="Comparison.plot")

    def __str__(self) -> str:
        header = ("family", "k", "loglik", "AIC", "dAIC", "weight", "BIC", "KS", "converged", "parameters")
        # Censored data: every KS is NaN, and a column of "nan" says less than the note.
        show = [j for j in range(len(header)) if header[j] != "KS" or not self.note]
        lines: list[tuple[str, ...]] = [header]
        for row in self.rows:
            if row.fit is None:
                lines.append((row.family, "", "", "", "", "", "", "", "error", str(row.error)))
                continue
            params = ", ".join(f"{name}={value:.4g}" for name, value in row.params.items())
            lines.append(
                (
                    row.family,
                    str(row.k),
                    f"{row.loglik:.2f}",
                    f"{row.aic:.2f}",
                    f"{row.delta_aic:.2f}",
                    f"{row.weight:.3f}",
                    f"{row.bic:.2f}",
                    f"{row.ks:.4f}",
                    "yes" if row.converged else "NO",
                    params,
                )
            )
        lines = [tuple(line[j] for j in show) for line in lines]
        # The parameters column stays out of the aligned table: it is left as it comes, not padded.
        table = format_rows([line[:-1] for line in lines])
        text = [f"{cells}  {line[-1]}".rstrip() for cells, line in zip(table, lines, strict=True)]
        return "\n".join(text + ([self.note] if self.note else []))


def candidates(data: Any) -> tuple[str, ...]:
    """The names of the families that ``compare(data, 'auto')`` fits.

    For an array, :func:`~nllkit.distributions._registry.auto_families`. For
    :class:`Censored` data, the continuous families of the support of the
    finite bounds: integer bounds (lifetimes in whole months, say) are not
    counts, as censored fits are for continuous families only.

    Examples
    --------
    >>> candidates(Censored([1.0, 2.0], right=[3.0]))
    ('normal', 'student_t', 'laplace', 'logistic', 'lognormal', 'exponential', 'gamma', 'weibull')
    """
    if not isinstance(data, Censored):
        return auto_families(np.asarray(data, dtype=float))
    bounds = np.concatenate([data.lower, data.upper])
    kind = support_kind(bounds[np.isfinite(bounds)])
    # Counts are non-negative: the positive families (the real ones among them) are the continuous choice.
    return AUTO_FAMILIES["positive" if kind in ("binary", "counts") else kind]


def compare(data: Any, families: Sequence[Any] | str = "auto", *, weights: Any = None) -> Comparison:
    """Fit several families to the same data and rank them by AIC.

    Parameters
    ----------
    data : array_like or Censored
        Real, finite values, or censored observations (each family is then
        fitted with the censored likelihood, as :func:`fit` does; the KS
        distance is NaN, as censored data have no ECDF, and the table says so).
    families : sequence of (str or Family), or 'auto'
        The candidates; ``'auto'`` picks them from the data's support: reals
        give normal, student_t, laplace, logistic; positive values add
        lognormal, exponential, gamma, weibull; values in (0, 1) add beta;
        non-negative integers give poisson, geometric, negative_binomial and
        the zero-inflated Poisson and negative binomial; only 0 and 1 give
        bernoulli. For censored data, the continuous families of the support
        of the finite bounds (see :func:`candidates`).
    weights : array_like, optional
        As for :func:`fit` (one per row of a ``Censored``).

    Returns
    -------
    Comparison
        Rows by increasing AIC. A family that cannot be fitted (data outside
        its support, a module not available, ...) is a row with its error
        instead of an exception; warnings of the individual fits are kept in
        the rows and summarized in one :class:`FitWarning`.

    Examples
    --------
    >>> import numpy as np
    >>> from nllkit.fitting import Censored, compare
    >>> x = np.random.default_rng(1).normal(size=500)
    >>> compare(x, ["normal"]).best.family.name
    'normal'
    >>> t = np.random.default_rng(2).weibull(2.0, size=200)
    >>> times = Censored.right_censored(np.minimum(t, 1.2), t > 1.2)
    >>> comparison = compare(times, ["weibull", "exponential"])
    >>> [row.family for row in comparison], comparison.note
    (['weibull', 'exponential'], 'KS omitted: censored data (43 of 200 observations censored) have no ECDF')
    """
    censored = isinstance(data, Censored)
    if censored:
        x, w = data, check_weights("compare", len(data), weights)
    else:
        x, w = check_values("compare", data, weights)
    if isinstance(families, str):
        if families != "auto":
            raise ValueError(f"compare: families must be 'auto' or a sequence of families; got {families!r}")
        chosen: Sequence[Any] = candidates(x)
    else:
        chosen = list(families)
        if not chosen:
            raise ValueError("compare: families must name at least one family; got none")

    table: Sample | None = None
    rows = []
    for candidate in chosen:
        name = candidate.name if isinstance(candidate, Family) else str(candidate)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = fit(x, candidate, weights=w)
            except Exception as error:  # a family that fails is a row of the table, not a failure of it
                rows.append(Row(name, error=f"{type(error).__name__}: {error}"))
                continue
        if table is None and not censored:
            table = Sample(x, w).compressed()
        rows.append(
            Row(
                result.family.name,
                result,
                ks=math.nan if table is None else ks_distance(table, result.family, result.theta),
                warnings=tuple(str(w.message) for w in caught),
            )
        )
    fitted = [row for row in rows if row.fit is not None and math.isfinite(row.aic)]
    best = min((row.aic for row in fitted), default=math.nan)
    total = sum(math.exp(-0.5 * (row.aic - best)) for row in fitted)
    ranked = []
    for row in rows:
        if any(row is good for good in fitted):
            delta = row.aic - best
            row = Row(row.family, row.fit, row.error, delta, math.exp(-0.5 * delta) / total, row.ks, row.warnings)
        ranked.append(row)
    ranked.sort(key=lambda row: (row.fit is None, math.isnan(row.aic), row.aic))
    noisy = [f"{row.family} ({row.warnings[0]})" for row in ranked if row.warnings]
    if noisy:
        warnings.warn(f"compare: {len(noisy)} fit(s) gave warnings: {'; '.join(noisy)}", FitWarning, stacklevel=2)
    n = next((row.fit.n for row in ranked if row.fit is not None), math.nan)
    note = ""
    if censored:
        count = float(np.sum(w[data.lower != data.upper]))
        note = f"KS omitted: censored data ({count:g} of {float(np.sum(w)):g} observations censored) have no ECDF"
    return Comparison(tuple(ranked), n, note)
