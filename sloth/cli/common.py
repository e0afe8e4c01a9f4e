"""Helpers shared by the ``sloth`` subcommands: option types, JSON output, error text,
output paths and the help formatter."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sloth.exceptions import DataValidationError, SlothError
from sloth.io import atomic_write, refuse_overwrite

if TYPE_CHECKING:
    pass


#: Exit status of bad input (the same as argparse's usage errors).
EXIT_BAD_INPUT = 2
#: Exit status of an unexpected error inside sloth (a bug, reported without a traceback).
EXIT_INTERNAL_ERROR = 1
#: Exit status after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

DEFAULT_OUT = "sloth-fit.nc"
#: Family column of the leaderboard's schema used by default.


def int_in(low: int, high: int | None, what: str) -> Callable[[str], int]:
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


def skills_option(text: str) -> int | str:
    """``--skills``: an integer from 1 to 4, or ``auto``."""
    if text == "auto":
        return text
    try:
        return int_in(1, 4, "--skills")(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: --skills must be an integer from 1 to 4 or 'auto'"
        ) from None


def max_samples_option(text: str) -> int | str | None:
    """``--max-samples``: a positive integer, ``auto`` (four times ``--samples``) or ``none``
    (draw ``--samples`` exactly)."""
    word = text.strip().lower()
    if word == "none":
        return None
    if word == "auto":
        return word
    try:
        return int_in(1, None, "--max-samples")(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: --max-samples must be a positive integer (at least "
            "--samples), 'auto' or 'none'") from None


def floor_item(text: str) -> tuple[str, float]:
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


def float_option(accept: Callable[[float], bool], message: str) -> Callable[[str], float]:
    """An argparse ``type`` parsing a number that ``accept`` admits; any other text fails
    with ``"'TEXT' is not allowed: " + message`` (which names the option and its values)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and accept(value)):
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed: {message}")
        return value

    return parse


def target_accept(text: str) -> float:
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


def split_list(text: str | None) -> list[str] | None:
    """Comma-separated names, stripped, without empty items (``None`` stays ``None``)."""
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]


def finite(obj: Any) -> Any:
    """``obj`` with non-finite floats replaced by ``None`` (strict JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return finite(obj.item())
    return obj


def print_json(obj: Any) -> None:
    """Print ``obj`` as one strict-JSON object on stdout (the ``--json`` convention)."""
    print(json.dumps(finite(obj), indent=1, allow_nan=False), flush=True)


def print_error(message: str) -> None:
    print(f"sloth: error: {message}", file=sys.stderr, flush=True)


def print_warning(message: str) -> None:
    """One line ``sloth: warning: ...`` on stderr (where ``--json`` keeps its warnings)."""
    print(f"sloth: warning: {' '.join(message.split())}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def captured_warnings(category: type[Warning]) -> Iterator[list[str]]:
    """Collect the messages of the warnings of ``category`` issued inside the block, each on
    one line, for a command to print in its own output; other warnings are shown as usual.

    Yields
    ------
    list of str
        Filled with the messages when the block ends.
    """
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", category)
        yield messages
    for w in seen:
        if issubclass(w.category, category):
            messages.append(" ".join(str(w.message).split()))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


#: (text of a library message that names a Python keyword, its command-line spelling):
#: the data loaders spell their fixes for the command line themselves (``interface="cli"``);
#: the number of skills is checked by the estimator, which speaks Python.
CLI_FIXES = (
    ("use n_skills <=", "On the command line: --skills D or more --benchmarks."),
)


def with_cli_fix(exc: SlothError) -> SlothError:
    """The same error, its message completed with the command-line spelling of the fix."""
    message = str(exc)
    extra = list(dict.fromkeys(fix for key, fix in CLI_FIXES if key in message))
    if not extra:
        return exc
    message = message.rstrip()
    if not message.endswith("."):
        message += "."
    try:
        return type(exc)(" ".join([message, *extra]))
    except TypeError:  # a subclass with another constructor: keep it as it is
        return exc


def check_out(out: str, *, force: bool = False, option: str = "--out") -> Path:
    """Fail before any work when ``out`` cannot be written: a folder, a missing or read-only
    folder, or an existing file without ``--force`` (nothing is overwritten silently)."""
    path = refuse_overwrite(out, force, option="--force", what=option)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"{option} {out!r}: folder {str(parent)!r} does not exist. "
                                f"Fix: create it or choose another path")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"{option} {out!r}: folder {str(parent)!r} is not writable. "
                              f"Fix: choose another path")
    return path


def add_force_option(parser: argparse.ArgumentParser | Any) -> None:
    """``--force``: replace an existing output file (refused without it)."""
    parser.add_argument("--force", action="store_true",
                        help="replace the output file if it exists (without it an existing "
                             "file is refused, never overwritten)")


def write_csv(frame: Any, path: str | os.PathLike[str]) -> None:
    """Write a DataFrame as CSV atomically: a crash or Ctrl-C leaves any previous file whole."""
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def check_figure_out(out: str, *, option: str, force: bool = False) -> Path:
    """:func:`check_out` for a figure, and a file suffix Matplotlib can write (the format
    is taken from it), before any work."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = check_out(out, force=force, option=option)
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix.lstrip(".").lower() not in formats:
        raise DataValidationError(
            f"{option} {out!r}: the file type is taken from its suffix and Matplotlib "
            f"writes {', '.join('.' + f for f in sorted(formats))}. Fix: end the name with "
            f"one of them, e.g. .png")
    return path


def write_figure(figure: Any, path: str | os.PathLike[str], *, dpi: int = 100) -> None:
    """Save a Matplotlib figure atomically, in the format of the path's suffix (a crash or
    Ctrl-C leaves any previous file whole)."""
    fmt = Path(path).suffix.lstrip(".").lower()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format=fmt, dpi=dpi))


def add_scheduler_option(parser: argparse.ArgumentParser | Any, what: str) -> None:
    """``--scheduler ADDRESS|local:N``: where the independent tasks of a sweep run
    (:func:`sloth.executor.executor_from_scheduler`); ``what`` names those tasks."""
    parser.add_argument(
        "--scheduler", metavar="ADDRESS", default=None,
        help=f"run {what} on a Dask cluster: the address of its scheduler "
             "(tcp://HOST:8786, from `dask scheduler`; start each worker with `dask worker "
             "ADDRESS --nthreads 1`), or local:N for N worker processes on this machine "
             "(about one per core); needs pip install 'sloth-scaling[dask]'. The rows are "
             "those of a run in process with OPENBLAS_NUM_THREADS=1, as Dask runs its "
             "workers (default: in process, one after another)")


def open_executor(scheduler: str | None) -> Any:
    """The executor of ``--scheduler`` (a context manager), its errors naming the option."""
    from sloth.executor import executor_from_scheduler

    try:
        return executor_from_scheduler(scheduler)
    except (ValueError, OSError, SlothError) as exc:
        message = f"--scheduler {scheduler}: {exc}"
        try:
            error = type(exc)(message)
        except TypeError:  # a subclass with another constructor
            error = DataValidationError(message)
        raise error from None


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
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


