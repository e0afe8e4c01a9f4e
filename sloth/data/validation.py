"""Read and validate the tables users give sloth: evaluations to fit, models to predict.

The expected input is a *wide* table, one row per model::

    model,        family, params, tokens, MMLU, ARC,  GSM8K
    my-model-1b,  mine,   1.1e9,  2e12,   0.31, 0.29, 0.02
    my-model-7b,  mine,   6.9e9,  2e12,   0.52,     , 0.18

``params`` and ``tokens`` are absolute counts; scores are fractions in [0, 1] and may be
empty where a model was not evaluated. :func:`read_evaluations` turns such a table into a
:class:`~sloth.data.table.ScoreTable` to fit; :func:`read_prediction_table` validates the
tables of models to predict or forecast (and their observed scores) with the same checks.
Every problem raises a :class:`~sloth.exceptions.DataValidationError` that names the column,
the offending models and the fix, spelt for the caller's ``interface`` (a Python keyword or a
command-line option, see :class:`~sloth.data.fixes.Fixes`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

import numpy as np
import pandas as pd

from sloth.data.fixes import PYTHON, Fixes, Interface, number
from sloth.data.registry import BenchmarkRegistry, default_registry, resolve_benchmarks
from sloth.data.table import FAMILY, MODEL, PARAMS, TOKENS, ScoreTable
from sloth.exceptions import DataNotFoundError, DataValidationError

__all__ = [
    "KNOWN_COVARIATES",
    "check_observed_families",
    "describe_rows",
    "read_evaluations",
    "read_prediction_table",
    "read_table",
    "table_from_frame",
]

#: Smallest and largest parameter count of an LLM: outside, a value is not an absolute count.
PARAMS_RANGE = (1e6, 1e14)
#: Smallest and largest training-token count of an LLM.
TOKENS_RANGE = (1e8, 1e16)
#: A count this many times above or below the median of the others is taken for a unit slip.
UNIT_SLIP_RATIO = 1e3
#: Column names that are covariates of the skills, never benchmarks (compared in lower case).
KNOWN_COVARIATES = ("instruct",)
#: How many offending models an error message lists before "and N more".
MAX_LISTED = 10

_UNNAMED = re.compile(r"^Unnamed: \d+$")
#: Bytes of a file inspected to tell a text table from a binary file.
_SNIFF_BYTES = 8192


# --------------------------------------------------------------------------- helpers


def _fmt_value(value: object) -> str:
    if isinstance(value, float | np.floating):
        return number(float(value))
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


def _check_text_file(path: Path, what: str, shown: str) -> None:
    """Raise unless ``path`` looks like a text file (no NUL byte, valid UTF-8 start)."""
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        binary = exc.start < len(head) - 4  # not just a character cut at the sniff limit
    else:
        binary = False
    if binary or b"\x00" in head:
        _fail(f"{what} {shown!r} is not a text table (it holds binary data, e.g. a netCDF "
              f"or spreadsheet file). Fix: give a CSV file (.tsv: tab-separated), e.g. "
              f"exported with DataFrame.to_csv")


def read_table(source: str | os.PathLike[str] | pd.DataFrame, *,
               what: str = "evaluations file") -> pd.DataFrame:
    """A copy of ``source`` as a DataFrame with string column names.

    CSV files are read with :func:`pandas.read_csv` (``.tsv`` tab-separated); unnamed index
    columns written by ``DataFrame.to_csv`` (``Unnamed: 0``) are dropped.

    Parameters
    ----------
    source : path-like or DataFrame
    what : str
        How messages name a file, e.g. ``"--models file"``.

    Raises
    ------
    DataNotFoundError
        If a path does not exist.
    DataValidationError
        If the file is empty, binary, or not a readable CSV; the message names the file.
    """
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        shown = str(source)
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataNotFoundError(f"{what} {shown!r} does not exist")
        _check_text_file(path, what, shown)
        try:
            frame = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
        except pd.errors.EmptyDataError:
            raise DataValidationError(f"{what} {shown!r} is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataValidationError(
                f"{what} {shown!r} is not a readable CSV table ({exc}). Fix: give one row "
                f"per model with the same number of comma-separated cells in every row"
            ) from None
        frame = frame.loc[:, [not _UNNAMED.match(str(c)) for c in frame.columns]]
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index(drop=True)


# ------------------------------------------------------------------------- column checks


def _require_present(frame: pd.DataFrame, columns: Sequence[str], what: str,
                     fix: str) -> None:
    """Raise if any of ``columns`` is absent, listing the columns present."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        present = ", ".join(repr(c) for c in frame.columns)
        listed = repr(missing[0]) if len(missing) == 1 else repr(missing)
        _fail(f"{what} {listed} not found; columns present: {present}. Fix: {fix}")


