"""Static structure of the skill model: sizes, anchors, link, noise and priors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np

from sloth.model.maths import LINKS, NOISE_MODELS
from sloth.model.priors import DEFAULT_PRIORS


@dataclass(frozen=True)
class ModelStructure:
    """Static structure of the model: sizes, anchors, noise model and priors.

    Parameters
    ----------
    n_families : int
        Number of families F.
    n_benchmarks : int
        Number of benchmarks J.
    n_covariates : int
        Number of covariates P.
    n_skills : int
        Number of latent skills d.
    anchors : tuple of int or None
        Benchmark indices (length d); anchor ``k`` loads on skill ``k`` alone, with loading 1.
        ``None`` leaves every loading free (exploratory form).
    noise : {"student_t", "normal"}
        Observation noise.
    priors : dict
        Prior scales (see :data:`DEFAULT_PRIORS`).
    """

    n_families: int
    n_benchmarks: int
    n_covariates: int
    n_skills: int
    anchors: tuple[int, ...] | None
    noise: str = "student_t"
    priors: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PRIORS))
    centered: bool = False
    link: str = "logistic"

    def __post_init__(self) -> None:
        if self.noise not in NOISE_MODELS:
            raise ValueError(f"noise={self.noise!r} is not one of {NOISE_MODELS}")
        if self.link not in LINKS:
            raise ValueError(f"link={self.link!r} is not one of {LINKS}")
        if self.anchors is not None and len(self.anchors) != self.n_skills:
            raise ValueError(
                f"anchors has {len(self.anchors)} entries; it needs one per skill "
                f"({self.n_skills})"
            )

    @property
    def has_shape(self) -> bool:
        """Whether the link has a per-benchmark asymmetry exponent ``link_shape``."""
        return self.link in ("richards", "flexible")

    @property
    def has_ceiling(self) -> bool:
        """Whether the link has a per-benchmark ceiling ``link_ceiling``."""
        return self.link in ("ceiling", "flexible")

    @property
    def free_rows(self) -> np.ndarray:
        """Benchmark indices whose loadings are unconstrained, shape (J - d,) or (J,)."""
        anchors = set(self.anchors or ())
        return np.array([j for j in range(self.n_benchmarks) if j not in anchors], dtype=int)


def assemble_loadings(
    structure: ModelStructure, free: jnp.ndarray, anchor_rows: jnp.ndarray | None = None,
    free_rows: jnp.ndarray | None = None,
) -> jnp.ndarray:
    """Build the (J, d) loading matrix: free rows, and the identity on the anchor rows.

    Parameters
    ----------
    structure : ModelStructure
    free : array, shape (..., J - d, d), or (..., J, d) when there are no anchors
    anchor_rows, free_rows : int arrays, shapes (d,) and (J - d,), optional
        The anchor and free rows as data (default: ``structure.anchors`` and
        ``structure.free_rows``), so that one compiled program serves any anchors.

    Returns
    -------
    array, shape (..., J, d)
    """
    free = jnp.asarray(free)
    if structure.anchors is None:
        return free
    d, J = structure.n_skills, structure.n_benchmarks
    batch = free.shape[:-2]
    loading = jnp.zeros((*batch, J, d), dtype=free.dtype)
    anchor_rows = np.asarray(structure.anchors) if anchor_rows is None else anchor_rows
    free_rows = structure.free_rows if free_rows is None else free_rows
    loading = loading.at[..., anchor_rows, np.arange(d)].set(1.0)
    return loading.at[..., free_rows, :].set(free)


