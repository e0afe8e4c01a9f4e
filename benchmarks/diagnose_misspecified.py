"""What the identifiability checks report on misspecified simulations (issue 4, item 3).

Five simulated leaderboards with known truth, each fitted with NUTS and diagnosed:

- ``well_posed``: 30 families, 8 benchmarks, 2 skills: every check should pass clean;
- ``too_many_skills``: 5 benchmarks fitted with 3 skills (the Ledermann bound allows 2);
- ``too_few_families``: 3 families for 2 skills;
- ``never_observed``: the well-posed leaderboard with one benchmark (BBH) never observed;
- ``anchor_loads_on_nothing``: the well-posed leaderboard with TruthfulQA replaced by noise
  around a constant, and chosen as the anchor of a skill.

For each: the structural checks (before sampling) and the post-sampling checks of
:func:`sloth.checks.diagnostics.diagnose`. The fits go ahead even where a structural check fails
(``raise_if_errors`` is switched off here), to show what the draws then look like.

Usage (from the repository root)::

    SLOTH_DATA_DIR=../shared/data python benchmarks/diagnose_misspecified.py

writes ``benchmarks/results_diagnostics.md`` (``--chains/--warmup/--samples`` for a quick
run; ``--out`` for another file).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np

from sloth.checks.diagnostics import DiagnosticReport, diagnose
from sloth.checks.structure import StructuralReport, check_structure
from sloth.data.table import ScoreTable
from sloth.estimator import SlothModel
from sloth.model.simulate import simulate_leaderboard

OUT = Path(__file__).parent / "results_diagnostics.md"
SEED = 3


def _drop_unscored(table: ScoreTable) -> ScoreTable:
    keep = table.observed.any(axis=1)
    return table if keep.all() else table.subset(models=keep)


def well_posed() -> tuple[ScoreTable, int, list[str] | None]:
    table, _ = simulate_leaderboard(n_families=30, n_skills=2, n_benchmarks=8, seed=SEED)
    return table, 2, None


def too_many_skills() -> tuple[ScoreTable, int, list[str] | None]:
    table, _ = simulate_leaderboard(n_families=30, n_skills=2, n_benchmarks=5, seed=SEED)
    return table, 3, None


def too_few_families() -> tuple[ScoreTable, int, list[str] | None]:
    table, _ = simulate_leaderboard(n_families=3, n_skills=2, n_benchmarks=8, seed=SEED)
    return table, 2, None


def never_observed() -> tuple[ScoreTable, int, list[str] | None]:
    table, _, _ = well_posed()
    scores = table.scores.copy()
    scores[:, table.benchmarks.index("BBH")] = np.nan
    return _drop_unscored(replace(table, scores=scores)), 2, None


def anchor_loads_on_nothing() -> tuple[ScoreTable, int, list[str] | None]:
    table, _, _ = well_posed()
    j = table.benchmarks.index("TruthfulQA")
    rng = np.random.default_rng(SEED)
    scores = table.scores.copy()
    observed = ~np.isnan(scores[:, j])
    scores[observed, j] = np.clip(0.45 + rng.normal(0.0, 0.02, observed.sum()), 0, 1)
    return replace(table, scores=scores), 2, ["TruthfulQA", "ARC"]


SCENARIOS: dict[str, tuple[str, Callable[[], tuple[ScoreTable, int, list[str] | None]]]] = {
    "well_posed": ("30 families x 2-6 models, 8 benchmarks, 2 skills; fitted with 2",
                   well_posed),
    "too_many_skills": ("30 families, 5 benchmarks, 2 true skills; fitted with 3 (at most "
                        "300 + 300 iterations: every one takes 1023 leapfrog steps)",
                        too_many_skills),
    "too_few_families": ("3 families, 8 benchmarks, 2 skills; fitted with 2", too_few_families),
    "never_observed": ("well_posed with BBH never observed; fitted with 2", never_observed),
    "anchor_loads_on_nothing": (
        "well_posed with TruthfulQA replaced by noise (0.45 +- 0.02) and anchors "
        "[TruthfulQA, ARC]", anchor_loads_on_nothing),
}


#: Caps on the iterations of scenarios whose trees hit the maximum depth (to stay in time).
MAX_ITERATIONS = {"too_many_skills": 300}


def run_scenario(name: str, chains: int, warmup: int, samples: int
                 ) -> tuple[StructuralReport, DiagnosticReport, float]:
    """Structural report, full report and fit seconds of one scenario."""
    _, build = SCENARIOS[name]
    table, d, anchors = build()
    if name in MAX_ITERATIONS:
        warmup, samples = (min(warmup, MAX_ITERATIONS[name]),
                           min(samples, MAX_ITERATIONS[name]))
    structural = check_structure(table, d, anchors=anchors)
    model = SlothModel(d, anchors=anchors, num_chains=chains, num_warmup=warmup,
                       num_samples=samples, seed=SEED, progress_bar=False)
    start = time.perf_counter()
    # Let the fit go ahead whatever the structural checks say, to see the draws.
    with mock.patch.object(StructuralReport, "raise_if_errors", lambda self, **_: self):
        model.fit(table)
    seconds = time.perf_counter() - start
    return structural, diagnose(model), seconds


_MARK = {"ok": "ok", "warning": "**warn**", "error": "**ERROR**", None: "-"}


def _cell(report: DiagnosticReport | StructuralReport, check: str) -> str:
    return _MARK[report.severity_of(check)]


def render(results: dict[str, tuple[StructuralReport, DiagnosticReport, float]],
           settings: str, total: float) -> str:
    """The Markdown section."""
    names = list(results)
    structural_checks = list(dict.fromkeys(
        f.check for s, _, _ in results.values() for f in s.findings))
    sampling_checks = list(dict.fromkeys(
        f.check for _, r, _ in results.values() for f in r.sampling))
    lines = [
        "## Identifiability diagnostics on misspecified simulations",
        "",
        "Produced by `python benchmarks/diagnose_misspecified.py` (issue 4, item 3). Each "
        "simulated leaderboard is checked before sampling (`sloth.checks.structure."
        "check_structure`), then fitted with NUTS even where a structural check failed, and "
        f"diagnosed (`sloth.checks.diagnostics.diagnose`, as `sloth diagnose FILE`). {settings}; "
        f"seed {SEED}; total {total / 60:.1f} min on a shared 2-core CPU.",
        "",
        "Scenarios:",
        "",
    ]
    lines += [f"- `{n}`: {SCENARIOS[n][0]}" for n in names]
    lines += ["", "### Before sampling (structural checks)", "",
              "| check | " + " | ".join(f"`{n}`" for n in names) + " |",
              "|---|" + "---|" * len(names)]
    for check in structural_checks:
        lines.append(f"| {check} | " + " | ".join(_cell(results[n][0], check) for n in names)
                     + " |")
    lines += ["", "### After sampling (`diagnose`)", "",
              "| check | " + " | ".join(f"`{n}`" for n in names) + " |",
              "|---|" + "---|" * len(names)]
    for check in sampling_checks:
        lines.append(f"| {check} | " + " | ".join(_cell(results[n][1], check) for n in names)
                     + " |")
    lines.append("| **passed** | " + " | ".join(
        "yes" if results[n][1].passed else "no" for n in names) + " |")
    lines.append("| fit seconds | " + " | ".join(f"{results[n][2]:.0f}" for n in names) + " |")
    lines += ["", "### What each check said", ""]
    for n in names:
        _, report, _ = results[n]
        flagged = [f for f in report.findings if f.severity != "ok"]
        lines += [f"**`{n}`** ({SCENARIOS[n][0]}): "
                  f"{'passed clean' if not flagged else 'passed' if report.passed else 'FAILED'}"
                  f" ({len(report.errors)} error(s), {len(report.warnings)} warning(s)).", ""]
        for f in flagged:
            lines.append(f"- {f.severity} `{f.check}`: {f.message}")
        if not flagged:
            ok = [f for f in report.sampling if f.check in ("rhat", "ess", "chain_alignment",
                                                             "contraction")]
            lines += [f"- ok `{f.check}`: {f.message}" for f in ok]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    # as the command line does: chains in parallel on CPU devices, compiled programs kept
    from sloth.cli.main import configure_process

    configure_process()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--only", nargs="*", choices=list(SCENARIOS), default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = {}
    for name in args.only or SCENARIOS:
        results[name] = run_scenario(name, args.chains, args.warmup, args.samples)
        _, report, seconds = results[name]
        print(f"{name}: {'passed' if report.passed else 'FAILED'} "
              f"({len(report.errors)} errors, {len(report.warnings)} warnings; fit {seconds:.0f}"
              " s)", flush=True)
    settings = (f"NUTS {args.chains} chains x ({args.warmup} warm-up + {args.samples} draws), "
                "anchors chosen by sloth unless stated")
    text = render(results, settings, time.perf_counter() - start)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
