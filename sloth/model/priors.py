"""Prior scales of the skill model: one place, read by the model and by the diagnostics."""

from __future__ import annotations

from collections.abc import Mapping

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


