"""The ``sloth`` command line: one module per command (:mod:`sloth.cli.fit`,
:mod:`sloth.cli.forecast`, :mod:`sloth.cli.evaluate`, :mod:`sloth.cli.diagnose`,
:mod:`sloth.cli.skills`, :mod:`sloth.cli.laws`), shared helpers in :mod:`sloth.cli.common`,
and the entry point :func:`sloth.cli.main.main`."""

from sloth.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
