"""``sloth fit``: fit the latent-skill model, save the posterior, print a summary."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sloth.exceptions import (
    ConvergenceWarning,
    DataNotFoundError,
    DataValidationError,
    SlothError,
)

if TYPE_CHECKING:
    from sloth.data.table import ScoreTable
    from sloth.estimator import SlothModel

from sloth import defaults
from sloth.cli.common import (
    DEFAULT_OUT,
    HelpFormatter,
    add_force_option,
    check_out,
    floor_item,
    int_in,
    max_samples_option,
    print_json,
    skills_option,
    split_list,
    target_accept,
    with_cli_fix,
)

DEFAULT_FAMILY_COLUMN = "Family2"


def _benchmark_spec(text: str | None, floors: dict[str, float]) -> str | list[str] | None:
    """The ``benchmarks=`` argument of the loaders from ``--benchmarks``.

    ``None`` (option not given) keeps each loader's default: the twelve leaderboard
    benchmarks for the leaderboard's schema, every score column for your own table.
    """
    from sloth.data.registry import BENCHMARK_GROUPS, default_registry

    if text is None:
        return None
    if "," not in text:
        name = text.strip()
        if name in BENCHMARK_GROUPS:
            return name
        if name in default_registry() or name in floors:
            return [name]
        groups = ", ".join(repr(g) for g in BENCHMARK_GROUPS)
        raise DataValidationError(
            f"--benchmarks {text!r} is neither a benchmark group ({groups}) nor a known "
            f"benchmark. Fix: pass a group, or a comma-separated list of score columns such "
            f"as --benchmarks MMLU,ARC,GSM8K; give a new benchmark's guessing floor with "
            f"--floor '{name}=VALUE'. Known benchmarks: {', '.join(default_registry().names())}"
        )
    names = split_list(text)
    if not names:
        raise DataValidationError(
            f"--benchmarks {text!r} names no benchmark. Fix: pass a group (v1, v2, all) or "
            f"names such as --benchmarks MMLU,GSM8K"
        )
    return names


def _load_table(args: argparse.Namespace) -> tuple[ScoreTable, str]:
    """Read and validate the evaluations named by ``args``; return (table, description)."""
    from sloth.data.leaderboard import (
        INSTRUCT,
        is_leaderboard_schema,
        load_evaluations,
        load_leaderboard,
    )
    from sloth.data.validation import read_table

    floors = dict(args.floor or [])
    benchmarks = _benchmark_spec(args.benchmarks, floors)
    covariates = list(args.covariate or [])
    if args.data is None:
        table = load_leaderboard(
            benchmarks="all" if benchmarks is None else benchmarks,
            family_column=args.family_column or DEFAULT_FAMILY_COLUMN,
            floors=floors or None, interface="cli",
        )
        return table, "Sloth paper leaderboard (sloth-leaderboard/data_v2.csv)"
    if not Path(args.data).expanduser().is_file():
        raise DataNotFoundError(
            f"--data {str(args.data)!r}: no such file. Fix: check the path, or leave out "
            f"--data to fit the Sloth paper's leaderboard"
        )
    frame = read_table(args.data)
    if is_leaderboard_schema(frame):
        unknown = [c for c in covariates if c != INSTRUCT]
        if unknown:
            raise DataValidationError(
                f"--covariate {unknown} is not available for a table in the leaderboard's "
                f"schema (it offers {INSTRUCT!r}). Fix: use --covariate {INSTRUCT} or none"
            )
        kwargs: dict[str, Any] = {
            "benchmarks": "all" if benchmarks is None else benchmarks,
            "family_column": args.family_column or DEFAULT_FAMILY_COLUMN,
            "interface": "cli",
        }
    else:
        kwargs = {"benchmarks": benchmarks, "extra_covariates": covariates,
                  **_column_mapping(args)}
        if args.skip_incomplete:
            kwargs["on_missing_size"] = "skip"
    if floors:
        kwargs["floors"] = floors
    return load_evaluations(frame, **kwargs), str(args.data)


def _column_mapping(args: argparse.Namespace) -> dict[str, Any]:
    """Keywords of :func:`sloth.data.leaderboard.load_evaluations` that map the columns and
    units of your own table (``--model-column``, ``--params-unit``, ``--rename``, ...)."""
    from sloth.data.mapping import parse_renames

    kwargs: dict[str, Any] = {
        f"{name}_column": getattr(args, f"{name}_column")
        for name in ("model", "family", "params", "tokens", "compute")
        if getattr(args, f"{name}_column")
    }
    for name in ("params", "tokens", "compute"):
        if getattr(args, f"{name}_unit") is not None:
            kwargs[f"{name}_unit"] = getattr(args, f"{name}_unit")
    if args.rename:
        kwargs["rename"] = parse_renames(args.rename)
    kwargs["interface"] = "cli"
    return kwargs


def _check_conflicts(args: argparse.Namespace) -> None:
    """Refuse options that contradict each other."""
    if args.no_instruct and "instruct" in (args.covariate or []):
        raise DataValidationError(
            "--no-instruct and --covariate instruct contradict each other. Fix: give one of "
            "the two")
    if args.tokens_column and args.compute_column:
        raise DataValidationError(
            "--tokens-column and --compute-column both give the training tokens. Fix: give "
            "one of the two (tokens are derived from compute as C / (6 N))")
    if args.data is None:
        given = [f"--{name.replace('_', '-')}" for name in
                 ("model_column", "params_column", "tokens_column", "compute_column",
                  "params_unit", "tokens_unit", "compute_unit", "rename")
                 if getattr(args, name)]
        if given:
            raise DataValidationError(
                f"{', '.join(given)} map the columns of your own --data table; the "
                f"leaderboard needs none. Fix: add --data PATH or drop them")


def cmd_fit(args: argparse.Namespace) -> int:
    """``sloth fit``: fit the latent-skill model, save the posterior, print a summary."""
    try:
        return _fit(args)
    except SlothError as exc:
        raise with_cli_fix(exc) from None


def _covariates(args: argparse.Namespace, table: ScoreTable) -> list[str]:
    """Extra covariates of a fit: those named with --covariate, else the leaderboard's
    instruct flag (unless --no-instruct), else none."""
    if args.covariate:
        return list(args.covariate)
    if "instruct" in table.extra_covariates and not args.no_instruct:
        return ["instruct"]
    return []


def _fit(args: argparse.Namespace) -> int:
    _check_conflicts(args)
    out = check_out(args.out, force=args.force)
    table, source = _load_table(args)
    model = build_model(args, table)
    # Whatever a library prints while fitting goes to stderr: stdout is for the result.
    with contextlib.redirect_stdout(sys.stderr):
        with warnings.catch_warnings():
            # the report below prints the convergence checks that did not pass
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(table)
        model.save(out)
        summary = fit_report(model, source=source, out=str(out))
    if args.json:
        print_json(summary)
    else:
        print(format_fit_report(summary), flush=True)
    return 0


def default_fit_args() -> argparse.Namespace:
    """The options of a plain ``sloth fit`` (every default), e.g. for the cached default fit
    of ``sloth forecast``."""
    parser = argparse.ArgumentParser(prog="sloth")
    add_fit_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["fit"])


def load_table(args: argparse.Namespace) -> tuple[ScoreTable, str]:
    """The validated table that ``sloth fit`` with ``args`` fits, and its description."""
    _check_conflicts(args)
    return _load_table(args)


def build_model(args: argparse.Namespace, table: ScoreTable) -> SlothModel:
    """The unfitted estimator that ``sloth fit`` with ``args`` fits to ``table``."""
    from sloth.estimator import SlothModel

    covariates = _covariates(args, table)
    return SlothModel(
        args.skills,
        extra_covariates=covariates,
        noise=args.noise,
        link=args.link,
        family_benchmark_effects=args.family_effects,
        family_parametrization=args.family_parametrization,
        anchors=split_list(args.anchors),
        num_chains=args.chains,
        num_warmup=args.warmup,
        num_samples=args.samples,
        max_samples=args.max_samples,
        target_accept=args.target_accept,
        map_starts=args.map_starts,
        seed=args.seed,
        progress_bar=not args.quiet,
    )


def fit_report(model: SlothModel, *, source: str, out: str) -> dict[str, Any]:
    """The fitted model's summary with the data source, skipped models and output file.

    Parameters
    ----------
    model : SlothModel
        A fitted model.
    source : str
        Where the data came from (shown to the user).
    out : str
        Path of the saved posterior file.

    Returns
    -------
    dict
        :meth:`SlothModel.summary` plus ``data``, ``benchmarks``, ``skipped`` (model and
        reason of each model left out), ``settings`` and ``posterior_file``.
    """
    summary = model.summary()
    skipped = model.table_.skipped
    report: dict[str, Any] = {
        "data": source,
        "benchmarks": list(model.benchmarks_),
        **summary,
        "skipped": [{"model": str(r["model"]), "reason": str(r["reason"])}
                    for r in skipped.to_dict("records")] if skipped is not None else [],
        "settings": {
            "num_chains": model.num_chains, "num_warmup": model.num_warmup,
            "num_samples": model.num_samples, "max_samples": model.max_samples,
            "noise": model.noise, "seed": model.seed,
            "target_accept": model.target_accept,
            "extra_covariates": list(model.extra_covariates),
        },
        "posterior_file": out,
    }
    return report


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, spec)


def format_fit_report(report: dict[str, Any]) -> str:
    """Human-readable text of :func:`fit_report`'s dict."""
    s = report["sampler"]
    t = report.get("timings", {})
    lines = [
        f"data        {report['data']}",
        f"            {report['n_models']} models in {report['n_families']} families, "
        f"{report['n_scores']} scores on {len(report['benchmarks'])} benchmarks; "
        f"{report['n_skipped']} models skipped",
    ]
    for row in report.get("skipped", [])[:20]:
        lines.append(f"              skipped {row['model']}: {row['reason']}")
    if len(report.get("skipped", [])) > 20:
        lines.append(f"              ... and {len(report['skipped']) - 20} more")
    settings = report.get("settings", {})
    lines += [
        "",
        f"sampler     NUTS, {s.get('num_chains', settings.get('num_chains'))} chains x "
        f"{s.get('num_draws', settings.get('num_samples'))} draws after "
        f"{settings.get('num_warmup', '?')} warm-up, {report['n_skills']} skill(s)",
        f"  divergences          {s['divergences']}",
        f"  worst R-hat          {_fmt(s['rhat_max'], '.3f')} ({s['worst_rhat_variable']})",
        f"  lowest bulk ESS      {_fmt(s['ess_bulk_min'], '.0f')} "
        f"({s['lowest_ess_variable']})",
        f"  lowest tail ESS      {_fmt(s.get('ess_tail_min'), '.0f')}",
        f"  mean leapfrog steps  {_fmt(s['mean_leapfrog_steps'], '.1f')}",
        f"  wall time            MAP {_fmt(t.get('map'), '.1f')} s, sampling "
        f"{_fmt(t.get('sampling'), '.1f')} s, total {_fmt(t.get('total'), '.1f')} s",
    ]
    problems = [f"{f['check']}: {f['message']}" for f in report.get("convergence_warnings", [])]
    lines += [f"  warning: {w}" for w in problems]

    loadings = report["loadings"]
    anchors = set(report.get("anchors", []))
    skills = list(next(iter(loadings.values())).keys()) if loadings else []
    mae = report["in_sample_mae_per_benchmark"]
    width = max([len(b) for b in loadings] + [len("benchmark")]) + 2
    lines += [
        "",
        "loadings    posterior means; * = anchor benchmark (loads on its skill alone)",
        "  " + "benchmark".ljust(width) + "".join(f"{k:>10}" for k in skills) + f"{'MAE':>10}",
    ]
    for b, row in loadings.items():
        name = f"{b}*" if b in anchors else b
        lines.append("  " + name.ljust(width) + "".join(f"{row[k]:>10.3f}" for k in skills)
                     + f"{_fmt(mae.get(b), '.4f'):>10}")
    lines += [
        "",
        f"in-sample MAE  {_fmt(report['in_sample_mae'], '.4f')} (posterior mean score vs "
        f"observed score; per benchmark: last column above)",
        f"posterior     written to {report['posterior_file']} "
        f"(load with sloth.SlothModel.load)",
    ]
    return "\n".join(lines)


