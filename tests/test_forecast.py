"""Forecasting families left out of the fit, from 0, 1 or 2 observed models."""

import copy
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sloth import SlothModel
from sloth.conditioning import (
    KHAT_THRESHOLD,
    condition_family,
    effect_scales,
    new_family_log_likelihood,
    population_draws,
    population_factor,
)
from sloth.exceptions import DataValidationError, ExtrapolationWarning, ForecastError
from sloth.forecast import (
    MAX_DRAWS,
    forecast,
    forecast_datatree,
    forecast_samples,
    spread_draws,
)
from sloth.model import maths
from sloth.model.design import EXTRAPOLATION_COLUMNS
from sloth.model.simulate import simulate_leaderboard

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
HELD_OUT = "fam03"


@pytest.fixture(scope="module")
def setup():
    table, truth = simulate_leaderboard(n_families=30, n_skills=2, seed=11, missing_fraction=0.15)
    keep = np.array([f != HELD_OUT for f in table.family])
    model = SlothModel(
        2, num_chains=2, num_warmup=300, num_samples=300, max_samples=None, seed=5,
        progress_bar=False).fit(table.subset(keep))
    frame = table.to_frame()
    return model, frame[frame["family"] == HELD_OUT].reset_index(drop=True), truth, keep


def test_a_refits_draws_fill_the_forecasts_count():
    """A refit draws until its own chains have mixed, so it may hold more or fewer draws
    than the fit it stands in for: they are spread evenly over the forecast's rows."""
    draws = np.arange(12.0)[:, None] * np.ones((1, 3))
    assert spread_draws(draws, 12) is draws
    np.testing.assert_array_equal(spread_draws(draws, 4)[:, 0], [0, 4, 7, 11])
    more = spread_draws(draws, 30)[:, 0]
    assert len(more) == 30 and set(more) == set(range(12)) and np.all(np.diff(more) >= 0)


def _errors(model, rows, truth, keep, k):
    out = forecast(model, rows.iloc[k:], rows.iloc[:k] if k else None, kind="mean")
    shape = (len(rows) - k, len(model.benchmarks_))
    mean, lo, hi = (out[c].to_numpy().reshape(shape) for c in ("mean", "q05", "q95"))
    true = truth.mean_score[~keep][k:]
    return np.abs(mean - true).mean(), np.mean((true >= lo) & (true <= hi)), (hi - lo).mean()


def test_observed_models_sharpen_the_forecast(setup):
    model, rows, truth, keep = setup
    mae0, cov0, width0 = _errors(model, rows, truth, keep, 0)
    mae1, cov1, width1 = _errors(model, rows, truth, keep, 1)
    mae2, cov2, width2 = _errors(model, rows, truth, keep, 2)
    assert mae1 < mae0 / 3 and mae2 < 0.02
    assert width1 < width0 / 3 and width2 <= width1 * 1.2
    assert cov0 >= 0.85 and cov1 >= 0.75 and cov2 >= 0.75


def test_zero_observed_models_draw_from_the_population(setup):
    model, *_ = setup
    posterior = model.posterior_
    conditioned = condition_family(posterior, np.zeros((0, 3)), np.zeros((0, 2)), seed=1)
    p = posterior.draws(("family_scale", "family_corr"))
    sigma = p["family_scale"][:, :, None] * p["family_corr"] * p["family_scale"][:, None, :]
    np.testing.assert_allclose(np.cov(conditioned.efficiency.T), sigma.mean(axis=0), atol=0.25)
    assert conditioned.diagnostics.method == "population"
    assert np.isnan(conditioned.diagnostics.khat)
    np.testing.assert_array_equal(conditioned.draw_index, np.arange(posterior.n_draws))
    # the model says the effects are normal: v_j ~ Normal(0, tau_j^2), not the misfit's tails
    tau = effect_scales(posterior)
    spread = tau[0] > 0  # benchmarks whose effects the fit found
    assert spread.any()
    z = conditioned.effects[:, spread] / tau[:, spread]
    assert abs(np.std(z) - 1) < 0.05 and np.mean(np.abs(z) > 4) < 1e-3
    np.testing.assert_array_equal(conditioned.effects[:, ~spread], 0.0)


