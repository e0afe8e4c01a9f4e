"""Structural identifiability checks of the latent-skill model, run *before* sampling.

The model (:mod:`sloth.model.skill_model`) explains the scores of ``n`` models from ``F``
families on ``J`` benchmarks by ``d`` latent skills, ``theta_i = alpha_f(i) + B^T x_i``, read
through loadings ``Lambda`` pinned by ``d`` anchor benchmarks. Whether the data can pin
these down is partly visible before any sampling:

``design_rank``
    The covariates ``x`` (log N, log D, their product, extras) must not be constant or
    collinear over the models (else ``B`` is not identified at all), and should vary *within*
    families: a covariate that is constant inside every family is absorbed by the family
    efficiencies ``alpha_f``, so its slope rests entirely on comparing families through the
    population prior.
``benchmarks_per_skill``
    The Ledermann bound of factor analysis, ``(J - d)^2 >= J + d``: fewer benchmarks cannot
    identify ``d`` factors from their covariance (an error); at equality the factors are just
    identified, with no degree of freedom to spare (a warning).
``benchmark_coverage``, ``family_coverage``, ``n_families``
    Benchmarks never or barely observed, families with fewer scores than skills, and too
    few families for the ``d x d`` family population.
``anchors``
    Anchors given by the user must be distinct, observed, and carry signal (a benchmark that
    loads on no skill cannot pin one); the anchor block must be well conditioned.
``benchmark_signal``
    How much of each benchmark's (logit) score variation the leading ``d`` principal
    components of the *other* benchmarks explain: a benchmark near zero loads on nothing.

Use::

    report = check_structure(table, n_skills=3, anchors=["MMLU", "GSM8K", "IFEval"])
    print(report.format())
    report.raise_if_errors()       # IdentifiabilityError on an error, warnings as warnings
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from math import comb
from typing import Any, Self

import numpy as np

from sloth.checks.findings import Finding, Findings, Severity, jsonable
from sloth.data.table import ScoreTable
from sloth.exceptions import IdentifiabilityError, IdentifiabilityWarning, issue_warning
from sloth.model.design import CovariateScaler

__all__ = [
    "Finding",
    "StructuralReport",
    "StructuralThresholds",
    "benchmark_signal",
    "check_structure",
    "ledermann_max_skills",
]

@dataclass(frozen=True)
class StructuralThresholds:
    """Limits of the structural checks.

    Parameters
    ----------
    min_benchmark_scores : int, default 10
        A benchmark with fewer observed scores is *barely observed* (an error for an anchor,
        a warning otherwise); one with none is an error.
    anchor_min_coverage : float, default 0.25
        An anchor observed on a smaller fraction of the models is a warning.
    min_families : int, default 10
        Fewer families is a warning (the family population leans on its prior).
    weak_within_ratio : float, default 0.05
        A covariate whose within-family standard deviation is below this fraction of its
        total standard deviation varies *almost* only between families (warning).
    min_signal : float, default 0.2
        A benchmark whose scores the other benchmarks' leading ``d`` components explain less
        (R^2) than this loads on no skill (an error for an anchor, a warning otherwise).
    min_anchor_distinctness : float, default 0.1
        The anchors measure nearly the same thing (warning) when the smallest eigenvalue of
        the correlation matrix of their common parts (rank-d reconstruction of the logit
        scores) is below this fraction of the best value any ``d`` usable benchmarks reach.
    """

    min_benchmark_scores: int = 10
    anchor_min_coverage: float = 0.25
    min_families: int = 10
    weak_within_ratio: float = 0.05
    min_signal: float = 0.2
    min_anchor_distinctness: float = 0.1


@dataclass
class StructuralReport(Findings):
    """Findings of :func:`check_structure`.

    Attributes
    ----------
    findings : list of Finding
        One or more findings per check, in the order the checks ran.
    n_skills : int
        The number of skills checked.
    anchors : list of str or None
        The anchors checked (``None``: chosen later from the data).
    """

    findings: list[Finding]
    n_skills: int
    anchors: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: ``passed``, ``n_errors``, ``n_warnings``, ``findings``."""
        return jsonable({
            "passed": self.passed,
            "n_skills": self.n_skills,
            "anchors": self.anchors,
            "n_errors": len(self.errors),
            "n_warnings": len(self.warnings),
            "findings": [f.to_dict() for f in self.findings],
        })

    def format(self) -> str:
        """Readable multi-line text, one line per finding."""
        head = (f"Structural checks for {self.n_skills} skill(s): "
                f"{'passed' if self.passed else 'FAILED'} "
                f"({len(self.errors)} error(s), {len(self.warnings)} warning(s))")
        return "\n".join([head, *(f.format() for f in self.findings)])

    def raise_if_errors(self, *, warn: bool = True) -> Self:
        """Raise on errors; otherwise emit the warnings and return ``self``.

        Parameters
        ----------
        warn : bool, default True
            Emit each ``warning`` finding as an :class:`IdentifiabilityWarning`.

        Raises
        ------
        IdentifiabilityError
            When a check reported an error; the message lists every error and its fix.
        """
        if self.errors:
            lines = "\n".join(f"- {f.check}: {f.message}" for f in self.errors)
            raise IdentifiabilityError(
                f"the data cannot identify the model with n_skills={self.n_skills}"
                f"{'' if self.anchors is None else f' and anchors {self.anchors}'}:\n{lines}"
            )
        if warn:
            for f in self.warnings:
                issue_warning(f"{f.check}: {f.message}", IdentifiabilityWarning)
        return self


