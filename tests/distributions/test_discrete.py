"""The discrete families against scipy, torch, statsmodels and analytic facts.

Every expected value comes from an oracle (scipy.stats, torch.distributions,
statsmodels, mpmath) or from an analytic identity (a score of zero at the MLE,
finite differences of the NLL, moments summed from the mass function).
"""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, special, stats

from nllkit.distributions._categorical import bernoulli, binomial, categorical, categorical_with
from nllkit.distributions._counts import (
    geometric,
    negative_binomial,
    poisson,
    zero_inflated_negative_binomial,
    zero_inflated_poisson,
)
from nllkit.distributions._family import Family, Sample
from nllkit.distributions._nb_params import (
    nb_from_scipy,
    nb_from_statsmodels,
    nb_from_torch,
    nb_to_scipy,
    nb_to_statsmodels,
    nb_to_torch,
)

try:  # torch is optional: the torch oracles skip without it
    import torch
except ImportError:  # pragma: no cover - torch is in the test extra
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

ZIP, ZINB = zero_inflated_poisson, zero_inflated_negative_binomial


def zi_logpmf(y: np.ndarray, pi: float, base_logpmf: np.ndarray) -> np.ndarray:
    """The zero-inflated log mass as a logsumexp mixture of scipy's terms."""
    inflated = special.logsumexp([np.full_like(base_logpmf, math.log(pi)), math.log1p(-pi) + base_logpmf], axis=0)
    return np.where(y == 0, inflated, math.log1p(-pi) + base_logpmf)


# --- log mass, cdf, ppf, mean and var against scipy on grids ------------------------------------

Y = np.arange(0.0, 60.0)
Q = np.array([0.0, 1e-9, 0.01, 0.2, 0.5, 0.77, 0.99, 1.0 - 1e-9, 1.0])

# (family, theta, the scipy frozen distribution with the same law)
SCIPY_CASES: list[tuple[Family, tuple[float, ...], Any]] = [
    (bernoulli, (0.3,), stats.bernoulli(0.3)),
    (binomial, (25.0, 0.37), stats.binom(25, 0.37)),
    (poisson, (0.02,), stats.poisson(0.02)),
    (poisson, (7.5,), stats.poisson(7.5)),
    (poisson, (40.0,), stats.poisson(40.0)),
    (geometric, (0.2,), stats.geom(0.2, loc=-1)),
    (geometric, (0.93,), stats.geom(0.93, loc=-1)),
    (negative_binomial, (6.0, 0.7), stats.nbinom(0.7, 0.7 / 6.7)),
    (negative_binomial, (12.0, 40.0), stats.nbinom(40.0, 40.0 / 52.0)),
]