def test_conditioning_matches_brute_force_importance_sampling(setup):
    """The conditioned draws target the exact posterior predictive: a brute-force
    importance sampler (many prior draws of efficiency and effects per posterior draw,
    weighted by the likelihood and normalised over every pair, so that a posterior draw
    counts by its marginal likelihood) gives the same efficiency and forecasts."""
    model, rows, _, _ = setup
    posterior = model.posterior_
    obs = rows.iloc[:1]
    x = posterior.standardize(obs)
    scores = posterior.scores_of(obs)
    conditioned = condition_family(posterior, x, scores, seed=2)
    assert conditioned.diagnostics.method == "importance"
    assert conditioned.diagnostics.khat < KHAT_THRESHOLD
    assert 50 < conditioned.diagnostics.ess <= posterior.n_draws
    assert conditioned.diagnostics.within_draw_ess > 0.3

    rng = np.random.default_rng(3)
    chol = population_factor(posterior)
    tau = effect_scales(posterior)
    S, d = chol.shape[:2]
    J = tau.shape[1]
    K = 3000
    alpha = np.einsum("sij,skj->ski", chol, rng.standard_normal((S, K, d)))
    effects = tau[:, None, :] * rng.standard_normal((S, K, J))
    base = posterior.skills(x, efficiency=np.zeros((S, d)))[:, 0]  # (S, d)
    p = posterior.draws(("loading", "intercept", "noise_scale"))
    link = posterior.link_parameters()
    eta = (np.einsum("skd,sjd->skj", alpha + base[:, None, :], p["loading"])
           + p["intercept"][:, None, :] + effects)
    observed = ~np.isnan(scores[0])
    mean = maths.link_mean(eta, posterior.floors, *(link.get(k)[:, None, :] if k in link
                                                    else None for k in ("shape", "ceiling")))
    scale = maths.observation_scale(mean, p["noise_scale"][:, None, :], posterior.inv_items)
    df = posterior.noise_df()
    logp = np.asarray(maths.score_distribution(
        mean, scale, None if df is None else df[:, None, None]).log_prob(
        np.where(observed, scores[0], 0.5)[None, None, :]))
    logw = np.where(observed[None, None, :], logp, 0.0).sum(axis=-1)  # (S, K)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    brute_mean = np.einsum("sk,skd->d", w, alpha)
    brute_sd = np.sqrt(np.einsum("sk,skd->d", w, (alpha - brute_mean) ** 2))
    ours = conditioned.efficiency
    assert np.all(np.abs(ours.mean(axis=0) - brute_mean) < 0.2 * brute_sd + 0.05), (
        ours.mean(axis=0), brute_mean, brute_sd)
    np.testing.assert_allclose(ours.std(axis=0), brute_sd, rtol=0.3)
    # ... and so do the forecasts of the family's other models
    draws, records = forecast_samples(model, rows.iloc[1:], obs, kind="mean", seed=2)
    other = posterior.skills(posterior.standardize(rows.iloc[1:]),
                             efficiency=np.zeros((S, d)))
    eta_o = (np.einsum("snd,sjd->snj", other, p["loading"])[:, None]
             + np.einsum("skd,sjd->skj", alpha, p["loading"])[:, :, None]
             + p["intercept"][:, None, None, :] + effects[:, :, None, :])
    mean_o = maths.link_mean(eta_o, posterior.floors,
                             *(link.get(k)[:, None, None, :] if k in link else None
                               for k in ("shape", "ceiling")))
    brute_forecast = np.einsum("sk,sknj->nj", w, mean_o)
    width = np.quantile(draws, 0.95, axis=0) - np.quantile(draws, 0.05, axis=0)
    assert np.median(np.abs(draws.mean(axis=0) - brute_forecast) / width) < 0.1
    assert [r.family for r in records] == [HELD_OUT] and records[0].method == "importance"


