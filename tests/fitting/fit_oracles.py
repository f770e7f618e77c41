"""Seeded data and scipy oracles for every family: log density, reference MLE, numerical-Hessian SEs.

Each oracle gives, in nllkit's parameterization: a sampler, the true
parameters, scipy's log density, and scipy's own ``fit`` where scipy has a
good one (``floc=0`` for the positive families). The reference MLE is a
careful Nelder-Mead on scipy's log density, started from the true parameters,
on the unconstrained scale; the reference standard errors are central
differences of scipy's log-density sum in the natural parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize
from scipy import stats as st

from nllkit.distributions._registry import FAMILY_NAMES, get_family


def _zero_inflated(log_base: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def logpmf(x: np.ndarray, pi: float, *rest: float) -> np.ndarray:
        base = np.log1p(-pi) + log_base(x, *rest)
        return np.where(x == 0, np.logaddexp(np.log(pi), base), base)

    return logpmf


def _nb(x: np.ndarray, mean: float, size: float) -> np.ndarray:
    return st.nbinom.logpmf(x, size, size / (size + mean))


def _zi_sample(rng: np.random.Generator, n: int, pi: float, draw: np.ndarray) -> np.ndarray:
    return np.where(rng.random(n) < pi, 0.0, draw)


@dataclass(frozen=True)
class Oracle:
    draw: Callable[[np.random.Generator, int], np.ndarray]
    true: tuple[float, ...]
    logpdf: Callable[..., np.ndarray]
    scipy_fit: Callable[[np.ndarray], tuple[float, ...]] | None = None
    fixed: dict[str, float] | None = None


ORACLES: dict[str, Oracle] = {
    "normal": Oracle(lambda r, n: r.normal(1.5, 2.0, n), (1.5, 2.0), st.norm.logpdf, lambda x: st.norm.fit(x)),
    "student_t": Oracle(
        lambda r, n: st.t.rvs(5.0, 1.0, 2.0, size=n, random_state=r),
        (5.0, 1.0, 2.0),
        st.t.logpdf,
        lambda x: tuple(st.t.fit(x)),
    ),
    "laplace": Oracle(lambda r, n: r.laplace(1.0, 2.0, n), (1.0, 2.0), st.laplace.logpdf, lambda x: st.laplace.fit(x)),
    "logistic": Oracle(
        lambda r, n: r.logistic(1.0, 2.0, n), (1.0, 2.0), st.logistic.logpdf, lambda x: st.logistic.fit(x)
    ),
    "lognormal": Oracle(
        lambda r, n: r.lognormal(0.3, 0.8, n),
        (0.3, 0.8),
        lambda x, mu, sigma: st.lognorm.logpdf(x, sigma, scale=np.exp(mu)),
        lambda x: (lambda s, _, scale: (np.log(scale), s))(*st.lognorm.fit(x, floc=0)),
    ),
    "exponential": Oracle(
        lambda r, n: r.exponential(2.0, n),
        (0.5,),
        lambda x, rate: st.expon.logpdf(x, scale=1.0 / rate),
        lambda x: (1.0 / st.expon.fit(x, floc=0)[1],),
    ),
    "gamma": Oracle(
        lambda r, n: r.gamma(2.5, 1.5, n),
        (2.5, 1.5),
        lambda x, a, scale: st.gamma.logpdf(x, a, scale=scale),
        lambda x: (lambda a, _, scale: (a, scale))(*st.gamma.fit(x, floc=0)),
    ),
    "weibull": Oracle(
        lambda r, n: 3.0 * r.weibull(1.7, n),
        (1.7, 3.0),
        lambda x, c, scale: st.weibull_min.logpdf(x, c, scale=scale),
        lambda x: (lambda c, _, scale: (c, scale))(*st.weibull_min.fit(x, floc=0)),
    ),
    "beta": Oracle(
        lambda r, n: r.beta(2.0, 5.0, n),
        (2.0, 5.0),
        st.beta.logpdf,
        lambda x: tuple(st.beta.fit(x, floc=0, fscale=1)[:2]),
    ),
    "bernoulli": Oracle(lambda r, n: (r.random(n) < 0.3).astype(float), (0.3,), st.bernoulli.logpmf),
    "binomial": Oracle(
        lambda r, n: r.binomial(10, 0.3, n).astype(float), (10.0, 0.3), st.binom.logpmf, fixed={"trials": 10.0}
    ),
    "poisson": Oracle(lambda r, n: r.poisson(3.5, n).astype(float), (3.5,), st.poisson.logpmf),
    "geometric": Oracle(lambda r, n: r.geometric(0.3, n) - 1.0, (0.3,), lambda x, p: st.geom.logpmf(x, p, loc=-1)),
    "negative_binomial": Oracle(lambda r, n: r.negative_binomial(2.0, 2.0 / 6.0, n).astype(float), (4.0, 2.0), _nb),
    "zero_inflated_poisson": Oracle(
        lambda r, n: _zi_sample(r, n, 0.3, r.poisson(3.0, n)), (0.3, 3.0), _zero_inflated(st.poisson.logpmf)
    ),
    "zero_inflated_negative_binomial": Oracle(
        lambda r, n: _zi_sample(r, n, 0.3, r.negative_binomial(3.0, 0.5, n)), (0.3, 3.0, 3.0), _zero_inflated(_nb)
    ),
}


def oracle_names() -> list[str]:
    return [name for name in FAMILY_NAMES if name in ORACLES]


def _to_u(family: Any, theta: np.ndarray) -> np.ndarray:
    return np.array([float(d.to_unconstrained(t)) for d, t in zip(family.domains, theta, strict=True)])


def _from_u(family: Any, u: np.ndarray) -> np.ndarray:
    return np.array([float(d.from_unconstrained(v)[0]) for d, v in zip(family.domains, u, strict=True)])


def reference_mle(name: str, x: np.ndarray) -> tuple[np.ndarray, float]:
    """A careful optimizer on scipy's log density, from the true parameters: (theta, loglik)."""
    family, oracle = get_family(name), ORACLES[name]
    values, counts = (np.unique(x, return_counts=True)) if family.discrete else (x, np.ones_like(x))

    held = [name in (oracle.fixed or {}) for name in family.param_names]
    true = np.array(oracle.true)

    def nll(u: np.ndarray) -> float:
        theta = np.where(held, true, _from_u(family, np.where(held, 0.0, np.insert(u, np.flatnonzero(held), 0.0))))
        with np.errstate(all="ignore"):
            value = -float(counts @ oracle.logpdf(values, *theta))
        return value if np.isfinite(value) else 1e300

    u = _to_u(family, true)[~np.array(held)]
    for _ in range(2):  # a restart: Nelder-Mead's simplex can collapse early
        options = {"xatol": 1e-10, "fatol": 1e-10, "maxfev": 6000}
        u = optimize.minimize(nll, u, method="Nelder-Mead", options=options).x
    theta = np.where(held, true, _from_u(family, np.where(held, 0.0, np.insert(u, np.flatnonzero(held), 0.0))))
    return theta, -nll(u)


def reference_se(name: str, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Standard errors from central differences of scipy's NLL in the natural parameters (0 for held ones)."""
    oracle = ORACLES[name]
    held = np.array([p in (oracle.fixed or {}) for p in get_family(name).param_names])
    free = np.flatnonzero(~held)
    h = 1e-4 * np.maximum(np.abs(theta), 1e-3)

    def nll(t: np.ndarray) -> float:
        return -float(np.sum(oracle.logpdf(x, *t)))

    hess = np.empty((free.size, free.size))
    for a, i in enumerate(free):
        for b, j in enumerate(free):
            ei, ej = np.eye(theta.size)[i] * h[i], np.eye(theta.size)[j] * h[j]
            hess[a, b] = (nll(theta + ei + ej) - nll(theta + ei - ej) - nll(theta - ei + ej) + nll(theta - ei - ej)) / (
                4.0 * h[i] * h[j]
            )
    se = np.zeros(theta.size)
    se[free] = np.sqrt(np.diag(np.linalg.inv(hess)))
    return se


__all__ = ["ORACLES", "oracle_names", "reference_mle", "reference_se"]
