"""The continuous families other than the normal, and the frozen distribution, against scipy.stats."""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import optimize, stats

from nllkit.distributions._beta import beta
from nllkit.distributions._family import Family, Sample
from nllkit.distributions._frozen import Frozen
from nllkit.distributions._location_scale import laplace, logistic, student_t, weighted_median
from nllkit.distributions._positive import exponential, gamma, lognormal, weibull

# (family, theta, the same law in scipy)
Case = tuple[Family, tuple[float, ...], Callable[..., Any]]


def _scipy(family: Family, theta: Any) -> Any:
    """The frozen scipy distribution with the same parameters."""
    t = [float(v) for v in theta]
    if family is lognormal:
        return stats.lognorm(t[1], scale=math.exp(t[0]))
    if family is exponential:
        return stats.expon(scale=1.0 / t[0])
    if family is gamma:
        return stats.gamma(t[0], scale=t[1])
    if family is weibull:
        return stats.weibull_min(t[0], scale=t[1])
    if family is student_t:
        return stats.t(t[0], t[1], t[2])
    if family is laplace:
        return stats.laplace(t[0], t[1])
    if family is logistic:
        return stats.logistic(t[0], t[1])
    assert family is beta
    return stats.beta(t[0], t[1])


CASES = [
    (lognormal, (0.3, 0.8)),
    (lognormal, (-2.0, 2.5)),
    (exponential, (2.5,)),
    (gamma, (2.7, 1.3)),
    (gamma, (0.4, 2.0)),
    (weibull, (1.7, 2.2)),
    (weibull, (0.6, 1.0)),
    (student_t, (4.5, 1.0, 2.0)),
    (student_t, (1.5, -3.0, 0.5)),
    (laplace, (0.5, 1.5)),
    (logistic, (-1.0, 0.7)),
    (beta, (2.3, 0.7)),
    (beta, (0.5, 0.5)),
    (beta, (40.0, 60.0)),
]
IDS = [f"{f.name}{t}" for f, t in CASES]
FAMILIES = [lognormal, exponential, gamma, weibull, student_t, laplace, logistic, beta]


def _grid(family: Family, theta: tuple[float, ...]) -> np.ndarray:
    """Points across the distribution's range, its tails, the support's edges and beyond."""
    q = np.concatenate([[1e-12, 1e-6], np.linspace(0.01, 0.99, 25), [1 - 1e-6]])
    inside = _scipy(family, theta).ppf(q)
    edges = [-np.inf, -5.0, -1e-300, 0.0, 1e-300, 1.0, 1.5, 1e10, np.inf, np.nan]
    return np.concatenate([inside, edges])


def _draw(family: Family, theta: tuple[float, ...], n: int, seed: int) -> np.ndarray:
    return _scipy(family, theta).rvs(size=n, random_state=np.random.default_rng(seed))


