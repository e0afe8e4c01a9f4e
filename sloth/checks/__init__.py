"""Checks of a fit: structural checks before sampling (:mod:`sloth.checks.structure`) and
sampler and identification checks after (:mod:`sloth.checks.diagnostics`)."""

from sloth.checks.diagnostics import diagnose
from sloth.checks.structure import check_structure

__all__ = ["check_structure", "diagnose"]
