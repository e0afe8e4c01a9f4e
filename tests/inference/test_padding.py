"""Padded arrays: the posterior is unchanged, and fits of one padded size share programs
(whatever their anchors)."""

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import sloth.inference.nuts as inference
from sloth.inference.nuts import PAD_MULTIPLES, flat_potential, pad_arrays, run_nuts
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
    flat, unravel = ravel_pytree(padded_point)
    programs = inference._programs(data, padded, unravel, flat.shape[0])
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
    settings = dict(num_chains=2, num_warmup=20, num_samples=10, pilot=10, progress_bar=False)
    first = run_nuts(arrays, structure, init, **settings)
    assert first.samples["family_efficiency"].shape == (2, 10, 13, 2)
    programs = dict(inference._PROGRAMS)
    chains = {k: len(p.chains) for k, p in programs.items()}
    fp2 = flat_potential(other, other_structure, seed=0)
    init2 = _start(fp2)
    second = run_nuts(other, other_structure, init2, **settings)
    assert second.samples["family_efficiency"].shape == (2, 10, 14, 2)
    assert inference._PROGRAMS.keys() == programs.keys()
    assert {k: len(p.chains) for k, p in inference._PROGRAMS.items()} == chains
    # deterministic given the seed, through the cached programs
    again = run_nuts(other, other_structure, init2, **settings)
    np.testing.assert_array_equal(again.samples["loading"], second.samples["loading"])


@pytest.mark.parametrize(("num_warmup", "warmup", "entry"),
                         [(300, 150, (150, 3)), (500, 150, (350, 4)), (300, 300, (0, 0)),
                          (100, 150, (0, 0)), (300, 20, (280, 4))])
def test_a_short_warmup_enters_the_schedule_late(num_warmup, warmup, entry):
    """The pilot's warm-up is the end of the final run's schedule: its start iteration and
    the adaptation window that holds it (300: windows end at 74, 99, 149, 249, 299)."""
    start, window = inference.warmup_entry(num_warmup, warmup)
    assert (start, window) == entry
    schedule = inference.build_adaptation_schedule(num_warmup)
    assert schedule[window].start <= start <= schedule[window].end


def test_finite_difference_hessian_matches_autodiff():
    arrays, structure = _arrays(13, seed=1, anchors=(3, 1))
    data, padded = pad_arrays(arrays, structure)
    center, unravel = inference._flat_start({**data, "structure": padded}, None, 2)
    programs = inference._programs(data, padded, unravel, center.shape[0])
    exact = np.asarray(jax.jit(jax.hessian(programs.potential))(center, data), dtype=float)
    approx = inference.finite_difference_hessian(programs.value_and_grad, center, data)
    np.testing.assert_allclose(approx, approx.T)
    scale = np.abs(exact).max()
    assert np.abs(approx - exact).max() < 0.02 * scale
    # the whitening built from it inverts the curvature where the potential is convex
    whiten = np.asarray(inference.laplace_whitening(approx, center.dtype), dtype=float)
    eigval = np.linalg.eigvalsh(0.5 * (exact + exact.T))
    if eigval.min() > 1.0:
        np.testing.assert_allclose(whiten.T @ exact @ whiten, np.eye(len(exact)), atol=0.1)


def test_pilot_and_final_runs_share_one_program_and_compile_ahead_finds_it():
    arrays, structure = _arrays(29, seed=5, anchors=(0, 2))  # a padded size of its own
    settings = dict(num_chains=2, num_warmup=40, num_samples=30, pilot=20, progress_bar=False,
                    max_tree_depth=5)
    ahead = inference.compile_ahead(arrays, structure, num_chains=2, num_warmup=40,
                                    num_samples=30, max_tree_depth=5)
    assert ahead is not None
    ahead.wait()
    data, padded = pad_arrays(arrays, structure)
    center, _ = inference._flat_start({**data, "structure": padded}, None, 0)
    programs = inference._PROGRAMS[inference._programs_key(data, padded, center.shape[0])]
    assert len(programs.chains) == 1
    fp = flat_potential(arrays, structure, seed=0)
    init = _start(fp)
    # compiled already: the fit's own calls reuse what the thread compiled
    compiled = []
    listening = [True]

    def record(event, duration, **kwargs):
        if listening[0] and event == "/jax/core/compile/backend_compile_duration":
            compiled.append(kwargs.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(record)
    try:
        result = run_nuts(arrays, structure, init, **settings)
    finally:
        listening[0] = False
    assert len(programs.chains) == 1
    big = {"jit(_fun)", "jit(init)", "jit(advance)", "jit(potential)", "jit(postprocess)"}
    assert not big & set(compiled), compiled
    assert result.samples["loading"].shape[:2] == (2, 30)
    assert inference.compile_ahead(arrays, structure, num_chains=2, num_warmup=40,
                                   num_samples=30, max_tree_depth=5) is None
    with pytest.raises(ValueError, match="stage"):
        ahead.wait("sampling")


def test_a_failed_compile_ahead_releases_the_fit_and_keeps_the_error():
    order = []

    def boom():
        raise RuntimeError("no compiler today")

    ahead = inference.CompileAhead({"map": [boom, lambda: order.append("never")],
                                    "nuts": [lambda: order.append("nuts")]})
    ahead.wait()  # returns: a failure must not block the fit
    assert isinstance(ahead.errors["map"], RuntimeError) and "nuts" not in ahead.errors
    assert order == ["nuts"]


def test_a_failed_fit_does_not_leave_compiling_threads_behind(monkeypatch):
    """NumPyro's handler stack is global: no background tracing may outlive a fit."""
    import sloth.estimator
    from sloth import SlothModel

    table, _ = simulate_leaderboard(n_families=19, n_skills=2, n_benchmarks=6, seed=8)
    handles = []

    def ahead(*args, **kwargs):
        handles.append(inference.compile_ahead(*args, **kwargs))
        return handles[-1]

    def failing_map(*args, **kwargs):
        raise RuntimeError("every MAP start failed (non-finite potential)")

    monkeypatch.setattr(sloth.estimator, "compile_ahead", ahead)
    monkeypatch.setattr(sloth.estimator, "find_map", failing_map)
    model = SlothModel(2, num_chains=2, num_warmup=30, num_samples=20, max_tree_depth=4,
                       progress_bar=False)
    with pytest.raises(RuntimeError, match="MAP"):
        model.fit(table)
    [handle] = handles
    assert handle is not None  # this padded size was new: threads were started
    assert all(event.is_set() for event in handle._ready.values())
