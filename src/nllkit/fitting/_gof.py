r"""Goodness of fit: EDF statistics and chi-square, with p-values by parametric bootstrap.

With :math:`u_i = F_{\hat\theta}(x_{(i)})` at the sorted data, the continuous
statistics are those of :func:`scipy.stats.goodness_of_fit`:

.. math::
   D = \sup_x |F_n(x) - F_{\hat\theta}(x)|, \qquad
   W^2 = \frac{1}{12n} + \sum_{i=1}^n \Bigl(u_i - \frac{2i-1}{2n}\Bigr)^2, \qquad
   A^2 = -n - \sum_{i=1}^n \frac{2i-1}{n}\bigl[\log u_i + \log(1 - u_{n+1-i})\bigr].

For discrete families they are the discrete analogues of Choulakian, Lockhart
and Stephens (1994) over the support points :math:`j` (from the lower end of
the support to past the data and the :math:`1 - 10^{-12}` quantile), with
model probabilities :math:`p_j`, model CDF :math:`H_j` and the ECDF
:math:`S_j`, :math:`z_j = S_j - H_j`:

.. math::
   W^2 = n \sum_j z_j^2\, p_j, \qquad
   A^2 = n \sum_{j:\, 0 < H_j < 1} \frac{z_j^2\, p_j}{H_j (1 - H_j)},

:math:`D` is the same supremum (the ECDF is a step function on the
integers), and the chi-square statistic is
:math:`X^2 = \sum_b (O_b - E_b)^2 / E_b` over bins of adjacent support points
merged from the left until each expected count :math:`E_b \ge 5` (the
last bin takes the upper tail), with :math:`\mathrm{df} = \text{bins} - 1 - k`
for its asymptotic p-value.

The estimated parameters make the textbook null distributions wrong (too
conservative: the fitted CDF is closer to the data than the true one). The
p-values here come from a parametric bootstrap, as in
``scipy.stats.goodness_of_fit`` with ``fit_params``: ``n_boot`` samples of
size :math:`n` from :math:`F_{\hat\theta}`, each refitted with the same family
and the same held parameters, give the null distribution of each statistic,
and :math:`p = (1 + \#\{T^*_b \ge T\}) / (1 + B)`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from nllkit.distributions._family import Family, FloatArray, Sample
from nllkit.fitting._bootstrap import (
    Progress,
    Resampled,
    check_n_boot,
    counts_of,
    describe_failures,
    replicate,
    seed_label,
    uncensored,
)
from nllkit.fitting._compare import ks_distance
from nllkit.fitting._result import format_rows

if TYPE_CHECKING:
    from nllkit.fitting._result import Fit

__all__ = ["NAMES", "GoodnessOfFit", "gof", "statistics"]

#: Statistic keys and their names in tables.
NAMES = {"ks": "Kolmogorov-Smirnov", "cvm": "Cramer-von Mises", "ad": "Anderson-Darling", "chi2": "chi-square"}

#: The smallest expected count of a chi-square bin.
MIN_EXPECTED = 5.0
#: How far past the data the discrete statistics sum: to the 1 - TAIL quantile, at most MAX_CELLS further.
_TAIL = 1e-12
_MAX_CELLS = 2**20


def _continuous(family: Family, theta: FloatArray, data: Sample) -> dict[str, float]:
    counts = counts_of(data.w)
    assert counts is not None  # checked by gof()
    x = np.sort(np.repeat(data.x, counts))
    n = x.size
    i = np.arange(1.0, n + 1.0)
    u = np.asarray(family.cdf(x, *theta), dtype=float)
    with np.errstate(divide="ignore"):
        # Far in a tail the cdf or sf rounds to 0 and A^2 is +inf: the data are impossible under the fit.
        log_cdf = np.log(u)
        log_sf = np.log(np.asarray(family.sf(x, *theta), dtype=float))
    return {
        "ks": ks_distance(Sample(x, np.ones(n)), family, theta),
        "cvm": float(1.0 / (12.0 * n) + np.sum((u - (2.0 * i - 1.0) / (2.0 * n)) ** 2)),
        "ad": float(-n - np.sum((2.0 * i - 1.0) / n * (log_cdf + log_sf[::-1]))),
    }


def _grid(family: Family, theta: FloatArray, table: Sample) -> FloatArray:
    """The support points the discrete statistics sum over."""
    low, high = float(table.x[0]), float(table.x[-1])
    lower = family.support.lower
    low = lower if math.isfinite(lower) else min(low, float(family.ppf(_TAIL, *theta)))
    tail = float(family.ppf(1.0 - _TAIL, *theta))
    high = min(max(high, tail if math.isfinite(tail) else high), high + _MAX_CELLS, family.support.upper)
    return np.arange(low, high + 1.0)


def _chi_square(expected: FloatArray, observed: FloatArray, n: float, k: int) -> tuple[float, int, int]:
    """The statistic, its degrees of freedom and the number of bins (``expected`` per support point)."""
    starts = [0]
    total = 0.0
    for j, e in enumerate(expected[:-1]):
        total += e
        if total >= MIN_EXPECTED:
            starts.append(j + 1)
            total = 0.0
    # The last bin runs to the end of the support; too small, it joins the bin before it.
    if len(starts) > 1 and n - float(np.sum(expected[: starts[-1]])) < MIN_EXPECTED:
        starts.pop()
    e_bins = np.add.reduceat(expected, starts)
    e_bins[-1] = n - float(np.sum(e_bins[:-1]))  # with the mass beyond the grid
    o_bins = np.add.reduceat(observed, starts)
    statistic = float(np.sum((o_bins - e_bins) ** 2 / e_bins))
    return statistic, len(starts) - 1 - k, len(starts)


def _discrete(family: Family, theta: FloatArray, table: Sample, k: int) -> tuple[dict[str, float], int, int]:
    grid = _grid(family, theta, table)
    n = table.n
    observed = np.zeros(grid.size)
    np.add.at(observed, (table.x - grid[0]).astype(np.intp), table.w)
    ecdf = np.cumsum(observed) / n
    model = np.asarray(family.cdf(grid, *theta), dtype=float)
    mass = np.exp(np.asarray(family.logpdf(grid, *theta), dtype=float))
    z2p = (ecdf - model) ** 2 * mass
    inner = (model > 0.0) & (model < 1.0)
    chi2, df, bins = _chi_square(n * mass, observed, n, k)
    values = {
        "ks": ks_distance(table, family, theta),
        "cvm": float(n * np.sum(z2p)),
        "ad": float(n * np.sum(z2p[inner] / (model[inner] * (1.0 - model[inner])))),
        "chi2": chi2,
    }
    return values, df, bins


def statistics(family: Family, theta: FloatArray, data: Sample, k: int) -> tuple[dict[str, float], int, int]:
    """The statistics of ``data`` against the family at ``theta``, and the chi-square's df and bins.

    Parameters
    ----------
    family : Family
    theta : ndarray
    data : Sample
        Integer weights (counts); for a discrete family, a sorted table of distinct values.
    k : int
        The number of estimated parameters (for the chi-square's degrees of freedom).

    Returns
    -------
    values : dict of str to float
        ``'ks'``, ``'cvm'``, ``'ad'``, and ``'chi2'`` for a discrete family.
    df, bins : int
        The chi-square's degrees of freedom and number of bins (0, 0 for a continuous family).
    """
    if family.discrete:
        return _discrete(family, theta, data, k)
    return _continuous(family, theta, data), 0, 0


def _measure(result: Fit) -> dict[str, float]:
    return statistics(result.family, result.theta, result.data, result.k)[0]


class GoodnessOfFit(Resampled):
    r"""Goodness-of-fit statistics of a fit, with bootstrap p-values; made by :meth:`nllkit.fitting.Fit.gof`.

    Attributes
    ----------
    family : str
        The family's name.
    n : float
        The sample size (total weight).
    k : int
        The number of estimated parameters.
    statistic : dict of str to float
        ``'ks'`` (Kolmogorov-Smirnov :math:`D`), ``'cvm'`` (Cramer-von Mises
        :math:`W^2`), ``'ad'`` (Anderson-Darling :math:`A^2`), and for a
        discrete family ``'chi2'`` (:math:`X^2`).
    pvalue : dict of str to float
        Parametric-bootstrap p-values :math:`(1 + \#\{T^*_b \ge T\}) / (1 + B)`
        over the :math:`B` successful refits (NaN with ``n_boot=0``).
    null : dict of str to ndarray
        The bootstrap null distribution of each statistic.
    chi2_df, chi2_bins : int
        The chi-square's degrees of freedom (bins - 1 - k) and number of bins.
    chi2_pvalue_asymptotic : float
        :math:`P(\chi^2_{\mathrm{df}} \ge X^2)`, NaN when ``df < 1``.
    n_boot, n_failed : int
        The refits asked for and those that failed (``failures`` says why).
    failures : dict of str to int
    seed : int or None
    """

    def __init__(
        self,
        *,
        family: str,
        n: float,
        k: int,
        statistic: Mapping[str, float],
        null: Mapping[str, FloatArray],
        chi2_df: int,
        chi2_bins: int,
        n_boot: int,
        failures: Mapping[str, int],
        seed: int | None,
    ) -> None:
        super().__init__(n_boot, failures, seed)
        self.family = family
        self.n = float(n)
        self.k = int(k)
        self.statistic = dict(statistic)
        self.null = {key: np.asarray(values, dtype=float) for key, values in null.items()}
        self.chi2_df = int(chi2_df)
        self.chi2_bins = int(chi2_bins)
        self.pvalue = {key: _pvalue(value, self.null.get(key)) for key, value in self.statistic.items()}
        chi2 = self.statistic.get("chi2", math.nan)
        self.chi2_pvalue_asymptotic = float(stats.chi2.sf(chi2, self.chi2_df)) if self.chi2_df >= 1 else math.nan

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (``json.dumps`` takes it; NaN stays NaN); the null distributions are left out."""
        out: dict[str, Any] = {
            "family": self.family,
            "n": self.n,
            "k": self.k,
            "statistic": self.statistic,
            "pvalue": self.pvalue,
            "method": "parametric bootstrap" if self.n_boot else "none",
            "n_boot": self.n_boot,
            "n_failed": self.n_failed,
            "failures": self.failures,
            "seed": self.seed,
        }
        if "chi2" in self.statistic:
            out["chi2_df"] = self.chi2_df
            out["chi2_bins"] = self.chi2_bins
            out["chi2_pvalue_asymptotic"] = self.chi2_pvalue_asymptotic
        return out

    def __str__(self) -> str:
        rows = [("statistic", "value", "p-value")]
        for key, value in self.statistic.items():
            rows.append((NAMES[key], f"{value:.4g}", f"{self.pvalue[key]:.3g}"))
        lines = [f"Goodness of fit of {self.family} (n = {self.n:g}, k = {self.k})", *format_rows(rows)]
        if "chi2" in self.statistic:
            lines[-1] += f"  ({self.chi2_bins} bins, df {self.chi2_df}, asymptotic p {self.chi2_pvalue_asymptotic:.3g})"
        if self.n_boot:
            seed = "" if self.seed is None else f", seed {self.seed}"
            lines.append(
                f"p-values: parametric bootstrap, {self.n_boot} refits with re-estimated parameters "
                f"({self.n_failed} failed{': ' + describe_failures(self.failures) if self.failures else ''}){seed}"
            )
        else:
            lines.append("p-values: not computed (n_boot=0)")
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self) -> str:
        values = ", ".join(f"{key}={value:.4g} (p={self.pvalue[key]:.3g})" for key, value in self.statistic.items())
        return f"<GoodnessOfFit {self.family}: {values}>"


