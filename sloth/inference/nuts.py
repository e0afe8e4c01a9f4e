"""Posterior inference for the skill model: MAP, data-driven anchors, and NUTS.

The recipe (DESIGN section 6): an unconstrained MAP fit gives loadings whose pivoted QR picks
``d`` well-separated anchor benchmarks; the MAP is rotated exactly into the anchored
parametrization and every chain of a dense-mass NUTS starts next to it. The MAP and NUTS
programs take the (padded) data as arguments and are cached by shape, so a sweep of similar
fits compiles them once.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import scipy.linalg
from jax.flatten_util import ravel_pytree
from numpyro.infer.hmc import hmc
from numpyro.infer.hmc_util import build_adaptation_schedule
from numpyro.infer.util import ParamInfo, _get_model_transforms, constrain_fn, potential_energy

from sloth.model import ModelStructure, maths, skill_model
from sloth.model.design import FitArrays
from sloth.optim import batched_lbfgs

#: NumPyro's effect handlers live on one global stack, so two threads must not trace the
#: model at once (:func:`compile_ahead` traces in the background). Held only while a model
#: function runs in Python (tracing), never while a program compiles or runs.
_MODEL_LOCK = threading.RLock()


def model_kwargs(arrays: FitArrays, structure: ModelStructure, observed: bool = True) -> dict:
    """Keyword arguments of :func:`skill_model` for a set of arrays."""
    return {
        "covariates": jnp.asarray(arrays.covariates),
        "family_index": jnp.asarray(arrays.family_index),
        "obs_model": jnp.asarray(arrays.obs_model),
        "obs_benchmark": jnp.asarray(arrays.obs_benchmark),
        "floors": jnp.asarray(arrays.floors),
        "inv_items": jnp.asarray(arrays.inv_items),
        "structure": structure,
        "scores": jnp.asarray(arrays.scores) if observed else None,
    }


@dataclass(frozen=True)
class MapResult:
    """A maximum a posteriori fit: constrained values of every sample site and its objective."""

    values: dict[str, np.ndarray]
    potential: float


@dataclass(frozen=True)
class FlatPotential:
    """The model's potential energy as a jitted function of one flat unconstrained vector."""

    flat_init: jnp.ndarray
    unravel: Callable
    potential: Callable
    value_and_grad: Callable
    postprocess: Callable


def flat_potential(
    arrays: FitArrays, structure: ModelStructure, init_values: dict | None = None, seed: int = 0
) -> FlatPotential:
    """Compile the potential of :func:`skill_model` over a flat unconstrained vector.

    The starting point is that of :func:`_flat_start`: ``init_values`` (constrained values)
    where given, else a seeded draw on the unconstrained scale. (NumPyro's
    ``initialize_model`` would also compile a search for a valid starting point; the MAP and
    NUTS starts here are always valid, and every caller checks finiteness.) Unpadded, with
    the data closed over: the reference that :func:`pad_arrays` is tested against.
    """
    kwargs = model_kwargs(arrays, structure)
    flat, unravel = _flat_start(kwargs, init_values, seed)

    def potential(v: jnp.ndarray) -> jnp.ndarray:
        with _MODEL_LOCK:
            return potential_energy(skill_model, (), kwargs, unravel(v))

    def postprocess(v: jnp.ndarray) -> dict:
        with _MODEL_LOCK:
            return constrain_fn(skill_model, (), kwargs, unravel(v), return_deterministic=True)

    return FlatPotential(
        flat_init=flat, unravel=unravel, potential=jax.jit(potential),
        value_and_grad=jax.jit(jax.value_and_grad(potential)),
        postprocess=jax.jit(jax.vmap(postprocess)),
    )


_SITES: dict[tuple, tuple[dict, dict]] = {}


def _model_sites(kwargs: dict) -> tuple[dict, dict]:
    """Shapes (``jax.ShapeDtypeStruct``) and transforms of the model's latent sites.

    The model is traced abstractly (about 0.4 s) and the result kept per structure and data
    shapes: a fit asks three or four times.
    """
    structure = kwargs["structure"]
    key = (repr(structure), tuple((k, tuple(np.shape(v)), str(getattr(v, "dtype", "")))
                                  for k, v in sorted(kwargs.items()) if k != "structure"))
    if key in _SITES:
        return _SITES[key]
    transforms: dict = {}

    def sites() -> dict:
        with _MODEL_LOCK, numpyro.handlers.seed(rng_seed=0):
            found, _, _, trace = _get_model_transforms(skill_model, (), kwargs)
        transforms.update(found)
        return {name: site["value"] for name, site in trace.items()
                if site["type"] == "sample" and not site["is_observed"]}

    shapes = jax.eval_shape(sites)
    if len(_SITES) >= 4 * MAX_CACHED_PROGRAMS:
        _SITES.pop(next(iter(_SITES)))
    _SITES[key] = (shapes, transforms)
    return shapes, transforms


