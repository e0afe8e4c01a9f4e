"""Checks of a fit, before and after sampling.

- :mod:`sloth.checks.structure`: structural checks of the data against the model, before
  sampling (:func:`check_structure`);
- :mod:`sloth.checks.convergence`: the sampler's health, R-hat and ESS
  (:func:`sampler_summary`, :func:`convergence_table`);
- :mod:`sloth.checks.identification`: what the data pin down (rotation-invariant R-hat,
  chain alignment, contraction, slope/efficiency trade-offs, anchor and benchmark signal);
- :mod:`sloth.checks.report`: every check in one report (:func:`diagnose`);
- :mod:`sloth.checks.predictive`: posterior and prior predictive checks
  (:func:`check_predictive`);
- :mod:`sloth.checks.findings`, :mod:`sloth.checks.thresholds`, :mod:`sloth.checks.draws`:
  the findings and reports, the limits of the checks, reading a fit's posterior tree.
"""

from sloth.checks.convergence import convergence_table, sampler_summary
from sloth.checks.findings import Finding, Findings
from sloth.checks.identification import (
    chain_alignment,
    contraction,
    invariant_quantities,
    prior_variances,
    slope_efficiency,
)
from sloth.checks.predictive import PredictiveReport, check_predictive, with_predictive
from sloth.checks.report import DiagnosticReport, check_convergence, diagnose
from sloth.checks.structure import StructuralReport, StructuralThresholds, check_structure
from sloth.checks.thresholds import DiagnosticThresholds

__all__ = [
    "DiagnosticReport",
    "DiagnosticThresholds",
    "Finding",
    "Findings",
    "PredictiveReport",
    "StructuralReport",
    "StructuralThresholds",
    "chain_alignment",
    "check_convergence",
    "check_predictive",
    "check_structure",
    "contraction",
    "convergence_table",
    "diagnose",
    "invariant_quantities",
    "prior_variances",
    "sampler_summary",
    "slope_efficiency",
    "with_predictive",
]
