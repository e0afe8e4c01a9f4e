"""Padded model arguments and the cache of compiled programs that fits share.

The data enter every compiled program (the potential, its batched gradient, the
postprocessing, the NUTS loops) as arguments, padded to multiples of :data:`PAD_MULTIPLES`.
Fits of the same padded sizes and settings (the splits of one benchmark set in an evaluation
sweep) thus run the same programs. A :class:`ProgramCache` holds them for as long as its
owner keeps it: one fit by default, a whole sweep when the sweep passes one cache to every
fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from jax.flatten_util import ravel_pytree
from numpyro.distributions.transforms import Transform, biject_to
from numpyro.infer.util import constrain_fn, potential_energy

from sloth.model import ModelStructure, skill_model
from sloth.model.design import FitArrays

__all__ = [
    "FAMILY_SITES",
    "PAD_MULTIPLES",
    "FlatPotential",
    "ModelSites",
    "ProgramCache",
    "Programs",
    "drop_placeholders",
    "flat_potential",
    "flat_start",
    "model_kwargs",
    "model_sites",
    "pad_arrays",
    "pad_init",
]

#: Padded sizes are rounded up to these multiples, so that fits of similar size (the splits
#: of one benchmark set in a sweep) share one set of compiled programs.
PAD_MULTIPLES = {"families": 16, "models": 32, "scores": 256}

#: Family-indexed sample sites, whose placeholder rows are dropped after sampling.
FAMILY_SITES = ("family_efficiency", "family_offset")


def model_kwargs(arrays: FitArrays, structure: ModelStructure, observed: bool = True) -> dict:
    """Keyword arguments of :func:`sloth.model.skill_model` for a set of (unpadded) arrays.

    Parameters
    ----------
    arrays : FitArrays
    structure : ModelStructure
    observed : bool, default True
        Pass the scores (False: ``scores=None``, for prediction).

    Returns
    -------
    dict
        ``covariates`` (n, P), ``family_index`` (n,), ``obs_model``, ``obs_benchmark`` and
        ``scores`` (m,), ``floors`` and ``inv_items`` (J,) as JAX arrays, and ``structure``.
    """
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


def _round_up(n: int, multiple: int) -> int:
    return max(-(-n // multiple) * multiple, multiple)


def pad_arrays(arrays: FitArrays, structure: ModelStructure) -> tuple[dict, ModelStructure]:
    """Model arguments padded to the sizes of :data:`PAD_MULTIPLES`, with masks.

    Placeholder cells (``score_mask`` False) point at model 0 and benchmark 0 and add nothing
    to the potential; placeholder models have no cell; placeholder families
    (``family_mask`` False) have a standard normal efficiency apart from the model. The
    posterior of the real parameters is unchanged, and the data enter the compiled programs
    as arguments, so fits of the same padded sizes reuse them.

    Parameters
    ----------
    arrays : FitArrays
        Unpadded arrays: ``n`` models, ``m`` observed cells, ``J`` benchmarks.
    structure : ModelStructure
        With ``F`` families.

    Returns
    -------
    data : dict
        Keyword arguments of :func:`sloth.model.skill_model` except ``structure``:
        ``covariates`` (n_pad, P), ``family_index`` (n_pad,), ``obs_model``,
        ``obs_benchmark``, ``scores`` and ``score_mask`` (m_pad,), ``floors`` and
        ``inv_items`` (J,), ``family_mask`` (F_pad,), and for an anchored structure
        ``anchor_rows`` (d,) and ``free_rows`` (J - d,).
    structure : ModelStructure
        ``structure`` with the padded family count ``F_pad``, and the anchors ``0..d-1`` in
        place of its own (``data`` carries them), so one program serves any anchors.
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


def drop_placeholders(values: dict, n_families: int) -> dict[str, np.ndarray]:
    """Postprocessed draws without the placeholder families' rows.

    Parameters
    ----------
    values : dict
        Arrays with a leading draw axis; those of :data:`FAMILY_SITES` have shape
        (draws, F_pad, ...).
    n_families : int
        The real family count ``F``.

    Returns
    -------
    dict of ndarray, the family sites cut to (draws, F, ...).
    """
    return {k: np.asarray(v)[:, :n_families] if k in FAMILY_SITES else np.asarray(v)
            for k, v in values.items()}


def pad_init(values: dict[str, np.ndarray], n_families: int) -> dict[str, np.ndarray]:
    """Constrained site values with the :data:`FAMILY_SITES` padded by zero rows to
    ``n_families`` rows (shape (F, d) to (n_families, d))."""
    out = dict(values)
    for name in FAMILY_SITES:
        if name in out:
            v = np.asarray(out[name])
            out[name] = np.concatenate([v, np.zeros((n_families - v.shape[0], *v.shape[1:]),
                                                    dtype=v.dtype)])
    return out


