"""How an error message spells its fix: as a Python keyword or as a command-line option.

Every loader of :mod:`sloth.data` takes ``interface="python"`` (the default) or
``interface="cli"``; the messages of its errors then propose the fix the caller can type:
``tokens_column='<that name>'`` from Python, ``--tokens-column '<that name>'`` from the
command line. The two spellings of each fix are stated once, here.

Examples
--------
>>> Fixes("python").unit("params_unit", 1e9)
'params_unit=1e9'
>>> Fixes("cli").unit("params_unit", 1e9)
'--params-unit 1e9'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["INTERFACES", "PYTHON", "Fixes", "Interface", "number"]

#: Where a loader was called from: the Python API or the ``sloth`` command line.
Interface = Literal["python", "cli"]
INTERFACES: tuple[str, ...] = get_args(Interface)


def number(value: float) -> str:
    """A number as a user would type it: ``1e9``, ``1.5e12``, ``0.25``."""
    return f"{value:g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def _option(keyword: str) -> str:
    """The command-line option of a keyword: ``tokens_column`` -> ``--tokens-column``."""
    return "--" + keyword.replace("_", "-")


@dataclass(frozen=True)
class Fixes:
    """The spelling of every fix an error message of :mod:`sloth.data` can propose.

    Parameters
    ----------
    interface : {"python", "cli"}
        ``"python"``: keywords of the loaders (``benchmarks=[...]``); ``"cli"``: options of
        ``sloth`` (``--benchmarks NAME,NAME,...``).

    Raises
    ------
    ValueError
        For another ``interface``.
    """

    interface: Interface = "python"

    def __post_init__(self) -> None:
        if self.interface not in INTERFACES:
            raise ValueError(
                f"interface={self.interface!r}: allowed values are "
                f"{', '.join(map(repr, INTERFACES))}"
            )

    @property
    def cli(self) -> bool:
        """Whether fixes are spelt as command-line options."""
        return self.interface == "cli"

    def option(self, keyword: str) -> str:
        """The option itself: ``tokens_column=`` or ``--tokens-column``."""
        return _option(keyword) if self.cli else f"{keyword}="

    def column(self, keyword: str) -> str:
        """Naming a renamed column, e.g. ``tokens_column='<that name>'``."""
        if self.cli:
            return f"{_option(keyword)} '<that name>'"
        return f"{keyword}='<that name>'"

    def covariates(self, names: Sequence[str] = ()) -> str:
        """Using columns as extra covariates, e.g. ``extra_covariates=['instruct']``."""
        names = list(names)
        if self.cli:
            return " ".join(f"--covariate {n}" for n in names) if names else (
                "--covariate COL (repeatable)")
        return f"extra_covariates={names!r}" if names else "extra_covariates=[...]"

    def benchmarks(self) -> str:
        """Choosing the score columns."""
        return "--benchmarks NAME,NAME,..." if self.cli else "benchmarks=[...]"

    def floor(self, name: str) -> str:
        """Giving the guessing floor of a benchmark the registry does not know."""
        if self.cli:
            return f"give its floor with --floor '{name}=VALUE' (repeatable)"
        return (f"register it with sloth.register_benchmark({name!r}, floor=...) or pass "
                f"floors={{{name!r}: ...}} to the loader")

    def floor_value(self, name: str) -> str:
        """Where a floor value was given, for a message about a bad one."""
        return f"--floor '{name}=...'" if self.cli else f"floors={{{name!r}: ...}}"

    def skip_incomplete(self) -> str:
        """Leaving out models with an empty size or token count."""
        return "--skip-incomplete" if self.cli else "on_missing_size='skip'"

    def unit(self, keyword: str, factor: float) -> str:
        """Declaring a column's unit, e.g. ``params_unit=1e9`` for billions."""
        if self.cli:
            return f"{_option(keyword)} {number(factor)}"
        return f"{keyword}={number(factor)}"

    def no_instruct(self) -> str:
        """Leaving out the leaderboard's instruct flag."""
        return "--no-instruct" if self.cli else "include_instruct=False"


#: The fixes of the Python API, the default of every loader.
PYTHON = Fixes("python")
