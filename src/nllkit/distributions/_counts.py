r"""Count families on {0, 1, 2, ...}: Poisson, geometric, negative binomial and their zero-inflated forms.

Every log mass is computed in log space (``gammaln``, ``betaln``, ``xlogy``,
``log1p``, ``logaddexp``), so that Poisson(200; 180), Poisson(1000; 1000) and
the negative binomial at ``y = 0``, ``mean -> 0`` or ``size -> inf`` (its
Poisson limit) stay finite and accurate.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from scipy import optimize, special, stats

from nllkit.distributions._discrete import (
    DiscreteFamily,
    floor_cdf,
    interior_start,
    positive_start,
    stack,
    symmetric,
)
from nllkit.distributions._family import POSITIVE, UNIT, FloatArray, Sample
from nllkit.distributions._nb_params import nb_to_scipy

# Moment starts for the negative binomial's size stay in a range an optimizer moves out of quickly.
_SIZE_START_RANGE = (1e-3, 1e6)


class Poisson(DiscreteFamily):
    r"""Poisson distribution with mean ``rate``.

    .. math:: \log f(y) = y \log\lambda - \lambda - \log y!, \qquad y = 0, 1, 2, \dots

    The MLE is the weighted mean, from the additive statistics :math:`(n, \sum y)`.

    Examples
    --------
    >>> from nllkit.distributions._counts import poisson
    >>> round(float(-poisson.logpdf(200, 180.0)), 6)
    4.640617
    >>> float(poisson.mle(Sample(np.array([0.0, 2.0, 7.0]), np.array([5.0, 3.0, 2.0])))[0])
    2.0
    """

    name: ClassVar[str] = "poisson"
    param_names: ClassVar[tuple[str, ...]] = ("rate",)
    domains = (POSITIVE,)

    def _logpmf(self, x: FloatArray, *theta: Any) -> FloatArray:
        (rate,) = theta
        return special.xlogy(x, rate) - rate - special.gammaln(x + 1.0)

    def derivs(self, x: FloatArray, theta: FloatArray, hess: bool = True) -> tuple[FloatArray, FloatArray | None]:
        rate = theta[0]
        return stack(x / rate - 1.0), (-x / rate**2)[:, None, None] if hess else None

    def mle(self, sample: Sample) -> FloatArray:
        return np.array([sample.mean(sample.x)])

    def start(self, sample: Sample) -> FloatArray:
        return np.array([positive_start(sample.mean(sample.x), sample.n)])

    def cdf(self, x: Any, *theta: Any) -> FloatArray:
        return floor_cdf(x, lambda k: special.pdtr(k, theta[0]))

    def ppf(self, q: Any, *theta: Any) -> FloatArray:
        return stats.poisson.ppf(q, theta[0])

    def mean(self, *theta: Any) -> FloatArray:
        return np.asarray(theta[0], dtype=float)

    def var(self, *theta: Any) -> FloatArray:
        return np.asarray(theta[0], dtype=float)

    def sample(self, rng: np.random.Generator, size: Any, *theta: Any) -> FloatArray:
        return rng.poisson(theta[0], size).astype(float)


class Geometric(DiscreteFamily):
    r"""Geometric distribution: the number of failures before the first success, success probability ``p``.

    .. math:: \log f(y) = \log p + y \log(1 - p), \qquad y = 0, 1, 2, \dots

    The support starts at 0, as in torch's ``Geometric`` and numpy's
    ``rng.geometric(p) - 1``; scipy's ``geom`` counts trials from 1, so the
    same law is ``scipy.stats.geom(p, loc=-1)``. It is the negative binomial
    with ``size = 1``. The MLE is :math:`\hat p = 1 / (1 + \bar y)`.

    Examples
    --------
    >>> from nllkit.distributions._counts import geometric
    >>> float(geometric.logpdf(0, 0.25)), float(geometric.mean(0.25))
    (-1.3862943611198906, 3.0)
    """

    name: ClassVar[str] = "geometric"
    param_names: ClassVar[tuple[str, ...]] = ("p",)
    domains = (UNIT,)

    def _logpmf(self, x: FloatArray, *theta: Any) -> FloatArray:
        (p,) = theta
        return np.log(p) + special.xlog1py(x, -np.asarray(p, dtype=float))

    def derivs(self, x: FloatArray, theta: FloatArray, hess: bool = True) -> tuple[FloatArray, FloatArray | None]:
        p = theta[0]
        grad = stack(1.0 / p - x / (1.0 - p))
        return grad, (-1.0 / p**2 - x / (1.0 - p) ** 2)[:, None, None] if hess else None

    def mle(self, sample: Sample) -> FloatArray:
        return np.array([1.0 / (1.0 + sample.mean(sample.x))])

    def start(self, sample: Sample) -> FloatArray:
        return np.array([interior_start(float(self.mle(sample)[0]), sample.n)])

    def cdf(self, x: Any, *theta: Any) -> FloatArray:
        log_q = np.log1p(-np.asarray(theta[0], dtype=float))
        return floor_cdf(x, lambda k: -np.expm1((k + 1.0) * log_q))

    def ppf(self, q: Any, *theta: Any) -> FloatArray:
        return stats.geom.ppf(q, theta[0], loc=-1)

    def mean(self, *theta: Any) -> FloatArray:
        p = np.asarray(theta[0], dtype=float)
        return (1.0 - p) / p

    def var(self, *theta: Any) -> FloatArray:
        p = np.asarray(theta[0], dtype=float)
        return (1.0 - p) / p**2

    def sample(self, rng: np.random.Generator, size: Any, *theta: Any) -> FloatArray:
        return rng.geometric(theta[0], size) - 1.0


def _nb_moment_size(mean: float, var: float) -> float:
    """The method-of-moments size ``mean**2 / (var - mean)``, clipped (large when not overdispersed)."""
    excess = var - mean
    size = mean * mean / excess if excess > 0.0 else math.inf
    return min(max(size, _SIZE_START_RANGE[0]), _SIZE_START_RANGE[1])


class NegativeBinomial(DiscreteFamily):
    r"""Negative binomial distribution with ``mean`` :math:`\mu` and ``size`` :math:`r` (R's ``mu``, ``size``).

    The number of failures before the ``size``-th success, with
    :math:`E[Y] = \mu` and :math:`\mathrm{Var}[Y] = \mu + \mu^2 / r`:

    .. math:: \log f(y) = \log\frac{\Gamma(y + r)}{\Gamma(r)\, y!}
       + r \log\frac{r}{r + \mu} + y \log\frac{\mu}{r + \mu}

    computed as :math:`-\log B(r, y + 1) - \log(r + y) - r\,\mathrm{log1p}(\mu/r)
    + \mathrm{xlogy}(y, \mu) - y \log(r + \mu)`, which is finite at ``y = 0``,
    as :math:`\mu \to 0` and as :math:`r \to \infty`, where it tends to the
    Poisson. See :mod:`nllkit.distributions._nb_params` for the scipy, torch
    and statsmodels parameterizations.

    The MLE of the mean is the sample mean for every size; :meth:`mle` then
    solves the 1-D profile score for the size. It exists when the data are
    overdispersed (population variance above the mean), otherwise the
    likelihood increases towards the Poisson limit and :meth:`mle` returns None.

    Examples
    --------
    >>> from nllkit.distributions._counts import negative_binomial, poisson
    >>> float(negative_binomial.logpdf(0, 1e-300, 2.0))
    -1e-300
    >>> bool(abs(negative_binomial.logpdf(7, 3.0, 1e12) - poisson.logpdf(7, 3.0)) < 1e-9)
    True
    """

    mle_how = "maximum-likelihood estimate from a one-dimensional solve of the likelihood equations"
    name: ClassVar[str] = "negative_binomial"
    param_names: ClassVar[tuple[str, ...]] = ("mean", "size")
    domains = (POSITIVE, POSITIVE)

    def _logpmf(self, x: FloatArray, *theta: Any) -> FloatArray:
        mu, r = (np.asarray(t, dtype=float) for t in theta)
        return (
            -special.betaln(r, x + 1.0)
            - np.log(r + x)
            - r * np.log1p(mu / r)
            + special.xlogy(x, mu)
            - x * np.log(r + mu)
        )

    def derivs(self, x: FloatArray, theta: FloatArray, hess: bool = True) -> tuple[FloatArray, FloatArray | None]:
        mu, r = theta
        rm = r + mu
        grad = stack(
            r * (x - mu) / (mu * rm),
            special.digamma(x + r) - special.digamma(r) - math.log1p(mu / r) + (mu - x) / rm,
        )
        if not hess:
            return grad, None
        entries = {
            (0, 0): -x / mu**2 + (r + x) / rm**2,
            (0, 1): (x - mu) / rm**2,
            (1, 1): special.polygamma(1, x + r) - special.polygamma(1, r) + mu / (r * rm) - (mu - x) / rm**2,
        }
        return grad, symmetric(entries, x.size, 2)

    def mle(self, sample: Sample) -> FloatArray | None:
        mean = sample.mean(sample.x)
        var = sample.mean((sample.x - mean) ** 2)
        if mean <= 0.0 or var <= mean:
            return None

        # dNLL/dsize at mean = ybar, in t = log(size): negative below the root, positive above.
        def score(t: float) -> float:
            return float(self.nll_grad(np.array([mean, math.exp(t)]), sample)[1][1])

        lo = hi = math.log(_nb_moment_size(mean, var))
        while score(lo) > 0.0:
            lo -= 4.0
            if lo < math.log(1e-12):
                return None
        while score(hi) < 0.0:
            hi += 4.0
            if hi > math.log(1e12):
                return None
        if lo == hi:
            return np.array([mean, math.exp(lo)])
        t = optimize.brentq(score, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps)
        return np.array([mean, math.exp(t)])

    def start(self, sample: Sample) -> FloatArray:
        mean = sample.mean(sample.x)
        var = sample.mean((sample.x - mean) ** 2)
        return np.array([positive_start(mean, sample.n), _nb_moment_size(mean, var)])

    def cdf(self, x: Any, *theta: Any) -> FloatArray:
        return stats.nbinom.cdf(x, *nb_to_scipy(*theta))

    def ppf(self, q: Any, *theta: Any) -> FloatArray:
        return stats.nbinom.ppf(q, *nb_to_scipy(*theta))

    def mean(self, *theta: Any) -> FloatArray:
        return np.asarray(theta[0], dtype=float)

    def var(self, *theta: Any) -> FloatArray:
        mu, r = (np.asarray(t, dtype=float) for t in theta)
        return mu + mu * mu / r

    def sample(self, rng: np.random.Generator, size: Any, *theta: Any) -> FloatArray:
        return rng.negative_binomial(*nb_to_scipy(*theta), size=size).astype(float)


class ZeroInflated(DiscreteFamily):
    r"""A count family with extra zeros: with probability ``pi`` a structural zero, else a draw from ``base``.

    .. math:: f(0) = \pi + (1 - \pi) g(0), \qquad f(y) = (1 - \pi) g(y) \quad (y > 0)

    with :math:`\log f(0)` from ``logaddexp``. The gradient and Hessian follow
    from the base family's per-value derivatives: at :math:`y = 0`, with
    :math:`s = (1-\pi) g(0) / f(0)` the share of the base component,
    :math:`\partial_\pi \log f = (1 - g(0)) / f(0)`,
    :math:`\partial_\theta \log f = s\, \partial_\theta \log g` and
    :math:`\partial^2_{\theta\theta} \log f = s\, \partial^2 \log g
    + s (1 - s)\, \partial \log g\, \partial \log g^\top`.
    """

    base: ClassVar[DiscreteFamily]

    def _logpmf(self, x: FloatArray, *theta: Any) -> FloatArray:
        pi, *base_theta = (np.asarray(t, dtype=float) for t in theta)
        kept = np.log1p(-pi) + self.base._logpmf(x, *base_theta)
        return np.where(x == 0.0, np.logaddexp(np.log(pi), kept), kept)

    def derivs(self, x: FloatArray, theta: FloatArray, hess: bool = True) -> tuple[FloatArray, FloatArray | None]:
        pi, base_theta = theta[0], theta[1:]
        g_base, h_base = self.base.derivs(x, base_theta, hess)
        zero = x == 0.0
        # log g(0) on the zeros and 0 elsewhere, so that nothing below overflows off the zeros.
        log_g0 = np.where(zero, self.base._logpmf(np.zeros_like(x), *base_theta), 0.0)
        log_f0 = np.logaddexp(math.log(pi), math.log1p(-pi) + log_g0)
        share = np.where(zero, np.exp(math.log1p(-pi) + log_g0 - log_f0), 1.0)
        d_pi = np.where(zero, -np.expm1(log_g0) * np.exp(-log_f0), -1.0 / (1.0 - pi))
        grad = np.column_stack([d_pi, share[:, None] * g_base])
        if not hess:
            return grad, None
        assert h_base is not None
        p = theta.size
        out = np.zeros((x.size, p, p))
        out[:, 0, 0] = -(d_pi**2)
        cross = np.where(zero, -np.exp(log_g0 - 2.0 * log_f0), 0.0)[:, None] * g_base
        out[:, 0, 1:] = out[:, 1:, 0] = cross
        spread = (share * (1.0 - share))[:, None, None]
        out[:, 1:, 1:] = share[:, None, None] * h_base + spread * g_base[:, :, None] * g_base[:, None, :]
        return grad, out

    def _zero_share(self, sample: Sample) -> float:
        return float(sample.w[sample.x == 0.0].sum()) / sample.n

    def cdf(self, x: Any, *theta: Any) -> FloatArray:
        pi = np.asarray(theta[0], dtype=float)
        x = np.asarray(x, dtype=float)
        return np.where(x < 0.0, 0.0, pi + (1.0 - pi) * self.base.cdf(x, *theta[1:]))

    def ppf(self, q: Any, *theta: Any) -> FloatArray:
        pi = np.asarray(theta[0], dtype=float)
        q = np.asarray(q, dtype=float)
        # The smallest y with pi + (1 - pi) G(y) >= q; ppf(0) = -1 as in scipy's discrete families.
        q_base = np.clip((q - pi) / (1.0 - pi), 0.0, 1.0)
        y = np.where(q_base > 0.0, self.base.ppf(q_base, *theta[1:]), 0.0)
        return np.where((q < 0.0) | (q > 1.0), np.nan, np.where(q == 0.0, -1.0, y))

    def mean(self, *theta: Any) -> FloatArray:
        pi = np.asarray(theta[0], dtype=float)
        return (1.0 - pi) * self.base.mean(*theta[1:])

    def var(self, *theta: Any) -> FloatArray:
        pi = np.asarray(theta[0], dtype=float)
        mean = self.base.mean(*theta[1:])
        return (1.0 - pi) * (self.base.var(*theta[1:]) + pi * mean * mean)

    def sample(self, rng: np.random.Generator, size: Any, *theta: Any) -> FloatArray:
        draws = self.base.sample(rng, size, *theta[1:])
        return np.where(rng.random(np.shape(draws)) < theta[0], 0.0, draws)


def _zero_truncated_rate(mean_positive: float) -> float:
    """The Poisson rate whose zero-truncated mean, ``rate / (1 - exp(-rate))``, is ``mean_positive > 1``."""
    # rate / (1 - e^-rate) lies between rate and rate + 1: the root is in [mean - 1, mean].
    return float(
        optimize.brentq(
            lambda rate: rate + mean_positive * math.expm1(-rate),
            mean_positive - 1.0,
            mean_positive,
            xtol=1e-15,
            rtol=4 * np.finfo(float).eps,
        )
    )


def _zero_inflation(p0: float, rate: float) -> float:
    """The ``pi`` that gives a share ``p0`` of zeros with Poisson(``rate``): ``(p0 - e^-rate) / (1 - e^-rate)``."""
    return (p0 - math.exp(-rate)) / -math.expm1(-rate)


class ZeroInflatedPoisson(ZeroInflated):
    r"""Zero-inflated Poisson: a structural zero with probability ``pi``, else Poisson(``rate``).

    .. math:: f(0) = \pi + (1 - \pi) e^{-\lambda}, \qquad
       f(y) = (1 - \pi) \frac{\lambda^y e^{-\lambda}}{y!} \quad (y > 0)

    The likelihood separates into the share of zeros and a zero-truncated
    Poisson for the positive counts, so the MLE is a 1-D solve:
    :math:`\hat\lambda / (1 - e^{-\hat\lambda}) = \bar y_+` (the mean of the
    positive counts) and :math:`\hat\pi = (\hat p_0 - e^{-\hat\lambda}) / (1 -
    e^{-\hat\lambda})`, with :math:`\hat p_0` the share of zeros. When there
    are no more zeros than a Poisson gives, the MLE is on the boundary
    :math:`\pi = 0` and :meth:`mle` returns None.

    Examples
    --------
    >>> from nllkit.distributions._counts import zero_inflated_poisson
    >>> float(zero_inflated_poisson.logpdf(0, 0.5, 2.0))
    -0.5662191695169728
    >>> float(zero_inflated_poisson.mean(0.5, 2.0))
    1.0
    """

    mle_how = "maximum-likelihood estimate from a one-dimensional solve of the likelihood equations"
    name: ClassVar[str] = "zero_inflated_poisson"
    param_names: ClassVar[tuple[str, ...]] = ("pi", "rate")
    domains = (UNIT, POSITIVE)
    base: ClassVar[DiscreteFamily] = Poisson()

    def _split(self, sample: Sample) -> tuple[float, float | None]:
        """The share of zeros and the mean of the positive counts (None without any)."""
        positive = sample.x > 0.0
        weight = float(sample.w[positive].sum())
        return self._zero_share(sample), (sample.sum(sample.x) / weight if weight > 0.0 else None)

    def mle(self, sample: Sample) -> FloatArray | None:
        p0, mean_positive = self._split(sample)
        if p0 == 0.0 or mean_positive is None or mean_positive <= 1.0:
            return None
        rate = _zero_truncated_rate(mean_positive)
        pi = _zero_inflation(p0, rate)
        return np.array([pi, rate]) if pi > 0.0 else None

    def start(self, sample: Sample) -> FloatArray:
        p0, mean_positive = self._split(sample)
        if mean_positive is None:
            rate = positive_start(0.0, sample.n)
        else:
            rate = _zero_truncated_rate(mean_positive) if mean_positive > 1.0 else mean_positive
        pi = _zero_inflation(p0, rate)
        return np.array([interior_start(max(pi, 0.01), sample.n), rate])


class ZeroInflatedNegativeBinomial(ZeroInflated):
    r"""Zero-inflated negative binomial: a structural zero with probability ``pi``, else NB(``mean``, ``size``).

    .. math:: f(0) = \pi + (1 - \pi) \Big(\frac{r}{r + \mu}\Big)^r, \qquad
       f(y) = (1 - \pi)\, \mathrm{NB}(y; \mu, r) \quad (y > 0)

    ``mean`` and ``size`` are the negative binomial component's (the law's own
    mean is :math:`(1 - \pi)\mu`). No closed-form MLE; :meth:`start` takes the
    excess of zeros over a moment-matched negative binomial as ``pi``, then
    matches the mean and variance of the rest.

    Examples
    --------
    >>> from nllkit.distributions._counts import zero_inflated_negative_binomial as zinb
    >>> float(zinb.mean(0.25, 4.0, 2.0)), float(zinb.var(0.25, 4.0, 2.0))
    (3.0, 12.0)
    """

    name: ClassVar[str] = "zero_inflated_negative_binomial"
    param_names: ClassVar[tuple[str, ...]] = ("pi", "mean", "size")
    domains = (UNIT, POSITIVE, POSITIVE)
    base: ClassVar[DiscreteFamily] = NegativeBinomial()

    def start(self, sample: Sample) -> FloatArray:
        mean = sample.mean(sample.x)
        var = sample.mean((sample.x - mean) ** 2)
        mean = positive_start(mean, sample.n)
        size = _nb_moment_size(mean, var)
        g0 = math.exp(-size * math.log1p(mean / size))
        excess = (self._zero_share(sample) - g0) / (1.0 - g0) if g0 < 1.0 else 0.0
        pi = interior_start(max(excess, 0.01), sample.n)
        # Mean and variance of the NB component: E = (1-pi) mu, Var = (1-pi) (sigma2 + pi mu^2).
        mu = mean / (1.0 - pi)
        return np.array([pi, mu, _nb_moment_size(mu, var / (1.0 - pi) - pi * mu * mu)])


poisson = Poisson()
geometric = Geometric()
negative_binomial = NegativeBinomial()
zero_inflated_poisson = ZeroInflatedPoisson()
zero_inflated_negative_binomial = ZeroInflatedNegativeBinomial()
