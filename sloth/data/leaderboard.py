"""The Open LLM Leaderboard compilation of the Sloth paper, and a loader for any table.

``sloth-leaderboard/data_v2.csv`` (felipemaiapolo/sloth, MIT) holds 188 models with their
size (``#Params (B)``, billions), training tokens (``Pretraining Data Size (T)``, trillions),
family (``Family2``, or the coarser ``Family``), an ``Instruct`` flag and scores (fractions)
on the twelve Open LLM Leaderboard v1/v2 benchmarks plus HumanEval, XWinograd and sub-tasks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sloth.data.fixes import PYTHON, Fixes, Interface
from sloth.data.mapping import ColumnMapping, map_columns, parse_unit
from sloth.data.registry import BenchmarkRegistry, resolve_benchmarks
from sloth.data.sources import resolve_data_file
from sloth.data.table import FAMILY, MODEL, PARAMS, TOKENS, ScoreTable
from sloth.data.validation import describe_rows, read_evaluations, read_table, table_from_frame
from sloth.exceptions import DataValidationError

__all__ = ["LEADERBOARD_FILE", "is_leaderboard_schema", "load_evaluations", "load_leaderboard"]

#: Name of the leaderboard file in :data:`~sloth.data.sources.DATA_FILES`.
LEADERBOARD_FILE = "sloth-leaderboard/data_v2.csv"

#: Leaderboard column names.
LB_MODEL = "Model"
LB_PARAMS_B = "#Params (B)"
LB_TOKENS_T = "Pretraining Data Size (T)"
LB_INSTRUCT = "Instruct"
#: Name of the instruct flag in ``ScoreTable.extra_covariates``.
INSTRUCT = "instruct"

_TRUE = {"true", "1", "yes", "1.0"}
_FALSE = {"false", "0", "no", "0.0"}


def is_leaderboard_schema(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` has the leaderboard's own columns (``Model`` and ``#Params (B)``)."""
    return LB_MODEL in frame.columns and LB_PARAMS_B in frame.columns


def _instruct_flag(raw: pd.Series, models: pd.Series, fixes: Fixes) -> np.ndarray:
    """The ``Instruct`` column as 0/1 floats, shape (n,)."""
    if pd.api.types.is_bool_dtype(raw):
        return raw.to_numpy(dtype=float)
    text = raw.astype(str).str.strip().str.lower()
    bad = ~(text.isin(_TRUE) | text.isin(_FALSE)).to_numpy()
    if bad.any():
        raise DataValidationError(
            f"column {LB_INSTRUCT!r} must be True/False; got "
            f"{describe_rows(models[bad].tolist(), raw[bad].tolist())}. Fix: correct these "
            f"cells or pass {fixes.no_instruct()}"
        )
    return text.isin(_TRUE).to_numpy(dtype=float)


def _require(frame: pd.DataFrame, columns: Sequence[str], fix: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"leaderboard table lacks column(s) {missing!r}; columns present: "
            f"{', '.join(map(repr, frame.columns))}. Fix: {fix}"
        )


def canonical_frame(frame: pd.DataFrame, benchmarks: list[str], family_column: str,
                    include_instruct: bool, fixes: Fixes = PYTHON) -> pd.DataFrame:
    """Leaderboard columns renamed and rescaled to sloth's schema (absolute counts)."""
    own = ("your own table with columns model, family, params, tokens" if fixes.cli
           else "read_evaluations for your own table")
    _require(frame, [LB_MODEL, family_column, LB_PARAMS_B, LB_TOKENS_T],
             f"use the leaderboard file as published, or {own}")
    _require(frame, benchmarks, f"choose {fixes.benchmarks()} among the columns present")
    out = pd.DataFrame({
        MODEL: frame[LB_MODEL],
        FAMILY: frame[family_column],
        PARAMS: pd.to_numeric(frame[LB_PARAMS_B], errors="coerce") * 1e9,
        TOKENS: pd.to_numeric(frame[LB_TOKENS_T], errors="coerce") * 1e12,
    })
    if include_instruct:
        _require(frame, [LB_INSTRUCT], f"pass {fixes.no_instruct()}")
        out[INSTRUCT] = _instruct_flag(frame[LB_INSTRUCT], frame[LB_MODEL].astype(str), fixes)
    for b in benchmarks:
        out[b] = frame[b]
    return out


