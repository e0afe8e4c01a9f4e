"""Exceptions raised by sloth.

Every error that a user can cause carries a message that names the offending input and
says how to fix it.
"""

from __future__ import annotations


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


class IdentifiabilityError(SlothError, ValueError):
    """The data cannot identify the requested model (too many skills, too few families...)."""


class NotFittedError(SlothError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class ConvergenceWarning(UserWarning):
    """The sampler reported divergences, high R-hat or low effective sample size."""


class IdentifiabilityWarning(UserWarning):
    """A structural check found a weakness that does not stop the fit."""