@pytest.mark.parametrize(("family", "theta", "oracle"), SCIPY_CASES, ids=lambda c: getattr(c, "name", ""))
def test_against_scipy(family: Family, theta: tuple[float, ...], oracle: Any) -> None:
    y = np.concatenate([Y, [-1.0, 2.5, 1e4]])
    np.testing.assert_allclose(family.logpdf(y, *theta), oracle.logpmf(y), rtol=1e-12, atol=1e-12)
    x = np.concatenate([Y, [-0.5, 0.5, 3.9, 1e5]])
    np.testing.assert_allclose(family.cdf(x, *theta), oracle.cdf(x), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(family.ppf(Q, *theta), oracle.ppf(Q))
    np.testing.assert_allclose(family.mean(*theta), oracle.mean(), rtol=1e-13)
    np.testing.assert_allclose(family.var(*theta), oracle.var(), rtol=1e-13)


def test_categorical_against_scipy_multinomial() -> None:
    probs = np.array([0.1, 0.0, 0.25, 0.4, 0.25])
    y = np.arange(5.0)
    onehot = np.eye(5)
    with np.errstate(divide="ignore"):
        expected = stats.multinomial.logpmf(onehot, 1, probs)
    np.testing.assert_allclose(categorical.logpdf(y, probs), expected, rtol=1e-14)
    assert categorical.logpdf(5.0, probs) == -np.inf and categorical.logpdf(0.5, probs) == -np.inf
    oracle = stats.rv_discrete(values=(np.arange(5), probs))
    x = np.array([-1.0, 0.0, 0.5, 1.0, 2.2, 3.0, 4.0, 9.0])
    np.testing.assert_allclose(categorical.cdf(x, probs), oracle.cdf(x), rtol=1e-14)
    np.testing.assert_array_equal(categorical.ppf(Q, probs), oracle.ppf(Q))
    np.testing.assert_allclose([categorical.mean(probs), categorical.var(probs)], [oracle.mean(), oracle.var()])
    # The bound family takes the same probabilities one parameter per category.
    bound = categorical_with(5)
    np.testing.assert_allclose(bound.logpdf(y, *probs), categorical.logpdf(y, probs))
    # Batched probabilities broadcast against the values, along the last axis.
    batch = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    np.testing.assert_allclose(categorical.logpdf([1.0, 2.0], batch), np.log([0.5, 0.5]))
    with np.errstate(divide="ignore"):
        expected = np.log([[0.5, 0.3], [0.0, 0.5]])  # [i, j]: value i under the probabilities of row j
    np.testing.assert_allclose(categorical.logpdf([[1.0], [2.0]], batch), expected)


ZI_CASES = [
    (ZIP, (0.3, 2.5), poisson, (2.5,)),
    (ZIP, (0.05, 30.0), poisson, (30.0,)),
    (ZINB, (0.4, 3.0, 0.8), negative_binomial, (3.0, 0.8)),
    (ZINB, (0.1, 20.0, 15.0), negative_binomial, (20.0, 15.0)),
]


@pytest.mark.parametrize(("family", "theta", "base", "base_theta"), ZI_CASES)
def test_zero_inflated_against_scipy_mixture(
    family: Family, theta: tuple[float, ...], base: Family, base_theta: tuple[float, ...]
) -> None:
    pi = theta[0]
    if base is poisson:
        oracle = stats.poisson(*base_theta)
    else:
        oracle = stats.nbinom(base_theta[1], base_theta[1] / (base_theta[1] + base_theta[0]))
    np.testing.assert_allclose(family.logpdf(Y, *theta), zi_logpmf(Y, pi, oracle.logpmf(Y)), rtol=1e-12)
    assert family.logpdf(-1.0, *theta) == -np.inf and family.logpdf(1.5, *theta) == -np.inf
    # The mass sums to 1 and gives the moments (analytic facts, summed far into the tail).
    grid = np.arange(0.0, 2000.0)
    pmf = np.exp(family.logpdf(grid, *theta))
    assert math.isclose(pmf.sum(), 1.0, rel_tol=1e-12)
    mean = pmf @ grid
    np.testing.assert_allclose(family.mean(*theta), mean, rtol=1e-10)
    np.testing.assert_allclose(family.var(*theta), pmf @ (grid - mean) ** 2, rtol=1e-9)
    x = np.array([-2.0, 0.0, 0.7, 3.0, 11.2, 40.0])
    np.testing.assert_allclose(family.cdf(x, *theta), np.where(x < 0, 0.0, pi + (1 - pi) * oracle.cdf(x)), rtol=1e-13)
    # ppf: the smallest y with cdf(y) >= q (scipy's convention ppf(0) = -1).
    cdf = np.cumsum(pmf)
    expected = [-1.0 if q == 0 else float(np.searchsorted(cdf, q * (1 - 1e-13))) for q in Q[:-2]]
    np.testing.assert_array_equal(family.ppf(Q[:-2], *theta), expected)


# --- torch's log probabilities ------------------------------------------------------------------


@needs_torch
def test_against_torch() -> None:
    td = torch.distributions
    y = torch.arange(0.0, 40.0, dtype=torch.float64)
    p = torch.tensor(0.35, dtype=torch.float64)
    cases = [
        (geometric.logpdf(y.numpy(), 0.35), td.Geometric(probs=p).log_prob(y)),
        (poisson.logpdf(y.numpy(), 4.2), td.Poisson(torch.tensor(4.2, dtype=torch.float64)).log_prob(y)),
        (binomial.logpdf(y[:31].numpy(), 30, 0.35), td.Binomial(30, probs=p).log_prob(y[:31])),
        (bernoulli.logpdf([0.0, 1.0], 0.35), td.Bernoulli(probs=p).log_prob(y[:2])),
    ]
    probs = torch.tensor([0.2, 0.1, 0.7], dtype=torch.float64)
    cases.append((categorical.logpdf([0.0, 1.0, 2.0], probs.numpy()), td.Categorical(probs=probs).log_prob(y[:3])))
    for ours, theirs in cases:
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12)


# --- extreme arguments stay finite and accurate -------------------------------------------------


