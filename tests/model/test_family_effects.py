"""Family-by-benchmark effects: block likelihood, conditionals, estimation and forecasts."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from scipy import stats

from sloth import SlothModel
from sloth.forecast import forecast_draws
from sloth.model import link_mean, link_slope
from sloth.model.family_effects import (
    block_sums,
    conditional_effects,
    effect_log_likelihood,
    estimate_effect_scales,
)
from sloth.model.simulate import simulate_leaderboard
from sloth.posterior.fileformat import write_posterior

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.parametrize("shape,ceiling", [(None, None), (2.5, None), (0.4, 0.8), (1.0, 0.6)])
def test_link_slope_is_the_derivative_of_the_link(shape, ceiling):
    eta = np.linspace(-6, 6, 41)
    floors = 0.25
    h = 1e-5
    numeric = (link_mean(eta + h, floors, shape, ceiling)
               - link_mean(eta - h, floors, shape, ceiling)) / (2 * h)
    np.testing.assert_allclose(link_slope(eta, floors, shape, ceiling), numeric, rtol=1e-6,
                               atol=1e-9)
    # the JAX path agrees with jax.grad of the link
    grad = jax.vmap(jax.grad(lambda e: link_mean(
        e, floors, None if shape is None else jnp.float32(shape),
        None if ceiling is None else jnp.float32(ceiling))))(jnp.asarray(eta, jnp.float32))
    got = link_slope(jnp.asarray(eta, jnp.float32), floors,
                     None if shape is None else jnp.float32(shape),
                     None if ceiling is None else jnp.float32(ceiling))
    np.testing.assert_allclose(np.asarray(got), np.asarray(grad), rtol=1e-4, atol=1e-7)


def test_block_likelihood_matches_the_multivariate_normal():
    rng = np.random.default_rng(0)
    sizes = [1, 3, 5]
    block = np.repeat(np.arange(3), sizes)
    resid, var = rng.normal(0, 0.05, block.size), rng.uniform(1e-4, 4e-3, block.size)
    slope = rng.uniform(0.02, 0.25, block.size)
    a, b = block_sums(resid, var, slope, block, 3)
    taus = np.array([0.0, 0.3, 1.7])
    got = effect_log_likelihood(a, b, taus)
    for tau, value in zip(taus, got, strict=True):
        expected = 0.0
        for k in range(3):
            r, v, g = resid[block == k], var[block == k], slope[block == k]
            full = stats.multivariate_normal(np.zeros(r.size), np.diag(v) + tau**2 * np.outer(g, g))
            expected += full.logpdf(r) - stats.multivariate_normal(np.zeros(r.size),
                                                                   np.diag(v)).logpdf(r)
        assert value == pytest.approx(expected, abs=1e-8)


def test_conditional_effects_match_gaussian_conditioning():
    rng = np.random.default_rng(1)
    k, J, S = 3, 2, 200_000
    resid = rng.normal(0, 0.05, (k, J))
    resid[1, 0] = np.nan  # a missing score
    var = rng.uniform(1e-4, 2e-3, (k, J))
    slope = rng.uniform(0.05, 0.25, (k, J))
    tau = np.array([0.5, 1.2])
    draws = conditional_effects(
        np.broadcast_to(resid, (S, k, J)), np.broadcast_to(var, (S, k, J)),
        np.broadcast_to(slope, (S, k, J)), tau, None, np.random.default_rng(2))
    for j in range(J):
        seen = ~np.isnan(resid[:, j])
        r, v, g = resid[seen, j], var[seen, j], slope[seen, j]
        cov_y = np.diag(v) + tau[j] ** 2 * np.outer(g, g)
        cov_vy = tau[j] ** 2 * g
        mean = cov_vy @ np.linalg.solve(cov_y, r)
        variance = tau[j] ** 2 - cov_vy @ np.linalg.solve(cov_y, cov_vy)
        assert draws[:, j].mean() == pytest.approx(mean, abs=4 * np.sqrt(variance / S))
        assert draws[:, j].var() == pytest.approx(variance, rel=0.02)


def test_without_observed_models_effects_come_from_the_population():
    S = 100_000
    empty = np.zeros((S, 0, 2))
    draws = conditional_effects(empty, empty, empty, np.array([0.0, 0.7]), None,
                                np.random.default_rng(3))
    assert np.all(draws[:, 0] == 0)
    assert draws[:, 1].std() == pytest.approx(0.7, rel=0.02)
    # Student-t noise: nothing observed leaves df degrees of freedom, the population scale
    t_draws = conditional_effects(empty, empty, empty, np.array([0.7, 0.7]),
                                  np.full(S, 5.0), np.random.default_rng(4))
    assert t_draws.std() == pytest.approx(0.7 * np.sqrt(5 / 3), rel=0.05)


def test_effect_scales_are_recovered_from_simulated_blocks():
    rng = np.random.default_rng(5)
    true = np.array([0.0, 0.3, 0.8, 1.5])
    F, per = 300, 4
    family = np.repeat(np.arange(F), per * len(true))
    benchmark = np.tile(np.repeat(np.arange(len(true)), per), F)
    slope = rng.uniform(0.1, 0.25, family.size)
    var = np.full(family.size, 0.01**2)
    effect = rng.normal(size=(F, len(true))) * true
    resid = slope * effect[family, benchmark] + rng.normal(0, 0.01, family.size)
    tau = estimate_effect_scales(resid, var, slope, family, benchmark, F, len(true),
                                 prior_scale=10.0)
    assert tau[0] < 0.05
    np.testing.assert_allclose(tau[1:], true[1:], rtol=0.15)


def test_simulator_without_effects_is_unchanged():
    a, _ = simulate_leaderboard(n_families=8, seed=4)
    b, truth_b = simulate_leaderboard(n_families=8, seed=4, family_benchmark_sd=0.0)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not truth_b.family_benchmark_effect.any()
    _, truth_c = simulate_leaderboard(n_families=200, seed=4, family_benchmark_sd=0.5)
    assert truth_c.family_benchmark_effect.std() == pytest.approx(0.5, rel=0.1)
    with pytest.raises(ValueError, match="family_benchmark_sd"):
        simulate_leaderboard(n_families=8, family_benchmark_sd=-1.0)


def test_bad_option_is_named():
    table, _ = simulate_leaderboard(n_families=8, seed=0)
    with pytest.raises(ValueError, match="family_benchmark_effects"):
        SlothModel(2, family_benchmark_effects="yes").fit(table)


HELD_OUT = ("fam02", "fam05", "fam09", "fam13", "fam17")


@pytest.fixture(scope="module")
def fitted():
    table, truth = simulate_leaderboard(
        n_families=36, n_benchmarks=8, n_skills=2, models_per_family=(3, 6),
        family_benchmark_sd=0.6, missing_fraction=0.05, seed=21,
    )
    keep = np.array([f not in HELD_OUT for f in table.family])
    model = SlothModel(
        2, link="logistic", family_benchmark_effects=True, num_chains=2, num_warmup=200,
        num_samples=200, seed=3, progress_bar=False,
    ).fit(table.subset(keep))
    return model, table, truth


def test_effects_carry_a_new_familys_deviations_to_its_larger_models(fitted, tmp_path,
                                                                    write_version_1):
    model, table, truth = fitted
    tau = model.family_benchmark_scale_
    assert tau.shape == (8,) and 0.3 < np.median(tau) < 1.2
    plain = copy.copy(model)
    plain.family_benchmark_scale_ = np.zeros_like(tau)  # tau = 0: the model without effects
    frame = table.to_frame()
    errors = {"effects": [], "plain": []}
    coverage = []
    for family in HELD_OUT:
        rows = frame[frame["family"] == family].sort_values("params").reset_index(drop=True)
        index = np.nonzero(np.asarray(table.family) == family)[0]
        order = np.argsort(table.params[index], kind="stable")
        true = truth.mean_score[index[order]][1:]
        for name, m in (("effects", model), ("plain", plain)):
            draws = forecast_draws(m, rows.iloc[1:], rows.iloc[:1], kind="mean", seed=0)
            errors[name].append(np.abs(draws.mean(axis=0) - true).mean())
            if name == "effects":
                lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
                coverage.append(np.mean((true >= lo) & (true <= hi)))
    # the effects carry the family's deviations: 0.95 of the error without them here (with
    # the importance weights the right way round; 0.8 when the conditioning inverted them
    # and left the plain model worse off)
    assert np.mean(errors["effects"]) < 0.97 * np.mean(errors["plain"])
    assert np.mean(coverage) > 0.75
    # the estimate travels with the saved posterior
    path = tmp_path / "fit.nc"
    model.save(path)
    loaded = SlothModel.load(path)
    np.testing.assert_array_equal(loaded.family_benchmark_scale_, tau)
    rows = frame[frame["family"] == HELD_OUT[0]].reset_index(drop=True)
    np.testing.assert_array_equal(forecast_draws(loaded, rows.iloc[1:], rows.iloc[:1], seed=4),
                                  forecast_draws(model, rows.iloc[1:], rows.iloc[:1], seed=4))
    # a file written before the option loads without effects; one whose estimate is missing
    # gets it re-estimated, identically (written through sloth: an edit behind its back
    # would fail the file's checksum)
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    del tree.attrs["family_benchmark_scale"]
    write_posterior(tree, tmp_path / "no_tau.nc")
    np.testing.assert_allclose(SlothModel.load(tmp_path / "no_tau.nc").family_benchmark_scale_,
                               tau)
    write_version_1(tree, tmp_path / "old.nc", drop=("family_benchmark_effects",))
    old = SlothModel.load(tmp_path / "old.nc")
    assert not old.family_benchmark_effects and old.family_benchmark_scale_ is None


def test_in_fit_families_use_their_own_deviations(fitted):
    model, table, truth = fitted
    frame = table.to_frame()
    inside = frame[~frame["family"].isin(HELD_OUT)]
    index = np.nonzero(~np.isin(np.asarray(table.family), HELD_OUT))[0]
    with_effects = model.predict(inside, kind="mean")
    plain = copy.copy(model)
    plain.family_benchmark_effects = False
    without = plain.predict(inside, kind="mean")
    J = len(model.benchmarks_)
    true = truth.mean_score[index]
    err_with = np.abs(with_effects["mean"].to_numpy().reshape(-1, J) - true).mean()
    err_without = np.abs(without["mean"].to_numpy().reshape(-1, J) - true).mean()
    assert err_with < err_without