def test_draws_count_by_their_likelihood_of_the_new_scores(setup):
    """A posterior draw's weight is its marginal likelihood ``p(y | theta_s)`` of the new
    family's scores, not its inverse: the resample favours the draws under which the
    scores are likely, in proportion outside the smoothed tail."""
    model, rows, _, _ = setup
    posterior = model.posterior_
    obs = rows.iloc[:2]
    x, scores = posterior.standardize(obs), posterior.scores_of(obs)
    # the same seed draws the same proposals: this is the log marginal the weights use
    log_lik = new_family_log_likelihood(posterior, x, scores, seed=4)
    assert log_lik.std() > 0.3  # the shared parameters matter to these scores
    conditioned = condition_family(posterior, x, scores, seed=4)
    counts = np.bincount(conditioned.draw_index, minlength=posterior.n_draws)
    weights = log_lik - log_lik.max()
    expected = np.exp(weights) / np.exp(weights).sum() * posterior.n_draws
    body = log_lik < np.quantile(log_lik, 0.8)  # below the tail that PSIS smooths
    # smoothing the tail changes the normalisation only
    scale = counts[body].sum() / expected[body].sum()
    assert 0.8 < scale < 1.25
    # systematic resampling: each count is its expected number rounded up or down
    assert np.all(np.abs(counts[body] - scale * expected[body]) < 1.5)
    assert log_lik[conditioned.draw_index].mean() > log_lik.mean() + 0.1 * log_lik.std()


def test_a_high_khat_refits_by_itself_or_raises_when_asked(setup, monkeypatch):
    """Weights whose k-hat exceeds the threshold are never used silently: the forecast
    refits with the observed models (and says so), or raises with on_high_khat="raise"."""
    import sloth.forecast as forecast_module

    model, rows, _, _ = setup
    monkeypatch.setattr(forecast_module, "KHAT_THRESHOLD", -1.0)  # every family "unreliable"
    with pytest.raises(ForecastError, match=r"k-hat.*method='refit'"):
        forecast(model, rows.iloc[1:], rows.iloc[:1], on_high_khat="raise")
    calls = []
    real = forecast_module.refit_with

    def counted(m, observed):
        calls.append(sorted(set(observed["family"])))
        return real(m, observed)

    monkeypatch.setattr(forecast_module, "refit_with", counted)
    out = forecast(model, rows.iloc[1:], rows.iloc[:1], kind="mean")
    assert calls == [[HELD_OUT]]
    [record] = out.attrs["conditioning"]
    assert record["method"] == "refit" and record["khat"] > -1.0
    assert np.isfinite(out[["mean", "q05", "q95"]].to_numpy()).all()
    with pytest.raises(ValueError, match="on_high_khat="):
        forecast(model, rows.iloc[1:], rows.iloc[:1], on_high_khat="ignore")


def test_forecast_rejects_fitted_families_and_missing_columns(setup):
    model, rows, _, _ = setup
    fitted = rows.copy()
    fitted["family"] = model.families_[0]
    with pytest.raises(DataValidationError, match="predict"):
        forecast(model, fitted)
    with pytest.raises(DataValidationError, match="tokens"):
        forecast(model, rows.drop(columns="tokens"))
    negative = rows.copy()
    negative.loc[0, "params"] = -7e9
    with pytest.raises(DataValidationError, match=r"positive finite count.*fam03-m0"):
        forecast(model, negative.iloc[1:], observed=negative.iloc[:1])


def test_a_posterior_with_nan_draws_is_named_not_forecast(setup):
    model, rows, _, _ = setup
    broken = copy.copy(model)
    broken.idata_ = model.idata_.copy(deep=True)
    loading = broken.idata_["posterior"]["loading"]
    loading[0, 3] = np.nan  # one draw of one chain
    with pytest.raises(DataValidationError, match=r"non-finite draws of \['loading'\].*refit"):
        forecast(broken, rows.iloc[1:], rows.iloc[:1])
    # the fitted model itself is untouched
    assert np.isfinite(model.idata_["posterior"]["loading"].to_numpy()).all()