def _require_columns(frame: pd.DataFrame, required: Mapping[str, str],
                     extras: Sequence[str], benchmarks: Sequence[str] | None,
                     fixes: Fixes) -> None:
    """Raise if a required, extra-covariate or chosen benchmark column is absent."""
    for column, keyword in required.items():
        _require_present(frame, [column], "required column",
                         f"add it, or if it has another name pass {fixes.column(keyword)}")
    _require_present(frame, extras, "extra covariate column(s)",
                     f"pass {fixes.covariates()} with names of present columns")
    _require_present(frame, benchmarks or (), "benchmark column(s)",
                     f"pass {fixes.benchmarks()} with the score columns of your table")


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


@dataclass(frozen=True)
class _Count:
    """What the checks of a size column know about it."""

    keyword: str  # the loader's keyword of its unit: "params" -> params_unit
    what: str  # as messages call it
    noun: str  # what is counted
    bounds: tuple[float, float]  # plausible absolute counts of an LLM
    units: tuple[tuple[str, float], tuple[str, float]]  # the two likely wrong units
    example: str


_PARAMS = _Count("params", "parameter count", "parameters", PARAMS_RANGE,
                 (("billions", 1e9), ("millions", 1e6)), "7 B -> 7e9")
_TOKENS = _Count("tokens", "training tokens", "tokens", TOKENS_RANGE,
                 (("trillions", 1e12), ("billions", 1e9)), "2 T -> 2e12")

_MISSING_REASONS = {
    (True, False): "missing parameter count",
    (False, True): "missing training tokens",
    (True, True): "missing parameter count and training tokens",
}


def _check_unit(keyword: str, unit: float) -> float:
    value = float(unit)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{keyword}_unit={unit!r}: it must be a positive number, e.g. 1e9 for "
                         f"a column in billions")
    return value


def _size_checks(frame: pd.DataFrame, models: list[str], params_column: str,
                 tokens_column: str, on_missing_size: str, fixes: Fixes = PYTHON,
                 units: tuple[float, float] = (1.0, 1.0),
                 reference: ScoreTable | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, str]]]:
    """Parameter and token counts of kept rows, the keep mask and skipped records.

    ``units`` multiply the two columns (e.g. ``1e9`` for billions); ``reference`` adds the
    counts of another table (the fit's) to the median the unit-slip check compares with.

    Returns
    -------
    params, tokens : ndarray, shape (n_input,)
    keep : ndarray of bool, shape (n_input,)
    skipped : list of dict with keys ``model`` and ``reason``
    """
    fix = "write absolute counts as numbers, e.g. 7e9"
    params = _numeric(frame, params_column, models, "parameter count", fix) * units[0]
    tokens = _numeric(frame, tokens_column, models, "training tokens", fix) * units[1]
    names = np.array(models, dtype=object)
    columns = {params_column: (params, _PARAMS), tokens_column: (tokens, _TOKENS)}
    missing = {column: np.isnan(values) for column, (values, _) in columns.items()}
    for column, (_, count) in columns.items():
        if missing[column].any() and on_missing_size == "raise":
            _fail(
                f"column {column!r} ({count.what}) is missing for "
                f"{describe_rows(names[missing[column]])}. Fix: fill it in, drop these rows, "
                f"or pass {fixes.skip_incomplete()} to leave these models out"
            )
    miss_params, miss_tokens = missing[params_column], missing[tokens_column]
    keep = ~(miss_params | miss_tokens)
    skipped = [
        {MODEL: models[i], "reason": _MISSING_REASONS[(bool(miss_params[i]), bool(miss_tokens[i]))]}
        for i in np.flatnonzero(~keep)
    ]
    for column, (values, count) in columns.items():
        bad = keep & ~(np.isfinite(values) & (values > 0))
        if bad.any():
            _fail(
                f"column {column!r} ({count.what}) must be a positive finite count; got "
                f"{describe_rows(names[bad], values[bad])}. Fix: correct these values "
                f"(absolute counts, e.g. 7e9) or drop these rows"
            )
    for column, (values, count) in columns.items():
        others = None if reference is None else getattr(reference, count.keyword)
        _scale_checks(column, values[keep], names[keep], count, fixes, others)
    return params, tokens, keep, skipped


