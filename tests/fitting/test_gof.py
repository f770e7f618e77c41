"""``Fit.gof``: statistics against scipy and the definitions, bootstrap p-values against scipy and statsmodels."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats as st

from nllkit.fitting import FitWarning, GoodnessOfFit, fit


def _normal(seed: int = 1, n: int = 100) -> np.ndarray:
    return np.random.default_rng(seed).normal(2.0, 3.0, size=n)


# --- the statistics -------------------------------------------------------------------------------


def test_continuous_statistics_equal_scipys_tests_at_the_fitted_distribution():
    x = np.random.default_rng(2).exponential(2.0, size=80)
    result = fit(x, "exponential")
    frozen = st.expon(scale=1.0 / result.params["rate"])
    got = result.gof(n_boot=0).statistic
    # scipy.stats.anderson(x, 'expon') estimates the scale by the mean: the exponential MLE.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scipy 1.17 asks for a p-value method we do not use
        anderson = st.anderson(x, "expon").statistic
    np.testing.assert_allclose(got["ad"], anderson, rtol=1e-12)
    np.testing.assert_allclose(got["cvm"], st.cramervonmises(x, frozen.cdf).statistic, rtol=1e-12)
    np.testing.assert_allclose(got["ks"], st.kstest(x, frozen.cdf).statistic, rtol=1e-12)


@pytest.mark.parametrize(
    ("family", "dist", "draw", "to_scipy"),
    [
        ("normal", st.norm, lambda r: r.normal(2.0, 3.0, 60), lambda p: {"loc": p["loc"], "scale": p["scale"]}),
        ("gamma", st.gamma, lambda r: r.gamma(2.5, 1.5, 60), lambda p: {"a": p["shape"], "scale": p["scale"]}),
        (
            "weibull",
            st.weibull_min,
            lambda r: 2.0 * r.weibull(1.5, 60),
            lambda p: {"c": p["shape"], "scale": p["scale"]},
        ),
    ],
)
def test_statistics_equal_scipys_goodness_of_fit_at_the_same_parameters(family, dist, draw, to_scipy):
    x = draw(np.random.default_rng(3))
    result = fit(x, family)
    got = result.gof(n_boot=0).statistic
    known = to_scipy(result.params) | ({} if family == "normal" else {"loc": 0.0})
    for key in ("ks", "cvm", "ad"):
        ref = st.goodness_of_fit(dist, x, known_params=known, statistic=key, n_mc_samples=1, rng=0)
        np.testing.assert_allclose(got[key], ref.statistic, rtol=1e-10, err_msg=key)


def _discrete_oracle(x: np.ndarray, rate: float, k: int) -> dict[str, float]:
    """Choulakian, Lockhart and Stephens' W^2 and A^2 term by term, and chi-square on greedily merged bins."""
    n = x.size
    top = int(max(x.max(), st.poisson.ppf(1.0 - 1e-12, rate)))
    w2 = a2 = 0.0
    for j in range(top + 1):
        z = np.count_nonzero(x <= j) / n - st.poisson.cdf(j, rate)
        p = st.poisson.pmf(j, rate)
        h = st.poisson.cdf(j, rate)
        w2 += n * z**2 * p
        if h < 1.0:
            a2 += n * z**2 * p / (h * (1.0 - h))
    bins: list[list[int]] = [[]]
    expected = 0.0
    for j in range(top):
        bins[-1].append(j)
        expected += n * st.poisson.pmf(j, rate)
        if expected >= 5.0:
            bins.append([])
            expected = 0.0
    if n * st.poisson.sf(bins[-1][0] - 1 if bins[-1] else top - 1, rate) < 5.0 and len(bins) > 1:
        bins.pop()
    observed = [np.count_nonzero(np.isin(x, b)) for b in bins[:-1]]
    observed.append(n - sum(observed))
    probs = [st.poisson.pmf(b, rate).sum() for b in bins[:-1]]
    probs.append(1.0 - sum(probs))
    chi2, pvalue = st.chisquare(observed, n * np.array(probs), ddof=k)
    return {"cvm": w2, "ad": a2, "chi2": float(chi2), "pvalue": float(pvalue), "bins": len(bins)}


