"""Interpretable skills of the leaderboard fit (d = 3): acceptance items of issue 4.

Writes ``benchmarks/results_skills.md`` and PNG figures under ``benchmarks/figures/``:
rotated loadings with names beside the Sloth paper's reading, skill correlations, growth
slopes, and each skill's compute-optimal tokens per parameter at 1e22 and 1e24 FLOPs with
90% intervals, set against Roberts et al. 2025 (knowledge parameter-hungry, reasoning/code
data-hungry).

The posterior is that of ``sloth fit`` (d = 3, the Sloth paper's 12 benchmarks, instruct
covariate). An existing file is reused; otherwise it is fitted first (about a minute)::

    SLOTH_DATA_DIR=../shared/data sloth fit --out /tmp/lb.nc
    SLOTH_DATA_DIR=../shared/data python benchmarks/skills_report.py --posterior /tmp/lb.nc
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from pathlib import Path

import numpy as np

from sloth.cli.skills import write_figures
from sloth.estimator import SlothModel
from sloth.skills.analysis import SkillAnalysis, analyze_skills
from sloth.skills.rotation import align_columns

HERE = Path(__file__).resolve().parent

#: The Sloth paper's reading of its three skills.
PAPER_READING = {
    "reasoning": ["GSM8K", "MATH Lvl 5", "GPQA", "MMLU-PRO"],
    "knowledge": ["ARC", "HellaSwag", "Winogrande"],
    "instruction following": ["IFEval", "TruthfulQA"],
}
BUDGETS = (1e22, 1e24)
LEVEL = 0.9


def _ci(mean: float, lo: float, hi: float, fmt: str = ".2f") -> str:
    return f"{mean:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def _paper_group(benchmark: str) -> str:
    for group, members in PAPER_READING.items():
        if benchmark in members:
            return group
    return "(not placed)"


def loadings_section(a: SkillAnalysis) -> tuple[list[str], dict[str, str]]:
    """Markdown of the loadings beside the paper's reading; map benchmark -> main skill."""
    table = a.loadings_table(LEVEL)
    wide = a.loadings_table(wide=True)
    lines = [
        "| benchmark | paper's reading | " + " | ".join(a.names) + " | main skill here |",
        "|---|---|" + "---|" * a.n_skills + "---|",
    ]
    main: dict[str, str] = {}
    for b in a.benchmarks:
        rows = table[table["benchmark"] == b]
        cells = []
        for r in rows.itertuples():
            text = _ci(r.mean, r.lower, r.upper)
            cells.append(f"**{text}**" if abs(r.mean) == wide.loc[b].abs().max() else text)
        main[b] = str(wide.loc[b].abs().idxmax())
        lines.append(f"| {b} | {_paper_group(b)} | " + " | ".join(cells) + f" | {main[b]} |")
    return lines, main


def agreement_text(a: SkillAnalysis, main: dict[str, str]) -> list[str]:
    """Sentences on where the rotated skills agree with the paper's reading and where not."""
    wide = a.loadings_table(wide=True)
    agree, differ = [], []
    for group, members in PAPER_READING.items():
        for b in members:
            if b not in main:
                continue
            (agree if main[b] == group else differ).append((b, group))
    lines = []
    if agree:
        lines.append(
            f"- **Agreements ({len(agree)} of {len(agree) + len(differ)} placed benchmarks):** "
            + "; ".join(f"{b} on {g}" for b, g in agree) + ".")
    table = a.loadings_table(LEVEL).set_index(["benchmark", "skill"])
    for b, g in differ:
        top = table.loc[(b, main[b])]
        text = (f"- **Difference:** the paper reads {b} as {g}; here it loads mainly on "
                f"{main[b]}, {_ci(top['mean'], top['lower'], top['upper'])}")
        if g in a.names:
            own = table.loc[(b, g)]
            text += f", against {_ci(own['mean'], own['lower'], own['upper'])} on {g}"
            if abs(top["mean"]) - abs(own["mean"]) < 0.1:
                text += " (a near tie: it measures both)"
        lines.append(text + ".")
    for b in a.benchmarks:
        if _paper_group(b) == "(not placed)":
            row = wide.loc[b].sort_values(key=np.abs, ascending=False)
            lines.append(
                f"- {b} (not placed by the paper): {row.index[0]} {row.iloc[0]:.2f}, "
                f"{row.index[1]} {row.iloc[1]:.2f}.")
    cross = []
    for b in a.benchmarks:
        row = wide.loc[b]
        second = row.drop(main[b]).abs()
        if len(second) and second.max() > 0.4 * abs(row[main[b]]) and second.max() > 0.3:
            cross.append(f"{b} ({second.idxmax()} {row[second.idxmax()]:.2f})")
    if cross:
        lines.append("- **Cross-loadings** (secondary loading above 0.3 and 40% of the main "
                     "one): " + ", ".join(cross) + ".")
    return lines


