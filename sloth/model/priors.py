"""Priors of the skill model: one place, read by the model and by the diagnostics.

:data:`DEFAULT_PRIORS` holds the prior scales; :func:`prior_distributions` turns them into
the prior distribution of one entry of each sampled site of
:func:`sloth.model.skill_model.skill_model`, which the model samples (with its plates and
event shapes) and the contraction check reads variances from.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpyro.distributions as dist

#: Prior scales of the model; override any of them through ``priors=``.
DEFAULT_PRIORS: dict[str, float] = {
    "skill_slope_scale": 3.0,  # Normal scale of B (covariates x skills)
    "loading_scale": 1.5,  # Normal scale of free loadings
    "family_scale_scale": 2.0,  # HalfNormal scale of the family spread per skill (anchored)
    "family_corr_concentration": 2.0,  # LKJ concentration of the family skill correlation
    "intercept_scale": 3.0,  # Normal scale of benchmark intercepts b_j (logit scale)
    "noise_scale_scale": 0.05,  # HalfNormal scale of the misfit sigma_j (score scale)
    "noise_df_rate": 0.1,  # Gamma(2, rate) prior on the Student-t degrees of freedom
    "link_shape_scale": 0.5,  # LogNormal scale of the link's asymmetry exponent k_j
    "link_ceiling_a": 8.0,  # Beta(a, b) prior on the link's ceiling h_j (fraction of 1 - c_j)
    "link_ceiling_b": 1.0,
    # HalfNormal scale of tau_j, a family's own deviation on benchmark j (linear-predictor
    # scale), estimated after sampling when family_benchmark_effects=True (sloth.family_effects)
    "family_benchmark_scale": 0.5,
}



def default_priors(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """Default prior scales updated with ``overrides`` (unknown keys raise ``ValueError``)."""
    priors = dict(DEFAULT_PRIORS)
    for key, value in (overrides or {}).items():
        if key not in priors:
            raise ValueError(f"unknown prior {key!r}; allowed: {sorted(priors)}")
        priors[key] = float(value)
    return priors


def prior_distributions(priors: Mapping[str, float], n_skills: int
                        ) -> dict[str, dist.Distribution]:
    """The prior of one entry of each sampled site of the skill model.

    Parameters
    ----------
    priors : mapping
        Prior scales (:data:`DEFAULT_PRIORS` updated by a fit's overrides).
    n_skills : int
        Number of skills d (the size of the LKJ prior; none for one skill).

    Returns
    -------
    dict of str to numpyro.distributions.Distribution
        Site name -> distribution of one of its entries: ``skill_slope``, ``loading_free``,
        ``intercept`` (Normal), ``family_scale``, ``noise_scale`` (HalfNormal),
        ``link_shape`` (LogNormal), ``link_ceiling`` (Beta), ``noise_df`` (Gamma) and, when
        ``n_skills > 1``, ``family_corr_chol`` (LKJCholesky, the whole d x d factor). The
        family efficiencies are drawn from their population given ``family_scale`` and
        ``family_corr_chol`` and have no prior of their own.
    """
    out: dict[str, dist.Distribution] = {
        "skill_slope": dist.Normal(0.0, priors["skill_slope_scale"]),
        "family_scale": dist.HalfNormal(priors["family_scale_scale"]),
        "loading_free": dist.Normal(0.0, priors["loading_scale"]),
        "intercept": dist.Normal(0.0, priors["intercept_scale"]),
        "noise_scale": dist.HalfNormal(priors["noise_scale_scale"]),
        "link_shape": dist.LogNormal(0.0, priors["link_shape_scale"]),
        "link_ceiling": dist.Beta(priors["link_ceiling_a"], priors["link_ceiling_b"]),
        "noise_df": dist.Gamma(2.0, priors["noise_df_rate"]),
    }
    if n_skills > 1:
        out["family_corr_chol"] = dist.LKJCholesky(n_skills, priors["family_corr_concentration"])
    return out