# --- values against scipy ------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "theta"), CASES, ids=IDS)
def test_logpdf_cdf_sf_match_scipy(family: Family, theta: tuple[float, ...]) -> None:
    x = _grid(family, theta)
    ref = _scipy(family, theta)
    with np.errstate(all="ignore"):
        logpdf, expected = family.logpdf(x, *theta), ref.logpdf(x)
        # Where scipy's logpdf is not finite it may be NaN (inf - inf at x = inf) or an underflowed
        # log(pdf) (laplace at 1e10): the density is 0 or tiny there, and ours says so without NaN.
        exact = np.isfinite(expected) | np.isnan(x)
        np.testing.assert_allclose(logpdf[exact], expected[exact], rtol=1e-12, atol=1e-13)
        assert np.all((logpdf[~exact] == -np.inf) | (logpdf[~exact] < -700.0) | (expected[~exact] == np.inf))
        np.testing.assert_allclose(family.cdf(x, *theta), ref.cdf(x), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(family.sf(x, *theta), ref.sf(x), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize(("family", "theta"), CASES, ids=IDS)
def test_ppf_mean_var_match_scipy(family: Family, theta: tuple[float, ...]) -> None:
    q = np.array([-0.5, 0.0, 1e-10, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0, 1.5, np.nan])
    ref = _scipy(family, theta)
    np.testing.assert_allclose(family.ppf(q, *theta), ref.ppf(q), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(family.mean(*theta), ref.mean(), rtol=1e-12)
    np.testing.assert_allclose(family.var(*theta), ref.var(), rtol=1e-12)


@pytest.mark.parametrize(
    ("family", "x", "theta"),
    [
        (lognormal, 1e-30, (0.0, 1.0)),
        (lognormal, 1e30, (0.0, 1.0)),
        (gamma, 300.0, (200.0, 1.0)),
        (gamma, 1e-300, (0.5, 1.0)),
        (student_t, 1e6, (3.0, 0.0, 1.0)),
        (student_t, 2.0, (1e8, 0.0, 1.0)),
        (beta, 0.5, (400.0, 400.0)),
        (beta, 1e-300, (2.0, 3.0)),
        (weibull, 50.0, (3.0, 1.0)),
        (logistic, -800.0, (0.0, 1.0)),
        (exponential, 1e300, (1.0,)),
    ],
)
def test_logpdf_finite_at_extremes(family: Family, x: float, theta: tuple[float, ...]) -> None:
    """The §4.4 cases (where a linear-space pdf gives inf or nan) and more: finite and equal to scipy."""
    ours = family.logpdf(x, *theta)
    assert np.isfinite(ours)
    np.testing.assert_allclose(ours, _scipy(family, theta).logpdf(x), rtol=1e-10)


def test_logpdf_finite_where_scipy_overflows() -> None:
    """scipy gives -inf here (z**2 or the pdf overflow); the exact values, from mpmath, are finite."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    x, df = mp.mpf("1e200"), mp.mpf(3)
    t_exact = (
        mp.loggamma((df + 1) / 2) - mp.loggamma(df / 2) - mp.log(df * mp.pi) / 2 - (df + 1) / 2 * mp.log1p(x**2 / df)
    )
    np.testing.assert_allclose(student_t.logpdf(1e200, 3.0, 0.0, 1.0), float(t_exact), rtol=1e-14)
    np.testing.assert_allclose(laplace.logpdf(1e300, 0.0, 1.0), -1e300, rtol=1e-15)


def test_logpdf_broadcasts_over_parameters() -> None:
    x = np.array([[0.5], [2.0]])
    shape = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(gamma.logpdf(x, shape, 2.0), stats.gamma.logpdf(x, shape, scale=2.0), rtol=1e-13)
    np.testing.assert_allclose(student_t.logpdf(x, shape, 0.1, 1.5), stats.t.logpdf(x, shape, 0.1, 1.5), rtol=1e-13)


# --- derivatives ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "theta"), CASES, ids=IDS)
def test_gradient_and_hessian_match_differences(family: Family, theta: tuple[float, ...], check_derivatives) -> None:
    rng = np.random.default_rng(11)
    x = _draw(family, theta, 200, seed=3)
    sample = Sample(x, rng.uniform(0.5, 2.0, x.size))
    # Away from the optimum (so the score is not ~0) and at the true parameters.
    for t in (np.array(theta), np.array(theta) * 1.1):
        # The Laplace NLL is piecewise linear in loc: its Hessian there is the expected information.
        check_derivatives(family, t, sample, skip_hess=[(0, 0)] if family is laplace else ())
    if family is laplace:
        np.testing.assert_allclose(family.nll_hess(np.array(theta), sample)[0, 0], sample.n / theta[1] ** 2)


# --- maximum likelihood --------------------------------------------------------------------------


def _scipy_fit(family: Family, x: np.ndarray) -> np.ndarray:
    """scipy's MLE in the family's parameterisation, with no free location."""
    if family is lognormal:
        s, _, scale = stats.lognorm.fit(x, floc=0.0)
        return np.array([math.log(scale), s])
    if family is exponential:
        return np.array([1.0 / stats.expon.fit(x, floc=0.0)[1]])
    if family is gamma:
        a, _, scale = stats.gamma.fit(x, floc=0.0)
        return np.array([a, scale])
    if family is weibull:
        c, _, scale = stats.weibull_min.fit(x, floc=0.0)
        return np.array([c, scale])
    if family is laplace:
        return np.array(stats.laplace.fit(x))
    assert family is beta, family
    a, b, _, _ = stats.beta.fit(x, floc=0.0, fscale=1.0)
    return np.array([a, b])


MLE_CASES = [
    (lognormal, (0.3, 0.8)),
    (exponential, (2.5,)),
    (gamma, (2.7, 1.3)),
    (gamma, (0.4, 2.0)),
    (weibull, (1.7, 2.2)),
    (weibull, (0.6, 1.0)),
    (laplace, (0.5, 1.5)),
    (beta, (2.3, 0.7)),
    (beta, (40.0, 60.0)),
]


@pytest.mark.parametrize(("family", "theta"), MLE_CASES, ids=[f"{f.name}{t}" for f, t in MLE_CASES])
@pytest.mark.parametrize("n", [15, 2000])
def test_mle_matches_scipy_fit(family: Family, theta: tuple[float, ...], n: int) -> None:
    x = _draw(family, theta, n, seed=n)
    sample = Sample(x, np.ones_like(x))
    ours = family.mle(sample)
    assert ours is not None
    reference = _scipy_fit(family, x)
    np.testing.assert_allclose(ours, reference, rtol=1e-4)
    ours_nll, reference_nll = family.nll_value(ours, sample), family.nll_value(reference, sample)
    assert ours_nll <= reference_nll + 1e-9 * abs(reference_nll)
    assert ours_nll <= family.nll_value(np.array(theta), sample)
    # The score vanishes at the estimate (Laplace: the scale's score; loc's is a subgradient).
    score = family.nll_grad(ours, sample)[1]
    assert abs(score[-1]) * ours[-1] <= 1e-6 * n


@pytest.mark.parametrize(("family", "theta"), MLE_CASES, ids=[f"{f.name}{t}" for f, t in MLE_CASES])
def test_mle_of_value_count_table_equals_raw(family: Family, theta: tuple[float, ...]) -> None:
    """Weights are counts: the compressed sample has the same estimate."""
    x = np.round(_draw(family, theta, 400, seed=5), 2)
    x = x[~family.support.outside(x)]
    raw = Sample(x, np.ones_like(x))
    table = raw.compressed()
    assert table.x.size < x.size
    np.testing.assert_allclose(family.mle(table), family.mle(raw), rtol=1e-10)


@pytest.mark.parametrize("family", [exponential, gamma, weibull, laplace, lognormal], ids=lambda f: f.name)
def test_mle_rescales_with_the_data(family: Family) -> None:
    theta = {"exponential": (2.0,), "lognormal": (0.5, 1.2), "laplace": (1.0, 2.0)}.get(family.name, (1.5, 3.0))
    x = _draw(family, theta, 300, seed=8)
    s = 1e-6
    scaled = family.mle(Sample(s * x, np.ones_like(x)))
    np.testing.assert_allclose(scaled, family.rescale(family.mle(Sample(x, np.ones_like(x))), s), rtol=1e-9)


@pytest.mark.parametrize(("family", "theta"), [(gamma, (2.7, 1.3)), (beta, (2.3, 0.7)), (beta, (0.5, 400.0))])
def test_sufficient_statistics_add_over_chunks(family: Any, theta: tuple[float, ...]) -> None:
    """The door to fitting data larger than memory: per-chunk statistics add up to the same fit."""
    x = _draw(family, theta, 3000, seed=6)
    whole = Sample(x, np.ones_like(x))
    chunks = [family.stats(Sample(c, np.ones_like(c))) for c in np.array_split(x, 3)]
    summed = tuple(float(v) for v in np.sum(chunks, axis=0))
    np.testing.assert_allclose(summed, family.stats(whole), rtol=1e-12)
    np.testing.assert_allclose(family.mle_from_stats(summed), family.mle(whole), rtol=1e-10)
    np.testing.assert_allclose(family.mle(whole), _scipy_fit(family, x), rtol=1e-6)


def test_memo_is_per_sample_and_per_point_and_released() -> None:
    """Cached per-value pieces never leak between samples or parameter values, nor outlive their sample."""
    rng = np.random.default_rng(3)
    first, second = (Sample(rng.standard_t(5.0, 50), np.ones(50)) for _ in range(2))
    for family, theta in ((student_t, np.array([5.0, 0.1, 1.2])), (weibull, np.array([1.5, 2.0]))):
        if family is weibull:
            first, second = (Sample(np.abs(s.x) + 0.1, s.w) for s in (first, second))
        for sample in (first, second, first):
            for t in (theta, theta * 1.5, theta):
                np.testing.assert_allclose(family.nll_grad(t, sample)[0], family.nll_value(t, sample), rtol=1e-13)
    probe = Sample(np.array([1.0, 2.0]), np.ones(2))
    gamma.nll_grad(np.array([1.0, 1.0]), probe)
    assert gamma.memo._state is not None
    del probe
    gc.collect()
    assert gamma.memo._state is None


def test_mle_does_not_exist_for_constant_data() -> None:
    for family in (lognormal, gamma, weibull, laplace, beta):
        constant = Sample(np.full(10, 0.123456 if family is beta else 2.0), np.ones(10))
        assert family.mle(constant) is None
        start = family.start(constant)
        assert all(d.contains(v) for d, v in zip(family.domains, start, strict=True))
        assert 0.5 < family.mean(*start) / constant.x[0] < 2.0
    assert exponential.mle(Sample(np.zeros(3), np.ones(3))) is None


def _careful_scipy_mle(family: Family, x: np.ndarray) -> np.ndarray:
    """A tight optimizer on scipy's logpdf (scipy's own fit stops early), from scipy's fit."""
    if family is student_t:
        start = np.array(stats.t.fit(x))
        ref: Callable[[np.ndarray], float] = lambda t: -np.sum(stats.t.logpdf(x, t[0], t[1], t[2]))  # noqa: E731
    else:
        start = np.array(stats.logistic.fit(x))
        ref = lambda t: -np.sum(stats.logistic.logpdf(x, t[0], t[1]))  # noqa: E731
    result = optimize.minimize(
        ref, start, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000}
    )
    return result.x


@pytest.mark.parametrize(
    ("family", "theta"), [(student_t, (3.0, 1.0, 2.0)), (logistic, (-1.0, 0.7))], ids=["t", "logistic"]
)
def test_start_and_hessian_reach_the_scipy_optimum(family: Family, theta: tuple[float, ...], newton) -> None:
    x = _draw(family, theta, 1000, seed=21)
    sample = Sample(x, np.ones_like(x))
    ours, iterations = newton(family, sample, family.start(sample))
    assert iterations < 30
    reference = _careful_scipy_mle(family, x)
    np.testing.assert_allclose(ours, reference, rtol=1e-4)
    assert family.nll_value(ours, sample) <= family.nll_value(reference, sample) + 1e-9 * x.size
    np.testing.assert_allclose(family.nll_grad(ours, sample)[1], 0.0, atol=1e-6)


UGLY = {
    "tiny": lambda rng: 1e-8 * rng.gamma(2.0, size=300),
    "huge": lambda rng: 1e8 * rng.gamma(2.0, size=300),
    "heavy": lambda rng: np.abs(rng.standard_cauchy(300)) + 1e-3,
    "ties": lambda rng: np.round(rng.gamma(5.0, size=300)) + 1.0,
    "outlier": lambda rng: np.append(rng.gamma(3.0, size=299), 1e6),
}


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
@pytest.mark.parametrize("kind", list(UGLY))
def test_start_is_inside_the_domains_on_ugly_data(family: Family, kind: str, newton) -> None:
    x = UGLY[kind](np.random.default_rng(4))
    if family is beta:
        x = x / (1.01 * x.max())  # into (0, 1), still skewed, tied or with an outlier near 1
    sample = Sample(x, np.ones_like(x))
    start = family.start(sample)
    assert all(d.contains(float(v)) for d, v in zip(family.domains, start, strict=True))
    assert np.isfinite(family.nll_value(start, sample))
    if family in (weibull, logistic, student_t) and kind in ("heavy", "outlier"):
        # The start is good enough for plain Newton, and the MLE, where closed, is as good.
        estimate, _ = newton(family, sample, start)
        closed = family.mle(sample)
        if closed is not None:
            np.testing.assert_allclose(closed, estimate, rtol=1e-6)


# --- samples -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "theta"),
    [
        (lognormal, (0.3, 0.5)),
        (exponential, (2.5,)),
        (gamma, (2.7, 1.3)),
        (weibull, (1.7, 2.2)),
        (student_t, (10.0, 1.0, 2.0)),
        (laplace, (0.5, 1.5)),
        (logistic, (-1.0, 0.7)),
        (beta, (2.3, 0.7)),
    ],
)
def test_sample_moments(family: Family, theta: tuple[float, ...]) -> None:
    n = 40_000
    draws = family(*theta).sample(np.random.default_rng(0), n)
    assert draws.shape == (n,)
    assert not family.support.outside(draws).any()
    mean, var = float(family.mean(*theta)), float(family.var(*theta))
    assert abs(draws.mean() - mean) < 5.0 * math.sqrt(var / n)
    assert abs(draws.var() / var - 1.0) < 0.06
    # Kolmogorov-Smirnov against scipy's cdf: the draws are from the right law, not just its moments.
    assert stats.kstest(draws[:5000], _scipy(family, theta).cdf).pvalue > 1e-3


