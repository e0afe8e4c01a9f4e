"""Names of the post-sampling checks under their former module.

A re-export only, kept so that code importing from ``sloth.checks.diagnostics`` keeps
working: the checks live in :mod:`sloth.checks.convergence` (the sampler, R-hat, ESS),
:mod:`sloth.checks.identification` (invariants, chain alignment, contraction, trade-offs,
signal) and :mod:`sloth.checks.report` (:func:`diagnose`); import from there, or from
:mod:`sloth.checks`.
"""

from sloth.checks.convergence import (
    IDENTIFIED_VARIABLES,
    convergence_table,
    sampler_summary,
)
from sloth.checks.identification import (
    CONTRACTION_GROUPS,
    CORE_GROUPS,
    chain_alignment,
    contraction,
    family_covariance,
    fitted_signal,
    invariant_quantities,
    prior_variances,
    slope_efficiency,
)
from sloth.checks.report import SAMPLING_CHECKS, DiagnosticReport, diagnose
from sloth.checks.thresholds import DiagnosticThresholds

__all__ = [
    "CONTRACTION_GROUPS",
    "CORE_GROUPS",
    "IDENTIFIED_VARIABLES",
    "SAMPLING_CHECKS",
    "DiagnosticReport",
    "DiagnosticThresholds",
    "chain_alignment",
    "contraction",
    "convergence_table",
    "diagnose",
    "family_covariance",
    "fitted_signal",
    "invariant_quantities",
    "prior_variances",
    "sampler_summary",
    "slope_efficiency",
]
