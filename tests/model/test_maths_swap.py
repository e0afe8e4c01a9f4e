"""The model's maths is stated once: swapping the link in ``sloth.model.maths`` reaches the
fit, its posterior, predictions, forecasts and the anchor heuristic.

The logistic link is replaced by a probit curve (``link_mean`` and ``link_slope`` patched in
the module); a tiny model is fitted under it, and every output is checked against the probit
link computed here from the posterior's parameters (and shown to differ from the logistic).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

from sloth import SlothModel
from sloth.forecast import forecast_draws
from sloth.inference import benchmark_information
from sloth.model import maths
from sloth.model.design import build_arrays
from sloth.model.simulate import simulate_leaderboard

HELD_OUT = "fam03"


def _erf(x):
    return scipy.special.erf(x) if isinstance(x, np.ndarray) else jax.scipy.special.erf(x)


def probit_mean(eta, floors, shape=None, ceiling=None):
    """``c + (1 - c) Phi(eta)``, NumPy and JAX alike (the tiny fit below is logistic-only:
    ``shape`` and ``ceiling`` stay unused)."""
    return floors + (1.0 - floors) * 0.5 * (1.0 + _erf(eta / np.sqrt(2.0)))


def probit_slope(eta, floors, shape=None, ceiling=None):
    xp = np if isinstance(eta, np.ndarray) else jnp
    return (1.0 - floors) * xp.exp(-0.5 * eta**2) / np.sqrt(2.0 * np.pi)


def _inverse(mean, floors, link):
    """The linear predictor of mean scores under the probit or logistic link."""
    u = (mean - floors) / (1.0 - floors)
    return scipy.special.ndtri(u) if link == "probit" else scipy.special.logit(u)


@pytest.fixture(scope="module")
def swapped():
    table, truth = simulate_leaderboard(n_families=10, n_benchmarks=5, n_skills=1,
                                        models_per_family=(3, 5), seed=3)
    keep = np.array([f != HELD_OUT for f in table.family])
    frame = table.to_frame()
    held = frame[frame["family"] == HELD_OUT].reset_index(drop=True)
    inside = frame[frame["family"] != HELD_OUT].iloc[:8].reset_index(drop=True)
    patch = pytest.MonkeyPatch()
    patch.setattr(maths, "link_mean", probit_mean)
    patch.setattr(maths, "link_slope", probit_slope)
    # the fit traces its own programs (a ProgramCache of its own), so they follow the swap
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a short chain's convergence warnings
            model = SlothModel(1, family_benchmark_effects=False, num_chains=1,
                               num_warmup=100, num_samples=100, map_starts=1, seed=0,
                               progress_bar=False).fit(table.subset(keep))
        out = {
            "model": model, "inside": inside, "held": held,
            "predict": model.predict(inside, kind="mean"),
            # zero-shot: each forecast row is its posterior draw (a conditioned forecast
            # resamples the draws by their weights)
            "forecast": forecast_draws(model, held.iloc[1:], None, kind="mean", seed=1),
            "information": benchmark_information(
                {"skill_slope": truth.skill_slope, "family_offset": truth.family_efficiency,
                 "loading_free": truth.loading, "intercept": truth.intercept,
                 "noise_scale": truth.noise_scale},
                build_arrays(table, truth.scaler, truth.inv_items)),
        }
    finally:
        patch.undo()
    out["information_logistic"] = benchmark_information(
        {"skill_slope": truth.skill_slope, "family_offset": truth.family_efficiency,
         "loading_free": truth.loading, "intercept": truth.intercept,
         "noise_scale": truth.noise_scale},
        build_arrays(table, truth.scaler, truth.inv_items))
    return out


def _eta(model, skills):
    p = model.posterior_.draws(("loading", "intercept"))
    return np.einsum("snd,sjd->snj", skills, p["loading"]) + p["intercept"][:, None, :]


def test_the_fit_uses_the_swapped_link(swapped):
    model = swapped["model"]
    post = model.idata_["posterior"]
    skills = post["skills"].to_numpy()[0]  # one chain: (S, n, d)
    eta = _eta(model, skills)
    floors = model.posterior_.floors
    probit = 0.5 * (1.0 + scipy.special.erf(eta / np.sqrt(2.0)))
    expected = floors + (1.0 - floors) * probit
    # the posterior's fitted means follow the probit link, not the logistic one
    np.testing.assert_allclose(post["mean_score"].to_numpy()[0], expected, atol=1e-5)
    logistic = floors + (1.0 - floors) * scipy.special.expit(eta)
    assert np.abs(logistic - expected).max() > 0.02
    # the likelihood the sampler used (the NumPyro model's pointwise log-likelihood) too
    loglik = model.idata_["log_likelihood"]
    rows = [model.models_.index(m) for m in loglik["observation_model"].to_numpy()]
    cols = [model.benchmarks_.index(b) for b in loglik["observation_benchmark"].to_numpy()]
    mean = expected[:, rows, cols]
    scale = maths.observation_scale(mean, post["noise_scale"].to_numpy()[0][:, cols],
                                    model.posterior_.inv_items[cols])
    y = model.table_.scores[rows, cols]
    nu = post["noise_df"].to_numpy()[0][:, None]
    np.testing.assert_allclose(loglik["scores"].to_numpy()[0],
                               scipy.stats.t.logpdf(y, nu, mean, scale), rtol=1e-3, atol=1e-3)


def test_predict_uses_the_swapped_link(swapped):
    model, inside = swapped["model"], swapped["inside"]
    posterior = model.posterior_
    skills = posterior.skills(posterior.standardize(inside), posterior.family_index(inside))
    eta = _eta(model, skills)
    expected = posterior.floors + (1.0 - posterior.floors) * 0.5 * (
        1.0 + scipy.special.erf(eta / np.sqrt(2.0)))
    got = swapped["predict"]["mean"].to_numpy().reshape(len(inside), -1)
    np.testing.assert_allclose(got, expected.mean(axis=0), atol=1e-6)


def test_forecast_uses_the_swapped_link(swapped):
    # per draw, the forecast means of a model invert (through the probit link) to linear
    # predictors eta_j = Lambda_j theta + b_j of one skill theta: the anchor's gives theta
    model = swapped["model"]
    posterior = model.posterior_
    p = posterior.draws(("loading", "intercept"))
    anchor = model.benchmarks_.index(model.anchors_[0])
    draws = swapped["forecast"]  # (S, n, J)
    inner = (draws - posterior.floors) / (1.0 - posterior.floors)
    usable = ((inner > 1e-3) & (inner < 1 - 1e-3)).all(axis=-1)
    assert usable.sum() >= 50
    misfit = {}
    for link in ("probit", "logistic"):
        eta = _inverse(draws, posterior.floors, link)
        theta = eta[..., anchor] - p["intercept"][:, None, anchor]
        fitted = theta[..., None] * p["loading"][:, None, :, 0] + p["intercept"][:, None, :]
        misfit[link] = np.abs(eta - fitted)[usable].max()
    assert misfit["probit"] < 1e-3
    assert misfit["logistic"] > 0.05


def test_the_anchor_heuristic_uses_the_swapped_link(swapped):
    assert not np.allclose(swapped["information"], swapped["information_logistic"], rtol=0.05)
