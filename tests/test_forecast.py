"""Forecasting families left out of the fit, from 0, 1 or 2 observed models."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sloth import SlothModel
from sloth.exceptions import DataValidationError
from sloth.forecast import (
    _cholesky,
    _log_conditional,
    _stacked,
    condition_efficiency,
    forecast,
    forecast_datatree,
)
from sloth.model.simulate import simulate_leaderboard

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
HELD_OUT = "fam03"


@pytest.fixture(scope="module")
def setup():
    table, truth = simulate_leaderboard(n_families=30, n_skills=2, seed=11, missing_fraction=0.15)
    keep = np.array([f != HELD_OUT for f in table.family])
    model = SlothModel(
        2, num_chains=2, num_warmup=300, num_samples=300, seed=5, progress_bar=False
    ).fit(table.subset(keep))
    frame = table.to_frame()
    return model, frame[frame["family"] == HELD_OUT].reset_index(drop=True), truth, keep


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
    alpha, ess = condition_efficiency(model, np.zeros((0, 3)), np.zeros((0, 2)), seed=1)
    p = _stacked(model)
    sigma = p["family_scale"][:, :, None] * p["family_corr"] * p["family_scale"][:, None, :]
    np.testing.assert_allclose(np.cov(alpha.T), sigma.mean(axis=0), atol=0.25)
    assert np.all(ess == 1)


def test_conditional_matches_brute_force_importance_sampling(setup):
    model, rows, _, _ = setup
    obs = rows.iloc[:1]
    x = model.posterior_.standardize(obs)
    scores = obs[list(model.benchmarks_)].to_numpy(dtype=float)
    alpha, ess = condition_efficiency(model, x, scores, seed=2)
    assert np.median(ess) > 0.3
    # brute force: many prior draws per posterior draw, weighted by the likelihood
    p = _stacked(model)
    n_draws, d = p["family_scale"].shape
    chol = np.linalg.cholesky(p["family_corr"]) * p["family_scale"][:, :, None]
    rows_, cols_ = np.nonzero(~np.isnan(scores))
    const = model.idata_["constant_data"]
    rng = np.random.default_rng(3)
    z = rng.standard_normal((n_draws, 4000, d))
    prior = np.einsum("sij,skj->ski", chol, z)
    base = np.einsum("kp,spd->skd", x, p["skill_slope"])

    def loglik(a, chol_s, base_s, lam, b, sig, df, shape, ceiling):
        # prior density cancels: subtract it from the conditional
        zz = jax.scipy.linalg.solve_triangular(chol_s, a, lower=True)
        return _log_conditional(
            a, chol_s, base_s, lam, b, sig, df, shape, ceiling, jnp.asarray(rows_),
            jnp.asarray(cols_),
            jnp.asarray(scores[rows_, cols_]), jnp.asarray(const["floors"].to_numpy()),
            jnp.asarray(const["inv_items"].to_numpy()),
        ) + 0.5 * jnp.sum(zz**2)

    inner = jax.vmap(loglik, in_axes=(0,) + (None,) * 8)
    logw = np.asarray(jax.jit(jax.vmap(inner))(
        jnp.asarray(prior), *(jnp.asarray(a) for a in (
            chol, base, p["loading"], p["intercept"], p["noise_scale"], p["noise_df"],
            p["link_shape"], p["link_ceiling"]))
    ), dtype=float)
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    brute_mean = np.einsum("sk,skd->d", w, prior) / n_draws
    assert np.all(np.abs(alpha.mean(axis=0) - brute_mean) < 0.1), (alpha.mean(0), brute_mean)
    brute_sd = np.sqrt(np.einsum("sk,skd->d", w, (prior - brute_mean) ** 2) / n_draws)
    np.testing.assert_allclose(alpha.std(axis=0), brute_sd, rtol=0.3)


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
    assert pred.shape[:2] == model.idata_["posterior"]["intercept"].shape[:2]
    means = pred.mean(("chain", "draw")).to_numpy().reshape(-1)
    np.testing.assert_allclose(means, table["mean"].to_numpy(), atol=1e-12)
    assert list(tree["predictions_constant_data"]["params"].to_numpy()) == list(
        candidates["params"])
    assert "posterior" in tree.children  # the fit's groups are kept


def test_cholesky_of_a_singular_float32_correlation_draw():
    # two skills perfectly correlated, as float32 draws near a ridge can be
    corr = np.array([[[1, 1, 0.2], [1, 1, 0.2], [0.2, 0.2, 1]], np.eye(3)], dtype=np.float32)
    chol = _cholesky(corr)
    assert np.all(np.isfinite(chol))
    np.testing.assert_allclose(chol @ np.swapaxes(chol, -1, -2), corr, atol=1e-6)
