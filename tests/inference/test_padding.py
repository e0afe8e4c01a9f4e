"""Padded arrays: the posterior is unchanged, and fits of one padded size that share a
:class:`ProgramCache` share its programs (whatever their anchors)."""

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from sloth.inference import (
    PAD_MULTIPLES,
    ProgramCache,
    finite_difference_hessian,
    flat_potential,
    laplace_whitening,
    pad_arrays,
    run_nuts,
)
from sloth.inference.programs import flat_start
from sloth.model import ModelStructure, default_priors
from sloth.model.design import build_arrays
from sloth.model.simulate import simulate_leaderboard

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _arrays(n_families: int, seed: int, anchors: tuple = (0, 1)):
    table, truth = simulate_leaderboard(n_families=n_families, n_skills=2, n_benchmarks=6,
                                        missing_fraction=0.1, seed=seed)
    arrays = build_arrays(table, truth.scaler, truth.inv_items)
    structure = ModelStructure(
        n_families=len(table.families), n_benchmarks=6, n_covariates=arrays.covariates.shape[1],
        n_skills=2, anchors=anchors, priors=default_priors(), centered=True, link="flexible",
    )
    return arrays, structure


@pytest.mark.parametrize("centered", [True, False])
def test_padding_adds_only_standard_normal_placeholders(centered):
    arrays, structure = _arrays(13, seed=1, anchors=(3, 1))  # anchors travel as data
    structure = replace(structure, centered=centered)
    data, padded = pad_arrays(arrays, structure)
    F, m = structure.n_families, arrays.scores.shape[0]
    assert padded.n_families % PAD_MULTIPLES["families"] == 0 and padded.n_families > F
    assert data["scores"].shape[0] % PAD_MULTIPLES["scores"] == 0
    assert int(data["family_mask"].sum()) == F and int(data["score_mask"].sum()) == m
    # the same point in both parametrizations: placeholders at 0, then moved off it
    fp = flat_potential(arrays, structure, seed=3)
    point = fp.unravel(fp.flat_init + 0.1 * np.random.default_rng(0).normal(
        size=fp.flat_init.shape))
    site = "family_efficiency" if centered else "family_offset"
    extra = jnp.zeros((padded.n_families - F, 2))
    padded_point = {**point, site: jnp.concatenate([point[site], extra])}
    flat, _ = ravel_pytree(padded_point)
    programs = ProgramCache().programs(data, padded)
    value = programs.value_and_grad(flat[None], data)[0][0]
    # equal up to a constant: the normalizing constants of non-centred placeholder offsets
    constant = 0.0 if centered else 0.5 * np.log(2 * np.pi) * extra.size
    np.testing.assert_allclose(value, fp.potential(ravel_pytree(point)[0]) + constant,
                               rtol=1e-5)
    moved = {**padded_point, site: padded_point[site].at[F:].set(0.7)}
    moved_value = programs.value_and_grad(ravel_pytree(moved)[0][None], data)[0][0]
    # a placeholder costs exactly its standard normal density (centred) or its prior (not)
    np.testing.assert_allclose(moved_value - value, 0.5 * 0.7**2 * extra.size, rtol=1e-4)


def _start(fp):
    """Constrained values of the sample sites at the flat start of ``fp``."""
    values = fp.postprocess(fp.flat_init[None])
    return {k: np.asarray(values[k][0]) for k in fp.unravel(fp.flat_init)}


def test_fits_of_one_padded_size_share_their_programs():
    arrays, structure = _arrays(13, seed=1)
    # other data and other anchors, same padded sizes
    other, other_structure = _arrays(14, seed=4, anchors=(2, 4))
    data, padded = pad_arrays(arrays, structure)
    data2, padded2 = pad_arrays(other, other_structure)
    assert padded == padded2
    assert {k: v.shape for k, v in data.items()} == {k: v.shape for k, v in data2.items()}
    fp = flat_potential(arrays, structure, seed=0)
    init = _start(fp)
    cache = ProgramCache()
    settings = dict(num_chains=2, num_warmup=20, num_samples=10, pilot=10, progress_bar=False,
                    programs=cache)
    first = run_nuts(arrays, structure, init, **settings)
    assert first.samples["family_efficiency"].shape == (2, 10, 13, 2)
    assert len(cache) == 1
    programs = cache.programs(data, padded)  # the one the fit made
    nuts = dict(programs.nuts)
    assert len(nuts) == 2  # the pilot's warm-up and the final run's
    fp2 = flat_potential(other, other_structure, seed=0)
    init2 = _start(fp2)
    second = run_nuts(other, other_structure, init2, **settings)
    assert second.samples["family_efficiency"].shape == (2, 10, 14, 2)
    assert len(cache) == 1 and programs.nuts == nuts
    # deterministic given the seed, through the cached programs and through fresh ones
    again = run_nuts(other, other_structure, init2, **settings)
    np.testing.assert_array_equal(again.samples["loading"], second.samples["loading"])
    fresh = run_nuts(other, other_structure, init2, **{**settings, "programs": None})
    np.testing.assert_allclose(fresh.samples["loading"], second.samples["loading"], rtol=1e-6)
    cache.clear()
    assert len(cache) == 0


def test_finite_difference_hessian_matches_autodiff():
    arrays, structure = _arrays(13, seed=1, anchors=(3, 1))
    data, padded = pad_arrays(arrays, structure)
    cache = ProgramCache()
    center, _ = flat_start(cache.sites(data, padded), None, 2)
    programs = cache.programs(data, padded)
    exact = np.asarray(jax.jit(jax.hessian(programs.potential))(center, data), dtype=float)
    approx = finite_difference_hessian(programs.value_and_grad, center, data)
    np.testing.assert_allclose(approx, approx.T)
    scale = np.abs(exact).max()
    assert np.abs(approx - exact).max() < 0.02 * scale
    # the whitening built from it inverts the curvature where the potential is convex
    whiten = np.asarray(laplace_whitening(approx, center.dtype), dtype=float)
    eigval = np.linalg.eigvalsh(0.5 * (exact + exact.T))
    if eigval.min() > 1.0:
        np.testing.assert_allclose(whiten.T @ exact @ whiten, np.eye(len(exact)), atol=0.1)
