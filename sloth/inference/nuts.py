"""NUTS on the posterior whitened by its Laplace approximation and then by a pilot run.

NumPyro is driven through its public functional interface: :func:`numpyro.infer.hmc.hmc`
with a ``potential_fn_gen`` whose arguments are the whitening and the padded data, so one
compiled loop serves every fit of the same padded sizes and settings. Each chain's state
comes from ``init_kernel`` and is advanced by ``sample_kernel`` only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.hmc import hmc
from numpyro.infer.util import ParamInfo

from sloth.inference.programs import (
    ProgramCache,
    Programs,
    drop_placeholders,
    flat_start,
    pad_arrays,
    pad_init,
)
from sloth.model import ModelStructure, compute_mean_score, compute_skills
from sloth.model.design import FitArrays

__all__ = [
    "NUTS_CHUNK",
    "ExtensionRule",
    "NutsProgram",
    "NutsSettings",
    "SamplerResult",
    "finite_difference_hessian",
    "fit_monitor",
    "laplace_whitening",
    "nuts_program",
    "run_nuts",
    "sample_stats",
    "start_energy",
]

#: Iterations per call of a compiled NUTS loop; progress is reported between calls.
NUTS_CHUNK = 50


@dataclass(frozen=True)
class SamplerResult:
    """Posterior draws of a NUTS run.

    Attributes
    ----------
    samples : dict of ndarray
        Constrained sites and deterministics, shape (chains, draws, ...).
    extra : dict of ndarray
        NumPyro's per-iteration fields (``diverging``, ``num_steps``, ``accept_prob``,
        ``energy``, ``potential_energy``), shape (chains, draws).
    chain_method : str
        ``"parallel"`` (one device per chain) or ``"vectorized"``.
    seconds : float
        Wall time of the pilot and final runs.
    """

    samples: dict[str, np.ndarray]
    extra: dict[str, np.ndarray]
    chain_method: str
    seconds: float


@dataclass(frozen=True)
class NutsSettings:
    """Settings that a compiled NUTS program depends on (its key in ``Programs.nuts``)."""

    num_warmup: int
    target_accept: float
    max_tree_depth: int
    dense_mass: bool
    parallel: bool


@dataclass(frozen=True)
class NutsProgram:
    """Compiled NUTS chains on the whitened potential ``u -> potential(center + whiten u)``.

    Attributes
    ----------
    init : callable
        ``init(keys (c,), u0 (c, k), energy0 (c,), grad0 (c, k), center (k,), whiten (k, k),
        data)``: the chains' states from NumPyro's ``init_kernel`` at ``u0``, whose potential
        and gradient in ``u`` are given (so this program holds no copy of the potential).
    advance : callable
        ``advance(states, center, whiten, data) -> (states, trace)``: :data:`NUTS_CHUNK`
        iterations of ``sample_kernel`` in every chain; ``trace`` holds ``z`` (c,
        NUTS_CHUNK, k) and NumPyro's per-iteration fields (c, NUTS_CHUNK).
    settings : NutsSettings
    """

    init: Callable
    advance: Callable
    settings: NutsSettings


def nuts_program(programs: Programs, settings: NutsSettings) -> NutsProgram:
    """The compiled NUTS program of ``programs``' potential for ``settings``, made on first
    use and kept in ``programs.nuts``."""
    if settings not in programs.nuts:
        programs.nuts[settings] = _new_nuts_program(programs.potential, settings)
    return programs.nuts[settings]


def _new_nuts_program(potential: Callable, settings: NutsSettings) -> NutsProgram:
    def whitened(center: jnp.ndarray, whiten: jnp.ndarray, data: dict) -> Callable:
        return lambda u: potential(center + whiten @ u, data)

    # one (init_kernel, sample_kernel) pair per program: init_kernel sets the warm-up
    # schedule and tree depth that its sample_kernel reads, as NumPyro's interface intends
    init_kernel, sample_kernel = hmc(potential_fn_gen=whitened, algo="NUTS")
    options = dict(target_accept_prob=settings.target_accept,
                   max_tree_depth=settings.max_tree_depth, dense_mass=settings.dense_mass)

    def init(rng_key, u0, energy0, grad0, center, whiten, data):
        return init_kernel(ParamInfo(u0, energy0, grad0), settings.num_warmup, rng_key=rng_key,
                           model_args=(center, whiten, data), **options)

    def advance(state, center, whiten, data):
        def step(st, _):
            st = sample_kernel(st, model_args=(center, whiten, data))
            return st, {"z": st.z, "diverging": st.diverging, "num_steps": st.num_steps,
                        "accept_prob": st.accept_prob, "energy": st.energy,
                        "potential_energy": st.potential_energy}

        return jax.lax.scan(step, state, None, length=NUTS_CHUNK)

    init_axes, advance_axes = (0, 0, 0, 0, None, None, None), (0, None, None, None)
    if settings.parallel:
        return NutsProgram(init=jax.pmap(init, in_axes=init_axes),
                           advance=jax.pmap(advance, in_axes=advance_axes), settings=settings)
    return NutsProgram(init=jax.jit(jax.vmap(init, in_axes=init_axes)),
                       advance=jax.jit(jax.vmap(advance, in_axes=advance_axes)),
                       settings=settings)


def finite_difference_hessian(value_and_grad: Callable, center: jnp.ndarray, data: dict,
                              step: float = 1e-2) -> np.ndarray:
    """The potential's Hessian at ``center`` by central differences of its gradient.

    ``value_and_grad(z (1, k), data)`` is the MAP's compiled program, so this compiles
    nothing (``jax.hessian`` would compile a program of its own). Only the whitening uses
    it, whose curvatures are floored anyway.

    Parameters
    ----------
    value_and_grad : callable
        ``(z (b, k), data) -> (potential (b,), gradient (b, k))``.
    center : array, shape (k,)
    data : dict
        The padded data (:func:`sloth.inference.pad_arrays`).
    step : float, default 0.01

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
    """Matrix ``L`` with ``L L^T`` the inverse of the potential's Hessian.

    Curvatures below ``min_curvature`` (flat or negative directions, e.g. from heavy-tailed
    likelihoods) are raised to it, so ``L`` is always well defined.

    Parameters
    ----------
    hess : ndarray, shape (k, k)
    dtype : dtype of the result
    min_curvature : float, default 0.25

    Returns
    -------
    array, shape (k, k)
    """
    # a curvature that over- or underflows (float32 at an extreme link shape) carries no
    # information: treat it as flat, so the floor below takes over in that direction
    hess = np.nan_to_num(hess, nan=0.0, posinf=0.0, neginf=0.0)
    hess = 0.5 * (hess + hess.T)
    eigval, eigvec = np.linalg.eigh(hess)
    eigval = np.maximum(eigval, min_curvature)
    return jnp.asarray(eigvec / np.sqrt(eigval)[None, :], dtype=dtype)


