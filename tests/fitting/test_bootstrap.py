"""``Fit.bootstrap`` and ``Fit.ci(method='bootstrap')``: reproducibility, agreement with Wald SEs, coverage."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as st

from nllkit.fitting import Bootstrap, Censored, FitWarning, fit

KINDS = ("parametric", "nonparametric")

DATA = {
    "normal": lambda r: r.normal(3.0, 2.0, size=500),
    "gamma": lambda r: r.gamma(2.5, 1.5, size=500),
    "poisson": lambda r: r.poisson(4.0, size=500).astype(float),
}


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_seed_gives_the_same_replicates(kind):
    result = fit(DATA["gamma"](np.random.default_rng(0)), "gamma")
    first = result.bootstrap(50, kind=kind, seed=7)
    fresh = fit(DATA["gamma"](np.random.default_rng(0)), "gamma").bootstrap(50, kind=kind, seed=7)
    np.testing.assert_array_equal(first.samples, fresh.samples)
    assert first.ci() == fresh.ci()
    # A generator seeded alike draws the same; another seed draws differently.
    np.testing.assert_array_equal(result.bootstrap(50, kind=kind, seed=np.random.default_rng(7)).samples, first.samples)
    assert not np.array_equal(result.bootstrap(50, kind=kind, seed=8).samples, first.samples)


def test_fit_data_are_the_data_on_their_own_scale():
    x = np.random.default_rng(12).gamma(2.0, 1000.0, size=50)  # fitted divided by 2**11: multiplied back exactly
    data = fit(x, "gamma", weights=np.arange(1, 51)).data
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.w, np.arange(1, 51))
    table = fit([3.0, 1.0, 3.0, 0.0, 3.0], "poisson").data
    np.testing.assert_array_equal(table.x, [0.0, 1.0, 3.0])
    np.testing.assert_array_equal(table.w, [1.0, 1.0, 3.0])


def test_an_int_seed_caches_the_replicates_on_the_fit():
    result = fit(DATA["normal"](np.random.default_rng(1)), "normal")
    boot = result.bootstrap(40, seed=0)
    assert result.bootstrap(40, seed=0) is boot
    assert result.bootstrap(40, seed=0, kind="nonparametric") is not boot
    assert result.ci(0.9, method="bootstrap", n_boot=40, seed=0) == boot.ci(0.9)
    generator = np.random.default_rng(0)
    assert result.bootstrap(40, seed=generator) is not result.bootstrap(40, seed=generator)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("family", sorted(DATA))
def test_bootstrap_sds_agree_with_wald_ses(family, kind):
    result = fit(DATA[family](np.random.default_rng(2)), family)
    boot = result.bootstrap(400, kind=kind, seed=3)
    assert boot.n_failed == 0 and boot.samples.shape == (400, len(result.params))
    for name, se in result.se.items():
        # n = 500: the two agree to O(1/n); 400 replicates estimate an SD to about 3.5%.
        assert boot.se[name] == pytest.approx(se, rel=0.12), name
        # and the replicates centre on the estimate (bias O(1/n), Monte Carlo error se / 20)
        assert abs(boot.samples[:, list(result.params).index(name)].mean() - result.params[name]) < 0.2 * se


def test_percentile_intervals_cover_at_about_their_level():
    # Exponential, n = 30: 100 data sets, a 90% parametric percentile interval of the rate each.
    rng = np.random.default_rng(4)
    covered = 0
    for _ in range(100):
        boot = fit(rng.exponential(0.5, size=30), "exponential").bootstrap(99, seed=rng)
        lo, hi = boot.ci(0.9)["rate"]
        covered += lo <= 2.0 <= hi
    assert 0.82 <= covered / 100 <= 0.97  # Binomial(100, 0.9): sd 0.03


def test_intervals_of_functions_are_the_transformed_intervals_of_the_parameter():
    # The exponential's q-quantile is -log(1 - q) / rate, decreasing in the rate. With 401 replicates the
    # 2.5% and 97.5% ends are exact order statistics, so the percentile interval is exactly equivariant.
    result = fit(np.random.default_rng(5).exponential(2.0, size=100), "exponential")
    boot = result.bootstrap(401, seed=0)
    lo, hi = boot.ci()["rate"]
    q_lo, q_hi = boot.ci_quantile(0.9)
    np.testing.assert_allclose([q_lo, q_hi], [math.log(10.0) / hi, math.log(10.0) / lo], rtol=1e-12)
    np.testing.assert_allclose(boot.ci_mean(), [1.0 / hi, 1.0 / lo], rtol=1e-12)
    lows, highs = boot.ci_quantile([0.5, 0.9])
    np.testing.assert_allclose(highs, [math.log(2.0) / lo, math.log(10.0) / lo], rtol=1e-12)
    assert lows.shape == (2,)
    both = result.ci(method="bootstrap", n_boot=401, seed=0, functions={"q90": lambda d: d.ppf(0.9)})
    assert list(both) == ["rate", "q90"] and both["q90"] == (q_lo, q_hi)


def test_poisson_mean_interval_is_the_rate_interval():
    boot = fit(DATA["poisson"](np.random.default_rng(6)), "poisson").bootstrap(100, kind="nonparametric", seed=1)
    assert boot.ci_mean(0.8) == boot.ci(0.8)["rate"]
    np.testing.assert_array_equal(boot.values(lambda d: d.var()), boot.params["rate"])


def test_nonparametric_replicates_resample_the_data():
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    boot = fit(x, "normal").bootstrap(300, kind="nonparametric", seed=0)
    locs = boot.params["loc"]
    # Every replicate mean is (sum of 5 draws) / 5 from the data: a multiple of 1/5 inside the data's range.
    np.testing.assert_allclose(locs * 5.0, np.round(locs * 5.0), atol=1e-9)
    assert locs.min() >= 1.0 and locs.max() <= 16.0
    # Integer weights are counts: the same bootstrap distribution as the expanded data.
    counts = np.array([3, 1, 2, 1, 3])
    weighted = fit(x, "normal", weights=counts).bootstrap(400, kind="nonparametric", seed=1).se["loc"]
    expanded = fit(np.repeat(x, counts), "normal").bootstrap(400, kind="nonparametric", seed=2).se["loc"]
    assert weighted == pytest.approx(expanded, rel=0.15)
    assert weighted == pytest.approx(np.repeat(x, counts).std() / math.sqrt(10), rel=0.15)


def test_non_integer_weights():
    rng = np.random.default_rng(7)
    x, w = rng.normal(size=200), rng.uniform(0.5, 1.5, size=200)
    result = fit(x, "normal", weights=w)
    with pytest.raises(ValueError, match=r"Fit\.bootstrap: weights must be integer counts for a parametric bootstrap"):
        result.bootstrap(10)
    # Nonparametric: the rows are the units, each resampled row carrying its weight.
    boot = result.bootstrap(300, kind="nonparametric", seed=0)
    weighted_se = math.sqrt(np.sum(w**2 * (x - result.params["loc"]) ** 2)) / w.sum()  # the sandwich SE of a mean
    assert boot.se["loc"] == pytest.approx(weighted_se, rel=0.15)
    counts = fit(rng.poisson(3.0, size=50).astype(float), "poisson", weights=rng.uniform(0.5, 1.5, size=50))
    with pytest.raises(ValueError, match="nonparametric bootstrap of a discrete fit"):
        counts.bootstrap(10, kind="nonparametric")


def test_held_and_structural_parameters_stay_put():
    rng = np.random.default_rng(8)
    held = fit(rng.normal(0.0, 2.0, size=100), "normal", fixed={"loc": 0.0}).bootstrap(50, seed=0)
    assert np.all(held.params["loc"] == 0.0) and held.ci()["loc"] == (0.0, 0.0) and held.se["loc"] == 0.0
    binomial = fit(rng.binomial(6, 0.4, size=100).astype(float), "binomial", fixed={"trials": 6})
    boot = binomial.bootstrap(200, kind="nonparametric", seed=0)
    assert np.all(boot.params["trials"] == 6.0)
    assert boot.se["p"] == pytest.approx(binomial.se["p"], rel=0.15)
    categorical = fit(rng.integers(0, 3, size=300).astype(float), "categorical").bootstrap(200, seed=0)
    np.testing.assert_allclose(categorical.samples.sum(axis=1), 1.0)


def test_failed_refits_are_counted_reported_and_left_out():
    result = fit([0.0, 0.0, 0.0, 0.0, 1.0], "poisson")
    with pytest.warns(FitWarning, match=r"Fit.bootstrap: \d+ of 300 bootstrap refits failed"):
        boot = result.bootstrap(300, kind="nonparametric", seed=0)
    # A resample without the single 1 has probability (4/5)^5 = 0.33 and gives a rate of 0, on the boundary.
    assert st.binom(300, 0.8**5).ppf(0.0005) <= boot.n_failed <= st.binom(300, 0.8**5).ppf(0.9995)
    assert boot.samples.shape == (300 - boot.n_failed, 1) and np.all(boot.samples > 0.0)
    assert boot.failures == {"the estimate is on the boundary of the parameter space": boot.n_failed}
    assert f"{boot.n_failed} failed" in str(boot) and boot.to_dict()["n_failed"] == boot.n_failed


def test_every_refit_failing_is_an_error():
    result = fit([0.0, 1.0], "bernoulli")  # a resample of two values is all zeros or all ones half the time
    with pytest.raises(ValueError, match=r"every one of the 3 bootstrap refits failed \(3 x the estimate is on the"):
        result.bootstrap(3, kind="nonparametric", seed=3)  # a seed whose three resamples all are


def test_report_and_dict():
    result = fit(DATA["normal"](np.random.default_rng(9)), "normal")
    boot = result.bootstrap(60, seed=5, kind="nonparametric")
    assert isinstance(boot, Bootstrap)
    text = str(boot)
    assert "nonparametric bootstrap, 60 refits" in text and "95% CI (percentile)" in text
    out = json.loads(json.dumps(boot.to_dict(0.9)))
    assert out["seed"] == 5 and out["level"] == 0.9 and out["ci"]["loc"] == list(boot.ci(0.9)["loc"])
    assert "seed=5" in repr(boot)
    summary = result.summary(0.9, "bootstrap", n_boot=60, seed=5, kind="nonparametric")
    lo, hi = boot.ci(0.9)["loc"]
    assert "90% CI (bootstrap)" in summary and f"[{lo:.6g}, {hi:.6g}]" in summary
    assert result.summary().splitlines()[1].endswith("95% CI (Wald)")


def test_progress_is_reported_after_every_refit():
    calls = []
    fit(DATA["normal"](np.random.default_rng(9)), "normal").bootstrap(5, seed=0, progress=lambda *a: calls.append(a))
    assert calls == [(i, 5) for i in range(1, 6)]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda r: r.ci(method="jackknife"),
            ValueError,
            "Fit.ci: method must be one of 'wald', 'profile', 'bootstrap'; got 'jackknife'",
        ),
        (lambda r: r.bootstrap(0), ValueError, "Fit.bootstrap: n_boot must be at least 1; got 0"),
        (lambda r: r.bootstrap(2.0), TypeError, "Fit.bootstrap: n_boot must be an integer; got 2.0"),
        (lambda r: r.bootstrap(5, kind="jackknife"), ValueError, "Fit.bootstrap: kind must be one of"),
        (lambda r: r.ci(functions={"m": lambda d: d.mean()}), ValueError, "Fit.ci: functions must be None unless"),
        (
            lambda r: r.ci(method="bootstrap", n_boot=5, seed=0, functions={"loc": lambda d: d.mean()}),
            ValueError,
            "Fit.ci: functions must not reuse a parameter's name; got 'loc'",
        ),
        (lambda r: r.bootstrap(5, seed=0).ci(1.5), ValueError, r"Bootstrap.ci: level must be in \(0, 1\); got 1.5"),
        (lambda r: r.bootstrap(5, seed=0).ci_quantile(1.0), ValueError, "Bootstrap.ci_quantile: q must be in"),
        (lambda r: r.bootstrap(5, seed=0).values(3), TypeError, "Bootstrap.values: func must be callable; got 3"),
    ],
)
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call(fit(DATA["normal"](np.random.default_rng(10)), "normal"))


def test_censored_rows_are_resampled_whole():
    rng = np.random.default_rng(11)
    x, c = rng.exponential(2.0, size=60), rng.exponential(3.0, size=60)
    time, event = np.minimum(x, c), x <= c
    result = fit(Censored(time[event], right=time[~event]), "exponential")
    boot = result.bootstrap(8, kind="nonparametric", seed=0)
    assert boot.n_failed == 0
    # With right censoring the exponential MLE is events / total time; rows go exact first, then right-censored.
    rows, events = (
        np.concatenate([time[event], time[~event]]),
        np.concatenate([np.ones(event.sum()), np.zeros(60 - event.sum())]),
    )
    draws = np.random.default_rng(0)
    expected = []
    for _ in range(8):
        counts = draws.multinomial(60, np.full(60, 1.0 / 60))
        expected.append(np.sum(counts * events) / np.sum(counts * rows))
    np.testing.assert_allclose(boot.params["rate"], expected, rtol=1e-6)
    with pytest.raises(ValueError, match=r"Fit\.bootstrap: data must be uncensored \(a parametric bootstrap would"):
        result.bootstrap(5)
    with pytest.raises(ValueError, match=r"Fit\.gof: data must be uncensored .* got \d+ censored observations of 60"):
        result.gof()
