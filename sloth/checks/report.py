"""One report of every check of a fit: :func:`diagnose` and :class:`DiagnosticReport`.

:func:`diagnose` gathers, for a fitted model, the structural checks of
:mod:`sloth.checks.structure` (the data against the model), the sampler's health and
convergence (:mod:`sloth.checks.convergence`) and the identification of the skills
(:mod:`sloth.checks.identification`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import xarray as xr

from sloth.checks.convergence import (
    ConvergenceStats,
    check_divergences,
    check_ebfmi,
    check_ess,
    check_rhat,
    check_tree_depth,
    sampler_summary,
)
from sloth.checks.draws import fit_anchors, fit_setting
from sloth.checks.findings import Finding, Findings, jsonable
from sloth.checks.identification import (
    check_chain_alignment,
    check_contraction,
    check_rhat_invariant,
    check_signal,
    check_slope_efficiency,
    invariant_rhat,
)
from sloth.checks.structure import check_structure
from sloth.checks.thresholds import DiagnosticThresholds
from sloth.exceptions import DataValidationError
from sloth.posterior.datatree import table_from_tree
from sloth.posterior.fileformat import tree_of

__all__ = ["CONVERGENCE_CHECKS", "SAMPLING_CHECKS", "DiagnosticReport", "check_convergence",
           "diagnose"]

#: Post-sampling checks of :func:`diagnose`, in report order.
SAMPLING_CHECKS = (
    "divergences", "tree_depth", "ebfmi", "rhat", "rhat_invariant", "ess", "chain_alignment",
    "contraction", "slope_efficiency", "anchor_signal", "benchmark_signal",
)

#: The checks of the sampler's convergence that every fit runs on itself
#: (:func:`check_convergence`, called by :meth:`sloth.SlothModel.fit`).
CONVERGENCE_CHECKS = ("divergences", "tree_depth", "ebfmi", "rhat", "ess")


@dataclass
class DiagnosticReport(Findings):
    """Structural and post-sampling findings of a fit (see :func:`diagnose`).

    Attributes
    ----------
    structural : list of Finding
        Checks of the data against the model (:func:`sloth.checks.structure.check_structure`).
    sampling : list of Finding
        Checks of the posterior draws.
    sampler : dict
        :func:`sloth.checks.convergence.sampler_summary` of the fit.
    source : str
        What was diagnosed (a file name, or ``"<model>"``).
    """

    structural: list[Finding]
    sampling: list[Finding]
    sampler: dict[str, Any] = field(default_factory=dict)
    source: str = "<model>"

    @property
    def findings(self) -> list[Finding]:  # type: ignore[override]
        """Structural findings, then sampling findings."""
        return [*self.structural, *self.sampling]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: ``source``, ``passed``, ``n_errors``, ``n_warnings``,
        ``failed_checks``, ``structural``, ``sampling`` (lists of findings) and ``sampler``."""
        return jsonable({
            "source": self.source,
            "passed": self.passed,
            "n_errors": len(self.errors),
            "n_warnings": len(self.warnings),
            "failed_checks": sorted({f.check for f in self.errors}),
            "structural": [f.to_dict() for f in self.structural],
            "sampling": [f.to_dict() for f in self.sampling],
            "sampler": self.sampler,
        })

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiagnosticReport:
        """The report :meth:`to_dict` wrote (its ``passed`` and counts are recomputed)."""
        def findings(key: str) -> list[Finding]:
            return [Finding(f["check"], f["severity"], f["message"], f.get("details", {}))
                    for f in data.get(key, [])]

        return cls(structural=findings("structural"), sampling=findings("sampling"),
                   sampler=dict(data.get("sampler", {})), source=data.get("source", "<model>"))

    def format(self) -> str:
        """Readable multi-line report."""
        status = "PASSED" if self.passed else "FAILED"
        lines = [f"Diagnostics of {self.source}: {status} ({len(self.errors)} error(s), "
                 f"{len(self.warnings)} warning(s))"]
        if self.structural:
            lines += ["", "Structure (data against the model):"]
            lines += [f.format() for f in self.structural]
        lines += ["", "Sampling (posterior draws):"]
        lines += [f.format() for f in self.sampling]
        if not self.passed:
            lines += ["", "Failed checks: " + ", ".join(sorted({f.check for f in self.errors}))]
        return "\n".join(lines)


def _structural(tree: xr.DataTree, model: Any) -> list[Finding]:
    """Structural findings of the data a tree was fitted to (empty if it cannot be rebuilt)."""
    if model is not None and hasattr(model, "table_"):
        table = model.table_
    else:
        try:
            table = table_from_tree(tree)
        except (KeyError, ValueError, TypeError):
            return []
    # the number the fit sampled: its setting may be "auto" (SlothModel's default)
    n_skills = int(tree["posterior"].sizes.get("skill", 1))
    extra = [str(c) for c in fit_setting(tree, "extra_covariates", [])
             if c in table.extra_covariates]
    report = check_structure(table, n_skills, anchors=fit_anchors(tree), extra_covariates=extra)
    return report.findings