def test_cli_forecast_matches_the_api_and_rejects_bad_input(setup, tmp_path, capsys):
    import json

    from sloth.cli.main import main

    model, rows, _, _ = setup
    posterior = tmp_path / "fit.nc"
    model.save(posterior)
    meta = ["model", "family", "params", "tokens"]
    rows.iloc[1:][meta].to_csv(tmp_path / "new.csv", index=False)
    rows.iloc[:1].to_csv(tmp_path / "observed.csv", index=False)
    code = main(["forecast", "--posterior", str(posterior), "--models", str(tmp_path / "new.csv"),
                 "--observed", str(tmp_path / "observed.csv"), "--json", "--seed", "4"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)["predictions"]
    api = forecast(SlothModel.load(posterior), rows.iloc[1:][meta], rows.iloc[:1], seed=4)
    np.testing.assert_allclose([r["mean"] for r in printed], api["mean"].to_numpy(), rtol=1e-6)
    assert len(printed) == 3 * len(model.benchmarks_)

    rows.iloc[1:][["model", "family", "params"]].to_csv(tmp_path / "bad.csv", index=False)
    code = main(["forecast", "--posterior", str(posterior), "--models", str(tmp_path / "bad.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "tokens" in err and "Traceback" not in err
    code = main(["forecast", "--posterior", str(tmp_path / "none.nc"), "--models",
                 str(tmp_path / "new.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "--posterior" in err and "no such file" in err


def test_refit_and_conditioning_agree(setup):
    """Conditioning per draw without refitting matches the exact refit with the observed
    model added: forecasts differ by much less than their interval widths."""
    model, rows, truth, keep = setup
    fast = forecast(model, rows.iloc[1:], rows.iloc[:1], kind="mean", seed=3)
    exact = forecast(model, rows.iloc[1:], rows.iloc[:1], kind="mean", seed=3, method="refit")
    width = (fast["q95"] - fast["q05"]).to_numpy()
    gap = np.abs(fast["mean"] - exact["mean"]).to_numpy()
    assert np.median(gap / width) < 0.15 and np.max(gap / width) < 0.5
    np.testing.assert_allclose(exact["q95"] - exact["q05"], width, rtol=0.5)
    true = truth.mean_score[~keep][1:].reshape(-1)
    assert abs(np.abs(fast["mean"] - true).mean() - np.abs(exact["mean"] - true).mean()) < 0.01
    with pytest.raises(ValueError, match="method="):
        forecast(model, rows.iloc[1:], rows.iloc[:1], method="exact")


def test_refit_refuses_bad_new_models_before_refitting(setup, monkeypatch):
    """A refit takes minutes: a table it cannot forecast is refused before it starts."""
    import sloth.forecast as forecast_module

    model, rows, _, _ = setup

    def no_refit(*args, **kwargs):
        raise AssertionError("refitted before checking the new models")

    monkeypatch.setattr(forecast_module, "refit_with", no_refit)
    with pytest.raises(DataValidationError, match="tokens"):
        forecast(model, rows.iloc[1:].drop(columns="tokens"), rows.iloc[:1], method="refit")
    with pytest.raises(DataValidationError, match="observed"):
        forecast(model, rows.iloc[1:], rows.iloc[:1].drop(columns="params"), method="refit")


def test_predictions_group_matches_the_table_and_fifty_candidates_are_fast(setup):
    """The DataTree holds the same forecasts as the table; 50 (N, D) candidates of a new
    family conditioned on one observed model take well under 5 s after a fit."""
    import time

    model, rows, _, _ = setup
    n_grid = np.geomspace(1e9, 7e10, 10)
    d_grid = np.geomspace(1e12, 1.5e13, 5)
    grid = [(n, d) for n in n_grid for d in d_grid]
    candidates = rows.iloc[:1].drop(columns=list(model.benchmarks_)).loc[[0] * 50]
    candidates = candidates.assign(model=[f"cand{i}" for i in range(50)],
                                   params=[g[0] for g in grid], tokens=[g[1] for g in grid])
    forecast(model, candidates.iloc[:2], rows.iloc[:1], kind="mean")  # compile once
    start = time.perf_counter()
    table = forecast(model, candidates, rows.iloc[:1], kind="mean", seed=4)
    assert time.perf_counter() - start < 5.0
    assert len(table) == 50 * len(model.benchmarks_)
    tree = forecast_datatree(model, candidates, rows.iloc[:1], kind="mean", seed=4)
    pred = tree["predictions"]["scores"]
    assert pred.dims == ("chain", "draw", "model", "benchmark")
    # the draws a forecast keeps: every k-th of each chain, at most MAX_DRAWS in all
    kept = model.posterior_.thinned(MAX_DRAWS).tree["posterior"]["intercept"]
    assert pred.shape[:2] == kept.shape[:2] and pred.shape[0] * pred.shape[1] <= MAX_DRAWS
    means = pred.mean(("chain", "draw")).to_numpy().reshape(-1)
    np.testing.assert_allclose(means, table["mean"].to_numpy(), atol=1e-12)
    assert list(tree["predictions_constant_data"]["params"].to_numpy()) == list(
        candidates["params"])
    assert "posterior" in tree.children  # the fit's groups are kept


def test_population_factor_of_a_singular_float32_correlation_draw(setup):
    # two skills perfectly correlated, as float32 draws near a ridge can be
    model, *_ = setup
    posterior = model.posterior_
    corr = np.array([[1, 1, 0.2], [1, 1, 0.2], [0.2, 0.2, 1]], dtype=np.float32)
    fake = copy.copy(posterior)
    fake.draws = lambda names: {"family_scale": np.ones((2, 3)),
                                "family_corr": np.stack([corr, np.eye(3, dtype=np.float32)])}
    chol = population_factor(fake)
    assert np.all(np.isfinite(chol))
    np.testing.assert_allclose(chol @ np.swapaxes(chol, -1, -2),
                               np.stack([corr, np.eye(3)]), atol=1e-6)
    alpha, _ = population_draws(fake, np.random.default_rng(0))
    assert np.isfinite(alpha).all()


def _far_and_near(model, rows):
    """A new-family model at 10 times the fit's largest size (its tokens those of a fitted
    model), and one at a fitted model's own (N, D), the fit's median covariate distance."""
    const = model.idata_["constant_data"]
    params, tokens = const["params"].to_numpy(), const["tokens"].to_numpy()
    distance = model.posterior_.design_range().distance(params, tokens)
    mid = int(np.argsort(distance)[len(distance) // 2])
    base = rows.iloc[:1].drop(columns=list(model.benchmarks_))
    far = base.assign(model="far", params=10 * params.max(), tokens=tokens[mid])
    near = base.assign(model="near", params=params[mid], tokens=tokens[mid])
    return far, near, params, tokens, mid


def _extrapolation_warnings(call):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = call()
    return out, [w for w in seen if issubclass(w.category, ExtrapolationWarning)]


def test_a_forecast_far_outside_the_data_warns_and_carries_the_figures(setup):
    model, rows, _, _ = setup
    far, near, params, tokens, mid = _far_and_near(model, rows)
    both = pd.concat([far, near], ignore_index=True)
    with pytest.warns(ExtrapolationWarning, match=r"1 of 2 models lie beyond the fitted data"
                      r".*far \(params 10x the fit's largest, "):
        out = forecast(model, both, rows.iloc[:1], kind="mean")
    J = len(model.benchmarks_)
    assert list(out.columns[-5:]) == list(EXTRAPOLATION_COLUMNS)
    first = out.groupby("model", sort=False).first()
    assert first.loc["far", "params_ratio"] == pytest.approx(10.0)
    compute = 6 * params * tokens
    assert first.loc["far", "compute_ratio"] == pytest.approx(
        6 * 10 * params.max() * tokens[mid] / compute.max())
    assert first.loc["far", "covariate_distance"] > out.attrs["extrapolation_range"][
        "max_distance"]
    assert bool(first.loc["far", "extrapolating"]) and not first.loc["near", "extrapolating"]
    assert (out.groupby("model").compute_ratio.nunique() == 1).all() and len(out) == 2 * J
    # the draws' entry point warns too; the predictions group keeps the figures
    with pytest.warns(ExtrapolationWarning, match="far"):
        forecast_samples(model, far, kind="mean")
    with pytest.warns(ExtrapolationWarning):
        tree = forecast_datatree(model, both, rows.iloc[:1], kind="mean")
    const = tree["predictions_constant_data"]
    for name in EXTRAPOLATION_COLUMNS:
        assert const[name].dims == ("model",)
        np.testing.assert_array_equal(const[name].to_numpy(), first[name].to_numpy())
    # and so does the fit's prediction of a fitted family at a far size
    fitted = model.table_.to_frame().iloc[:1].assign(model="fitted-far",
                                                     params=10 * params.max())
    with pytest.warns(ExtrapolationWarning, match="fitted-far"):
        predicted = model.predict(fitted, kind="mean")
    assert predicted["extrapolating"].all()


def test_a_forecast_inside_the_data_warns_nothing(setup):
    model, rows, _, _ = setup
    _, near, *_ = _far_and_near(model, rows)
    out, seen = _extrapolation_warnings(lambda: forecast(model, near, rows.iloc[:1]))
    assert seen == [] and not out["extrapolating"].any()
    np.testing.assert_array_equal(out[["params_ratio", "tokens_ratio", "compute_ratio"]], 1.0)
    _, seen = _extrapolation_warnings(lambda: forecast_datatree(model, near, kind="mean"))
    assert seen == []
    # the fitted models themselves lie inside their own data
    predicted, seen = _extrapolation_warnings(lambda: model.predict(model.table_, kind="mean"))
    assert seen == [] and not predicted["extrapolating"].any()


def test_the_predictions_group_with_its_figures_round_trips_a_file(setup, tmp_path):
    from sloth.posterior.fileformat import read_posterior, write_posterior

    model, rows, _, _ = setup
    far, near, *_ = _far_and_near(model, rows)
    with pytest.warns(ExtrapolationWarning):
        tree = forecast_datatree(model, pd.concat([far, near], ignore_index=True), kind="mean")
    write_posterior(tree, tmp_path / "forecast.nc")
    back = read_posterior(tmp_path / "forecast.nc", derived=False)
    for group in ("predictions", "predictions_constant_data"):
        xr.testing.assert_identical(back[group].to_dataset(), tree[group].to_dataset())
    assert json.loads(back["predictions_constant_data"].attrs["extrapolation_range"])[
        "range_fold_limit"] == 3.0


def test_cli_forecast_reports_extrapolation_on_one_line(setup, tmp_path, capsys):
    from sloth.cli.main import main

    model, rows, _, _ = setup
    far, near, *_ = _far_and_near(model, rows)
    posterior = tmp_path / "fit.nc"
    model.save(posterior)
    pd.concat([far, near], ignore_index=True).to_csv(tmp_path / "new.csv", index=False)
    args = ["forecast", "--posterior", str(posterior), "--models", str(tmp_path / "new.csv")]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    [line] = [x for x in out if x.startswith("warning: ")]
    assert "1 of 2 models lie beyond the fitted data" in line
    assert any(x.startswith("far (") and "beyond the fitted data: params 10x" in x
               for x in out)
    assert "near (fam03)" in out
    assert main([*args, "--json"]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    [warned] = [x for x in captured.err.splitlines() if x.startswith("sloth: warning: ")]
    assert "far (params 10x" in warned
    extrapolating = {r["model"]: r["extrapolating"] for r in printed["predictions"]}
    assert extrapolating == {"far": True, "near": False}
    assert printed["extrapolation_range"]["range_fold_limit"] == 3.0


def test_a_tail_of_equal_weights_counts_as_unusable_not_as_an_error():
    """A few equally likely draws carrying all the weight (arviz_stats' PSIS refuses a tail
    of equal values): k-hat is infinite, so the forecast refits or raises as above 0.7,
    instead of the sweep stopping on a ValueError."""
    from types import SimpleNamespace

    import xarray as xr

    from sloth.conditioning import _smoothed_log_weights

    chains, draws = 2, 500
    tree = {"posterior": xr.Dataset(coords={"chain": np.arange(chains),
                                            "draw": np.arange(draws)})}
    log_marginal = np.full(chains * draws, -40.0)
    log_marginal[:200] = 0.0  # the largest fifth and more, all equal
    log_weights, khat = _smoothed_log_weights(log_marginal, SimpleNamespace(tree=tree))
    assert khat == np.inf and khat > KHAT_THRESHOLD
    weights = np.exp(log_weights)
    assert weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(weights[:200], 1 / 200, rtol=1e-6)
