r"""Bootstrap replicates of a fit: parametric and nonparametric, seeded, with failures counted.

A replicate draws a new data set of the fit's size and fits the same family
to it, with the same parameters held fixed:

- *parametric*: :math:`x^*_1, \dots, x^*_n` drawn from the fitted
  distribution :math:`F_{\hat\theta}`, with :math:`n` the total weight;
- *nonparametric*: the data resampled with replacement. Integer weights are
  counts of identical observations, so the :math:`n` units are resampled
  (multinomial counts over the rows, with probabilities :math:`w_i / n`);
  non-integer weights (continuous data only) make the rows the units, each
  resampled row carrying its weight. Censored observations are resampled
  whole, bounds and all (a parametric bootstrap of them would need a model
  of the censoring, and is refused).

The replicates :math:`\hat\theta^*_1, \dots, \hat\theta^*_B` give percentile
intervals :math:`[q_{\alpha/2}, q_{1-\alpha/2}]` of :math:`\hat\theta^*` or of
any function :math:`g(F_{\hat\theta^*})` of the fitted distribution (mean,
quantiles), and :meth:`~nllkit.fitting.Fit.gof` uses the same machinery for
its p-values. A refit that raises, does not converge, or lands on the boundary
of the parameter space (a Poisson rate of 0 from an all-zero sample) is a
*failure*: counted, reported with its reason and left out of the
percentiles, never dropped silently.

Every draw comes from one :class:`numpy.random.Generator` in a fixed order,
so the same seed gives the same replicates, bit for bit.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from nllkit.distributions._family import Family, FloatArray, Sample
from nllkit.fitting._result import check_level, format_rows
from nllkit.fitting._warnings import FitWarning

if TYPE_CHECKING:
    from nllkit.fitting._result import Fit

__all__ = ["KINDS", "Bootstrap", "Resampled", "bootstrap", "check_n_boot", "counts_of", "replicate", "uncensored"]

#: The kinds of bootstrap.
KINDS = ("parametric", "nonparametric")

Progress = Callable[[int, int], Any]


def check_n_boot(fn: str, n_boot: Any, minimum: int = 1) -> int:
    """``n_boot`` as an int, at least ``minimum``; TypeError or ValueError otherwise."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)):
        raise TypeError(f"{fn}: n_boot must be an integer; got {n_boot!r}")
    if n_boot < minimum:
        raise ValueError(f"{fn}: n_boot must be at least {minimum}; got {n_boot!r}")
    return int(n_boot)


def counts_of(w: FloatArray) -> np.ndarray | None:
    """The weights as integer counts when they all are whole numbers (to rounding), else None."""
    counts = np.rint(w)
    if np.all(np.abs(w - counts) <= 1e-9 * np.maximum(1.0, counts)):
        return counts.astype(np.int64)
    return None


def held_params(fit: Fit) -> dict[str, float]:
    """The parameters the fit did not estimate (held by the user, or structural), at their values."""
    names = fit.family.param_names
    return {name: float(t) for name, t, free in zip(names, fit.theta, fit.free, strict=True) if not free}


def uncensored(fn: str, fit: Fit, why: str = "") -> Sample:
    """The fit's data, or ValueError for censored data, saying ``why`` they cannot be used (when given)."""
    data = fit.data
    if not isinstance(data, Sample):
        because = f" ({why})" if why else ""
        raise ValueError(
            f"{fn}: data must be uncensored{because}; got {data.censored:g} censored observations of {data.n:g}"
        )
    return data


