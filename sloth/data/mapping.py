"""Column and unit mapping of evaluation tables, before validation.

Tables from other sources name their columns differently (``Model Size (B)``), give sizes in
billions and tokens in trillions, sometimes only a compute budget, and spell benchmarks their
own way (``ARC-C``, ``Winograd``). :func:`map_columns` turns such a table into sloth's schema
(``model, family, params, tokens`` as absolute counts, benchmark columns under sloth's names);
:func:`sloth.data.leaderboard.load_evaluations` takes the same keywords, and ``sloth fit``
the same options (``--model-column``, ``--params-unit``, ``--rename``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sloth.data.fixes import Fixes
from sloth.data.table import FAMILY, MODEL, PARAMS, TOKENS
from sloth.exceptions import DataValidationError

__all__ = ["UNITS", "ColumnMapping", "map_columns", "parse_renames", "parse_unit"]

#: Unit names and their multipliers to absolute counts (FLOPs for compute).
UNITS: dict[str, float] = {
    "count": 1.0, "thousands": 1e3, "millions": 1e6, "billions": 1e9, "trillions": 1e12,
}
_UNIT_ALIASES = {
    "1": "count", "one": "count", "ones": "count", "k": "thousands", "thousand": "thousands",
    "m": "millions", "million": "millions", "b": "billions", "billion": "billions",
    "t": "trillions", "trillion": "trillions",
}

#: FLOPs per parameter and token of a training run (the usual C = 6 N D).
FLOPS_PER_PARAM_TOKEN = 6.0


def training_compute(params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Training compute ``C = 6 N D`` in FLOPs (:data:`FLOPS_PER_PARAM_TOKEN`).

    Parameters
    ----------
    params, tokens : array-like, shape (n,)
        Parameter and training-token counts (absolute).

    Returns
    -------
    ndarray, shape (n,)
    """
    return FLOPS_PER_PARAM_TOKEN * np.asarray(params, dtype=float) * np.asarray(tokens,
                                                                                dtype=float)


def parse_unit(text: str | float, what: str = "unit") -> float:
    """The multiplier of a unit: a name of :data:`UNITS` (or K, M, B, T), or a number
    such as ``1e21``.

    Raises
    ------
    DataValidationError
        Neither a known name nor a positive finite number.
    """
    if isinstance(text, int | float):
        value = float(text)
    else:
        key = str(text).strip().lower()
        key = _UNIT_ALIASES.get(key, key)
        if key in UNITS:
            return UNITS[key]
        try:
            value = float(key)
        except ValueError:
            value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DataValidationError(
            f"{what} {text!r} is not a unit: use one of {sorted(UNITS)} (or K, M, B, T), or a "
            f"positive multiplier such as 1e21")
    return value


def parse_renames(text: str | None) -> dict[str, str]:
    """``"ARC-C=ARC,Winograd=Winogrande"`` as ``{"ARC-C": "ARC", "Winograd": "Winogrande"}``."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise DataValidationError(
                f"rename {item.strip()!r} is not OLD=NEW: write e.g. ARC-C=ARC,Winograd=Winogrande")
        out[old.strip()] = new.strip()
    return out


@dataclass(frozen=True)
class ColumnMapping:
    """Where sloth's columns are in a table, and in which units.

    Parameters
    ----------
    model, family, params, tokens : str
        Column names of the model name, its family, its parameter count and its training
        tokens (default: sloth's own names).
    compute : str, optional
        Column of training compute, used for the tokens (``D = C / (6 N)``) when the table has
        no tokens column.
    params_unit, compute_unit : float
        Multipliers to absolute counts (see :func:`parse_unit`), for the tokens derived from
        compute. The params and tokens columns keep their units: validation applies them
        (``params_unit=`` and ``tokens_unit=`` of :func:`sloth.data.validation.read_evaluations`).
    renames : mapping of str to str
        Further renames (benchmark or covariate columns), old name to new.
    """

    model: str = MODEL
    family: str = FAMILY
    params: str = PARAMS
    tokens: str = TOKENS
    compute: str | None = None
    params_unit: float = 1.0
    compute_unit: float = 1.0
    renames: Mapping[str, str] = field(default_factory=dict)

    def is_identity(self) -> bool:
        """Whether the mapping changes nothing."""
        return self == ColumnMapping()


def map_columns(frame: pd.DataFrame, mapping: ColumnMapping, *,
                interface: str = "python") -> pd.DataFrame:
    """A copy of ``frame`` in sloth's schema: columns renamed, tokens from compute.

    Parameters
    ----------
    frame : DataFrame
        One row per model. Not modified.
    mapping : ColumnMapping
    interface : {"python", "cli"}
        Whose spelling of the options the error messages use (:class:`sloth.data.fixes.Fixes`).

    Returns
    -------
    DataFrame
        Columns ``model, family, params, tokens`` and the others (renamed); params and tokens
        in the table's units, except tokens derived from compute (absolute counts).

    Raises
    ------
    DataValidationError
        A named column is missing, or a rename would collide with another column.
    """
    fixes = Fixes(interface)
    spell = {key: fixes.option(f"{key}_column") for key in
             ("model", "family", "params", "tokens", "compute")}
    spell["renames"] = fixes.option("rename")
    if mapping.is_identity():
        return frame
    columns = list(frame.columns)
    named = {"model": mapping.model, "family": mapping.family, "params": mapping.params}
    if mapping.compute is None or mapping.tokens in columns:
        named["tokens"] = mapping.tokens
    else:
        named["compute"] = mapping.compute
    for key, column in named.items():
        if column not in columns:
            raise DataValidationError(
                f"{spell[key]} {column!r} is not a column of the table (it has {columns}). "
                f"Fix: give the column that holds the {key}")
    missing = [old for old in mapping.renames if old not in columns]
    if missing:
        raise DataValidationError(
            f"{spell['renames']} names columns {missing} that are not in the table (it has "
            f"{columns}). Fix: rename existing columns only")
    out = frame.copy()
    out[PARAMS] = frame[mapping.params]
    if "tokens" in named:
        out[TOKENS] = frame[mapping.tokens]
    else:
        compute = pd.to_numeric(frame[mapping.compute], errors="coerce") * mapping.compute_unit
        params = pd.to_numeric(frame[mapping.params], errors="coerce") * mapping.params_unit
        out[TOKENS] = compute / (FLOPS_PER_PARAM_TOKEN * params.where(params > 0, np.nan))
    out[MODEL] = frame[mapping.model]
    out[FAMILY] = frame[mapping.family]
    sources = {mapping.model, mapping.family, mapping.params, mapping.tokens,
               mapping.compute} - {MODEL, FAMILY, PARAMS, TOKENS, None}
    out = out.drop(columns=[c for c in sources if c in out.columns])
    targets = list(mapping.renames.values())
    clash = [new for old, new in mapping.renames.items()
             if new in out.columns and new not in mapping.renames]
    if clash or len(set(targets)) != len(targets):
        raise DataValidationError(
            f"{spell['renames']} {dict(mapping.renames)} would give two columns the same name "
            f"({sorted(set(clash) | {t for t in targets if targets.count(t) > 1})}). Fix: "
            f"rename to names the table does not already have")
    return out.rename(columns=dict(mapping.renames))
