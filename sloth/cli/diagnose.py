"""``sloth diagnose``: check a saved posterior for sampler and identifiability problems.

::

    sloth diagnose FILE [--json] [--strict] [--predictive] [--ppc-figure PATH]
                        [--prior-figure PATH] [--predictive-draws N] [--seed N] [--force]

FILE is a posterior written by ``sloth fit --out`` or :meth:`SlothModel.save`. The command
prints one report (:func:`sloth.checks.diagnostics.diagnose`): structural checks of the data against
the model, then checks of the draws. ``--predictive`` (implied by the figure options) adds
the posterior and prior predictive checks (:func:`sloth.checks.predictive.check_predictive`)
and their per-benchmark tables; ``--ppc-figure`` and ``--prior-figure`` draw them
(:func:`sloth.plotting.plot_ppc`). Exit status: 0 after printing the report (also when a
check failed, unless ``--strict``), 1 with ``--strict`` when a check failed (severity
``error``; warnings never fail, and the predictive checks only warn), 2 for bad input (a
missing or unreadable file, a file that is not a sloth posterior, a figure path that cannot
be written).

:mod:`sloth.cli.main` registers the subcommand with :func:`add_diagnose_parser`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from sloth.cli.common import (
    add_force_option,
    check_figure_out,
    int_in,
    print_json,
    write_figure,
)
from sloth.exceptions import DataNotFoundError, DataValidationError, SlothError

__all__ = ["EXIT_FAILED_CHECK", "add_diagnose_parser", "cmd_diagnose"]

#: Exit status of ``sloth diagnose --strict`` when a check failed.
EXIT_FAILED_CHECK = 1


def add_diagnose_parser(sub: Any) -> None:
    """Add the ``diagnose`` subcommand to ``sub`` (the result of ``add_subparsers``)."""
    parser = sub.add_parser(
        "diagnose",
        help="check a saved posterior: sampler, convergence and identifiability",
        description=(
            "Check a posterior saved by 'sloth fit --out': structural checks of the data "
            "(design rank, benchmarks per skill, coverage, anchors), then the draws "
            "(divergences, R-hat, ESS, E-BFMI, R-hat of rotation-invariant quantities, "
            "chains differing by a sign flip or rotation, prior-to-posterior contraction, "
            "slope/efficiency trade-offs, anchors that load on nothing); with --predictive, "
            "posterior and prior predictive checks per benchmark (--ppc-figure and "
            "--prior-figure draw them). Exit status 0, or 1 with --strict when a check "
            "failed; 2 for bad input."
        ),
    )
    parser.add_argument("file", metavar="FILE",
                        help="posterior file written by 'sloth fit --out' (netCDF)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout instead of the text report")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when a check failed (warnings do not fail)")
    parser.add_argument("--predictive", action="store_true",
                        help="also run the posterior and prior predictive checks and print "
                             "their per-benchmark tables (coverage of the observed scores, "
                             "p-values of their mean and sd; prior mass in [0, 1], at the "
                             "floor and at 1)")
    parser.add_argument("--ppc-figure", metavar="PATH", default=None,
                        help="write the posterior predictive check, one panel per benchmark "
                             "(implies --predictive; format from the suffix; default: none)")
    parser.add_argument("--prior-figure", metavar="PATH", default=None,
                        help="write the prior predictive check, one panel per benchmark "
                             "(implies --predictive; default: none)")
    parser.add_argument("--predictive-draws", metavar="N", type=int_in(
                            10, None, "--predictive-draws"), default=1000,
                        help="posterior draws for the replicates (the posterior thinned to "
                             "at most N) and prior predictive draws")
    parser.add_argument("--seed", metavar="N", type=int_in(0, None, "--seed"), default=0,
                        help="seed of the predictive draws")
    add_force_option(parser)
    parser.set_defaults(func=cmd_diagnose)


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Run ``sloth diagnose``; returns the exit status (bad input raises, see module doc)."""

    path = Path(args.file).expanduser()
    if not path.is_file():
        raise DataNotFoundError(
            f"FILE {str(args.file)!r}: no such file. Fix: give a posterior written by "
            "'sloth fit --out FILE'"
        )
    figures = {option: check_figure_out(value, option=option, force=args.force)
               for option, value in (("--ppc-figure", args.ppc_figure),
                                     ("--prior-figure", args.prior_figure))
               if value is not None}
    if len(figures) == 2 and len({p.resolve() for p in figures.values()}) == 1:
        raise DataValidationError(
            f"--ppc-figure and --prior-figure are the same file {args.ppc_figure!r}. Fix: "
            "give each figure its own path")
    predictive = args.predictive or bool(figures)
    from sloth.checks.diagnostics import diagnose
    from sloth.estimator import SlothModel

    with contextlib.redirect_stdout(sys.stderr):
        try:
            model = SlothModel.load(path)
        except (OSError, ValueError, KeyError) as exc:
            if isinstance(exc, SlothError | FileNotFoundError):
                raise
            raise DataNotFoundError(
                f"FILE {str(args.file)!r} could not be read as a sloth posterior ({exc}). Fix: "
                "give a file written by 'sloth fit --out' or SlothModel.save"
            ) from None
        report = diagnose(model)
        checked = None
        if predictive:
            from sloth.checks.predictive import check_predictive

            checked = check_predictive(model, max_draws=args.predictive_draws,
                                       prior_draws=args.predictive_draws, seed=args.seed)
            _write_figures(checked, figures)
    report.source = str(args.file)
    if args.json:
        payload = report.to_dict()
        if checked is not None:
            payload["predictive"] = checked.to_dict()
            payload["figures"] = {k.lstrip("-"): str(v) for k, v in figures.items()}
        print_json(payload)
    else:
        print(report.format(), flush=True)
        if checked is not None:
            print("\n" + checked.format(), flush=True)
            for option, path in figures.items():
                print(f"{option.lstrip('-').replace('-', ' ')} written to {path}")
    if args.strict and not report.passed:
        return EXIT_FAILED_CHECK
    return 0


def _write_figures(checked: Any, figures: dict[str, Path]) -> None:
    """Draw the predictive checks of ``checked`` (a PredictiveReport) into the figure files
    named by option (``--ppc-figure``, ``--prior-figure``), atomically."""
    if not figures:
        return
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo"):
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from sloth.plotting import plot_ppc

    groups = {"--ppc-figure": "posterior_predictive", "--prior-figure": "prior_predictive"}
    for option, path in figures.items():
        axes = plot_ppc(checked.tree, group=groups[option])
        figure = axes[0].get_figure()
        figure.suptitle(
            "Posterior predictive check: observed scores (dark) against replicated data sets"
            if option == "--ppc-figure" else
            "Prior predictive check: scores drawn from the priors; dotted: floor and 1")
        write_figure(figure, path)
        plt.close(figure)