def _pvalue(observed: float, null: FloatArray | None) -> float:
    if null is None or null.size == 0 or math.isnan(observed):
        return math.nan
    # As scipy's monte_carlo_test: a null value equal to the observed one up to rounding counts as exceeding it.
    # The absolute part is for a saturated model (Bernoulli, categorical), whose statistics are 0 up to rounding.
    slack = 1e-12 + abs(observed) * 4.0 * np.finfo(float).eps if math.isfinite(observed) else 0.0
    return float((1 + np.count_nonzero(null >= observed - slack)) / (1 + null.size))


def gof(fit: Fit, n_boot: int = 199, *, seed: Any = None, progress: Progress | None = None) -> GoodnessOfFit:
    """The goodness of fit of ``fit``; see :meth:`nllkit.fitting.Fit.gof`."""
    fn = "Fit.gof"
    n_boot = check_n_boot(fn, n_boot, minimum=0)
    data = uncensored(fn, fit, "the statistics compare the fitted CDF with the ECDF of exact values")
    if counts_of(data.w) is None:
        raise ValueError(
            f"{fn}: weights must be integer counts (the statistics compare the ECDF of n observations "
            f"with the fitted CDF); got non-integer weights (total {data.n:g})"
        )
    if fit.family.discrete and not fit.family.support.integer:
        raise ValueError(f"{fn}: a discrete family must live on the integers; got {fit.family.support.describe()}")
    observed, df, bins = statistics(fit.family, fit.theta, data, fit.k)
    null: dict[str, FloatArray] = {}
    failures: dict[str, int] = {}
    if n_boot:
        _, measured, failures = replicate(
            fn, fit, n_boot, "parametric", np.random.default_rng(seed), progress, measure=_measure
        )
        null = {key: np.array([m[key] for m in measured]) for key in observed}
    return GoodnessOfFit(
        family=fit.family.name,
        n=fit.n,
        k=fit.k,
        statistic=observed,
        null=null,
        chi2_df=df,
        chi2_bins=bins,
        n_boot=n_boot,
        failures=failures,
        seed=seed_label(seed),
    )