def test_sample_broadcasts_parameters() -> None:
    rng = np.random.default_rng(1)
    draws = laplace.sample(rng, None, np.array([0.0, 100.0, -100.0]), 1.0)
    assert draws.shape == (3,)
    np.testing.assert_allclose(draws, [0.0, 100.0, -100.0], atol=20.0)
    assert len(set(laplace.sample(rng, None, np.zeros(5), 1.0))) == 5


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "params", "message"),
    [
        (gamma, {"shape": -1.0, "scale": 1.0}, "gamma: parameter shape must be positive and finite; got -1.0"),
        (student_t, {"df": 3.0, "loc": np.nan, "scale": 1.0}, "student_t: parameter loc must be a finite real"),
        (beta, {"a": 1.0, "b": 0.0}, "beta: parameter b must be positive"),
        (weibull, {"shape": 1.0}, "weibull: parameters must be shape, scale; got shape"),
        (exponential, {"rate": np.inf}, "exponential: parameter rate must be positive and finite; got inf"),
    ],
)
def test_bad_parameters_raise(family: Family, params: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        family.nll(params, [0.5])
    with pytest.raises(ValueError, match=message.split(";")[0]):
        family(**params)


@pytest.mark.parametrize(
    ("family", "params", "data", "message"),
    [
        (
            gamma,
            (2.0, 1.0),
            [1.0, 2.0, -3.0, 0.0],
            r"gamma: data must be reals in \(0, inf\); 2 value\(s\) are not, "
            r"the first is -3.0 at position 2",
        ),
        (
            beta,
            (2.0, 2.0),
            [0.5, 1.0],
            r"beta: data must be reals in \(0, 1\); 1 value\(s\) are not, "
            r"the first is 1.0 at position 1",
        ),
        (lognormal, (0.0, 1.0), [1.0, 0.0], r"lognormal: .* the first is 0.0 at position 1"),
        (exponential, (1.0,), [0.0, -1e-9], r"exponential: data must be reals in \[0, inf\); 1 value"),
        (student_t, (3.0, 0.0, 1.0), [1.0, np.nan], r"student_t: .* the first is nan at position 1"),
        (weibull, (1.0, 1.0), [np.inf], r"weibull: .* the first is inf at position 0"),
    ],
)
def test_data_outside_the_support_raise(family: Family, params: Any, data: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        family.nll(params, data)


def test_nll_reductions_and_weights_match_scipy() -> None:
    x = _draw(gamma, (2.0, 3.0), 50, seed=2)
    w = np.random.default_rng(2).uniform(0.1, 3.0, x.size)
    terms = -w * stats.gamma.logpdf(x, 2.0, scale=3.0)
    np.testing.assert_allclose(gamma.nll({"shape": 2.0, "scale": 3.0}, x, w, "none"), terms, rtol=1e-13)
    np.testing.assert_allclose(gamma.nll((2.0, 3.0), x, w), terms.sum(), rtol=1e-13)
    np.testing.assert_allclose(gamma.nll((2.0, 3.0), x, w, "mean"), terms.sum() / w.sum(), rtol=1e-13)
    np.testing.assert_allclose(gamma.nll_value(np.array([2.0, 3.0]), Sample(x, w)), terms.sum(), rtol=1e-13)


def test_weighted_median_conventions() -> None:
    rng = np.random.default_rng(9)
    for size in (1, 2, 7, 10):
        x = rng.normal(size=size)
        assert weighted_median(x, np.ones(size)) == np.median(x)
        assert weighted_median(x, np.full(size, 0.3) * np.arange(1, size + 1) ** 0) == np.median(x)
    # Integer weights are repetitions: the same midpoint rule as np.median of the expanded data.
    values, counts = np.array([3.0, 1.0, 2.0, 5.0]), np.array([1.0, 2.0, 1.0, 2.0])
    assert weighted_median(values, counts) == np.median(np.repeat(values, counts.astype(int)))
    assert weighted_median(values, np.array([1.0, 2.0, 1.0, 5.0])) == 5.0


# --- the frozen distribution ---------------------------------------------------------------------


def test_frozen_forwards_to_the_family_and_agrees_with_scipy() -> None:
    d = student_t(df=4.0, loc=1.0, scale=2.0)
    assert isinstance(d, Frozen)
    ref = stats.t(4.0, 1.0, 2.0)
    assert d.params == {"df": 4.0, "loc": 1.0, "scale": 2.0}
    assert repr(d) == "student_t(df=4, loc=1, scale=2)"
    x = np.array([-3.0, 0.0, 1.0, 7.5])
    np.testing.assert_allclose(d.logpdf(x), ref.logpdf(x), rtol=1e-13)
    np.testing.assert_allclose(d.pdf(x), ref.pdf(x), rtol=1e-13)
    np.testing.assert_allclose(d.cdf(x), ref.cdf(x), rtol=1e-13)
    np.testing.assert_allclose(d.sf(x), ref.sf(x), rtol=1e-13)
    np.testing.assert_allclose(d.ppf([0.1, 0.5, 0.9]), ref.ppf([0.1, 0.5, 0.9]), rtol=1e-13)
    np.testing.assert_allclose([d.mean(), d.var(), d.std()], [ref.mean(), ref.var(), ref.std()], rtol=1e-13)
    np.testing.assert_allclose(d.nll(x), -ref.logpdf(x).sum(), rtol=1e-13)
    np.testing.assert_allclose(d.nll(x, reduction="none"), -ref.logpdf(x), rtol=1e-13)
    assert d.to_dict() == {"family": "student_t", "params": {"df": 4.0, "loc": 1.0, "scale": 2.0}}


def test_frozen_construction_and_sampling() -> None:
    d = Frozen(gamma, np.array([2.0, 3.0]))
    assert d == gamma(2.0, 3.0) == gamma(shape=2.0, scale=3.0)
    assert d != gamma(2.0, 3.5)
    np.testing.assert_array_equal(d.sample(5, size=4), d.sample(np.random.default_rng(5), size=4))
    assert np.shape(d.sample(size=(2, 3))) == (2, 3)
    assert np.ndim(d.sample(1)) == 0
    # The upper tail keeps its precision where 1 - cdf would round to 0.
    assert d.sf(300.0) > 0.0
    np.testing.assert_allclose(d.sf(300.0), stats.gamma.sf(300.0, 2.0, scale=3.0), rtol=1e-12)
    with pytest.raises(ValueError, match="gamma: parameter scale must be positive"):
        Frozen(gamma, [2.0, -1.0])
