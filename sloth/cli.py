"""The ``sloth`` command line.

::

    sloth fit [--data PATH] [--benchmarks v1|v2|all|NAME,NAME...] [--skills D]
              [--chains 4] [--warmup 500] [--samples 2000] [--out sloth-fit.nc] [--json]
    sloth forecast --posterior FIT.nc --models new.csv [--observed scores.csv] ...
    sloth evaluate --splits FILE --out predictions.csv [--zero-shot] ...
    sloth diagnose FIT.nc [--json] [--strict]
    sloth skills FIT.nc [--rotation geomin] [--figures DIR] [--json]
    sloth laws fit RUNS.csv ...        (loss scaling laws, see ``sloth laws --help``)
    sloth laws allocate FIT.json ...

Conventions shared by every subcommand:

- ``--json`` prints one JSON object on stdout and nothing else; progress and warnings go to
  stderr.
- Bad input (a malformed table, an unknown benchmark, a missing file, an invalid option)
  exits with status 2 and a one-paragraph message on stderr naming the offending input and
  the fix, never a traceback. An interrupt (Ctrl-C) exits with status 130.

Heavy modules (JAX, NumPyro, the estimator) are imported inside the command functions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sloth.exceptions import DataNotFoundError, DataValidationError, SlothError

if TYPE_CHECKING:
    from sloth.data.table import ScoreTable
    from sloth.estimator import SlothModel

__all__ = ["build_parser", "main"]

#: Exit status of bad input (the same as argparse's usage errors).
EXIT_BAD_INPUT = 2
#: Exit status after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

#: Default posterior file of ``sloth fit``.
DEFAULT_OUT = "sloth-fit.nc"
#: Family column of the leaderboard's schema used by default.
DEFAULT_FAMILY_COLUMN = "Family2"
#: Thresholds above/below which ``sloth fit`` warns about the sampler.
RHAT_WARN = 1.01
ESS_WARN = 400.0


# ----------------------------------------------------------------------------- helpers


def _int_in(low: int, high: int | None, what: str) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers in ``[low, high]``, with a clear message."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer ({what})") from None
        if value < low or (high is not None and value > high):
            allowed = (f"an integer from {low} to {high}" if high is not None
                       else f"an integer >= {low}")
            raise argparse.ArgumentTypeError(f"{value} is not allowed: {what} must be {allowed}")
        return value

    parse.__name__ = what
    return parse


def _floor_item(text: str) -> tuple[str, float]:
    """Parse ``NAME=VALUE`` of ``--floor``."""
    name, sep, value = text.rpartition("=")
    try:
        floor = float(value)
    except ValueError:
        sep = ""
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NAME=VALUE; write e.g. --floor 'MyQA=0.25' (the expected score "
            f"of random guessing: 0.25 for four choices, 0 for free-form answers)"
        )
    return name.strip(), floor


def _target_accept(text: str) -> float:
    """Parse ``--target-accept``: a probability in [0.5, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.5 <= value < 1.0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: the target acceptance probability must be a number in "
            f"[0.5, 1), e.g. 0.9"
        )
    return value


def _split_list(text: str | None) -> list[str] | None:
    """Comma-separated names, stripped, without empty items (``None`` stays ``None``)."""
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]