def start_energy(value_and_grad: Callable, u0: jnp.ndarray, center: jnp.ndarray,
                 whiten: jnp.ndarray, data: dict) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Potential and its gradient in ``u`` at whitened starts.

    Parameters
    ----------
    value_and_grad : callable
        The compiled ``(z (1, k), data) -> ((1,), (1, k))`` of the MAP.
    u0 : array, shape (c, k)
    center : array, shape (k,)
    whiten : array, shape (k, k)
    data : dict

    Returns
    -------
    energy : array, shape (c,)
    grad : array, shape (c, k)
    """
    z = center[None, :] + jnp.asarray(u0) @ whiten.T
    pairs = [value_and_grad(z[c:c + 1], data) for c in range(z.shape[0])]
    energy = jnp.concatenate([p[0] for p in pairs])
    grad = jnp.concatenate([p[1] for p in pairs]) @ whiten
    return energy, grad


@dataclass(frozen=True)
class ExtensionRule:
    """When the final run of :func:`run_nuts` draws more: sampling goes on, in blocks, until
    the chains look mixed or ``max_draws`` draws per chain are reached.

    The chains look mixed when, over every whitened parameter and every quantity of
    ``monitor``, the rank-normalized R-hat is at most ``rhat_target`` and the bulk and tail
    ESS are at least ``ess_per_chain_target`` per chain (``arviz_stats``, as the fit's own
    convergence check computes them). Adaptation is over by then, so the extra draws continue
    the same chains with the same step size and mass matrix.

    Attributes
    ----------
    max_draws : int
        Draws per chain at most.
    rhat_target : float
    ess_per_chain_target : float
    monitor : callable, optional
        Further quantities to judge: unconstrained draws (chains, draws, k) -> array
        (chains, draws, m) (:func:`run_nuts` gives :func:`fit_monitor`: every constrained
        site and the fitted mean scores of a sample of models).
    """

    max_draws: int
    rhat_target: float
    ess_per_chain_target: float
    monitor: Callable[[np.ndarray], np.ndarray] | None = None

    def mixed(self, u: np.ndarray) -> tuple[bool, float, float]:
        """Whether draws ``u`` (chains, draws, k) look mixed, with their worst R-hat and
        lowest ESS (bulk or tail) over the parameters and the monitored quantities."""
        import arviz_stats  # here: scipy.stats, only for fits that may extend
        import xarray as xr

        from sloth.checks.convergence import quiet  # the 0/0 of constant entries silenced

        values = u if self.monitor is None else np.concatenate([u, self.monitor(u)], axis=-1)
        ds = xr.Dataset({"q": (("chain", "draw", "entry"), np.asarray(values, dtype=float))})
        rhat = float(np.nanmax(quiet(arviz_stats.rhat, ds)["q"].to_numpy()))
        ess = min(float(np.nanmin(quiet(arviz_stats.ess, ds, method=m)["q"].to_numpy()))
                  for m in ("bulk", "tail"))
        ok = rhat <= self.rhat_target and ess >= self.ess_per_chain_target * u.shape[0]
        return ok, rhat, ess


def fit_monitor(compiled: Programs, data: dict, structure: ModelStructure,
                arrays: FitArrays, center: jnp.ndarray, whiten: jnp.ndarray, *,
                n_models: int = 64) -> Callable[[np.ndarray], np.ndarray]:
    """Every constrained site and the fitted mean scores of ``n_models`` models spread evenly
    over the fit (every benchmark), as a function of the unconstrained draws (chains, draws,
    k) -> (chains, draws, m): the quantities an :class:`ExtensionRule` watches besides the
    whitened parameters. R-hat is not invariant to the whitening's rotation, so the variables
    the fit's own check reads are watched as such."""
    rows = np.unique(np.linspace(0, len(arrays.family_index) - 1, n_models).round().astype(int))
    covariates, family_index = arrays.covariates[rows], arrays.family_index[rows]

    def monitor(u: np.ndarray) -> np.ndarray:
        chains, draws, dim = u.shape
        flat = center + jnp.einsum("ij,cdj->cdi", whiten, jnp.asarray(u, dtype=center.dtype))
        site = drop_placeholders(compiled.postprocess(flat.reshape(-1, dim), data),
                                 structure.n_families)
        skills = compute_skills(site["family_efficiency"], site["skill_slope"], covariates,
                                family_index)
        mean = compute_mean_score(skills, site["loading"], site["intercept"], arrays.floors,
                                  site.get("link_shape"), site.get("link_ceiling"))
        parts = [np.asarray(v, dtype=float).reshape(chains, draws, -1) for v in site.values()]
        return np.concatenate([*parts, np.asarray(mean).reshape(chains, draws, -1)], axis=-1)

    return monitor


