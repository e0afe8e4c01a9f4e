"""Posterior and prior predictive checks (sloth.checks.predictive), their figures and
``sloth diagnose --predictive``, on the small simulated leaderboard of ``comparison_fits``
(two true skills, fitted with two: the true model)."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest

from sloth.checks.predictive import (
    PredictiveThresholds,
    check_posterior_predictive,
    check_predictive,
    posterior_predictive_summary,
    prior_predictive,
    prior_predictive_summary,
)
from sloth.cli.main import main

DRAWS = 300


@pytest.fixture(scope="module")
def true_fit(comparison_fits):
    return comparison_fits[1]["d2"]


@pytest.fixture(scope="module")
def checked(true_fit):
    return check_predictive(true_fit, max_draws=DRAWS, prior_draws=DRAWS, seed=0)


def test_groups_match_the_observed_data(true_fit, checked):
    tree = checked.tree
    observed = tree["observed_data"]["scores"]
    for group, chains in (("posterior_predictive", 2), ("prior_predictive", 1)):
        scores = tree[group]["scores"]
        assert scores.dims == ("chain", "draw", "model", "benchmark")
        assert scores.sizes["chain"] == chains
        assert scores.sizes["chain"] * scores.sizes["draw"] == DRAWS
        for dim in ("model", "benchmark"):
            assert list(scores[dim].to_numpy()) == list(observed[dim].to_numpy())
        # replicates of exactly the observed cells
        unobserved = np.isnan(observed.to_numpy())
        values = scores.to_numpy()
        assert np.isnan(values[..., unobserved]).all()
        assert np.isfinite(values[..., ~unobserved]).all()
    # the fit itself is left alone
    assert "posterior_predictive" not in true_fit.idata_.children


def test_the_true_model_covers_its_data(checked):
    summary = checked.posterior
    assert list(summary.index) == list(checked.tree["observed_data"]["benchmark"].to_numpy())
    n = summary["n"].to_numpy()
    # per benchmark about 40 scores: 90% intervals cover 0.9 within binomial noise (in-sample
    # a little more), 50% intervals about half
    assert ((summary["coverage90"] >= 0.8) & (summary["coverage90"] <= 1.0)).all(), summary
    overall = np.average(summary["coverage90"], weights=n)
    assert 0.86 <= overall <= 0.99, summary
    assert 0.4 <= np.average(summary["coverage50"], weights=n) <= 0.75, summary
    assert ((summary["p_mean"] > 0.02) & (summary["p_mean"] < 0.98)).all(), summary
    [finding] = checked.by_check("posterior_predictive")
    assert finding.severity == "ok", finding.message


def test_a_shifted_benchmark_is_flagged(checked):
    # the replicates of the fit against scores of one benchmark moved up by 0.1: the check
    # names that benchmark and no other
    tree = checked.tree.copy()
    observed = tree["observed_data"].to_dataset()
    shifted = observed["scores"].copy()
    shifted.loc[{"benchmark": "ARC"}] = shifted.sel(benchmark="ARC") + 0.1
    tree["observed_data"] = observed.assign(scores=shifted)
    summary = posterior_predictive_summary(tree)
    assert summary.loc["ARC", "p_mean"] < 0.005
    assert summary.loc["ARC", "coverage90"] < 0.6
    [finding] = check_posterior_predictive(summary, PredictiveThresholds())
    assert finding.severity == "warning"
    assert list(finding.details["failed"]) == ["ARC"], finding.message


def test_prior_predictive_shares(checked):
    summary = checked.prior
    draws = checked.tree["prior_predictive"]["scores"]
    floors = checked.tree["constant_data"]["floors"]
    for name, row in summary.iterrows():
        y = draws.sel(benchmark=name).to_numpy().ravel()
        y = y[~np.isnan(y)]
        c = float(floors.sel(benchmark=name))
        assert row["valid"] == pytest.approx(np.mean((y >= 0) & (y <= 1)))
        assert row["above_floor"] == pytest.approx(np.mean((y >= c) & (y <= 1)))
        assert row["at_floor"] == pytest.approx(np.mean(y < c + 0.02))
        assert row["q05"] <= row["median"] <= row["q95"]
    # the link keeps the mean in [floor, floor + (1 - floor) h]: most draws are possible
    # scores, and the priors spread them over the whole range
    assert (summary["valid"] > 0.7).all() and (summary["above_floor"] <= summary["valid"]).all()
    assert (summary["q05"] < summary["floor"] + 0.1).all() and (summary["q95"] > 0.9).all()


def test_prior_verdict_follows_the_priors(true_fit, checked):
    # sloth's priors saturate the link for a quarter to a third of the draws (a warning);
    # narrow priors on the logit scale put the draws near the link's midpoint (ok)
    assert checked.severity_of("prior_predictive") == "warning"
    tree = true_fit.idata_.copy()
    config = json.loads(tree.attrs["model_config"])
    config["priors"].update(intercept_scale=0.3, skill_slope_scale=0.3,
                            family_scale_scale=0.3, loading_scale=0.3)
    tree.attrs["model_config"] = json.dumps(config)
    narrow = tree.copy()
    narrow["prior_predictive"] = prior_predictive(tree, num_draws=DRAWS, seed=0)
    summary = prior_predictive_summary(narrow)
    assert (summary["at_floor"] + summary["at_ceiling"] < 0.05).all(), summary
    assert (summary["valid"] > 0.99).all(), summary
    assert (summary["at_floor"] < checked.prior["at_floor"]).all()


def test_predictive_draws_are_deterministic(true_fit, checked):
    again = check_predictive(true_fit, max_draws=DRAWS, prior=False, seed=0)
    np.testing.assert_array_equal(again.tree["posterior_predictive"]["scores"],
                                  checked.tree["posterior_predictive"]["scores"])
    other = check_predictive(true_fit, max_draws=DRAWS, prior=False, seed=1)
    assert not np.allclose(np.nan_to_num(other.tree["posterior_predictive"]["scores"]),
                           np.nan_to_num(checked.tree["posterior_predictive"]["scores"]))


def test_report_text_and_json(checked):
    text = checked.format()
    assert "Posterior predictive per benchmark (300 draws)" in text
    assert "Prior predictive per benchmark (300 draws)" in text
    data = checked.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["posterior_predictive"]["ARC"]["coverage90"] == pytest.approx(
        checked.posterior.loc["ARC", "coverage90"])
    assert {f["check"] for f in data["findings"]} == {"posterior_predictive",
                                                       "prior_predictive"}


def test_figures_one_panel_per_benchmark(checked):
    import matplotlib.pyplot as plt

    from sloth.plotting import plot_ppc, plot_ppc_pit

    benchmarks = list(checked.posterior.index)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        axes = plot_ppc(checked.tree)
    assert [ax.get_title() for ax in axes] == benchmarks
    assert all(len(ax.get_lines()) >= 2 for ax in axes)  # replicates and observed
    prior = plot_ppc(checked.tree, group="prior_predictive", benchmarks=["ARC", "GSM8K"])
    floor_lines = [line.get_xdata()[0] for line in prior[0].get_lines()
                   if line.get_linestyle() == ":"]
    assert floor_lines == [0.25, 1.0]
    pit = plot_ppc_pit(checked.tree, benchmarks=benchmarks[:2])
    assert len(pit) == 2
    with pytest.raises(ValueError, match="not in the fit"):
        plot_ppc(checked.tree, benchmarks=["NoSuchQA"])
    with pytest.raises(ValueError, match="with_predictive"):
        plot_ppc(checked.tree.drop_nodes("prior_predictive"),
                 group="prior_predictive")
    plt.close("all")


def test_cli_diagnose_predictive(true_fit, tmp_path, capsys):
    path = tmp_path / "fit.nc"
    true_fit.save(path)
    ppc, prior = tmp_path / "ppc.png", tmp_path / "prior.png"
    args = ["diagnose", str(path), "--ppc-figure", str(ppc), "--prior-figure", str(prior),
            "--predictive-draws", str(DRAWS)]
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert ppc.read_bytes()[:4] == b"\x89PNG" and prior.read_bytes()[:4] == b"\x89PNG"
    assert data["figures"] == {"ppc-figure": str(ppc), "prior-figure": str(prior)}
    table = data["predictive"]["posterior_predictive"]
    assert set(table) == set(true_fit.benchmarks_)
    assert all(0.8 <= row["coverage90"] <= 1.0 for row in table.values())
    assert data["predictive"]["settings"] == {"seed": 0, "posterior_draws": DRAWS,
                                              "prior_draws": DRAWS}
    # an existing figure is refused before any work, and replaced with --force
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["diagnose", str(path), "--prior-figure", str(prior), "--force",
                 "--predictive-draws", str(DRAWS), "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert f"Posterior predictive per benchmark ({DRAWS} draws)" in out and "coverage90" in out
    assert f"prior figure written to {prior}" in out


@pytest.mark.slow
def test_a_wrong_floor_is_flagged_in_a_refit(comparison_fits):
    # the true model's data refitted with GSM8K's floor registered at 0.3 (it is 0): the
    # model cannot place a mean below 0.3, and the check names GSM8K
    from sloth import SlothModel

    table = comparison_fits[0]
    j = list(table.benchmarks).index("GSM8K")
    assert np.nanmean(table.scores[:, j] < 0.3) > 0.2  # many scores below the wrong floor
    floors = np.asarray(table.floors, dtype=float).copy()
    floors[j] = 0.3
    wrong = SlothModel(2, num_chains=2, num_warmup=150, num_samples=150, seed=1,
                       progress_bar=False).fit(replace(table, floors=floors))
    report = check_predictive(wrong, max_draws=DRAWS, prior=False, seed=0)
    [finding] = report.by_check("posterior_predictive")
    assert finding.severity == "warning"
    assert "GSM8K" in finding.details["failed"], report.format()
