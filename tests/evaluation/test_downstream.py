"""Downstream prediction from posterior skills, on a simulated leaderboard with known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sloth.estimator import SlothModel
from sloth.evaluation.downstream import (
    DOWNSTREAM_METHODS,
    DownstreamPredictor,
    SkillMap,
    evaluate_downstream,
    posterior_skills,
    thin_draws,
)
from sloth.exceptions import DataValidationError, NotFittedError
from sloth.model.simulate import simulate_leaderboard

W_TRUE = np.array([1.5, -0.8])
B_TRUE = -0.5


@pytest.fixture(scope="module")
def simulated():
    table, truth = simulate_leaderboard(
        n_families=12, models_per_family=(3, 5), n_benchmarks=6, n_skills=2,
        missing_fraction=0.05, seed=7,
    )
    rng = np.random.default_rng(0)
    mean = 1 / (1 + np.exp(-(truth.skills @ W_TRUE + B_TRUE)))
    frame = table.to_frame()[["model", "family", "params", "tokens"]]
    frame["Downstream"] = np.clip(mean + 0.01 * rng.standard_normal(len(mean)), 0, 1)
    return table, truth, frame


@pytest.fixture(scope="module")
def fitted(simulated):
    table, _, _ = simulated
    model = SlothModel(2, num_chains=2, num_warmup=150, num_samples=150, map_starts=1,
                       seed=1, progress_bar=False)
    return model.fit(table)


def _toy(n: int = 60, d: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = 0.25 + 0.75 / (1 + np.exp(-(x @ W_TRUE[:d] + B_TRUE)))
    return x, np.clip(y + 0.005 * rng.standard_normal(n), 0, 1)


# ------------------------------------------------------------------------------- SkillMap
def test_skill_map_recovers_weights_per_draw():
    x, y = _toy()
    draws = np.stack([x, x * 2.0])  # the second draw's skills are twice as large
    smap = SkillMap(0.25, n_items=None).fit(draws, y)
    np.testing.assert_allclose(smap.weights_[0], W_TRUE, atol=0.1)
    np.testing.assert_allclose(smap.weights_[1], W_TRUE / 2, atol=0.05)
    np.testing.assert_allclose(smap.bias_, B_TRUE, atol=0.1)
    assert smap.converged_.all()
    np.testing.assert_allclose(smap.noise_scale_, 0.005, atol=0.002)
    mean = smap.predict_draws(draws, kind="mean")
    assert mean.shape == (2, 60)
    assert np.abs(mean - y).max() < 0.03
    score = smap.predict_draws(draws, seed=3)
    np.testing.assert_array_equal(score, smap.predict_draws(draws, seed=3))
    assert ((score >= 0) & (score <= 1)).all()


def test_skill_map_rejects_bad_input():
    x, y = _toy()
    with pytest.raises(ValueError, match=r"features must be shaped \(S, n, d\)"):
        SkillMap().fit(x[:10], y)
    with pytest.raises(DataValidationError, match=r"fractions in \[0, 1\].*1/100"):
        SkillMap().fit(x, y * 100)
    with pytest.raises(DataValidationError, match="give at least 4 models"):
        SkillMap().fit(x[:3], y[:3])
    with pytest.raises(NotFittedError, match="call fit"):
        SkillMap().predict_draws(x)
    with pytest.raises(ValueError, match=r"features must be shaped \(1, m, 2\)"):
        SkillMap().fit(x, y).predict_draws(x[:, :1])


def test_thin_draws_is_even_and_bounded():
    np.testing.assert_array_equal(thin_draws(10, None), np.arange(10))
    np.testing.assert_array_equal(thin_draws(10, 3), [0, 4, 9])
    with pytest.raises(ValueError, match="max_draws=0"):
        thin_draws(10, 0)


# ------------------------------------------------------------------------ posterior skills
def test_posterior_skills_match_the_fit_and_extend_to_new_models(fitted, simulated):
    table, _, frame = simulated
    post = fitted.idata_["posterior"]["skills"].to_numpy()
    n_draws = post.shape[0] * post.shape[1]  # 2 x 150, or more when drawn on until mixed
    skills = posterior_skills(fitted)
    assert skills.shape == (n_draws, table.n_models, 2)
    np.testing.assert_allclose(skills, post.reshape(n_draws, table.n_models, 2))
    thinned = posterior_skills(fitted, frame.iloc[:5], max_draws=50)
    np.testing.assert_allclose(thinned, skills[thin_draws(n_draws, 50)][:, :5])
    new = pd.DataFrame({"model": ["big", "alien"], "family": [table.family[0], "alien"],
                        "params": [1e11, 1e11], "tokens": [1e13, 1e13]})
    out = posterior_skills(fitted, new, seed=2)
    assert out.shape == (n_draws, 2, 2) and np.isfinite(out).all()
    # a family without observed models is drawn from the population: wider
    assert out[:, 1].std(axis=0).min() > out[:, 0].std(axis=0).max()
    np.testing.assert_array_equal(out, posterior_skills(fitted, new, seed=2))


# ------------------------------------------------------------------- downstream prediction
def test_downstream_predictor_predicts_held_out_families(fitted, simulated):
    table, _, frame = simulated
    test = frame["family"].isin(table.families[:3]).to_numpy()
    pred = DownstreamPredictor(fitted, "Downstream", max_draws=200).fit(
        frame[~test]).predict(frame[test])
    bounds = ["q025", "q05", "q10", "q25", "q75", "q90", "q95", "q975"]
    assert list(pred.columns) == ["model", "family", "benchmark", "mean", "median",
                                  "q25", "q75", "q10", "q90", "q05", "q95", "q025", "q975"]
    assert (pred["benchmark"] == "Downstream").all() and len(pred) == test.sum()
    err = np.abs(pred["mean"].to_numpy() - frame.loc[test, "Downstream"].to_numpy())
    assert err.mean() < 0.06
    ordered = pred[[*bounds[:4], "median", *bounds[4:]]].to_numpy()
    assert (np.diff(ordered, axis=1) >= 0).all()  # nested intervals around the median


def test_evaluate_downstream_beats_flops_baseline(fitted, simulated):
    _, _, frame = simulated
    result = evaluate_downstream(fitted, frame, benchmark="Downstream", max_draws=200)
    summary = result.summary.set_index("method")
    assert list(summary.index) == list(DOWNSTREAM_METHODS)
    assert (summary["n_families"] == 12).all()
    assert (summary["n_models"] == len(frame)).all()
    assert summary.loc["sloth_skills", "mae"] < 0.06
    assert summary.loc["sloth_skills", "mae"] < 0.7 * summary.loc[
        "flops_sigmoid_family_intercept", "mae"]
    assert 0.6 <= summary.loc["sloth_skills", "coverage90"] <= 1.0
    levels = summary[["coverage50", "coverage80", "coverage90", "coverage95"]].to_numpy()
    assert (np.diff(levels, axis=1) >= 0).all()  # every method, every level measured
    assert 0.3 <= summary.loc["sloth_skills", "coverage50"] <= 0.8
    assert result.skipped == []
    preds = result.predictions
    assert set(preds.columns) >= {"method", "held_out", "model", "observed", "mean", "q05",
                                  "q95"}


def test_downstream_errors_name_the_input_and_the_fix(fitted, simulated):
    table, _, frame = simulated
    with pytest.raises(NotFittedError, match="call fit"):
        DownstreamPredictor(fitted, "Downstream").predict(frame)
    with pytest.raises(DataValidationError, match="lacks the downstream score column 'Code'"):
        DownstreamPredictor(fitted, "Code").fit(frame)
    with pytest.raises(DataValidationError, match=r"data: required column\(s\) 'params' not found"):
        DownstreamPredictor(fitted, "Downstream").fit(frame.drop(columns="params"))
    used = table.benchmarks[0]
    frame_used = frame.assign(**{used: 0.5})
    with pytest.raises(DataValidationError, match="used to fit the skill model"):
        evaluate_downstream(fitted, frame_used, benchmark=used)
    with pytest.raises(ValueError, match=r"methods \['magic'\] are unknown"):
        evaluate_downstream(fitted, frame, benchmark="Downstream", methods=["magic"])
    with pytest.raises(DataValidationError, match=r"families \['nope'\]"):
        evaluate_downstream(fitted, frame, benchmark="Downstream", families=["nope"])


def test_normal_summary_matches_draws_of_the_clipped_normal():
    """The baselines' interval bounds (analytic) and sloth's (from draws) describe the same
    predictive: the clipped normal's quantiles from 200,000 draws agree with the analytic ones."""
    from sloth.evaluation.downstream import _normal_summary, _summarize_draws

    mean, scale = np.array([0.02, 0.5, 0.9]), np.array([0.05, 0.1, 0.2])
    draws = np.clip(mean + scale * np.random.default_rng(0).standard_normal((200_000, 3)),
                    0.0, 1.0)
    analytic, sampled = _normal_summary(mean, scale), _summarize_draws(draws)
    assert set(analytic) == set(sampled)
    for name in analytic:
        if name != "mean":  # the mean of a clipped normal is not the unclipped mean
            np.testing.assert_allclose(analytic[name], sampled[name], atol=4e-3, err_msg=name)