def drop_unusable(frame: pd.DataFrame, benchmarks: list[str]
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leave out models without size, tokens or any chosen score; return (kept, skipped)."""
    no_params = frame[PARAMS].isna().to_numpy()
    no_tokens = frame[TOKENS].isna().to_numpy()
    scores = frame[benchmarks].apply(pd.to_numeric, errors="coerce")
    no_scores = (scores.isna() & frame[benchmarks].isna()).all(axis=1).to_numpy()
    reasons = []
    for p, t, s in zip(no_params, no_tokens, no_scores, strict=True):
        parts = [why for flag, why in ((p, "missing parameter count"),
                                       (t, "missing training tokens")) if flag]
        if not parts and s:
            parts = ["no score on the chosen benchmarks"]
        reasons.append(" and ".join(parts))
    drop = np.array([bool(r) for r in reasons])
    skipped = pd.DataFrame({MODEL: frame[MODEL].astype(str)[drop].tolist(),
                            "reason": [r for r in reasons if r]}, dtype=object)
    return frame.loc[~drop].reset_index(drop=True), skipped


def leaderboard_table(
    frame: pd.DataFrame,
    *,
    benchmarks: str | Sequence[str] | None = "all",
    family_column: str = "Family2",
    include_instruct: bool = True,
    registry: BenchmarkRegistry | None = None,
    floors: Mapping[str, float] | None = None,
    interface: Interface = "python",
) -> ScoreTable:
    """A :class:`ScoreTable` from a DataFrame in the leaderboard's schema.

    See :func:`load_leaderboard`; ``benchmarks=None`` means ``"all"`` (the twelve headline
    benchmarks, not every column).
    """
    names = resolve_benchmarks("all" if benchmarks is None else benchmarks)
    canonical = canonical_frame(frame, names, family_column, include_instruct,
                                Fixes(interface))
    kept, skipped = drop_unusable(canonical, names)
    return table_from_frame(
        kept,
        benchmarks=names,
        extra_covariates=[INSTRUCT] if include_instruct else [],
        floors=floors,
        registry=registry,
        skipped=skipped,
        interface=interface,
    )


def load_leaderboard(
    path: str | os.PathLike[str] | None = None,
    *,
    benchmarks: str | Sequence[str] = "all",
    family_column: str = "Family2",
    include_instruct: bool = True,
    registry: BenchmarkRegistry | None = None,
    download: bool = True,
    floors: Mapping[str, float] | None = None,
    interface: Interface = "python",
) -> ScoreTable:
    """Load the Sloth paper's Open LLM Leaderboard table.

    Parameters
    ----------
    path : path-like, optional
        A local copy of ``data_v2.csv``. Default: found through
        :func:`~sloth.data.sources.resolve_data_file` (``$SLOTH_DATA_DIR``, the cache, or a
        verified download).
    benchmarks : str or sequence of str
        ``"v1"``, ``"v2"``, ``"all"`` (twelve benchmarks) or a list of columns, e.g.
        ``["HumanEval"]``.
    family_column : str
        ``"Family2"`` (the paper's families, default) or ``"Family"`` (coarser).
    include_instruct : bool
        Keep the ``Instruct`` flag as the 0/1 extra covariate ``"instruct"``.
    registry : BenchmarkRegistry, optional
        Where guessing floors are looked up (default registry if ``None``).
    download : bool
        Allow downloading the file when no local copy is found.
    floors : mapping of str to float, optional
        Guessing floors overriding the registry (for benchmarks it does not know).
    interface : {"python", "cli"}
        How error messages spell their fix (see :class:`~sloth.data.fixes.Fixes`).

    Returns
    -------
    ScoreTable
        Models with a parameter count, a token count and at least one chosen score, in file
        order; ``params``/``tokens`` as absolute counts; ``skipped`` lists the others with
        the reason (``"missing training tokens"``, ``"no score on the chosen benchmarks"``...).
        With all twelve benchmarks: 175 models, 64 families, 1524 scores, 13 skipped.
    """
    file = resolve_data_file(LEADERBOARD_FILE, path, download=download)
    return leaderboard_table(
        read_table(file),
        benchmarks=benchmarks,
        family_column=family_column,
        include_instruct=include_instruct,
        registry=registry,
        floors=floors,
        interface=interface,
    )


def load_evaluations(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    params_unit: str | float = 1.0,
    tokens_unit: str | float = 1.0,
    compute_column: str | None = None,
    compute_unit: str | float = 1.0,
    rename: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> ScoreTable:
    """Load any evaluations table, recognising the leaderboard's own schema.

    A table with the columns ``Model`` and ``#Params (B)`` is read like the leaderboard
    (keyword arguments of :func:`leaderboard_table`: ``benchmarks`` (default ``"all"``),
    ``family_column``, ``include_instruct``, ``registry``, ``floors``, ``interface``); any
    other table goes through :func:`~sloth.data.validation.read_evaluations` with
    ``kwargs``, after its columns are mapped into sloth's schema
    (:func:`sloth.data.mapping.map_columns`).

    Parameters
    ----------
    source : path-like or DataFrame
    params_unit, tokens_unit : str or float, default 1 (absolute counts)
        Units of the params and tokens columns: ``"billions"``, ``"trillions"``, ... (see
        :data:`sloth.data.mapping.UNITS`) or a multiplier.
    compute_column : str, optional
        Column of training compute; gives the tokens as ``C / (6 N)`` when the table has no
        tokens column.
    compute_unit : str or float, default 1 (FLOPs)
        Unit of the compute column, e.g. ``1e21``.
    rename : mapping of str to str, optional
        Columns to rename before validation, e.g. ``{"ARC-C": "ARC", "Winograd":
        "Winogrande"}``.
    **kwargs
        Passed on as described above (``model_column``, ``family_column``,
        ``params_column``, ``tokens_column`` name the source's columns).

    Returns
    -------
    ScoreTable
    """
    frame = read_table(source)
    if is_leaderboard_schema(frame):
        return leaderboard_table(frame, **kwargs)
    params_scale = parse_unit(params_unit, "params_unit")
    mapping = ColumnMapping(
        model=kwargs.pop("model_column", MODEL), family=kwargs.pop("family_column", FAMILY),
        params=kwargs.pop("params_column", PARAMS), tokens=kwargs.pop("tokens_column", TOKENS),
        compute=compute_column, params_unit=params_scale,
        compute_unit=parse_unit(compute_unit, "compute_unit"), renames=dict(rename or {}),
    )
    mapped = map_columns(frame, mapping, interface=kwargs.get("interface", "python"))
    from_compute = compute_column is not None and mapping.tokens not in frame.columns
    return read_evaluations(
        mapped, params_unit=params_scale,
        tokens_unit=1.0 if from_compute else parse_unit(tokens_unit, "tokens_unit"), **kwargs)
