"""The ``sloth`` command line.

::

    sloth fit [--data PATH] [--benchmarks v1|v2|all|NAME,NAME...] [--skills D]
              [--chains 4] [--warmup 500] [--samples 2000] [--out sloth-fit.nc] [--json]
    sloth forecast --posterior FIT.nc --models new.csv [--observed scores.csv] ...
    sloth evaluate --splits FILE --out predictions.csv [--zero-shot] ...
    sloth diagnose FIT.nc [--json] [--strict] [--predictive] [--ppc-figure PNG] ...
    sloth compare FIT.nc FIT.nc ... [--refit-families] [--json]
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
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sloth.exceptions import SlothError

if TYPE_CHECKING:
    pass

from sloth.cli.cache import add_cache_parser
from sloth.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    HelpFormatter,
    print_error,
)
from sloth.cli.compare import add_compare_parser
from sloth.cli.diagnose import add_diagnose_parser
from sloth.cli.evaluate import add_evaluate_parser
from sloth.cli.fit import add_fit_parser
from sloth.cli.forecast import add_forecast_parser
from sloth.cli.laws import add_laws_parser
from sloth.cli.skills import add_skills_parser
from sloth.config import configure, default_host_devices

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``sloth`` argument parser with every subcommand."""
    from sloth import __version__

    parser = argparse.ArgumentParser(
        prog="sloth", formatter_class=HelpFormatter,
        description=(
            "Bayesian latent-skill scaling laws for LLMs.\n\n"
            "Every command prints a readable summary, or one JSON object on stdout with "
            "--json.\nBad input exits with status 2 and a message saying what to fix."
        ),
    )
    parser.add_argument("--version", action="version", version=f"sloth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_fit_parser(sub)
    add_forecast_parser(sub)
    add_evaluate_parser(sub)
    add_laws_parser(sub)
    add_skills_parser(sub)
    add_diagnose_parser(sub)
    add_compare_parser(sub)
    add_cache_parser(sub)
    return parser


# ----------------------------------------------------------------------------- entry point


def configure_process() -> None:
    """Once per command: parallel chains (at least four CPU devices) and JAX's persistent
    compilation cache (``SLOTH_JAX_CACHE=0`` turns the cache off)."""
    configure(host_devices=default_host_devices(),
              compilation_cache=os.environ.get("SLOTH_JAX_CACHE", "1") != "0")


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
        print_error(f"'sloth {args.command}' needs a sub-command; "
                    f"see 'sloth {args.command} --help'")
        return EXIT_BAD_INPUT
    try:
        configure_process()
        return int(func(args))
    except KeyboardInterrupt:
        print("sloth: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except (SlothError, ValueError, FileNotFoundError, OSError) as exc:
        print_error(str(exc) or type(exc).__name__)
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug of sloth's, not the user's input: no traceback either
        if os.environ.get("SLOTH_DEBUG"):
            raise
        print_error(f"internal error ({type(exc).__name__}: {exc}). This is a bug in sloth: "
                    f"please report it with the command you ran; SLOTH_DEBUG=1 shows the "
                    f"traceback")
        return EXIT_INTERNAL_ERROR


