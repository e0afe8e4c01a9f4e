"""Sampler and identifiability diagnostics of a fit, computed with ``arviz_stats``.

:func:`sampler_summary` and :func:`convergence_table` summarize the sampler; :func:`diagnose`
runs every structural and post-sampling check and returns a :class:`DiagnosticReport`.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import arviz_stats
import numpy as np
import xarray as xr

from sloth.checks.structure import Finding, Severity, _Findings, _jsonable, check_structure
from sloth.exceptions import DataValidationError
from sloth.model.priors import DEFAULT_PRIORS
from sloth.posterior.datatree import table_from_tree
from sloth.posterior.fileformat import model_config, read_posterior

#: Posterior variables whose every entry is identified (structural constants are skipped).
IDENTIFIED_VARIABLES = (
    "skill_slope", "family_efficiency", "family_scale", "family_corr", "loading", "intercept",
    "noise_scale", "noise_df", "mean_score",
)


def _varying(da: xr.DataArray) -> xr.DataArray:
    """Mask of entries that vary across draws (fixed anchor loadings, diagonal correlations
    and other structural constants have no R-hat)."""
    return da.std(("chain", "draw")) > 1e-9


def _varies(da: xr.DataArray) -> xr.DataArray:
    """Like :func:`_varying`, with a tolerance relative to the entry's size: entries that are
    constants up to float rounding (e.g. the diagonal of ``L L^T`` in float32) are left out."""
    sd = da.std(("chain", "draw"))
    return sd > 1e-6 * (1.0 + np.abs(da.mean(("chain", "draw"))))


def convergence_table(tree: xr.DataTree) -> dict[str, dict[str, float]]:
    """Worst R-hat (rank-normalized) and lowest bulk and tail ESS per posterior variable.

    Returns
    -------
    dict
        ``{variable: {"rhat_max", "ess_bulk_min", "ess_tail_min"}}`` over entries that vary.
    """
    post = tree["posterior"].to_dataset()
    names = [v for v in IDENTIFIED_VARIABLES if v in post]
    ds = post[names]
    rhat = arviz_stats.rhat(ds)
    ess_bulk = arviz_stats.ess(ds, method="bulk")
    ess_tail = arviz_stats.ess(ds, method="tail")
    return _table_from_stats(ds, rhat, ess_bulk, ess_tail, names)


def _table_from_stats(
    ds: xr.Dataset, rhat: xr.Dataset, ess_bulk: xr.Dataset, ess_tail: xr.Dataset,
    names: Sequence[str],
) -> dict[str, dict[str, float]]:
    """:func:`convergence_table` from R-hat and ESS already computed on ``ds``."""
    out: dict[str, dict[str, float]] = {}
    for name in names:
        mask = _varying(ds[name])
        out[name] = {
            "rhat_max": float(rhat[name].where(mask).max()),
            "ess_bulk_min": float(ess_bulk[name].where(mask).min()),
            "ess_tail_min": float(ess_tail[name].where(mask).min()),
        }
    return out


def sampler_summary(
    tree: xr.DataTree, table: dict[str, dict[str, float]] | None = None
) -> dict[str, float | int]:
    """Divergences, worst R-hat, lowest ESS and tree sizes of a fit.

    Parameters
    ----------
    tree : xarray.DataTree
    table : dict, optional
        A :func:`convergence_table` of ``tree`` already computed (else computed here).

    Returns
    -------
    dict with ``divergences``, ``rhat_max``, ``ess_bulk_min``, ``ess_tail_min``,
    ``worst_rhat_variable``, ``lowest_ess_variable``, ``mean_leapfrog_steps``,
    ``max_tree_depth_hits`` (fraction of iterations at the maximum depth), ``num_chains``,
    ``num_draws``.
    """
    stats = tree["sample_stats"]
    table = convergence_table(tree) if table is None else table
    worst = max(table, key=lambda k: table[k]["rhat_max"])
    lowest = min(table, key=lambda k: table[k]["ess_bulk_min"])
    steps = np.asarray(stats["n_steps"])
    depth = np.asarray(stats["tree_depth"])
    return {
        "divergences": int(np.asarray(stats["diverging"]).sum()),
        "rhat_max": table[worst]["rhat_max"],
        "worst_rhat_variable": worst,
        "ess_bulk_min": table[lowest]["ess_bulk_min"],
        "lowest_ess_variable": lowest,
        "ess_tail_min": min(v["ess_tail_min"] for v in table.values()),
        "mean_leapfrog_steps": float(steps.mean()),
        "max_tree_depth_hits": float((depth >= depth.max()).mean()) if steps.max() >= 1023
        else 0.0,
        "num_chains": int(steps.shape[0]),
        "num_draws": int(steps.shape[1]),
    }


# ============================================================================ full report
#
# ``diagnose`` gathers, for a fitted model, the structural checks of
# :mod:`sloth.checks.structure` and the post-sampling checks below into one report:
#
# - ``divergences``, ``tree_depth``, ``ebfmi``: the sampler's own health (E-BFMI through
#   ``arviz_stats.bfmi``);
# - ``rhat``, ``ess``: rank-normalized R-hat and bulk/tail ESS (``arviz_stats``) of the raw
#   parameters, loadings included;
# - ``rhat_invariant``: R-hat of quantities no rotation, sign flip or anchor choice changes
#   (``Lambda Sigma Lambda^T``, communalities, ``Lambda B^T``, fitted means): chains that agree
#   on these but not on the loadings differ by the identification, not by the fit;
# - ``chain_alignment``: per-chain mean loadings compared with orthogonal Procrustes, to tell
#   sign flips, permutations and rotations of the skills from genuinely different modes;
# - ``contraction``: ``1 - posterior var / prior var`` per parameter group;
# - ``slope_efficiency``: how much of each shared slope's posterior the family efficiencies
#   explain (a trade-off the data do not resolve);
# - ``anchor_signal``, ``benchmark_signal``: how much of each benchmark's observed scores the
#   fitted means explain (an anchor that loads on nothing pins its skill to noise).

#: Parameter groups whose contraction is reported, in order.
CONTRACTION_GROUPS = (
    "skill_slope", "loading", "family_efficiency", "family_scale", "family_corr", "intercept",
    "noise_scale", "noise_df", "link_shape", "link_ceiling",
)

#: Groups that carry the skill structure; weak contraction elsewhere is only reported.
CORE_GROUPS = ("skill_slope", "loading", "family_efficiency", "family_scale")

#: Posterior variables left out of the raw R-hat/ESS (derived, or reported as invariants).
_NOT_RAW = ("skills", "mean_score")


@dataclass(frozen=True)
class DiagnosticThresholds:
    """Limits of the post-sampling checks of :func:`diagnose`.

    Parameters
    ----------
    rhat_warn, rhat_error : float, default 1.01, 1.05
        Worst R-hat above which a check warns / fails.
    ess_per_chain_warn, ess_per_chain_error : float, default 100, 10
        Lowest bulk or tail ESS, per chain, below which a check warns / fails.
    divergence_error_fraction : float, default 0.01
        Any divergence warns; a larger fraction of divergent draws fails.
    tree_depth_warn : float, default 0.05
        Fraction of draws at the maximum tree depth above which a check warns.
    bfmi_warn : float, default 0.3
        Lowest per-chain E-BFMI below which a check warns.
    chain_mismatch : float, default 1.0
        Two chains disagree when their mean loadings differ by more than this many posterior
        standard deviations (all chains pooled; root mean square over the free loadings).
    min_contraction : float, default 0.1
        Parameters whose posterior variance is above ``1 - min_contraction`` of their prior
        variance are barely moved by the data.
    slope_efficiency_r2 : float, default 0.9
        Share of a slope's posterior variance explained by the family efficiencies above
        which the two are not told apart (warning).
    min_signal : float, default 0.2
        Squared correlation of fitted means and observed scores below which a benchmark loads
        on nothing (an error for an anchor, a warning otherwise).
    """

    rhat_warn: float = 1.01
    rhat_error: float = 1.05
    ess_per_chain_warn: float = 100.0
    ess_per_chain_error: float = 10.0
    divergence_error_fraction: float = 0.01
    tree_depth_warn: float = 0.05
    bfmi_warn: float = 0.3
    chain_mismatch: float = 1.0
    min_contraction: float = 0.1
    slope_efficiency_r2: float = 0.9
    min_signal: float = 0.2


@dataclass
class DiagnosticReport(_Findings):
    """Structural and post-sampling findings of a fit (see :func:`diagnose`).

    Attributes
    ----------
    structural : list of Finding
        Checks of the data against the model (:func:`sloth.checks.structure.check_structure`).
    sampling : list of Finding
        Checks of the posterior draws.
    sampler : dict
        :func:`sampler_summary` of the fit.
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
        return _jsonable({
            "source": self.source,
            "passed": self.passed,
            "n_errors": len(self.errors),
            "n_warnings": len(self.warnings),
            "failed_checks": sorted({f.check for f in self.errors}),
            "structural": [f.to_dict() for f in self.structural],
            "sampling": [f.to_dict() for f in self.sampling],
            "sampler": self.sampler,
        })

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


