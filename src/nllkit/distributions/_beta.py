"""The beta family on the unit interval."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from scipy import special

from nllkit.distributions._continuous import SufficientStatistics, piecewise, unit_quantile
from nllkit.distributions._family import POSITIVE, FloatArray, Sample, Support, log_of_smaller

BetaStats = tuple[float, float, float]


class Beta(SufficientStatistics):
    r"""Beta distribution with shape parameters :math:`a, b` on the open interval (0, 1).

    .. math:: \log f(x) = (a-1)\log x + (b-1)\log(1-x) - \log B(a, b)

    The NLL depends on the data only through the additive statistics
    :math:`(n, \sum\log x, \sum\log(1-x))`, and it is convex in :math:`(a, b)`
    with Hessian

    .. math:: n\begin{pmatrix}\psi'(a) - \psi'(a+b) & -\psi'(a+b)\\
              -\psi'(a+b) & \psi'(b) - \psi'(a+b)\end{pmatrix},

    so :meth:`mle` runs a damped Newton iteration on those three numbers
    (:meth:`mle_from_stats`); it costs one pass over the data. Data must lie
    strictly inside (0, 1): a 0 or a 1 makes the likelihood unbounded.

    Examples
    --------
    >>> from nllkit.distributions._beta import beta
    >>> round(float(beta.logpdf(0.5, 400.0, 400.0)), 6)
    3.116202
    """

    mle_how = "maximum-likelihood estimate by Newton's method on the sufficient statistics"
    name: ClassVar[str] = "beta"
    param_names: ClassVar[tuple[str, ...]] = ("a", "b")
    domains = (POSITIVE, POSITIVE)
    support = Support(0.0, 1.0, lower_open=True, upper_open=True)

    def logpdf(self, x: Any, *theta: Any) -> FloatArray:
        a, b = theta
        return piecewise(
            x,
            lambda v: special.xlogy(a - 1.0, v) + special.xlog1py(b - 1.0, -v) - special.betaln(a, b),
            -np.inf,
            -np.inf,
            upper=1.0,
        )

    @staticmethod
    def stats(sample: Sample) -> BetaStats:
        """The additive sufficient statistics :math:`(n, \\sum w\\log x, \\sum w\\log(1-x))`."""
        return sample.n, sample.sum(np.log(sample.x)), sample.sum(np.log1p(-sample.x))

    @staticmethod
    def _derivatives(theta: FloatArray, stats: BetaStats) -> tuple[float, FloatArray, FloatArray]:
        a, b = theta
        n, s0, s1 = stats
        value = n * special.betaln(a, b) - (a - 1.0) * s0 - (b - 1.0) * s1
        psi_ab = special.digamma(a + b)
        grad = np.array([n * (special.digamma(a) - psi_ab) - s0, n * (special.digamma(b) - psi_ab) - s1])
        tri_ab = special.polygamma(1, a + b)
        hess = n * np.array([[special.polygamma(1, a) - tri_ab, -tri_ab], [-tri_ab, special.polygamma(1, b) - tri_ab]])
        return float(value), grad, hess

    def mle(self, sample: Sample) -> FloatArray | None:
        return self.mle_from_stats(self.sample_stats(sample))

    @classmethod
    def mle_from_stats(cls, stats: BetaStats) -> FloatArray | None:
        r"""Damped Newton on the convex NLL from :meth:`stats` (summable over chunks); None if it fails.

        It starts from the solution of the likelihood equations with
        :math:`\psi(a) \approx \log(a - \tfrac12)`: with :math:`G_0, G_1` the
        means of :math:`\log x` and :math:`\log(1-x)`,
        :math:`a_0 = \tfrac12 + e^{G_0} / (2(1 - e^{G_0} - e^{G_1}))` and likewise
        :math:`b_0`; the denominator is positive unless the data are constant
        (geometric means are below arithmetic ones).
        """
        n, s0, s1 = stats
        geometric = np.exp(np.array([s0, s1]) / n)
        gap = 1.0 - geometric.sum()
        if not gap > 0.0:
            return None
        theta = 0.5 + geometric / (2.0 * gap)
        value, grad, hess = cls._derivatives(theta, stats)
        for _ in range(100):
            step = np.linalg.solve(hess, grad)
            t = 1.0
            # Halve the step until it stays positive and does not increase the NLL (a descent
            # direction, as the Hessian is positive definite everywhere).
            while t > 1e-10:
                trial = theta - t * step
                if np.all(trial > 0.0):
                    trial_value, trial_grad, trial_hess = cls._derivatives(trial, stats)
                    if trial_value <= value + 1e-12 * abs(value):
                        break
                t *= 0.5
            else:
                return None
            # Newton converges quadratically: after a step of 1e-10 (relative) the error is far below
            # rounding, and the digamma differences make smaller steps noise.
            converged = np.all(np.abs(trial - theta) <= 1e-10 * trial)
            theta, value, grad, hess = trial, trial_value, trial_grad, trial_hess
            if converged:
                return theta
        return None

    def start(self, sample: Sample) -> FloatArray:
        """The method of moments, :math:`a + b = m(1-m)/v - 1`, clipped into a sane range."""
        m = sample.mean(sample.x)
        v = sample.mean((sample.x - m) ** 2)
        total = m * (1.0 - m) / v - 1.0 if v > 0.0 else math.nan
        if not total > 0.0:
            return np.array([1.0, 1.0])
        total = min(total, 1e7)  # (near-)constant data: a huge a + b, but keep the mean
        return np.maximum(np.array([m * total, (1.0 - m) * total]), 1e-3)

    def cdf(self, x: Any, *theta: Any) -> FloatArray:
        return piecewise(x, lambda v: special.betainc(theta[0], theta[1], v), 0.0, 1.0, upper=1.0)

    def sf(self, x: Any, *theta: Any) -> FloatArray:
        return piecewise(x, lambda v: special.betaincc(theta[0], theta[1], v), 1.0, 0.0, upper=1.0)

    def _tails(self, x: Any, a: Any, b: Any) -> tuple[FloatArray, FloatArray]:
        r"""cdf and sf from ``betainc`` alone, :math:`S(x) = I_{1-x}(b, a)`: scipy's ``betaincc`` is 10-40x slower.

        ``1 - x`` is exact where the survival function is the smaller tail (x above 1/2 or
        so), and elsewhere its rounding moves :math:`S \approx 1` by a few ulps.
        """
        cdf = piecewise(x, lambda v: special.betainc(a, b, v), 0.0, 1.0, upper=1.0)
        sf = piecewise(x, lambda v: special.betainc(b, a, 1.0 - v), 1.0, 0.0, upper=1.0)
        return cdf, sf

    def logcdf(self, x: Any, *theta: Any) -> FloatArray:
        cdf, sf = self._tails(x, *theta)
        return log_of_smaller(cdf, sf)

    def logsf(self, x: Any, *theta: Any) -> FloatArray:
        cdf, sf = self._tails(x, *theta)
        return log_of_smaller(sf, cdf)

    def ppf(self, q: Any, *theta: Any) -> FloatArray:
        return unit_quantile(q, lambda p: special.betaincinv(theta[0], theta[1], p))

    def mean(self, *theta: Any) -> FloatArray:
        a, b = np.asarray(theta[0], dtype=float), np.asarray(theta[1], dtype=float)
        return a / (a + b)

    def var(self, *theta: Any) -> FloatArray:
        a, b = np.asarray(theta[0], dtype=float), np.asarray(theta[1], dtype=float)
        return a * b / ((a + b) ** 2 * (a + b + 1.0))

    def sample(self, rng: np.random.Generator, size: Any, *theta: Any) -> FloatArray:
        return rng.beta(theta[0], theta[1], size=size)


beta = Beta()
