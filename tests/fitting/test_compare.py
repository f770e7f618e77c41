"""``compare``: ranking by AIC, Akaike weights, the KS distance, 'auto' and failing families."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats as st

from nllkit.distributions._family import Sample
from nllkit.distributions._registry import AUTO_FAMILIES, get_family
from nllkit.fitting import FitWarning, compare, fit
from nllkit.fitting._compare import ks_distance


def test_ks_distance_is_scipys_kstest_for_continuous_data():
    x = np.random.default_rng(0).normal(1.0, 2.0, 300)
    result = fit(x, "normal")
    table = Sample(x, np.ones_like(x)).compressed()
    expected = st.kstest(x, st.norm(*result.theta).cdf).statistic
    np.testing.assert_allclose(ks_distance(table, result.family, result.theta), expected, rtol=1e-12)


def test_ks_distance_on_the_integers_is_the_sup_over_every_integer():
    family = get_family("poisson")
    y = np.random.default_rng(1).poisson(4.0, 200).astype(float)
    table = Sample(y, np.ones_like(y)).compressed()
    grid = np.arange(-1, 40)
    ecdf = np.searchsorted(np.sort(y), grid, side="right") / y.size
    expected = np.max(np.abs(ecdf - st.poisson.cdf(grid, 3.5)))
    np.testing.assert_allclose(ks_distance(table, family, np.array([3.5])), expected, rtol=1e-12)


def test_compare_ranks_by_aic_with_akaike_weights():
    for name in ("gamma", "lognormal", "weibull", "exponential"):
        get_family(name)
    x = np.random.default_rng(2).gamma(3.0, 2.0, 2000)
    table = compare(x, ["lognormal", "gamma", "exponential", "weibull", "normal"])
    aics = [row.aic for row in table]
    assert aics == sorted(aics)
    assert table.best.family.name == "gamma" and table[0].delta_aic == 0.0
    np.testing.assert_allclose(sum(row.weight for row in table), 1.0)
    deltas = np.array(aics) - aics[0]
    np.testing.assert_allclose([row.weight for row in table], np.exp(-deltas / 2) / np.exp(-deltas / 2).sum())
    for row in table:  # each row is the family's own fit
        single = fit(x, row.family)
        assert row.params == single.params and row.loglik == single.loglik and row.converged
        assert row.bic == single.bic
    text = str(table)
    assert text.splitlines()[0].split()[:4] == ["family", "k", "loglik", "AIC"]
    assert json.loads(json.dumps(table.to_dict()))["rows"][0]["family"] == "gamma"
    assert table["normal"].family == "normal" and len(table) == 5


def test_a_family_that_cannot_be_fitted_is_a_row_with_its_error():
    get_family("gamma")
    x = np.random.default_rng(3).normal(size=100)
    table = compare(x, ["gamma", "normal"])
    assert table[0].family == "normal" and table[1].family == "gamma"
    assert table[1].fit is None and "gamma: data must be" in table[1].error
    assert math.isnan(table[1].aic) and "error" in str(table)


@pytest.mark.parametrize(
    ("draw", "kind"),
    [
        (lambda r: r.normal(size=300), "real"),
        (lambda r: r.gamma(2.0, size=300), "positive"),
        (lambda r: r.beta(2.0, 3.0, size=300), "unit"),
        (lambda r: r.poisson(3.0, size=300), "counts"),
        (lambda r: r.integers(0, 2, size=300), "binary"),
    ],
)
def test_auto_picks_families_from_the_support(draw, kind):
    for name in AUTO_FAMILIES[kind]:
        get_family(name)
    x = draw(np.random.default_rng(4)).astype(float)
    with warnings.catch_warnings(record=True) as caught:  # boundary fits (zero inflation without zeros) may warn
        warnings.simplefilter("always")
        table = compare(x, "auto")
    assert all(issubclass(w.category, FitWarning) for w in caught)
    assert sorted(row.family for row in table) == sorted(get_family(n).name for n in AUTO_FAMILIES[kind])
    assert all(row.fit is not None for row in table)


def test_compare_arguments():
    with pytest.raises(ValueError, match="compare: families must be 'auto'"):
        compare([1.0, 2.0], "normal")
    with pytest.raises(ValueError, match="compare: data must be finite"):
        compare([1.0, np.nan], ["normal"])
    with pytest.raises(ValueError, match="compare: families must name at least one family"):
        compare([1.0, 2.0], [])