# ----------------------------------------------------------------------------- helpers


def _stacked(da: xr.DataArray) -> np.ndarray:
    """Draws of ``da`` with chains and draws merged, shape (S, ...)."""
    values = da.transpose("chain", "draw", ...).to_numpy()
    return values.reshape(-1, *values.shape[2:])


def _entry_labels(da: xr.DataArray) -> list[str]:
    """Labels ``name[c1, c2]`` of the entries of ``da`` (without chain and draw)."""
    dims = [d for d in da.dims if d not in ("chain", "draw")]
    if not dims:
        return [str(da.name)]
    coords = [[str(v) for v in da[d].to_numpy()] if d in da.coords else
              [str(i) for i in range(da.sizes[d])] for d in dims]
    grid = np.array(np.meshgrid(*coords, indexing="ij")).reshape(len(dims), -1).T
    return [f"{da.name}[{', '.join(row)}]" for row in grid]


def _worst(values: np.ndarray, labels: Sequence[str], k: int = 5, largest: bool = True
           ) -> list[str]:
    """Labels of the ``k`` largest (or smallest) finite values."""
    finite = np.flatnonzero(np.isfinite(values))
    order = finite[np.argsort(values[finite])]
    if largest:
        order = order[::-1]
    return [labels[i] for i in order[:k]]


