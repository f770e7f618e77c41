"""``fit`` against scipy's fits and log densities, statsmodels' count models, and analytic facts."""

from __future__ import annotations

import importlib
import json
import math
import warnings

import numpy as np
import pytest
from scipy import special
from scipy import stats as st

from nllkit.distributions._family import REAL, Family, Sample, Support
from nllkit.distributions._normal import Normal
from nllkit.distributions._registry import get_family
from nllkit.fitting import ConvergenceWarning, Fit, HessianWarning, fit

from .fit_oracles import ORACLES, oracle_names, reference_mle, reference_se

N = 2000
NAMES = oracle_names()


def _data(name: str, seed: int = 0, n: int = N) -> np.ndarray:
    return ORACLES[name].draw(np.random.default_rng(seed), n)


@pytest.fixture(scope="module")
def fits() -> dict[str, tuple[np.ndarray, Fit]]:
    """One fit per family on its seeded data, shared by the checks below."""
    found = {}
    for name in NAMES:
        family = get_family(name)
        x = _data(name)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a clean fit gives no warning
            found[name] = (x, fit(x, family, fixed=ORACLES[name].fixed))
    return found


def _get(fits: dict[str, tuple[np.ndarray, Fit]], name: str) -> tuple[np.ndarray, Fit]:
    return fits[name]


@pytest.mark.parametrize("name", NAMES)
def test_mle_matches_a_careful_optimizer_on_scipys_logpdf(fits, name):
    x, result = _get(fits, name)
    theta, loglik = reference_mle(name, x)
    assert result.converged, result.message
    assert result.loglik >= loglik - 1e-9 * abs(loglik)
    np.testing.assert_allclose(list(result.params.values()), theta, rtol=1e-4)
    np.testing.assert_allclose(result.loglik, np.sum(ORACLES[name].logpdf(x, *result.theta)), rtol=1e-12)


@pytest.mark.parametrize("name", [n for n in NAMES if ORACLES[n].scipy_fit is not None])
def test_loglik_at_least_scipys_fit(fits, name):
    x, result = _get(fits, name)
    oracle = ORACLES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = np.sum(oracle.logpdf(x, *oracle.scipy_fit(x)))
    assert result.loglik >= theirs - 1e-9 * abs(theirs)


@pytest.mark.parametrize("name", NAMES)
def test_standard_errors_match_a_numerical_hessian(fits, name):
    x, result = _get(fits, name)
    if name == "laplace":  # no second derivative in loc: the asymptotic b / sqrt(n) for both parameters
        expected = result.params["scale"] / np.sqrt(x.size)
        np.testing.assert_allclose(list(result.se.values()), [expected, expected], rtol=1e-6)
        return
    np.testing.assert_allclose(list(result.se.values()), reference_se(name, x, result.theta), rtol=0.01)