def _run_chains(nuts: NutsProgram, value_and_grad: Callable, keys: jnp.ndarray,
                u0: jnp.ndarray, center: jnp.ndarray, whiten: jnp.ndarray, data: dict, *,
                draws: int, label: str | None, extend: ExtensionRule | None = None,
                ) -> dict[str, np.ndarray]:
    """The program's warm-up and ``draws`` draws of each chain (more, up to
    ``extend.max_draws``, while ``extend`` says the chains have not mixed): the trace of the
    draws, arrays (chains, draws, ...)."""
    warmup = nuts.settings.num_warmup
    energy0, grad0 = start_energy(value_and_grad, u0, center, whiten, data)
    states = nuts.init(keys, u0, energy0, grad0, center, whiten, data)
    parts: list[dict[str, np.ndarray]] = []
    done = 0
    bar = None
    if label is not None:
        from tqdm.auto import tqdm

        bar = tqdm(total=warmup + draws, desc=label, unit="it", file=sys.stderr, leave=True)

    def advance_to(total: int) -> None:
        nonlocal states, done
        while done < total:
            states, trace = nuts.advance(states, center, whiten, data)
            parts.append(jax.tree.map(np.asarray, trace))
            done += NUTS_CHUNK
            if bar is not None:
                bar.update(min(NUTS_CHUNK, bar.total - bar.n))

    advance_to(warmup + draws)
    if extend is not None:
        block = NUTS_CHUNK * max(1, -(-draws // (2 * NUTS_CHUNK)))  # about half of draws
        while draws < extend.max_draws:
            u = np.concatenate([p["z"] for p in parts], axis=1)[:, warmup:warmup + draws]
            ok, rhat, ess = extend.mixed(u)
            if ok:
                break
            draws = min(draws + block, extend.max_draws)
            if bar is not None:
                bar.total = warmup + draws
                bar.set_postfix_str(f"R-hat {rhat:.3f}, ESS {ess:.0f}: drawing on")
            advance_to(warmup + draws)
    if bar is not None:
        bar.close()
    trace = {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
    return {k: v[:, warmup:warmup + draws] for k, v in trace.items()}


def run_nuts(
    arrays: FitArrays,
    structure: ModelStructure,
    init_values: dict[str, np.ndarray],
    *,
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 500,
    max_samples: int | None = None,
    rhat_target: float = 1.01,
    ess_per_chain_target: float = 100.0,
    pilot: int = 150,
    target_accept: float = 0.85,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    jitter: float = 0.1,
    seed: int = 0,
    progress_bar: bool = True,
    programs: ProgramCache | None = None,
) -> SamplerResult:
    """NUTS on the posterior whitened by its Laplace approximation, then by a pilot run.

    The flat unconstrained parameters are ``z = c + L u``. First ``c`` is the MAP and
    ``L L^T`` the (regularized) inverse Hessian there, by central differences of the MAP's
    compiled gradient. A pilot run of ``min(pilot, num_warmup)`` warm-up iterations and
    ``pilot`` draws per chain then gives the posterior mean and covariance of ``u``, shrunk
    towards the identity, which re-centre and re-whiten ``z`` for the final run
    (``num_warmup`` + ``num_samples``); its chains start where the pilot's ended. NUTS thus
    samples a posterior close to a standard normal. (NumPyro's own mass-matrix estimate is
    shrunk towards ``1e-3 I``, which swamps the tightest directions of this posterior.)
    ``pilot=0`` skips the pilot run.

    Chains run in parallel when JAX has at least ``num_chains`` devices (see
    :func:`sloth.configure`), else vectorized. The data are padded
    (:func:`sloth.inference.pad_arrays`) and are arguments of the compiled programs, so
    later fits of the same padded sizes and settings that share ``programs`` reuse them.

    Parameters
    ----------
    arrays : FitArrays
    structure : ModelStructure
        An anchored structure.
    init_values : dict of ndarray
        Constrained site values at the MAP (family sites with ``F`` rows).
    num_chains, num_warmup, num_samples : int
    max_samples : int, optional
        Draws per chain at most: while the chains have not mixed after ``num_samples``
        draws (worst R-hat above ``rhat_target``, or bulk or tail ESS below
        ``ess_per_chain_target`` per chain, over the whitened parameters and
        :func:`fit_monitor`'s quantities; :class:`ExtensionRule`), the final run draws on in
        blocks of about ``num_samples / 2``. ``None``: ``num_samples`` exactly.
    rhat_target, ess_per_chain_target : float, default 1.01, 100
        When the chains have mixed (the warning levels of
        :class:`sloth.checks.DiagnosticThresholds`).
    pilot : int, default 150
    target_accept : float, default 0.85
    max_tree_depth : int, default 10
    dense_mass : bool, default False
        Adapt a dense mass matrix on top of the whitening (else diagonal).
    jitter : float, default 0.1
        Standard deviation of the chains' starts around the MAP, in whitened units.
    seed : int, default 0
    progress_bar : bool, default True
        A stage message and a bar that moves every :data:`NUTS_CHUNK` iterations.
    programs : ProgramCache, optional
        Where the compiled programs are kept (default: a cache for this call only).

    Returns
    -------
    SamplerResult
        Draws of shape (num_chains, draws, ...): ``num_samples`` draws, or up to
        ``max_samples`` when the chains were extended.
    """
    programs = ProgramCache() if programs is None else programs
    data, padded = pad_arrays(arrays, structure)
    center, _ = flat_start(programs.sites(data, padded), pad_init(init_values, padded.n_families),
                           seed)
    dim = center.shape[0]
    compiled = programs.programs(data, padded)
    whiten = laplace_whitening(finite_difference_hessian(compiled.value_and_grad, center, data),
                               center.dtype)
    key_init, key_pilot, key_run = jax.random.split(jax.random.PRNGKey(seed), 3)
    u0 = jitter * jax.random.normal(key_init, (num_chains, dim), dtype=center.dtype)
    parallel = jax.local_device_count() >= num_chains
    chain_method = "parallel" if parallel else "vectorized"

    def program(warmup: int) -> NutsProgram:
        return nuts_program(compiled, NutsSettings(
            num_warmup=warmup, target_accept=target_accept, max_tree_depth=max_tree_depth,
            dense_mass=dense_mass, parallel=parallel))

    pilot_warmup = min(pilot, num_warmup)
    extend_wanted = max_samples is not None and max_samples > num_samples
    if progress_bar:
        print(f"NUTS: {num_chains} chains x ({pilot_warmup} + {pilot} pilot, "
              f"{num_warmup} warm-up + {num_samples} draws"
              + (f", up to {max_samples} until mixed" if extend_wanted else "")
              + f"), {dim} parameters",
              file=sys.stderr, flush=True)
    start = time.perf_counter()
    if pilot > 0:
        out = _run_chains(program(pilot_warmup), compiled.value_and_grad,
                          jax.random.split(key_pilot, num_chains), u0, center, whiten, data,
                          draws=pilot, label="pilot" if progress_bar else None)
        draws = np.asarray(out["z"], dtype=float)
        flat_draws = draws.reshape(-1, dim)
        n = flat_draws.shape[0]
        shrink = dim / (n + dim)
        cov = (1 - shrink) * np.cov(flat_draws, rowvar=False) + shrink * np.eye(dim)
        center = center + whiten @ jnp.asarray(flat_draws.mean(axis=0), dtype=center.dtype)
        whiten = whiten @ jnp.asarray(np.linalg.cholesky(cov), dtype=center.dtype)
        last = draws[:, -1, :] - flat_draws.mean(axis=0)
        u0 = jnp.asarray(np.linalg.solve(np.linalg.cholesky(cov), last.T).T, dtype=center.dtype)
    extend = None
    if extend_wanted:
        extend = ExtensionRule(int(max_samples), float(rhat_target), float(ess_per_chain_target),
                               monitor=fit_monitor(compiled, data, structure, arrays,
                                                   center, whiten))
    out = _run_chains(program(num_warmup), compiled.value_and_grad,
                      jax.random.split(key_run, num_chains), u0, center, whiten, data,
                      draws=num_samples, label="NUTS" if progress_bar else None, extend=extend)
    u = out.pop("z")  # (chains, draws, k)
    num_draws = u.shape[1]
    flat = center + jnp.einsum("ij,cdj->cdi", whiten, u)
    constrained = drop_placeholders(compiled.postprocess(flat.reshape(-1, dim), data),
                                    structure.n_families)
    samples = {k: v.reshape(num_chains, num_draws, *v.shape[1:])
               for k, v in constrained.items()}
    extra = {k: np.asarray(v) for k, v in out.items()}
    return SamplerResult(samples=samples, extra=extra, chain_method=chain_method,
                         seconds=time.perf_counter() - start)


def sample_stats(extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ArviZ-named sample statistics from NumPyro's per-iteration fields.

    Parameters
    ----------
    extra : dict of ndarray
        :attr:`SamplerResult.extra`, arrays (chains, draws).

    Returns
    -------
    dict of ndarray (chains, draws): ``diverging``, ``n_steps``, ``tree_depth``,
    ``acceptance_rate``, ``energy``, ``lp``.
    """
    steps = extra["num_steps"]
    return {
        "diverging": extra["diverging"].astype(bool),
        "n_steps": steps.astype(np.int64),
        "tree_depth": np.floor(np.log2(np.maximum(steps, 1))).astype(np.int64) + 1,
        "acceptance_rate": extra["accept_prob"],
        "energy": extra["energy"],
        "lp": -extra["potential_energy"],
    }