def _quiet_rhat_ess(ds: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset, xr.Dataset]:
    """``arviz_stats`` rank R-hat, bulk ESS and tail ESS of ``ds`` (constant entries give
    ``nan`` silently)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return (arviz_stats.rhat(ds), arviz_stats.ess(ds, method="bulk"),
                arviz_stats.ess(ds, method="tail"))


def _per_variable(ds: xr.Dataset, stat: xr.Dataset, reduce: str) -> dict[str, float]:
    """Max (``reduce="max"``) or min of ``stat`` over the varying entries of each variable."""
    out = {}
    for name in ds.data_vars:
        masked = stat[name].where(_varies(ds[name]))
        value = masked.max() if reduce == "max" else masked.min()
        out[str(name)] = float(value)
    return out


def _tree_of(fitted: Any) -> tuple[xr.DataTree, Any, str]:
    """(tree, model or None, source label) of a SlothModel, DataTree or file path."""
    import os

    if isinstance(fitted, xr.DataTree):
        return fitted, None, "<DataTree>"
    if isinstance(fitted, str | os.PathLike):
        return read_posterior(fitted), None, os.fspath(fitted)
    tree = getattr(fitted, "idata_", None)
    if isinstance(tree, xr.DataTree):
        return tree, fitted, "<model>"
    raise TypeError(
        f"diagnose expects a fitted SlothModel, an xarray.DataTree or a posterior file path, "
        f"got {type(fitted).__name__}; fit a model first or load one with SlothModel.load(path)"
    )


def _config(tree: xr.DataTree) -> dict[str, Any]:
    """The saved model settings (``{}`` when absent)."""
    try:
        return model_config(tree)
    except DataValidationError:
        return {}


def _anchors(tree: xr.DataTree) -> list[str] | None:
    try:
        anchors = json.loads(tree.attrs["anchors"])
    except (KeyError, TypeError, ValueError):
        return None
    return [str(a) for a in anchors] if anchors is not None else None


# ----------------------------------------------------------------------------- invariants


def family_covariance(post: xr.Dataset) -> np.ndarray:
    """Covariance of the family efficiencies per draw, shape (chain, draw, d, d).

    ``Sigma = diag(tau) Omega diag(tau)`` from ``family_scale`` and ``family_corr``; the
    empirical covariance of ``family_efficiency`` across families when those are absent.
    """
    if "family_scale" in post and "family_corr" in post:
        tau = post["family_scale"].transpose("chain", "draw", "skill").to_numpy()
        corr = post["family_corr"].transpose("chain", "draw", "skill", "skill_other").to_numpy()
        return tau[..., :, None] * corr * tau[..., None, :]
    eff = post["family_efficiency"].transpose("chain", "draw", "family", "skill").to_numpy()
    centred = eff - eff.mean(axis=-2, keepdims=True)
    return np.einsum("cdfk,cdfl->cdkl", centred, centred) / max(eff.shape[-2] - 1, 1)


def invariant_quantities(tree: xr.DataTree, *, include_mean_score: bool = True) -> xr.Dataset:
    """Posterior quantities unchanged by rotations, sign flips and the choice of anchors.

    With ``theta -> A theta`` (any invertible ``A``: rotation, sign flip, permutation or a
    change of anchors) the loadings become ``Lambda A^-1``, the slopes ``B A^T`` and the family
    covariance ``A Sigma A^T``; these products do not change:

    - ``loading_covariance`` (chain, draw, benchmark, benchmark_other): ``Lambda Sigma
      Lambda^T``, the covariance of the benchmarks' logits across the family population;
    - ``communality`` (chain, draw, benchmark): its diagonal, the family-level variance of each
      benchmark's logit;
    - ``covariate_effect`` (chain, draw, benchmark, covariate): ``Lambda B^T``, the effect of
      each standardized covariate on each benchmark's logit;
    - ``mean_score`` (chain, draw, model, benchmark): the fitted means (if present and
      ``include_mean_score``).

    Parameters
    ----------
    tree : xarray.DataTree
        A fit's posterior (see :func:`sloth.posterior.build_datatree`).
    include_mean_score : bool, default True

    Returns
    -------
    xarray.Dataset
    """
    post = tree["posterior"].to_dataset()
    loading = post["loading"].transpose("chain", "draw", "benchmark", "skill").to_numpy()
    slope = post["skill_slope"].transpose("chain", "draw", "covariate", "skill").to_numpy()
    sigma = family_covariance(post)
    cov = np.einsum("cdjk,cdkl,cdml->cdjm", loading, sigma, loading)
    effect = np.einsum("cdjk,cdpk->cdjp", loading, slope)
    bench = post["benchmark"].to_numpy()
    coords = {"chain": post["chain"].to_numpy(), "draw": post["draw"].to_numpy(),
              "benchmark": bench, "benchmark_other": bench,
              "covariate": post["covariate"].to_numpy()}
    out = xr.Dataset(
        {
            "loading_covariance": (("chain", "draw", "benchmark", "benchmark_other"), cov),
            "communality": (("chain", "draw", "benchmark"),
                            np.diagonal(cov, axis1=-2, axis2=-1)),
            "covariate_effect": (("chain", "draw", "benchmark", "covariate"), effect),
        },
        coords=coords,
    )
    if include_mean_score and "mean_score" in post:
        out["mean_score"] = post["mean_score"].transpose("chain", "draw", "model", "benchmark")
    return out


# ----------------------------------------------------------------------------- checks


def _check_sampler(tree: xr.DataTree, th: DiagnosticThresholds) -> list[Finding]:
    """Divergences, maximum tree depth and E-BFMI."""
    stats = tree["sample_stats"]
    findings = []
    diverging = np.asarray(stats["diverging"]) if "diverging" in stats else None
    if diverging is not None:
        n_div, total = int(diverging.sum()), int(diverging.size)
        per_chain = diverging.reshape(diverging.shape[0], -1).sum(axis=1).tolist()
        frac = n_div / max(total, 1)
        details = {"divergences": n_div, "draws": total, "fraction": frac,
                   "per_chain": per_chain}
        if n_div == 0:
            findings.append(Finding("divergences", "ok", f"no divergent transitions in {total}"
                                    " draws", details))
        else:
            severity: Severity = "error" if frac > th.divergence_error_fraction else "warning"
            findings.append(Finding(
                "divergences", severity,
                f"{n_div} divergent transitions ({frac:.2%} of draws; per chain {per_chain}): "
                "the sampler missed regions of high curvature, so the posterior may be biased."
                " Fix: raise target_accept (e.g. 0.95-0.99), fit fewer skills, or choose "
                "better-observed anchors",
                details,
            ))
    if "n_steps" in stats and "tree_depth" in stats:
        steps = np.asarray(stats["n_steps"])
        depth = np.asarray(stats["tree_depth"])
        hits = float((depth >= depth.max()).mean()) if steps.max() >= 1023 else 0.0
        details = {"max_tree_depth_fraction": hits, "mean_leapfrog_steps": float(steps.mean())}
        if hits > th.tree_depth_warn:
            findings.append(Finding(
                "tree_depth", "warning",
                f"{hits:.0%} of the draws hit the maximum tree depth ({steps.mean():.0f} "
                "leapfrog steps per draw on average): the posterior has long ridges, typical of"
                " weakly identified loadings or slopes. Fix: see the contraction and "
                "slope_efficiency checks; fewer skills or a dense mass matrix may help",
                details,
            ))
        else:
            findings.append(Finding(
                "tree_depth", "ok",
                f"{steps.mean():.0f} leapfrog steps per draw on average, "
                f"{hits:.0%} at the maximum depth", details,
            ))
    if "energy" in stats:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            bfmi = np.atleast_1d(np.asarray(
                arviz_stats.bfmi(stats["energy"].astype(float))
            ).astype(float))
        low = float(np.nanmin(bfmi)) if np.isfinite(bfmi).any() else float("nan")
        details = {"bfmi_per_chain": [float(b) for b in bfmi], "bfmi_min": low}
        if np.isfinite(low) and low < th.bfmi_warn:
            findings.append(Finding(
                "ebfmi", "warning",
                f"E-BFMI {low:.2f} (below {th.bfmi_warn}) in chain(s) "
                f"{[int(i) for i in np.flatnonzero(bfmi < th.bfmi_warn)]}: momentum resampling "
                "barely moves the energy, typical of heavy tails or funnels (e.g. small family "
                "scales). Fix: try family_parametrization='non_centered' or more warm-up",
                details,
            ))
        else:
            findings.append(Finding("ebfmi", "ok", f"lowest E-BFMI per chain {low:.2f}",
                                    details))
    return findings


@dataclass
class _Convergence:
    """R-hat and ESS computed once per :func:`diagnose` call.

    ``ds``: raw posterior variables and ``mean_score`` (chain, draw, ...); ``rhat``,
    ``ess_bulk``, ``ess_tail``: their ``arviz_stats`` diagnostics; ``invariants`` and
    ``inv_rhat``: the rotation-invariant quantities and their R-hat.
    """

    ds: xr.Dataset
    rhat: xr.Dataset
    ess_bulk: xr.Dataset
    ess_tail: xr.Dataset
    invariants: xr.Dataset
    inv_rhat: xr.Dataset

    @classmethod
    def compute(cls, tree: xr.DataTree) -> _Convergence:
        post = tree["posterior"].to_dataset()
        names = [v for v in post.data_vars
                 if v != "skills" and {"chain", "draw"} <= set(post[v].dims)]
        ds = post[names]
        rhat, ess_bulk, ess_tail = _quiet_rhat_ess(ds)
        invariants = invariant_quantities(tree, include_mean_score=False)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            inv_rhat = arviz_stats.rhat(invariants)
        return cls(ds, rhat, ess_bulk, ess_tail, invariants, inv_rhat)

    def table(self) -> dict[str, dict[str, float]]:
        """:func:`convergence_table` of the fit."""
        names = [v for v in IDENTIFIED_VARIABLES if v in self.ds]
        return _table_from_stats(self.ds, self.rhat, self.ess_bulk, self.ess_tail, names)


def _check_convergence(conv: _Convergence, th: DiagnosticThresholds) -> list[Finding]:
    """R-hat and ESS of the raw parameters and R-hat of the invariant quantities."""
    ds, rhat = conv.ds, conv.rhat
    raw_names = [str(v) for v in ds.data_vars if v not in _NOT_RAW]
    raw = ds[raw_names]
    n_chains = int(ds.sizes["chain"])
    raw_rhat = _per_variable(raw, rhat, "max")
    bulk = _per_variable(ds, conv.ess_bulk, "min")
    tail = _per_variable(ds, conv.ess_tail, "min")
    inv_rhat = _per_variable(conv.invariants, conv.inv_rhat, "max")
    if "mean_score" in ds:
        inv_rhat["mean_score"] = _per_variable(ds[["mean_score"]], rhat, "max")["mean_score"]

    findings = []
    worst_raw = max(raw_rhat, key=lambda k: np.nan_to_num(raw_rhat[k], nan=-1.0))
    worst_val = raw_rhat[worst_raw]
    loading_rhat = raw_rhat.get("loading", float("nan"))
    inv_worst = max(inv_rhat, key=lambda k: np.nan_to_num(inv_rhat[k], nan=-1.0))
    inv_val = inv_rhat[inv_worst]
    labels = {k: _worst(rhat[k].where(_varies(raw[k])).to_numpy().ravel(),
                        _entry_labels(raw[k]), 3) for k in raw_names}
    details = {"rhat_max": raw_rhat, "worst_entries": labels}

    def severity_of(value: float) -> Severity:
        if not np.isfinite(value) or value <= th.rhat_warn:
            return "ok"
        return "error" if value > th.rhat_error else "warning"

    sev = severity_of(worst_val)
    if sev == "ok":
        findings.append(Finding("rhat", "ok", f"R-hat <= {worst_val:.3f} for every raw "
                                f"parameter (loadings {loading_rhat:.3f})", details))
    else:
        inv_sev = severity_of(inv_val)
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
        findings.append(Finding(
            "rhat", sev,
            f"worst R-hat {worst_val:.3f} on {worst_raw} ({', '.join(labels[worst_raw])}); "
            f"loadings {loading_rhat:.3f}: {why}",
            details,
        ))
    inv_details = {"rhat_max": inv_rhat, "raw_loading_rhat": loading_rhat}
    sev = severity_of(inv_val)
    if sev == "ok":
        findings.append(Finding(
            "rhat_invariant", "ok",
            f"R-hat <= {inv_val:.3f} on rotation-invariant quantities (Lambda Sigma Lambda^T, "
            f"communalities, Lambda B^T, fitted means), against {loading_rhat:.3f} on the raw "
            "loadings", inv_details,
        ))
    elif sev == "warning":
        findings.append(Finding(
            "rhat_invariant", "warning",
            f"R-hat {inv_val:.3f} on {inv_worst} (rotation-invariant; raw loadings "
            f"{loading_rhat:.3f}), slightly above {th.rhat_warn}. Fix: more warm-up and draws",
            inv_details,
        ))
    else:
        findings.append(Finding(
            "rhat_invariant", "error",
            f"R-hat {inv_val:.3f} on {inv_worst} even though it is invariant to rotations and "
            f"sign flips (raw loadings {loading_rhat:.3f}): chains disagree about the fit "
            "itself. Fix: more warm-up and draws, fewer skills, or check the structural "
            "findings",
            inv_details,
        ))

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
        findings.append(Finding("ess", "error", f"{text}, below {error_at:.0f}: the chains "
                                "barely moved. Fix: many more draws, or fix the geometry "
                                "(see the other checks)", details))
    elif lowest < warn_at:
        findings.append(Finding("ess", "warning", f"{text}, below {warn_at:.0f} "
                                f"({th.ess_per_chain_warn:.0f} per chain): intervals are "
                                "imprecise. Fix: more draws (num_samples)", details))
    else:
        findings.append(Finding("ess", "ok", text, details))
    return findings


def _procrustes(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Orthogonal ``R`` (d, d) minimizing ``||source R - target||_F``."""
    u, _, vt = np.linalg.svd(source.T @ target)
    return u @ vt


