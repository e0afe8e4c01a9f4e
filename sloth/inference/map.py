"""Maximum a posteriori fits of the skill model by batched L-BFGS."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from sloth.inference.programs import (
    ProgramCache,
    drop_placeholders,
    flat_start,
    pad_arrays,
    pad_init,
)
from sloth.model import ModelStructure
from sloth.model.design import FitArrays
from sloth.optim import batched_lbfgs

__all__ = ["MapResult", "find_map"]


@dataclass(frozen=True)
class MapResult:
    """A maximum a posteriori fit.

    Attributes
    ----------
    values : dict of ndarray
        Constrained value of every latent sample site (family sites with ``F`` rows).
    potential : float
        The potential energy (negative log joint density, unconstrained) there.
    """

    values: dict[str, np.ndarray]
    potential: float


def find_map(
    arrays: FitArrays,
    structure: ModelStructure,
    *,
    seed: int = 0,
    num_starts: int = 4,
    init_values: dict[str, np.ndarray] | None = None,
    maxiter: int = 3000,
    ftol: float = 1e-8,
    programs: ProgramCache | None = None,
) -> MapResult:
    """Maximum a posteriori fit by L-BFGS on the unconstrained potential, best of several
    starts.

    All starts are stepped together by :func:`sloth.optim.batched_lbfgs` (SciPy's L-BFGS-B
    spends more time in its own overhead per call than the potential takes).

    Parameters
    ----------
    arrays : FitArrays
    structure : ModelStructure
    seed : int, default 0
        Seed of the random starts (uniform in (-0.5, 0.5) on the unconstrained scale).
    num_starts : int, default 4
        Number of starts (with ``init_values``: that start plus ``num_starts - 1`` random
        ones).
    init_values : dict, optional
        Constrained site values to start from.
    maxiter : int, default 3000
    ftol : float, default 1e-8
        L-BFGS iteration cap and relative tolerance on the potential.
    programs : ProgramCache, optional
        Where the compiled potential is kept (default: a cache for this call only).

    Returns
    -------
    MapResult

    Raises
    ------
    RuntimeError
        If the potential is not finite at the end of any start.
    """
    programs = ProgramCache() if programs is None else programs
    data, padded = pad_arrays(arrays, structure)
    sites = programs.sites(data, padded)
    flat_init, _ = flat_start(
        sites, None if init_values is None else pad_init(init_values, padded.n_families), seed)
    dim = flat_init.shape[0]
    compiled = programs.programs(data, padded)
    rng = np.random.default_rng(seed)
    starts = [np.asarray(flat_init, dtype=float)] if init_values is not None else []
    starts += [rng.uniform(-0.5, 0.5, dim) for _ in range(max(num_starts - len(starts), 0))]

    def objective(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        val, grad = compiled.value_and_grad(jnp.asarray(x, dtype=flat_init.dtype), data)
        return np.asarray(val, dtype=float), np.asarray(grad, dtype=float)

    # a padded batch of the start count: one compile, and no copies of a costly potential
    result = batched_lbfgs(objective, np.stack(starts), maxiter=maxiter, ftol=ftol, gtol=1e-4,
                           min_batch=1 << (len(starts) - 1).bit_length())
    if not np.isfinite(result.fun).any():
        raise RuntimeError("every MAP start failed (non-finite potential)")
    best = int(np.argmin(result.fun))
    best_x, best_fun = result.x[best], float(result.fun[best])
    constrained = drop_placeholders(
        compiled.postprocess(jnp.asarray(best_x, dtype=flat_init.dtype)[None], data),
        structure.n_families)
    names = sites.shapes.keys()
    values = {k: np.asarray(v[0]) for k, v in constrained.items() if k in names}
    return MapResult(values=values, potential=best_fun)