def _scale_checks(column: str, values: np.ndarray, names: np.ndarray, count: _Count,
                  fixes: Fixes, reference: np.ndarray | None = None) -> None:
    """Raise if positive counts, shape (n,), are not absolute counts: the whole column in
    another unit, some rows outside an LLM's range, or some rows a unit slip off the others.
    """
    if not values.size:
        return
    low, high = count.bounds
    if values.max() < low:
        _whole_column_scaled(column, values, names, count, fixes)
    implausible = (values < low) | (values > high)
    if implausible.any():
        others = float(np.median(values[~implausible] if (~implausible).any() else values))
        _fail(
            f"column {column!r} ({count.what}) has values that cannot be absolute counts "
            f"for {describe_rows(names[implausible], values[implausible])}: an LLM has "
            f"between {number(low)} and {number(high)} {count.noun}, and the median of the "
            f"other rows is {number(others)}.{_slip_hint(values[implausible], others)} "
            f"Fix: write these rows as absolute counts like the others (e.g. 7e9), or drop "
            f"them"
        )
    pooled = values if reference is None else np.concatenate([values, reference])
    if pooled.size < 2:
        return
    medians = _median_of_others(pooled)[: values.size]
    slip = np.abs(np.log10(values / medians)) >= np.log10(UNIT_SLIP_RATIO)
    if slip.any():
        where = "this table and the fit" if reference is not None else "the table"
        median = float(medians[slip][0])
        _fail(
            f"column {column!r} ({count.what}) has values at least "
            f"{number(UNIT_SLIP_RATIO)} times off the median of the other rows of {where} "
            f"({number(median)}) for {describe_rows(names[slip], values[slip])}, as a value "
            f"written in another unit would be.{_slip_hint(values[slip], median)} Fix: write "
            f"these rows in the same unit as the others (absolute counts, e.g. 7e9), or drop "
            f"them"
        )


def _median_of_others(values: np.ndarray) -> np.ndarray:
    """Median of all values but the i-th, for each i: shape (n,) from shape (n,), n >= 2."""
    order = np.argsort(values, kind="stable")
    ranked = values[order]
    m = values.size - 1  # size of each leave-one-out sample
    rank = np.empty(values.size, dtype=int)
    rank[order] = np.arange(values.size)
    lo, hi = (m - 1) // 2, m // 2  # middle positions of the sample without the i-th value
    below = ranked[np.where(lo < rank, lo, lo + 1)]
    above = ranked[np.where(hi < rank, hi, hi + 1)]
    return 0.5 * (below + above)


def _whole_column_scaled(column: str, values: np.ndarray, names: np.ndarray,
                         count: _Count, fixes: Fixes) -> NoReturn:
    (first, f1), (second, f2) = count.units
    i = int(np.argmax(values))
    _fail(
        f"column {column!r} looks like {first} or {second} of {count.noun}: its largest "
        f"value is {values[i]:g} (model {names[i]!r}). sloth needs absolute counts. Fix: "
        f"multiply the column by {number(f1)} if it is in {first} or by {number(f2)} if it "
        f"is in "
        f"{second} (e.g. {count.example}), or pass {fixes.unit(count.keyword + '_unit', f1)} "
        f"or {fixes.unit(count.keyword + '_unit', f2)}"
    )


def _slip_hint(values: np.ndarray, median: float) -> str:
    """`` E.g. 7 x 1e9 = 7e9.``: the power of 1e3 that brings the first value to ``median``."""
    value = float(values[0])
    factor = 10.0 ** (3 * round(np.log10(median / value) / 3))
    if factor == 1.0:
        return ""
    return f" A unit slip? {number(value)} x {number(factor)} = {number(value * factor)}."


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


def _is_flag(values: np.ndarray) -> bool:
    """Whether observed values, shape (n,), are at least two 0/1 flags (not scores)."""
    observed = values[~np.isnan(values)]
    return observed.size >= 2 and bool(np.isin(observed, (0.0, 1.0)).all())


def _covariate_like(column: str, raw: pd.Series) -> bool:
    """Whether a column without a known floor is a covariate: a known covariate name, a
    True/False column or a 0/1 flag."""
    if column.lower() in KNOWN_COVARIATES or pd.api.types.is_bool_dtype(raw):
        return True
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    return _is_flag(values)