def _describe_rotation(rot: np.ndarray, skills: Sequence[str]) -> str:
    """Words for an orthogonal matrix: sign flips, a permutation, or a rotation angle."""
    d = rot.shape[0]
    big = np.abs(rot) > 0.9
    if big.sum(axis=0).tolist() == [1] * d and big.sum(axis=1).tolist() == [1] * d:
        perm = np.argmax(np.abs(rot), axis=0)  # column k of the target <- skill perm[k]
        flips = [skills[k] for k in range(d) if rot[perm[k], k] < 0]
        moved = [(skills[perm[k]], skills[k]) for k in range(d) if perm[k] != k]
        parts = []
        if flips:
            parts.append(f"sign flip of {', '.join(flips)}")
        if moved:
            parts.append("permutation " + ", ".join(f"{a}->{b}" for a, b in moved))
        return " and ".join(parts) if parts else "identity"
    cos = np.clip((np.trace(rot) - (d - 2)) / 2.0, -1.0, 1.0) if d >= 2 else 1.0
    return f"rotation of the skills (about {np.degrees(np.arccos(cos)):.0f} degrees)"


def chain_alignment(tree: xr.DataTree) -> dict[str, Any]:
    """Compare per-chain mean loadings, raw and after an orthogonal Procrustes alignment.

    Each chain's mean loading matrix (J, d) is compared with that of the reference chain
    (the medoid: the chain closest to the others). The mismatch is the root mean square of
    the differences of the free loadings in units of their posterior standard deviation (all
    chains pooled: about 0.1 for agreeing chains, above 1 for chains in different places); a
    chain that matches only after the rotation ``R`` (orthogonal Procrustes) differs by a sign
    flip, permutation or rotation of the skills.

    Returns
    -------
    dict
        ``reference`` (chain index), and per chain ``mismatch``, ``aligned_mismatch``,
        ``rotation`` (d x d list) and ``transform`` (words).
    """
    post = tree["posterior"]
    loading = post["loading"].transpose("chain", "draw", "benchmark", "skill").to_numpy()
    skills = [str(s) for s in post["skill"].to_numpy()]
    means = loading.mean(axis=1)  # (C, J, d)
    total_sd = loading.std(axis=(0, 1))  # (J, d), over all chains and draws
    free = total_sd > 1e-6 * (1.0 + np.abs(loading.mean(axis=(0, 1))))
    rows = free.any(axis=1)
    scale = np.where(free, total_sd, 1.0)
    n_chains = means.shape[0]

    def mismatch(a: np.ndarray, b: np.ndarray) -> float:
        if not free.any():
            return 0.0
        return float(np.sqrt(np.mean(((a - b) / scale)[free] ** 2)))

    dist = np.array([[mismatch(means[a], means[b]) for b in range(n_chains)]
                     for a in range(n_chains)])
    ref = int(np.argmin(dist.sum(axis=1)))
    chains = []
    for c in range(n_chains):
        rot = _procrustes(means[c][rows], means[ref][rows]) if rows.any() else np.eye(
            means.shape[2])
        aligned = means[c] @ rot
        aligned_mm = mismatch(np.where(rows[:, None], aligned, means[ref]), means[ref])
        chains.append({
            "chain": c, "mismatch": dist[c, ref], "aligned_mismatch": aligned_mm,
            "rotation": np.round(rot, 4).tolist(), "transform": _describe_rotation(rot, skills),
        })
    return {"reference": ref, "chains": chains}