def _flat_start(kwargs: dict, init_values: dict | None, seed: int) -> tuple[jnp.ndarray, Callable]:
    """The flat unconstrained start of :func:`skill_model` and the function that unflattens
    such a vector into its sites.

    Sites in ``init_values`` (constrained values) start there; the others at a seeded uniform
    draw in (-0.5, 0.5) on the unconstrained scale, like the MAP's random starts. The model is
    traced abstractly for its sites' shapes and transforms (all parameter-free), so nothing is
    sampled or compiled here: running the model eagerly compiled a few hundred small programs
    in a fresh process (about 5 s).
    """
    shapes, transforms = _model_sites(kwargs)
    rng = np.random.default_rng(seed)
    unconstrained = {}
    for name, shape in shapes.items():
        if init_values is not None and name in init_values:
            value = jnp.asarray(init_values[name], dtype=shape.dtype)
            unconstrained[name] = transforms[name].inv(value)
        else:
            free = jax.eval_shape(transforms[name].inv, shape)
            unconstrained[name] = jnp.asarray(rng.uniform(-0.5, 0.5, free.shape), dtype=free.dtype)
    return ravel_pytree(unconstrained)


#: Padded sizes are rounded up to these multiples, so that fits of similar size (the splits
#: of one benchmark set in a sweep) share one compiled NUTS program.
PAD_MULTIPLES = {"families": 16, "models": 32, "scores": 256}

#: Family-indexed sample sites, whose placeholder rows are dropped after sampling.
FAMILY_SITES = ("family_efficiency", "family_offset")