def _finite(obj: Any) -> Any:
    """``obj`` with non-finite floats replaced by ``None`` (strict JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _finite(obj.item())
    return obj


def print_json(obj: Any) -> None:
    """Print ``obj`` as one strict-JSON object on stdout (the ``--json`` convention)."""
    print(json.dumps(_finite(obj), indent=1, allow_nan=False), flush=True)


def _err(message: str) -> None:
    print(f"sloth: error: {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- sloth fit


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
    names = _split_list(text)
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
            floors=floors or None,
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
        }
    else:
        kwargs = {"benchmarks": benchmarks, "extra_covariates": covariates}
        if args.family_column:
            kwargs["family_column"] = args.family_column
        if args.skip_incomplete:
            kwargs["on_missing_size"] = "skip"
    if floors:
        kwargs["floors"] = floors
    return load_evaluations(frame, **kwargs), str(args.data)


#: (text of a library message, the command-line spelling of its fix).
_CLI_FIXES = (
    ("no known guessing floor", "On the command line: --floor 'NAME=VALUE' (repeatable)."),
    ("on_missing_size='skip'", "On the command line: --skip-incomplete."),
    ("pass family_column=", "On the command line: --family-column COL."),
    ("pass extra_covariates=", "On the command line: --covariate COL."),
    ("pass benchmarks=", "On the command line: --benchmarks NAME,NAME,..."),
    ("choose benchmarks=", "On the command line: --benchmarks NAME,NAME,..."),
    ("use n_skills <=", "On the command line: --skills D or more --benchmarks."),
)


def _with_cli_fix(exc: SlothError) -> SlothError:
    """The same error, its message completed with the command-line spelling of the fix."""
    message = str(exc)
    extra = list(dict.fromkeys(fix for key, fix in _CLI_FIXES if key in message))
    if not extra:
        return exc
    message = message.rstrip()
    if not message.endswith("."):
        message += "."
    try:
        return type(exc)(" ".join([message, *extra]))
    except TypeError:  # a subclass with another constructor: keep it as it is
        return exc


def _check_out(out: str) -> Path:
    """Fail before fitting when the posterior file cannot be written."""
    path = Path(out).expanduser()
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise FileNotFoundError(f"--out {out!r} is a folder. Fix: give a file name, e.g. "
                                f"{os.path.join(out, DEFAULT_OUT)}")
    if not parent.is_dir():
        raise FileNotFoundError(f"--out {out!r}: folder {str(parent)!r} does not exist. Fix: "
                                f"create it or choose another path")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"--out {out!r}: folder {str(parent)!r} is not writable. Fix: "
                              f"choose another path")
    return path


def cmd_fit(args: argparse.Namespace) -> int:
    """``sloth fit``: fit the latent-skill model, save the posterior, print a summary."""
    try:
        return _fit(args)
    except SlothError as exc:
        raise _with_cli_fix(exc) from None


def _covariates(args: argparse.Namespace, table: ScoreTable) -> list[str]:
    """Extra covariates of a fit: those named with --covariate, else the leaderboard's
    instruct flag (unless --no-instruct), else none."""
    if args.covariate:
        return list(args.covariate)
    if "instruct" in table.extra_covariates and not args.no_instruct:
        return ["instruct"]
    return []


def _fit(args: argparse.Namespace) -> int:
    out = _check_out(args.out)
    table, source = _load_table(args)
    from sloth.estimator import SlothModel

    covariates = _covariates(args, table)
    model = SlothModel(
        args.skills,
        extra_covariates=covariates,
        noise=args.noise,
        link=args.link,
        family_benchmark_effects=args.family_effects,
        anchors=_split_list(args.anchors),
        num_chains=args.chains,
        num_warmup=args.warmup,
        num_samples=args.samples,
        target_accept=args.target_accept,
        map_starts=args.map_starts,
        seed=args.seed,
        progress_bar=not args.quiet,
    )
    # Whatever a library prints while fitting goes to stderr: stdout is for the result.
    with contextlib.redirect_stdout(sys.stderr):
        model.fit(table)
        model.save(out)
        summary = fit_report(model, source=source, out=str(out))
    if args.json:
        print_json(summary)
    else:
        print(format_fit_report(summary), flush=True)
    return 0


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
            "num_samples": model.num_samples, "noise": model.noise, "seed": model.seed,
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
    warnings = []
    if s["divergences"]:
        warnings.append(f"{s['divergences']} divergent transitions: raise --target-accept "
                        f"(e.g. 0.95) and check the fit before trusting it")
    rhat = s["rhat_max"]
    if rhat is None or not math.isfinite(rhat) or rhat > RHAT_WARN:
        warnings.append(f"R-hat above {RHAT_WARN}: chains disagree; run longer (--warmup, "
                        f"--samples) or use fewer skills")
    ess = s["ess_bulk_min"]
    if ess is None or not math.isfinite(ess) or ess < ESS_WARN:
        warnings.append(f"bulk ESS below {ESS_WARN:.0f}: intervals are imprecise; draw more "
                        f"(--samples, --chains)")
    lines += [f"  warning: {w}" for w in warnings]

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


# ----------------------------------------------------------------------------- parser


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the descriptions' line breaks; show each option's default unless the help text
    already explains it (``None``/``False`` defaults are explained in words)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or not action.option_strings:
            return text
        if isinstance(action, argparse._StoreTrueAction):
            return text + " (default: off)"
        if action.default is not None and action.default is not argparse.SUPPRESS:
            return text + " (default: %(default)s)"
        return text


def _add_fit_parser(sub: Any) -> None:
    fit = sub.add_parser(
        "fit", formatter_class=_Formatter,
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
    data.add_argument(
        "--floor", metavar="NAME=VALUE", type=_floor_item, action="append", default=None,
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
    model.add_argument("--skills", type=_int_in(1, 4, "the number of skills"), default=3,
                       metavar="D", help="number of latent skills, 1 to 4")
    model.add_argument("--noise", choices=("student_t", "normal"), default="student_t",
                       help="misfit distribution of a score around its mean")
    model.add_argument("--link", choices=("logistic", "richards", "ceiling", "flexible"),
                       default="logistic",
                       help="link from skills to scores: flexible learns an asymmetry and a "
                            "ceiling per benchmark (more accurate forecasts, ~2x the time)")
    model.add_argument("--family-effects", action=argparse.BooleanOptionalAction,
                       default=True,
                       help="model each family's own deviation per benchmark: forecasts carry "
                            "a new family's deviations on its observed models to its larger "
                            "ones (sloth.family_effects)")
    model.add_argument("--anchors", metavar="B1,B2,...", default=None,
                       help="anchor benchmark of each skill, comma-separated (default: "
                            "chosen from an exploratory MAP fit)")

    sampler = fit.add_argument_group("sampler")
    sampler.add_argument("--chains", metavar="N", type=_int_in(1, None, "the number of chains"),
                         default=4, help="NUTS chains")
    sampler.add_argument("--warmup", metavar="N", type=_int_in(1, None, "the warm-up length"),
                         default=500, help="warm-up iterations per chain")
    sampler.add_argument("--samples", metavar="N", type=_int_in(1, None, "the number of draws"),
                         default=2000, help="posterior draws per chain")
    sampler.add_argument("--target-accept", metavar="P", type=_target_accept, default=0.9,
                         help="target acceptance probability of NUTS, in [0.5, 1)")
    sampler.add_argument("--map-starts", metavar="N",
                         type=_int_in(1, None, "the number of MAP starts"), default=2,
                         help="random starts of the exploratory MAP fit")
    sampler.add_argument("--seed", metavar="INT", type=int, default=0,
                         help="seed of everything random (same seed, same posterior)")

    output = fit.add_argument_group("output")
    output.add_argument("--out", metavar="FILE", default=DEFAULT_OUT,
                        help="netCDF file the posterior is written to")
    output.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object on stdout (progress "
                             "stays on stderr)")
    output.add_argument("--quiet", action="store_true",
                        help="no stage messages or progress bar on stderr")
    fit.set_defaults(func=cmd_fit)


def _add_forecast_parser(sub: Any) -> None:
    forecast = sub.add_parser(
        "forecast", formatter_class=_Formatter,
        help="forecast models of families that were not in the fit",
        description=(
            "Forecast benchmark scores of models of new families from a saved fit, without "
            "refitting. A family with observed models in --observed is conditioned on them; "
            "a family without is drawn from the fitted population of families."
        ),
        epilog=(
            "examples:\n"
            "  sloth forecast --posterior fit.nc --models new.csv\n"
            "  sloth forecast --posterior fit.nc --models new.csv --observed first.csv --json"
        ),
    )
    forecast.add_argument("--posterior", metavar="FILE", required=True,
                          help="posterior file written by sloth fit")
    forecast.add_argument(
        "--models", metavar="CSV", required=True,
        help="models to forecast: columns model, family, params, tokens (absolute counts) "
             "and the fit's extra covariates (e.g. instruct)")
    forecast.add_argument(
        "--observed", metavar="CSV", default=None,
        help="already evaluated models of those families: the same columns plus one score "
             "column per benchmark of the fit (default: none, population forecast)")
    forecast.add_argument("--kind", choices=("score", "mean"), default="score",
                          help="posterior predictive of a score, or posterior of its mean")
    forecast.add_argument("--seed", metavar="INT", type=int, default=0, help="random seed")
    forecast.add_argument("--out", metavar="CSV", default=None,
                          help="also write the predictions to this CSV file")
    forecast.add_argument("--json", action="store_true",
                          help="print the predictions as one JSON object on stdout")
    forecast.set_defaults(func=cmd_forecast)


def cmd_forecast(args: argparse.Namespace) -> int:
    """``sloth forecast``: forecast new families from a saved fit."""
    import pandas as pd

    from sloth.estimator import SlothModel
    from sloth.forecast import forecast

    for option, path in (("--posterior", args.posterior), ("--models", args.models),
                         ("--observed", args.observed)):
        if path is not None and not Path(path).expanduser().is_file():
            raise DataNotFoundError(f"{option} {str(path)!r}: no such file. Fix: check the path")
    model = SlothModel.load(args.posterior)
    models = pd.read_csv(args.models)
    observed = pd.read_csv(args.observed) if args.observed else None
    out = forecast(model, models, observed, kind=args.kind, seed=args.seed)
    if args.out:
        out.to_csv(args.out, index=False)
    if args.json:
        print_json({"posterior_file": str(args.posterior), "kind": args.kind,
                    "predictions": out.to_dict(orient="records")})
        return 0
    print(f"forecast ({args.kind}; 90% intervals) from {args.posterior}")
    for (model_name, family), rows in out.groupby(["model", "family"], sort=False):
        print(f"\n{model_name} ({family})")
        for row in rows.itertuples():
            print(f"  {row.benchmark:<12} {row.mean:6.3f}  [{row.q05:.3f}, {row.q95:.3f}]")
    if args.out:
        print(f"\npredictions written to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``sloth`` argument parser with every subcommand."""
    from sloth import __version__

    parser = argparse.ArgumentParser(
        prog="sloth", formatter_class=_Formatter,
        description=(
            "Bayesian latent-skill scaling laws for LLMs.\n\n"
            "Every command prints a readable summary, or one JSON object on stdout with "
            "--json.\nBad input exits with status 2 and a message saying what to fix."
        ),
    )
    parser.add_argument("--version", action="version", version=f"sloth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_fit_parser(sub)
    _add_forecast_parser(sub)
    from sloth.evaluate_cli import add_evaluate_parser

    add_evaluate_parser(sub)
    try:
        from sloth.laws.cli import add_laws_parser
    except ImportError:
        pass
    else:
        add_laws_parser(sub)
    from sloth.skills_cli import add_skills_parser

    add_skills_parser(sub)
    from sloth.diagnose_cli import add_diagnose_parser

    add_diagnose_parser(sub)
    return parser


# ----------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sloth`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 for bad input (message on stderr), 130 after Ctrl-C.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    func = getattr(args, "func", None)
    if func is None:  # a command group without its sub-command
        parser.print_usage(sys.stderr)
        _err(f"'sloth {args.command}' needs a sub-command; see 'sloth {args.command} --help'")
        return EXIT_BAD_INPUT
    try:
        return int(func(args))
    except KeyboardInterrupt:
        print("sloth: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except (SlothError, ValueError, FileNotFoundError, OSError) as exc:
        _err(str(exc) or type(exc).__name__)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    raise SystemExit(main())