def _check_chain_alignment(tree: xr.DataTree, th: DiagnosticThresholds) -> list[Finding]:
    """Chains whose loadings differ by a sign flip, rotation, or beyond a rotation."""
    if int(tree["posterior"].sizes["chain"]) < 2:
        return [Finding("chain_alignment", "ok", "one chain: nothing to compare")]
    result = chain_alignment(tree)
    ref = result["reference"]
    flipped, apart = [], []
    for c in result["chains"]:
        if c["chain"] == ref or c["mismatch"] <= th.chain_mismatch:
            continue
        if c["aligned_mismatch"] <= max(th.chain_mismatch, 0.5 * c["mismatch"]):
            flipped.append(c)
        else:
            apart.append(c)
    if not flipped and not apart:
        worst = max(c["mismatch"] for c in result["chains"])
        return [Finding(
            "chain_alignment", "ok",
            f"every chain's mean loadings match chain {ref}'s within {worst:.2f} posterior sd",
            result,
        )]
    findings = []
    if flipped:
        text = "; ".join(f"chain {c['chain']}: {c['transform']} (mismatch {c['mismatch']:.1f}"
                         f" sd, {c['aligned_mismatch']:.1f} after alignment)" for c in flipped)
        findings.append(Finding(
            "chain_alignment", "error",
            f"chains differ from chain {ref} by a sign flip or rotation of the skills: {text}."
            " The pooled draws mix equivalent solutions. Fix: choose anchors that pin each "
            "skill (well-observed benchmarks that load on it) or let sloth choose them",
            result,
        ))
    if apart:
        text = "; ".join(f"chain {c['chain']} (mismatch {c['mismatch']:.1f} sd, "
                         f"{c['aligned_mismatch']:.1f} after alignment)" for c in apart)
        findings.append(Finding(
            "chain_alignment", "error",
            f"chains sit in different modes, not related by a rotation: {text}. Fix: check the "
            "anchors and structural findings, use fewer skills, or more warm-up",
            result,
        ))
    return findings


