"""The sampler's health and convergence: divergences, tree depth, E-BFMI, R-hat and ESS.

R-hat (rank-normalized), bulk and tail ESS and E-BFMI come from ``arviz_stats``. They cover
every sampled variable of the posterior (:func:`convergence_variables`), entries that do not
vary across draws left out: anchor loadings fixed at 1 or 0 and the diagonal of a
correlation matrix have no R-hat, and the 0/0 warnings ``arviz_stats`` raises on them are
silenced here, where they arise. :func:`sampler_summary` condenses all of it into the
headline numbers of a fit.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from numpyro.infer import NUTS

from sloth.checks.draws import (
    entry_labels,
    fit_setting,
    masked_extreme,
    varying_entries,
    worst_labels,
)
from sloth.checks.findings import Finding, Severity
from sloth.checks.thresholds import DiagnosticThresholds
from sloth.posterior.datatree import LINK_VARIABLES

__all__ = [
    "DERIVED_VARIABLES",
    "IDENTIFIED_VARIABLES",
    "ConvergenceStats",
    "check_divergences",
    "check_ebfmi",
    "check_ess",
    "check_rhat",
    "check_tree_depth",
    "convergence_table",
    "convergence_variables",
    "max_tree_depth",
    "quiet",
    "rhat_severity",
    "sampler_summary",
]

#: The model's posterior variables, in report order; :func:`convergence_variables` takes
#: those a fit has, then any other sampled variable it holds (family effects, say).
IDENTIFIED_VARIABLES = (
    "skill_slope", "family_efficiency", "family_scale", "family_corr", "loading", "intercept",
    "noise_scale", "noise_df", *LINK_VARIABLES, "mean_score",
)

#: Posterior variables left out of R-hat and ESS: functions of the others, per model.
DERIVED_VARIABLES = ("skills",)

#: Posterior variables that are not raw parameters (derived, or checked as invariants).
NOT_RAW = (*DERIVED_VARIABLES, "mean_score")

def quiet(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with NumPy's floating-point warnings and ``RuntimeWarning``
    silenced: ``arviz_stats`` divides 0 by 0 on entries that do not vary, which are constants
    of the model (their ``nan`` results are left out by the callers)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def convergence_variables(post: xr.Dataset | xr.DataTree) -> list[str]:
    """Posterior variables whose R-hat and ESS a fit reports.

    Every variable with ``chain`` and ``draw`` dimensions except :data:`DERIVED_VARIABLES`:
    the model's parameters (link parameters included), the fitted means and any other
    sampled variable, in the order of :data:`IDENTIFIED_VARIABLES` first.
    """
    sampled = [str(v) for v in post.data_vars
               if {"chain", "draw"} <= set(post[v].dims) and v not in DERIVED_VARIABLES]
    known = [v for v in IDENTIFIED_VARIABLES if v in sampled]
    return known + [v for v in sampled if v not in known]


@dataclass
class ConvergenceStats:
    """R-hat and ESS of a fit, computed once.

    Attributes
    ----------
    ds : xarray.Dataset
        The variables of :func:`convergence_variables` (chain, draw, ...).
    rhat, ess_bulk, ess_tail : xarray.Dataset
        Their rank-normalized R-hat and bulk and tail ESS per entry (``arviz_stats``).
    """

    ds: xr.Dataset
    rhat: xr.Dataset
    ess_bulk: xr.Dataset
    ess_tail: xr.Dataset
    _table: dict[str, dict[str, float]] | None = field(default=None, init=False, repr=False)

    @classmethod
    def compute(cls, tree: xr.DataTree) -> ConvergenceStats:
        """R-hat and ESS of every variable of :func:`convergence_variables` of ``tree``."""
        import arviz_stats  # here: its import (scipy.stats) costs a forecast a second

        post = tree["posterior"].to_dataset()
        ds = post[convergence_variables(post)]
        return cls(ds, quiet(arviz_stats.rhat, ds), quiet(arviz_stats.ess, ds, method="bulk"),
                   quiet(arviz_stats.ess, ds, method="tail"))

    def table(self) -> dict[str, dict[str, float]]:
        """:func:`convergence_table` of the fit."""
        if self._table is not None:
            return self._table
        out: dict[str, dict[str, float]] = {}
        for name in self.ds.data_vars:
            mask = varying_entries(self.ds[name])
            if not bool(mask.any()):
                continue
            out[str(name)] = {
                "rhat_max": masked_extreme(self.rhat[name], mask, largest=True),
                "ess_bulk_min": masked_extreme(self.ess_bulk[name], mask, largest=False),
                "ess_tail_min": masked_extreme(self.ess_tail[name], mask, largest=False),
            }
        self._table = out
        return out


def convergence_table(tree: xr.DataTree) -> dict[str, dict[str, float]]:
    """Worst R-hat (rank-normalized) and lowest bulk and tail ESS per posterior variable.

    Returns
    -------
    dict
        ``{variable: {"rhat_max", "ess_bulk_min", "ess_tail_min"}}`` over the entries that
        vary, for every variable of :func:`convergence_variables` (those with no varying
        entry are left out).
    """
    return ConvergenceStats.compute(tree).table()


#: Maximum tree depth of NumPyro's NUTS, for a tree that does not record its own.
NUTS_DEFAULT_MAX_TREE_DEPTH = int(inspect.signature(NUTS).parameters["max_tree_depth"].default)


def max_tree_depth(tree: xr.DataTree) -> int:
    """The maximum NUTS tree depth a fit ran with.

    Read from the fit's saved settings (``max_tree_depth``; of a pair, the sampling phase's);
    NumPyro's default when the tree does not record it.
    """
    value = fit_setting(tree, "max_tree_depth")
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return NUTS_DEFAULT_MAX_TREE_DEPTH if value is None else int(value)


def _tree_depths(stats: xr.DataTree | xr.Dataset) -> np.ndarray:
    """Tree depth of every draw: the ``tree_depth`` statistic, or from ``n_steps`` (a tree of
    depth ``k`` takes ``2**(k - 1)`` to ``2**k - 1`` leapfrog steps)."""
    if "tree_depth" in stats:
        return np.asarray(stats["tree_depth"])
    steps = np.asarray(stats["n_steps"])
    return np.floor(np.log2(np.maximum(steps, 1))).astype(int) + 1


def _depth_hits(stats: xr.DataTree | xr.Dataset, limit: int) -> float:
    """Fraction of the draws whose tree reached the depth ``limit``."""
    return float((_tree_depths(stats) >= limit).mean())


def sampler_summary(
    tree: xr.DataTree, table: Mapping[str, Mapping[str, float]] | None = None
) -> dict[str, float | int | str]:
    """Divergences, worst R-hat, lowest ESS and tree sizes of a fit.

    Parameters
    ----------
    tree : xarray.DataTree
    table : dict, optional
        A :func:`convergence_table` of ``tree`` already computed (else computed here).

    Returns
    -------
    dict with ``divergences``, ``rhat_max``, ``ess_bulk_min``, ``ess_tail_min`` (over every
    variable of :func:`convergence_variables`; ``nan`` for a fit too short for them),
    ``worst_rhat_variable``, ``lowest_ess_variable`` (``None`` then),
    ``mean_leapfrog_steps``, ``max_tree_depth`` (the fit's limit, see :func:`max_tree_depth`),
    ``max_tree_depth_hits`` (fraction of the draws whose tree reached it), ``num_chains``,
    ``num_draws``.
    """
    stats = tree["sample_stats"]
    table = convergence_table(tree) if table is None else table
    # a fit too short for R-hat or ESS (every entry nan: too few draws) has an empty table
    nan_row = {"rhat_max": float("nan"), "ess_bulk_min": float("nan")}
    worst = max(table, key=lambda k: np.nan_to_num(table[k]["rhat_max"], nan=-np.inf),
                default=None)
    lowest = min(table, key=lambda k: np.nan_to_num(table[k]["ess_bulk_min"], nan=np.inf),
                 default=None)
    steps = np.asarray(stats["n_steps"])
    limit = max_tree_depth(tree)
    tails = [v["ess_tail_min"] for v in table.values() if not np.isnan(v["ess_tail_min"])]
    return {
        "divergences": int(np.asarray(stats["diverging"]).sum()),
        "rhat_max": table.get(worst, nan_row)["rhat_max"],
        "worst_rhat_variable": worst,
        "ess_bulk_min": table.get(lowest, nan_row)["ess_bulk_min"],
        "lowest_ess_variable": lowest,
        "ess_tail_min": min(tails) if tails else float("nan"),
        "mean_leapfrog_steps": float(steps.mean()),
        "max_tree_depth": limit,
        "max_tree_depth_hits": _depth_hits(stats, limit),
        "num_chains": int(steps.shape[0]),
        "num_draws": int(steps.shape[1]),
    }


# ----------------------------------------------------------------------------- checks


def check_divergences(tree: xr.DataTree, th: DiagnosticThresholds) -> list[Finding]:
    """Divergent transitions: any warns, more than a fraction fails."""
    stats = tree["sample_stats"]
    if "diverging" not in stats:
        return []
    diverging = np.asarray(stats["diverging"])
    n_div, total = int(diverging.sum()), int(diverging.size)
    per_chain = diverging.reshape(diverging.shape[0], -1).sum(axis=1).tolist()
    frac = n_div / max(total, 1)
    details = {"divergences": n_div, "draws": total, "fraction": frac, "per_chain": per_chain}
    if n_div == 0:
        return [Finding("divergences", "ok", f"no divergent transitions in {total} draws",
                        details)]
    severity: Severity = "error" if frac > th.divergence_error_fraction else "warning"
    return [Finding(
        "divergences", severity,
        f"{n_div} divergent transitions ({frac:.2%} of draws; per chain {per_chain}): "
        "the sampler missed regions of high curvature, so the posterior may be biased."
        " Fix: raise target_accept (e.g. 0.95-0.99), fit fewer skills, or choose "
        "better-observed anchors",
        details,
    )]


def check_tree_depth(tree: xr.DataTree, th: DiagnosticThresholds) -> list[Finding]:
    """Draws whose tree reached the fit's maximum depth (:func:`max_tree_depth`)."""
    stats = tree["sample_stats"]
    if "n_steps" not in stats:
        return []
    steps = np.asarray(stats["n_steps"])
    limit = max_tree_depth(tree)
    hits = _depth_hits(stats, limit)
    details = {"max_tree_depth": limit, "max_tree_depth_fraction": hits,
               "mean_leapfrog_steps": float(steps.mean())}
    if hits > th.tree_depth_warn:
        return [Finding(
            "tree_depth", "warning",
            f"{hits:.0%} of the draws reached the maximum tree depth {limit} "
            f"({steps.mean():.0f} leapfrog steps per draw on average): the posterior has long "
            "ridges, typical of weakly identified loadings or slopes. Fix: see the contraction"
            " and slope_efficiency checks; fewer skills or a dense mass matrix may help, or "
            "raise max_tree_depth",
            details,
        )]
    return [Finding(
        "tree_depth", "ok",
        f"{steps.mean():.0f} leapfrog steps per draw on average, {hits:.0%} at the maximum "
        f"depth {limit}", details,
    )]


def check_ebfmi(tree: xr.DataTree, th: DiagnosticThresholds) -> list[Finding]:
    """Lowest E-BFMI per chain (``arviz_stats.bfmi``)."""
    import arviz_stats  # here: see ConvergenceStats.compute

    stats = tree["sample_stats"]
    if "energy" not in stats:
        return []
    bfmi = np.atleast_1d(np.asarray(
        quiet(arviz_stats.bfmi, stats["energy"].astype(float))).astype(float))
    low = float(np.nanmin(bfmi)) if np.isfinite(bfmi).any() else float("nan")
    details = {"bfmi_per_chain": [float(b) for b in bfmi], "bfmi_min": low}
    if np.isfinite(low) and low < th.bfmi_warn:
        return [Finding(
            "ebfmi", "warning",
            f"E-BFMI {low:.2f} (below {th.bfmi_warn}) in chain(s) "
            f"{[int(i) for i in np.flatnonzero(bfmi < th.bfmi_warn)]}: momentum resampling "
            "barely moves the energy, typical of heavy tails or funnels (e.g. small family "
            "scales). Fix: try family_parametrization='non_centered' or more warm-up",
            details,
        )]
    return [Finding("ebfmi", "ok", f"lowest E-BFMI per chain {low:.2f}", details)]


def rhat_severity(value: float, th: DiagnosticThresholds) -> Severity:
    """``ok`` up to ``th.rhat_warn`` (and for ``nan``), ``error`` above ``th.rhat_error``."""
    if not np.isfinite(value) or value <= th.rhat_warn:
        return "ok"
    return "error" if value > th.rhat_error else "warning"


def check_rhat(conv: ConvergenceStats, th: DiagnosticThresholds,
               invariant_rhat: Mapping[str, float]) -> list[Finding]:
    """Worst R-hat of the raw parameters, read against the rotation-invariant quantities.

    Parameters
    ----------
    conv : ConvergenceStats
    th : DiagnosticThresholds
    invariant_rhat : mapping
        Worst R-hat per rotation-invariant quantity
        (:func:`sloth.checks.identification.invariant_rhat`): chains that agree on those but
        not on the raw loadings differ by the identification of the skills, not by the fit.
    """
    table = conv.table()
    raw_rhat = {k: v["rhat_max"] for k, v in table.items() if k not in NOT_RAW}
    if not raw_rhat:
        return []
    worst_raw = max(raw_rhat, key=lambda k: np.nan_to_num(raw_rhat[k], nan=-1.0))
    worst_val = raw_rhat[worst_raw]
    loading_rhat = raw_rhat.get("loading", float("nan"))
    inv_worst = max(invariant_rhat, key=lambda k: np.nan_to_num(invariant_rhat[k], nan=-1.0),
                    default=None)
    inv_val = float("nan") if inv_worst is None else invariant_rhat[inv_worst]
    ds = conv.ds
    labels = {k: worst_labels(conv.rhat[k].where(varying_entries(ds[k])).to_numpy().ravel(),
                              entry_labels(ds[k]), 3) for k in raw_rhat}
    details = {"rhat_max": raw_rhat, "worst_entries": labels}
    sev = rhat_severity(worst_val, th)
    if sev == "ok":
        return [Finding("rhat", "ok", f"R-hat <= {worst_val:.3f} for every raw parameter "
                        f"(loadings {loading_rhat:.3f})", details)]
    inv_sev = rhat_severity(inv_val, th)
    if (sev == "error" and inv_sev != "error") or (sev == "warning" and inv_sev == "ok"):
        why = ("the rotation/sign-invariant quantities agree far better across chains "
               f"(R-hat {inv_val:.3f}), so the chains differ by the identification of the "
               "skills (see chain_alignment), not by the fit. Fix: choose other anchors or "
               "fewer skills")
    elif sev == "warning":
        why = (f"slightly above {th.rhat_warn} (invariant quantities {inv_val:.3f}). Fix: "
               "more warm-up and draws to confirm convergence")
    else:
        why = ("the invariant quantities disagree too (R-hat "
               f"{inv_val:.3f} on {inv_worst}): the chains have not converged. Fix: more "
               "warm-up and draws, or a simpler model (fewer skills)")
    return [Finding(
        "rhat", sev,
        f"worst R-hat {worst_val:.3f} on {worst_raw} ({', '.join(labels[worst_raw])}); "
        f"loadings {loading_rhat:.3f}: {why}",
        details,
    )]


def check_ess(conv: ConvergenceStats, th: DiagnosticThresholds) -> list[Finding]:
    """Lowest bulk and tail ESS against per-chain limits."""
    table = conv.table()
    if not table:
        return []
    bulk = {k: v["ess_bulk_min"] for k, v in table.items()}
    tail = {k: v["ess_tail_min"] for k, v in table.items()}
    n_chains = int(conv.ds.sizes["chain"])
    low_bulk = min(bulk, key=lambda k: np.nan_to_num(bulk[k], nan=np.inf))
    low_tail = min(tail, key=lambda k: np.nan_to_num(tail[k], nan=np.inf))
    lowest = min(np.nan_to_num(bulk[low_bulk], nan=np.inf),
                 np.nan_to_num(tail[low_tail], nan=np.inf))
    warn_at, error_at = th.ess_per_chain_warn * n_chains, th.ess_per_chain_error * n_chains
    details = {"ess_bulk_min": bulk, "ess_tail_min": tail, "warn_below": warn_at,
               "error_below": error_at}
    text = (f"lowest bulk ESS {bulk[low_bulk]:.0f} ({low_bulk}), lowest tail ESS "
            f"{tail[low_tail]:.0f} ({low_tail})")
    if lowest < error_at:
        return [Finding("ess", "error", f"{text}, below {error_at:.0f}: the chains barely "
                        "moved. Fix: many more draws, or fix the geometry (see the other "
                        "checks)", details)]
    if lowest < warn_at:
        return [Finding("ess", "warning", f"{text}, below {warn_at:.0f} "
                        f"({th.ess_per_chain_warn:.0f} per chain): intervals are imprecise. "
                        "Fix: more draws (num_samples)", details)]
    return [Finding("ess", "ok", text, details)]
