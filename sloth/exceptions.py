"""Exceptions and warnings raised by sloth.

Every error that a user can cause carries a message that names the offending input and
says how to fix it.

Warnings. sloth's own warnings are :class:`SlothWarning` subclasses issued through
:func:`issue_warning`: the message prints on one line (any line breaks and runs of spaces
in it are collapsed), and the location Python prints with it is the first frame outside
the ``sloth`` package, that is the user's own call (``model.fit(df)``), not a line of
sloth. Python's default display still shows that location and its source line; sloth does
not change ``warnings.showwarning`` or ``warnings.formatwarning``, because those are
global to the process and importing a library must change nothing global. Filter sloth's
warnings with ``warnings.filterwarnings("ignore", category=sloth.exceptions.SlothWarning)``
(or a subclass), as for any other warning.
"""

from __future__ import annotations

import os
import warnings

#: Frames of files under this folder are skipped when a warning's location is chosen.
_PACKAGE_PREFIX = os.path.dirname(os.path.abspath(__file__)) + os.sep


class SlothError(Exception):
    """Base class of all sloth errors."""


class DataValidationError(SlothError, ValueError):
    """A table of evaluations does not fit the schema sloth needs.

    The message names the column, the offending rows (by model name) and the fix.
    """


class DataNotFoundError(SlothError, FileNotFoundError):
    """A reference data file could not be found, read from cache, or downloaded."""


class ChecksumError(SlothError, OSError):
    """A data file's SHA-256 does not match the pinned checksum."""


class CorruptFileError(ChecksumError, DataValidationError):
    """A file is not what sloth wrote: unreadable, truncated, or its data checksum differs.

    The message names the file.
    """


class OutputExistsError(SlothError, FileExistsError):
    """An output file exists and overwriting it was not asked for (or it is a folder)."""


class ForecastError(SlothError, ValueError):
    """A forecast that cannot be trusted as asked (e.g. importance weights with a Pareto
    k-hat above the threshold while refitting was refused)."""


class IdentifiabilityError(SlothError, ValueError):
    """The data cannot identify the requested model (too many skills, too few families...)."""


class NotFittedError(SlothError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class MissingDependencyError(SlothError, ImportError):
    """An optional dependency is needed and not installed; the message names the install
    command (e.g. ``pip install 'sloth-scaling[dask]'``)."""


class SlothWarning(UserWarning):
    """Base class of sloth's warnings: its text is the message on one line."""

    def __str__(self) -> str:
        return " ".join(" ".join(str(a) for a in self.args).split())


class ConvergenceWarning(SlothWarning):
    """The sampler reported divergences, high R-hat or low effective sample size."""


class IdentifiabilityWarning(SlothWarning):
    """A structural check found a weakness that does not stop the fit."""


class ExtrapolationWarning(SlothWarning):
    """A prediction or forecast lies beyond the fitted data: its parameters, tokens or compute
    far outside the fit's range, or an unseen combination of them (the figures and the
    threshold: :class:`sloth.model.design.DesignRange`)."""


class DataWarning(SlothWarning):
    """Input data that sloth can use but that look inconsistent (e.g. ``C != 6 N D``)."""


def issue_warning(message: str, category: type[SlothWarning] = SlothWarning) -> None:
    """Issue a sloth warning located at the user's call.

    Parameters
    ----------
    message : str
        What happened and what to do about it (line breaks are collapsed on display).
    category : type of SlothWarning
        The warning's class.

    Notes
    -----
    The location is the first stack frame outside the ``sloth`` package
    (``warnings.warn(..., skip_file_prefixes=...)``), so the warning points at the line of
    user code that led to it however deep inside sloth it was raised.
    """
    warnings.warn(category(message), skip_file_prefixes=(_PACKAGE_PREFIX,))
