"""``sloth compare``: compare saved fits of the same data by their expected log predictive
density.

::

    sloth compare FIT.nc FIT.nc ... [--names A,B,...] [--refit-families [F1,F2,...]]
                  [--refit-warmup N] [--refit-samples N] [--scheduler ADDRESS] [--json]

Each FIT is a posterior written by ``sloth fit --out`` (or :meth:`SlothModel.save`) of the
same data. The command prints two tables in the same order of fits (best PSIS-LOO first):
PSIS-LOO per score with the Pareto k-hat counts of the scores, and leave-one-family-out
ELPD per family with the number of families whose PSIS k-hat is above 0.7 (their estimate
is unreliable: they are named, and ``--refit-families`` computes them exactly, one refit per
family and fit). See :mod:`sloth.comparison`. Exit status 0, or 2 for bad input (a missing
or unreadable file, a file without pointwise log-likelihood, fits of different data).

:mod:`sloth.cli.main` registers the subcommand with :func:`add_compare_parser`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sloth.cli.common import (
    HelpFormatter,
    add_scheduler_option,
    captured_warnings,
    int_in,
    open_executor,
    print_json,
    print_warning,
    split_list,
)
from sloth.exceptions import ConvergenceWarning, DataNotFoundError, DataValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["add_compare_parser", "cmd_compare", "format_comparison"]

#: Headers of the k-hat count columns, in the order of :data:`sloth.comparison.KHAT_BINS`.
KHAT_HEADERS = ("k<=0.5", "0.5-0.7", "0.7-1", ">1")


def _refit_option(text: str) -> list[str]:
    names = split_list(text) or []
    if not names:
        raise argparse.ArgumentTypeError(
            f"{text!r} names no family: give F1,F2,... or --refit-families alone for every "
            "family with k-hat above 0.7")
    return names


def add_compare_parser(sub: Any) -> None:
    """Add the ``compare`` subcommand to ``sub`` (the result of ``add_subparsers``)."""
    parser = sub.add_parser(
        "compare", formatter_class=HelpFormatter,
        help="compare saved fits of the same data: PSIS-LOO and leave-one-family-out ELPD",
        description=(
            "Compare posteriors saved by 'sloth fit --out' of the same data (e.g. --skills 1\n"
            "to 4, or another --link) by their expected log predictive density (ELPD, higher\n"
            "is better): PSIS-LOO per score, with the Pareto k-hat counts of the scores, and\n"
            "leave-one-family-out ELPD (each family predicted as a new family), PSIS on the\n"
            "family totals of the log-likelihood. Families with k-hat above 0.7 have an\n"
            "unreliable PSIS estimate: they are named, and --refit-families refits without\n"
            "each of them for the exact value."
        ),
        epilog=(
            "examples:\n"
            "  sloth compare d1.nc d2.nc d3.nc d4.nc\n"
            "  sloth compare d3-logistic.nc d3-flexible.nc --refit-families --json > cmp.json"
        ),
    )
    parser.add_argument("files", metavar="FIT", nargs="+",
                        help="posterior files written by 'sloth fit --out' (netCDF)")
    parser.add_argument("--names", metavar="A,B,...", default=None,
                        help="names of the fits in the tables, one per FIT (default: the "
                             "file names without their suffix)")
    parser.add_argument("--refit-families", metavar="F1,F2,...", nargs="?", const=True,
                        default=False, type=_refit_option,
                        help="replace the leave-one-family-out PSIS estimate by the exact "
                             "value, refitting each fit without the family: alone, for every "
                             "family with k-hat above 0.7; with names, for those families "
                             "(default: off; one fit per family and FIT)")
    parser.add_argument("--refit-warmup", metavar="N", default=None,
                        type=int_in(1, None, "the refits' warm-up length"),
                        help="warm-up iterations of each refit (default: the fit's own)")
    parser.add_argument("--refit-samples", metavar="N", default=None,
                        type=int_in(1, None, "the refits' number of draws"),
                        help="draws per chain of each refit (default: the fit's own)")
    add_scheduler_option(parser, "the refits of --refit-families")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout instead of the tables")
    parser.set_defaults(func=cmd_compare)


def _inputs(args: argparse.Namespace) -> dict[str, Path]:
    """The fits by name, each file checked to exist."""
    paths = []
    for text in args.files:
        path = Path(text).expanduser()
        if not path.is_file():
            raise DataNotFoundError(
                f"FIT {text!r}: no such file. Fix: give posteriors written by "
                "'sloth fit --out FILE'")
        paths.append(path)
    if args.names is None:
        from sloth.comparison import default_names

        names = default_names(args.files)
    else:
        names = split_list(args.names) or []
        if len(names) != len(paths) or len(set(names)) != len(names):
            raise DataValidationError(
                f"--names {args.names!r}: give {len(paths)} distinct names, one per FIT "
                f"(got {len(names)})")
    if isinstance(args.refit_families, list):
        files = [f for f in args.refit_families if Path(f).expanduser().is_file()]
        if files:
            raise DataValidationError(
                f"--refit-families took the file {files[0]!r} for a family name. Fix: put "
                "--refit-families after the FIT files (alone: every family with k-hat above "
                "0.7), or write --refit-families=F1,F2")
    return dict(zip(names, paths, strict=True))


def cmd_compare(args: argparse.Namespace) -> int:
    """Run ``sloth compare``; returns the exit status (bad input raises, see module doc)."""
    fits = _inputs(args)
    from sloth.comparison import compare

    if args.scheduler is not None and args.refit_families is False:
        raise DataValidationError("--scheduler runs the refits of --refit-families, and none "
                                  "were asked for. Fix: add --refit-families, or drop "
                                  "--scheduler")

    refit_params = {}
    if args.refit_warmup is not None:
        refit_params["num_warmup"] = args.refit_warmup
    if args.refit_samples is not None:
        refit_params["num_samples"] = args.refit_samples

    def log(message: str) -> None:
        print(f"[sloth] {message}", file=sys.stderr, flush=True)

    with contextlib.redirect_stdout(sys.stderr), captured_warnings(ConvergenceWarning) as seen:
        with open_executor(args.scheduler) as executor:
            table = compare(fits, refit_families=args.refit_families,
                            refit_params=refit_params, log=log, executor=executor)
    for message in seen:
        print_warning(message)
    if args.json:
        print_json(comparison_json(table, {n: str(p) for n, p in fits.items()}))
    else:
        print(format_comparison(table), flush=True)
    return 0


def comparison_json(table: pd.DataFrame, files: dict[str, str]) -> dict[str, Any]:
    """The ``--json`` object: ``fits`` (one record per fit, best PSIS-LOO first: ``name,
    file`` and the columns of :func:`sloth.comparison.compare`), ``families`` (one record
    per fit and family), ``unreliable`` (per fit, the families whose estimate is PSIS with
    k-hat above the threshold), ``khat_threshold``, ``khat_bins``, ``best_loo``,
    ``best_lofo``."""
    from sloth.comparison import KHAT_BINS

    fits = [{"name": name, "file": files.get(name), **row}
            for name, row in table.to_dict(orient="index").items()]
    return {
        "fits": fits,
        "families": table.attrs["families"],
        "unreliable": table.attrs["unreliable"],
        "khat_threshold": table.attrs["khat_threshold"],
        "khat_bins": {k: list(v) for k, v in KHAT_BINS.items()},
        "best_loo": str(table["rank_loo"].idxmin()),
        "best_lofo": str(table["rank_lofo"].idxmin()),
    }


def format_comparison(table: pd.DataFrame) -> str:
    """The text report of :func:`sloth.comparison.compare`'s table."""
    first = table.iloc[0]
    width = max(4, *(len(str(n)) for n in table.index))
    lines = [
        f"Comparison of {len(table)} fit(s) of the same {int(first['n_observations'])} "
        f"scores ({int(first['n_families'])} families, {int(first['n_draws'])} draws in the "
        "first fit); higher ELPD is better, diff and dse are against the best fit of each "
        "table.",
        "",
        "PSIS-LOO (per score)",
        "  " + "fit".ljust(width) + "".join(h.rjust(9) for h in (
            "rank", "elpd", "se", "diff", "dse", "p_loo", "weight", *KHAT_HEADERS)),
    ]
    rows = table.to_dict(orient="index")  # per fit: its columns, ints kept
    for name, r in rows.items():
        lines.append("  " + str(name).ljust(width) + f"{r['rank_loo']:>9d}" + "".join(
            f"{r[c]:>9.1f}" for c in ("elpd_loo", "se_loo", "elpd_diff_loo", "dse_loo",
                                      "p_loo"))
            + f"{r['weight_loo']:>9.2f}"
            + "".join(f"{r[c]:>9d}" for c in ("k_good", "k_ok", "k_bad", "k_very_bad")))
    threshold = table.attrs["khat_threshold"]
    lines += [
        "",
        "Leave-one-family-out (per family: PSIS on the family totals, exact where refitted)",
        "  " + "fit".ljust(width) + "".join(h.rjust(9) for h in (
            "rank", "elpd", "se", "diff", "dse", "p_lofo")) + f"{f'k>{threshold:g}':>9}"
        + f"{'refitted':>10}",
    ]
    for name, r in rows.items():
        lines.append("  " + str(name).ljust(width) + f"{r['rank_lofo']:>9d}" + "".join(
            f"{r[c]:>9.1f}" for c in ("elpd_lofo", "se_lofo", "elpd_diff_lofo", "dse_lofo",
                                      "p_lofo"))
            + f"{r['families_khat_high']:>9d}" + f"{r['families_refitted']:>10d}")
    notes = [f"{name} ({what}): {r[f'diag_{what}']}" for what in ("loo", "lofo")
             for name, r in rows.items() if r[f"diag_{what}"] and r[f"rank_{what}"] > 0]
    if notes:
        lines += ["", "Cautions of arviz_stats.compare (N < 100 or |diff| < 4: a rough dse): "
                      + "; ".join(notes) + "."]
    unconverged = [f"{r['fit']}/{r['family']}" for r in table.attrs["families"]
                   if r.get("refit_converged") is False]
    if unconverged:
        lines += ["", f"Refits that did not converge cleanly ({len(unconverged)}): "
                      f"{', '.join(unconverged)}; their exact values are uncertain."]
    failed = [f"{r['fit']}/{r['family']}" for r in table.attrs["families"]
              if str(r["method"]).startswith("psis (refit failed")]
    if failed:
        lines += ["", f"Refits that failed ({len(failed)}, PSIS kept; --json says why): "
                      f"{', '.join(failed)}."]
    unreliable = {n: f for n, f in table.attrs["unreliable"].items() if f}
    if unreliable:
        lines.append("")
        for name, names in unreliable.items():
            lines.append(
                f"Unreliable: {len(names)} of {table.at[name, 'n_families']} families of "
                f"{name} have leave-one-family-out k-hat above {threshold:g}: "
                f"{', '.join(names)}.")
        total = sum(len(f) for f in unreliable.values())
        lines.append(
            f"Their PSIS estimates (and the totals above) may be far off (usually optimistic). "
            f"Fix: --refit-families computes them exactly ({total} refit(s)).")
    return "\n".join(lines)