def _round_up(n: int, multiple: int) -> int:
    return max(-(-n // multiple) * multiple, multiple)


def pad_arrays(arrays: FitArrays, structure: ModelStructure) -> tuple[dict, ModelStructure]:
    """Model arguments padded to the sizes of :data:`PAD_MULTIPLES`, with masks.

    Placeholder cells (``score_mask`` False) point at model 0 and benchmark 0 and add nothing
    to the potential; placeholder models have no cell; placeholder families
    (``family_mask`` False) have a standard normal efficiency apart from the model. The
    posterior of the real parameters is unchanged, and the data enter the compiled programs
    as arguments, so fits of the same padded sizes reuse them.

    Returns
    -------
    data : dict
        Keyword arguments of :func:`skill_model` except ``structure``.
    structure : ModelStructure
        ``structure`` with the padded family count, and the anchors ``0..d-1`` in place of
        its own, which ``data`` carries as ``anchor_rows`` and ``free_rows``.
    """
    n, m, F = arrays.covariates.shape[0], arrays.scores.shape[0], structure.n_families
    n_pad = _round_up(n, PAD_MULTIPLES["models"])
    m_pad = _round_up(m, PAD_MULTIPLES["scores"])
    F_pad = _round_up(F, PAD_MULTIPLES["families"])

    def pad(x: np.ndarray, size: int, value: float | int) -> jnp.ndarray:
        widths = [(0, size - x.shape[0])] + [(0, 0)] * (x.ndim - 1)
        return jnp.asarray(np.pad(x, widths, constant_values=value))

    data = {
        "covariates": pad(np.asarray(arrays.covariates), n_pad, 0.0),
        "family_index": pad(np.asarray(arrays.family_index), n_pad, 0),
        "obs_model": pad(np.asarray(arrays.obs_model), m_pad, 0),
        "obs_benchmark": pad(np.asarray(arrays.obs_benchmark), m_pad, 0),
        "scores": pad(np.asarray(arrays.scores), m_pad, 0.5),
        "floors": jnp.asarray(arrays.floors),
        "inv_items": jnp.asarray(arrays.inv_items),
        "family_mask": jnp.arange(F_pad) < F,
        "score_mask": jnp.arange(m_pad) < m,
    }
    padded = replace(structure, n_families=F_pad)
    if structure.anchors is not None:  # anchors as data: one program serves any anchors
        data["anchor_rows"] = jnp.asarray(structure.anchors, dtype=jnp.int32)
        data["free_rows"] = jnp.asarray(structure.free_rows, dtype=jnp.int32)
        padded = replace(padded, anchors=tuple(range(structure.n_skills)))
    return data, padded


def _drop_placeholders(values: dict, n_families: int) -> dict[str, np.ndarray]:
    """Postprocessed draws (leading axis: draws) without the placeholder families' rows."""
    return {k: np.asarray(v)[:, :n_families] if k in FAMILY_SITES else np.asarray(v)
            for k, v in values.items()}


def _pad_init(values: dict[str, np.ndarray], n_families: int) -> dict[str, np.ndarray]:
    """Constrained site values with family-indexed sites padded by zero rows."""
    out = dict(values)
    for name in FAMILY_SITES:
        if name in out:
            v = np.asarray(out[name])
            out[name] = np.concatenate([v, np.zeros((n_families - v.shape[0], *v.shape[1:]),
                                                    dtype=v.dtype)])
    return out


@dataclass
class _Programs:
    """Compiled programs of NUTS for one model structure and one set of padded shapes."""

    potential: Callable
    value_and_grad: Callable
    postprocess: Callable
    chains: dict = field(default_factory=dict)


_PROGRAMS: dict[tuple, _Programs] = {}
_PROGRAMS_LOCK = threading.RLock()
#: Sets of compiled programs kept in memory (one per model structure and padded shapes).
MAX_CACHED_PROGRAMS = 8


def _programs_key(data: dict, structure: ModelStructure, dim: int) -> tuple:
    priors = tuple(sorted((k, float(v)) for k, v in structure.priors.items()))
    shapes = tuple((k, tuple(v.shape), str(v.dtype)) for k, v in sorted(data.items()))
    return (structure.n_families, structure.n_benchmarks, structure.n_covariates,
            structure.n_skills, structure.anchors, structure.noise, structure.centered,
            structure.link, priors, shapes, dim)


def _programs(data: dict, structure: ModelStructure, unravel: Callable, dim: int) -> _Programs:
    """The (cached) potential, MAP gradient, postprocessing and NUTS programs of one structure
    and padded shapes; the data are their arguments."""

    def potential(z: jnp.ndarray, data: dict) -> jnp.ndarray:
        with _MODEL_LOCK:
            return potential_energy(skill_model, (), {**data, "structure": structure},
                                    unravel(z))

    def postprocess(z: jnp.ndarray, data: dict) -> dict:
        with _MODEL_LOCK:
            return constrain_fn(skill_model, (), {**data, "structure": structure}, unravel(z),
                                return_deterministic=True)

    key = _programs_key(data, structure, dim)
    with _PROGRAMS_LOCK:  # compile_ahead's threads create them too
        if key not in _PROGRAMS:
            while len(_PROGRAMS) >= MAX_CACHED_PROGRAMS:  # the oldest first: bounded memory
                _PROGRAMS.pop(next(iter(_PROGRAMS)))
            _PROGRAMS[key] = _Programs(
                potential=potential,
                value_and_grad=jax.jit(jax.vmap(jax.value_and_grad(potential),
                                                in_axes=(0, None))),
                postprocess=jax.jit(jax.vmap(postprocess, in_axes=(0, None))),
            )
        return _PROGRAMS[key]


#: Iterations per call of a compiled NUTS loop; progress is reported between calls.
NUTS_CHUNK = 50


@dataclass(frozen=True)
class _NutsProgram:
    """NUTS on the whitened potential ``u -> potential(center + whiten u)``, for one warm-up
    length and sampler settings: ``init(keys, u0, energy0, grad0, start, window)`` gives the
    chains' states at ``u0`` (potential ``energy0``, gradient ``grad0`` in ``u``) and warm-up
    iteration ``start`` (in adaptation window ``window``), and
    ``advance(states, center, whiten, data)`` runs :data:`NUTS_CHUNK` iterations of every
    chain. The pilot and the final run share both programs."""

    init: Callable
    advance: Callable
    num_warmup: int


def _nuts_settings(num_warmup: int, target_accept: float, max_tree_depth: int,
                   dense_mass: bool, parallel: bool) -> tuple:
    """The key of a :class:`_NutsProgram` in ``_Programs.chains``."""
    return (num_warmup, target_accept, max_tree_depth, dense_mass, parallel)


def _nuts_program(programs: _Programs, *, num_warmup: int, target_accept: float,
                  max_tree_depth: int, dense_mass: bool, parallel: bool) -> _NutsProgram:
    """The (cached) compiled NUTS programs of ``programs``' potential for these settings."""
    key = _nuts_settings(num_warmup, target_accept, max_tree_depth, dense_mass, parallel)
    with _PROGRAMS_LOCK:  # compile_ahead's threads create them too
        if key not in programs.chains:
            programs.chains[key] = _new_nuts_program(
                programs.potential, num_warmup=num_warmup, target_accept=target_accept,
                max_tree_depth=max_tree_depth, dense_mass=dense_mass, parallel=parallel)
        return programs.chains[key]


def _new_nuts_program(potential: Callable, *, num_warmup: int, target_accept: float,
                      max_tree_depth: int, dense_mass: bool, parallel: bool) -> _NutsProgram:
    options = dict(target_accept_prob=target_accept, max_tree_depth=max_tree_depth,
                   dense_mass=dense_mass)

    def init(rng_key, u0, energy0, grad0, start, window):
        # the start's potential and gradient come in (from the MAP's compiled program), so
        # this program holds no copy of the potential and compiles in a fraction of a second
        init_kernel, _ = hmc(potential_fn=lambda u: jnp.zeros(()), algo="NUTS")
        state = init_kernel(ParamInfo(u0, energy0, grad0), num_warmup, rng_key=rng_key,
                            **options)
        window_idx = jnp.asarray(window, state.adapt_state.window_idx.dtype)
        return state._replace(i=jnp.asarray(start, dtype=state.i.dtype),
                              adapt_state=state.adapt_state._replace(window_idx=window_idx))

    def advance(state, center, whiten, data):
        init_kernel, sample_kernel = hmc(
            potential_fn=lambda u: potential(center + whiten @ u, data), algo="NUTS")
        # init_kernel puts the warm-up schedule and tree depth in sample_kernel's closure;
        # traced abstractly, it adds nothing to this program
        jax.eval_shape(lambda: init_kernel(
            ParamInfo(state.z, state.potential_energy, state.z_grad), num_warmup,
            rng_key=state.rng_key, **options))

        def step(st, _):
            st = sample_kernel(st)
            return st, {"z": st.z, "diverging": st.diverging, "num_steps": st.num_steps,
                        "accept_prob": st.accept_prob, "energy": st.energy,
                        "potential_energy": st.potential_energy}

        return jax.lax.scan(step, state, None, length=NUTS_CHUNK)

    if parallel:
        return _NutsProgram(init=jax.pmap(init, in_axes=(0, 0, 0, 0, None, None)),
                            advance=jax.pmap(advance, in_axes=(0, None, None, None)),
                            num_warmup=num_warmup)
    return _NutsProgram(init=jax.jit(jax.vmap(init, in_axes=(0, 0, 0, 0, None, None))),
                        advance=jax.jit(jax.vmap(advance, in_axes=(0, None, None, None))),
                        num_warmup=num_warmup)


def start_energy(value_and_grad: Callable, u0: jnp.ndarray, center: jnp.ndarray,
                 whiten: jnp.ndarray, data: dict) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Potential (chains,) and its gradient in ``u`` (chains, k) at the whitened starts
    ``u0`` (chains, k), from the compiled ``value_and_grad`` of batches of one."""
    z = center[None, :] + jnp.asarray(u0) @ whiten.T
    pairs = [value_and_grad(z[c:c + 1], data) for c in range(z.shape[0])]
    energy = jnp.concatenate([p[0] for p in pairs])
    grad = jnp.concatenate([p[1] for p in pairs]) @ whiten
    return energy, grad


def warmup_entry(num_warmup: int, warmup: int) -> tuple[int, int]:
    """Where a run of ``warmup`` warm-up iterations enters NumPyro's adaptation schedule of
    ``num_warmup``: the iteration (its last ``warmup``) and the index of its window."""
    start = max(num_warmup - warmup, 0)
    window = next((i for i, w in enumerate(build_adaptation_schedule(num_warmup))
                   if w.start <= start <= w.end), 0)
    return start, window


def _run_chains(nuts: _NutsProgram, value_and_grad: Callable, keys: jnp.ndarray,
                u0: jnp.ndarray, center: jnp.ndarray, whiten: jnp.ndarray, data: dict, *,
                warmup: int, draws: int, label: str | None) -> dict[str, np.ndarray]:
    """``warmup`` iterations (the last ones of the program's warm-up schedule) and ``draws``
    draws of each chain: the trace of the draws, arrays (chains, draws, ...).

    A pilot's shorter warm-up enters the schedule late, in the window that holds its start,
    so it still ends with a mass-matrix window and the final step-size buffer."""
    start, window = warmup_entry(nuts.num_warmup, warmup)
    total = nuts.num_warmup - start + draws
    energy0, grad0 = start_energy(value_and_grad, u0, center, whiten, data)
    states = nuts.init(keys, u0, energy0, grad0, start, window)
    parts = []
    bar = None
    if label is not None:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=label, unit="it", file=sys.stderr, leave=True)
    for _ in range(-(-total // NUTS_CHUNK)):
        states, trace = nuts.advance(states, center, whiten, data)
        parts.append(jax.tree.map(np.asarray, trace))
        if bar is not None:
            bar.update(min(NUTS_CHUNK, total - bar.n))
    if bar is not None:
        bar.close()
    trace = {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
    return {k: v[:, total - draws:total] for k, v in trace.items()}


def find_map(
    arrays: FitArrays,
    structure: ModelStructure,
    *,
    seed: int = 0,
    num_starts: int = 4,
    init_values: dict[str, np.ndarray] | None = None,
    maxiter: int = 3000,
    ftol: float = 1e-8,
) -> MapResult:
    """Maximum a posteriori fit by L-BFGS on the unconstrained potential, best of several starts.

    All starts are stepped together by :func:`sloth.optim.batched_lbfgs` (SciPy's L-BFGS-B
    costs about 5 ms a call in its own overhead, more than the potential itself).

    Parameters
    ----------
    arrays, structure : the data and model structure
    seed : int
        Seed of the random starts (uniform in (-0.5, 0.5) on the unconstrained scale).
    num_starts : int
        Number of random starts (with ``init_values``: that start plus ``num_starts - 1``).
    init_values : dict, optional
        Constrained site values to start from.

    Returns
    -------
    MapResult
    """
    data, padded = pad_arrays(arrays, structure)
    flat_init, unravel = _flat_start(
        {**data, "structure": padded},
        None if init_values is None else _pad_init(init_values, padded.n_families), seed)
    dim = flat_init.shape[0]
    programs = _programs(data, padded, unravel, dim)
    rng = np.random.default_rng(seed)
    starts = [np.asarray(flat_init, dtype=float)] if init_values is not None else []
    starts += [rng.uniform(-0.5, 0.5, dim) for _ in range(max(num_starts - len(starts), 0))]

    def objective(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        val, grad = programs.value_and_grad(jnp.asarray(x, dtype=flat_init.dtype), data)
        return np.asarray(val, dtype=float), np.asarray(grad, dtype=float)

    # a padded batch of the start count: one compile, and no copies of a costly potential
    result = batched_lbfgs(objective, np.stack(starts), maxiter=maxiter, ftol=ftol, gtol=1e-4,
                           min_batch=1 << (len(starts) - 1).bit_length())
    if not np.isfinite(result.fun).any():
        raise RuntimeError("every MAP start failed (non-finite potential)")
    best = int(np.argmin(result.fun))
    best_x, best_fun = result.x[best], float(result.fun[best])
    constrained = _drop_placeholders(
        programs.postprocess(jnp.asarray(best_x, dtype=flat_init.dtype)[None], data),
        structure.n_families)
    sites = unravel(flat_init).keys()
    values = {k: np.asarray(v[0]) for k, v in constrained.items() if k in sites}
    return MapResult(values=values, potential=best_fun)


def benchmark_information(values: dict[str, np.ndarray], arrays: FitArrays) -> np.ndarray:
    """Signal-to-noise of each benchmark about the skills at a solution, shape (J,).

    ``w_j = mean_i[dm_ij/deta_ij / s_ij] * sqrt(coverage_j)``: the slope of the mean score per
    unit of linear predictor (:func:`sloth.model.maths.link_slope`, with the solution's link
    parameters when its link has them), over the score's scale
    (:func:`sloth.model.maths.observation_scale`), averaged over the observed models and
    scaled by the square root of the fraction of models observed. Near-floor benchmarks have
    steep linear predictors but little information; this weighting keeps them from being
    chosen as anchors.

    Parameters
    ----------
    values : dict of ndarray
        Site values of the exploratory model: ``family_offset`` (F, d), ``skill_slope``
        (P, d), ``loading_free`` (J, d), ``intercept`` and ``noise_scale`` (J,), and the
        link's ``link_shape`` / ``link_ceiling`` (J,) where it has them.
    arrays : FitArrays
    """
    skills = maths.compute_skills(values["family_offset"], values["skill_slope"],
                                  arrays.covariates, arrays.family_index)
    loading = values["loading_free"]
    rows, cols = arrays.obs_model, arrays.obs_benchmark
    eta = maths.cell_predictor(skills, loading, values["intercept"], rows, cols)
    link = {k: v[cols] for k, v in maths.link_parameters(values).items()}
    floors = arrays.floors[cols]
    slope = maths.link_slope(eta, floors, **link)
    mean = maths.link_mean(eta, floors, **link)
    sd = maths.observation_scale(mean, values["noise_scale"][cols], arrays.inv_items[cols])
    n_bench = loading.shape[0]
    count = np.bincount(cols, minlength=n_bench)
    snr = np.bincount(cols, weights=slope / sd, minlength=n_bench) / np.maximum(count, 1)
    coverage = count / arrays.covariates.shape[0]
    return snr * np.sqrt(coverage)


def choose_anchors(loading: np.ndarray, information: np.ndarray | None = None) -> tuple[int, ...]:
    """Pick ``d`` anchor benchmarks from unconstrained loadings by pivoted QR.

    Parameters
    ----------
    loading : ndarray, shape (J, d)
    information : ndarray, shape (J,), optional
        Row weights (see :func:`benchmark_information`); the QR runs on ``diag(w) Lambda``.

    Returns
    -------
    tuple of int, length d
        Benchmark indices, the most informative first.
    """
    d = loading.shape[1]
    weighted = loading if information is None else loading * information[:, None]
    _, _, pivots = scipy.linalg.qr(weighted.T, pivoting=True)
    return tuple(int(p) for p in pivots[:d])


def to_anchored(
    values: dict[str, np.ndarray], anchors: tuple[int, ...], structure: ModelStructure
) -> dict[str, np.ndarray]:
    """Map an exploratory solution exactly onto the anchored parametrization.

    With ``A = Lambda[anchors]`` (d, d): ``Lambda' = Lambda A^-1``, skills ``theta' = theta A^T``
    (so ``B' = B A^T`` and ``alpha' = alpha A^T``); the family scale and correlation are those of
    ``alpha'`` and the offsets ``z`` solve ``alpha' = z (diag(tau) L)^T``.

    Parameters
    ----------
    values : dict
        Exploratory site values: skill_slope (P, d), family_offset (F, d), loading_free (J, d),
        intercept, noise_scale (J,), optionally noise_df.
    anchors : tuple of int, length d
    structure : ModelStructure
        The exploratory structure (``anchors=None``).

    Returns
    -------
    dict of constrained site values of the anchored model.
    """
    d = structure.n_skills
    block = values["loading_free"][list(anchors)]
    loading = values["loading_free"] @ np.linalg.inv(block)
    efficiency = values["family_offset"] @ block.T
    cov = np.atleast_2d(np.cov(efficiency, rowvar=False)) + 1e-3 * np.eye(d)
    scale = np.sqrt(np.diag(cov))
    chol = np.linalg.cholesky(cov / np.outer(scale, scale))
    out = {k: v for k, v in values.items() if k not in ("loading_free", "family_offset")}
    out["skill_slope"] = values["skill_slope"] @ block.T
    out["family_offset"] = efficiency @ np.linalg.inv(scale[:, None] * chol).T
    out["family_efficiency"] = efficiency
    out["family_scale"] = scale
    if d > 1:
        out["family_corr_chol"] = chol
    out["loading_free"] = loading[replace(structure, anchors=anchors).free_rows]
    return out


@dataclass(frozen=True)
class SamplerResult:
    """Posterior draws grouped by chain (constrained sites and deterministics) and extra fields."""

    samples: dict[str, np.ndarray]
    extra: dict[str, np.ndarray]
    chain_method: str
    seconds: float


def finite_difference_hessian(value_and_grad: Callable, center: jnp.ndarray, data: dict,
                              step: float = 1e-2) -> np.ndarray:
    """The potential's Hessian at ``center`` by central differences of its gradient.

    ``value_and_grad(z (1, k), data)`` is the MAP's compiled program, so this compiles nothing
    (``jax.hessian`` compiled a program of its own, about 3 s for a leaderboard fit). Only the
    whitening uses it, whose curvatures are floored anyway.

    Returns
    -------
    ndarray, shape (k, k), float64, symmetric
    """
    dim = center.shape[0]
    offsets = step * np.eye(dim)
    base = np.asarray(center, dtype=float)
    # dispatch every call before reading any: JAX runs them back to back
    grads = [value_and_grad(jnp.asarray((base + sign * offsets[i])[None], dtype=center.dtype),
                            data)[1]
             for i in range(dim) for sign in (1.0, -1.0)]
    grads = np.asarray(jnp.concatenate(grads), dtype=float).reshape(dim, 2, dim)
    hess = (grads[:, 0] - grads[:, 1]) / (2 * step)
    return 0.5 * (hess + hess.T)


def laplace_whitening(
    hess: np.ndarray, dtype: jnp.dtype, min_curvature: float = 0.25
) -> jnp.ndarray:
    """Matrix ``L`` with ``L L^T`` the inverse of the potential's Hessian ``hess`` (k, k).

    Curvatures below ``min_curvature`` (flat or negative directions, e.g. from heavy-tailed
    likelihoods) are raised to it, so ``L`` is always well defined.

    Returns
    -------
    array, shape (k, k), of ``dtype``
    """
    # a curvature that over- or underflows (float32 at an extreme link shape) carries no
    # information: treat it as flat, so the floor below takes over in that direction
    hess = np.nan_to_num(hess, nan=0.0, posinf=0.0, neginf=0.0)
    hess = 0.5 * (hess + hess.T)
    eigval, eigvec = np.linalg.eigh(hess)
    eigval = np.maximum(eigval, min_curvature)
    return jnp.asarray(eigvec / np.sqrt(eigval)[None, :], dtype=dtype)


def run_nuts(
    arrays: FitArrays,
    structure: ModelStructure,
    init_values: dict[str, np.ndarray],
    *,
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 500,
    pilot: int = 150,
    target_accept: float = 0.85,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    jitter: float = 0.1,
    seed: int = 0,
    progress_bar: bool = True,
) -> SamplerResult:
    """NUTS on the posterior whitened by its Laplace approximation, then by a pilot run.

    The flat unconstrained parameters are ``z = c + L u``. First ``c`` is the MAP and ``L L^T``
    the (regularized) inverse Hessian there, by central differences of the MAP's compiled
    gradient; a pilot run of ``pilot`` warm-up iterations (the last ones of the final run's
    warm-up schedule, so that both runs share one compiled program) and ``pilot`` draws per
    chain then gives the posterior mean and covariance of ``u``, shrunk towards the
    identity, which re-centre and re-whiten ``z`` for the final run (``num_warmup`` +
    ``num_samples``). NUTS thus samples a posterior close to a standard normal. (NumPyro's own
    mass-matrix estimate is shrunk towards ``1e-3 I``, which swamps the tightest directions of
    this posterior, posterior sd ~0.002 for some slopes, and drives every trajectory to the
    maximum tree depth.) ``pilot=0`` skips the pilot run.

    Chains run in parallel when JAX has at least ``num_chains`` devices (sloth asks for four
    CPU devices on import), else vectorized. The data are padded (:func:`pad_arrays`) and
    passed to the compiled programs as arguments, so later fits of the same padded sizes and
    settings (the splits of an evaluation sweep) reuse them instead of compiling again. The
    chains advance :data:`NUTS_CHUNK` iterations per call of the compiled loop, and
    ``progress_bar`` shows a bar that moves between calls.
    """
    data, padded = pad_arrays(arrays, structure)
    kwargs = {**data, "structure": padded}
    center, unravel = _flat_start(kwargs, _pad_init(init_values, padded.n_families), seed)
    dim = center.shape[0]
    programs = _programs(data, padded, unravel, dim)
    whiten = laplace_whitening(finite_difference_hessian(programs.value_and_grad, center, data),
                               center.dtype)
    key_init, key_pilot, key_run = jax.random.split(jax.random.PRNGKey(seed), 3)
    u0 = jitter * jax.random.normal(key_init, (num_chains, dim), dtype=center.dtype)
    parallel = jax.local_device_count() >= num_chains
    chain_method = "parallel" if parallel else "vectorized"
    nuts = _nuts_program(programs, num_warmup=num_warmup, target_accept=target_accept,
                         max_tree_depth=max_tree_depth, dense_mass=dense_mass, parallel=parallel)
    if progress_bar:
        print(f"NUTS: {num_chains} chains x ({min(pilot, num_warmup)} + {pilot} pilot, "
              f"{num_warmup} warm-up + {num_samples} draws), {dim} parameters",
              file=sys.stderr, flush=True)
    start = time.perf_counter()
    if pilot > 0:
        out = _run_chains(nuts, programs.value_and_grad, jax.random.split(key_pilot, num_chains),
                          u0, center, whiten, data, warmup=pilot, draws=pilot,
                          label="pilot" if progress_bar else None)
        draws = np.asarray(out["z"], dtype=float)
        flat_draws = draws.reshape(-1, dim)
        n = flat_draws.shape[0]
        shrink = dim / (n + dim)
        cov = (1 - shrink) * np.cov(flat_draws, rowvar=False) + shrink * np.eye(dim)
        center = center + whiten @ jnp.asarray(flat_draws.mean(axis=0), dtype=center.dtype)
        whiten = whiten @ jnp.asarray(np.linalg.cholesky(cov), dtype=center.dtype)
        last = draws[:, -1, :] - flat_draws.mean(axis=0)
        u0 = jnp.asarray(np.linalg.solve(np.linalg.cholesky(cov), last.T).T, dtype=center.dtype)
    out = _run_chains(nuts, programs.value_and_grad, jax.random.split(key_run, num_chains), u0,
                      center, whiten, data, warmup=num_warmup, draws=num_samples,
                      label="NUTS" if progress_bar else None)
    u = out.pop("z")  # (chains, draws, k)
    flat = center + jnp.einsum("ij,cdj->cdi", whiten, u)
    constrained = _drop_placeholders(programs.postprocess(flat.reshape(-1, dim), data),
                                     structure.n_families)
    samples = {k: v.reshape(num_chains, num_samples, *v.shape[1:])
               for k, v in constrained.items()}
    extra = {k: np.asarray(v) for k, v in out.items()}
    return SamplerResult(
        samples=samples, extra=extra, chain_method=chain_method,
        seconds=time.perf_counter() - start,
    )


def clear_programs() -> None:
    """Drop every compiled program: sloth's cache of them and JAX's own caches."""
    with _PROGRAMS_LOCK:
        _PROGRAMS.clear()
        jax.clear_caches()


class CompileAhead:
    """Programs compiling in background threads, one per stage (:func:`compile_ahead`).

    ``wait("map")`` returns once the anchored MAP's programs are compiled, ``wait()`` once
    all are (NUTS's too). A failure in a thread is kept in :attr:`errors` and logged at debug
    level (logger ``sloth.inference.nuts``): the fit then compiles what is missing itself.
    """

    STAGES = ("map", "nuts")

    def __init__(self, stages: dict[str, list[Callable[[], object]]]) -> None:
        self._ready = {name: threading.Event() for name in self.STAGES}
        #: Exceptions raised while compiling, by stage (the fit then compiles on its own).
        self.errors: dict[str, Exception] = {}
        # one thread per stage: on two cores, NUTS's programs compile beside the MAP's
        for name in self.STAGES:
            threading.Thread(target=self._run, args=(name, stages.get(name, [])),
                             name=f"sloth-compile-{name}", daemon=True).start()

    def _run(self, name: str, jobs: list[Callable[[], object]]) -> None:
        try:
            for job in jobs:
                job()
        except Exception as error:  # the fit compiles what is missing itself
            self.errors[name] = error
            logging.getLogger(__name__).debug("compiling the %s programs ahead failed", name,
                                              exc_info=True)
        finally:
            self._ready[name].set()

    def wait(self, stage: str | None = None) -> None:
        """Block until ``stage`` ("map" or "nuts"; None: all) is compiled."""
        if stage is not None and stage not in self.STAGES:
            raise ValueError(f"stage={stage!r}: allowed values are {self.STAGES} or None")
        for name in self.STAGES if stage is None else (stage,):
            self._ready[name].wait()


def compile_ahead(
    arrays: FitArrays,
    structure: ModelStructure,
    *,
    num_chains: int,
    num_warmup: int,
    num_samples: int,
    target_accept: float = 0.85,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
) -> CompileAhead | None:
    """Compile, in background threads, the programs that the anchored MAP and NUTS of a fit
    of ``structure`` (anchored, any anchors) will run, while the caller runs its exploratory
    MAP.

    The programs depend on the padded shapes only (:func:`pad_arrays`), not on the anchors
    the exploratory MAP will choose. XLA compiles without holding Python's lock, so on a
    machine of two cores this hides part of a first fit's compiling. Later calls of the same
    shapes find the programs compiled.

    Returns
    -------
    CompileAhead or None
        Wait on it before each stage (so that nothing compiles twice), or None when the
        programs are already compiled in this process.
    """
    if structure.anchors is None:
        raise ValueError("compile_ahead needs an anchored structure (any anchors)")
    data, padded = pad_arrays(arrays, structure)
    center, unravel = _flat_start({**data, "structure": padded}, None, 0)
    dim, dtype = center.shape[0], center.dtype
    settings = dict(num_warmup=num_warmup, target_accept=target_accept,
                    max_tree_depth=max_tree_depth, dense_mass=dense_mass,
                    parallel=jax.local_device_count() >= num_chains)
    with _PROGRAMS_LOCK:
        programs = _programs(data, padded, unravel, dim)
        if _nuts_settings(**settings) in programs.chains:  # a fit of this process made them
            return None
        nuts = _nuts_program(programs, **settings)

    def compile_nuts() -> None:
        keys = jax.random.split(jax.random.PRNGKey(0), num_chains)
        whiten = jnp.eye(dim, dtype=dtype)
        # the states' placement is part of advance's signature: take them from a real
        # (cheap) call of init rather than from their shapes
        states = nuts.init(keys, jnp.zeros((num_chains, dim), dtype),
                           jnp.zeros(num_chains, dtype), jnp.zeros((num_chains, dim), dtype), 0, 0)
        nuts.advance.lower(states, center, whiten, data).compile()

    return CompileAhead({
        "map": [lambda: programs.value_and_grad.lower(jnp.zeros((1, dim), dtype), data).compile(),
                lambda: programs.postprocess.lower(jnp.zeros((1, dim), dtype), data).compile()],
        "nuts": [compile_nuts,
                 lambda: programs.postprocess.lower(
                     jnp.zeros((num_chains * num_samples, dim), dtype), data).compile()],
    })


def enable_compilation_cache() -> None:
    """Keep XLA's compiled programs in ``<sloth cache>/jax`` so later fits skip compiling.

    Set ``SLOTH_JAX_CACHE=0`` to turn it off. Failures to create the folder are ignored.
    """
    if os.environ.get("SLOTH_JAX_CACHE", "1") == "0":
        return
    from sloth.data.sources import cache_dir

    path = cache_dir() / "jax"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def sample_stats(extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ArviZ-named sample statistics from NumPyro's extra fields (chain, draw)."""
    steps = extra["num_steps"]
    return {
        "diverging": extra["diverging"].astype(bool),
        "n_steps": steps.astype(np.int64),
        "tree_depth": np.floor(np.log2(np.maximum(steps, 1))).astype(np.int64) + 1,
        "acceptance_rate": extra["accept_prob"],
        "energy": extra["energy"],
        "lp": -extra["potential_energy"],
    }


