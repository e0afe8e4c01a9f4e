"""The latent-skill model: its maths, priors, structure, the NumPyro model, the covariate
design and simulated leaderboards with known truth.

- :mod:`sloth.model.maths`: skills, linear predictor, link, mean score, score scale (NumPy
  and JAX alike): the only statement of these formulas.
- :mod:`sloth.model.priors`: prior scales and the prior distribution of each site.
- :mod:`sloth.model.structure`: sizes, anchors, link and noise of a fit.
- :mod:`sloth.model.skill_model`: the NumPyro model as a plain function of arrays.
- :mod:`sloth.model.design`: covariate standardization and model arrays.
- :mod:`sloth.model.family_effects`: a family's own deviation per benchmark.
- :mod:`sloth.model.simulate`: simulated leaderboards with known truth.
"""

from sloth.model.maths import (
    LINKS,
    NOISE_MODELS,
    SCORE_RESOLUTION_SD,
    ceiling_offset,
    cell_predictor,
    compute_mean_score,
    compute_skills,
    linear_predictor,
    link_mean,
    link_slope,
    observation_scale,
    score_distribution,
)
from sloth.model.priors import DEFAULT_PRIORS, default_priors, prior_distributions
from sloth.model.skill_model import skill_model
from sloth.model.structure import ModelStructure, assemble_loadings

__all__ = [
    "DEFAULT_PRIORS",
    "LINKS",
    "NOISE_MODELS",
    "SCORE_RESOLUTION_SD",
    "ModelStructure",
    "assemble_loadings",
    "ceiling_offset",
    "cell_predictor",
    "compute_mean_score",
    "compute_skills",
    "default_priors",
    "linear_predictor",
    "link_mean",
    "link_slope",
    "observation_scale",
    "prior_distributions",
    "score_distribution",
    "skill_model",
]