def test_discrete_statistics_follow_their_definitions_and_scipys_chisquare():
    x = np.random.default_rng(4).poisson(3.5, size=120).astype(float)
    result = fit(x, "poisson")
    test = result.gof(n_boot=0)
    ref = _discrete_oracle(x, result.params["rate"], result.k)
    np.testing.assert_allclose(test.statistic["cvm"], ref["cvm"], rtol=1e-9)
    np.testing.assert_allclose(test.statistic["ad"], ref["ad"], rtol=1e-9)
    np.testing.assert_allclose(test.statistic["chi2"], ref["chi2"], rtol=1e-9)
    assert test.chi2_bins == ref["bins"] and test.chi2_df == ref["bins"] - 2
    np.testing.assert_allclose(test.chi2_pvalue_asymptotic, ref["pvalue"], rtol=1e-9)
    # KS on the integers: the largest gap between the ECDF and the model CDF at the support points.
    grid = np.arange(0, x.max() + 1)
    ecdf = np.array([np.mean(x <= j) for j in grid])
    np.testing.assert_allclose(test.statistic["ks"], np.max(np.abs(ecdf - st.poisson.cdf(grid, x.mean()))))


@pytest.mark.parametrize(("family", "values"), [("normal", [0.3, -1.2, 2.5, 0.7, 1.1]), ("poisson", [0, 2, 3, 5, 1])])
def test_integer_weights_are_counts_of_the_expanded_sample(family, values):
    values = np.array(values, dtype=float)
    counts = np.array([3, 1, 4, 2, 5])
    weighted = fit(values, family, weights=counts).gof(n_boot=20, seed=0)
    expanded = fit(np.repeat(values, counts), family).gof(n_boot=20, seed=0)
    for key, value in expanded.statistic.items():
        np.testing.assert_allclose(weighted.statistic[key], value, rtol=1e-10, err_msg=key)
    # The same seed, the same simulated samples: the same null distributions.
    for key, value in expanded.null.items():
        np.testing.assert_allclose(weighted.null[key], value, rtol=1e-8, err_msg=key)


def test_non_integer_weights_are_refused():
    with pytest.raises(ValueError, match=r"Fit.gof: weights must be integer counts .* got non-integer weights"):
        fit([0.1, 0.5, 0.9], "normal", weights=[0.5, 1.0, 1.5]).gof()


# --- the p-values ---------------------------------------------------------------------------------


def test_pvalues_agree_with_scipys_monte_carlo_goodness_of_fit():
    # The exponential with loc 0: scipy estimates the scale by its MLE, the mean, as nllkit does.
    x = np.random.default_rng(5).gamma(1.4, 2.0, size=60)
    test = fit(x, "exponential").gof(n_boot=499, seed=0)
    for key in ("ks", "cvm", "ad"):
        ref = st.goodness_of_fit(st.expon, x, known_params={"loc": 0.0}, statistic=key, n_mc_samples=499, rng=1)
        np.testing.assert_allclose(test.statistic[key], ref.statistic, rtol=1e-12)
        # Two Monte Carlo estimates of one p-value: each has sd <= 0.5 / sqrt(500) = 0.022.
        assert abs(test.pvalue[key] - ref.pvalue) < 0.09, (key, test.pvalue[key], ref.pvalue)


def test_normal_pvalues_agree_with_scipys_monte_carlo_goodness_of_fit():
    # scipy refits the normal with the ddof=1 scale, nllkit with the MLE: the same tests up to O(1/n).
    x = np.random.default_rng(1).normal(2.0, 3.0, size=80) + 1.5 * np.random.default_rng(101).exponential(size=80)
    test = fit(x, "normal").gof(n_boot=999, seed=1)
    for key in ("ks", "cvm", "ad"):
        ref = st.goodness_of_fit(st.norm, x, statistic=key, n_mc_samples=999, rng=0)
        assert 0.05 < ref.pvalue < 0.6, (key, ref.pvalue)  # a p-value that can be told apart
        assert abs(test.pvalue[key] - ref.pvalue) < 0.07, (key, test.pvalue[key], ref.pvalue)


@pytest.mark.parametrize(
    ("family", "draw"),
    [
        ("normal", lambda r: r.normal(1.0, 2.0, size=40)),
        ("poisson", lambda r: r.poisson(4.0, size=40).astype(float)),
    ],
)
def test_pvalues_are_uniform_under_the_null(family, draw):
    rng = np.random.default_rng(12345)
    pvalues = []
    for _ in range(60):
        test = fit(draw(rng), family).gof(n_boot=49, seed=rng)
        pvalues.append([test.pvalue[key] for key in test.statistic])
    for key, column in zip(test.statistic, np.array(pvalues).T, strict=True):
        assert st.kstest(column, "uniform").pvalue > 0.001, (key, np.sort(column))


