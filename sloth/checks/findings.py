"""Findings of the checks and the reports that hold them.

A :class:`Finding` is one result of one check (its severity, a message that says what to
change, the numbers behind it); :class:`Findings` is the behaviour shared by reports that
hold a list of them (:class:`sloth.checks.structure.StructuralReport`,
:class:`sloth.checks.report.DiagnosticReport`); :func:`jsonable` turns their numbers into
strict JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["SEVERITIES", "Finding", "Findings", "Severity", "jsonable"]

Severity = Literal["ok", "warning", "error"]
SEVERITIES: tuple[str, ...] = ("ok", "warning", "error")
_MARK = {"ok": "  ok ", "warning": " WARN", "error": "ERROR"}


@dataclass(frozen=True)
class Finding:
    """One result of one check.

    Parameters
    ----------
    check : str
        Name of the check (e.g. ``"design_rank"``).
    severity : {"ok", "warning", "error"}
        ``"error"``: the model is not identified as specified (a report with an error has not
        passed); ``"warning"``: a weakness that leaves the fit usable but leaning on the prior.
    message : str
        What was found and, unless ``ok``, what to change.
    details : dict
        JSON-able numbers behind the message.
    """

    check: str
    severity: Severity
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity={self.severity!r} is not one of {SEVERITIES}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: ``check``, ``severity``, ``message``, ``details``."""
        return jsonable(asdict(self))

    def format(self) -> str:
        """One line: severity mark, check name and message."""
        return f"[{_MARK[self.severity]}] {self.check}: {self.message}"


class Findings:
    """Shared behaviour of reports holding a list of :class:`Finding`."""

    findings: list[Finding]

    @property
    def errors(self) -> list[Finding]:
        """Findings of severity ``error``."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings of severity ``warning``."""
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def problems(self) -> list[Finding]:
        """Findings that did not pass: the errors, then the warnings."""
        return [*self.errors, *self.warnings]

    def describe_problems(self) -> str:
        """The findings that did not pass on one line, ``"check: message | ..."`` (empty
        when every check passed)."""
        return " | ".join(f"{f.check}: {f.message}" for f in self.problems)

    @property
    def passed(self) -> bool:
        """``True`` when no check reported an error (warnings do not fail a report)."""
        return not self.errors

    def by_check(self, check: str) -> list[Finding]:
        """Findings of the check named ``check`` (empty if it did not run)."""
        return [f for f in self.findings if f.check == check]

    def severity_of(self, check: str) -> Severity | None:
        """Worst severity reported by ``check``, or ``None`` if it did not run."""
        found = [SEVERITIES.index(f.severity) for f in self.by_check(check)]
        return SEVERITIES[max(found)] if found else None  # type: ignore[return-value]


def jsonable(obj: Any) -> Any:
    """``obj`` with NumPy scalars/arrays turned into Python numbers and lists, and non-finite
    floats into ``None`` (strict JSON has no NaN)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    return obj