@dataclass(frozen=True)
class ModelSites:
    """The latent sample sites of :func:`sloth.model.skill_model` for one set of arguments.

    Attributes
    ----------
    shapes : dict of jax.ShapeDtypeStruct
        Constrained shape and dtype of each site.
    transforms : dict of numpyro Transform
        Map from each site's unconstrained space to its support (``biject_to(support)``).
    """

    shapes: dict[str, jax.ShapeDtypeStruct]
    transforms: dict[str, Transform]


def model_sites(kwargs: dict) -> ModelSites:
    """Trace :func:`sloth.model.skill_model` abstractly for its latent sites.

    Nothing is sampled or compiled: the model runs under :func:`jax.eval_shape` (running it
    eagerly compiled a few hundred small programs in a fresh process). The supports of the
    model's sites carry no parameters, so their transforms do not depend on the trace.

    Parameters
    ----------
    kwargs : dict
        Keyword arguments of the model, ``structure`` included.
    """
    transforms: dict[str, Transform] = {}

    def sites() -> dict:
        with numpyro.handlers.seed(rng_seed=0):
            trace = numpyro.handlers.trace(skill_model).get_trace(**kwargs)
        latent = {name: site for name, site in trace.items()
                  if site["type"] == "sample" and not site["is_observed"]}
        transforms.update({name: biject_to(site["fn"].support) for name, site in latent.items()})
        return {name: site["value"] for name, site in latent.items()}

    shapes = jax.eval_shape(sites)
    return ModelSites(shapes=shapes, transforms=transforms)


def flat_start(sites: ModelSites, init_values: dict | None, seed: int
               ) -> tuple[jnp.ndarray, Callable]:
    """A flat unconstrained start of the model and the function that unflattens such a vector
    into its sites.

    Parameters
    ----------
    sites : ModelSites
    init_values : dict, optional
        Constrained values of some or all sites: they start there.
    seed : int
        The other sites start at a seeded uniform draw in (-0.5, 0.5) on the unconstrained
        scale, like the MAP's random starts.

    Returns
    -------
    flat : array, shape (k,)
        The start; ``k`` is the number of unconstrained parameters.
    unravel : callable
        ``unravel(v (k,)) -> dict`` of unconstrained site values.
    """
    rng = np.random.default_rng(seed)
    unconstrained = {}
    for name, shape in sites.shapes.items():
        transform = sites.transforms[name]
        if init_values is not None and name in init_values:
            value = jnp.asarray(init_values[name], dtype=shape.dtype)
            unconstrained[name] = transform.inv(value)
        else:
            free = jax.eval_shape(transform.inv, shape)
            unconstrained[name] = jnp.asarray(rng.uniform(-0.5, 0.5, free.shape), dtype=free.dtype)
    return ravel_pytree(unconstrained)


@dataclass(frozen=True)
class FlatPotential:
    """The model's potential energy as a jitted function of one flat unconstrained vector.

    Attributes
    ----------
    flat_init : array, shape (k,)
    unravel : callable, ``(k,) -> dict`` of unconstrained site values
    potential : callable, ``(k,) -> ()``
    value_and_grad : callable, ``(k,) -> ((), (k,))``
    postprocess : callable, ``(draws, k) -> dict`` of constrained sites and deterministics
    """

    flat_init: jnp.ndarray
    unravel: Callable
    potential: Callable
    value_and_grad: Callable
    postprocess: Callable


def flat_potential(
    arrays: FitArrays, structure: ModelStructure, init_values: dict | None = None, seed: int = 0
) -> FlatPotential:
    """Compile the potential of :func:`sloth.model.skill_model` over a flat unconstrained
    vector, unpadded and with the data closed over: the reference that :func:`pad_arrays` is
    tested against.

    The start is that of :func:`flat_start`: ``init_values`` (constrained values) where
    given, else a seeded draw on the unconstrained scale.
    """
    kwargs = model_kwargs(arrays, structure)
    flat, unravel = flat_start(model_sites(kwargs), init_values, seed)

    def potential(v: jnp.ndarray) -> jnp.ndarray:
        return potential_energy(skill_model, (), kwargs, unravel(v))

    def postprocess(v: jnp.ndarray) -> dict:
        return constrain_fn(skill_model, (), kwargs, unravel(v), return_deterministic=True)

    return FlatPotential(
        flat_init=flat, unravel=unravel, potential=jax.jit(potential),
        value_and_grad=jax.jit(jax.value_and_grad(potential)),
        postprocess=jax.jit(jax.vmap(postprocess)),
    )