# ----------------------------------------------------------------------------- helpers


def _names(items: Sequence[str], limit: int = 8) -> str:
    """``'a', 'b', ... (+3 more)``."""
    shown = ", ".join(repr(str(x)) for x in items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def ledermann_max_skills(n_benchmarks: int, *, strict: bool = False) -> int:
    """Largest ``d`` with ``(J - d)^2 >= J + d`` (the Ledermann bound), 0 if none.

    Parameters
    ----------
    n_benchmarks : int
        Number of usable benchmarks J.
    strict : bool
        Require ``(J - d)^2 > J + d``: at equality the skills are just identified, with no
        degree of freedom to spare (six benchmarks and three skills).
    """
    def holds(d: int) -> bool:
        slack = (n_benchmarks - d) ** 2 - (n_benchmarks + d)
        return slack > 0 if strict else slack >= 0

    d = 0
    while d + 1 < n_benchmarks and holds(d + 1):
        d += 1
    return d


def auto_skills(n_benchmarks: int, most: int = 3) -> int:
    """The number of skills sloth uses when asked for ``"auto"``: ``most``, or fewer where
    ``n_benchmarks`` would leave them just identified or worse (at least 1).

    Six benchmarks give 2 (three skills meet the Ledermann bound with equality), twelve give 3.
    """
    return max(1, min(most, ledermann_max_skills(n_benchmarks, strict=True)))


def _logit_scores(table: ScoreTable) -> np.ndarray:
    """Scores on the logit scale above each benchmark's floor, shape (n, J), ``nan`` missing."""
    floors = np.asarray(table.floors, dtype=float)
    above = (table.scores - floors) / np.maximum(1.0 - floors, 1e-6)
    above = np.clip(above, 0.01, 0.99)
    return np.log(above) - np.log1p(-above)


def _standardize(z: np.ndarray) -> np.ndarray:
    """Columns centred and scaled over their observed entries (constant columns -> 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nan_to_num(np.nanmean(z, axis=0))
        sd = np.nan_to_num(np.nanstd(z, axis=0))
    sd[sd < 1e-12] = np.inf
    return (z - mean) / sd


def _impute_low_rank(z: np.ndarray, rank: int, n_iter: int = 30) -> np.ndarray:
    """Fill the ``nan`` of a standardized matrix (n, J) by iterated rank-``rank`` SVD."""
    missing = np.isnan(z)
    filled = np.where(missing, 0.0, z)
    if not missing.any() or rank < 1:
        return filled
    for _ in range(n_iter):
        u, s, vt = np.linalg.svd(filled, full_matrices=False)
        approx = (u[:, :rank] * s[:rank]) @ vt[:rank]
        filled = np.where(missing, approx, z)
    return filled


def benchmark_signal(table: ScoreTable, n_skills: int) -> np.ndarray:
    """Share of each benchmark's score variation the other benchmarks explain, shape (J,).

    Scores are put on the logit scale above the guessing floor and standardized; for each
    benchmark ``j`` the other benchmarks' matrix is completed by iterated rank-``d`` SVD, and
    the R^2 of regressing ``j``'s observed scores on their leading ``d`` principal components
    is returned. A benchmark that loads on no skill scores near 0; ``nan`` where ``j`` has
    fewer than ``d + 3`` observed scores or there is no other benchmark.

    Parameters
    ----------
    table : ScoreTable
    n_skills : int
        Number of components d.
    """
    z = _standardize(_logit_scores(table))
    n_bench = z.shape[1]
    out = np.full(n_bench, np.nan)
    for j in range(n_bench):
        rows = ~np.isnan(z[:, j])
        others = [k for k in range(n_bench) if k != j and (~np.isnan(z[:, k])).sum() > 1]
        if rows.sum() < n_skills + 3 or not others:
            continue
        rank = min(n_skills, len(others))
        filled = _impute_low_rank(z[:, others], rank)
        u, _, _ = np.linalg.svd(filled - filled.mean(axis=0), full_matrices=False)
        design = np.column_stack([np.ones(int(rows.sum())), u[rows, :rank]])
        y = z[rows, j]
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        resid = y - design @ coef
        total = np.sum((y - y.mean()) ** 2)
        out[j] = 0.0 if total <= 1e-12 else max(0.0, 1.0 - float(resid @ resid) / total)
    return out


# ----------------------------------------------------------------------------- checks


def _check_design(
    table: ScoreTable, extra: Sequence[str], n_skills: int, th: StructuralThresholds
) -> list[Finding]:
    """Rank of the covariates over models and within families."""
    missing = [c for c in extra if c not in table.extra_covariates]
    if missing:
        return [Finding(
            "design_rank", "error",
            f"extra covariates {missing} are not columns of the data (it has "
            f"{sorted(table.extra_covariates)}): add the columns or drop them from "
            "extra_covariates",
        )]
    scaler = CovariateScaler.fit(
        table.params, table.tokens, {k: table.extra_covariates[k] for k in extra}
    )
    x = scaler.transform(table.params, table.tokens, {k: table.extra_covariates[k] for k in extra})
    names = list(scaler.names)
    n, n_cov = x.shape
    findings: list[Finding] = []

    # Pooled: [1 | X] must have full column rank.
    total_sd = x.std(axis=0)
    constant = [names[p] for p in range(n_cov) if total_sd[p] < 1e-9]
    pooled = np.column_stack([np.ones(n), x[:, total_sd >= 1e-9]])
    rank = np.linalg.matrix_rank(pooled, tol=1e-8 * max(1.0, np.sqrt(n)))
    collinear = _aliased(x[:, total_sd >= 1e-9], [nm for nm in names if nm not in constant])
    if constant or rank < pooled.shape[1]:
        parts = []
        if constant:
            parts.append(f"{_names(constant)} {'is' if len(constant) == 1 else 'are'} the same "
                         "for every model")
        if collinear:
            parts.append(f"{_names(collinear)} {'is' if len(collinear) == 1 else 'are'} an "
                         "exact linear combination of the other covariates")
        findings.append(Finding(
            "design_rank", "error",
            f"the skill slopes are not identified: {'; '.join(parts)}. Fix: drop "
            "constant or duplicated extra covariates, or add models of other sizes/token "
            "counts",
            {"covariates": names, "constant": constant, "collinear": collinear,
             "rank": int(rank), "columns": int(pooled.shape[1])},
        ))
        return findings

    # Within families: X minus family means.
    fam = table.family_index
    n_fam = int(fam.max()) + 1 if n else 0
    counts = np.bincount(fam, minlength=n_fam)
    means = np.zeros((n_fam, n_cov))
    np.add.at(means, fam, x)
    means /= np.maximum(counts, 1)[:, None]
    within = x - means[fam]
    within_sd = np.sqrt((within**2).mean(axis=0))
    ratio = within_sd / np.where(total_sd > 0, total_sd, 1.0)
    w_rank = np.linalg.matrix_rank(within, tol=1e-8 * max(1.0, np.sqrt(n)))
    between_only = [names[p] for p in range(n_cov) if ratio[p] < 1e-6]
    weak = [names[p] for p in range(n_cov) if 1e-6 <= ratio[p] < th.weak_within_ratio]
    details = {
        "covariates": names,
        "within_family_sd_ratio": {nm: round(float(r), 4) for nm, r in zip(names, ratio,
                                                                           strict=True)},
        "within_rank": int(w_rank), "columns": n_cov, "n_families": n_fam,
    }
    if w_rank < n_cov:
        deficit = n_cov - int(w_rank)
        verb = "never varies" if len(between_only) == 1 else "never vary"
        what = (f"{_names(between_only)} {verb} within a family"
                if between_only else
                f"{deficit} combination(s) of the covariates never vary within a family")
        # A between-family regression of the family effects on `deficit` directions needs
        # residual families to separate the slopes from the efficiencies.
        severity: Severity = "error" if n_fam < deficit + 3 else "warning"
        findings.append(Finding(
            "design_rank", severity,
            f"{what}: it is absorbed by the family efficiencies, so its slope rests only on "
            f"comparing {n_fam} families through the family population (assuming efficiency "
            "is unrelated to it). Fix: add families whose models differ in it (several sizes "
            "or token counts), or more families",
            {**details, "between_only": between_only, "deficit": deficit},
        ))
    elif weak:
        findings.append(Finding(
            "design_rank", "warning",
            f"{_names(weak)} varies little within families (within-family sd below "
            f"{th.weak_within_ratio:.0%} of the total): its slope is told apart from the "
            "family efficiencies mostly by comparing families. Fix: add models of a family at "
            "several sizes/token counts",
            {**details, "weak": weak},
        ))
    else:
        findings.append(Finding(
            "design_rank", "ok",
            f"the {n_cov} covariates ({', '.join(names)}) have full rank, also within families",
            details,
        ))
    return findings


def _aliased(x: np.ndarray, names: Sequence[str]) -> list[str]:
    """Covariates (columns of ``x``) lying in the span of a constant and earlier columns."""
    out = []
    kept = np.ones((x.shape[0], 1))
    for p in range(x.shape[1]):
        col = x[:, p]
        coef, *_ = np.linalg.lstsq(kept, col, rcond=None)
        resid = col - kept @ coef
        if np.linalg.norm(resid) <= 1e-8 * max(1.0, np.linalg.norm(col)):
            out.append(names[p])
        else:
            kept = np.column_stack([kept, col])
    return out


def _check_benchmarks(
    table: ScoreTable, n_skills: int, th: StructuralThresholds
) -> tuple[list[Finding], int]:
    """Coverage of each benchmark and the Ledermann bound; returns (findings, usable J)."""
    counts = table.observed.sum(axis=0)
    names = list(table.benchmarks)
    never = [b for b, c in zip(names, counts, strict=True) if c == 0]
    barely = [b for b, c in zip(names, counts, strict=True)
              if 0 < c < th.min_benchmark_scores]
    findings: list[Finding] = []
    details = {"scores_per_benchmark": {b: int(c) for b, c in zip(names, counts, strict=True)}}
    if never:
        findings.append(Finding(
            "benchmark_coverage", "error",
            f"benchmark(s) {_names(never)} have no observed score: their loadings are pure "
            "prior. Fix: drop them (benchmarks=[...]) or add their scores",
            {**details, "never_observed": never},
        ))
    if barely:
        findings.append(Finding(
            "benchmark_coverage", "warning",
            f"benchmark(s) {_names(barely)} have fewer than {th.min_benchmark_scores} observed "
            "scores: their loadings will be wide. Fix: add scores or drop them",
            {**details, "barely_observed": barely},
        ))
    if not never and not barely:
        findings.append(Finding(
            "benchmark_coverage", "ok",
            f"every benchmark has at least {int(counts.min())} observed scores", details,
        ))
    usable = int(sum(c >= th.min_benchmark_scores for c in counts))
    d_max = ledermann_max_skills(usable)
    lederman = {"usable_benchmarks": usable, "n_skills": n_skills, "max_skills": d_max,
                "bound": f"({usable} - {n_skills})^2 >= {usable} + {n_skills}"}
    if n_skills > d_max:
        fix = (f"use n_skills <= {d_max}" if d_max >= 1 else "no number of skills works")
        need = next(j for j in range(n_skills + 1, 10 * n_skills + 10)
                    if ledermann_max_skills(j) >= n_skills)
        findings.append(Finding(
            "benchmarks_per_skill", "error",
            f"{usable} usable benchmarks (with >= {th.min_benchmark_scores} scores) cannot "
            f"identify {n_skills} skills (Ledermann bound ({usable} - {n_skills})^2 >= "
            f"{usable} + {n_skills} fails). Fix: {fix}, or use at least {need} well-observed "
            "benchmarks",
            {**lederman, "benchmarks_needed": need},
        ))
    elif n_skills > ledermann_max_skills(usable, strict=True):
        # zero degrees of freedom: the d factors reproduce any covariance of the J benchmarks,
        # so nothing but the link and the priors holds the loadings (on the paper's six v1
        # benchmarks with d = 3, chains froze at the maximum tree depth on loadings of +-6)
        findings.append(Finding(
            "benchmarks_per_skill", "warning",
            f"{usable} usable benchmarks meet the Ledermann bound for {n_skills} skills with "
            f"equality (({usable} - {n_skills})^2 = {usable} + {n_skills}): the skills are "
            "just identified, with no degree of freedom to spare, so expect ridges in the "
            f"loadings and slow sampling. Fix: use n_skills <= {n_skills - 1}, or add "
            "well-observed benchmarks",
            {**lederman, "degrees_of_freedom": 0},
        ))
    else:
        findings.append(Finding(
            "benchmarks_per_skill", "ok",
            f"{usable} usable benchmarks identify up to {d_max} skills (Ledermann bound)",
            lederman,
        ))
    return findings, usable


def _check_families(
    table: ScoreTable, n_skills: int, th: StructuralThresholds
) -> list[Finding]:
    """Number of families and scores per family."""
    families = list(table.families)
    n_fam = len(families)
    findings: list[Finding] = []
    need = n_skills + 2
    details = {"n_families": n_fam, "n_skills": n_skills, "min_families_error": need,
               "min_families_warning": th.min_families}
    if n_fam < need:
        findings.append(Finding(
            "n_families", "error",
            f"{n_fam} families cannot estimate the {n_skills}x{n_skills} covariance of the "
            f"family efficiencies (at least {need} are needed for {n_skills} skill(s)). Fix: "
            f"add families, or use n_skills <= {max(n_fam - 2, 1)}",
            details,
        ))
    elif n_fam < th.min_families:
        findings.append(Finding(
            "n_families", "warning",
            f"only {n_fam} families: the family population (scale and correlation of the "
            "efficiencies) leans on its prior, and forecasts of new families will be wide. "
            f"Fix: add families (>= {th.min_families})",
            details,
        ))
    else:
        findings.append(Finding("n_families", "ok", f"{n_fam} families", details))

    per_family = np.bincount(table.family_index, weights=table.observed.sum(axis=1),
                             minlength=n_fam).astype(int)
    thin = [f for f, c in zip(families, per_family, strict=True) if c < n_skills + 1]
    detail = {"min_scores_per_family": int(per_family.min()) if n_fam else 0,
              "thin_families": thin}
    if thin:
        findings.append(Finding(
            "family_coverage", "warning",
            f"families {_names(thin)} have fewer observed scores than the {n_skills + 1} "
            "needed to place their efficiency: it will come mostly from the population. Fix: "
            "add their scores on more benchmarks",
            detail,
        ))
    else:
        findings.append(Finding(
            "family_coverage", "ok",
            f"every family has at least {detail['min_scores_per_family']} observed scores",
            detail,
        ))
    return findings


def _check_anchors(
    table: ScoreTable, n_skills: int, anchors: Sequence[str] | None, signal: np.ndarray,
    th: StructuralThresholds,
) -> list[Finding]:
    """Anchors named by the user: distinct, known, observed, with signal, well conditioned."""
    if anchors is None:
        return [Finding(
            "anchors", "ok",
            "anchors not given: they will be chosen from the data (pivoted QR of an "
            "exploratory MAP fit's loadings)",
        )]
    anchors = list(anchors)
    names = list(table.benchmarks)
    if len(anchors) != n_skills:
        return [Finding(
            "anchors", "error",
            f"anchors {anchors} has {len(anchors)} entries; give one benchmark per skill "
            f"({n_skills})",
        )]
    dupes = sorted({a for a in anchors if anchors.count(a) > 1})
    if dupes:
        return [Finding(
            "anchors", "error",
            f"anchor(s) {_names(dupes)} are used for several skills: each skill needs its own "
            "anchor benchmark. Fix: choose distinct anchors or leave anchors=None",
        )]
    unknown = [a for a in anchors if a not in names]
    if unknown:
        return [Finding(
            "anchors", "error",
            f"anchor(s) {_names(unknown)} are not among the benchmarks {names}. Fix: choose "
            "anchors from the benchmarks or leave anchors=None",
        )]
    idx = [names.index(a) for a in anchors]
    counts = table.observed.sum(axis=0)
    n = table.n_models
    findings: list[Finding] = []
    details = {
        "anchors": anchors,
        "scores": {a: int(counts[j]) for a, j in zip(anchors, idx, strict=True)},
        "coverage": {a: round(float(counts[j] / max(n, 1)), 3)
                     for a, j in zip(anchors, idx, strict=True)},
        "signal_r2": {a: None if np.isnan(signal[j]) else round(float(signal[j]), 3)
                      for a, j in zip(anchors, idx, strict=True)},
    }
    usable = [j for j in range(len(names))
              if counts[j] >= max(th.min_benchmark_scores, th.anchor_min_coverage * n)
              and not (np.nan_to_num(signal[j], nan=0.0) < th.min_signal)]
    common = _common_parts(table, n_skills)
    best, best_value = _most_distinct(common, usable, n_skills)
    alternatives = [names[j] for j in best]
    fix_others = (f"choose other anchors (e.g. {_names(alternatives)}) or leave anchors=None"
                  if len(best) == n_skills else "leave anchors=None")
    unobserved = [a for a, j in zip(anchors, idx, strict=True)
                  if counts[j] < th.min_benchmark_scores]
    if unobserved:
        findings.append(Finding(
            "anchors", "error",
            f"anchor(s) {_names(unobserved)} have fewer than {th.min_benchmark_scores} observed "
            f"scores: the skill each anchors would be pinned by almost no data. Fix: "
            f"{fix_others}",
            details,
        ))
    sparse = [a for a, j in zip(anchors, idx, strict=True)
              if a not in unobserved and counts[j] < th.anchor_min_coverage * n]
    if sparse:
        findings.append(Finding(
            "anchors", "warning",
            f"anchor(s) {_names(sparse)} are observed on fewer than "
            f"{th.anchor_min_coverage:.0%} of the models: the skills they pin are measured "
            f"through few models. Fix: {fix_others}",
            details,
        ))
    silent = [a for a, j in zip(anchors, idx, strict=True)
              if a not in unobserved and not np.isnan(signal[j]) and signal[j] < th.min_signal]
    if silent:
        findings.append(Finding(
            "anchors", "error",
            f"anchor(s) {_names(silent)} load on no skill: the other benchmarks explain "
            f"R^2 = {', '.join(f'{signal[names.index(a)]:.2f}' for a in silent)} of their "
            f"scores (below {th.min_signal}), so the skill they pin would be noise. Fix: "
            f"{fix_others}",
            details,
        ))
    if n_skills >= 2 and not unobserved:
        distinct = _distinctness(common, idx)
        details["distinctness"] = round(distinct, 4)
        details["most_distinct"] = {"anchors": alternatives, "distinctness": round(best_value, 4)}
        if distinct < th.min_anchor_distinctness * best_value:
            findings.append(Finding(
                "anchors", "warning",
                f"anchors {_names(anchors)} measure nearly the same combination of skills: "
                f"the smallest eigenvalue of the correlation of their common parts is "
                f"{distinct:.3f}, against {best_value:.3f} for {_names(alternatives)}; the "
                f"skills they pin are barely distinct and chains may disagree. Fix: "
                f"{fix_others}",
                details,
            ))
    if not findings:
        findings.append(Finding(
            "anchors", "ok",
            f"anchors {_names(anchors)} are observed on "
            f"{min(details['coverage'].values()):.0%}+ of the models and carry signal",
            details,
        ))
    return findings


def _common_parts(table: ScoreTable, n_skills: int) -> np.ndarray:
    """Rank-d reconstruction of the standardized logit scores, shape (n, J) (``nan`` columns
    for benchmarks with fewer than two scores)."""
    z = _standardize(_logit_scores(table))
    keep = [j for j in range(z.shape[1]) if (~np.isnan(z[:, j])).sum() > 1]
    out = np.full(z.shape, np.nan)
    if not keep:
        return out
    filled = _impute_low_rank(z[:, keep], n_skills)
    u, s, vt = np.linalg.svd(filled - filled.mean(axis=0), full_matrices=False)
    out[:, keep] = (u[:, :n_skills] * s[:n_skills]) @ vt[:n_skills]
    return out


def _distinctness(common: np.ndarray, idx: Sequence[int]) -> float:
    """Smallest eigenvalue of the correlation matrix of the columns ``idx`` of ``common``:
    1 for uncorrelated anchors, 0 when one is a combination of the others."""
    cols = common[:, list(idx)]
    if np.isnan(cols).any() or np.any(cols.std(axis=0) < 1e-12):
        return 0.0
    if cols.shape[1] == 1:
        return 1.0
    return float(max(np.linalg.eigvalsh(np.corrcoef(cols, rowvar=False)).min(), 0.0))


def _most_distinct(
    common: np.ndarray, candidates: Sequence[int], n_skills: int, limit: int = 5000
) -> tuple[tuple[int, ...], float]:
    """The ``n_skills`` candidates whose common parts are the most distinct (exhaustive over at
    most ``limit`` subsets, else greedy)."""
    candidates = list(candidates)
    if len(candidates) < n_skills:
        return tuple(candidates), 0.0
    if comb(len(candidates), n_skills) <= limit:
        best = max(combinations(candidates, n_skills), key=lambda c: _distinctness(common, c))
        return best, _distinctness(common, best)
    chosen: list[int] = []
    for _ in range(n_skills):
        rest = [c for c in candidates if c not in chosen]
        if not chosen:
            nxt = rest[0]
        else:
            nxt = max(rest, key=lambda c: _distinctness(common, [*chosen, c]))
        chosen.append(nxt)
    return tuple(chosen), _distinctness(common, chosen)


def _check_signal(
    table: ScoreTable, signal: np.ndarray, anchors: Sequence[str] | None,
    th: StructuralThresholds,
) -> list[Finding]:
    """Benchmarks (other than given anchors) that the other benchmarks do not explain."""
    anchor_set = set(anchors or ())
    names = list(table.benchmarks)
    silent = [b for b, r in zip(names, signal, strict=True)
              if b not in anchor_set and not np.isnan(r) and r < th.min_signal]
    details = {"signal_r2": {b: None if np.isnan(r) else round(float(r), 3)
                             for b, r in zip(names, signal, strict=True)}}
    if silent:
        return [Finding(
            "benchmark_signal", "warning",
            f"benchmark(s) {_names(silent)} barely follow the others (R^2 below "
            f"{th.min_signal}): they load on no skill and add only noise; they must not be "
            "anchors. Fix: check their scores, or drop them",
            {**details, "silent": silent},
        )]
    finite = signal[~np.isnan(signal)]
    low = f"{finite.min():.2f}" if finite.size else "n/a"
    return [Finding("benchmark_signal", "ok",
                    f"every benchmark follows the others (lowest R^2 {low})", details)]


def check_structure(
    table: ScoreTable,
    n_skills: int,
    anchors: Sequence[str] | None = None,
    extra_covariates: Sequence[str] = (),
    *,
    thresholds: StructuralThresholds | None = None,
) -> StructuralReport:
    """Check, before sampling, whether ``table`` can identify a model with ``n_skills``.

    Parameters
    ----------
    table : ScoreTable
        The evaluations to fit: scores (n, J), families, sizes and tokens.
    n_skills : int
        Number of latent skills d.
    anchors : sequence of str, optional
        Anchor benchmarks, one per skill (``None``: chosen from the data at fit time).
    extra_covariates : sequence of str, default ()
        Extra covariates of the skills (keys of ``table.extra_covariates``).
    thresholds : StructuralThresholds, optional
        Limits of the checks (default :class:`StructuralThresholds`).

    Returns
    -------
    StructuralReport
        Findings of the checks ``design_rank``, ``benchmark_coverage``,
        ``benchmarks_per_skill``, ``n_families``, ``family_coverage``, ``anchors`` and
        ``benchmark_signal``; ``report.raise_if_errors()`` raises
        :class:`~sloth.exceptions.IdentifiabilityError` on an error.
    """
    if not isinstance(table, ScoreTable):
        raise TypeError(
            f"check_structure expects a ScoreTable, got {type(table).__name__}; validate a "
            "DataFrame first with sloth.data.read_evaluations(df)"
        )
    if isinstance(n_skills, bool) or not isinstance(n_skills, int | np.integer) or n_skills < 1:
        raise ValueError(f"n_skills={n_skills!r} must be a positive integer")
    n_skills = int(n_skills)
    th = thresholds or StructuralThresholds()
    signal = benchmark_signal(table, n_skills)
    findings: list[Finding] = []
    findings += _check_design(table, list(extra_covariates), n_skills, th)
    bench, _ = _check_benchmarks(table, n_skills, th)
    findings += bench
    findings += _check_families(table, n_skills, th)
    findings += _check_anchors(table, n_skills, anchors, signal, th)
    findings += _check_signal(table, signal, anchors, th)
    return StructuralReport(findings, n_skills, None if anchors is None else list(anchors))