@pytest.mark.parametrize("name", NAMES)
def test_estimate_beats_the_truth_and_the_score_vanishes(fits, name):
    x, result = _get(fits, name)
    truth = np.sum(ORACLES[name].logpdf(x, *ORACLES[name].true))
    assert result.loglik >= truth
    sample = Sample(x, np.ones_like(x))
    _, score = result.family.nll_grad(result.theta, sample)
    # The score times the standard error is the step to the optimum in SE units.
    assert np.all(np.abs(score * np.array(list(result.se.values()))) < 1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_weighted_value_count_table_equals_raw_data(name):
    family = get_family(name)
    x = _data(name, seed=1, n=500)
    if not family.discrete:
        x = np.round(x, 1)  # ties, so the table is shorter than the data
        x = x[~family.support.outside(x)]
    values, counts = np.unique(x, return_counts=True)
    fixed = ORACLES[name].fixed
    raw, table = fit(x, family, fixed=fixed), fit(values, family, weights=counts, fixed=fixed)
    np.testing.assert_allclose(list(table.params.values()), list(raw.params.values()), rtol=1e-7)
    np.testing.assert_allclose(table.loglik, raw.loglik, rtol=1e-10)
    np.testing.assert_allclose(list(table.se.values()), list(raw.se.values()), rtol=1e-5)
    assert table.n == raw.n == x.size


@pytest.mark.parametrize(
    "name", ["normal", "student_t", "laplace", "logistic", "lognormal", "exponential", "gamma", "weibull"]
)
@pytest.mark.parametrize("c", [1e-6, 3.7, 1e6])
def test_rescaling_invariance(name, c):
    family = get_family(name)
    x = _data(name, seed=2, n=500)
    base, scaled = fit(x, family), fit(c * x, family)
    np.testing.assert_allclose(scaled.theta, family.rescale(base.theta, c), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(scaled.loglik, base.loglik - x.size * math.log(c), rtol=1e-9)


def test_fixed_parameters_are_held_and_the_rest_is_the_conditional_mle():
    x = np.random.default_rng(3).normal(1.0, 2.0, 300)
    result = fit(x, "normal", fixed={"loc": 0.5})
    assert result.params["loc"] == 0.5 and result.se["loc"] == 0.0 and result.k == 1
    np.testing.assert_allclose(result.params["scale"], np.sqrt(np.mean((x - 0.5) ** 2)), rtol=1e-9)
    assert result.vcov[0].tolist() == [0.0, 0.0] and result.corr[0].tolist() == [0.0, 0.0]
    # se of the scale with known loc: sigma / sqrt(2 n), from the observed information 2n / sigma^2.
    np.testing.assert_allclose(result.se["scale"], result.params["scale"] / np.sqrt(2 * x.size), rtol=1e-7)


def test_fixed_gamma_shape_gives_the_closed_form_scale():
    family = get_family("gamma")
    x = np.random.default_rng(4).gamma(2.0, 3.0, 400) * 1e-7  # badly scaled on purpose
    result = fit(x, family, fixed={"shape": 2.0})
    assert result.params["shape"] == 2.0
    np.testing.assert_allclose(result.params["scale"], x.mean() / 2.0, rtol=1e-9)
    np.testing.assert_allclose(result.loglik, np.sum(st.gamma.logpdf(x, 2.0, scale=x.mean() / 2.0)), rtol=1e-12)


def test_categorical_probabilities_and_their_multinomial_covariance():
    family = get_family("categorical")
    x = np.random.default_rng(16).choice(4, size=1000, p=[0.1, 0.2, 0.3, 0.4]).astype(float)
    result = fit(x, family)
    p = np.bincount(x.astype(int)) / x.size
    np.testing.assert_allclose(result.theta, p, rtol=1e-12)
    assert result.k == 3  # the probabilities sum to one
    np.testing.assert_allclose(result.vcov, (np.diag(p) - np.outer(p, p)) / x.size, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(result.loglik, np.sum(np.log(p[x.astype(int)])), rtol=1e-12)
    with pytest.raises(NotImplementedError, match="use method='wald'"):
        result.ci(method="profile")


def test_all_parameters_fixed_only_evaluates():
    x = np.random.default_rng(5).normal(size=50)
    result = fit(x, "normal", fixed={"loc": 0.0, "scale": 1.0})
    assert result.k == 0 and result.converged and result.n_iter == 0
    np.testing.assert_allclose(result.loglik, np.sum(st.norm.logpdf(x)), rtol=1e-13)
    assert result.aic == -2.0 * result.loglik
    assert result.ci() == {"loc": (0.0, 0.0), "scale": (1.0, 1.0)}


def test_statsmodels_negative_binomial_nb2():
    sm = importlib.import_module("statsmodels.api")
    family = get_family("negative_binomial")
    y = _data("negative_binomial", seed=6, n=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sm.NegativeBinomial(y, np.ones_like(y), loglike_method="nb2").fit(disp=0, maxiter=200)
    ours = fit(y, family)
    const, alpha = theirs.params
    np.testing.assert_allclose([ours.params["mean"], ours.params["size"]], [np.exp(const), 1 / alpha], rtol=1e-4)
    assert ours.loglik >= theirs.llf - 1e-9 * abs(theirs.llf)
    # The delta method: mean = exp(const), size = 1 / alpha.
    se_mean, se_size = np.exp(const) * theirs.bse[0], theirs.bse[1] / alpha**2
    np.testing.assert_allclose([ours.se["mean"], ours.se["size"]], [se_mean, se_size], rtol=0.01)


def test_statsmodels_zero_inflated_poisson():
    sm = importlib.import_module("statsmodels.api")
    family = get_family("zero_inflated_poisson")
    y = _data("zero_inflated_poisson", seed=7, n=1000)
    ones = np.ones((y.size, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sm.ZeroInflatedPoisson(y, ones, exog_infl=ones).fit(disp=0, method="newton", maxiter=100)
    ours = fit(y, family)
    infl, const = theirs.params
    pi, rate = special.expit(infl), np.exp(const)
    np.testing.assert_allclose([ours.params["pi"], ours.params["rate"]], [pi, rate], rtol=1e-4)
    assert ours.loglik >= theirs.llf - 1e-9 * abs(theirs.llf)
    # statsmodels' analytic ZIP Hessian is about 1% off a numerical Hessian of its own loglike
    # (statsmodels.tools.numdiff); the observed information is the latter.
    numdiff = importlib.import_module("statsmodels.tools.numdiff")
    model = sm.ZeroInflatedPoisson(y, ones, exog_infl=ones)
    bse = np.sqrt(np.diag(np.linalg.inv(-numdiff.approx_hess3(theirs.params, model.loglike))))
    se_pi, se_rate = pi * (1 - pi) * bse[0], rate * bse[1]
    np.testing.assert_allclose([ours.se["pi"], ours.se["rate"]], [se_pi, se_rate], rtol=0.01)
    np.testing.assert_allclose(ours.se["pi"], pi * (1 - pi) * theirs.bse[0], rtol=0.02)


def test_information_criteria_and_reports():
    x = np.random.default_rng(8).normal(size=40)
    result = fit(x, "normal")
    ll, k, n = np.sum(st.norm.logpdf(x, x.mean(), x.std())), 2, 40
    np.testing.assert_allclose(result.loglik, ll, rtol=1e-13)
    np.testing.assert_allclose(result.aic, 2 * k - 2 * ll)
    np.testing.assert_allclose(result.aicc, 2 * k - 2 * ll + 2 * k * (k + 1) / (n - k - 1))
    np.testing.assert_allclose(result.bic, k * np.log(n) - 2 * ll)
    np.testing.assert_allclose(result.corr, np.eye(2), atol=1e-12)  # loc and scale are orthogonal at the MLE
    assert math.isnan(fit(x[:3], "normal").aicc)
    assert json.loads(json.dumps(result.to_dict()))["params"] == result.params
    text = result.summary()
    assert "loc" in text and "scale" in text and "AICc" in text and "converged" in text
    assert repr(result).startswith("<Fit normal(loc=")


def test_weights_give_the_weighted_likelihood():
    rng = np.random.default_rng(9)
    x, w = rng.normal(size=200), rng.uniform(0.0, 2.0, 200)
    result = fit(x, "normal", weights=w)
    loc = np.sum(w * x) / w.sum()
    np.testing.assert_allclose(result.params["loc"], loc, rtol=1e-12)
    np.testing.assert_allclose(result.params["scale"], np.sqrt(np.sum(w * (x - loc) ** 2) / w.sum()), rtol=1e-12)
    np.testing.assert_allclose(result.n, w.sum())
    w[:10] = 0.0  # zero weights drop values
    np.testing.assert_allclose(fit(x, "normal", weights=w).theta, fit(x[10:], "normal", weights=w[10:]).theta)


# --- status: non-positive-definite Hessian, non-convergence, boundary --------------------------------


class _WrongCurvature(Normal):
    """The normal family with a Hessian of the wrong sign in loc: the information is not positive definite."""

    def nll_hess(self, theta, sample):
        hess = super().nll_hess(theta, sample)
        hess[0, 0] = -hess[0, 0]
        return hess


class _Unbounded(Family):
    """NLL = -a: no minimum, so no optimizer can converge."""

    name = "unbounded"
    param_names = ("a",)
    domains = (REAL,)
    support = Support(-math.inf, math.inf, lower_open=True, upper_open=True)

    def logpdf(self, x, *theta):
        return np.full(np.shape(x), theta[0])

    def nll_grad(self, theta, sample):
        return -theta[0] * sample.n, np.array([-sample.n])

    def start(self, sample):
        return np.array([0.0])

    cdf = ppf = mean = var = sample = None  # type: ignore[assignment]


def test_non_positive_definite_hessian_warns_and_gives_nan():
    x = np.random.default_rng(10).normal(size=100)
    with pytest.warns(HessianWarning, match="not positive definite"):
        result = fit(x, _WrongCurvature())
    assert math.isnan(result.se["loc"]) and math.isnan(result.se["scale"])
    assert "not positive definite" in result.message and "standard errors are NaN" in result.message
    assert result.converged  # the estimate itself is fine


def test_non_convergence_is_reported():
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        result = fit(np.zeros(10), _Unbounded())
    assert not result.converged and "did not converge" in result.message
    assert math.isnan(result.se["a"])


def test_estimate_on_the_boundary_warns():
    with pytest.warns(HessianWarning, match="boundary"):
        result = fit(np.full(5, 2.0), "normal")
    assert result.params == {"loc": 2.0, "scale": 0.0} and math.isnan(result.se["scale"])


# --- confidence intervals ------------------------------------------------------------------------


def test_profile_interval_of_a_normal_scale_solves_the_likelihood_ratio_equation():
    x = np.random.default_rng(11).normal(0.0, 3.0, 15)
    result = fit(x, "normal", fixed={"loc": 0.0})
    s2, n, q = np.mean(x**2), x.size, st.chi2.ppf(0.9, 1)

    def excess(sigma):  # 2 (NLL(sigma) - NLL_min) - q, in closed form
        r = s2 / sigma**2
        return n * (r - 1.0 - np.log(r)) - q

    from scipy.optimize import brentq

    shat = math.sqrt(s2)
    lo, hi = result.ci(0.9, "profile")["scale"]
    np.testing.assert_allclose([lo, hi], [brentq(excess, shat / 10, shat), brentq(excess, shat, shat * 10)], rtol=1e-7)
    assert hi - shat > shat - lo  # asymmetric: the likelihood falls off faster towards 0


def test_profile_interval_re_optimizes_the_other_parameters():
    family = get_family("gamma")
    x = np.random.default_rng(12).gamma(2.0, 1.0, 30)
    result = fit(x, family)
    lo, hi = result.ci(method="profile")["shape"]
    q = st.chi2.ppf(0.95, 1)
    for end in (lo, hi):  # at each end, the profile (scale re-optimized: mean / shape) is on the threshold
        profiled = np.sum(st.gamma.logpdf(x, end, scale=x.mean() / end))
        np.testing.assert_allclose(2.0 * (result.loglik - profiled), q, rtol=1e-6)
    whi = result.ci(method="wald")["shape"][1]
    assert hi - result.params["shape"] > result.params["shape"] - lo and hi > whi


def test_profile_and_wald_agree_for_large_n():
    x = np.random.default_rng(13).normal(2.0, 1.0, 20000)
    result = fit(x, "normal")
    wald, profile = result.ci(method="wald"), result.ci(method="profile")
    for name in ("loc", "scale"):
        width = wald[name][1] - wald[name][0]
        np.testing.assert_allclose(profile[name], wald[name], atol=0.02 * width)


def test_wald_interval_is_estimate_plus_minus_z_se():
    x = np.random.default_rng(14).normal(size=100)
    result = fit(x, "normal")
    lo, hi = result.ci(0.8)["loc"]
    z = st.norm.ppf(0.9)
    np.testing.assert_allclose([lo, hi], [x.mean() - z * result.se["loc"], x.mean() + z * result.se["loc"]])


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "match"),
    [
        (["a", "b"], {}, TypeError, "fit: data must be real numbers"),
        ([], {}, ValueError, "fit: data must be non-empty"),
        (
            [1.0, np.nan, 2.0, np.inf],
            {},
            ValueError,
            r"must be finite; 2 value\(s\) are not, the first is nan at position 1",
        ),
        ([1.0, 2.0], {"weights": [1.0]}, ValueError, "one value per data value"),
        ([1.0, 2.0], {"weights": [1.0, -1.0]}, ValueError, "the first is -1.0 at position 1"),
        ([1.0, 2.0], {"weights": [0.0, 0.0]}, ValueError, "positive total"),
        (
            [1.0, 2.0],
            {"fixed": {"mu": 1.0}},
            ValueError,
            r"normal: fixed must name parameters of the family \(loc, scale\)",
        ),
        (
            [1.0, 2.0],
            {"fixed": {"scale": -1.0}},
            ValueError,
            "normal: fixed scale must be positive and finite; got -1.0",
        ),
        ([1.0, 2.0], {"fixed": {"scale": "x"}}, TypeError, "normal: fixed scale must be a real number"),
    ],
)
def test_bad_arguments(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        fit(data, "normal", **kwargs)


def test_data_outside_the_support_names_the_family_and_position():
    family = get_family("gamma")
    with pytest.raises(
        ValueError, match=r"gamma: data must be .*; 1 value\(s\) are not, the first is -1.0 at position 2"
    ):
        fit([1.0, 2.0, -1.0], family)


def test_unknown_family_and_bad_ci_arguments():
    with pytest.raises(ValueError, match="family must be one of normal"):
        fit([1.0, 2.0], "gaussianish")
    result = fit([1.0, 2.0, 4.0], "normal")
    with pytest.raises(ValueError, match=r"Fit.ci: level must be in \(0, 1\); got 1.5"):
        result.ci(1.5)
    with pytest.raises(
        ValueError, match=r"Fit\.ci: method must be one of 'wald', 'profile', 'bootstrap'; got 'jackknife'"
    ):
        result.ci(method="jackknife")


def test_dist_is_the_fitted_frozen_distribution():
    x = np.random.default_rng(15).normal(1.0, 2.0, 100)
    result = fit(x, "normal")
    np.testing.assert_allclose(result.dist.logpdf(0.5), st.norm.logpdf(0.5, x.mean(), x.std()), rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_the_optimizer_finds_the_closed_form_estimate(fits, name):
    """The Newton path from the family's start reaches what the family's closed form gives."""
    from nllkit.fitting._fit import _problem, _scale_of, as_sample
    from nllkit.fitting._problem import Scaling

    x, result = _get(fits, name)
    family = result.family
    sample = as_sample("test", x, None, family)
    scaling = Scaling(family, _scale_of(family, sample))
    problem = _problem(family, scaling.sample(sample), scaling, dict(ORACLES[name].fixed or {}))
    solution = problem.solve(problem.theta(problem.base[problem.coords]))
    assert solution.converged, solution.message
    np.testing.assert_allclose(scaling.to_original(solution.theta), result.theta, rtol=1e-6)