def optimum_section(a: SkillAnalysis) -> list[str]:
    opt = a.compute_optimal(BUDGETS, level=LEVEL)
    lo, hi = a.data_ratio_range
    lines = [
        f"Tokens per parameter searched within the fitted models' range, {lo:.3g} to {hi:.3g}"
        " (no extrapolation of the allocation beyond what the data saw). *interior*: share "
        "of draws whose maximum lies inside that range; *low end* / *high end*: share at the "
        "parameter-hungry / data-hungry edge (the skill keeps improving past the data's most "
        "extreme allocation).",
        "",
        "| skill | C (FLOPs) | N* | D* | D*/N* | interior | low end | high end |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in opt.itertuples():
        lines.append(
            f"| {r.skill} | {r.compute:.0e} | {_ci(r.N_opt, r.N_opt_lower, r.N_opt_upper, '.2e')}"
            f" | {_ci(r.D_opt, r.D_opt_lower, r.D_opt_upper, '.2e')}"
            f" | {_ci(r.D_per_N, r.D_per_N_lower, r.D_per_N_upper, '.3g')}"
            f" | {r.interior:.0%} | {r.at_params_end:.0%} | {r.at_tokens_end:.0%} |")
    slope = a.iso_flop_slope(20.0, LEVEL)
    lines += [
        "",
        "Bound-free version: change of each skill (in SDs across the fitted models) per decade "
        "of D/N along an iso-FLOP line, at D/N = 20 (Chinchilla's rule) and at D/N = 200:",
        "",
        "| skill | slope at D/N = 20 | P(> 0) | slope at D/N = 200 | P(> 0) |",
        "|---|---|---|---|---|",
    ]
    slope200 = a.iso_flop_slope(200.0, LEVEL).set_index("skill")
    for r in slope.itertuples():
        s2 = slope200.loc[r.skill]
        lines.append(f"| {r.skill} | {_ci(r.mean, r.lower, r.upper)} | {r.prob_positive:.2f} "
                     f"| {_ci(s2['mean'], s2['lower'], s2['upper'])} | "
                     f"{s2['prob_positive']:.2f} |")
    return lines


def roberts_verdict(a: SkillAnalysis) -> list[str]:
    names = a.names
    if "knowledge" not in names or "reasoning" not in names:
        return ["No skill was named both knowledge and reasoning; no comparison is made."]
    p = a.ratio_comparison("reasoning", "knowledge", ratio=20.0)
    opt = a.compute_optimal(BUDGETS, level=LEVEL).set_index(["skill", "compute"])
    k = opt.loc[("knowledge", BUDGETS[0])]
    r = opt.loc[("reasoning", BUDGETS[0])]
    slope = a.iso_flop_slope(20.0, LEVEL).set_index("skill")
    return [
        f"P(reasoning is more data-hungry than knowledge) = {p:.3f} (its iso-FLOP slope at "
        f"D/N = 20 is larger in that share of draws).",
        "",
        f"- knowledge: slope {slope.loc['knowledge', 'mean']:.2f} per decade of D/N "
        f"(P(> 0) = {slope.loc['knowledge', 'prob_positive']:.2f}); optimum at the "
        f"parameter-hungry end in {k['at_params_end']:.0%} of draws, interior in "
        f"{k['interior']:.0%}.",
        f"- reasoning: slope {slope.loc['reasoning', 'mean']:.2f} "
        f"(P(> 0) = {slope.loc['reasoning', 'prob_positive']:.2f}); optimum at the "
        f"data-hungry end in {r['at_tokens_end']:.0%} of draws, interior in "
        f"{r['interior']:.0%}.",
    ]


def summary_lines(a: SkillAnalysis, main: dict[str, str]) -> list[str]:
    """Three bullet points at the top of the report."""
    placed = [(b, g) for g, members in PAPER_READING.items() for b in members if b in main]
    agree = sum(main[b] == g for b, g in placed)
    opt = a.compute_optimal((BUDGETS[0],), level=LEVEL).set_index("skill")
    slope = a.iso_flop_slope(20.0, LEVEL).set_index("skill")
    lines = [
        f"- Rotated (geomin) skills are named {', '.join(a.names)}; {agree} of "
        f"{len(placed)} benchmarks the paper places load mainly on the skill of the paper's "
        "reading.",
    ]
    for name in a.names:
        r, sl = opt.loc[name], slope.loc[name]
        if r["interior"] >= 0.5:
            ratio = _ci(r["D_per_N"], r["D_per_N_lower"], r["D_per_N_upper"], ".3g")
            verdict = (f"interior optimum at D*/N* = {ratio} tokens per parameter at 1e22 and "
                       f"1e24 FLOPs alike ({r['interior']:.0%} of draws)")
        elif r["at_params_end"] > r["at_tokens_end"]:
            verdict = (f"parameter-hungry: no interior optimum, best at the fewest tokens per "
                       f"parameter the data holds in {r['at_params_end']:.0%} of draws")
        else:
            verdict = (f"data-hungry: no interior optimum, best at the most tokens per "
                       f"parameter the data holds in {r['at_tokens_end']:.0%} of draws")
        lines.append(f"- {name}: {verdict}; iso-FLOP slope at D/N = 20 "
                     f"{_ci(sl['mean'], sl['lower'], sl['upper'])} per decade of D/N.")
    if {"reasoning", "knowledge"} <= set(a.names):
        p = a.ratio_comparison("reasoning", "knowledge")
        same = (slope.loc["knowledge", "prob_positive"] < 0.05
                and slope.loc["reasoning", "prob_positive"] > 0.95)
        lines.append(
            f"- Roberts et al. 2025: {'consistent' if same else 'not clearly consistent'} "
            f"(knowledge parameter-hungry, reasoning data-hungry; P(reasoning more "
            f"data-hungry) = {p:.3f}).")
    return lines


def robustness_section(model: SlothModel, reference: SkillAnalysis,
                       seconds: dict[str, float]) -> list[str]:
    """The same analysis under other rotations, each skill matched to the geomin skill it
    resembles most (Tucker congruence of mean loadings)."""
    lines = [
        "Each skill of another rotation is matched to the geomin skill with the most congruent "
        "mean loadings (congruence in parentheses); its proposed name is kept when different.",
        "",
        "| rotation | skill (geomin match, congruence) | D*/N* at 1e22 [90%] | interior / low "
        "/ high end | iso-FLOP slope at D/N = 20 [90%] |",
        "|---|---|---|---|---|",
    ]
    ref_mean = reference.rotation.loading.mean(axis=0)
    for method in ("oblimin", "varimax"):
        start = time.perf_counter()
        b = analyze_skills(model, rotation=method)
        seconds[method] = time.perf_counter() - start
        mean = b.rotation.loading.mean(axis=0)
        perm, _ = align_columns(mean[None], ref_mean)
        opt = b.compute_optimal((BUDGETS[0],), level=LEVEL).set_index("skill")
        slope = b.iso_flop_slope(20.0, LEVEL).set_index("skill")
        for k_ref, k in enumerate(perm[0]):
            name = b.names[k]
            x, y = mean[:, k], ref_mean[:, k_ref]
            cong = abs(x @ y) / (np.linalg.norm(x) * np.linalg.norm(y))
            match = reference.names[k_ref]
            label = name if name == match else f"{name} (~ {match}"
            label += f", {cong:.2f})" if name != match else f" ({cong:.2f})"
            r, sl = opt.loc[name], slope.loc[name]
            ratio = _ci(r["D_per_N"], r["D_per_N_lower"], r["D_per_N_upper"], ".3g")
            ends = f"{r['interior']:.0%} / {r['at_params_end']:.0%} / {r['at_tokens_end']:.0%}"
            lines.append(f"| {method} | {label} | {ratio} | {ends} | "
                         f"{_ci(sl['mean'], sl['lower'], sl['upper'])} |")
    return lines


def main() -> int:
    # as the command line does: chains in parallel on CPU devices, compiled programs kept
    from sloth.cli.main import configure_process

    configure_process()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posterior", default="/tmp/lb.nc",
                        help="posterior of 'sloth fit' (fitted first when missing)")
    parser.add_argument("--out", default=str(HERE / "results_skills.md"))
    parser.add_argument("--figures", default=str(HERE / "figures"))
    args = parser.parse_args()

    seconds: dict[str, float] = {}
    if not Path(args.posterior).is_file():
        from sloth.cli.main import main as sloth_main

        start = time.perf_counter()
        code = sloth_main(["fit", "--out", args.posterior, "--quiet"])
        seconds["fit"] = time.perf_counter() - start
        if code:
            return code
    model = SlothModel.load(args.posterior)
    summary = model.summary()
    start = time.perf_counter()
    a = analyze_skills(model, rotation="geomin")
    seconds["geomin"] = time.perf_counter() - start
    start = time.perf_counter()
    figures = write_figures(a, args.figures, LEVEL)
    seconds["figures"] = time.perf_counter() - start

    s = summary["sampler"]
    load_lines, main_skill = loadings_section(a)

    corr = a.correlation_table("models", LEVEL)
    fam = a.correlation_table("families", LEVEL)
    slopes = a.slopes_table(LEVEL)
    out = [
        "# Interpretable skills of the leaderboard fit (issue 4, items 4-5)",
        "",
        f"Generated by `benchmarks/skills_report.py` on {dt.date.today()} "
        f"({platform.machine()}, {os.cpu_count()} CPUs, shared with other jobs).",
        "",
        "## Summary",
        "",
        *summary_lines(a, main_skill),
        "",
        "## Setup",
        "",
        f"- Posterior: `sloth fit` defaults (d = 3, the paper's 12 benchmarks, instruct "
        f"covariate, Student-t noise), {s['num_chains']} chains x {s['num_draws']} draws; "
        f"{summary['n_models']} models in {summary['n_families']} families. Anchors of the "
        f"fit's frame: {', '.join(summary['anchors'])}.",
        f"- Sampler: {s['divergences']} divergences, worst R-hat {s['rhat_max']:.3f} "
        f"({s['worst_rhat_variable']}), lowest bulk ESS {s['ess_bulk_min']:.0f}.",
        f"- Rotation: **geomin** (oblique, Kaiser-normalized, delta = 0.01) per draw on "
        f"loadings of skills standardized to unit variance across the fitted models; draws "
        f"aligned to the reference by signed permutation (Hungarian on |congruence|). "
        f"{a.rotation.converged.mean():.2%} of draws converged; Tucker congruence of aligned "
        f"draws with the reference: median {np.median(a.rotation.congruence):.3f}, 1% "
        f"quantile {np.quantile(a.rotation.congruence, 0.01):.3f}. Rotation of "
        f"{a.rotation.loading.shape[0]} draws: {seconds['geomin']:.1f} s.",
        f"- Names proposed from the top-loading benchmarks: {', '.join(a.names)}.",
        "",
        "## Rotated loadings beside the paper's reading",
        "",
        f"Posterior mean [{LEVEL:.0%} interval]; bold: the benchmark's largest loading. "
        "Loadings are on the logit scale of each benchmark per SD of the skill, so benchmarks "
        "with steep score curves (GSM8K, MATH, floor 0) have large loadings.",
        "",
        *load_lines,
        "",
        *agreement_text(a, main_skill),
        "",
        f"![loadings](figures/{Path(figures[0]).name})",
        "",
        "## Skill correlations",
        "",
        "| pair | across fitted models (factor correlation) | family efficiencies "
        "(population, net of N and D) |",
        "|---|---|---|",
        *[f"| {r.skill} ~ {r.other} | {_ci(r.mean, r.lower, r.upper)} | "
          f"{_ci(f.mean, f.lower, f.upper)} |"
          for r, f in zip(corr.itertuples(), fam.itertuples(), strict=True)],
        "",
        "## Growth with N and D",
        "",
        "Rotated slopes per standardized covariate (log10 N, log10 D, their centred product, "
        "instruct flag):",
        "",
        "| covariate | " + " | ".join(a.names) + " |",
        "|---|" + "---|" * a.n_skills,
        *["| " + cov + " | " + " | ".join(
            _ci(r.mean, r.lower, r.upper)
            for r in slopes[slopes["covariate"] == cov].itertuples()) + " |"
          for cov in a.covariates],
        "",
        "## Compute-optimal allocation per skill (C = 6 N D)",
        "",
        "Under the skill model a skill is quadratic in log N along an iso-FLOP line, with "
        "curvature set by the log N x log D slope: an interior maximum exists only where that "
        "slope is positive, and then D*/N* is the same at every budget (N* and D* both grow as "
        "C^0.5). So the 1e22 and 1e24 rows share their tokens per parameter; what differs "
        "between skills is the ratio, or the direction of a corner solution.",
        "",
        *optimum_section(a),
        "",
        *[f"![levels](figures/{Path(f).name})" for f in figures[1:-1]],
        "",
        "## Knowledge vs reasoning (Roberts et al. 2025)",
        "",
        *roberts_verdict(a),
        "",
        "## Robustness to the rotation",
        "",
        *robustness_section(model, a, seconds),
        "",
        "## Sampler view of the rotated loadings",
        "",
        "R-hat and bulk ESS of the rotated, aligned posterior (arviz_stats; constant "
        "elements skipped):",
        "",
        "| variable | max R-hat | min bulk ESS |",
        "|---|---|---|",
        *[f"| {r.variable} | {r.rhat_max:.3f} | {r.ess_bulk_min:.0f} |"
          for r in a.convergence().itertuples()],
        "",
        "Trace and rank plots of each skill's top rotated loading, chains aligned: "
        f"![trace](figures/{Path(figures[-1]).name})",
        "",
        "## Caveats",
        "",
        "- The compute optima come from the model's functional form: skills are linear in "
        "log N, log D and their product, so along an iso-FLOP line the only curvature is the "
        "product's slope. Reasoning's is near zero and knowledge's negative, hence corner "
        "solutions at the edge of the data's D/N range rather than finite ratios; the sign "
        "of the iso-FLOP slope (data- vs parameter-hungry) is the robust reading, the corner "
        "values are not estimates of a finite optimum.",
        "- Skills are measured in SDs across the leaderboard's models, so slopes compare "
        "across skills; they are benchmark-score skills, not the validation losses of "
        "Roberts et al., and the leaderboard's D/N is confounded with recipe (e.g. small "
        "models of recent families trained on 10-20T tokens).",
        "- The loadings, names and compute signs agree across geomin and oblimin; varimax "
        "(orthogonal) mixes the correlated reasoning and knowledge skills into a general "
        "factor, so its names differ.",
        "",
        "## Timings",
        "",
        *[f"- {k}: {v:.1f} s" for k, v in seconds.items()],
        "",
    ]
    Path(args.out).write_text("\n".join(out))
    print(f"wrote {args.out} and {len(figures)} figures to {args.figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
