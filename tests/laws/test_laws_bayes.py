"""Bayesian fits with NUTS: recovery, diagnostics, agreement with the bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from sloth.laws import CHINCHILLA, TWO_SKILLS, compute_optimal, fit_law_bayes, law_model
from sloth.laws.simulate import chinchilla_theta


@pytest.fixture(scope="module")
def bayes_fit(two_skill_runs, two_skill_fits):
    runs = two_skill_runs[two_skill_runs["skill"] == "knowledge"].drop(columns="skill")
    return fit_law_bayes(runs, "chinchilla", num_warmup=250, num_samples=250, num_chains=2,
                         seed=0, init_fit=two_skill_fits["knowledge"])


def test_nuts_converges_and_covers_truth(bayes_fit):
    diag = bayes_fit.diagnostics
    assert diag["max_rhat"] < 1.05 and diag["min_ess"] > 50, diag
    assert diag["divergences"] == 0
    assert bayes_fit.draws.shape == (500, 5)
    table = bayes_fit.param_table()
    truth = TWO_SKILLS["knowledge"]
    inside = [table.loc[k, "lower"] <= v <= table.loc[k, "upper"] for k, v in truth.items()]
    assert sum(inside) >= 4, table
    assert bayes_fit.method == "nuts" and bayes_fit.draw_kind == "posterior"


def test_posterior_and_bootstrap_intervals_overlap(bayes_fit, two_skill_fits):
    boot = two_skill_fits["knowledge"].param_table()
    post = bayes_fit.param_table()
    for name in boot.index:
        assert post.loc[name, "lower"] <= boot.loc[name, "upper"]
        assert boot.loc[name, "lower"] <= post.loc[name, "upper"]
    a = compute_optimal(bayes_fit, 1e21).iloc[0]
    b = compute_optimal(two_skill_fits["knowledge"], 1e21).iloc[0]
    assert a["N_opt_lower"] <= b["N_opt_upper"] and b["N_opt_lower"] <= a["N_opt_upper"]


def test_law_model_prior_predictive():
    import jax
    from numpyro.infer import Predictive

    x_n, x_d = CHINCHILLA.inputs(np.array([1e8, 1e9]), np.array([1e9, 1e10]))
    pred = Predictive(law_model, num_samples=50)(jax.random.PRNGKey(0), x_n, x_d,
                                                 form=CHINCHILLA)
    assert pred["obs"].shape == (50, 2)
    assert pred["theta"].shape == (50, 5)
    assert np.all(np.asarray(pred["theta"])[:, 3] >= 0)         # alpha ~ HalfNormal


def test_truth_is_plausible_under_posterior_predictive(bayes_fit, two_skill_runs):
    runs = two_skill_runs[two_skill_runs["skill"] == "knowledge"]
    pred = bayes_fit.predict(runs["N"], runs["D"], draws=True)
    lo, hi = np.quantile(pred, [0.005, 0.995], axis=0)
    truth = CHINCHILLA.predict(chinchilla_theta(TWO_SKILLS["knowledge"]), runs["N"], runs["D"])
    assert np.mean((lo <= truth) & (truth <= hi)) > 0.8