@pytest.mark.parametrize(
    ("family", "data"),
    [
        ("normal", np.random.default_rng(8).lognormal(0.0, 0.8, size=150)),
        ("poisson", np.random.default_rng(9).negative_binomial(2, 0.3, size=150).astype(float)),
        ("exponential", np.random.default_rng(10).gamma(4.0, size=150)),
    ],
)
def test_pvalues_are_small_under_a_wrong_family(family, data):
    test = fit(data, family).gof(n_boot=99, seed=0)
    for key, pvalue in test.pvalue.items():
        assert pvalue == pytest.approx(0.01), key  # 1 / (1 + n_boot): no simulated sample fitted worse
    if family == "poisson":
        assert test.chi2_pvalue_asymptotic < 1e-6


# --- the result -----------------------------------------------------------------------------------


def test_a_seed_reproduces_the_pvalues_and_a_generator_is_accepted():
    result = fit(_normal(), "normal")
    first, second = result.gof(n_boot=50, seed=3), result.gof(n_boot=50, seed=3)
    assert first.pvalue == second.pvalue
    for key in first.null:
        np.testing.assert_array_equal(first.null[key], second.null[key])
    third = result.gof(n_boot=50, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(third.null["ad"], first.null["ad"])
    assert third.seed is None and first.seed == 3
    assert not np.array_equal(result.gof(n_boot=50, seed=4).null["ad"], first.null["ad"])


def test_progress_is_reported_after_every_refit():
    calls = []
    fit(_normal(), "normal").gof(n_boot=7, seed=0, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 7) for i in range(1, 8)]


def test_table_and_dict():
    test = fit(np.random.default_rng(11).poisson(2.0, 200).astype(float), "poisson").gof(n_boot=19, seed=2)
    assert isinstance(test, GoodnessOfFit)
    text = str(test)
    for name in ("Kolmogorov-Smirnov", "Cramer-von Mises", "Anderson-Darling", "chi-square", "19 refits", "seed 2"):
        assert name in text
    out = json.loads(json.dumps(test.to_dict()))
    assert out["statistic"] == test.statistic and out["pvalue"] == test.pvalue
    assert out["chi2_df"] == test.chi2_bins - 2 and out["n_boot"] == 19 and out["n_failed"] == 0
    assert "GoodnessOfFit poisson" in repr(test)
    summary = fit(np.random.default_rng(11).poisson(2.0, 200).astype(float), "poisson").summary(gof=test)
    assert summary.endswith(text)


def test_without_refits_the_pvalues_are_nan():
    test = fit(_normal(), "normal").gof(n_boot=0)
    assert all(math.isnan(p) for p in test.pvalue.values())
    assert "not computed" in str(test) and test.to_dict()["method"] == "none"


def test_failed_refits_are_counted_and_reported():
    # Poisson rate 0.2 from five values: a simulated all-zero sample (probability e^-1) has its MLE on the boundary.
    result = fit([0.0, 0.0, 0.0, 0.0, 1.0], "poisson")
    with pytest.warns(FitWarning, match=r"Fit.gof: \d+ of 200 bootstrap refits failed .* boundary"):
        test = result.gof(n_boot=200, seed=0)
    assert 50 <= test.n_failed <= 100  # Binomial(200, e^-1): mean 74, sd 7
    assert test.null["ad"].size == 200 - test.n_failed
    assert test.failures == {"the estimate is on the boundary of the parameter space": test.n_failed}


@pytest.mark.parametrize(("n_boot", "error"), [(1.5, TypeError), (True, TypeError), (-1, ValueError)])
def test_bad_n_boot(n_boot, error):
    with pytest.raises(error, match=r"Fit\.gof: n_boot must be"):
        fit(_normal(), "normal").gof(n_boot=n_boot)


def test_structured_and_held_fits():
    rng = np.random.default_rng(12)
    binomial = fit(rng.binomial(8, 0.3, size=150).astype(float), "binomial", fixed={"trials": 8}).gof(19, seed=0)
    assert binomial.k == 1 and binomial.n_failed == 0 and binomial.pvalue["chi2"] > 0.05
    held = fit(rng.normal(0.0, 2.0, size=100), "normal", fixed={"loc": 0.0}).gof(19, seed=0)
    assert held.k == 1 and held.pvalue["ad"] > 0.05
