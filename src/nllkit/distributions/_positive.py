"""Families on the positive half-line: lognormal, exponential, gamma and Weibull.

None has a free location (the classic trap of a three-parameter fit); a shifted
law is a different family. Each has a closed-form or one-dimensional MLE:
the lognormal and exponential ones in closed form, the gamma shape from the
additive statistics :math:`(n, \\sum x, \\sum \\log x)` by a 1-D Newton solve,
and the Weibull shape from its profile-likelihood equation, a 1-D solve over
the data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from scipy import special

from nllkit.distributions._continuous import (
    MemoFamily,
    SufficientStatistics,
    log1mexp,
    log_sample,
    piecewise,
    unit_quantile,
)
from nllkit.distributions._family import POSITIVE, REAL, Family, FloatArray, Sample, Support
from nllkit.distributions._normal import normal

_EULER_GAMMA = 0.5772156649015329
_POSITIVE_REALS = Support(0.0, math.inf, lower_open=True, upper_open=True)


def _solve_monotone(
    fun: Callable[[float], tuple[float, float]], y: float, tol: float = 1e-13, limit: float = 60.0
) -> float | None:
    """The root of a monotone ``fun`` (returning value and slope) by bracketed Newton steps.

    Newton steps are capped in length and replaced by bisection when they leave
    the bracket of sign changes found so far, so the solve cannot diverge;
    None when the root lies beyond ``|y| <= limit`` (the MLE does not exist) or
    is not found.
    """
    lo, hi = -limit, limit
    if not lo < y < hi:
        return None
    for _ in range(200):
        f, slope = fun(y)
        if not (math.isfinite(f) and math.isfinite(slope)) or slope == 0.0:
            return None
        if f == 0.0:
            return y
        if (f > 0.0) == (slope > 0.0):
            hi = y
        else:
            lo = y
        new = y - max(-8.0, min(8.0, f / slope))
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if abs(new - y) <= tol * max(1.0, abs(y)):
            return None if abs(new) >= limit * (1.0 - 1e-9) else new
        y = new
    return None


class LogNormal(MemoFamily):
    r"""Log-normal distribution: :math:`\log X` is normal with mean ``mu`` and standard deviation ``sigma``.

    .. math:: \log f(x) = -\log x - \log\sigma - \tfrac12\log 2\pi - \tfrac12 z^2,
       \qquad z = (\log x - \mu)/\sigma

    The NLL, its derivatives and the closed-form MLE are those of the normal
    family on :math:`\log x` (sufficient statistics :math:`n, \sum\log x,
    \sum\log^2 x`), the NLL shifted by :math:`\sum \log x`. Multiplying the data
    by :math:`s` adds :math:`\log s` to ``mu``.

    Examples
    --------
    >>> from nllkit.distributions._positive import lognormal
    >>> round(float(lognormal.logpdf(1e-30, 0.0, 1.0)), 6)
    -2317.695535
    """

    name: ClassVar[str] = "lognormal"
    param_names: ClassVar[tuple[str, ...]] = ("mu", "sigma")
    domains = (REAL, POSITIVE)
    support = _POSITIVE_REALS

    def logpdf(self, x: Any, *theta: Any) -> FloatArray:
        mu, sigma = theta
        return piecewise(
            x, lambda v: normal.logpdf(np.log(v), mu, sigma) - np.log(v), -np.inf, -np.inf, open_lower=True
        )

    def nll_grad(self, theta: FloatArray, sample: Sample) -> tuple[float, FloatArray]:
        logs = log_sample(self, sample)
        value, grad = normal.nll_grad(theta, logs)
        return value + logs.sum(logs.x), grad

    def nll_hess(self, theta: FloatArray, sample: Sample) -> FloatArray:
        return normal.nll_hess(theta, log_sample(self, sample))

    def mle(self, sample: Sample) -> FloatArray | None:
        mu, sigma = normal.mle(log_sample(self, sample))
        return np.array([mu, sigma]) if sigma > 0.0 else None

    def start(self, sample: Sample) -> FloatArray:
        return normal.start(log_sample(self, sample))

    def rescale(self, theta: FloatArray, s: float) -> FloatArray:
        return np.array([theta[0] + math.log(s), theta[1]])

    def cdf(self, x: Any, *theta: Any) -> FloatArray:
        mu, sigma = theta
        return piecewise(x, lambda v: special.ndtr((np.log(v) - mu) / sigma), 0.0, 1.0)

    def sf(self, x: Any, *theta: Any) -> FloatArray:
        mu, sigma = theta
        return piecewise(x, lambda v: special.ndtr((mu - np.log(v)) / sigma), 1.0, 0.0)

    def logcdf(self, x: Any, *theta: Any) -> FloatArray:
        return piecewise(x, lambda v: normal.logcdf(np.log(v), *theta), -np.inf, 0.0, open_lower=True)

    def logsf(self, x: Any, *theta: Any) -> FloatArray:
        return piecewise(x, lambda v: normal.logsf(np.log(v), *theta), 0.0, -np.inf, open_lower=True)

    def ppf(self, q: Any, *theta: Any) -> FloatArray:
        return np.exp(normal.ppf(q, *theta))

    def mean(self, *theta: Any) -> FloatArray:
        mu, sigma = np.asarray(theta[0], dtype=float), np.asarray(theta[1], dtype=float)
        return np.exp(mu + 0.5 * sigma**2)

    def var(self, *theta: Any) -> FloatArray:
        mu, sigma = np.asarray(theta[0], dtype=float), np.asarray(theta[1], dtype=float)
        return np.expm1(sigma**2) * np.exp(2.0 * mu + sigma**2)

    def sample(self, rng: np.random.Generator, size: Any, *theta: Any) -> FloatArray:
        return rng.lognormal(theta[0], theta[1], size=size)


class Exponential(Family):
    r"""Exponential distribution with rate :math:`\lambda` (mean :math:`1/\lambda`).

    .. math:: \log f(x) = \log\lambda - \lambda x, \quad x \ge 0;
       \qquad \hat\lambda = n / \textstyle\sum x

    Examples
    --------
    >>> from nllkit.distributions._positive import exponential
    >>> float(exponential.logpdf(2.0, 0.5))
    -1.6931471805599454
    """

    name: ClassVar[str] = "exponential"
    param_names: ClassVar[tuple[str, ...]] = ("rate",)
    domains = (POSITIVE,)
    support = Support(0.0, math.inf, upper_open=True)
    scale_powers = (-1,)

    def logpdf(self, x: Any, *theta: Any) -> FloatArray:
        (rate,) = theta
        return piecewise(x, lambda v: np.log(rate) - rate * v, -np.inf, -np.inf)

    def nll_grad(self, theta: FloatArray, sample: Sample) -> tuple[float, FloatArray]:
        (rate,) = theta
        total = sample.sum(sample.x)
        return rate * total - sample.n * math.log(rate), np.array([total - sample.n / rate])

    def nll_hess(self, theta: FloatArray, sample: Sample) -> FloatArray:
        return np.array([[sample.n / theta[0] ** 2]])

    def mle(self, sample: Sample) -> FloatArray | None:
        total = sample.sum(sample.x)
        return np.array([sample.n / total]) if total > 0.0 else None

    def start(self, sample: Sample) -> FloatArray:
        estimate = self.mle(sample)
        return np.array([1.0]) if estimate is None else estimate

    def cdf(self, x: Any, *theta: Any) -> FloatArray:
        return piecewise(x, lambda v: -np.expm1(-theta[0] * v), 0.0, 1.0)

    def sf(self, x: Any, *theta: Any) -> FloatArray:
        return piecewise(x, lambda v: np.exp(-theta[0] * v), 1.0, 0.0)

    def logcdf(self, x: Any, *theta: Any) -> FloatArray:
        return piecewise(x, lambda v: log1mexp(-theta[0] * v), -np.inf, 0.0)

    def logsf(self, x: Any, *theta: Any) -> FloatArray:
        return piecewise(x, lambda v: -theta[0] * v, 0.0, -np.inf)

    def ppf(self, q: Any, *theta: Any) -> FloatArray:
        return unit_quantile(q, lambda p: -np.log1p(-p) / theta[0])

    def mean(self, *theta: Any) -> FloatArray:
        return 1.0 / np.asarray(theta[0], dtype=float)

    def var(self, *theta: Any) -> FloatArray:
        return 1.0 / np.asarray(theta[0], dtype=float) ** 2

    def sample(self, rng: np.random.Generator, size: Any, *theta: Any) -> FloatArray:
        return rng.exponential(1.0 / np.asarray(theta[0], dtype=float), size=size)


class Gamma(SufficientStatistics):
    r"""Gamma distribution with shape :math:`a` and scale :math:`\theta` (mean :math:`a\theta`).

    .. math:: \log f(x) = (a-1)\log x - x/\theta - \log\Gamma(a) - a\log\theta

    The NLL and its derivatives depend on the data only through the additive
    statistics :math:`(n, \sum x, \sum\log x)`. The MLE solves
    :math:`\log a - \psi(a) = \log\bar x - \overline{\log x}` for the shape by
    Newton's method from Minka's approximation, then :math:`\hat\theta = \bar x/\hat a`.
    Data must be positive: a zero makes :math:`\sum\log x = -\infty`.

    Examples
    --------
    >>> from nllkit.distributions._positive import gamma
    >>> round(float(gamma.logpdf(300.0, 200.0, 1.0)), 6)
    -22.880957
    """

    mle_how = "maximum-likelihood estimate from a one-dimensional solve of the likelihood equations"
    name: ClassVar[str] = "gamma"
    param_names: ClassVar[tuple[str, ...]] = ("shape", "scale")
    domains = (POSITIVE, POSITIVE)
    support = _POSITIVE_REALS
    scale_powers = (0, 1)

    def logpdf(self, x: Any, *theta: Any) -> FloatArray:
        a, scale = theta
        return piecewise(
            x,
            lambda v: special.xlogy(a - 1.0, v) - v / scale - special.gammaln(a) - a * np.log(scale),
            -np.inf,
            -np.inf,
        )

    @staticmethod
    def stats(sample: Sample) -> tuple[float, float, float]:
        """The additive sufficient statistics :math:`(n, \\sum w x, \\sum w \\log x)`."""
        return sample.n, sample.sum(sample.x), sample.sum(np.log(sample.x))

    @staticmethod
    def _derivatives(theta: FloatArray, stats: tuple[float, float, float]) -> tuple[float, FloatArray, FloatArray]:
        a, scale = theta
        n, sx, slog = stats
        log_scale = math.log(scale)
        value = sx / scale - (a - 1.0) * slog + n * (special.gammaln(a) + a * log_scale)
        grad = np.array([n * (special.digamma(a) + log_scale) - slog, n * a / scale - sx / scale**2])
        cross = n / scale
        hess = np.array([[n * special.polygamma(1, a), cross], [cross, 2.0 * sx / scale**3 - n * a / scale**2]])
        return float(value), grad, hess

    def mle(self, sample: Sample) -> FloatArray | None:
        return self.mle_from_stats(self.sample_stats(sample))

    @staticmethod
    def mle_from_stats(stats: tuple[float, float, float]) -> FloatArray | None:
        """The MLE from :meth:`stats` (which may be summed over chunks); None if it does not exist."""
        n, sx, slog = stats
        mean = sx / n
        s = math.log(mean) - slog / n  # >= 0 by Jensen, 0 only for constant data
        if not s > 0.0:
            return None
        # Minka (2002), "Estimating a gamma distribution": within 1.5% of the root.
        a0 = (3.0 - s + math.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)

        def equation(y: float) -> tuple[float, float]:
            a = math.exp(y)
            return y - float(special.digamma(a)) - s, 1.0 - a * float(special.polygamma(1, a))

        y = _solve_monotone(equation, math.log(a0))
        if y is None:
            return None
        a = math.exp(y)
        return np.array([a, mean / a])

    def start(self, sample: Sample) -> FloatArray:
        """The MLE when it exists, else the method of moments (shape at most 1e10)."""
        estimate = self.mle(sample)
        if estimate is not None:
            return estimate
        mean = sample.mean(sample.x)
        var = sample.mean((sample.x - mean) ** 2)
        shape = min(mean * mean / var, 1e10) if var > 0.0 else 1.0
        return np.array([shape, mean / shape])

    def cdf(self, x: Any, *theta: Any) -> FloatArray:
        return piecewise(x, lambda v: special.gammainc(theta[0], v / theta[1]), 0.0, 1.0)

    def sf(self, x: Any, *theta: Any) -> FloatArray:
        return piecewise(x, lambda v: special.gammaincc(theta[0], v / theta[1]), 1.0, 0.0)

    def ppf(self, q: Any, *theta: Any) -> FloatArray:
        return unit_quantile(q, lambda p: theta[1] * special.gammaincinv(theta[0], p))

    def mean(self, *theta: Any) -> FloatArray:
        return np.asarray(theta[0], dtype=float) * theta[1]

    def var(self, *theta: Any) -> FloatArray:
        return np.asarray(theta[0], dtype=float) * np.asarray(theta[1], dtype=float) ** 2

    def sample(self, rng: np.random.Generator, size: Any, *theta: Any) -> FloatArray:
        return rng.gamma(theta[0], theta[1], size=size)


class Weibull(MemoFamily):
    r"""Weibull distribution with shape :math:`k` and scale :math:`\lambda` (no location).

    .. math:: \log f(x) = \log k - \log\lambda + (k-1)\log(x/\lambda) - (x/\lambda)^k

    For a given shape the scale's MLE is :math:`\hat\lambda^k = \overline{x^k}`,
    so the MLE solves the profile equation

    .. math:: g(k) = \frac{\sum w x^k \log x}{\sum w x^k} - \frac1k - \overline{\log x} = 0,

    whose left side increases with :math:`k` (its slope is a variance plus
    :math:`1/k^2`): a safeguarded Newton solve on :math:`\log k` from the start
    finds the unique root. The start uses that :math:`\log X` is Gumbel
    (minimum) with standard deviation :math:`\pi/(k\sqrt6)` and mean
    :math:`\log\lambda - \gamma_E/k`.

    Examples
    --------
    >>> from nllkit.distributions._positive import weibull
    >>> float(weibull.logpdf(1.0, 1.0, 1.0))
    -1.0
    """

    mle_how = "maximum-likelihood estimate from a one-dimensional solve of the likelihood equations"
    name: ClassVar[str] = "weibull"
    param_names: ClassVar[tuple[str, ...]] = ("shape", "scale")
    domains = (POSITIVE, POSITIVE)
    support = _POSITIVE_REALS
    scale_powers = (0, 1)

    def logpdf(self, x: Any, *theta: Any) -> FloatArray:
        k, scale = theta

        def inside(v: FloatArray) -> FloatArray:
            r = v / scale
            return np.log(k) - np.log(scale) + special.xlogy(k - 1.0, r) - r**k

        return piecewise(x, inside, -np.inf, -np.inf)

    def _terms(self, theta: FloatArray, sample: Sample) -> tuple[FloatArray, FloatArray, FloatArray]:
        """:math:`t = \\log(x/\\lambda)`, :math:`u = (x/\\lambda)^k` and :math:`t u` per value."""

        def compute() -> tuple[FloatArray, FloatArray, FloatArray]:
            k, scale = theta
            t = log_sample(self, sample).x - math.log(scale)
            with np.errstate(over="ignore", invalid="ignore"):
                u = np.exp(k * t)
                return t, u, t * u

        return self.at(theta, sample, compute)

    def nll_grad(self, theta: FloatArray, sample: Sample) -> tuple[float, FloatArray]:
        k, scale = theta
        t, u, tu = self._terms(theta, sample)
        n, st, su = sample.n, sample.sum(t), sample.sum(u)
        value = su - (k - 1.0) * st + n * (math.log(scale) - math.log(k))
        return value, np.array([sample.sum(tu) - st - n / k, k * (n - su) / scale])

    def nll_hess(self, theta: FloatArray, sample: Sample) -> FloatArray:
        k, scale = theta
        t, u, tu = self._terms(theta, sample)
        n, su, stu = sample.n, sample.sum(u), sample.sum(tu)
        cross = (n - su - k * stu) / scale
        return np.array([[n / k**2 + sample.sum(t * tu), cross], [cross, k * ((k + 1.0) * su - n) / scale**2]])

    @staticmethod
    def _gumbel_start(logs: Sample) -> tuple[float, float, float]:
        """Shape and log scale from the mean and sd of the log data ``logs``, and that mean."""
        mean_log, sd_log = normal.mle(logs)
        k = math.pi / (math.sqrt(6.0) * sd_log) if sd_log > 0.0 else 100.0  # constant data: a narrow law
        k = min(max(k, 1e-3), 1e6)
        return k, mean_log + _EULER_GAMMA / k, mean_log

    def mle(self, sample: Sample) -> FloatArray | None:
        logs = log_sample(self, sample)
        k0, _, mean_log = self._gumbel_start(logs)
        c = logs.x - mean_log
        top = float(np.max(c))

        def tilted(k: float) -> Sample:
            """The sample reweighted by x^k, up to a common factor (which cancels, and keeps exp finite)."""
            return Sample(c, sample.w * np.exp(k * (c - top)))

        def equation(y: float) -> tuple[float, float]:
            k = math.exp(y)
            weighted = tilted(k)
            m1 = weighted.mean(c)
            return m1 - 1.0 / k, k * weighted.mean((c - m1) ** 2) + 1.0 / k

        y = _solve_monotone(equation, math.log(k0), limit=math.log(1e12))
        if y is None:
            return None
        k = math.exp(y)
        log_scale = mean_log + top + math.log(tilted(k).n / sample.n) / k
        return np.array([k, math.exp(log_scale)])

    def start(self, sample: Sample) -> FloatArray:
        k, log_scale, _ = self._gumbel_start(log_sample(self, sample))
        return np.array([k, math.exp(log_scale)])

    def cdf(self, x: Any, *theta: Any) -> FloatArray:
        return piecewise(x, lambda v: -np.expm1(-((v / theta[1]) ** theta[0])), 0.0, 1.0)

    def sf(self, x: Any, *theta: Any) -> FloatArray:
        return piecewise(x, lambda v: np.exp(-((v / theta[1]) ** theta[0])), 1.0, 0.0)

    def logcdf(self, x: Any, *theta: Any) -> FloatArray:
        return piecewise(x, lambda v: log1mexp(-((v / theta[1]) ** theta[0])), -np.inf, 0.0)

    def logsf(self, x: Any, *theta: Any) -> FloatArray:
        return piecewise(x, lambda v: -((v / theta[1]) ** theta[0]), 0.0, -np.inf)

    def ppf(self, q: Any, *theta: Any) -> FloatArray:
        return unit_quantile(q, lambda p: theta[1] * (-np.log1p(-p)) ** (1.0 / np.asarray(theta[0], dtype=float)))

    def mean(self, *theta: Any) -> FloatArray:
        return theta[1] * special.gamma(1.0 + 1.0 / np.asarray(theta[0], dtype=float))

    def var(self, *theta: Any) -> FloatArray:
        k, scale = np.asarray(theta[0], dtype=float), np.asarray(theta[1], dtype=float)
        g1 = special.gamma(1.0 + 1.0 / k)
        return scale**2 * (special.gamma(1.0 + 2.0 / k) - g1 * g1)

    def sample(self, rng: np.random.Generator, size: Any, *theta: Any) -> FloatArray:
        return theta[1] * rng.weibull(theta[0], size=size)


lognormal = LogNormal()
exponential = Exponential()
gamma = Gamma()
weibull = Weibull()
