"""Tables of training runs: validation, CSV reading and the Chinchilla runs.

A *runs table* has one row per trained model (or checkpoint) with its parameter count
``N``, its training tokens ``D`` or its training compute ``C`` (FLOPs; ``C = 6 N D`` links
them), its final validation ``loss``, and optionally a skill or data-domain column.
"""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from sloth.data.mapping import FLOPS_PER_PARAM_TOKEN, training_compute
from sloth.exceptions import (
    DataNotFoundError,
    DataValidationError,
    DataWarning,
    issue_warning,
)

__all__ = [
    "CHINCHILLA_FILE",
    "RUN_COLUMNS",
    "load_chinchilla_runs",
    "read_runs_csv",
    "split_by_compute",
    "validate_runs",
]

#: Canonical columns of a validated runs table.
RUN_COLUMNS = ("N", "D", "C", "loss")
#: Name of the digitized Chinchilla runs under the data folder.
CHINCHILLA_FILE = "chinchilla-epoch/svg_extracted_data.csv"

_ALIASES = {
    "N": ("n", "params", "nparams", "numparams", "parameters", "modelsize"),
    "D": ("d", "tokens", "ntokens", "trainingtokens", "numtokens"),
    "C": ("c", "compute", "flops", "flop", "trainingflop", "trainingflops"),
    "loss": ("loss", "validationloss", "valloss", "evalloss", "testloss"),
}
_MAX_LISTED = 10