def check_convergence(
    fitted: Any, *, thresholds: DiagnosticThresholds | None = None
) -> DiagnosticReport:
    """The sampler's convergence of a fit: :data:`CONVERGENCE_CHECKS` of :func:`diagnose`
    (divergences, tree depth against the fit's own limit, E-BFMI, R-hat and ESS over every
    sampled variable), no structural check.

    Parameters
    ----------
    fitted : SlothModel, xarray.DataTree or path
        As for :func:`diagnose`.
    thresholds : DiagnosticThresholds, optional

    Returns
    -------
    DiagnosticReport
        Its ``sampler`` holds :func:`sloth.checks.convergence.sampler_summary`.
    """
    return diagnose(fitted, thresholds=thresholds, structural=False, checks=CONVERGENCE_CHECKS)


def diagnose(
    fitted: Any,
    *,
    thresholds: DiagnosticThresholds | None = None,
    structural: bool = True,
    checks: Sequence[str] | None = None,
) -> DiagnosticReport:
    """Check a fit: the data's structure, the sampler, convergence and identifiability.

    Parameters
    ----------
    fitted : SlothModel, xarray.DataTree or path
        A fitted model, its ``idata_`` tree, or a posterior file written by
        :meth:`SlothModel.save` / ``sloth fit --out``.
    thresholds : DiagnosticThresholds, optional
        Limits of the post-sampling checks.
    structural : bool, default True
        Also run :func:`sloth.checks.structure.check_structure` on the data of the fit, with
        the anchors it used.
    checks : sequence of str, optional
        Post-sampling checks to run (default: all of :data:`SAMPLING_CHECKS`). R-hat and ESS
        are the costly ones (rank-normalized, per entry of the fitted means).

    Returns
    -------
    DiagnosticReport
        ``.passed`` (no check failed), ``.format()`` (readable text), ``.to_dict()``
        (JSON-able). Sampling checks: ``divergences``, ``tree_depth`` (against the fit's own
        ``max_tree_depth``), ``ebfmi``, ``rhat``, ``rhat_invariant``, ``ess``,
        ``chain_alignment``, ``contraction``, ``slope_efficiency``, ``anchor_signal``,
        ``benchmark_signal``.
    """
    wanted = set(SAMPLING_CHECKS if checks is None else checks)
    unknown = sorted(wanted - set(SAMPLING_CHECKS))
    if unknown:
        raise ValueError(f"checks {unknown} are not known; choose from {list(SAMPLING_CHECKS)}")
    tree, model, source = tree_of(fitted)
    if "posterior" not in tree.children or "loading" not in tree["posterior"]:
        raise DataValidationError(
            f"{source} has no posterior with loadings: pass a fit from SlothModel.fit or a "
            "file written by 'sloth fit --out'"
        )
    th = thresholds or DiagnosticThresholds()
    sampling: list[Finding] = []
    has_stats = "sample_stats" in tree.children
    if has_stats:
        if "divergences" in wanted:
            sampling += check_divergences(tree, th)
        if "tree_depth" in wanted:
            sampling += check_tree_depth(tree, th)
        if "ebfmi" in wanted:
            sampling += check_ebfmi(tree, th)
    sampler: dict[str, Any] = {}
    if wanted & {"rhat", "rhat_invariant", "ess"}:
        conv = ConvergenceStats.compute(tree)
        table = conv.table()
        inv_rhat = invariant_rhat(tree, mean_score_rhat=table.get("mean_score", {}).get(
            "rhat_max"))
        loading_rhat = table.get("loading", {}).get("rhat_max", float("nan"))
        if "rhat" in wanted:
            sampling += check_rhat(conv, th, inv_rhat)
        if "rhat_invariant" in wanted:
            sampling += check_rhat_invariant(inv_rhat, loading_rhat, th)
        if "ess" in wanted:
            sampling += check_ess(conv, th)
        if has_stats:
            with contextlib.suppress(KeyError, ValueError):
                sampler = sampler_summary(tree, table)
    if "chain_alignment" in wanted:
        sampling += check_chain_alignment(tree, th)
    if "contraction" in wanted:
        sampling += check_contraction(tree, th)
    if "slope_efficiency" in wanted:
        sampling += check_slope_efficiency(tree, th)
    if wanted & {"anchor_signal", "benchmark_signal"}:
        sampling += [f for f in check_signal(tree, fit_anchors(tree), th) if f.check in wanted]
    struct = _structural(tree, model) if structural else []
    return DiagnosticReport(structural=struct, sampling=sampling, sampler=sampler,
                            source=source)