def _drawer(fn: str, fit: Fit, kind: str) -> Callable[[np.random.Generator], tuple[Any, Any]]:
    """A function drawing one replicate data set ``(data, weights or None)`` from a generator."""
    family, theta = fit.family, fit.theta
    if kind == "parametric":
        data = uncensored(fn, fit, "a parametric bootstrap would need a model of the censoring")
        counts = counts_of(data.w)
        if counts is None:
            raise ValueError(
                f"{fn}: weights must be integer counts for a parametric bootstrap (the simulated samples "
                f"have n = total weight observations); got non-integer weights (total {data.n:g})"
            )
        n = int(counts.sum())
        return lambda rng: (np.asarray(family.sample(rng, n, *theta), dtype=float), None)
    values: Any  # the values, or a Censored of the rows
    if isinstance(fit.data, Sample):
        values, w = fit.data.x, fit.data.w
    else:
        from nllkit.fitting._censored import Censored

        # Censored rows are resampled whole, bounds and all (rows that carry no information are left out).
        lower, upper, w = fit.data.rows()
        values = Censored.from_bounds(lower, upper)
    counts = counts_of(w)
    if counts is not None:
        n = int(counts.sum())
        share = counts / n
        return lambda rng: (values, rng.multinomial(n, share))
    if family.discrete:
        raise ValueError(
            f"{fn}: weights must be integer counts for a nonparametric bootstrap of a discrete fit "
            f"(its data are stored as a value-count table); got non-integer weights (total {w.sum():g})"
        )
    rows = w.size
    even = np.full(rows, 1.0 / rows)
    return lambda rng: (values, rng.multinomial(rows, even) * w)


def _failure(result: Fit) -> str | None:
    """Why a refit cannot serve as a replicate, or None when it can."""
    if not result.converged:
        return "the refit did not converge"
    family = result.family
    for k in np.flatnonzero(result.free):
        if not family.domains[k].contains(float(result.theta[k])):
            return "the estimate is on the boundary of the parameter space"
    return None


def replicate(
    fn: str,
    fit: Fit,
    n_boot: int,
    kind: str,
    rng: np.random.Generator,
    progress: Progress | None = None,
    measure: Callable[[Fit], Any] | None = None,
) -> tuple[FloatArray, list[Any], dict[str, int]]:
    """Draw ``n_boot`` data sets, refit each, and keep the refits that succeed.

    Parameters
    ----------
    fn : str
        The caller's name, for error messages.
    fit : Fit
        The fit to replicate: its family, held parameters and data.
    n_boot : int
        The number of replicates.
    kind : {'parametric', 'nonparametric'}
    rng : numpy.random.Generator
    progress : callable, optional
        Called as ``progress(done, n_boot)`` after every replicate.
    measure : callable, optional
        Called on every successful refit; its results are returned in order.

    Returns
    -------
    thetas : ndarray, shape (n_ok, p)
        The replicate estimates.
    measured : list
        ``measure`` of each successful refit (empty without ``measure``).
    failures : dict of str to int
        Why refits failed, and how often.
    """
    from nllkit.fitting._fit import fit as refit

    draw = _drawer(fn, fit, kind)
    family, held = fit.family, held_params(fit)
    thetas: list[FloatArray] = []
    measured: list[Any] = []
    failures: Counter[str] = Counter()
    with warnings.catch_warnings():
        # Every failure is counted and reported once below, not warned about n_boot times.
        warnings.simplefilter("ignore")
        for done in range(1, n_boot + 1):
            x, w = draw(rng)
            try:
                result = refit(x, family, weights=w, fixed=held)
            except Exception as error:  # any refit that cannot be made is a failed replicate, reported below
                failures[f"{type(error).__name__}: {str(error).split(';')[0]}"] += 1
            else:
                reason = _failure(result)
                if reason is None:
                    thetas.append(result.theta)
                    if measure is not None:
                        measured.append(measure(result))
                else:
                    failures[reason] += 1
            if progress is not None:
                progress(done, n_boot)
    if not thetas:
        raise ValueError(f"{fn}: every one of the {n_boot} bootstrap refits failed ({describe_failures(failures)})")
    if failures:
        warnings.warn(
            f"{fn}: {sum(failures.values())} of {n_boot} bootstrap refits failed and are left out "
            f"({describe_failures(failures)})",
            FitWarning,
            stacklevel=4,
        )
    return np.array(thetas), measured, dict(failures)


def describe_failures(failures: Mapping[str, int]) -> str:
    """``'3 x the refit did not converge; 1 x ...'``, most frequent first."""
    return "; ".join(f"{count} x {reason}" for reason, count in sorted(failures.items(), key=lambda kv: -kv[1]))


def _percentile(values: FloatArray, level: float) -> tuple[Any, Any]:
    lo, hi = np.quantile(values, [0.5 - 0.5 * level, 0.5 + 0.5 * level], axis=0)
    return lo, hi


