"""Predictive draws of scores from the skill model itself, through NumPyro's ``Predictive``.

The model function (:func:`sloth.model.skill_model`) with ``scores=None`` samples the scores
of its cells; :func:`predictive_scores` runs it under :class:`numpyro.infer.Predictive`,
compiled once per call, either with a posterior's sample sites (the posterior predictive) or
with none (the prior predictive: every site drawn from its prior).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import Predictive

from sloth.inference.programs import model_kwargs, model_sites
from sloth.model import ModelStructure, skill_model
from sloth.model.design import FitArrays

__all__ = ["predictive_scores"]


def predictive_scores(
    arrays: FitArrays,
    structure: ModelStructure,
    *,
    samples: dict[str, np.ndarray] | None = None,
    num_samples: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Draws of the scores of the fit's cells from the skill model with ``scores=None``.

    Parameters
    ----------
    arrays : FitArrays
        The cells (``obs_model``, ``obs_benchmark``; ``m`` of them) and the design; the
        scores themselves are not used.
    structure : ModelStructure
        The structure that was sampled (anchored).
    samples : dict of ndarray, optional
        Every sample site of the model, each shaped (chain, draw, ...)
        (:func:`sloth.posterior.datatree.sample_sites`): draws of the posterior predictive,
        one replicated score per cell and posterior draw. ``None``: the prior predictive.
    num_samples : int, optional
        Number of prior predictive draws (required without ``samples``, refused with them).
    seed : int, default 0
        Seed of the PRNG key (``jax.random.PRNGKey(seed)``): the same seed gives the same
        draws.

    Returns
    -------
    ndarray
        Shape (chain, draw, m) with ``samples``, (num_samples, m) without: replicated scores,
        unclipped (the model's Student-t or normal noise can leave [0, 1]).
    """
    if (samples is None) == (num_samples is None):
        raise ValueError("give either samples (posterior predictive) or num_samples (prior "
                         "predictive), not both nor neither")
    if num_samples is not None and (isinstance(num_samples, bool) or int(num_samples) < 1):
        raise ValueError(f"num_samples={num_samples!r} must be a positive integer")
    kwargs = model_kwargs(arrays, structure, observed=False)
    kwargs.pop("structure")
    key = jax.random.PRNGKey(int(seed))
    if samples is None:
        predictive = Predictive(skill_model, num_samples=int(num_samples),
                                return_sites=["scores"], parallel=True)
        draw = jax.jit(lambda k, data: predictive(k, structure=structure, **data)["scores"])
        return np.asarray(draw(key, kwargs))
    latent = set(model_sites({**kwargs, "structure": structure}).shapes) - {"scores"}
    missing = sorted(latent - set(samples))
    if missing:  # Predictive would draw them from their priors, silently
        raise ValueError(f"samples lack the model's sites {missing}: pass every sample site "
                         f"(sloth.posterior.datatree.sample_sites)")
    sites = {name: jnp.asarray(value) for name, value in samples.items()}

    def posterior_draw(k: jax.Array, sites: dict, data: dict) -> jax.Array:
        predictive = Predictive(skill_model, posterior_samples=sites, batch_ndims=2,
                                return_sites=["scores"], parallel=True)
        return predictive(k, structure=structure, **data)["scores"]

    return np.asarray(jax.jit(posterior_draw)(key, sites, kwargs))