def mp_nb_logpmf(y: float, mean: float, size: float) -> float:
    mpmath.mp.dps = 50
    y_, mu, r = mpmath.mpf(y), mpmath.mpf(mean), mpmath.mpf(size)
    value = mpmath.loggamma(y_ + r) - mpmath.loggamma(r) - mpmath.loggamma(y_ + 1) - r * mpmath.log1p(mu / r)
    return float(value + (y_ * mpmath.log(mu / (r + mu)) if y > 0 else 0))


def test_extremes() -> None:
    assert math.isclose(-poisson.logpdf(200, 180.0), 4.640617, abs_tol=1e-6)
    assert math.isclose(-poisson.logpdf(1000, 1000.0), 4.372900, abs_tol=1e-6)
    assert math.isclose(poisson.logpdf(2e6, 1e6), stats.poisson.logpmf(2e6, 1e6), rel_tol=1e-12)
    assert poisson.logpdf(0, 1e-300) == -1e-300
    assert math.isclose(binomial.logpdf(3e5, 1e6, 0.3), stats.binom.logpmf(3e5, 1e6, 0.3), rel_tol=1e-11)
    assert math.isclose(geometric.logpdf(1e6, 1e-9), stats.geom.logpmf(1e6 + 1, 1e-9), rel_tol=1e-12)
    # Negative binomial at y = 0, mean -> 0, size -> 0 and size -> inf (the Poisson limit), against mpmath.
    for y, mean, size in [
        (0, 1e-300, 2.0),
        (0, 5.0, 1e15),
        (3000, 50.0, 1e-8),
        (7, 3.0, 1e15),
        (1e6, 1e4, 5.0),
        (100, 1e-10, 0.3),
    ]:
        assert math.isclose(negative_binomial.logpdf(y, mean, size), mp_nb_logpmf(y, mean, size), rel_tol=1e-10)
    assert math.isclose(negative_binomial.logpdf(7, 3.0, 1e15), poisson.logpdf(7, 3.0), rel_tol=1e-12)
    # Zero inflation far from the Poisson's zero: log f(0) -> log pi, and the positives keep their scale.
    assert ZIP.logpdf(0, 1e-3, 800.0) == math.log(1e-3)
    assert math.isclose(ZIP.logpdf(800, 0.5, 800.0), math.log(0.5) + stats.poisson.logpmf(800, 800), rel_tol=1e-13)
    assert np.isfinite(ZINB.logpdf(0.0, 1e-12, 1e-300, 1e12))


# --- the NLL, its gradient and Hessian ----------------------------------------------------------


def counts_sample(draws: np.ndarray) -> Sample:
    return Sample(draws.astype(float), np.ones(draws.size)).compressed()


RNG = np.random.default_rng(20240505)
ZINB_DRAWS = np.where(RNG.random(800) < 0.3, 0, RNG.negative_binomial(2.0, 2.0 / 9.0, 800))

# (family, theta, sample, indices of the estimated parameters)
DERIV_CASES: list[tuple[Family, np.ndarray, Sample, list[int]]] = [
    (bernoulli, np.array([0.3]), counts_sample(RNG.binomial(1, 0.4, 300)), [0]),
    (binomial, np.array([12.0, 0.6]), counts_sample(RNG.binomial(12, 0.55, 300)), [1]),
    (poisson, np.array([3.7]), counts_sample(RNG.poisson(4.0, 300)), [0]),
    (geometric, np.array([0.3]), counts_sample(RNG.geometric(0.25, 300) - 1), [0]),
    (negative_binomial, np.array([6.0, 1.7]), counts_sample(RNG.negative_binomial(1.5, 0.2, 500)), [0, 1]),
    (negative_binomial, np.array([0.4, 250.0]), counts_sample(RNG.poisson(0.5, 500)), [0, 1]),
    (ZIP, np.array([0.25, 3.3]), counts_sample(np.where(RNG.random(500) < 0.3, 0, RNG.poisson(3.0, 500))), [0, 1]),
    (ZIP, np.array([0.02, 0.8]), counts_sample(RNG.poisson(1.0, 500)), [0, 1]),
    (ZINB, np.array([0.3, 7.5, 2.2]), counts_sample(ZINB_DRAWS), [0, 1, 2]),
    (ZINB, np.array([0.6, 3.0, 0.5]), counts_sample(ZINB_DRAWS), [0, 1, 2]),
    (categorical_with(4), np.array([0.1, 0.2, 0.3, 0.4]), counts_sample(RNG.integers(0, 4, 300)), [0, 1, 2, 3]),
]