def _norm(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _rows(index: pd.Index) -> str:
    labels = [str(v) for v in index[:_MAX_LISTED]]
    more = f" and {len(index) - _MAX_LISTED} more" if len(index) > _MAX_LISTED else ""
    what = "CSV lines" if index.name == "line" else "rows"
    return f"{what} {', '.join(labels)}{more}"


def _find_columns(df: pd.DataFrame, skill_column: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for canon, aliases in _ALIASES.items():
        hits = [c for c in df.columns if _norm(c) in aliases and c != skill_column]
        if len(hits) > 1:
            raise DataValidationError(
                f"columns {hits} all look like {canon!r}; keep one of them or rename the "
                f"others (accepted names for {canon!r}: {', '.join(aliases)})")
        if hits:
            found[canon] = hits[0]
    missing = [c for c in ("N", "loss") if c not in found]
    if "D" not in found and "C" not in found:
        missing.append("D or C")
    if missing:
        raise DataValidationError(
            f"runs table is missing column(s) {missing}; it has {list(df.columns)}. "
            "Give N (parameters), D (training tokens) or C (training FLOPs, C = 6 N D) and "
            "loss, e.g. a CSV header 'N,D,loss'.")
    return found


def validate_runs(runs: pd.DataFrame, *, skill_column: str | None = None,
                  min_runs: int = 1, check_compute: float = 0.25) -> pd.DataFrame:
    """Check a runs table and return it with canonical columns.

    Column names are matched case- and punctuation-insensitively: ``N`` (also ``params``,
    ``Model Size``...), ``D`` (``tokens``...), ``C`` (``compute``, ``FLOPs``,
    ``Training FLOP``...) and ``loss``. Missing ``D`` is ``C / (6 N)``; missing ``C`` is
    ``6 N D``.

    Parameters
    ----------
    runs : DataFrame, n rows
        The runs.
    skill_column : str, optional
        Column naming the skill or data domain of each run (kept as ``"skill"``).
    min_runs : int
        Fewest runs accepted (per skill when ``skill_column`` is given).
    check_compute : float
        When both ``D`` and ``C`` are given, warn about runs whose ``C / (6 N D)`` is off
        1 by more than this fraction (the laws use ``D``; allocation uses ``C = 6 N D``).

    Returns
    -------
    DataFrame, n rows
        Columns ``N``, ``D``, ``C``, ``loss`` (float) and ``skill`` (str) when requested;
        the index of ``runs`` is kept so that messages can name rows.

    Raises
    ------
    DataValidationError
        Naming the column, the offending rows and the fix.
    """
    if not isinstance(runs, pd.DataFrame):
        raise DataValidationError(
            f"runs must be a pandas DataFrame, got {type(runs).__name__}; read a CSV with "
            "sloth.laws.read_runs_csv")
    if len(runs) == 0:
        raise DataValidationError("runs table is empty; give at least one run per row")
    found = _find_columns(runs, skill_column)
    out = pd.DataFrame(index=runs.index)
    for canon, col in found.items():
        raw = runs[col]
        values = pd.to_numeric(raw, errors="coerce").astype(float)
        bad = values.isna() & raw.notna()
        if bad.any():
            examples = ", ".join(repr(v) for v in raw[bad].iloc[:3])
            raise DataValidationError(
                f"column {col!r} ({canon}) has non-numeric values at {_rows(runs.index[bad])} "
                f"(e.g. {examples}); write plain numbers such as 7e9")
        bad = ~np.isfinite(values)
        if bad.any():
            raise DataValidationError(
                f"column {col!r} ({canon}) is empty or not finite at {_rows(runs.index[bad])}; "
                "fill these values or drop those runs")
        bad = values <= 0
        if bad.any():
            raise DataValidationError(
                f"column {col!r} ({canon}) must be positive; it is <= 0 at "
                f"{_rows(runs.index[bad])} (values {values[bad].iloc[:3].tolist()}). "
                "Give absolute counts (e.g. N=7e9, not log10 N) and losses in nats > 0.")
        out[canon] = values
    if "D" not in out:
        out["D"] = out["C"] / (FLOPS_PER_PARAM_TOKEN * out["N"])
    if "C" not in out:
        out["C"] = training_compute(out["N"], out["D"])
    else:
        ratio = out["C"] / training_compute(out["N"], out["D"])
        off = (ratio - 1.0).abs() > check_compute
        if off.any():
            issue_warning(
                f"C differs from 6 N D by more than {check_compute:.0%} at "
                f"{_rows(runs.index[off])}; the laws are fitted on D and compute-optimal "
                "allocation assumes C = 6 N D", DataWarning)
    out = out[list(RUN_COLUMNS)]
    if skill_column is not None:
        if skill_column not in runs.columns:
            raise DataValidationError(
                f"skill column {skill_column!r} is not in the runs table (columns: "
                f"{list(runs.columns)}); pass the name of the column holding the skill")
        skill = runs[skill_column]
        bad = skill.isna()
        if bad.any():
            raise DataValidationError(
                f"skill column {skill_column!r} is empty at {_rows(runs.index[bad])}; give "
                "every run a skill or drop those runs")
        out["skill"] = skill.astype(str)
        counts = out["skill"].value_counts()
        few = counts[counts < min_runs]
        if len(few):
            raise DataValidationError(
                f"skill(s) {few.index.tolist()} in column {skill_column!r} have only "
                f"{few.tolist()} runs; the law needs at least {min_runs} per skill. Add runs "
                "or drop those skills.")
    elif len(out) < min_runs:
        raise DataValidationError(
            f"runs table has {len(out)} runs; the law needs at least {min_runs}. Add runs.")
    return out


def read_runs_csv(path: str | PathLike[str], *, skill_column: str | None = None,
                  min_runs: int = 1) -> pd.DataFrame:
    """Read and validate a CSV of runs (see :func:`validate_runs`).

    The returned index holds the CSV line number of each run (header = line 1), so that
    error messages point into the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"runs file {str(path)!r} does not exist; check the path")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise DataValidationError(f"could not read {str(path)!r} as CSV: {err}") from err
    df.index = pd.RangeIndex(2, 2 + len(df), name="line")
    return validate_runs(df, skill_column=skill_column, min_runs=min_runs)


def load_chinchilla_runs(path: str | PathLike[str] | None = None, *,
                         drop_highest_loss: int = 5, download: bool = True) -> pd.DataFrame:
    """The 245 digitized training runs of Hoffmann et al. (2022).

    The points were extracted from a figure of the Chinchilla paper by Besiroglu et al.
    (2024, Epoch AI); training tokens are ``D = C / (6 N)``. Like that replication, the
    ``drop_highest_loss`` highest-loss runs (5; clear digitization outliers) are dropped.

    Parameters
    ----------
    path : path, optional
        A local copy of ``svg_extracted_data.csv``; else the file is looked up through
        :func:`sloth.data.sources.resolve_data_file` (``$SLOTH_DATA_DIR``, cache, download).
    drop_highest_loss : int
        Number of highest-loss runs to drop.
    download : bool
        Allow a download when no local copy is found.

    Returns
    -------
    DataFrame, 240 rows by default
        Columns ``N``, ``D``, ``C``, ``loss``; index = row of the source file.
    """
    from sloth.data.sources import resolve_data_file

    path = resolve_data_file(CHINCHILLA_FILE, path, download=download)
    raw = pd.read_csv(path)
    runs = validate_runs(raw.rename(columns={"Model Size": "N", "Training FLOP": "C"})[
        ["N", "C", "loss"]])
    if drop_highest_loss:
        runs = runs.drop(runs["loss"].nlargest(drop_highest_loss).index)
    runs.attrs["source"] = f"{CHINCHILLA_FILE} (Besiroglu et al. 2024 digitization)"
    return runs


def split_by_compute(runs: pd.DataFrame, cutoff: float,
                     *, column: str = "C") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split runs at a compute cutoff: ``(runs with C < cutoff, runs with C >= cutoff)``."""
    below = runs[column] < cutoff
    return runs[below], runs[~below]