def prior_variances(priors: dict[str, float], n_skills: int) -> dict[str, float]:
    """Marginal prior variance of one entry of each parameter group.

    Parameters
    ----------
    priors : dict
        Prior scales (:data:`sloth.model.DEFAULT_PRIORS` updated by the fit's overrides).
    n_skills : int
        Number of skills d (the LKJ marginal depends on it).

    Returns
    -------
    dict
        Group name -> variance. ``family_efficiency``: ``E[tau^2] = s^2`` under
        ``tau ~ HalfNormal(s)``; ``family_corr``: ``1 / (2 eta + d - 1)`` for an LKJ(eta)
        off-diagonal entry; ``noise_df``: ``2 / rate^2`` of Gamma(2, rate).
    """
    half = 1.0 - 2.0 / np.pi
    out = {
        "skill_slope": priors["skill_slope_scale"] ** 2,
        "loading": priors["loading_scale"] ** 2,
        "family_efficiency": priors["family_scale_scale"] ** 2,
        "family_scale": priors["family_scale_scale"] ** 2 * half,
        "family_corr": 1.0 / (2.0 * priors["family_corr_concentration"] + n_skills - 1.0),
        "intercept": priors["intercept_scale"] ** 2,
        "noise_scale": priors["noise_scale_scale"] ** 2 * half,
        "noise_df": 2.0 / priors["noise_df_rate"] ** 2,
    }
    if "link_shape_scale" in priors:
        s2 = priors["link_shape_scale"] ** 2
        out["link_shape"] = float((np.exp(s2) - 1.0) * np.exp(s2))
    if "link_ceiling_a" in priors and "link_ceiling_b" in priors:
        a, b = priors["link_ceiling_a"], priors["link_ceiling_b"]
        out["link_ceiling"] = a * b / ((a + b) ** 2 * (a + b + 1.0))
    return {k: float(v) for k, v in out.items()}


def contraction(tree: xr.DataTree, priors: dict[str, float] | None = None
                ) -> dict[str, dict[str, Any]]:
    """Prior-to-posterior contraction ``1 - var_post / var_prior`` per parameter group.

    Near 1: the data pin the parameter; near 0 (or negative): the posterior is about as wide
    as the prior. Structural constants (anchor loadings, the correlation diagonal) are left
    out.

    Parameters
    ----------
    tree : xarray.DataTree
    priors : dict, optional
        Prior scales (default: the fit's saved configuration, else
        :data:`sloth.model.DEFAULT_PRIORS`).

    Returns
    -------
    dict
        Group -> ``{"prior_var", "min", "median", "values" (dict entry label -> contraction)}``.
    """
    config = _config(tree)
    merged = {**DEFAULT_PRIORS, **(config.get("priors") or {}), **(priors or {})}
    post = tree["posterior"]
    d = int(post.sizes.get("skill", 1))
    prior_var = prior_variances(merged, d)
    out: dict[str, dict[str, Any]] = {}
    for group in CONTRACTION_GROUPS:
        if group not in post or group not in prior_var:
            continue
        da = post[group]
        draws = _stacked(da).reshape(-1, int(np.prod(da.shape[2:], dtype=int)))
        var = draws.var(axis=0)
        labels = _entry_labels(da)
        keep = var > 1e-14
        if group == "family_corr":  # upper triangle only
            k = da.sizes["skill"]
            upper = np.triu(np.ones((k, k), dtype=bool), 1).ravel()
            keep &= upper
        if not keep.any():
            continue
        values = 1.0 - var[keep] / prior_var[group]
        out[group] = {
            "prior_var": prior_var[group],
            "min": float(values.min()),
            "median": float(np.median(values)),
            "values": dict(zip([lb for lb, k in zip(labels, keep, strict=True) if k],
                               values.tolist(), strict=True)),
        }
    return out