def add_fit_parser(sub: Any) -> None:
    fit = sub.add_parser(
        "fit", formatter_class=HelpFormatter,
        help="fit the latent-skill model to a leaderboard and save the posterior",
        description=(
            "Fit the Bayesian latent-skill model (NUTS) to benchmark evaluations, print\n"
            "sampler diagnostics, loadings and in-sample error, and save the posterior to a\n"
            "netCDF file (load it with sloth.SlothModel.load).\n\n"
            "Without --data the Sloth paper's leaderboard is used, found through\n"
            "$SLOTH_DATA_DIR, the download cache, or a checksum-verified download."
        ),
        epilog=(
            "examples:\n"
            "  sloth fit --out leaderboard-fit.nc\n"
            "  sloth fit --benchmarks v2 --skills 2 --json > summary.json\n"
            "  sloth fit --data my_evals.csv --benchmarks MMLU,ARC,MyQA --floor MyQA=0.25"
        ),
    )
    data = fit.add_argument_group("data")
    data.add_argument(
        "--data", metavar="PATH", default=None,
        help="CSV of evaluations: the leaderboard's schema, or your own table with columns "
             "model, family, params, tokens (absolute counts) and one score column (0-1) per "
             "benchmark (default: the Sloth paper's leaderboard)")
    data.add_argument(
        "--benchmarks", metavar="SPEC", default=None,
        help="a group (v1, v2, all) or comma-separated benchmark names, e.g. "
             "MMLU,ARC,GSM8K (default: all 12 leaderboard benchmarks; every score column of "
             "your own --data table)")
    data.add_argument(
        "--family-column", metavar="COL", default=None,
        help=f"column naming each model's family (default: {DEFAULT_FAMILY_COLUMN} for the "
             f"leaderboard's schema, whose coarser alternative is Family; 'family' for your "
             f"own table)")
    columns = fit.add_argument_group(
        "columns and units of your own --data table",
        "map another source's table into sloth's schema without rewriting it, e.g.\n"
        "  --model-column Model --family-column 'Model Family' --params-column 'Model Size (B)'\n"
        "  --params-unit billions --tokens-column 'Pretraining Data Size (T)' --tokens-unit\n"
        "  trillions --rename ARC-C=ARC,Winograd=Winogrande")
    for name, what in (("model", "the unique model name"), ("params", "the parameter count"),
                       ("tokens", "the training-token count")):
        columns.add_argument(f"--{name}-column", metavar="COL", default=None,
                             help=f"column holding {what} (default: {name})")
    columns.add_argument(
        "--compute-column", metavar="COL", default=None,
        help="column of training compute, for a table without tokens: tokens = C / (6 N)")
    for name, example in (("params", "billions"), ("tokens", "trillions"), ("compute", "1e21")):
        columns.add_argument(
            f"--{name}-unit", metavar="UNIT", default=None,
            help=f"unit of the {name} column: count, thousands, millions, billions, "
                 f"trillions (or K, M, B, T) or a multiplier, e.g. {example} (default: "
                 f"{'FLOPs' if name == 'compute' else 'absolute counts'})")
    columns.add_argument(
        "--rename", metavar="OLD=NEW,...", default=None,
        help="rename columns before reading, e.g. benchmarks: ARC-C=ARC,Winograd=Winogrande")
    data.add_argument(
        "--floor", metavar="NAME=VALUE", type=floor_item, action="append", default=None,
        help="guessing floor of a benchmark sloth does not know (repeatable), e.g. "
             "MyQA=0.25")
    data.add_argument(
        "--covariate", metavar="COL", action="append", default=None,
        help="extra covariate column of the skills (repeatable), e.g. instruct for the "
             "leaderboard's Instruct flag (default: instruct for the leaderboard, which lets "
             "instruction tuning lift skills; none for your own table)")
    data.add_argument(
        "--no-instruct", action="store_true",
        help="fit the leaderboard without its instruct covariate")
    data.add_argument(
        "--skip-incomplete", action="store_true",
        help="leave out models of your own table with an empty params or tokens "
             "cell instead of stopping (the leaderboard's are always left out and listed)")

    model = fit.add_argument_group("model")
    model.add_argument("--skills", type=skills_option, default=defaults.N_SKILLS,
                       metavar="D",
                       help="number of latent skills, 1 to 4, or 'auto': 3, or fewer where "
                            "the benchmarks would leave them just identified (2 for six)")
    model.add_argument("--noise", choices=("student_t", "normal"), default="student_t",
                       help="misfit distribution of a score around its mean")
    model.add_argument("--link", choices=("logistic", "richards", "ceiling", "flexible"),
                       default=defaults.LINK,
                       help="link from skills to scores: flexible learns an asymmetry and a "
                            "ceiling per benchmark (more accurate, better calibrated "
                            "forecasts; logistic is about 2x faster)")
    model.add_argument("--family-effects", action=argparse.BooleanOptionalAction,
                       default=True,
                       help="model each family's own deviation per benchmark: forecasts carry "
                            "a new family's deviations on its observed models to its larger "
                            "ones (sloth.model.family_effects)")
    model.add_argument("--family-parametrization", choices=("centered", "non_centered"),
                       default="centered",
                       help="how NUTS sees the family efficiencies: centred (sampled "
                            "directly) or non-centred (standardized offsets times the "
                            "population scale; mixes better where families are weakly "
                            "observed)")
    model.add_argument("--anchors", metavar="B1,B2,...", default=None,
                       help="anchor benchmark of each skill, comma-separated (default: "
                            "chosen from an exploratory MAP fit)")

    sampler = fit.add_argument_group("sampler")
    sampler.add_argument("--chains", metavar="N", type=int_in(1, None, "the number of chains"),
                         default=defaults.FIT_SAMPLER["num_chains"], help="NUTS chains")
    sampler.add_argument("--warmup", metavar="N", type=int_in(1, None, "the warm-up length"),
                         default=defaults.FIT_SAMPLER["num_warmup"],
                         help="warm-up iterations per chain")
    sampler.add_argument("--samples", metavar="N", type=int_in(1, None, "the number of draws"),
                         default=defaults.FIT_SAMPLER["num_samples"],
                         help="posterior draws per chain (more while the chains have not "
                              "mixed, up to --max-samples)")
    sampler.add_argument("--max-samples", metavar="N|auto|none", type=max_samples_option,
                         default=defaults.FIT_SAMPLER["max_samples"],
                         help="draws per chain at most: until then, chains that have not "
                              "mixed (R-hat above 1.01, or ESS below 100 per chain) draw on; "
                              "'auto' (default): four times --samples; 'none': exactly "
                              "--samples")
    sampler.add_argument("--target-accept", metavar="P", type=target_accept, default=0.9,
                         help="target acceptance probability of NUTS, in [0.5, 1)")
    sampler.add_argument("--map-starts", metavar="N",
                         type=int_in(1, None, "the number of MAP starts"), default=2,
                         help="random starts of the exploratory MAP fit")
    sampler.add_argument("--seed", metavar="INT", type=int, default=0,
                         help="seed of everything random (same seed, same posterior)")

    output = fit.add_argument_group("output")
    output.add_argument("--out", metavar="FILE", default=DEFAULT_OUT,
                        help="netCDF file the posterior is written to")
    add_force_option(output)
    output.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object on stdout (progress "
                             "stays on stderr)")
    output.add_argument("--quiet", action="store_true",
                        help="no stage messages or progress bar on stderr")
    fit.set_defaults(func=cmd_fit)


