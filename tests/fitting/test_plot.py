"""Diagnostic plots: what is drawn equals scipy's densities, CDFs and quantiles at the fitted parameters.

Every line and bar of the figures is read back (``get_xdata``, ``get_ydata``,
patch heights) and compared with scipy.stats at the estimates and with the
data's own ECDF, plotting positions and histogram.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np
import pytest
from scipy import stats

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nllkit import datasets  # noqa: E402
from nllkit.fitting import (  # noqa: E402
    Censored,
    compare,
    fit,
)
from nllkit.fitting._plot import MAX_POINTS, positions  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def gamma_fit():  # type: ignore[no-untyped-def]
    x = np.random.default_rng(11).gamma(2.5, 1.7, size=300)
    return x, fit(x, "gamma")


@pytest.fixture(scope="module")
def kicks_fit():  # type: ignore[no-untyped-def]
    kicks = datasets.load("horse-kicks")
    return kicks, fit(kicks.values, "poisson", weights=kicks.weights)


def lines(ax, label: str):  # type: ignore[no-untyped-def]
    found = [line for line in ax.get_lines() if line.get_label() == label]
    assert len(found) == 1, [line.get_label() for line in ax.get_lines()]
    return np.asarray(found[0].get_xdata(), dtype=float), np.asarray(found[0].get_ydata(), dtype=float)


def scipy_gamma(result):  # type: ignore[no-untyped-def]
    return stats.gamma(result.params["shape"], scale=result.params["scale"])


def test_all_is_a_two_by_two_figure_of_the_four_kinds(gamma_fit) -> None:  # type: ignore[no-untyped-def]
    _, result = gamma_fit
    figure = result.plot()
    assert [ax.get_title() for ax in figure.axes] == ["Density", "CDF", "Q-Q plot", "P-P plot"]
    assert [ax.get_subplotspec().get_geometry()[:2] for ax in figure.axes] == [(2, 2)] * 4
    assert [(ax.get_xlabel(), ax.get_ylabel()) for ax in figure.axes] == [
        ("value", "density"),
        ("value", "cumulative probability"),
        ("fitted quantiles", "data (sorted)"),
        ("fitted probabilities", "empirical probabilities"),
    ]
    assert figure._suptitle.get_text() == repr(result.dist)
    # One legend, on the density panel: the same colours serve the others.
    assert [ax.get_legend() is not None for ax in figure.axes] == [True, False, False, False]


def test_qq_is_fitted_quantiles_at_hazen_positions_against_sorted_data(gamma_fit) -> None:  # type: ignore[no-untyped-def]
    x, result = gamma_fit
    ax = result.plot("qq").axes[0]
    qx, qy = lines(ax, "gamma fit")
    n = x.size
    p = (np.arange(1, n + 1) - 0.5) / n
    np.testing.assert_allclose(qx, scipy_gamma(result).ppf(p), rtol=1e-9)
    np.testing.assert_array_equal(qy, np.sort(x))
    dx, dy = lines(ax, "_y = x")
    np.testing.assert_array_equal(dx, dy)  # the reference line y = x spans the points
    assert dx[0] <= min(qx.min(), qy.min()) and dx[1] >= max(qx.max(), qy.max())


def test_pp_is_fitted_cdf_at_sorted_data_against_positions(gamma_fit) -> None:  # type: ignore[no-untyped-def]
    x, result = gamma_fit
    ax = result.plot("pp").axes[0]
    px, py = lines(ax, "gamma fit")
    np.testing.assert_allclose(px, scipy_gamma(result).cdf(np.sort(x)), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(py, (np.arange(1, x.size + 1) - 0.5) / x.size, rtol=1e-15)


def test_cdf_is_the_ecdf_steps_and_the_fitted_cdf(gamma_fit) -> None:  # type: ignore[no-untyped-def]
    x, result = gamma_fit
    ax = result.plot("cdf").axes[0]
    gx, gy = lines(ax, "gamma fit")
    np.testing.assert_allclose(gy, scipy_gamma(result).cdf(gx), rtol=1e-9, atol=1e-15)
    assert gx[0] <= x.min() and gx[-1] >= x.max()
    ex, ey = lines(ax, "data")
    assert ax.get_lines()[0].get_drawstyle() == "steps-post"
    np.testing.assert_array_equal(ex[1:-1], np.sort(x))
    np.testing.assert_allclose(ey, np.concatenate(([0.0], np.arange(1, x.size + 1) / x.size, [1.0])))


def test_density_is_the_histogram_and_the_fitted_pdf(gamma_fit) -> None:  # type: ignore[no-untyped-def]
    x, result = gamma_fit
    ax = result.plot("density").axes[0]
    edges = np.histogram_bin_edges(x, bins="auto")
    heights = [patch.get_height() for patch in ax.patches]
    np.testing.assert_allclose(heights, np.histogram(x, bins=edges, density=True)[0], rtol=1e-12)
    gx, gy = lines(ax, "gamma fit")
    np.testing.assert_allclose(gy, scipy_gamma(result).pdf(gx), rtol=1e-9)
    # The curve covers the data (5% margin), clipped at the support's lower end 0.
    assert gx[0] == max(0.0, x.min() - 0.05 * np.ptp(x)) and gx[-1] == pytest.approx(x.max() + 0.05 * np.ptp(x))
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["data", "gamma fit"]


def test_a_fitted_density_far_above_the_histogram_does_not_squash_it() -> None:
    # A held scale of 0.02 puts the normal's peak (~20) 50 times above the histogram's (~0.4).
    x = np.random.default_rng(3).normal(size=400)
    ax = fit(x, "normal", fixed={"scale": 0.02}).plot("density").axes[0]
    tallest = max(patch.get_height() for patch in ax.patches)
    _, pdf = lines(ax, "normal fit")
    assert pdf.max() > 10.0 * tallest
    assert ax.get_ylim() == pytest.approx((0.0, 3.0 * tallest))


def test_discrete_density_is_observed_frequencies_and_the_pmf(kicks_fit) -> None:  # type: ignore[no-untyped-def]
    kicks, result = kicks_fit
    ax = result.plot("density").axes[0]
    assert ax.get_ylabel() == "probability"
    bars = sorted((patch.get_x() + patch.get_width() / 2, patch.get_height()) for patch in ax.patches)
    np.testing.assert_allclose([b[0] for b in bars], kicks.values, atol=1e-12)
    np.testing.assert_allclose([b[1] for b in bars], kicks.weights / 200.0, rtol=1e-15)
    kx, ky = lines(ax, "poisson fit")
    # Integers over the data and the fitted law's central 99.8%.
    np.testing.assert_array_equal(kx, np.arange(0.0, stats.poisson.ppf(0.999, 0.61) + 1))
    np.testing.assert_allclose(ky, stats.poisson.pmf(kx, 0.61), rtol=1e-12)


def test_discrete_pp_compares_the_two_cdfs_at_the_values(kicks_fit) -> None:  # type: ignore[no-untyped-def]
    kicks, result = kicks_fit
    px, py = lines(result.plot("pp").axes[0], "poisson fit")
    np.testing.assert_allclose(px, stats.poisson.cdf(kicks.values, 0.61), rtol=1e-12)
    np.testing.assert_allclose(py, np.cumsum(kicks.weights) / 200.0, rtol=1e-15)


def test_discrete_qq_and_cdf(kicks_fit) -> None:  # type: ignore[no-untyped-def]
    kicks, result = kicks_fit
    figure = result.plot()
    qx, qy = lines(figure.axes[2], "poisson fit")
    middle = (np.cumsum(kicks.weights) - kicks.weights / 2) / 200.0  # mid-ranks of 109, 65, 22, 3, 1 kicks
    np.testing.assert_array_equal(qx, stats.poisson.ppf(middle, 0.61))
    np.testing.assert_array_equal(qy, kicks.values)
    cx, cy = lines(figure.axes[1], "poisson fit")
    assert figure.axes[1].get_lines()[1].get_drawstyle() == "steps-post"
    np.testing.assert_allclose(cy, stats.poisson.cdf(cx, 0.61), rtol=1e-12)


def test_weighted_positions_use_cumulative_weights() -> None:
    x, w = np.array([3.0, 1.0, 2.0]), np.array([1.0, 1.0, 2.0])
    result = fit(x, "normal", weights=w)
    _, py = lines(result.plot("pp").axes[0], "normal fit")
    np.testing.assert_allclose(py, [0.125, 0.5, 0.875])
    from nllkit.distributions._family import Sample

    np.testing.assert_allclose(positions(Sample(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 1.0]))), py)


def test_large_samples_show_at_most_max_points_spanning_the_extremes() -> None:
    x = np.random.default_rng(5).normal(size=3 * MAX_POINTS)
    qx, qy = lines(fit(x, "normal").plot("qq").axes[0], "normal fit")
    assert qx.size == qy.size == MAX_POINTS
    assert qy[0] == x.min() and qy[-1] == x.max()


def test_comparison_overlays_its_fits_best_first() -> None:
    x = np.random.default_rng(7).lognormal(0.3, 0.5, size=250)
    comparison = compare(x, ["lognormal", "gamma", "normal"])
    figure = comparison.plot("cdf")
    ax = figure.axes[0]
    names = [row.family for row in comparison]
    assert [line.get_label() for line in ax.get_lines()] == ["data", *names]
    for row in comparison:
        gx, gy = lines(ax, row.family)
        np.testing.assert_allclose(gy, np.asarray(row.fit.dist.cdf(gx)), rtol=1e-12)
    mu, sigma = comparison["lognormal"].params["mu"], comparison["lognormal"].params["sigma"]
    gx, gy = lines(ax, "lognormal")
    np.testing.assert_allclose(gy, stats.lognorm(sigma, scale=np.exp(mu)).cdf(gx), rtol=1e-9, atol=1e-15)
    whole = comparison.plot(families=["gamma", "normal"])
    assert whole._suptitle.get_text() == "2 fits of 250 observations"
    assert sorted(t.get_text() for t in whole.axes[0].get_legend().get_texts()) == ["data", "gamma", "normal"]


def test_comparison_plot_refuses_a_family_it_did_not_fit() -> None:
    comparison = compare(np.random.default_rng(8).normal(size=50), ["normal", "logistic"])
    with pytest.raises(ValueError, match=r"Comparison.plot: families must name fitted rows \(.*\); got 'gamma'"):
        comparison.plot(families=["gamma"])


def test_a_given_axes_is_drawn_on(gamma_fit) -> None:  # type: ignore[no-untyped-def]
    _, result = gamma_fit
    figure, axes = plt.subplots(1, 2)
    assert result.plot("qq", ax=axes[1]) is figure
    assert axes[1].get_title() == "Q-Q plot" and not axes[0].get_lines()


def test_bad_arguments(gamma_fit) -> None:  # type: ignore[no-untyped-def]
    _, result = gamma_fit
    with pytest.raises(
        ValueError, match=r"Fit.plot: kind must be one of 'density', 'qq', 'pp', 'cdf', 'all'; got 'hist'"
    ):
        result.plot("hist")
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match=r"Fit.plot: ax must be None for kind='all'"):
        result.plot("all", ax=ax)


def test_censored_fits_are_refused() -> None:
    result = fit(Censored([1.0, 2.0, 2.5, 4.0], right=[3.0, 3.0]), "exponential")
    with pytest.raises(ValueError, match=r"Fit\.plot: data must be uncensored"):
        result.plot()


def test_missing_matplotlib_names_the_extra(gamma_fit, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    _, result = gamma_fit
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"Fit.plot: plotting needs matplotlib: pip install 'nllkit\[plot\]'"):
        result.plot()