def _check_contraction(tree: xr.DataTree, th: DiagnosticThresholds) -> list[Finding]:
    """Parameters the data barely move from their prior."""
    result = contraction(tree)
    summary = {g: {"min": round(v["min"], 4), "median": round(v["median"], 4),
                   "prior_var": v["prior_var"]} for g, v in result.items()}
    weak_core: dict[str, list[str]] = {}
    weak_other: dict[str, list[str]] = {}
    for group, v in result.items():
        weak = [k for k, c in v["values"].items() if c < th.min_contraction]
        if weak:
            (weak_core if group in CORE_GROUPS else weak_other)[group] = weak
    details = {"groups": summary, "weak": {**weak_core, **weak_other},
               "threshold": th.min_contraction}
    med = ", ".join(f"{g} {v['median']:.2f}" for g, v in summary.items())
    if weak_core:
        parts = "; ".join(f"{g}: {len(w)} of {len(result[g]['values'])} "
                          f"({', '.join(w[:4])}{', ...' if len(w) > 4 else ''})"
                          for g, w in weak_core.items())
        return [Finding(
            "contraction", "warning",
            f"the data barely move some skill parameters from their prior (contraction < "
            f"{th.min_contraction}): {parts}. Their posterior is the prior's: do not interpret "
            "them. Fix: fewer skills, other anchors, or more data (families, benchmarks, "
            f"models at other sizes). Median contraction per group: {med}",
            details,
        )]
    note = ""
    if weak_other:
        note = (" (weakly informed nuisance parameters: "
                + "; ".join(f"{g} {len(w)}" for g, w in weak_other.items()) + ")")
    return [Finding(
        "contraction", "ok",
        f"the data move every skill parameter from its prior; median contraction per group: "
        f"{med}{note}", details,
    )]


def slope_efficiency(tree: xr.DataTree) -> dict[str, dict[str, float]]:
    """How much the family efficiencies explain of each shared slope's posterior.

    For each slope ``B[p, k]``: the largest absolute posterior correlation with one family's
    efficiency ``alpha[f, k]`` on the same skill, and the R^2 of regressing the slope's draws
    on all families' efficiencies of that skill (``nan`` with fewer draws than families + 3).
    A covariate that varies mostly between families gives R^2 near 1: its slope and the
    efficiencies trade off, and only the family population separates them.

    Returns
    -------
    dict
        ``"skill_slope[covariate, skill]"`` -> ``{"max_abs_corr", "family", "r2", "mean",
        "sd"}`` (posterior mean and sd of the slope).
    """
    post = tree["posterior"]
    slope = _stacked(post["skill_slope"].transpose("chain", "draw", "covariate", "skill"))
    eff = _stacked(post["family_efficiency"].transpose("chain", "draw", "family", "skill"))
    covs = [str(c) for c in post["covariate"].to_numpy()]
    skills = [str(s) for s in post["skill"].to_numpy()]
    families = [str(f) for f in post["family"].to_numpy()]
    n_draws, n_fam = eff.shape[0], eff.shape[1]
    out = {}
    for k, skill in enumerate(skills):
        e = eff[:, :, k] - eff[:, :, k].mean(axis=0)
        e_sd = e.std(axis=0)
        for p, cov in enumerate(covs):
            s = slope[:, p, k] - slope[:, p, k].mean()
            s_sd = s.std()
            if s_sd < 1e-12:
                continue
            with np.errstate(all="ignore"):
                corr = (e * s[:, None]).mean(axis=0) / (e_sd * s_sd)
            corr = np.where(e_sd > 1e-12, corr, 0.0)
            best = int(np.argmax(np.abs(corr)))
            r2 = float("nan")
            if n_draws >= n_fam + 3:
                coef, *_ = np.linalg.lstsq(e, s, rcond=None)
                resid = s - e @ coef
                r2 = float(1.0 - resid @ resid / (s @ s))
            out[f"skill_slope[{cov}, {skill}]"] = {
                "max_abs_corr": float(abs(corr[best])), "family": families[best], "r2": r2,
                "mean": float(slope[:, p, k].mean()), "sd": float(s_sd),
            }
    return out


def _check_slope_efficiency(tree: xr.DataTree, th: DiagnosticThresholds) -> list[Finding]:
    """Shared slopes the family efficiencies explain almost entirely."""
    result = slope_efficiency(tree)
    if not result:
        return []
    traded = {k: v for k, v in result.items()
              if np.isfinite(v["r2"]) and v["r2"] > th.slope_efficiency_r2}
    # A trade-off matters when the slope is left undetermined: its sign is not pinned.
    confounded = {k: v for k, v in traded.items() if abs(v["mean"]) < 2.0 * v["sd"]}
    top = max(result, key=lambda k: result[k]["max_abs_corr"])
    details = {"slopes": result, "threshold_r2": th.slope_efficiency_r2,
               "traded_off": sorted(traded), "undetermined": sorted(confounded)}
    if confounded:
        text = "; ".join(f"{k} = {v['mean']:.2f} +- {v['sd']:.2f} (R^2 {v['r2']:.2f}; |corr| "
                         f"{v['max_abs_corr']:.2f} with {v['family']})"
                         for k, v in confounded.items())
        return [Finding(
            "slope_efficiency", "warning",
            f"the family efficiencies explain most of the posterior of {text}, and its sign is"
            " not determined: the data cannot tell how the skill grows with that covariate "
            "from which families are efficient. Fix: add models of a family at several "
            "sizes/token counts, or more families",
            details,
        )]
    r2s = [v["r2"] for v in result.values() if np.isfinite(v["r2"])]
    r2_text = f"; largest R^2 on all efficiencies {max(r2s):.2f}" if r2s else ""
    note = ""
    if traded:
        note = (f"; {', '.join(sorted(traded))} trade off against the efficiencies (varies "
                "mostly between families) but the family population pins them")
    return [Finding(
        "slope_efficiency", "ok",
        f"shared slopes are told apart from family efficiencies (largest |corr| "
        f"{result[top]['max_abs_corr']:.2f}, {top} with {result[top]['family']}{r2_text}{note})",
        details,
    )]


def fitted_signal(tree: xr.DataTree) -> dict[str, float]:
    """Squared correlation of posterior-mean fitted means and observed scores per benchmark
    (``nan`` with fewer than three observed scores)."""
    post = tree["posterior"]
    observed = tree["observed_data"]["scores"].transpose("model", "benchmark").to_numpy()
    fitted = post["mean_score"].mean(("chain", "draw")).transpose("model", "benchmark")
    fitted = fitted.to_numpy()
    out = {}
    for j, name in enumerate(str(b) for b in post["benchmark"].to_numpy()):
        rows = ~np.isnan(observed[:, j])
        if rows.sum() < 3 or observed[rows, j].std() < 1e-12 or fitted[rows, j].std() < 1e-12:
            out[name] = float("nan") if rows.sum() < 3 else 0.0
            continue
        out[name] = float(np.corrcoef(observed[rows, j], fitted[rows, j])[0, 1] ** 2)
    return out