def _refuse_covariate_columns(frame: pd.DataFrame, benchmarks: Sequence[str],
                              lookup: BenchmarkRegistry, fixes: Fixes) -> None:
    """Raise if a chosen score column is a covariate: True/False values, or a column
    without a known floor whose name or 0/1 values make it a flag."""
    flags = [b for b in benchmarks if pd.api.types.is_bool_dtype(frame[b])
             or (b not in lookup and _covariate_like(b, frame[b]))]
    if flags:
        listed = ", ".join(repr(b) for b in flags)
        _fail(
            f"column {listed} holds a covariate (True/False or 0/1 flags, or a covariate "
            f"name such as 'instruct'), not scores. Fix: pass it through "
            f"{fixes.covariates(flags)} or choose the score columns with {fixes.benchmarks()}"
        )


def _score_matrix(frame: pd.DataFrame, benchmarks: Sequence[str],
                  models: list[str], fixes: Fixes | None = None) -> np.ndarray:
    """Scores as a float matrix, shape (n, J); raise on non-numeric or out-of-range cells.

    ``fixes``: how to spell choosing other score columns; ``None`` where the score columns
    are not the caller's choice (a prediction table's are the fit's benchmarks).
    """
    names = np.array(models, dtype=object)
    fix = "scores must be numbers in [0, 1]; leave unobserved cells empty"
    if fixes is not None:
        fix += f", or choose the score columns with {fixes.benchmarks()}"
    columns = []
    for b in benchmarks:
        values = _numeric(frame, b, models, "scores", fix)
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


def _floor_lookup(floors: Mapping[str, float] | None, registry: BenchmarkRegistry | None,
                  fixes: Fixes) -> BenchmarkRegistry:
    """A copy of ``registry`` (default: the default registry) with ``floors`` registered."""
    lookup = (default_registry() if registry is None else registry).copy()
    for name, value in dict(floors or {}).items():
        try:
            lookup.register(name, value, overwrite=True)
        except ValueError as exc:
            raise DataValidationError(f"{fixes.floor_value(name)}: {exc}") from None
    return lookup


def _benchmark_floors(benchmarks: Sequence[str], lookup: BenchmarkRegistry, inferred: bool,
                      fixes: Fixes) -> np.ndarray:
    """Floors of ``benchmarks``, shape (J,), from ``lookup``.

    ``inferred`` says the score columns were not chosen by the caller, which the message of
    an unknown benchmark then mentions.
    """
    try:
        return lookup.floors(benchmarks, interface=fixes.interface)
    except DataValidationError as exc:
        if not inferred:
            raise
        raise DataValidationError(
            f"{exc} Score columns were taken to be every column but the model, family, "
            f"params, tokens and extra covariate columns; if a column is not a score, choose "
            f"the score columns with {fixes.benchmarks()} or list it in "
            f"{fixes.covariates()}"
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
    params_unit: float = 1.0,
    tokens_unit: float = 1.0,
    skipped: pd.DataFrame | None = None,
    interface: Interface = "python",
) -> ScoreTable:
    """Validate a wide DataFrame into a :class:`ScoreTable` (see :func:`read_evaluations`).

    ``skipped`` lists models already left out by the caller (columns ``model``, ``reason``);
    they are kept at the top of the table's ``skipped`` record.
    """
    fixes = Fixes(interface)
    if on_missing_size not in ("raise", "skip"):
        raise ValueError(f"on_missing_size must be 'raise' or 'skip', got {on_missing_size!r}")
    units = (_check_unit("params", params_unit), _check_unit("tokens", tokens_unit))
    extras = [extra_covariates] if isinstance(extra_covariates, str) else list(extra_covariates)
    if len(frame) == 0:
        _fail("the evaluations table is empty (no rows). Fix: pass a table with one row per "
              "model")
    chosen = None if benchmarks is None else resolve_benchmarks(benchmarks)
    required = {model_column: "model_column", family_column: "family_column",
                params_column: "params_column", tokens_column: "tokens_column"}
    _require_columns(frame, required, extras, chosen, fixes)
    if chosen is None:
        reserved = {*required, *extras}
        chosen = [c for c in frame.columns if c not in reserved]
        if not chosen:
            _fail(f"no score columns: every column is one of {sorted(reserved)}. Fix: add a "
                  f"column of scores per benchmark")
    models = _model_names(frame, model_column)
    params, tokens, keep, newly_skipped = _size_checks(
        frame, models, params_column, tokens_column, on_missing_size, fixes, units)
    frame = frame.loc[keep].reset_index(drop=True)
    models = [m for m, k in zip(models, keep, strict=True) if k]
    if not models:
        _fail(f"no model left: all {keep.size} have missing sizes or token counts")
    families = _families(frame, family_column, models)
    covariates = _extra_covariates(frame, extras, models)
    lookup = _floor_lookup(floors, registry, fixes)
    _refuse_covariate_columns(frame, chosen, lookup, fixes)
    scores = _score_matrix(frame, chosen, models, fixes)
    floor_values = _benchmark_floors(chosen, lookup, benchmarks is None, fixes)
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
    params_unit: float = 1.0,
    tokens_unit: float = 1.0,
    interface: Interface = "python",
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
    params_unit, tokens_unit : float
        What one unit of the params and tokens columns counts, e.g. ``1e9`` for a column in
        billions (default 1: absolute counts).
    interface : {"python", "cli"}
        How error messages spell their fix: Python keywords (``tokens_column=``) or the
        command-line options of ``sloth`` (``--tokens-column``).

    Returns
    -------
    ScoreTable
        ``n`` models in input order, ``J`` benchmarks; ``scores`` has shape (n, J) with
        ``nan`` for empty cells.

    Raises
    ------
    DataValidationError
        For an empty or binary file; an empty table; a missing column; non-numeric cells;
        scores outside [0, 1] (percentages are recognised); missing or non-positive sizes;
        sizes in another unit (the whole column in billions/trillions, or some rows outside
        an LLM's range or at least 1e3 times off the median); duplicate model names;
        missing families; a covariate (e.g. ``instruct``) taken for a score column;
        benchmarks without a known floor; models without any score. The message names the
        column, the models and the fix.
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
        params_unit=params_unit,
        tokens_unit=tokens_unit,
        interface=interface,
    )


