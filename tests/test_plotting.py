"""Plots of skills, forecasts and traces: each returns the Axes it drew on, with the expected
artists. A posterior is faked from a simulation's truth plus noise (no sampling). The Agg
backend is set by ``tests/conftest.py``."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from sloth.evaluation.harness import pit_histogram
from sloth.model.design import build_arrays
from sloth.model.simulate import simulate_leaderboard
from sloth.plotting import (
    plot_forecast_fan,
    plot_loadings,
    plot_pit_histogram,
    plot_pit_histograms,
    plot_skill_levels,
    plot_trace,
)
from sloth.posterior.datatree import build_datatree
from sloth.skills.analysis import analyze_skills

CHAINS, DRAWS = 2, 40


@pytest.fixture(scope="module")
def tree():
    table, truth = simulate_leaderboard(n_families=12, n_skills=2, n_benchmarks=6, seed=2)
    rng = np.random.default_rng(0)
    d = 2

    def jitter(value, scale=0.05):
        value = np.asarray(value, dtype=float)
        return value + rng.normal(0.0, scale, (CHAINS, DRAWS, *value.shape))

    samples = {
        "skill_slope": jitter(truth.skill_slope),
        "family_efficiency": jitter(truth.family_efficiency),
        "family_scale": np.abs(jitter(np.ones(d))),
        "family_corr_chol": np.broadcast_to(np.eye(d), (CHAINS, DRAWS, d, d)),
        "loading": jitter(truth.loading),
        "intercept": jitter(truth.intercept),
        "noise_scale": np.abs(jitter(truth.noise_scale, 0.001)),
    }
    arrays = build_arrays(table, truth.scaler, truth.inv_items)
    attrs = {"scaler": json.dumps(truth.scaler.to_attrs()), "anchors": "[]"}
    return build_datatree(samples, {}, np.zeros((CHAINS, DRAWS, len(arrays.scores))), table,
                          arrays, truth.scaler.names, attrs)


@pytest.fixture(scope="module")
def analysis(tree):
    return analyze_skills(tree, rotation="geomin")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_loadings_heatmap_shows_means_and_intervals(analysis):
    ax = plot_loadings(analysis)
    assert isinstance(ax, plt.Axes)
    J, d = len(analysis.benchmarks), analysis.n_skills
    assert len(ax.images) == 1
    np.testing.assert_allclose(ax.images[0].get_array(),
                               analysis.rotation.loading.mean(axis=0), atol=1e-12)
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == J * d and all("[" in t and "]" in t for t in texts)
    assert [t.get_text() for t in ax.get_xticklabels()] == analysis.names
    assert [t.get_text() for t in ax.get_yticklabels()] == analysis.benchmarks
    # the colour scale is symmetric around zero
    vmin, vmax = ax.images[0].get_clim()
    assert vmin == pytest.approx(-vmax)


def test_loadings_heatmap_draws_on_the_given_axes(analysis):
    _, axes = plt.subplots(1, 2)
    ax = plot_loadings(analysis, annotate=False, ax=axes[1])
    assert ax is axes[1] and len(ax.texts) == 0 and len(axes[0].images) == 0


def test_skill_levels_have_contours_isoflop_lines_and_optimum_paths(analysis):
    ax = plot_skill_levels(analysis, 0, compute=[1e21, 1e22, 1e23])
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [line.get_label() for line in ax.get_lines()]
    paths = [lab for lab in labels if lab.startswith("optimum:")]
    assert len(paths) == analysis.n_skills
    assert all(name in " ".join(paths) for name in analysis.names)
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert 1 <= len(dashed) <= 3
    for line in dashed:  # iso-FLOP lines: N * D constant
        n, dd = line.get_xdata(), line.get_ydata()
        assert np.ptp(np.log10(6 * n * dd)) < 1e-9
    assert analysis.names[0] in ax.get_title()
    # the fitted models are shown
    assert len(ax.collections[-1].get_offsets()) == len(analysis.params)


def test_skill_levels_reject_an_unknown_skill(analysis):
    with pytest.raises(ValueError, match="not one of"):
        plot_skill_levels(analysis, "no-such-skill")


def _predictions():
    sizes = {"m1": 1e9, "m2": 7e9, "m3": 7e10}
    rows = []
    for bench, slope in (("MMLU", 0.05), ("GSM8K", 0.08)):
        for i, model in enumerate(sizes):
            mid = 0.3 + slope * i
            rows.append({"model": model, "family": "new", "benchmark": bench, "mean": mid,
                         "median": mid, "q05": mid - 0.1, "q95": mid + 0.1})
    return pd.DataFrame(rows), sizes


def test_forecast_fan_draws_a_band_and_median_per_benchmark():
    predictions, sizes = _predictions()
    ax = plot_forecast_fan(predictions, sizes)
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2 and len(ax.get_lines()) == 2
    assert [line.get_label() for line in ax.get_lines()] == ["MMLU", "GSM8K"]
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [1e9, 7e9, 7e10])
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [0.3, 0.38, 0.46])
    assert ax.get_xscale() == "log"


def test_forecast_fan_overlays_observed_scores_and_inner_bands():
    predictions, sizes = _predictions()
    predictions["params"] = predictions["model"].map(sizes)
    predictions["q25"] = predictions["median"] - 0.05
    predictions["q75"] = predictions["median"] + 0.05
    observed = pd.DataFrame({"model": ["m1"], "params": [1e9], "MMLU": [0.31]})
    ax = plot_forecast_fan(predictions, benchmarks=["MMLU"], observed=observed)
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2  # 90% band and inner band
    points = [c for c in ax.collections if not isinstance(c, PolyCollection)]
    np.testing.assert_allclose(points[0].get_offsets(), [[1e9, 0.31]])


def test_forecast_fan_errors_name_the_fix():
    predictions, sizes = _predictions()
    with pytest.raises(ValueError, match="params="):
        plot_forecast_fan(predictions)
    with pytest.raises(ValueError, match="lack columns"):
        plot_forecast_fan(predictions.drop(columns="q95"), sizes)
    with pytest.raises(ValueError, match="m3"):
        plot_forecast_fan(predictions, {"m1": 1e9, "m2": 7e9})
    with pytest.raises(ValueError, match="not in predictions"):
        plot_forecast_fan(predictions, sizes, benchmarks=["IFEval"])


def test_pit_histogram_draws_the_bars_the_uniform_line_and_its_band():
    from matplotlib.patches import StepPatch

    pit = np.random.default_rng(0).beta(0.5, 0.5, 400)  # U-shaped: overconfident
    ax = plot_pit_histogram(pit, bins=8, band=0.95, title="overconfident")
    expected = pit_histogram(pit, bins=8, level=0.95)
    (bars,) = [p for p in ax.patches if isinstance(p, StepPatch)]
    np.testing.assert_allclose(bars.get_data().values, expected.density)
    np.testing.assert_allclose(bars.get_data().edges, np.linspace(0, 1, 9))
    band = [p for p in ax.patches if not isinstance(p, StepPatch)]
    (low, high) = band[0].get_extents().transformed(ax.transData.inverted()).get_points()[:, 1]
    assert low == pytest.approx(expected.lower) and high == pytest.approx(expected.upper)
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [1.0, 1.0])
    assert ax.get_title().startswith("overconfident\n")
    assert f"{expected.outside} of 8 bins outside" in ax.get_title()
    assert expected.outside >= 2
    plt.close(ax.figure)


def test_pit_histograms_draw_one_panel_per_method_and_name_missing_pit():
    rng = np.random.default_rng(1)
    predictions = pd.DataFrame({"method": np.repeat(["sloth", "a", "b"], 300),
                                "pit": rng.uniform(size=900)})
    axes = plot_pit_histograms(predictions)
    assert [ax.get_title().split("\n")[0] for ax in axes] == ["sloth", "a", "b"]
    assert len([ax for ax in axes[0].figure.axes if ax.get_visible()]) == 3
    axes = plot_pit_histograms(predictions, methods=["b"])
    assert len(axes) == 1 and axes[0].get_title().startswith("b\n")
    with pytest.raises(ValueError, match="not in predictions"):
        plot_pit_histograms(predictions, methods=["c"])
    with pytest.raises(ValueError, match=r"'pit'.*run the evaluation again"):
        plot_pit_histograms(predictions.drop(columns="pit"))
    plt.close("all")


@pytest.mark.parametrize("kind", ["trace", "rank"])
def test_trace_and_rank_plots_draw_one_line_per_chain(tree, kind):
    _, ax = plt.subplots()
    out = plot_trace(tree, "loading", {"benchmark": "ARC", "skill": "skill_1"}, kind=kind,
                     ax=ax)
    assert out is ax
    assert len(ax.get_lines()) == CHAINS
    colours = {tuple(line.get_color()) if not isinstance(line.get_color(), str)
               else line.get_color() for line in ax.get_lines()}
    assert len(colours) == CHAINS
    if kind == "trace":
        values = tree["posterior"]["loading"].sel(benchmark="ARC", skill="skill_1").to_numpy()
        np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), values[0])


def test_trace_of_rotated_loadings_from_an_analysis(analysis):
    name = analysis.names[0]
    ax = plot_trace(analysis, "loading", {"benchmark": analysis.benchmarks[0], "skill": name})
    expected = analysis.rotation.loading[:DRAWS, 0, 0]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), expected)
    assert name in ax.get_title()


def test_trace_requires_a_scalar_selection(tree):
    with pytest.raises(ValueError, match="still has dims"):
        plot_trace(tree, "loading", {"benchmark": "ARC"})
    with pytest.raises(ValueError, match="not a posterior variable"):
        plot_trace(tree, "nope")
    with pytest.raises(ValueError, match="choose 'trace' or 'rank'"):
        plot_trace(tree, "intercept", {"benchmark": "ARC"}, kind="pair")
