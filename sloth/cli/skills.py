"""``sloth skills``: rotated, named skills of a saved fit, their growth and compute optima.

::

    sloth skills FILE [--rotation geomin|oblimin|varimax|none] [--names a,b,c]
                      [--compute 1e22 1e24] [--level 0.9] [--figures DIR] [--json]

:func:`add_skills_parser` is called by :func:`sloth.cli.build_parser`; :func:`cmd_skills`
prints the tables (or one JSON object with ``--json``) and returns the exit code. Bad input
raises :class:`sloth.exceptions.SlothError` or ``ValueError``, which ``sloth`` turns into
exit status 2 with the message.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sloth.cli.common import print_json, split_list, write_figure
from sloth.exceptions import DataNotFoundError, DataValidationError

if TYPE_CHECKING:
    from sloth.estimator import SlothModel
    from sloth.skills.analysis import SkillAnalysis

__all__ = ["add_skills_parser", "cmd_skills"]

#: Rotations offered on the command line (geomin first: the default).
CLI_ROTATIONS = ("geomin", "oblimin", "varimax", "none")


def _budget(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a training budget: give positive FLOPs such as 1e22")
    return value


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an interval probability: give a number in (0, 1), e.g. 0.9")
    return value


def add_skills_parser(sub: Any) -> None:
    """Register ``sloth skills`` on the subparsers ``sub`` of the ``sloth`` parser."""
    skills = sub.add_parser(
        "skills", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="rotated, named skills of a saved fit and their compute-optimal (N, D)",
        description=(
            "Rotate the skills of a saved fit per posterior draw (aligned across draws and\n"
            "chains), name them from their top-loading benchmarks, and print the loadings,\n"
            "skill correlations, growth slopes and each skill's compute-optimal tokens per\n"
            "parameter along C = 6 N D, all with posterior intervals."
        ),
        epilog=(
            "examples:\n"
            "  sloth skills fit.nc\n"
            "  sloth skills fit.nc --rotation varimax --names reasoning,knowledge,chat\n"
            "  sloth skills fit.nc --figures figures/ --json > skills.json"
        ),
    )
    skills.add_argument("file", metavar="FILE", help="posterior file written by sloth fit --out")
    skills.add_argument("--rotation", choices=CLI_ROTATIONS, default="geomin",
                        help="rotation per draw: oblique geomin (default) or oblimin, "
                             "orthogonal varimax, or none (the fit's anchor frame)")
    skills.add_argument("--names", metavar="A,B,C", default=None,
                        help="skill names in the order of the loadings table, comma-separated "
                             "(default: proposed from the top-loading benchmarks)")
    skills.add_argument("--compute", metavar="FLOPS", type=_budget, nargs="+",
                        default=[1e22, 1e24],
                        help="budgets for the compute-optimal table (default: 1e22 1e24)")
    skills.add_argument("--level", metavar="P", type=_level, default=0.9,
                        help="interval probability (default: 0.9)")
    skills.add_argument("--seed", metavar="INT", type=int, default=0,
                        help="seed of the rotation's random starts (default: 0)")
    skills.add_argument("--figures", metavar="DIR", default=None,
                        help="write PNG figures (loadings, level curves, traces) to DIR")
    skills.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout")
    skills.set_defaults(func=cmd_skills)


def _load(path: str) -> SlothModel:
    from sloth.estimator import SlothModel

    if not Path(path).expanduser().is_file():
        raise DataNotFoundError(
            f"FILE {path!r}: no such file. Fix: pass a posterior written by "
            f"'sloth fit --out FILE'")
    try:
        return SlothModel.load(Path(path).expanduser())
    except (OSError, KeyError) as exc:
        raise DataValidationError(
            f"FILE {path!r} could not be read as a sloth posterior ({type(exc).__name__}: "
            f"{exc}). Fix: pass a file written by 'sloth fit --out FILE'") from None


def write_figures(analysis: SkillAnalysis, directory: str | Path, level: float = 0.9
                  ) -> list[str]:
    """Write the skill figures as PNG files into ``directory``; return their paths. Each
    file is written whole or not at all (a stop leaves any earlier figure of that name).

    Files: ``loadings.png``, ``levels_<k>.png`` per skill, ``trace.png`` (trace and rank
    plots of each skill's top rotated loading).
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo"):
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from sloth.plotting import plot_loadings, plot_skill_levels, plot_trace

    out = Path(directory).expanduser()
    if out.exists() and not out.is_dir():
        raise DataValidationError(f"--figures {str(directory)!r} is a file; pass a directory")
    out.mkdir(parents=True, exist_ok=True)
    paths = []

    ax = plot_loadings(analysis, level=level)
    ax.figure.tight_layout()
    paths.append(out / "loadings.png")
    write_figure(ax.figure, paths[-1], dpi=90)
    plt.close(ax.figure)

    for k in range(analysis.n_skills):
        ax = plot_skill_levels(analysis, k, level=level)
        ax.figure.tight_layout()
        paths.append(out / f"levels_{k + 1}.png")
        write_figure(ax.figure, paths[-1], dpi=90)
        plt.close(ax.figure)

    top = analysis.top_benchmarks(1)
    fig, axes = plt.subplots(analysis.n_skills, 2, figsize=(9, 2.3 * analysis.n_skills),
                             squeeze=False)
    tree = analysis.to_datatree()
    for k, name in enumerate(analysis.names):
        coords = {"benchmark": top[name][0], "skill": name}
        plot_trace(tree, "loading", coords, ax=axes[k, 0])
        plot_trace(tree, "loading", coords, kind="rank", ax=axes[k, 1])
    fig.suptitle(f"rotated ({analysis.method}) loadings, aligned across chains", fontsize=10)
    fig.tight_layout()
    paths.append(out / "trace.png")
    write_figure(fig, paths[-1], dpi=80)
    plt.close(fig)
    return [str(p) for p in paths]


def _interval(mean: float, lower: float, upper: float, fmt: str = ".2f") -> str:
    return f"{mean:{fmt}} [{lower:{fmt}}, {upper:{fmt}}]"


def format_report(analysis: SkillAnalysis, compute: list[float], level: float) -> str:
    """The readable report of ``sloth skills``."""
    names = analysis.names
    width = max(12, *(len(b) for b in analysis.benchmarks)) + 2
    col = max(22, *(len(n) + 2 for n in names))
    pct = f"{level:.0%}"
    lines = [
        f"rotation     {analysis.method} per draw, aligned across draws and chains "
        f"({analysis.rotation.converged.mean():.1%} of draws converged; lowest congruence "
        f"with the reference {analysis.rotation.congruence.min():.2f})",
        "sampler      rotated posterior: " + "; ".join(
            f"{r.variable} R-hat <= {r.rhat_max:.3f}, bulk ESS >= {r.ess_bulk_min:.0f}"
            for r in analysis.convergence().itertuples()),
        "skills       " + "; ".join(
            f"{n} (top: {', '.join(b)})" for n, b in analysis.top_benchmarks().items()),
        "",
        f"loadings     posterior mean [{pct} interval]; skills have unit variance across "
        "the fitted models",
        "  " + "benchmark".ljust(width) + "".join(n.rjust(col) for n in names),
    ]
    table = analysis.loadings_table(level)
    for b in analysis.benchmarks:
        rows = table[table["benchmark"] == b]
        lines.append("  " + b.ljust(width) + "".join(
            _interval(r.mean, r.lower, r.upper).rjust(col) for r in rows.itertuples()))
    for kind, title in (("models", "skill correlation across the fitted models"),
                        ("families", "correlation of family efficiencies (population)")):
        lines += ["", f"{title} [{pct}]"]
        for r in analysis.correlation_table(kind, level).itertuples():
            lines.append(f"  {r.skill} ~ {r.other}: {_interval(r.mean, r.lower, r.upper)}")
    lines += ["", f"growth       rotated slopes per standardized covariate [{pct}]"]
    slopes = analysis.slopes_table(level)
    lines.append("  " + "covariate".ljust(26) + "".join(n.rjust(col) for n in names))
    for cov in analysis.covariates:
        rows = slopes[slopes["covariate"] == cov]
        lines.append("  " + cov.ljust(26) + "".join(
            _interval(r.mean, r.lower, r.upper).rjust(col) for r in rows.itertuples()))
    lo, hi = analysis.data_ratio_range
    opt = analysis.compute_optimal(compute, level=level)
    lines += [
        "",
        f"compute-optimal allocation along C = 6 N D (posterior median [{pct}]); tokens per "
        f"parameter searched within the data's range {lo:.3g}..{hi:.3g}",
        f"  {'skill':<24}{'C (FLOPs)':>10}{'N*':>30}{'D*/N*':>30}  interior / at low / "
        "at high end of D/N",
    ]
    for r in opt.itertuples():
        lines.append(
            f"  {r.skill:<24}{r.compute:>10.0e}"
            f"{_interval(r.N_opt, r.N_opt_lower, r.N_opt_upper, '.2e'):>30}"
            f"{_interval(r.D_per_N, r.D_per_N_lower, r.D_per_N_upper, '.3g'):>30}"
            f"  {r.interior:.0%} / {r.at_params_end:.0%} / {r.at_tokens_end:.0%}")
    lines += ["", "iso-FLOP slope: change of each skill per decade of D/N at D/N = 20 "
              f"(> 0 data-hungry, < 0 parameter-hungry) [{pct}]"]
    for r in analysis.iso_flop_slope(level=level).itertuples():
        lines.append(f"  {r.skill:<24}{_interval(r.mean, r.lower, r.upper):>24}"
                     f"   P(> 0) = {r.prob_positive:.2f}")
    return "\n".join(lines)


def cmd_skills(args: argparse.Namespace) -> int:
    """``sloth skills``: print the skill tables and write the figures."""
    from sloth.skills.analysis import analyze_skills

    model = _load(args.file)
    names = split_list(args.names)
    if names is not None and len(names) != model.structure_.n_skills:
        raise DataValidationError(
            f"--names {args.names!r} gives {len(names)} names; the fit has "
            f"{model.structure_.n_skills} skills. Fix: pass one name per skill, e.g. "
            f"--names " + ",".join(f"skill{k + 1}" for k in range(model.structure_.n_skills)))
    analysis = analyze_skills(model, rotation=args.rotation, names=names, seed=args.seed)
    figures = (write_figures(analysis, args.figures, args.level)
               if args.figures else [])
    if args.json:
        out = analysis.to_dict(compute=args.compute, level=args.level)
        out.update(posterior_file=str(args.file), figures=figures)
        print_json(out)
        return 0
    print(f"skills of {args.file}")
    print(format_report(analysis, list(args.compute), args.level))
    if figures:
        print(f"\nfigures written: {', '.join(figures)}")
    return 0
