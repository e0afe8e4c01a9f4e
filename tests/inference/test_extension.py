"""Sampling until mixed: the final NUTS run draws on, in blocks, while the chains have not
mixed (:class:`sloth.inference.ExtensionRule`), up to ``max_samples`` draws per chain."""

from __future__ import annotations

import numpy as np
import pytest

from sloth import SlothModel
from sloth.inference import ExtensionRule, SamplerSettings, fit_posterior
from sloth.model import ModelStructure, default_priors
from sloth.model.design import build_arrays
from sloth.model.simulate import simulate_leaderboard

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

RULE = ExtensionRule(max_draws=1000, rhat_target=1.01, ess_per_chain_target=100.0)


def test_rule_tells_mixed_from_unmixed_chains():
    rng = np.random.default_rng(0)
    iid = rng.normal(size=(4, 500, 3))
    ok, rhat, ess = RULE.mixed(iid)
    assert ok and rhat < 1.01 and ess > 400
    shifted = iid + np.array([0.0, 0.0, 0.0, 1.0])[:, None, None]  # one chain elsewhere
    ok, rhat, _ = RULE.mixed(shifted)
    assert not ok and rhat > 1.05
    sticky = np.empty((4, 500, 1))  # AR(1), phi 0.98: mixed in R-hat terms, few effective draws
    sticky[:, 0] = rng.normal(size=(4, 1))
    for t in range(1, 500):
        sticky[:, t] = 0.98 * sticky[:, t - 1] + 0.2 * rng.normal(size=(4, 1))
    ok, _, ess = RULE.mixed(sticky)
    assert not ok and ess < 400


def test_rule_judges_the_monitored_quantities_too():
    rng = np.random.default_rng(1)
    iid = rng.normal(size=(2, 400, 2))
    # the parameters mix, their difference does not (a slow direction the axes hide)
    slow = np.repeat(rng.normal(size=(2, 8, 1)), 50, axis=1)
    rule = ExtensionRule(1000, 1.01, 100.0, monitor=lambda u: slow)
    assert RULE.mixed(iid)[0]
    assert not rule.mixed(iid)[0]


@pytest.fixture(scope="module")
def problem():
    table, truth = simulate_leaderboard(n_families=10, n_skills=1, n_benchmarks=5, seed=3)
    arrays = build_arrays(table, truth.scaler, truth.inv_items)
    structure = ModelStructure(
        n_families=len(table.families), n_benchmarks=5, n_covariates=arrays.covariates.shape[1],
        n_skills=1, anchors=None, priors=default_priors())
    return arrays, structure


def _fit(problem, **sampler):
    arrays, structure = problem
    settings = SamplerSettings(num_chains=2, num_warmup=40, num_samples=50, max_tree_depth=5,
                               pilot=20, progress_bar=False, **sampler)
    return fit_posterior(arrays, structure, anchors=(0,), sampler=settings, seed=5)


def test_unmixed_chains_draw_on_and_continue_the_same_chains(problem):
    exact = _fit(problem)
    never_mixed = _fit(problem, max_samples=120, ess_per_chain_target=1e9)
    mixed_at_once = _fit(problem, max_samples=120, rhat_target=10.0, ess_per_chain_target=0.0)
    assert exact.samples["loading"].shape[1] == 50
    assert mixed_at_once.samples["loading"].shape[1] == 50  # mixed: no more draws
    assert never_mixed.samples["loading"].shape[1] == 120  # drawn on up to the cap
    for name, values in never_mixed.samples.items():
        assert values.shape[:2] == (2, 120), name
        # the first 50 draws are those of the fit that stopped there: the same chains go on
        np.testing.assert_array_equal(values[:, :50], exact.samples[name], err_msg=name)
    for name, values in never_mixed.sample_stats.items():
        assert values.shape[:2] == (2, 120), name


def test_estimator_resolves_max_samples():
    table, _ = simulate_leaderboard(n_families=8, n_skills=1, n_benchmarks=5, seed=4)
    fast = dict(num_chains=2, num_warmup=30, num_samples=20, max_tree_depth=4, map_starts=1,
                progress_bar=False)
    short = SlothModel(1, max_samples=None, **fast).fit(table)
    assert short.idata_["posterior"].sizes["draw"] == 20
    capped = SlothModel(1, max_samples=30, **fast).fit(table)
    assert 20 <= capped.idata_["posterior"].sizes["draw"] <= 30
    assert SlothModel(num_samples=250)._draw_cap() == 1000  # "auto": four times num_samples
    with pytest.raises(ValueError, match="max_samples=10: allowed values are 'auto'"):
        SlothModel(1, max_samples=10, **fast).fit(table)
