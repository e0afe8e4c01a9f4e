"""Identification of the skills: what the data pin down beyond the sampler's convergence.

- ``rhat_invariant``: R-hat of quantities no rotation, sign flip or anchor choice changes
  (``Lambda Sigma Lambda^T``, communalities, ``Lambda B^T``, fitted means): chains that agree
  on these but not on the loadings differ by the identification, not by the fit;
- ``chain_alignment``: per-chain mean loadings compared with orthogonal Procrustes, to tell
  sign flips, permutations and rotations of the skills from genuinely different modes;
- ``contraction``: ``1 - posterior var / prior var`` per parameter group, the prior
  variances read from the model's own priors (:func:`sloth.model.priors.prior_distributions`);
- ``slope_efficiency``: how much of each shared slope's posterior the family efficiencies
  explain (a trade-off the data do not resolve);
- ``anchor_signal``, ``benchmark_signal``: how much of each benchmark's observed scores the
  fitted means explain (an anchor that loads on nothing pins its skill to noise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from sloth.checks.convergence import quiet, rhat_severity
from sloth.checks.draws import (
    entry_labels,
    fit_setting,
    masked_extreme,
    stacked_draws,
    varying_entries,
)
from sloth.checks.findings import Finding
from sloth.checks.thresholds import DiagnosticThresholds
from sloth.model.priors import DEFAULT_PRIORS, prior_distributions

__all__ = [
    "CONTRACTION_GROUPS",
    "CORE_GROUPS",
    "chain_alignment",
    "check_chain_alignment",
    "check_contraction",
    "check_rhat_invariant",
    "check_signal",
    "check_slope_efficiency",
    "contraction",
    "family_covariance",
    "fitted_signal",
    "invariant_quantities",
    "invariant_rhat",
    "prior_variances",
    "slope_efficiency",
]

#: Parameter groups whose contraction is reported, in order.
CONTRACTION_GROUPS = (
    "skill_slope", "loading", "family_efficiency", "family_scale", "family_corr", "intercept",
    "noise_scale", "noise_df", "link_shape", "link_ceiling",
)

#: Groups that carry the skill structure; weak contraction elsewhere is only reported.
CORE_GROUPS = ("skill_slope", "loading", "family_efficiency", "family_scale")

#: Posterior group -> the model's sample site whose prior it has.
_PRIOR_SITES = {
    "skill_slope": "skill_slope", "loading": "loading_free", "family_scale": "family_scale",
    "intercept": "intercept", "noise_scale": "noise_scale", "noise_df": "noise_df",
    "link_shape": "link_shape", "link_ceiling": "link_ceiling",
}


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



def invariant_rhat(tree: xr.DataTree, *, mean_score_rhat: float | None = None
                   ) -> dict[str, float]:
    """Worst R-hat of each rotation-invariant quantity (:func:`invariant_quantities`).

    Parameters
    ----------
    tree : xarray.DataTree
    mean_score_rhat : float, optional
        Worst R-hat of the fitted means when already computed (they are invariant too, and
        most of the cost); computed here otherwise.

    Returns
    -------
    dict
        Quantity -> worst R-hat over its entries that vary.
    """
    import arviz_stats  # here: its import (scipy.stats) costs a forecast a second

    quantities = invariant_quantities(tree, include_mean_score=mean_score_rhat is None)
    rhat = quiet(arviz_stats.rhat, quantities)
    out = {str(name): masked_extreme(rhat[name], varying_entries(quantities[name]))
           for name in quantities.data_vars}
    if mean_score_rhat is not None:
        out["mean_score"] = float(mean_score_rhat)
    return out


def check_rhat_invariant(inv_rhat: Mapping[str, float], loading_rhat: float,
                         th: DiagnosticThresholds) -> list[Finding]:
    """R-hat of the rotation-invariant quantities, against that of the raw loadings."""
    if not inv_rhat:
        return []
    inv_worst = max(inv_rhat, key=lambda k: np.nan_to_num(inv_rhat[k], nan=-1.0))
    inv_val = inv_rhat[inv_worst]
    details = {"rhat_max": dict(inv_rhat), "raw_loading_rhat": loading_rhat}
    sev = rhat_severity(inv_val, th)
    if sev == "ok":
        return [Finding(
            "rhat_invariant", "ok",
            f"R-hat <= {inv_val:.3f} on rotation-invariant quantities (Lambda Sigma Lambda^T, "
            f"communalities, Lambda B^T, fitted means), against {loading_rhat:.3f} on the raw "
            "loadings", details,
        )]
    if sev == "warning":
        return [Finding(
            "rhat_invariant", "warning",
            f"R-hat {inv_val:.3f} on {inv_worst} (rotation-invariant; raw loadings "
            f"{loading_rhat:.3f}), slightly above {th.rhat_warn}. Fix: more warm-up and draws",
            details,
        )]
    return [Finding(
        "rhat_invariant", "error",
        f"R-hat {inv_val:.3f} on {inv_worst} even though it is invariant to rotations and "
        f"sign flips (raw loadings {loading_rhat:.3f}): chains disagree about the fit "
        "itself. Fix: more warm-up and draws, fewer skills, or check the structural "
        "findings",
        details,
    )]


# ----------------------------------------------------------------------------- chains


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


def check_chain_alignment(tree: xr.DataTree, th: DiagnosticThresholds) -> list[Finding]:
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


# ----------------------------------------------------------------------------- contraction


def prior_variances(priors: Mapping[str, float], n_skills: int) -> dict[str, float]:
    """Marginal prior variance of one entry of each parameter group.

    Read from the distributions the model samples
    (:func:`sloth.model.priors.prior_distributions`), so that they follow any change of the
    priors.

    Parameters
    ----------
    priors : mapping
        Prior scales (:data:`sloth.model.DEFAULT_PRIORS` updated by the fit's overrides).
    n_skills : int
        Number of skills d (the LKJ marginal depends on it).

    Returns
    -------
    dict
        Group name -> variance. ``loading``: of a free loading; ``noise_df``: of the
        Gamma-distributed site (the posterior's ``noise_df`` is that plus 1, same variance);
        ``family_efficiency``: ``E[tau^2]``, an efficiency being ``tau`` times a standard
        normal (the population's correlation has unit diagonal); ``family_corr`` (d > 1):
        ``1 / (2 eta + d - 1)``, the variance of an off-diagonal entry of an LKJ(eta)
        correlation matrix, whose ``(r + 1) / 2`` is Beta(eta - 1 + d/2, eta - 1 + d/2).
    """
    dists = prior_distributions(priors, n_skills)
    out = {group: float(dists[site].variance) for group, site in _PRIOR_SITES.items()}
    tau = dists["family_scale"]
    out["family_efficiency"] = float(tau.variance + tau.mean**2)
    lkj = dists.get("family_corr_chol")
    if lkj is not None:
        out["family_corr"] = 1.0 / (2.0 * float(lkj.concentration) + lkj.dimension - 1.0)
    return out


def contraction(tree: xr.DataTree, priors: Mapping[str, float] | None = None
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
    merged = {**DEFAULT_PRIORS, **(fit_setting(tree, "priors") or {}), **(priors or {})}
    post = tree["posterior"]
    d = int(post.sizes.get("skill", 1))
    prior_var = prior_variances(merged, d)
    out: dict[str, dict[str, Any]] = {}
    for group in CONTRACTION_GROUPS:
        if group not in post or group not in prior_var:
            continue
        da = post[group]
        draws = stacked_draws(da).reshape(-1, int(np.prod(da.shape[2:], dtype=int)))
        var = draws.var(axis=0)
        labels = entry_labels(da)
        keep = np.asarray(varying_entries(da)).ravel()
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


def check_contraction(tree: xr.DataTree, th: DiagnosticThresholds) -> list[Finding]:
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


# ----------------------------------------------------------------------------- trade-offs


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
    slope = stacked_draws(post["skill_slope"].transpose("chain", "draw", "covariate", "skill"))
    eff = stacked_draws(post["family_efficiency"].transpose("chain", "draw", "family", "skill"))
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


def check_slope_efficiency(tree: xr.DataTree, th: DiagnosticThresholds) -> list[Finding]:
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


# ----------------------------------------------------------------------------- signal


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


def check_signal(tree: xr.DataTree, anchors: Sequence[str] | None,
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
