"""Censored fits against scipy: log-likelihood, estimates and standard errors, and the input form's errors.

The oracle is the censored NLL written with scipy's own ``logpdf``/``logcdf``/
``logsf``, minimized by a careful Nelder-Mead from the true parameters on the
log scale of positive parameters; its standard errors are central differences
of that NLL in the natural parameters. scipy's ``fit(CensoredData)`` is a
second, looser oracle: nllkit's log-likelihood must be at least its.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as st

from nllkit.distributions import beta, exponential, gamma, laplace, logistic, lognormal, normal, student_t, weibull
from nllkit.distributions._continuous import log1mexp
from nllkit.fitting import Censored, ConvergenceWarning, compare, fit
from nllkit.fitting._censored import CensoredProblem, log_probability

# nllkit parameters -> scipy's (shapes..., loc, scale) of a scipy law; which parameters are positive.
SCIPY: dict[str, tuple[Any, Callable[..., tuple[float, ...]], tuple[bool, ...]]] = {
    "normal": (st.norm, lambda loc, scale: (loc, scale), (False, True)),
    "lognormal": (st.lognorm, lambda mu, sigma: (sigma, 0.0, math.exp(mu)), (False, True)),
    "exponential": (st.expon, lambda rate: (0.0, 1.0 / rate), (True,)),
    "weibull": (st.weibull_min, lambda k, scale: (k, 0.0, scale), (True, True)),
    "gamma": (st.gamma, lambda a, scale: (a, 0.0, scale), (True, True)),
    "logistic": (st.logistic, lambda loc, scale: (loc, scale), (False, True)),
    "student_t": (st.t, lambda df, loc, scale: (df, loc, scale), (True, False, True)),
}
TRUE = {
    "normal": (10.0, 2.0),
    "lognormal": (0.5, 0.8),
    "exponential": (0.25,),
    "weibull": (1.7, 3.0),
    "gamma": (2.5, 1.5),
    "logistic": (-3.0, 1.5),
    "student_t": (4.0, 1.0, 2.0),
}
FAMILIES = {f.name: f for f in (normal, lognormal, exponential, weibull, gamma, logistic, student_t)}


def censor(x: np.ndarray, scheme: str, rng: np.random.Generator) -> Censored:
    """Right (random censoring times), left (a detection limit), interval (binned) or all three mixed."""
    q = np.quantile(x, [0.2, 0.7])
    width = (q[1] - q[0]) / 4.0
    lower, upper = x.copy(), x.copy()
    if scheme in ("right", "mixed"):
        times = rng.uniform(q[0], 2.0 * q[1] - q[0], size=x.size)
        right = x > times
        lower[right], upper[right] = times[right], np.inf
    if scheme in ("left", "mixed"):
        left = x < q[0]
        lower[left], upper[left] = -np.inf, q[0]
    if scheme == "interval":
        binned = rng.random(x.size) < 0.6  # some exact, most binned
        lo = np.floor(x / width) * width
        lower[binned], upper[binned] = lo[binned], lo[binned] + width
    if scheme == "mixed":
        binned = (lower == upper) & (rng.random(x.size) < 0.3)
        lo = np.floor(x / width) * width
        lower[binned], upper[binned] = lo[binned], lo[binned] + width
    return Censored.from_bounds(lower, upper)


def scipy_nll(name: str, data: Censored, weights: np.ndarray | None = None) -> Callable[[np.ndarray], float]:
    law, args, _ = SCIPY[name]
    lo, hi = data.lower, data.upper
    w = np.ones(lo.size) if weights is None else weights
    exact, left, right = lo == hi, (lo == -np.inf) & (hi < np.inf), (hi == np.inf) & (lo > -np.inf)
    interval = ~(exact | left | right)

    def nll(theta: np.ndarray) -> float:
        a = args(*theta)
        with np.errstate(all="ignore"):
            lf_lo, lf_hi = law.logcdf(lo[interval], *a), law.logcdf(hi[interval], *a)
            total = (
                w[exact] @ law.logpdf(lo[exact], *a)
                + w[left] @ law.logcdf(hi[left], *a)
                + w[right] @ law.logsf(lo[right], *a)
                + w[interval] @ (lf_hi + log1mexp(lf_lo - lf_hi))
            )
        return -float(total) if np.isfinite(total) else math.inf

    return nll


def oracle(name: str, nll: Callable[[np.ndarray], float], start: tuple[float, ...]) -> np.ndarray:
    """Nelder-Mead on the log scale of positive parameters, restarted until it stops moving."""
    positive = np.array(SCIPY[name][2])

    def to_theta(u: np.ndarray) -> np.ndarray:
        return np.where(positive, np.exp(np.where(positive, u, 0.0)), u)

    u = np.array([math.log(t) if pos else t for t, pos in zip(start, positive, strict=True)])
    for _ in range(4):
        res = optimize.minimize(
            lambda v: nll(to_theta(v)),
            u,
            method="Nelder-Mead",
            options={"xatol": 1e-11, "fatol": 1e-13, "maxiter": 20_000, "maxfev": 20_000},
        )
        if np.allclose(res.x, u, rtol=0.0, atol=1e-10):
            break
        u = res.x
    return to_theta(res.x)


def fd_se(nll: Callable[[np.ndarray], float], theta: np.ndarray, h: np.ndarray | None = None) -> np.ndarray:
    """Standard errors from a central-difference Hessian of ``nll`` in the natural parameters (steps ``h``)."""
    p = theta.size
    h = 1e-4 * np.maximum(np.abs(theta), 1e-2) if h is None else h
    hess = np.empty((p, p))
    for i in range(p):
        for j in range(p):
            ei, ej = np.eye(p)[i] * h[i], np.eye(p)[j] * h[j]
            hess[i, j] = (nll(theta + ei + ej) - nll(theta + ei - ej) - nll(theta - ei + ej) + nll(theta - ei - ej)) / (
                4.0 * h[i] * h[j]
            )
    return np.sqrt(np.diag(np.linalg.inv(hess)))


def draw(name: str, n: int, seed: int) -> np.ndarray:
    """Seeded values; the censoring draws its own stream (``default_rng([seed, 1])``), independent of them."""
    return np.asarray(FAMILIES[name].sample(np.random.default_rng(seed), n, *TRUE[name]), dtype=float)


@pytest.mark.parametrize("scheme", ["right", "left", "interval", "mixed"])
@pytest.mark.parametrize("name", ["normal", "lognormal", "exponential", "weibull", "gamma", "logistic"])
def test_censored_fit_matches_scipy_oracle(name: str, scheme: str) -> None:
    seed = 1000 + 10 * list(SCIPY).index(name) + ["right", "left", "interval", "mixed"].index(scheme)
    rng = np.random.default_rng([seed, 1])
    data = censor(draw(name, 150, seed), scheme, rng)
    assert data.num_censored() > 15
    result = fit(data, name)
    assert result.converged, result.message
    assert result.n == 150.0
    nll = scipy_nll(name, data)
    reference = oracle(name, nll, TRUE[name])
    theta = np.array(list(result.params.values()))
    # The loglik is scipy's censored log-likelihood at the estimate, and at least the oracle's optimum.
    assert result.loglik == pytest.approx(-nll(theta), rel=1e-12, abs=1e-10)
    assert result.loglik >= -nll(reference) - 1e-9
    np.testing.assert_allclose(theta, reference, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.array(list(result.se.values())), fd_se(nll, theta), rtol=1e-2)


def test_student_t_mixed_censoring_matches_scipy_oracle() -> None:
    rng = np.random.default_rng([77, 1])
    data = censor(draw("student_t", 300, 77), "mixed", rng)
    result = fit(data, "t")
    nll = scipy_nll("student_t", data)
    theta = np.array(list(result.params.values()))
    assert result.loglik >= -nll(oracle("student_t", nll, TRUE["student_t"])) - 1e-9
    np.testing.assert_allclose(theta, oracle("student_t", nll, TRUE["student_t"]), rtol=1e-4)
    np.testing.assert_allclose(np.array(list(result.se.values())), fd_se(nll, theta), rtol=1e-2)


def test_location_far_from_zero() -> None:
    """Data 1e4 +- 1: rescaling leaves the location at about 1 and the scale at 1e-4; steps follow the scale."""
    x = np.random.default_rng(21).normal(1e4, 1.0, 300)
    data = censor(x, "mixed", np.random.default_rng([21, 1]))
    result = fit(data, "normal")
    nll = scipy_nll("normal", data)
    theta = np.array(list(result.params.values()))
    reference = oracle("normal", nll, (1e4, 1.0))
    se = fd_se(nll, theta, h=np.array([1e-3, 1e-3]))
    assert result.loglik >= -nll(reference) - 1e-9
    np.testing.assert_allclose((theta - reference) / se, 0.0, atol=1e-5)
    np.testing.assert_allclose(list(result.se.values()), se, rtol=1e-4)


@pytest.mark.parametrize(
    ("name", "scipy_fit"),
    [
        ("normal", lambda d: st.norm.fit(d)),
        ("weibull", lambda d: (lambda c, loc, scale: (c, scale))(*st.weibull_min.fit(d, floc=0))),
        ("lognormal", lambda d: (lambda s, loc, scale: (math.log(scale), s))(*st.lognorm.fit(d, floc=0))),
    ],
)
def test_loglik_at_least_scipy_censored_data_fit(name: str, scipy_fit: Callable[[Any], tuple[float, ...]]) -> None:
    rng = np.random.default_rng([5, 1])
    data = censor(draw(name, 200, 5), "mixed", rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = scipy_fit(data.to_scipy())  # in nllkit's parameters
    theirs = -scipy_nll(name, data)(np.array(params))
    result = fit(data, name)
    assert result.loglik >= theirs - 1e-9
    assert result.loglik - theirs < 1e-2  # the same optimum, up to scipy's fmin tolerance


def test_no_censoring_is_the_ordinary_fit() -> None:
    x = draw("gamma", 500, 3)
    for data in (Censored(x), Censored.from_bounds(x, x), Censored.right_censored(x, np.zeros(x.size, bool))):
        censored, plain = fit(data, "gamma"), fit(x, "gamma")
        assert censored.params == plain.params
        assert censored.se == plain.se
        assert censored.loglik == plain.loglik
        assert censored.message == plain.message


def test_only_censored_rows_binned_normal() -> None:
    """Grouped data (every value an interval) identify both parameters: the classic binned-normal MLE."""
    x = draw("normal", 400, 11)
    edges = np.array([-np.inf, 6.0, 8.0, 9.0, 10.0, 11.0, 12.0, 14.0, np.inf])
    idx = np.searchsorted(edges, x) - 1
    data = Censored(interval=np.column_stack([edges[idx], edges[idx + 1]]))
    result = fit(data, "normal")
    nll = scipy_nll("normal", data)
    np.testing.assert_allclose(list(result.params.values()), oracle("normal", nll, TRUE["normal"]), rtol=1e-4)
    assert result.loglik == pytest.approx(-nll(np.array(list(result.params.values()))), rel=1e-12)
    assert result.loglik < 0.0  # a sum of log probabilities, no density Jacobian
    assert isinstance(result._problem, CensoredProblem)


def test_weights_equal_repeated_rows() -> None:
    rng = np.random.default_rng([8, 1])
    data = censor(draw("weibull", 60, 8), "mixed", rng)
    counts = rng.integers(1, 4, size=len(data))
    weighted = fit(data, "weibull", weights=counts)
    repeated = fit(Censored.from_bounds(np.repeat(data.lower, counts), np.repeat(data.upper, counts)), "weibull")
    assert weighted.n == repeated.n == counts.sum()
    np.testing.assert_allclose(list(weighted.params.values()), list(repeated.params.values()), rtol=1e-7)
    np.testing.assert_allclose(list(weighted.se.values()), list(repeated.se.values()), rtol=1e-5)
    assert weighted.loglik == pytest.approx(repeated.loglik, rel=1e-12)
    # Zero weights drop rows.
    w = np.where(np.arange(len(data)) % 2 == 0, 1.0, 0.0)
    kept = fit(Censored.from_bounds(data.lower[w > 0], data.upper[w > 0]), "weibull")
    assert fit(data, "weibull", weights=w).params == pytest.approx(kept.params, rel=1e-7)


def test_fixed_parameter_and_profile_interval() -> None:
    rng = np.random.default_rng([9, 1])
    data = censor(draw("normal", 200, 9), "right", rng)
    result = fit(data, "normal", fixed={"loc": 10.0})
    assert result.k == 1 and result.se["loc"] == 0.0
    nll = scipy_nll("normal", data)
    scale = optimize.minimize_scalar(
        lambda s: nll(np.array([10.0, s])), bounds=(1.0, 4.0), method="bounded", options={"xatol": 1e-12}
    ).x
    assert result.params["scale"] == pytest.approx(scale, rel=1e-6)
    # Everything fixed: the censored log-likelihood is only evaluated.
    evaluated = fit(data, "normal", fixed={"loc": 10.0, "scale": 2.0})
    assert evaluated.k == 0 and evaluated.loglik == pytest.approx(-nll(np.array([10.0, 2.0])), rel=1e-13)
    # Profile intervals re-optimize censored problems: the likelihood ratio is the chi-square quantile at each end.
    full = fit(data, "normal")
    lo, hi = full.ci(0.95, method="profile")["loc"]
    threshold = 0.5 * st.chi2.ppf(0.95, 1)
    for end in (lo, hi):
        profile = optimize.minimize_scalar(
            lambda s, t=end: nll(np.array([t, s])), bounds=(0.5, 8.0), method="bounded", options={"xatol": 1e-10}
        ).fun
        assert profile + full.loglik == pytest.approx(threshold, abs=1e-5)


def test_rescaling_is_equivariant() -> None:
    """Bounds are rescaled with the values; only exact rows pick up the Jacobian -log s."""
    rng = np.random.default_rng([12, 1])
    data = censor(draw("gamma", 120, 12), "mixed", rng)
    n_exact = int(np.count_nonzero(data.kinds() == "exact"))
    base = fit(data, "gamma")
    for s in (1e-6, 1e8):
        big = fit(Censored.from_bounds(data.lower * s, data.upper * s), "gamma")
        assert big.params["shape"] == pytest.approx(base.params["shape"], rel=1e-6)
        assert big.params["scale"] == pytest.approx(base.params["scale"] * s, rel=1e-6)
        assert big.se["scale"] == pytest.approx(base.se["scale"] * s, rel=1e-3)
        assert big.loglik == pytest.approx(base.loglik - n_exact * math.log(s), rel=1e-9)


def test_bounds_below_the_support_are_moved_onto_it() -> None:
    """For a positive family an interval (-1, u] is left-censored at u, and a right-censored 0 says nothing."""
    x = draw("exponential", 100, 4)
    lower = np.concatenate([x, [-1.0, 0.0]])
    upper = np.concatenate([x, [2.0, np.inf]])
    result = fit(Censored.from_bounds(lower, upper), "exponential")
    same = fit(Censored(x, left=[2.0]), "exponential")
    assert result.params["rate"] == pytest.approx(same.params["rate"], rel=1e-9)
    assert result.loglik == pytest.approx(same.loglik, rel=1e-12)
    assert result.n == 102.0


# --- log cdf and log survival functions ------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "theta", "law", "x"),
    [
        (normal, (0.0, 1.0), st.norm(), [-40.0, -1.0, 0.0, 3.0, 40.0]),
        (lognormal, (0.0, 1.0), st.lognorm(1.0), [1e-18, 0.5, 1.0, 1e17]),
        (exponential, (2.0,), st.expon(scale=0.5), [1e-30, 0.1, 3.0, 300.0]),
        (weibull, (2.0, 1.5), st.weibull_min(2.0, scale=1.5), [1e-100, 0.5, 30.0, 1e150]),
        (gamma, (3.0, 2.0), st.gamma(3.0, scale=2.0), [1e-20, 1.0, 10.0, 500.0]),
        (logistic, (1.0, 2.0), st.logistic(1.0, 2.0), [-1500.0, -3.0, 1.0, 1500.0]),
        (laplace, (1.0, 2.0), st.laplace(1.0, 2.0), [-1500.0, -3.0, 1.0, 1500.0]),
        (student_t, (3.0, 0.0, 1.0), st.t(3.0), [-1e6, -2.0, 0.0, 2.0, 1e6]),
        (beta, (2.0, 3.0), st.beta(2.0, 3.0), [1e-100, 1e-5, 0.3, 0.9, 1.0 - 1e-12]),
    ],
)
def test_logcdf_logsf_match_scipy_far_in_the_tails(family: Any, theta: tuple[float, ...], law: Any, x: list) -> None:
    x = np.array(x)
    for ours, theirs in ((family.logcdf, law.logcdf), (family.logsf, law.logsf)):
        got = ours(x, *theta)
        with np.errstate(all="ignore"):
            want = theirs(x)
        assert np.all(np.isfinite(got))  # where scipy's are finite, and further (Laplace: z - log 2)
        finite = np.isfinite(want)
        assert finite.sum() >= x.size - 1
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-300)


def test_logcdf_logsf_outside_the_support() -> None:
    assert weibull.logcdf(-1.0, 2.0, 1.0) == -np.inf and weibull.logsf(-1.0, 2.0, 1.0) == 0.0
    assert lognormal.logcdf(0.0, 0.0, 1.0) == -np.inf and lognormal.logsf(np.inf, 0.0, 1.0) == -np.inf
    assert normal.logsf(40.0, 0.0, 1.0) == pytest.approx(st.norm.logsf(40.0), rel=1e-14)
    assert weibull.logsf(1e200, 0.5, 1.0) == pytest.approx(-1e100, rel=1e-14)


def test_log_probability_of_intervals_in_the_tails() -> None:
    lo, hi = np.array([40.0, -41.0, -1.0, 2.0]), np.array([41.0, -40.0, 1.0, 2.0 + 1e-9])
    got = log_probability(normal, lo, hi, 0.0, 1.0)
    # The smaller tail's log difference, with scipy's logs; a tiny interval is about width * density.
    want = np.array(
        [
            st.norm.logsf(40.0) + log1mexp(st.norm.logsf(41.0) - st.norm.logsf(40.0)),
            st.norm.logcdf(-40.0) + log1mexp(st.norm.logcdf(-41.0) - st.norm.logcdf(-40.0)),
            math.log(st.norm.cdf(1.0) - st.norm.cdf(-1.0)),
            math.log(1e-9) + st.norm.logpdf(2.0),
        ]
    )
    for g, v, rtol in zip(got, want, [1e-13, 1e-13, 1e-14, 1e-6], strict=True):
        assert g == pytest.approx(v, rel=rtol)
    assert log_probability(normal, 1.0, 1.0, 0.0, 1.0) == -np.inf


# --- the input form ----------------------------------------------------------------------------------


def test_constructors_agree_and_round_trip_through_scipy() -> None:
    by_kind = Censored([1.0, 2.0], left=[0.5], right=[3.0], interval=[[1.0, 2.0], [-np.inf, 4.0], [5.0, 5.0]])
    assert list(by_kind.kinds()) == ["exact", "exact", "left", "right", "interval", "left", "exact"]
    by_bounds = Censored.from_bounds(by_kind.lower, by_kind.upper)
    np.testing.assert_array_equal(by_bounds.upper, by_kind.upper)
    assert by_kind.num_censored() == 4 and len(by_kind) == 7
    scipy_data = by_kind.to_scipy()
    assert scipy_data.num_censored() == 4 and len(scipy_data) == 7
    survival = Censored.right_censored([3.0, 5.0], [0, 1])
    assert list(survival.kinds()) == ["exact", "right"]
    assert list(Censored.left_censored([3.0, 5.0], [True, False]).kinds()) == ["left", "exact"]
    with pytest.raises(ValueError):
        by_kind.lower[0] = 9.0  # read-only


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: Censored.from_bounds([1.0, 3.0], [2.0, 1.0]),
            ValueError,
            r"Censored.from_bounds: lower bounds must be at most upper bounds; 1 row\(s\) are not, "
            r"the first is row 1 \(lower 3.0, upper 1.0\)",
        ),
        (
            lambda: Censored.from_bounds([np.nan], [None]),
            ValueError,
            r"each row must have at least one bound; 1 row\(s\) are not, the first is row 0",
        ),
        (lambda: Censored.from_bounds([np.inf], [np.inf]), ValueError, "each row must have a finite bound"),
        (lambda: Censored.from_bounds([1.0, 2.0], [1.0]), ValueError, "one bound per row each; got 2 and 1"),
        (lambda: Censored.from_bounds([], []), ValueError, "data must be non-empty; got 0 rows"),
        (
            lambda: Censored([1.0, np.nan]),
            ValueError,
            r"Censored: exact must be finite; 1 value\(s\) are not, the first is nan at position 1",
        ),
        (lambda: Censored(right=[np.inf]), ValueError, "Censored: right must be finite"),
        (lambda: Censored(interval=[[1.0, np.nan]]), ValueError, "interval bounds must not be NaN"),
        (lambda: Censored(interval=[1.0, 2.0, 3.0]), ValueError, r"interval must be \(lower, upper\) pairs"),
        (lambda: Censored(["a"]), TypeError, "Censored: exact must be real numbers"),
        (lambda: Censored.from_bounds(["a", None], [1.0, 2.0]), TypeError, "lower must be real numbers"),
        (lambda: Censored.right_censored([1.0], [2]), TypeError, "censored must be booleans"),
        (lambda: Censored.right_censored([1.0, 2.0], [True]), ValueError, "one flag per value"),
    ],
)
def test_input_errors(make: Callable[[], Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    ("data", "family", "kwargs", "error", "message"),
    [
        (
            Censored([1.0, 2.0], right=[3.0]),
            "poisson",
            {},
            ValueError,
            "fit: censored data are supported for continuous families; got poisson, a discrete family",
        ),
        (
            Censored([1.0, -2.0], right=[3.0]),
            "gamma",
            {},
            ValueError,
            r"fit: exact values must be reals in \(0, inf\) \(gamma\); 1 row\(s\) are not, the first is row 1",
        ),
        (
            Censored([1.0, 2.0], left=[0.0]),
            "lognormal",
            {},
            ValueError,
            r"fit: censored rows must overlap the support of lognormal.*the first is row 2 \(lower -inf, upper 0.0\)",
        ),
        (Censored([0.5], right=[1.0]), "beta", {}, ValueError, "censored rows must overlap the support of beta"),
        (Censored(right=[-1.0, 0.0]), "weibull", {}, ValueError, "fit: data must carry information about weibull"),
        (
            Censored([1.0, 2.0], right=[3.0]),
            "normal",
            {"weights": [1.0, 2.0]},
            ValueError,
            r"fit: weights must have one value per data value \(3\); got 2",
        ),
        (
            Censored([1.0, 2.0], right=[3.0]),
            "normal",
            {"weights": [1.0, -1.0, 1.0]},
            ValueError,
            "fit: weights must be finite and non-negative",
        ),
    ],
)
def test_fit_errors(data: Censored, family: str, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        fit(data, family, **kwargs)


def test_unbounded_likelihood_does_not_converge_quietly() -> None:
    """All right-censored (or overlapping intervals): the likelihood tends to 1 at a boundary; the fit says so."""
    for data, family in ((Censored(right=[1.0, 2.0, 3.0]), "exponential"), (Censored(left=[1.0, 2.0]), "normal")):
        with pytest.warns(ConvergenceWarning, match="every censored row has probability about 1"):
            result = fit(data, family)
        assert not result.converged
        assert all(math.isnan(v) for v in result.se.values())


# --- the public path, the fitted law's log cdf, summaries and comparisons ---------------------------------


def test_censored_is_public() -> None:
    import nllkit.fitting
    from nllkit.fitting import _censored

    assert nllkit.fitting.Censored is _censored.Censored and "Censored" in nllkit.fitting.__all__


@pytest.mark.parametrize(
    ("family", "theta", "law", "x"),
    [
        (normal, (1.0, 2.0), st.norm(1.0, 2.0), [-80.0, -3.0, 1.0, 9.0, 80.0]),
        (weibull, (1.5, 2.0), st.weibull_min(1.5, scale=2.0), [1e-6, 0.5, 2.0, 30.0, 300.0]),
        (gamma, (2.5, 1.5), st.gamma(2.5, scale=1.5), [1e-3, 1.0, 4.0, 60.0]),
        (lognormal, (0.5, 0.8), st.lognorm(0.8, scale=math.exp(0.5)), [1e-4, 0.7, 3.0, 500.0]),
    ],
)
def test_frozen_forwards_logcdf_logsf(family: Any, theta: tuple[float, ...], law: Any, x: list) -> None:
    frozen = family(*theta)
    np.testing.assert_allclose(frozen.logcdf(x), law.logcdf(x), rtol=1e-9)
    np.testing.assert_allclose(frozen.logsf(x), law.logsf(x), rtol=1e-9)
    result = fit(Censored([0.5, 1.0, 2.0], right=[3.0]), family)
    np.testing.assert_array_equal(result.dist.logsf(x), family.logsf(x, *result.theta))


def test_summary_counts_the_censored_rows() -> None:
    data = Censored([1.2, 0.4, 2.2], left=[0.3], right=[3.0, 3.0], interval=[[0.5, 1.0]])
    text = fit(data, "exponential").summary()
    assert (
        text.splitlines()[-1] == "censored data: 3 exact, 1 left-censored, 2 right-censored, 1 interval-censored (n 7)"
    )
    weighted = fit(data, "exponential", weights=[1, 1, 1, 2, 1, 1, 0.5]).summary()
    assert weighted.splitlines()[-1].endswith("0.5 interval-censored (n 7.5)") and "2 left-censored" in weighted
    # Without censored rows the fit is the ordinary one, and says nothing about censoring.
    assert "censored" not in fit(Censored([1.0, 2.0, 4.0]), "exponential").summary()


def test_compare_fits_each_family_with_the_censored_likelihood() -> None:
    rng = np.random.default_rng(11)
    t = rng.weibull(1.8, size=150) * 4.0
    data = Censored.right_censored(np.minimum(t, 5.0), t > 5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a heavy-tailed family's Hessian, say
        comparison = compare(data, "auto")
    assert [row.family for row in comparison if row.fit is None] == []
    assert sorted(row.family for row in comparison) == sorted(
        ("normal", "student_t", "laplace", "logistic", "lognormal", "exponential", "gamma", "weibull")
    )
    for name in ("weibull", "exponential", "lognormal"):
        row = comparison[name]
        assert row.fit is not None and math.isnan(row.ks)
        assert row.loglik == pytest.approx(fit(data, name).loglik, rel=1e-12)
    # Ranked by the censored AIC; the exponential (shape 1) is far behind the Weibull of shape 1.8.
    assert [row.aic for row in comparison] == sorted(row.aic for row in comparison)
    assert comparison["exponential"].aic - comparison["weibull"].aic > 10.0
    censored = int(np.count_nonzero(t > 5.0))
    assert comparison.note == f"KS omitted: censored data ({censored} of 150 observations censored) have no ECDF"
    lines = str(comparison).splitlines()
    assert "KS" not in lines[0].split() and lines[-1] == comparison.note
    assert comparison.to_dict()["note"] == comparison.note
    # Akaike weights from the censored log-likelihoods.
    aic = np.array([row.aic for row in comparison])
    np.testing.assert_allclose(
        [row.weight for row in comparison], np.exp(-(aic - aic.min()) / 2) / np.exp(-(aic - aic.min()) / 2).sum()
    )


def test_compare_censored_integer_bounds_are_not_counts() -> None:
    data = Censored.from_bounds([0.0, 1.0, 2.0, 3.0, 1.0], [1.0, 1.0, 4.0, None, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # student_t's Hessian on five rows
        comparison = compare(data, "auto", weights=[1, 2, 1, 1, 1])
    assert "poisson" not in [row.family for row in comparison]
    assert comparison["exponential"].loglik == pytest.approx(
        fit(data, "exponential", weights=[1, 2, 1, 1, 1]).loglik, rel=1e-12
    )
    with pytest.raises(ValueError, match=r"compare: weights must have one value per data value \(5\); got 2"):
        compare(data, "auto", weights=[1, 2])
    # A discrete family is a row with its error, not a failure of the table.
    assert "continuous families" in str(compare(data, ["exponential", "poisson"])["poisson"].error)
