"""``sloth diagnose``: check a saved posterior for sampler and identifiability problems.

::

    sloth diagnose FILE [--json] [--strict]

FILE is a posterior written by ``sloth fit --out`` or :meth:`SlothModel.save`. The command
prints one report (:func:`sloth.checks.diagnostics.diagnose`): structural checks of the data against
the model, then checks of the draws. Exit status: 0 after printing the report (also when a
check failed, unless ``--strict``), 1 with ``--strict`` when a check failed (severity
``error``; warnings never fail), 2 for bad input (a missing or unreadable file, a file that
is not a sloth posterior).

:mod:`sloth.cli.main` registers the subcommand with :func:`add_diagnose_parser`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from sloth.cli.common import print_json
from sloth.exceptions import DataNotFoundError, SlothError

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
            "slope/efficiency trade-offs, anchors that load on nothing). Exit status 0, or "
            "1 with --strict when a check failed; 2 for bad input."
        ),
    )
    parser.add_argument("file", metavar="FILE",
                        help="posterior file written by 'sloth fit --out' (netCDF)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout instead of the text report")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when a check failed (warnings do not fail)")
    parser.set_defaults(func=cmd_diagnose)


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Run ``sloth diagnose``; returns the exit status (bad input raises, see module doc)."""

    path = Path(args.file).expanduser()
    if not path.is_file():
        raise DataNotFoundError(
            f"FILE {str(args.file)!r}: no such file. Fix: give a posterior written by "
            "'sloth fit --out FILE'"
        )
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
    report.source = str(args.file)
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.format(), flush=True)
    if args.strict and not report.passed:
        return EXIT_FAILED_CHECK
    return 0
