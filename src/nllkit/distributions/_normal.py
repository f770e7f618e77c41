"""The normal family: the reference implementation of the :class:`Family` contract."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from scipy import special, stats

from nllkit.distributions._family import POSITIVE, REAL, Family, FloatArray, Sample, Support

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class Normal(Family):
    r"""Normal distribution with mean ``loc`` and standard deviation ``scale``.

    .. math:: \log f(x) = -\tfrac12 z^2 - \log \sigma - \tfrac12 \log 2\pi,
       \qquad z = (x - \mu) / \sigma

    The MLE is closed-form from the additive statistics :math:`(n, \sum x, \sum x^2)`
    (computed about the weighted mean, for accuracy).

    Examples
    --------
    >>> from nllkit.distributions import normal
    >>> float(normal.logpdf(40.0, 0.0, 1.0))
    -800.9189385332047
    """

    name: ClassVar[str] = "normal"
    param_names: ClassVar[tuple[str, ...]] = ("loc", "scale")
    domains = (REAL, POSITIVE)
    support = Support(-math.inf, math.inf, lower_open=True, upper_open=True)
    scale_powers = (1, 1)

    def logpdf(self, x: Any, *theta: Any) -> FloatArray:
        loc, scale = theta
        z = (np.asarray(x, dtype=float) - loc) / scale
        return -0.5 * z * z - np.log(scale) - _HALF_LOG_2PI

    def nll_grad(self, theta: FloatArray, sample: Sample) -> tuple[float, FloatArray]:
        loc, scale = theta
        z = (sample.x - loc) / scale
        s1, s2 = sample.sum(z), sample.sum(z * z)
        value = 0.5 * s2 + sample.n * (math.log(scale) + _HALF_LOG_2PI)
        return value, np.array([-s1 / scale, (sample.n - s2) / scale])

    def nll_hess(self, theta: FloatArray, sample: Sample) -> FloatArray:
        loc, scale = theta
        z = (sample.x - loc) / scale
        s1, s2 = sample.sum(z), sample.sum(z * z)
        cross = 2.0 * s1 / scale**2
        return np.array([[sample.n / scale**2, cross], [cross, (3.0 * s2 - sample.n) / scale**2]])

    def mle(self, sample: Sample) -> FloatArray:
        loc = sample.mean(sample.x)
        return np.array([loc, math.sqrt(sample.mean((sample.x - loc) ** 2))])

    def start(self, sample: Sample) -> FloatArray:
        loc, scale = self.mle(sample)
        return np.array([loc, scale if scale > 0.0 else 1.0])

    def cdf(self, x: Any, *theta: Any) -> FloatArray:
        loc, scale = theta
        return special.ndtr((np.asarray(x, dtype=float) - loc) / scale)

    def logcdf(self, x: Any, *theta: Any) -> FloatArray:
        loc, scale = theta
        return special.log_ndtr((np.asarray(x, dtype=float) - loc) / scale)

    def logsf(self, x: Any, *theta: Any) -> FloatArray:
        loc, scale = theta
        return special.log_ndtr((loc - np.asarray(x, dtype=float)) / scale)

    def ppf(self, q: Any, *theta: Any) -> FloatArray:
        loc, scale = theta
        return loc + scale * special.ndtri(q)

    def mean(self, *theta: Any) -> FloatArray:
        return np.asarray(theta[0], dtype=float)

    def var(self, *theta: Any) -> FloatArray:
        return np.asarray(theta[1], dtype=float) ** 2

    def sample(self, rng: np.random.Generator, size: Any, *theta: Any) -> FloatArray:
        return stats.norm.rvs(theta[0], theta[1], size=size, random_state=rng)


normal = Normal()
