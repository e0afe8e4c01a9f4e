"""Read and validate users' own evaluation tables into a :class:`~sloth.data.table.ScoreTable`.

The expected input is a *wide* table, one row per model::

    model,        family, params, tokens, MMLU, ARC,  GSM8K
    my-model-1b,  mine,   1.1e9,  2e12,   0.31, 0.29, 0.02
    my-model-7b,  mine,   6.9e9,  2e12,   0.52,     , 0.18

``params`` and ``tokens`` are absolute counts; scores are fractions in [0, 1] and may be
empty where a model was not evaluated. Every problem raises a
:class:`~sloth.exceptions.DataValidationError` that names the column, the offending models and
the fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, NoReturn

import numpy as np
import pandas as pd

from sloth.data.registry import BenchmarkRegistry, default_registry, resolve_benchmarks
from sloth.data.table import FAMILY, MODEL, PARAMS, TOKENS, ScoreTable
from sloth.exceptions import DataNotFoundError, DataValidationError

__all__ = ["read_evaluations", "read_table", "table_from_frame"]

#: Largest parameter count that is taken to mean "billions" rather than an absolute count.
PARAMS_BILLIONS_BELOW = 1e5
#: Largest token count that is taken to mean "trillions/billions" rather than a count.
TOKENS_SCALED_BELOW = 1e6
#: How many offending models an error message lists before "and N more".
MAX_LISTED = 10

_UNNAMED = re.compile(r"^Unnamed: \d+$")


# --------------------------------------------------------------------------- helpers


def _fmt_value(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:g}"
    return repr(value)


def describe_rows(models: Sequence[object], values: Sequence[object] | None = None,
                  limit: int = MAX_LISTED) -> str:
    """Human-readable list of offending models, e.g. ``'a' (150), 'b' (101) and 3 more``.

    Parameters
    ----------
    models : sequence, length m
        Model names (or row labels).
    values : sequence, length m, optional
        The offending cell of each, shown in parentheses.
    limit : int
        How many to list before ``and N more``.
    """
    models = list(models)
    shown = list(values)[:limit] if values is not None else None
    parts = []
    for i, name in enumerate(models[:limit]):
        text = repr(str(name))
        if shown is not None:
            text += f" ({_fmt_value(shown[i])})"
        parts.append(text)
    listed = ", ".join(parts)
    if len(models) > limit:
        listed += f" and {len(models) - limit} more"
    return listed


def _fail(message: str) -> NoReturn:
    raise DataValidationError(message)


def read_table(source: str | os.PathLike[str] | pd.DataFrame) -> pd.DataFrame:
    """A copy of ``source`` as a DataFrame with string column names.

    CSV files are read with :func:`pandas.read_csv` (``.tsv`` tab-separated); unnamed index
    columns written by ``DataFrame.to_csv`` (``Unnamed: 0``) are dropped.

    Raises
    ------
    DataNotFoundError
        If a path does not exist.
    """
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataNotFoundError(f"evaluations file {str(source)!r} does not exist")
        try:
            frame = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
        except pd.errors.EmptyDataError:
            raise DataValidationError(f"evaluations file {str(source)!r} is empty") from None
        frame = frame.loc[:, [not _UNNAMED.match(str(c)) for c in frame.columns]]
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index(drop=True)


# ------------------------------------------------------------------------- column checks


def _require_columns(frame: pd.DataFrame, required: Mapping[str, str],
                     extras: Sequence[str], benchmarks: Sequence[str] | None) -> None:
    """Raise if a required, extra-covariate or chosen benchmark column is absent."""
    present = ", ".join(repr(c) for c in frame.columns)
    for column, keyword in required.items():
        if column not in frame.columns:
            _fail(
                f"required column {column!r} not found; columns present: {present}. Fix: "
                f"add it, or if it has another name pass {keyword}='<that name>'"
            )
    missing = [c for c in extras if c not in frame.columns]
    if missing:
        _fail(
            f"extra covariate column(s) {missing!r} not found; columns present: {present}. "
            f"Fix: pass extra_covariates= with names of present columns"
        )
    missing = [b for b in benchmarks or () if b not in frame.columns]
    if missing:
        _fail(
            f"benchmark column(s) {missing!r} not found; columns present: {present}. Fix: "
            f"pass benchmarks= with the score columns of your table"
        )


def _model_names(frame: pd.DataFrame, column: str) -> list[str]:
    """Model names as strings; raise on missing or duplicated names."""
    raw = frame[column]
    missing = np.flatnonzero(raw.isna().to_numpy())
    if missing.size:
        rows = ", ".join(str(i) for i in missing[:MAX_LISTED])
        _fail(
            f"column {column!r} (model name) is empty in row(s) {rows} (0-based)"
            f"{' and more' if missing.size > MAX_LISTED else ''}. Fix: name every model"
        )
    names = [str(v) for v in raw]
    counts = pd.Series(names).value_counts()
    repeated = [n for n in dict.fromkeys(names) if counts[n] > 1]
    if repeated:
        _fail(
            f"column {column!r} has duplicate model names: {describe_rows(repeated)}. Fix: "
            f"give each model a unique name or drop the repeated rows"
        )
    return names


def _families(frame: pd.DataFrame, column: str, models: Sequence[str]) -> list[str]:
    raw = frame[column]
    missing = raw.isna().to_numpy()
    if missing.any():
        _fail(
            f"column {column!r} (family) is empty for {describe_rows(np.array(models)[missing])}."
            f" Fix: fill in each model's family (a model can be its own family)"
        )
    return [str(v) for v in raw]


def _numeric(frame: pd.DataFrame, column: str, models: Sequence[str], what: str,
             fix: str) -> np.ndarray:
    """Column as float, raising on non-numeric cells (booleans become 0/1)."""
    raw = frame[column]
    if pd.api.types.is_bool_dtype(raw):
        return raw.to_numpy(dtype=float)
    values = pd.to_numeric(raw, errors="coerce")
    bad = (values.isna() & raw.notna()).to_numpy()
    if bad.any():
        _fail(
            f"column {column!r} ({what}) has non-numeric values for "
            f"{describe_rows(np.array(models)[bad], raw[bad].tolist())}. Fix: {fix}"
        )
    return values.to_numpy(dtype=float)


# --------------------------------------------------------------------------- sizes


def _size_checks(frame: pd.DataFrame, models: list[str], params_column: str,
                 tokens_column: str, on_missing_size: str
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, str]]]:
    """Parameter and token counts of kept rows, the keep mask and skipped records.

    Returns
    -------
    params, tokens : ndarray, shape (n_input,)
    keep : ndarray of bool, shape (n_input,)
    skipped : list of dict with keys ``model`` and ``reason``
    """
    fix = "write absolute counts as numbers, e.g. 7e9"
    params = _numeric(frame, params_column, models, "parameter count", fix)
    tokens = _numeric(frame, tokens_column, models, "training tokens", fix)
    names = np.array(models, dtype=object)
    columns = {params_column: (params, "parameter count"),
               tokens_column: (tokens, "training tokens")}
    missing = {column: np.isnan(values) for column, (values, _) in columns.items()}
    for column, (_, what) in columns.items():
        if missing[column].any() and on_missing_size == "raise":
            _fail(
                f"column {column!r} ({what}) is missing for "
                f"{describe_rows(names[missing[column]])}. Fix: fill it in, drop these rows, "
                f"or pass on_missing_size='skip' to leave these models out"
            )
    miss_params, miss_tokens = missing[params_column], missing[tokens_column]
    keep = ~(miss_params | miss_tokens)
    skipped = [
        {MODEL: models[i], "reason": _MISSING_REASONS[(bool(miss_params[i]), bool(miss_tokens[i]))]}
        for i in np.flatnonzero(~keep)
    ]
    for column, (values, what) in columns.items():
        bad = keep & ~(np.isfinite(values) & (values > 0))
        if bad.any():
            _fail(
                f"column {column!r} ({what}) must be a positive finite count; got "
                f"{describe_rows(names[bad], values[bad])}. Fix: correct these values "
                f"(absolute counts, e.g. 7e9) or drop these rows"
            )
    _scale_checks(params[keep], tokens[keep], names[keep], params_column, tokens_column)
    return params, tokens, keep, skipped


_MISSING_REASONS = {
    (True, False): "missing parameter count",
    (False, True): "missing training tokens",
    (True, True): "missing parameter count and training tokens",
}


def _scale_checks(params: np.ndarray, tokens: np.ndarray, names: np.ndarray,
                  params_column: str, tokens_column: str) -> None:
    """Raise if counts look like they are in billions/trillions instead of absolute."""
    if params.size and params.max() < PARAMS_BILLIONS_BELOW:
        i = int(np.argmax(params))
        _fail(
            f"column {params_column!r} looks like billions of parameters: its largest value "
            f"is {params[i]:g} (model {names[i]!r}). sloth needs absolute counts. Fix: "
            f"multiply the column by 1e9 (e.g. 7 -> 7e9)"
        )
    if tokens.size and tokens.max() < TOKENS_SCALED_BELOW:
        i = int(np.argmax(tokens))
        _fail(
            f"column {tokens_column!r} looks like trillions or billions of tokens: its "
            f"largest value is {tokens[i]:g} (model {names[i]!r}). sloth needs absolute "
            f"counts. Fix: multiply the column by 1e12 if it is in trillions or by 1e9 if "
            f"it is in billions (e.g. 2 T -> 2e12)"
        )


# --------------------------------------------------------------------- covariates, scores


def _extra_covariates(frame: pd.DataFrame, columns: Sequence[str],
                      models: list[str]) -> dict[str, np.ndarray]:
    names = np.array(models, dtype=object)
    out: dict[str, np.ndarray] = {}
    for column in columns:
        values = _numeric(frame, column, models, "extra covariate",
                          "encode it as numbers (e.g. 0/1 for a flag)")
        bad = ~np.isfinite(values)
        if bad.any():
            _fail(
                f"extra covariate column {column!r} is missing or infinite for "
                f"{describe_rows(names[bad])}. Fix: fill it in for every model or drop "
                f"these rows"
            )
        out[column] = values
    return out


def _score_matrix(frame: pd.DataFrame, benchmarks: Sequence[str],
                  models: list[str]) -> np.ndarray:
    """Scores as a float matrix, shape (n, J); raise on non-numeric or out-of-range cells."""
    names = np.array(models, dtype=object)
    columns = []
    for b in benchmarks:
        if pd.api.types.is_bool_dtype(frame[b]):
            _fail(
                f"column {b!r} holds True/False values, not scores. Fix: pass it through "
                f"extra_covariates=[{b!r}] or choose the score columns with benchmarks=[...]"
            )
        values = _numeric(frame, b, models, "scores",
                          "scores must be numbers in [0, 1]; leave unobserved cells empty, "
                          "or choose the score columns with benchmarks=[...]")
        _check_range(b, values, names)
        columns.append(values)
    return np.column_stack(columns) if columns else np.empty((len(models), 0))


def _check_range(column: str, values: np.ndarray, names: np.ndarray) -> None:
    observed = ~np.isnan(values)
    bad = observed & ~((values >= 0.0) & (values <= 1.0))
    if not bad.any():
        return
    top = float(np.max(values[observed]))
    if 1.0 < top <= 100.0 and np.all(values[observed] >= 0.0):
        fix = (f"the scores look like percentages (largest {top:g}); divide the column by "
               f"100")
    else:
        fix = "scores must be fractions of items solved, in [0, 1]; correct these values"
    _fail(
        f"column {column!r} has scores outside [0, 1] for "
        f"{describe_rows(names[bad], values[bad])}. Fix: {fix}"
    )


def _benchmark_floors(benchmarks: Sequence[str], floors: Mapping[str, float] | None,
                      registry: BenchmarkRegistry | None, inferred: bool) -> np.ndarray:
    """Floors of ``benchmarks``, shape (J,): ``floors`` first, then the registry.

    ``inferred`` says the score columns were not chosen by the caller, which the message of
    an unknown benchmark then mentions.
    """
    registry = default_registry() if registry is None else registry
    floors = dict(floors or {})
    lookup = registry.copy()
    for name, value in floors.items():
        try:
            lookup.register(name, value, overwrite=True)
        except ValueError as exc:
            raise DataValidationError(f"floors={{{name!r}: ...}}: {exc}") from None
    try:
        return lookup.floors(benchmarks)
    except DataValidationError as exc:
        if not inferred:
            raise
        raise DataValidationError(
            f"{exc} Score columns were taken to be every column but the model, family, "
            f"params, tokens and extra covariate columns; if a column is not a score, choose "
            f"the score columns with benchmarks=[...] or list it in extra_covariates="
        ) from None


def _require_scores(scores: np.ndarray, models: list[str], benchmarks: Sequence[str]) -> None:
    empty = np.isnan(scores).all(axis=1)
    if empty.any():
        _fail(
            f"models {describe_rows(np.array(models, dtype=object)[empty])} have no score on "
            f"any of the chosen benchmark columns ({', '.join(map(repr, benchmarks))}). Fix: "
            f"drop these rows or add their scores"
        )


# ------------------------------------------------------------------------------ build


def table_from_frame(
    frame: pd.DataFrame,
    *,
    benchmarks: Sequence[str] | str | None = None,
    model_column: str = MODEL,
    family_column: str = FAMILY,
    params_column: str = PARAMS,
    tokens_column: str = TOKENS,
    extra_covariates: Sequence[str] = (),
    floors: Mapping[str, float] | None = None,
    registry: BenchmarkRegistry | None = None,
    on_missing_size: Literal["raise", "skip"] = "raise",
    skipped: pd.DataFrame | None = None,
) -> ScoreTable:
    """Validate a wide DataFrame into a :class:`ScoreTable` (see :func:`read_evaluations`).

    ``skipped`` lists models already left out by the caller (columns ``model``, ``reason``);
    they are kept at the top of the table's ``skipped`` record.
    """
    if on_missing_size not in ("raise", "skip"):
        raise ValueError(f"on_missing_size must be 'raise' or 'skip', got {on_missing_size!r}")
    extras = [extra_covariates] if isinstance(extra_covariates, str) else list(extra_covariates)
    if len(frame) == 0:
        _fail("the evaluations table is empty (no rows). Fix: pass a table with one row per "
              "model")
    chosen = None if benchmarks is None else resolve_benchmarks(benchmarks)
    required = {model_column: "model_column", family_column: "family_column",
                params_column: "params_column", tokens_column: "tokens_column"}
    _require_columns(frame, required, extras, chosen)
    if chosen is None:
        reserved = {*required, *extras}
        chosen = [c for c in frame.columns if c not in reserved]
        if not chosen:
            _fail(f"no score columns: every column is one of {sorted(reserved)}. Fix: add a "
                  f"column of scores per benchmark")
    models = _model_names(frame, model_column)
    params, tokens, keep, newly_skipped = _size_checks(
        frame, models, params_column, tokens_column, on_missing_size)
    frame = frame.loc[keep].reset_index(drop=True)
    models = [m for m, k in zip(models, keep, strict=True) if k]
    if not models:
        _fail(f"no model left: all {keep.size} have missing sizes or token counts")
    families = _families(frame, family_column, models)
    covariates = _extra_covariates(frame, extras, models)
    scores = _score_matrix(frame, chosen, models)
    floor_values = _benchmark_floors(chosen, floors, registry, inferred=benchmarks is None)
    _require_scores(scores, models, chosen)
    return ScoreTable(
        models=tuple(models),
        family=tuple(families),
        params=params[keep],
        tokens=tokens[keep],
        benchmarks=tuple(chosen),
        floors=floor_values,
        scores=scores,
        extra_covariates=covariates,
        skipped=_skipped_frame(skipped, newly_skipped),
    )


def _skipped_frame(previous: pd.DataFrame | None, new: list[dict[str, str]]) -> pd.DataFrame:
    """Skipped models, columns ``model`` and ``reason``: ``previous`` first, then ``new``."""
    records = [] if previous is None else previous[[MODEL, "reason"]].to_dict("records")
    records += new
    return pd.DataFrame({MODEL: [r[MODEL] for r in records],
                         "reason": [r["reason"] for r in records]}, dtype=object)


def read_evaluations(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    benchmarks: Sequence[str] | str | None = None,
    model_column: str = MODEL,
    family_column: str = FAMILY,
    params_column: str = PARAMS,
    tokens_column: str = TOKENS,
    extra_covariates: Sequence[str] = (),
    floors: Mapping[str, float] | None = None,
    registry: BenchmarkRegistry | None = None,
    on_missing_size: Literal["raise", "skip"] = "raise",
) -> ScoreTable:
    """Read your own evaluations (one row per model) into a validated :class:`ScoreTable`.

    Parameters
    ----------
    source : path-like or DataFrame
        CSV file (``.tsv``: tab-separated) or DataFrame with one row per model. Not modified.
    benchmarks : str or sequence of str, optional
        Score columns: a group name (``"v1"``, ``"v2"``, ``"all"``) or a list of column
        names. Default: every column that is not the model, family, params, tokens or an
        extra covariate column.
    model_column, family_column, params_column, tokens_column : str
        Names of the columns holding the unique model name, its family, its parameter count
        and its training-token count (both absolute counts, e.g. ``7e9`` and ``2e12``).
    extra_covariates : sequence of str
        Further numeric columns for the skill model (e.g. a 0/1 instruct flag); booleans
        become 0/1.
    floors : mapping of str to float, optional
        Guessing floor per benchmark, overriding ``registry``.
    registry : BenchmarkRegistry, optional
        Where floors are looked up; default :func:`~sloth.data.registry.default_registry`.
    on_missing_size : {"raise", "skip"}
        What to do with a model whose parameter or token count is empty: raise, or leave it
        out and record it in ``ScoreTable.skipped``. Non-positive counts always raise.

    Returns
    -------
    ScoreTable
        ``n`` models in input order, ``J`` benchmarks; ``scores`` has shape (n, J) with
        ``nan`` for empty cells.

    Raises
    ------
    DataValidationError
        For an empty table; a missing column; non-numeric cells; scores outside [0, 1]
        (percentages are recognised); missing, non-positive or rescaled (billions/trillions)
        sizes; duplicate model names; missing families; benchmarks without a known floor;
        models without any score. The message names the column, the models and the fix.
    DataNotFoundError
        If ``source`` is a path that does not exist.
    """
    return table_from_frame(
        read_table(source),
        benchmarks=benchmarks,
        model_column=model_column,
        family_column=family_column,
        params_column=params_column,
        tokens_column=tokens_column,
        extra_covariates=extra_covariates,
        floors=floors,
        registry=registry,
        on_missing_size=on_missing_size,
    )