# ---------------------------------------------------------------------- prediction tables


def _refuse_unknown_columns(frame: pd.DataFrame, known: Sequence[str],
                            benchmarks: Sequence[str], covariates: Sequence[str],
                            registry: BenchmarkRegistry) -> None:
    """Raise naming the columns that are neither ``known`` nor benchmarks of the fit."""
    unknown = [c for c in frame.columns if c not in known]
    if not unknown:
        return
    benchmarks_text = ", ".join(map(repr, benchmarks)) or "none"
    covariates_text = ", ".join(map(repr, covariates)) or "none"
    other = [c for c in unknown if c in registry]
    hint = (f" ({', '.join(map(repr, other))}: benchmark(s) the fit did not include, whose "
            f"scores cannot inform a prediction)" if other else "")
    _fail(
        f"column(s) {', '.join(map(repr, unknown))} are neither benchmarks of the "
        f"fit ({benchmarks_text}) nor its extra covariates ({covariates_text}){hint}. Fix: "
        f"drop these columns, or rename them to the fit's names if they are misspelt"
    )


def read_prediction_table(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    covariates: Sequence[str] = (),
    benchmarks: Sequence[str] = (),
    registry: BenchmarkRegistry | None = None,
    reference: ScoreTable | None = None,
    require_scores: bool = False,
    params_unit: float = 1.0,
    tokens_unit: float = 1.0,
    interface: Interface = "python",
    name: str = "prediction table",
) -> pd.DataFrame:
    """Validate a table of models to predict or forecast (and their observed scores).

    The checks and messages are those of :func:`read_evaluations`, for the columns of a
    fitted model: ``model``, ``family``, ``params``, ``tokens`` (absolute counts) and the
    fit's extra ``covariates``, plus optional score columns of the fit's ``benchmarks``.

    Parameters
    ----------
    source : path-like or DataFrame
        One row per model, columns in any order. Not modified.
    covariates : sequence of str
        The fit's extra covariates (e.g. ``["instruct"]``): required numeric columns.
    benchmarks : sequence of str
        The fit's benchmarks: the only score columns allowed; scores are fractions in
        [0, 1] (percentages are recognised and refused) and may be empty.
    registry : BenchmarkRegistry, optional
        Used to tell the user that an unknown column is a benchmark the fit did not include.
    reference : ScoreTable, optional
        The fit's table: its counts join this table's in the median of the unit-slip check
        (a table of one model has no other row to compare with).
    require_scores : bool
        Refuse a model without any score (for a table of observed models).
    params_unit, tokens_unit : float
        What one unit of the params and tokens columns counts (see :func:`read_evaluations`).
    interface : {"python", "cli"}
        How error messages spell their fix.
    name : str
        How messages name the table: they start with ``"<name>: "``, e.g. ``"--observed"``
        or ``"predict's data"``.

    Returns
    -------
    DataFrame
        ``n`` rows in input order; columns ``model`` (str), ``family`` (str), ``params``,
        ``tokens`` (float, absolute counts), then each covariate (float), then the score
        columns of ``benchmarks`` present in the table, in the fit's order (float, ``nan``
        where empty).

    Raises
    ------
    DataNotFoundError
        If ``source`` is a path that does not exist.
    DataValidationError
        For an empty or binary file; an empty table; a missing required or covariate
        column; a column that is neither a benchmark of the fit nor a covariate; duplicate
        or empty model names;
        empty families; non-numeric, missing or implausible sizes (see
        :func:`read_evaluations`); scores outside [0, 1]; with ``require_scores``, a model
        without any score.
    """
    units = (_check_unit("params", params_unit), _check_unit("tokens", tokens_unit))
    frame = read_table(source, what=f"{name} file")
    registry = default_registry() if registry is None else registry
    try:
        return _prediction_frame(frame, list(covariates), list(benchmarks), registry,
                                 reference, require_scores, units, Fixes(interface))
    except DataValidationError as exc:
        raise DataValidationError(f"{name}: {exc}") from None


