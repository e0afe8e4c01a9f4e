"""``sloth evaluate``: the leave-one-family-out protocol from the command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from sloth import defaults
from sloth.cli.common import (
    HelpFormatter,
    add_force_option,
    add_scheduler_option,
    check_figure_out,
    check_out,
    float_option,
    int_in,
    max_samples_option,
    open_executor,
    print_json,
    skills_option,
    write_csv,
    write_figure,
)
from sloth.evaluation.protocol import DEFAULT_CUTOFF_QUANTILE, MIN_COMPUTE_RATIO
from sloth.exceptions import DataNotFoundError, DataValidationError

#: Method names accepted by ``--methods`` besides the baselines' reference names.
SLOTH_METHOD = "sloth"
#: The baselines run by default next to sloth.
DEFAULT_BASELINES = (
    "per_benchmark_flops_sigmoid_family_intercept",
    "per_benchmark_flops_sigmoid_shared",
    "pca_observational_d3",
)


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _int_list(text: str) -> list[int]:
    try:
        values = [int(t) for t in _csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers"
        ) from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: k must be >= 0")
    return values


#: ``--min-compute-ratio``: a number >= 1.
_ratio = float_option(lambda v: v >= 1, "--min-compute-ratio must be a number >= 1, e.g. 4")
#: ``--compute-cutoff``: FLOPs (> 1) or a quantile in (0, 1).
_cutoff = float_option(lambda v: v > 0 and v != 1,
                       "--compute-cutoff must be FLOPs (e.g. 1e23) or a quantile of the "
                       "models' compute in (0, 1) (e.g. 0.75)")


def add_evaluate_parser(sub: Any) -> None:
    """Register ``sloth evaluate`` on a subparsers object."""

    p = sub.add_parser(
        "evaluate", formatter_class=HelpFormatter,
        help="held-out evaluation: the Sloth paper's splits, scale-up or compute cutoff",
        description=(
            "For every split and held-out family group: drop rows missing any benchmark of "
            "the group, fit, and predict the held-out models. The splits are those of "
            "--splits FILE (the paper's protocol: the k smallest models of each held-out "
            "family in training, the rest predicted; or a file written by --write-splits), "
            "or generated from the data by --protocol: scale-up (for every family with at "
            "least 3 complete models, its k smallest by compute C = 6 N D observed, its "
            "models with at least --min-compute-ratio times the largest observed compute "
            "predicted, those in between left out) or compute-cutoff (every model at or "
            "below --compute-cutoff FLOPs in the fit, every model above it predicted). "
            "Writes one row per method, held-out model and benchmark to --out (as each fit "
            "finishes, so an interrupted run keeps its rows, and --resume goes on from them; "
            "at the end in the order of the tasks) "
            "and prints family-averaged MAE, "
            "MAE per benchmark, coverage of the central 50, 80, 90 and 95%% predictive "
            "intervals, interval width and CRPS. Each row carries its interval bounds, "
            "whether they cover the score and its PIT value; --pit-figure draws the PIT "
            "histogram of every method."
        ),
        epilog=(
            "examples:\n"
            "  sloth evaluate --splits ../shared/protocols/sloth-paper-splits.json "
            "--out predictions.csv\n"
            "  sloth evaluate --splits splits.json --out zero.csv --zero-shot --benchmarks v1\n"
            "  sloth evaluate --splits splits.json --out p.csv --pit-figure pit.png\n"
            "  sloth evaluate --splits splits.json --out p.csv --scheduler local:2\n"
            "  sloth evaluate --splits splits.json --out p.csv --resume   # after a stop\n"
            "  sloth evaluate --splits splits.json --out p.csv --k 1 --groups bloom,opt "
            "--methods sloth\n"
            "  sloth evaluate --protocol scale-up --splits "
            "../shared/protocols/sloth-paper-splits.json --write-splits scale-up.json\n"
            "  sloth evaluate --splits scale-up.json --out scale-up.csv\n"
            "  sloth evaluate --protocol compute-cutoff --compute-cutoff 1e23 --out cut.csv"
        ),
    )
    p.add_argument("--splits", metavar="FILE", default=None,
                   help="JSON splits file in the schema of sloth-paper-splits.json; with "
                        "--protocol scale-up or compute-cutoff, where the benchmark groups, "
                        "floors, family column and families held out together come from "
                        "(default: required with --protocol splits; otherwise the benchmark "
                        "groups v1, v2, all, each family held out alone)")
    p.add_argument("--protocol", choices=("splits", "scale-up", "compute-cutoff"),
                   default="splits",
                   help="splits: run --splits as it is; scale-up or compute-cutoff: generate "
                        "those splits from the data (see sloth.evaluation.protocol)")
    p.add_argument("--min-compute-ratio", metavar="R", type=_ratio,
                   default=MIN_COMPUTE_RATIO,
                   help="scale-up: predicted models have at least R times the compute of "
                        "their family's largest observed model")
    p.add_argument("--compute-cutoff", metavar="VALUE", type=_cutoff,
                   default=DEFAULT_CUTOFF_QUANTILE,
                   help="compute-cutoff: FLOPs (e.g. 1e23), or a quantile in (0, 1) of the "
                        "compute of each benchmark group's complete models")
    p.add_argument("--write-splits", metavar="FILE", default=None,
                   help="write the splits to run to FILE (read it back with --splits FILE); "
                        "without --out, write it and stop")
    p.add_argument("--out", metavar="CSV", default=None,
                   help="predictions file to write (default: required unless "
                        "--write-splits)")
    p.add_argument("--pit-figure", metavar="PATH", default=None,
                   help="also draw the PIT histogram of each method's held-out scores, with "
                        "the 99%% band of a uniform histogram, to PATH (format from the "
                        "suffix: .png, .pdf, .svg, ...; an existing file is refused "
                        "without --force; default: no figure)")
    add_force_option(p)
    p.add_argument("--resume", action="store_true",
                   help="go on with an --out file that a stopped run (with the same options) "
                        "wrote: its tasks are kept, the others run and are appended (without "
                        "an --out file: a new run)")
    add_scheduler_option(p, "the held-out groups (one fit each)")
    p.add_argument("--zero-shot", action="store_true",
                   help="hold out whole families (k = 0), predicting the splits' test models")
    p.add_argument("--data", metavar="PATH", default=None,
                   help="leaderboard table in the schema of data_v2.csv (default: the Sloth "
                        "paper's, found through $SLOTH_DATA_DIR, the cache or a download)")
    p.add_argument("--benchmarks", metavar="NAMES", type=_csv_list, default=None,
                   help="only these benchmark groups of the file, e.g. v1,all")
    p.add_argument("--k", metavar="LIST", type=_int_list, default=None,
                   help="only splits with these k (observed models per test family); with "
                        "--protocol scale-up, the k to generate (default: 1,2)")
    p.add_argument("--groups", metavar="LIST", type=_csv_list, default=None,
                   help="only these held-out groups ('+'-joined family names)")
    p.add_argument("--methods", metavar="LIST", type=_csv_list,
                   default=[SLOTH_METHOD, *DEFAULT_BASELINES],
                   help="methods to run: sloth and/or baseline names "
                        "(see sloth.evaluation.baselines)")
    p.add_argument("--link", default=defaults.LINK,
                   choices=("logistic", "richards", "ceiling", "flexible"),
                   help="sloth's link from skills to scores")
    p.add_argument("--family-effects", action=argparse.BooleanOptionalAction, default=True,
                   help="model each family's own deviation per benchmark, carried from its "
                        "observed models to its forecasts (sloth.model.family_effects)")
    p.add_argument("--skills", metavar="D", type=skills_option, default=defaults.N_SKILLS,
                   help="number of latent skills (1-4), or 'auto': 3, or fewer where the "
                        "split's benchmarks would leave them just identified (2 for six)")
    p.add_argument("--conditioning", choices=("forecast", "refit"),
                   default=defaults.CONDITIONING,
                   help="forecast: fit once per group without the held-out families and "
                        "condition each on its observed models by importance weights over "
                        "the posterior (refit where they degenerate); refit: put the observed "
                        "models in the fit (the protocol's literal form, slower)")
    sampler = defaults.EVALUATION_SAMPLER
    p.add_argument("--chains", metavar="N", type=int_in(1, None, "--chains"),
                   default=sampler["num_chains"], help="NUTS chains of each fit")
    p.add_argument("--warmup", metavar="N", type=int_in(1, None, "--warmup"),
                   default=sampler["num_warmup"], help="warm-up iterations per chain")
    p.add_argument("--samples", metavar="N", type=int_in(1, None, "--samples"),
                   default=sampler["num_samples"],
                   help="draws per chain (more while the chains have not mixed, up to "
                        "--max-samples)")
    p.add_argument("--max-samples", metavar="N|auto|none", type=max_samples_option,
                   default=sampler["max_samples"],
                   help="draws per chain at most ('auto': four times --samples; 'none': "
                        "exactly --samples)")
    p.add_argument("--max-tree-depth", metavar="N", type=int_in(1, None, "--max-tree-depth"),
                   default=sampler["max_tree_depth"], help="maximum NUTS tree depth")
    p.add_argument("--seed", metavar="INT", type=int, default=0)
    p.add_argument("--reference", metavar="CSV", default=None,
                   help="reference per-family errors (sloth-paper-reported-mae.csv) to print "
                        "beside the results")
    p.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object on stdout")
    p.set_defaults(func=cmd_evaluate)


def write_pit_figure(predictions: Any, path: str | Path, *, bins: int = 10,
                     band: float = 0.99) -> Path:
    """Draw :func:`sloth.plotting.plot_pit_histograms` of ``predictions`` (one panel per
    method) and write it atomically to ``path`` (format from its suffix), without pyplot.

    Returns
    -------
    Path
        The written file.
    """
    from matplotlib.figure import Figure

    from sloth.plotting import plot_pit_histograms

    figure = Figure(layout="constrained")
    plot_pit_histograms(predictions, bins=bins, band=band, figure=figure)
    write_figure(figure, path)
    return Path(path)


def _resumed_rows(out: Path, methods: list[str]) -> Any:
    """The rows of the ``--out`` file being resumed, refused when another run wrote them
    (other columns, or other methods than ``methods``)."""
    import pandas as pd

    from sloth.evaluation.harness import PREDICTION_COLUMNS

    try:
        rows = pd.read_csv(out)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"--resume: --out {str(out)!r} is not a predictions file "
                                  f"({exc}). Fix: --force to start over") from None
    if list(rows.columns) != list(PREDICTION_COLUMNS):
        raise DataValidationError(
            f"--resume: --out {str(out)!r} does not have the columns sloth evaluate writes "
            "(another program's file, or an older version's). Fix: --force to start over, or "
            "another --out")
    written = sorted(set(rows["method"].astype(str)))
    if len(rows) and written != sorted(methods):
        raise DataValidationError(
            f"--resume: --out {str(out)!r} has rows of the methods {written} and this run "
            f"runs {sorted(methods)}. Fix: resume with the --methods of the stopped run, "
            "or --force to start over")
    return rows


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``sloth evaluate``."""
    import pandas as pd

    from sloth.data.leaderboard import load_evaluations, load_leaderboard
    from sloth.data.validation import read_table
    from sloth.evaluation.baselines import BASELINES
    from sloth.evaluation.harness import (
        INTERVALS,
        baseline_forecaster,
        evaluate,
        finished_tasks,
        format_summary,
        reference_table,
        sloth_forecaster,
        summarize,
    )
    from sloth.evaluation.protocol import (
        describe_split,
        generate_protocol,
        load_protocol,
        write_protocol,
    )

    if args.splits is None and args.protocol == "splits":
        raise DataValidationError(
            "no splits to run: give --splits FILE (e.g. "
            "../shared/protocols/sloth-paper-splits.json), or generate splits with "
            "--protocol scale-up or --protocol compute-cutoff")
    if args.out is None and args.write_splits is None:
        raise DataValidationError("--out CSV is required (or --write-splits FILE alone to "
                                  "write the splits without running them)")
    if args.splits is not None and not Path(args.splits).expanduser().is_file():
        raise DataNotFoundError(f"--splits {args.splits!r}: no such file. Fix: check the path")
    if args.reference and not Path(args.reference).expanduser().is_file():
        raise DataNotFoundError(f"--reference {args.reference!r}: no such file")
    base = load_protocol(args.splits) if args.splits is not None else None
    unknown = [m for m in args.methods if m != SLOTH_METHOD and m not in BASELINES]
    if unknown or not args.methods:
        raise DataValidationError(
            f"--methods {unknown or args.methods}: allowed are {SLOTH_METHOD!r} and "
            f"{sorted(BASELINES)}"
        )
    if args.resume and args.force:
        raise DataValidationError("--resume keeps the --out file's rows and --force replaces "
                                  "them: give one of the two")
    out = (check_out(args.out, force=args.force or args.resume)
           if args.out is not None else None)
    splits_out = (check_out(args.write_splits, force=args.force, option="--write-splits")
                  if args.write_splits is not None else None)
    figure = None
    if args.pit_figure is not None:
        figure = check_figure_out(args.pit_figure, force=args.force, option="--pit-figure")
        if out is not None and figure.resolve() == out.resolve():
            raise DataValidationError(
                f"--pit-figure {args.pit_figure!r} is the --out file. Fix: give the figure "
                f"its own name, e.g. {str(out.with_suffix('.png'))!r}")
    frame = None
    if args.data is not None:
        if not Path(args.data).expanduser().is_file():
            raise DataNotFoundError(f"--data {args.data!r}: no such file")
        frame = read_table(args.data)
    def load_table(benchmarks):
        kwargs = dict(benchmarks=list(benchmarks), interface="cli")
        if base is not None and base.floors:
            kwargs["floors"] = base.floors
        if base is not None and base.family_column is not None:  # else the loaders'
            kwargs["family_column"] = base.family_column
        if frame is None:
            return load_leaderboard(**kwargs)
        return load_evaluations(frame, **kwargs)

    if args.protocol == "splits":
        protocol = base
    else:
        try:
            protocol = generate_protocol(
                args.protocol, load_table, base, benchmarks=args.benchmarks,
                ks=args.k or (1, 2), min_compute_ratio=args.min_compute_ratio,
                cutoff=args.compute_cutoff)
        except ValueError as exc:
            raise DataValidationError(f"--protocol {args.protocol}: {exc}") from None
    lines = [describe_split(s) for s in protocol.splits
             if args.benchmarks is None or s.benchmarks in args.benchmarks]
    if splits_out is not None:
        write_protocol(protocol, splits_out)
    if out is None:
        if args.json:
            print_json({"splits_file": str(splits_out), "splits": lines})
        else:
            print("\n".join([*lines, f"splits written to {splits_out}"]))
        return 0
    for line in lines:
        print(f"[sloth evaluate] {line}", file=sys.stderr, flush=True)

    methods = []
    for name in args.methods:
        if name == SLOTH_METHOD:
            options = {"n_skills": args.skills, "link": args.link, "num_chains": args.chains,
                       "num_warmup": args.warmup, "num_samples": args.samples,
                       "max_samples": args.max_samples, "max_tree_depth": args.max_tree_depth,
                       "family_benchmark_effects": args.family_effects}
            methods.append(sloth_forecaster(options, conditioning=args.conditioning,
                                            seed=args.seed))
        else:
            methods.append(baseline_forecaster(name, seed=args.seed))
    earlier = None
    if out.exists() and args.resume:
        earlier = _resumed_rows(out, [m.name for m in methods])
        print(f"[sloth evaluate] resuming {out}: {len(finished_tasks(earlier))} task(s) "
              "done", file=sys.stderr, flush=True)
    elif out.exists():  # --force was given (check_out refuses it otherwise)
        os.remove(out)

    def append(rows: pd.DataFrame) -> None:
        rows.to_csv(out, mode="a", header=not out.exists(), index=False)

    with open_executor(args.scheduler) as executor:
        predictions = evaluate(
            protocol, load_table, methods, zero_shot=args.zero_shot, settings=args.benchmarks,
            ks=args.k, groups=args.groups, on_task=append, resume=earlier, executor=executor,
        )
    # appended as each task finished (on a cluster: in any order); now in the tasks' order
    write_csv(predictions, out)
    summary = summarize(predictions)
    if figure is not None:
        write_pit_figure(predictions, figure)
    reference = None
    if args.reference:
        reference = reference_table(pd.read_csv(args.reference), predictions)
    if args.json:
        payload = {name: table.to_dict(orient="records") for name, table in summary.items()}
        if reference is not None:
            payload["reference"] = reference.to_dict(orient="records")
        if splits_out is not None:
            payload["splits_file"] = str(splits_out)
        print_json({"predictions_file": str(out),
                    "pit_figure": None if figure is None else str(figure),
                    "coverage_levels": list(INTERVALS), **payload})
        return 0
    print(format_summary(summary))
    if reference is not None:
        print("\nReference implementation on the same groups (family-averaged MAE):")
        print(reference.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if splits_out is not None:
        print(f"splits written to {splits_out}")
    print(f"\npredictions written to {out}")
    if figure is not None:
        print(f"PIT histograms written to {figure}")
    return 0