def _check_signal(tree: xr.DataTree, anchors: Sequence[str] | None,
                  th: DiagnosticThresholds) -> list[Finding]:
    """Anchors (error) and other benchmarks (warning) whose fitted means explain little."""
    if "observed_data" not in tree.children or "mean_score" not in tree["posterior"]:
        return []
    r2 = fitted_signal(tree)
    anchor_set = list(anchors or [])
    rounded = {b: None if not np.isfinite(v) else round(v, 4) for b, v in r2.items()}
    findings = []
    if anchor_set:
        silent = [a for a in anchor_set if a in r2 and np.isfinite(r2[a])
                  and r2[a] < th.min_signal]
        details = {"r2": {a: rounded.get(a) for a in anchor_set}, "threshold": th.min_signal}
        if silent:
            findings.append(Finding(
                "anchor_signal", "error",
                f"anchor(s) {', '.join(repr(a) for a in silent)} load on nothing: the fitted "
                f"means explain R^2 = {', '.join(f'{r2[a]:.2f}' for a in silent)} of their "
                "scores, so the skill each pins is noise and the other loadings on it are "
                "arbitrary. Fix: refit with other anchors (or anchors=None)",
                details,
            ))
        else:
            findings.append(Finding(
                "anchor_signal", "ok",
                "every anchor follows its skill (fitted-mean R^2 "
                f"{', '.join(f'{a} {r2[a]:.2f}' for a in anchor_set if a in r2)})", details,
            ))
    others = {b: v for b, v in r2.items() if b not in anchor_set}
    silent = [b for b, v in others.items() if np.isfinite(v) and v < th.min_signal]
    details = {"r2": {b: rounded[b] for b in others}, "threshold": th.min_signal}
    if silent:
        findings.append(Finding(
            "benchmark_signal", "warning",
            f"benchmark(s) {', '.join(repr(b) for b in silent)} are barely explained by the "
            f"skills (fitted-mean R^2 below {th.min_signal}): they load on nothing and only "
            "add noise. Fix: check their scores or drop them",
            details,
        ))
    elif others:
        finite = [v for v in others.values() if np.isfinite(v)]
        low = f"{min(finite):.2f}" if finite else "n/a"
        findings.append(Finding("benchmark_signal", "ok",
                                f"the skills explain every benchmark (lowest R^2 {low})",
                                details))
    return findings


def _structural(tree: xr.DataTree, model: Any) -> list[Finding]:
    """Structural findings of the data a tree was fitted to (empty if it cannot be rebuilt)."""
    config = _config(tree)
    anchors = _anchors(tree)
    if model is not None and hasattr(model, "table_"):
        table = model.table_
    else:
        try:
            table = table_from_tree(tree)
        except (KeyError, ValueError, TypeError):
            return []
    n_skills = int(config.get("n_skills", tree["posterior"].sizes.get("skill", 1)))
    extra = [str(c) for c in config.get("extra_covariates", [])
             if c in table.extra_covariates]
    report = check_structure(table, n_skills, anchors=anchors, extra_covariates=extra)
    return report.findings


#: Post-sampling checks of :func:`diagnose`, in report order.
SAMPLING_CHECKS = (
    "divergences", "tree_depth", "ebfmi", "rhat", "rhat_invariant", "ess", "chain_alignment",
    "contraction", "slope_efficiency", "anchor_signal", "benchmark_signal",
)


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
        (JSON-able). Sampling checks: ``divergences``, ``tree_depth``, ``ebfmi``, ``rhat``,
        ``rhat_invariant``, ``ess``, ``chain_alignment``, ``contraction``,
        ``slope_efficiency``, ``anchor_signal``, ``benchmark_signal``.
    """
    wanted = set(SAMPLING_CHECKS if checks is None else checks)
    unknown = sorted(wanted - set(SAMPLING_CHECKS))
    if unknown:
        raise ValueError(f"checks {unknown} are not known; choose from {list(SAMPLING_CHECKS)}")
    tree, model, source = _tree_of(fitted)
    if "posterior" not in tree.children or "loading" not in tree["posterior"]:
        raise DataValidationError(
            f"{source} has no posterior with loadings: pass a fit from SlothModel.fit or a "
            "file written by 'sloth fit --out'"
        )
    th = thresholds or DiagnosticThresholds()
    sampling: list[Finding] = []
    has_stats = "sample_stats" in tree.children
    if has_stats and wanted & {"divergences", "tree_depth", "ebfmi"}:
        sampling += _check_sampler(tree, th)
    sampler: dict[str, Any] = {}
    if wanted & {"rhat", "rhat_invariant", "ess"}:
        conv = _Convergence.compute(tree)
        sampling += _check_convergence(conv, th)
        if has_stats:
            with contextlib.suppress(KeyError, ValueError):
                sampler = sampler_summary(tree, conv.table())
    if "chain_alignment" in wanted:
        sampling += _check_chain_alignment(tree, th)
    if "contraction" in wanted:
        sampling += _check_contraction(tree, th)
    if "slope_efficiency" in wanted:
        sampling += _check_slope_efficiency(tree, th)
    if wanted & {"anchor_signal", "benchmark_signal"}:
        sampling += _check_signal(tree, _anchors(tree), th)
    sampling = [f for f in sampling if f.check in wanted]
    struct = _structural(tree, model) if structural else []
    return DiagnosticReport(structural=struct, sampling=sampling, sampler=sampler,
                            source=source)