def central(f: Any, theta: np.ndarray, k: int, rel: float) -> Any:
    step = rel * max(abs(theta[k]), 1e-3)
    up, down = theta.copy(), theta.copy()
    up[k] += step
    down[k] -= step
    return (f(up) - f(down)) / (2 * step)


@pytest.mark.parametrize(("family", "theta", "sample", "free"), DERIV_CASES, ids=lambda c: getattr(c, "name", ""))
def test_gradient_and_hessian_against_finite_differences(
    family: Family, theta: np.ndarray, sample: Sample, free: list[int]
) -> None:
    value, grad = family.nll_grad(theta, sample)
    assert math.isclose(value, family.nll_value(theta, sample), rel_tol=1e-14)
    assert math.isclose(value, float(family.nll(theta, np.repeat(sample.x, sample.w.astype(int)))), rel_tol=1e-12)
    for k in free:
        fd = central(lambda t: family.nll_value(t, sample), theta, k, 1e-6)
        assert math.isclose(grad[k], fd, rel_tol=1e-6, abs_tol=1e-6 * (1 + abs(value))), (k, grad[k], fd)
    hess = family.nll_hess(theta, sample)
    assert hess is not None
    np.testing.assert_allclose(hess, hess.T, rtol=1e-13)
    for k in free:
        fd_col = central(lambda t: family.nll_grad(t, sample)[1], theta, k, 1e-6)
        np.testing.assert_allclose(hess[free, k], fd_col[free], rtol=1e-5, atol=1e-6 * np.abs(hess).max())