@dataclass
class Programs:
    """The programs of one model structure and one set of padded shapes; the data are their
    last argument.

    Attributes
    ----------
    potential : callable
        ``potential(z (k,), data) -> ()``, not compiled on its own (the NUTS programs
        inline it).
    value_and_grad : callable
        Compiled ``(z (b, k), data) -> (potential (b,), gradient (b, k))``: the MAP's
        objective, also used for the Hessian and NUTS's starting energies.
    postprocess : callable
        Compiled ``(z (b, k), data) -> dict`` of constrained sites and deterministics, each
        with a leading axis of size ``b``.
    unravel : callable
        ``(k,) -> dict`` of unconstrained site values.
    nuts : dict
        Compiled NUTS programs by their settings (filled by :mod:`sloth.inference.nuts`).
    """

    potential: Callable
    value_and_grad: Callable
    postprocess: Callable
    unravel: Callable
    nuts: dict = field(default_factory=dict)


def _structure_key(structure: ModelStructure) -> tuple:
    priors = tuple(sorted((k, float(v)) for k, v in structure.priors.items()))
    return (structure.n_families, structure.n_benchmarks, structure.n_covariates,
            structure.n_skills, structure.anchors, structure.noise, structure.centered,
            structure.link, priors)


def _shapes_key(data: dict) -> tuple:
    return tuple((k, tuple(np.shape(v)), str(getattr(v, "dtype", "")))
                 for k, v in sorted(data.items()) if k != "structure")


class ProgramCache:
    """Compiled programs of fits, kept for the lifetime of this object.

    One cache per fit is the default of :func:`sloth.inference.fit_posterior`. A caller
    that fits many data sets of similar size (an evaluation sweep) passes one cache to every
    fit, so that fits of the same padded sizes and settings compile nothing, and calls
    :meth:`clear` (or drops the cache) to free the programs' memory.

    Parameters
    ----------
    max_entries : int, default 8
        Sets of programs kept (one per model structure and padded shapes); the oldest is
        dropped first.
    """

    def __init__(self, max_entries: int = 8) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries={max_entries!r} must be a positive integer")
        self.max_entries = max_entries
        self._programs: dict[tuple, Programs] = {}
        self._sites: dict[tuple, ModelSites] = {}

    def __reduce__(self) -> tuple:
        """A cache travels to another process (a Dask worker) empty: compiled programs
        belong to the process that compiled them."""
        return type(self), (self.max_entries,)

    def __len__(self) -> int:
        """Sets of programs held."""
        return len(self._programs)

    def __repr__(self) -> str:
        return f"ProgramCache({len(self)} of at most {self.max_entries} program sets)"

    def sites(self, data: dict, structure: ModelStructure) -> ModelSites:
        """The latent sites of the model for padded ``data`` and ``structure`` (traced once
        per structure and shapes: a fit asks three or four times)."""
        key = (_structure_key(structure), _shapes_key(data))
        if key not in self._sites:
            while len(self._sites) >= 4 * self.max_entries:
                self._sites.pop(next(iter(self._sites)))
            self._sites[key] = model_sites({**data, "structure": structure})
        return self._sites[key]

    def programs(self, data: dict, structure: ModelStructure) -> Programs:
        """The programs of padded ``data``'s shapes and ``structure`` (made on first use).

        Parameters
        ----------
        data, structure
            As returned by :func:`pad_arrays`.
        """
        key = (_structure_key(structure), _shapes_key(data))
        if key in self._programs:
            return self._programs[key]
        _, unravel = flat_start(self.sites(data, structure), None, 0)

        def potential(z: jnp.ndarray, data: dict) -> jnp.ndarray:
            return potential_energy(skill_model, (), {**data, "structure": structure},
                                    unravel(z))

        def postprocess(z: jnp.ndarray, data: dict) -> dict:
            return constrain_fn(skill_model, (), {**data, "structure": structure}, unravel(z),
                                return_deterministic=True)

        while len(self._programs) >= self.max_entries:  # the oldest first: bounded memory
            self._programs.pop(next(iter(self._programs)))
        self._programs[key] = Programs(
            potential=potential,
            value_and_grad=jax.jit(jax.vmap(jax.value_and_grad(potential), in_axes=(0, None))),
            postprocess=jax.jit(jax.vmap(postprocess, in_axes=(0, None))),
            unravel=unravel,
        )
        return self._programs[key]

    def clear(self) -> None:
        """Drop every program of this cache, and JAX's own (process-wide) caches of compiled
        programs, which would otherwise keep them alive."""
        self._programs.clear()
        self._sites.clear()
        jax.clear_caches()