class Resampled:
    """What a run of bootstrap refits reports: the refits asked for, the failures, and the int seed if any."""

    def __init__(self, n_boot: int, failures: Mapping[str, int], seed: int | None) -> None:
        self.n_boot = int(n_boot)
        self.failures = dict(failures)
        self.n_failed = int(sum(self.failures.values()))
        self.seed = seed


class Bootstrap(Resampled):
    r"""Bootstrap replicates of a fit's estimates, and percentile intervals from them.

    Made by :meth:`nllkit.fitting.Fit.bootstrap`.

    Attributes
    ----------
    family : Family
        The family fitted to every replicate.
    estimate : dict of str to float
        The original fit's estimates :math:`\hat\theta`.
    samples : ndarray, shape (n_ok, p)
        The successful replicates :math:`\hat\theta^*_b`, one row each, in the
        family's parameter order (held parameters constant).
    kind : {'parametric', 'nonparametric'}
    n_boot : int
        The replicates asked for; ``n_ok + n_failed``.
    n_failed : int
        The refits that failed (raised, did not converge, or gave an estimate
        on the boundary of the parameter space); ``failures`` says why.
    failures : dict of str to int
    seed : int or None
        The seed when one was given as an integer.

    Notes
    -----
    The percentile interval at level :math:`1 - \alpha` of a quantity
    :math:`g` is :math:`[q_{\alpha/2}, q_{1-\alpha/2}]`, the empirical quantiles
    (linear interpolation) of :math:`g(F_{\hat\theta^*_b})` over the
    successful replicates. It is invariant under monotone reparametrization
    (the interval of :math:`\log\sigma` is the log of that of :math:`\sigma`);
    BCa corrections are not implemented. A :math:`1 - \alpha` interval needs
    :math:`B \gtrsim 1000` for stable ends at 95%; the standard error
    :math:`\mathrm{sd}(\hat\theta^*)` settles with a few hundred.

    Examples
    --------
    >>> import numpy as np
    >>> from nllkit.fitting import fit
    >>> x = np.random.default_rng(0).exponential(2.0, size=200)
    >>> boot = fit(x, "exponential").bootstrap(200, seed=1)
    >>> boot.samples.shape, boot.n_failed
    ((200, 1), 0)
    >>> lo, hi = boot.ci()["rate"]
    >>> bool(lo < 0.5 < hi)
    True
    >>> lo, hi = boot.ci_quantile(0.5)  # the median, log(2) / rate
    >>> bool(lo < 2.0 * np.log(2.0) < hi)
    True
    """

    def __init__(
        self,
        *,
        family: Family,
        theta: FloatArray,
        samples: FloatArray,
        kind: str,
        n_boot: int,
        failures: Mapping[str, int],
        seed: int | None,
    ) -> None:
        super().__init__(n_boot, failures, seed)
        self.family = family
        self.theta = np.asarray(theta, dtype=float)
        self.samples = np.asarray(samples, dtype=float)
        self.kind = kind

    @property
    def estimate(self) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.family.param_names, self.theta, strict=True)}

    @property
    def params(self) -> dict[str, FloatArray]:
        """The replicates of each parameter, by name (columns of ``samples``)."""
        return {name: self.samples[:, k].copy() for k, name in enumerate(self.family.param_names)}

    @property
    def se(self) -> dict[str, float]:
        r"""Bootstrap standard errors :math:`\mathrm{sd}(\hat\theta^*)` (``ddof=1``; NaN with one replicate)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # ddof=1 of a single replicate is NaN, as documented
            sd = np.std(self.samples, axis=0, ddof=1)
        return {name: float(v) for name, v in zip(self.family.param_names, sd, strict=True)}

    def ci(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Percentile intervals for every parameter (held ones are a single point).

        Parameters
        ----------
        level : float
            The confidence level, in (0, 1).

        Returns
        -------
        dict of str to (float, float)
        """
        level = check_level("Bootstrap.ci", level)
        lo, hi = _percentile(self.samples, level)
        return {name: (float(lo[k]), float(hi[k])) for k, name in enumerate(self.family.param_names)}

    def values(self, func: Callable[[Any], Any]) -> FloatArray:
        """``func`` of the fitted distribution of every replicate, stacked: shape ``(n_ok, ...)``.

        Parameters
        ----------
        func : callable
            Takes a frozen distribution (:class:`~nllkit.distributions.Frozen`:
            ``mean()``, ``var()``, ``ppf(q)``, ``cdf(x)``, ``params`` ...) and
            returns a number or an array of fixed shape.
        """
        if not callable(func):
            raise TypeError(f"Bootstrap.values: func must be callable; got {func!r}")
        from nllkit.distributions._frozen import Frozen

        return np.array([np.asarray(func(Frozen(self.family, theta)), dtype=float) for theta in self.samples])

    def ci_of(self, func: Callable[[Any], Any], level: float = 0.95) -> tuple[Any, Any]:
        """The percentile interval of a function of the fitted distribution.

        Parameters
        ----------
        func : callable
            As for :meth:`values`, e.g. ``lambda d: d.ppf(0.9)``.
        level : float
            The confidence level, in (0, 1).

        Returns
        -------
        (lower, upper)
            Floats for a scalar ``func``, arrays of its shape otherwise.
        """
        level = check_level("Bootstrap.ci_of", level)
        lo, hi = _percentile(self.values(func), level)
        return (float(lo), float(hi)) if np.ndim(lo) == 0 else (lo, hi)

    def ci_quantile(self, q: Any, level: float = 0.95) -> tuple[Any, Any]:
        """The percentile interval of the fitted distribution's ``q``-quantile(s), :math:`F^{-1}(q)`."""
        q = np.asarray(q, dtype=float)
        if not np.all((q > 0.0) & (q < 1.0)):
            raise ValueError(f"Bootstrap.ci_quantile: q must be in (0, 1); got {q.tolist()!r}")
        return self.ci_of(lambda d: d.ppf(q), level)

    def ci_mean(self, level: float = 0.95) -> tuple[float, float]:
        """The percentile interval of the fitted distribution's mean."""
        lo, hi = self.ci_of(lambda d: d.mean(), level)
        return float(lo), float(hi)

    def to_dict(self, level: float = 0.95) -> dict[str, Any]:
        """Plain Python values: the settings, estimates, standard errors and ``level`` intervals."""
        return {
            "family": self.family.name,
            "kind": self.kind,
            "n_boot": self.n_boot,
            "n_failed": self.n_failed,
            "failures": self.failures,
            "seed": self.seed,
            "level": level,
            "params": self.estimate,
            "se": self.se,
            "ci": {name: list(ends) for name, ends in self.ci(level).items()},
        }

    def __str__(self) -> str:
        ci, se = self.ci(), self.se
        rows = [("parameter", "estimate", "bootstrap SE", "95% CI (percentile)")]
        for name, value in self.estimate.items():
            lo, hi = ci[name]
            rows.append((name, f"{value:.6g}", f"{se[name]:.4g}", f"[{lo:.6g}, {hi:.6g}]"))
        lines = [f"{self.family.name}: {self.kind} bootstrap, {self.n_boot} refits", *format_rows(rows)]
        if self.failures:
            lines.append(f"{self.n_failed} failed: {describe_failures(self.failures)}")
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self) -> str:
        return (
            f"<Bootstrap {self.family.name} {self.kind}, n_boot={self.n_boot}, n_failed={self.n_failed}, "
            f"seed={self.seed}>"
        )


def bootstrap(
    fit: Fit,
    n_boot: int = 999,
    *,
    kind: str = "parametric",
    seed: Any = None,
    progress: Progress | None = None,
) -> Bootstrap:
    """The bootstrap of ``fit``; see :meth:`nllkit.fitting.Fit.bootstrap`."""
    fn = "Fit.bootstrap"
    n_boot = check_n_boot(fn, n_boot)
    if kind not in KINDS:
        raise ValueError(f"{fn}: kind must be one of {', '.join(map(repr, KINDS))}; got {kind!r}")
    rng = np.random.default_rng(seed)
    thetas, _, failures = replicate(fn, fit, n_boot, kind, rng, progress)
    return Bootstrap(
        family=fit.family,
        theta=fit.theta,
        samples=thetas,
        kind=kind,
        n_boot=n_boot,
        failures=failures,
        seed=seed_label(seed),
    )


def seed_label(seed: Any) -> int | None:
    """The seed as an int when it is one (for reports and caches), else None."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(seed)
    return None