def test_weighted_table_equals_raw_data() -> None:
    draws = np.random.default_rng(3).negative_binomial(2.0, 0.3, 400).astype(float)
    raw, table = Sample(draws, np.ones(draws.size)), counts_sample(draws)
    theta = np.array([0.2, 4.0, 1.5])
    for a, b in zip(ZINB.nll_grad(theta, raw), ZINB.nll_grad(theta, table), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(ZINB.nll_hess(theta, raw), ZINB.nll_hess(theta, table), rtol=1e-12)
    weights = np.random.default_rng(4).random(draws.size)
    expected = -np.sum(weights * zi_logpmf(draws, 0.2, stats.nbinom.logpmf(draws, 1.5, 1.5 / 5.5)))
    assert math.isclose(float(ZINB.nll([0.2, 4.0, 1.5], draws, weights)), expected, rel_tol=1e-12)


# --- closed-form and 1-D maximum-likelihood estimates -------------------------------------------


@pytest.mark.parametrize(
    ("family", "draws", "fixed", "expected"),
    [
        (bernoulli, np.array([0, 1, 1, 0, 1, 1, 1, 0]), {}, [5 / 8]),
        (binomial, np.array([3, 7, 10, 0, 4]), {"trials": 10}, [10, 24 / 50]),
        (poisson, np.array([0, 2, 9, 4, 4, 1]), {}, [20 / 6]),
        (geometric, np.array([0, 2, 9, 4, 4, 1]), {}, [1 / (1 + 20 / 6)]),
        (categorical, np.array([1, 1, 3, 0, 1, 3, 3, 3]), {}, [1 / 8, 3 / 8, 0, 4 / 8]),
    ],
    ids=lambda c: getattr(c, "name", ""),
)
def test_closed_form_mle(family: Family, draws: np.ndarray, fixed: dict[str, float], expected: list[float]) -> None:
    sample = counts_sample(draws)
    bound = family.bind(sample, fixed)
    theta = bound.mle(sample)
    assert theta is not None
    np.testing.assert_allclose(theta, expected, rtol=1e-14)
    # Weights are counts: the MLE of a value-count table is the MLE of the raw data.
    np.testing.assert_allclose(bound.mle(Sample(draws.astype(float), np.ones(draws.size))), theta, rtol=1e-14)
    start = bound.start(sample)
    assert all(d.contains(v) for d, v in zip(bound.domains, start, strict=True) if d.kind != "fixed")


def test_closed_form_mle_zeroes_the_score() -> None:
    rng = np.random.default_rng(11)
    for family, draws in [
        (poisson, rng.poisson(2.3, 1000)),
        (geometric, rng.geometric(0.4, 1000) - 1),
        (bernoulli, rng.binomial(1, 0.7, 1000)),
    ]:
        sample = counts_sample(draws)
        theta = family.mle(sample)
        assert abs(family.nll_grad(theta, sample)[1][0]) < 1e-9 * sample.n


def test_negative_binomial_mle_against_scipy_optimizer() -> None:
    draws = np.random.default_rng(5).negative_binomial(1.3, 0.15, 3000)
    sample = counts_sample(draws)
    theta = negative_binomial.mle(sample)
    assert theta is not None

    def scipy_nll(u: np.ndarray) -> float:
        mean, size = np.exp(u)
        return -float(sample.w @ stats.nbinom.logpmf(sample.x, size, size / (size + mean)))

    ref = optimize.minimize(
        scipy_nll,
        np.log(negative_binomial.start(sample)),
        method="Nelder-Mead",
        options={"xatol": 1e-11, "fatol": 1e-12, "maxiter": 4000},
    )
    np.testing.assert_allclose(theta, np.exp(ref.x), rtol=1e-5)
    assert negative_binomial.nll_value(theta, sample) <= ref.fun + 1e-9
    assert np.all(np.abs(negative_binomial.nll_grad(theta, sample)[1]) < 1e-7 * sample.n)
    # No overdispersion: the likelihood rises towards the Poisson limit, so there is no finite MLE.
    assert negative_binomial.mle(counts_sample(np.random.default_rng(6).binomial(10, 0.5, 500))) is None


def test_zero_inflated_poisson_mle_and_boundary() -> None:
    rng = np.random.default_rng(8)
    draws = np.where(rng.random(2000) < 0.35, 0, rng.poisson(2.0, 2000))
    sample = counts_sample(draws)
    theta = ZIP.mle(sample)
    assert theta is not None
    assert np.all(np.abs(ZIP.nll_grad(theta, sample)[1]) < 1e-8 * sample.n)
    assert ZIP.nll_value(theta, sample) <= ZIP.nll_value(np.array([0.35, 2.0]), sample)
    # Fewer zeros than a Poisson gives: the MLE is on the boundary pi = 0, so there is no interior one.
    assert ZIP.mle(counts_sample(rng.binomial(20, 0.5, 500))) is None
    assert ZIP.mle(counts_sample(np.array([1, 2, 3]))) is None


# --- the unconstrained transforms ---------------------------------------------------------------


def test_default_transform_is_diagonal_with_domain_derivatives() -> None:
    theta = np.array([0.3, 2.5, 0.7])
    u = ZINB.to_unconstrained(theta)
    np.testing.assert_allclose(u, [special.logit(0.3), math.log(2.5), math.log(0.7)], rtol=1e-14)
    back, jac, second = ZINB.from_unconstrained(u)
    np.testing.assert_allclose(back, theta, rtol=1e-14)
    np.testing.assert_allclose(jac, np.diag([0.3 * 0.7, 2.5, 0.7]), rtol=1e-14)
    expected = np.zeros((3, 3, 3))
    expected[0, 0, 0], expected[1, 1, 1], expected[2, 2, 2] = 0.3 * 0.7 * 0.4, 2.5, 0.7
    np.testing.assert_allclose(second, expected, rtol=1e-13)


def test_categorical_simplex_transform() -> None:
    family = categorical_with(4)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    u = family.to_unconstrained(p)
    assert u.shape == (3,)
    theta, jac, second = family.from_unconstrained(u)
    np.testing.assert_allclose(theta, p, rtol=1e-14)
    for j in range(3):
        np.testing.assert_allclose(jac[:, j], central(lambda v: family.from_unconstrained(v)[0], u, j, 1e-6), rtol=1e-8)
        np.testing.assert_allclose(
            second[:, :, j], central(lambda v: family.from_unconstrained(v)[1], u, j, 1e-6), atol=1e-9
        )


def unconstrained_parts(family: Family, sample: Sample, u: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The NLL and its gradient and Hessian in the unconstrained coordinates, by the chain rule of the hook."""
    theta, jac, second = family.from_unconstrained(u)
    value, g = family.nll_grad(theta, sample)
    hess = family.nll_hess(theta, sample)
    assert hess is not None
    return value, jac.T @ g, jac.T @ hess @ jac + np.einsum("k,kij->ij", g, second)


def minimize_unconstrained(family: Family, sample: Sample) -> np.ndarray:
    """A careful optimizer on the unconstrained scale with our analytic derivatives; the optimal ``u``."""
    res = optimize.minimize(
        lambda u: unconstrained_parts(family, sample, u)[:2],
        family.to_unconstrained(family.start(sample)),
        jac=True,
        hess=lambda u: unconstrained_parts(family, sample, u)[2],
        method="trust-exact",
        options={"gtol": 1e-9 * sample.n},
    )
    # trust-exact can stop when its predicted decrease is below the NLL's rounding, just short of
    # gtol: two Newton steps finish the job, and the score at the end is what the test requires.
    u = res.x
    for _ in range(2):
        _, grad, hess = unconstrained_parts(family, sample, u)
        u = u - np.linalg.solve(hess, grad)
    assert np.abs(unconstrained_parts(family, sample, u)[1]).max() < 1e-9 * sample.n
    return u


def test_categorical_fit_through_the_transform() -> None:
    """Minimizing on the log-ratios gives the frequencies and the multinomial covariance."""
    draws = np.random.default_rng(9).choice(4, 500, p=[0.1, 0.2, 0.3, 0.4])
    sample = counts_sample(draws)
    family = categorical.bind(sample, {})
    assert family.param_names == ("p0", "p1", "p2", "p3")

    u = minimize_unconstrained(family, sample)
    freq = np.bincount(draws, minlength=4) / draws.size
    theta, jac, _ = family.from_unconstrained(u)
    np.testing.assert_allclose(theta, freq, rtol=1e-8)
    np.testing.assert_allclose(family.mle(sample), freq, rtol=1e-14)
    vcov = jac @ np.linalg.inv(unconstrained_parts(family, sample, u)[2]) @ jac.T
    np.testing.assert_allclose(vcov, (np.diag(freq) - np.outer(freq, freq)) / draws.size, rtol=1e-6, atol=1e-12)


# --- against statsmodels' count models ----------------------------------------------------------


def assert_optimum_matches(family: Family, sample: Sample, theirs: np.ndarray, llf: float) -> None:
    """Our optimum, found by minimization and by the 1-D MLE, is statsmodels' (and no worse)."""
    for theta in (family.from_unconstrained(minimize_unconstrained(family, sample))[0], family.mle(sample)):
        np.testing.assert_allclose(theta, theirs, rtol=1e-5)
        assert -family.nll_value(theta, sample) >= llf - 1e-8
        assert math.isclose(-family.nll_value(theta, sample), llf, rel_tol=1e-10)


def test_negative_binomial_against_statsmodels() -> None:
    sm = pytest.importorskip("statsmodels.discrete.discrete_model")
    draws = np.random.default_rng(12).negative_binomial(2.5, 2.5 / 8.5, 1500)
    res = sm.NegativeBinomial(draws, np.ones(draws.size), loglike_method="nb2").fit(
        method="newton", maxiter=200, tol=1e-12, disp=0
    )
    sample = counts_sample(draws)
    theirs = np.array(nb_from_statsmodels(math.exp(res.params[0]), res.params[1]))
    assert_optimum_matches(negative_binomial, sample, theirs, res.llf)


def test_zero_inflated_poisson_against_statsmodels() -> None:
    cm = pytest.importorskip("statsmodels.discrete.count_model")
    rng = np.random.default_rng(13)
    draws = np.where(rng.random(1500) < 0.3, 0, rng.poisson(2.5, 1500))
    ones = np.ones((draws.size, 1))
    res = cm.ZeroInflatedPoisson(draws, ones, exog_infl=ones, inflation="logit").fit(
        method="newton", maxiter=200, tol=1e-12, disp=0
    )
    theirs = np.array([special.expit(res.params[0]), math.exp(res.params[1])])
    sample = counts_sample(draws)
    assert_optimum_matches(ZIP, sample, theirs, res.llf)


def test_zero_inflated_negative_binomial_against_statsmodels() -> None:
    cm = pytest.importorskip("statsmodels.discrete.count_model")
    draws = ZINB_DRAWS
    ones = np.ones((draws.size, 1))
    model = cm.ZeroInflatedNegativeBinomialP(draws, ones, exog_infl=ones, inflation="logit", p=2)
    sample = counts_sample(draws)
    theta = ZINB.from_unconstrained(minimize_unconstrained(ZINB, sample))[0]
    # statsmodels' parameters: logit(pi), log(mean), alpha = 1/size; its loglike at ours is our -NLL.
    ours_as_theirs = np.array([special.logit(theta[0]), math.log(theta[1]), 1.0 / theta[2]])
    assert math.isclose(model.loglike(ours_as_theirs), -ZINB.nll_value(theta, sample), rel_tol=1e-12)
    res = model.fit(start_params=ours_as_theirs * 0.9, method="newton", maxiter=200, tol=1e-12, disp=0)
    assert -ZINB.nll_value(theta, sample) >= res.llf - 1e-8
    np.testing.assert_allclose(ours_as_theirs, res.params, rtol=1e-4)


# --- the negative binomial converters -----------------------------------------------------------

positive = st.floats(1e-6, 1e6)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(mean=positive, size=positive)
def test_converters_round_trip(mean: float, size: float) -> None:
    for there, back in [
        (nb_to_scipy, lambda a, b: nb_from_scipy(a, b)),
        (nb_to_torch, lambda a, b: nb_from_torch(a, b)),
        (lambda m, s: nb_to_torch(m, s, logits=True), lambda a, b: nb_from_torch(a, logits=b)),
        (nb_to_statsmodels, nb_from_statsmodels),
    ]:
        a, b = there(mean, size)
        got_mean, got_size = back(a, b)
        # A probability near 1 keeps only eps / (1 - p) of relative accuracy: scipy's p = size/(size+mean)
        # loses eps * size/mean of the mean, torch's probs = mean/(size+mean) eps * mean/size.
        assert math.isclose(got_mean, mean, rel_tol=4e-16 * (2 + size / mean + mean / size))
        assert math.isclose(got_size, size, rel_tol=1e-15)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(mean=st.floats(1e-3, 1e3), size=st.floats(1e-2, 1e3), y=st.integers(0, 300))
def test_converters_agree_with_scipy_statsmodels_and_torch(mean: float, size: float, y: int) -> None:
    ours = float(negative_binomial.logpdf(y, mean, size))
    n, p = nb_to_scipy(mean, size)
    assert math.isclose(stats.nbinom.logpmf(y, n, p), ours, rel_tol=1e-9, abs_tol=1e-9)
    sm = pytest.importorskip("statsmodels.discrete.discrete_model")
    mu, alpha = nb_to_statsmodels(mean, size)
    # NB-P with p = 2 is NB2; its loglike takes alpha itself (NegativeBinomial's takes log alpha before a fit).
    model = sm.NegativeBinomialP(np.array([float(y)]), np.ones((1, 1)), p=2)
    assert math.isclose(model.loglike(np.array([math.log(mu), alpha])), ours, rel_tol=1e-9, abs_tol=1e-9)
    if torch is not None:
        total, probs = nb_to_torch(mean, size)
        _, logits = nb_to_torch(mean, size, logits=True)
        value = torch.tensor(float(y), dtype=torch.float64)
        for dist in (
            torch.distributions.NegativeBinomial(
                torch.tensor(float(total), dtype=torch.float64), probs=torch.tensor(float(probs), dtype=torch.float64)
            ),
            torch.distributions.NegativeBinomial(
                torch.tensor(float(total), dtype=torch.float64), logits=torch.tensor(float(logits), dtype=torch.float64)
            ),
        ):
            assert math.isclose(float(dist.log_prob(value)), ours, rel_tol=1e-8, abs_tol=1e-8)
            assert math.isclose(float(dist.mean), mean, rel_tol=1e-10)
            assert math.isclose(float(dist.variance), float(negative_binomial.var(mean, size)), rel_tol=1e-10)


def test_converters_arrays_and_errors() -> None:
    n, p = nb_to_scipy([1.0, 4.0], 2.0)
    np.testing.assert_allclose(stats.nbinom.mean(n, p), [1.0, 4.0])
    with pytest.raises(ValueError, match=r"negative_binomial: size must be positive and finite; got -1\.0"):
        nb_to_scipy(1.0, [2.0, -1.0])
    with pytest.raises(ValueError, match=r"negative_binomial: p must be in \(0, 1\); got 1\.0"):
        nb_from_scipy(2.0, 1.0)
    with pytest.raises(ValueError, match="exactly one of probs and logits must be given; got both"):
        nb_from_torch(2.0, 0.5, logits=0.0)
    with pytest.raises(ValueError, match="negative_binomial: alpha must be positive"):
        nb_from_statsmodels(1.0, 0.0)


# --- frozen distributions and sampling ----------------------------------------------------------


def test_frozen_and_sampling() -> None:
    dist = categorical(probs=[0.2, 0.3, 0.5])
    assert dist.family.param_names == ("p0", "p1", "p2")
    assert math.isclose(float(dist.logpdf(2)), math.log(0.5))
    assert math.isclose(float(dist.mean()), 1.3)
    rng = np.random.default_rng(21)
    for frozen in [
        dist,
        poisson(rate=3.0),
        geometric(p=0.4),
        negative_binomial(mean=5.0, size=1.5),
        ZIP(pi=0.3, rate=4.0),
        ZINB(pi=0.2, mean=6.0, size=2.0),
        binomial(trials=9, p=0.3),
        bernoulli(p=0.8),
    ]:
        draws = frozen.sample(rng, 20000)
        assert draws.shape == (20000,)
        frozen.family.check_data(draws)
        # The sample mean is within 5 standard errors of the mean (an analytic fact).
        assert abs(draws.mean() - float(frozen.mean())) < 5 * math.sqrt(float(frozen.var()) / draws.size)


# --- bad parameters and data --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: poisson.nll({"rate": -1.0}, [1]), r"poisson: parameter rate must be positive and finite; got -1\.0"),
        (lambda: geometric.nll([1.0], [1]), r"geometric: parameter p must be in \(0, 1\); got 1\.0"),
        (lambda: ZINB.nll({"pi": 0.1, "mean": 2.0}, [1]), "zero_inflated_negative_binomial: parameters must be pi"),
        (
            lambda: poisson.nll([1.0], [0, 2.5, 3, -1]),
            r"poisson: data must be integers in \[0, inf\]; 2 value\(s\) are not, the first is 2\.5 at position 1",
        ),
        (
            lambda: bernoulli.nll([0.5], [0, 1, 2]),
            r"bernoulli: data must be integers in \[0, 1\]; 1 value\(s\) are not, the first is 2\.0 at position 2",
        ),
        (
            lambda: binomial.nll({"trials": 10, "p": 0.5}, [1, 12, 3, 15]),
            r"binomial: data must be integers in \[0, 10\]; 2 value\(s\) are not, the first is 12\.0 at position 1",
        ),
        (
            lambda: binomial.bind(Sample(np.array([1.0, 12.0]), np.ones(2)), {"trials": 10}),
            r"binomial: data must be integers in \[0, 10\]; 1 value\(s\) are not, the first is 12\.0 at position 1",
        ),
        (
            lambda: binomial.bind(Sample(np.array([1.0]), np.ones(1)), {}),
            r"binomial: the number of trials must be given, e\.g\. fixed=\{'trials': 10\}",
        ),
        (
            lambda: binomial.bind(Sample(np.array([1.0]), np.ones(1)), {"trials": 0}),
            "binomial: parameter trials must be a positive integer; got 0",
        ),
        (lambda: binomial(trials=2.5, p=0.5), "binomial: parameter trials must be a positive integer; got 2.5"),
        (lambda: categorical(probs=[0.5, 0.6]), "categorical: probs must sum to 1; got sum 1.1"),
        (lambda: categorical(probs=[1.5, -0.5]), r"categorical: parameter p0 must be in \[0, 1\]; got 1\.5"),
        (lambda: categorical_with(3).theta([0.5, 0.5]), "categorical: probs must be 3 probabilities; got shape"),
        (
            lambda: categorical.nll({"probs": [0.5, 0.5]}, [0, 1, 2]),
            r"categorical: data must be integers in \[0, 1\]; 1 value\(s\) are not, the first is 2\.0 at position 2",
        ),
        (
            lambda: categorical.bind(Sample(np.array([0.0, 1.0]), np.ones(2)), {"p0": 0.5}),
            "categorical: probabilities cannot be held fixed",
        ),
    ],
)
def test_errors(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_logpdf_outside_the_support_is_minus_infinity() -> None:
    assert poisson.logpdf(-1.0, 2.0) == -np.inf and poisson.logpdf(1.5, 2.0) == -np.inf
    np.testing.assert_array_equal(binomial.logpdf([-1.0, 11.0, 2.5], 10, 0.5), -np.inf)
    assert negative_binomial.logpdf(0.5, 2.0, 1.0) == -np.inf


@pytest.mark.parametrize(
    "draws",
    [np.zeros(20), np.full(20, 3.0), np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 0.0, 50.0])],
    ids=["zeros", "constant", "no-zeros", "one-large"],
)
def test_starts_are_inside_the_domains_on_awkward_data(draws: np.ndarray) -> None:
    sample = counts_sample(draws)
    for family in (poisson, geometric, negative_binomial, ZIP, ZINB, categorical):
        bound = family.bind(sample, {})
        start = bound.start(sample)
        np.testing.assert_allclose(bound.theta(start), start, rtol=1e-14)  # validates against the domains
        assert np.all(np.isfinite(bound.to_unconstrained(start)))
        assert np.all(np.isfinite(bound.nll_grad(start, sample)[1]))