def _prediction_frame(frame: pd.DataFrame, covariates: list[str], benchmarks: list[str],
                      registry: BenchmarkRegistry, reference: ScoreTable | None,
                      require_scores: bool, units: tuple[float, float], fixes: Fixes
                      ) -> pd.DataFrame:
    """The checks of :func:`read_prediction_table` on a read table."""
    if len(frame) == 0:
        _fail("the table is empty (no rows). Fix: give one row per model")
    required = [MODEL, FAMILY, PARAMS, TOKENS]
    _require_present(frame, required, "required column(s)",
                     f"add them: a prediction table has columns {', '.join(required)} "
                     f"(absolute counts) and the fit's extra covariates")
    _require_present(frame, covariates, "extra covariate column(s) of the fit",
                     "add them (numbers, e.g. 0/1 for a flag): the fit's skills depend on "
                     "them")
    _refuse_unknown_columns(frame, [*required, *covariates, *benchmarks], benchmarks,
                            covariates, registry)
    models = _model_names(frame, MODEL)
    params, tokens, _, _ = _size_checks(frame, models, PARAMS, TOKENS, "raise", fixes, units,
                                        reference)
    out = pd.DataFrame({MODEL: models, FAMILY: _families(frame, FAMILY, models),
                        PARAMS: params, TOKENS: tokens})
    for column, values in _extra_covariates(frame, covariates, models).items():
        out[column] = values
    present = [b for b in benchmarks if b in frame.columns]
    scores = _score_matrix(frame, present, models)
    if require_scores:
        _require_scores(scores, models, present or benchmarks)
    for j, b in enumerate(present):
        out[b] = scores[:, j]
    return out


def check_observed_families(observed: pd.DataFrame, models: pd.DataFrame, *,
                            observed_name: str = "observed",
                            models_name: str = "new_models") -> None:
    """Raise if a family of the ``observed`` models has no model to forecast.

    A misspelt family in ``observed`` would otherwise leave its family's forecast
    unconditioned (a population forecast) without a word.

    Parameters
    ----------
    observed, models : DataFrame
        Validated tables (see :func:`read_prediction_table`) with a ``family`` column.
    observed_name, models_name : str
        How messages name the two tables, e.g. ``"--observed"`` and ``"--models"``.

    Raises
    ------
    DataValidationError
        Naming the families of ``observed`` that ``models`` lacks, and its models.
    """
    wanted = set(models[FAMILY].astype(str))
    family = observed[FAMILY].astype(str)
    stray = ~family.isin(wanted).to_numpy()
    if stray.any():
        listed = ", ".join(map(repr, dict.fromkeys(family[stray])))
        _fail(
            f"family {listed} of {observed_name} (models "
            f"{describe_rows(observed[MODEL][stray].tolist())}) has no model in "
            f"{models_name}, whose families are {', '.join(map(repr, sorted(wanted)))}. "
            f"Fix: correct the family name if it is misspelt, or add the models to forecast "
            f"of that family to {models_name}"
        )
