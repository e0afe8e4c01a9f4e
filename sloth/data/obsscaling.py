"""The Observational Scaling Laws evaluations, in the leaderboard's schema.

Ruan, Maddison and Hashimoto (2024) evaluated open models with the same harness as the Open
LLM Leaderboard (``ryoungj/ObsScaling``, Apache-2.0, folder ``eval_results/``). Three of their
files make a training table:

- ``base_llm_benchmark_eval.csv``: 148 base models in 47 families with ``Model Size (B)``
  (billions of parameters), ``Pretraining Data Size (T)`` (trillions of tokens) and the v1
  benchmarks (``ARC-C``, ``Winograd`` ... here renamed ``ARC``, ``Winogrande``), XWinograd
  and HumanEval;
- ``base_llm_leaderboard_v2_eval.csv``: the six v2 benchmarks (``leaderboard_bbh`` ... here
  ``BBH`` ...) of 72 of those models;
- ``instruct_llm_benchmark_eval.csv``: 27 instruct models (v1 benchmarks, HumanEval,
  ``Arena-Elo``, ``MTBench``), of which 20 have a size and a token count.

:func:`load_obsscaling` joins them into a :class:`~sloth.data.table.ScoreTable` like
:func:`~sloth.data.leaderboard.load_leaderboard`'s: absolute counts, the leaderboard's
benchmark names, an ``instruct`` covariate (0 base, 1 instruct) and the leaderboard's family
names, through the table ``obsscaling_families.csv`` shipped beside this module. Four cells
the files get wrong (a token count written in billions, a size copied from another model,
LLaMA-1 fine-tunes given Llama-2's tokens) are corrected through ``obsscaling_corrections.csv``;
both tables say why, row by row.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sloth.data.leaderboard import INSTRUCT, drop_unusable
from sloth.data.mapping import training_compute
from sloth.data.registry import BenchmarkRegistry, resolve_benchmarks
from sloth.data.sources import resolve_data_file
from sloth.data.table import FAMILY, MODEL, PARAMS, TOKENS, ScoreTable
from sloth.data.validation import describe_rows, read_table, table_from_frame
from sloth.exceptions import DataValidationError

__all__ = [
    "BENCHMARK_NAMES",
    "OBS_BASE_FILE",
    "OBS_INSTRUCT_FILE",
    "OBS_V2_FILE",
    "load_obsscaling",
    "normalise_model_name",
    "obsscaling_frame",
    "read_family_map",
    "render_obsscaling",
]

#: Names of the three files in :data:`~sloth.data.sources.DATA_FILES`.
OBS_BASE_FILE = "observational-scaling/base_llm_benchmark_eval.csv"
OBS_V2_FILE = "observational-scaling/base_llm_leaderboard_v2_eval.csv"
OBS_INSTRUCT_FILE = "observational-scaling/instruct_llm_benchmark_eval.csv"

#: The committed family mapping and cell corrections (package data).
FAMILY_MAP_FILE = Path(__file__).with_name("obsscaling_families.csv")
CORRECTIONS_FILE = Path(__file__).with_name("obsscaling_corrections.csv")

#: The files' column names.
OBS_MODEL = "Model"
OBS_FAMILY = "Model Family"
OBS_PARAMS_B = "Model Size (B)"
OBS_TOKENS_T = "Pretraining Data Size (T)"
OBS_FLOPS = "FLOPs (1E21)"

#: The files' benchmark names that differ from the leaderboard's, and the leaderboard's name.
BENCHMARK_NAMES: dict[str, str] = {
    "ARC-C": "ARC",
    "Winograd": "Winogrande",
    "leaderboard_bbh": "BBH",
    "leaderboard_gpqa": "GPQA",
    "leaderboard_ifeval": "IFEval",
    "leaderboard_math_hard": "MATH Lvl 5",
    "leaderboard_mmlu_pro": "MMLU-PRO",
    "leaderboard_musr": "MUSR",
}

_MAP_COLUMNS = ("obsscaling_family", "model", "leaderboard_family", "note")
_CORRECTION_COLUMNS = ("model", "column", "file_value", "value", "note")
_HF_SUFFIXES = ("-hf",)


def normalise_model_name(name: str) -> str:
    """A model's name as the leaderboard writes it: no organisation, lower case, no ``-hf``.

    ``"meta-llama/Llama-2-7b-hf"`` becomes ``"llama-2-7b"``; leaderboard names are unchanged.
    Variants that are other models keep their suffix (``pythia-1b-deduped`` is not
    ``pythia-1b``).
    """
    short = str(name).strip().rsplit("/", 1)[-1].lower()
    for suffix in _HF_SUFFIXES:
        short = short.removesuffix(suffix)
    return short


# ------------------------------------------------------------------ committed tables


def _read_committed(source: str | os.PathLike[str] | pd.DataFrame, columns: Sequence[str],
                    what: str) -> pd.DataFrame:
    frame = read_table(source)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{what} {_label(source)} lacks column(s) {missing!r}; columns present: "
            f"{', '.join(map(repr, frame.columns))}. Fix: give it the columns "
            f"{', '.join(columns)}"
        )
    return frame


def _label(source: object) -> str:
    return "(a DataFrame)" if isinstance(source, pd.DataFrame) else repr(str(source))


def read_family_map(source: str | os.PathLike[str] | pd.DataFrame | None = None
                    ) -> pd.DataFrame:
    """The family mapping, validated.

    Parameters
    ----------
    source : path-like or DataFrame, optional
        A table with columns ``obsscaling_family``, ``model``, ``leaderboard_family``,
        ``note``. A row with an empty ``model`` maps the whole family; a row naming a model
        (as the file writes it) maps that model only and wins over its family's row.
        Default: the committed ``obsscaling_families.csv``.

    Returns
    -------
    DataFrame, shape (m, 4)
        The four columns as strings, ``model`` and ``note`` ``""`` where empty.

    Raises
    ------
    DataValidationError
        For a missing column, an empty family cell or a (family, model) pair given twice.
    """
    src = FAMILY_MAP_FILE if source is None else source
    frame = _read_committed(src, _MAP_COLUMNS, "family map")[list(_MAP_COLUMNS)]
    frame = frame.fillna("").astype(str).apply(lambda c: c.str.strip())
    for column in ("obsscaling_family", "leaderboard_family"):
        empty = frame.index[frame[column] == ""].tolist()
        if empty:
            raise DataValidationError(
                f"family map {_label(src)}: column {column!r} is empty in row(s) "
                f"{', '.join(map(str, empty))} (0-based). Fix: fill it in"
            )
    pairs = frame["obsscaling_family"] + " / " + frame["model"]
    repeated = sorted(set(pairs[pairs.duplicated()]))
    if repeated:
        raise DataValidationError(
            f"family map {_label(src)} gives (family / model) {describe_rows(repeated)} more "
            f"than once. Fix: keep one row per family and per model"
        )
    return frame.reset_index(drop=True)


def _map_families(families: pd.Series, models: pd.Series, family_map: pd.DataFrame
                  ) -> list[str]:
    """Leaderboard family of each model, shape (n,); unmapped families are lower-cased."""
    by_model = {(f, m): lb for f, m, lb in zip(family_map["obsscaling_family"],
                                               family_map["model"],
                                               family_map["leaderboard_family"], strict=True)}
    out, unmapped = [], []
    for family, model in zip(families.astype(str), models.astype(str), strict=True):
        mapped = by_model.get((family, model), by_model.get((family, "")))
        if mapped is None:
            unmapped.append(family)
            mapped = family.lower()
        out.append(mapped)
    if unmapped:
        names = list(dict.fromkeys(unmapped))
        warnings.warn(
            f"family map has no row for family/families {describe_rows(names)}; their names "
            f"are lower-cased instead. Fix: add rows to the family map (family_map=)",
            stacklevel=3,
        )
    return out


def _apply_corrections(frame: pd.DataFrame, corrections: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the listed cells replaced where the file still holds ``file_value``."""
    frame = frame.copy()
    rows = {m: i for i, m in enumerate(frame[OBS_MODEL].astype(str))}
    for model, column, old, new in zip(corrections["model"], corrections["column"],
                                       corrections["file_value"], corrections["value"],
                                       strict=True):
        if model not in rows or column not in frame.columns:
            continue
        i = rows[model]
        held = pd.to_numeric(pd.Series([frame.at[i, column]]), errors="coerce").iloc[0]
        if not math.isclose(float(held), float(old), rel_tol=1e-9):
            warnings.warn(
                f"correction of {column!r} of {model!r} not applied: the file holds {held:g}, "
                f"not {float(old):g} (another version of the file?)", stacklevel=3)
            continue
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
        frame.at[i, column] = float(new)
    return frame


# ------------------------------------------------------------------------ the frame


def _rename_benchmarks(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns=BENCHMARK_NAMES)


def _canonical(raw: pd.DataFrame, family_map: pd.DataFrame, instruct: float,
               what: str) -> pd.DataFrame:
    """One file's rows in sloth's columns (absolute counts), every score column kept."""
    missing = [c for c in (OBS_MODEL, OBS_FAMILY, OBS_PARAMS_B, OBS_TOKENS_T)
               if c not in raw.columns]
    if missing:
        raise DataValidationError(
            f"{what} lacks column(s) {missing!r}; columns present: "
            f"{', '.join(map(repr, raw.columns))}. Fix: pass the Observational Scaling Laws "
            f"file as published, or read your own table with read_evaluations"
        )
    scores = _rename_benchmarks(raw.drop(columns=[OBS_MODEL, OBS_FAMILY, OBS_PARAMS_B,
                                                  OBS_TOKENS_T, OBS_FLOPS], errors="ignore"))
    out = pd.DataFrame({
        MODEL: raw[OBS_MODEL].astype(str),
        FAMILY: _map_families(raw[OBS_FAMILY], raw[OBS_MODEL], family_map),
        PARAMS: pd.to_numeric(raw[OBS_PARAMS_B], errors="coerce") * 1e9,
        TOKENS: pd.to_numeric(raw[OBS_TOKENS_T], errors="coerce") * 1e12,
        INSTRUCT: instruct,
    })
    return pd.concat([out, scores], axis=1)


def obsscaling_frame(
    path: str | os.PathLike[str] | pd.DataFrame | None = None,
    *,
    v2_path: str | os.PathLike[str] | pd.DataFrame | None = None,
    instruct_path: str | os.PathLike[str] | pd.DataFrame | None = None,
    include_v2: bool = True,
    instruct_models: bool = True,
    family_map: str | os.PathLike[str] | pd.DataFrame | None = None,
    corrections: bool | str | os.PathLike[str] | pd.DataFrame = True,
    download: bool = True,
) -> pd.DataFrame:
    """The files joined into one wide frame in sloth's columns, before validation.

    Parameters are those of :func:`load_obsscaling`.

    Returns
    -------
    DataFrame, shape (n, 5 + J_all)
        Columns ``model`` (the file's name), ``family`` (mapped), ``params``, ``tokens``
        (absolute counts, ``nan`` where the file has none), ``instruct`` (0/1), then every
        score column of the files under the leaderboard's names. Base models first (file
        order), then instruct models; models of the v2 file missing from the base file are
        left out.

    Raises
    ------
    DataValidationError
        For a file without the expected columns, or a model name held twice (also after
        :func:`normalise_model_name`).
    """
    mapping = read_family_map(family_map)
    fixes = None
    if corrections is not False:
        fixes = _read_committed(CORRECTIONS_FILE if corrections is True else corrections,
                                _CORRECTION_COLUMNS, "corrections table")

    def read(name: str, given: str | os.PathLike[str] | pd.DataFrame | None) -> pd.DataFrame:
        if isinstance(given, pd.DataFrame):
            raw = read_table(given)
        else:
            raw = read_table(resolve_data_file(name, given, download=download))
        return raw if fixes is None else _apply_corrections(raw, fixes)

    def where(kind: str, name: str, given: object) -> str:
        return f"{kind} file {_label(name if given is None else given)}"

    base = read(OBS_BASE_FILE, path)
    frames = [_canonical(base, mapping, 0.0, where("base", OBS_BASE_FILE, path))]
    if include_v2:
        v2 = _rename_benchmarks(read(OBS_V2_FILE, v2_path))
        if OBS_MODEL not in v2.columns:
            raise DataValidationError(
                f"{where('v2', OBS_V2_FILE, v2_path)} lacks column {OBS_MODEL!r}. Fix: pass "
                f"the file as published, or include_v2=False")
        _check_unique(v2[OBS_MODEL].astype(str), "v2 file")
        v2 = v2.rename(columns={OBS_MODEL: MODEL})
        overlap = [c for c in v2.columns if c != MODEL and c in frames[0].columns]
        frames[0] = frames[0].merge(v2.drop(columns=overlap), on=MODEL, how="left")
    if instruct_models:
        raw = read(OBS_INSTRUCT_FILE, instruct_path)
        frames.append(_canonical(raw, mapping, 1.0,
                                 where("instruct", OBS_INSTRUCT_FILE, instruct_path)))
    frame = pd.concat(frames, ignore_index=True)
    _check_unique(frame[MODEL], "the Observational Scaling Laws files")
    _check_unique(frame[MODEL].map(normalise_model_name), "the files (names normalised)")
    return frame


def _check_unique(names: pd.Series, where: str) -> None:
    repeated = list(dict.fromkeys(names[names.duplicated()]))
    if repeated:
        raise DataValidationError(
            f"{where} hold(s) model(s) {describe_rows(repeated)} more than once. Fix: drop "
            f"the repeated rows")


def select_benchmarks(frame: pd.DataFrame, benchmarks: str | Sequence[str] | None,
                      where: str) -> list[str]:
    """The chosen benchmarks, adding an empty column for those ``frame`` lacks.

    Raises
    ------
    DataValidationError
        If none of the chosen benchmarks is a column of ``frame``.
    """
    names = resolve_benchmarks("all" if benchmarks is None else benchmarks)
    if not any(b in frame.columns for b in names):
        reserved = {MODEL, FAMILY, PARAMS, TOKENS, INSTRUCT}
        raise DataValidationError(
            f"{where} hold(s) none of the benchmarks {names!r}; score columns present: "
            f"{', '.join(repr(c) for c in frame.columns if c not in reserved)}. Fix: choose "
            f"benchmarks= among them")
    for b in names:
        if b not in frame.columns:
            frame[b] = np.nan
    return names


def load_obsscaling(
    path: str | os.PathLike[str] | pd.DataFrame | None = None,
    *,
    benchmarks: str | Sequence[str] = "all",
    v2_path: str | os.PathLike[str] | pd.DataFrame | None = None,
    instruct_path: str | os.PathLike[str] | pd.DataFrame | None = None,
    include_v2: bool = True,
    instruct_models: bool = True,
    include_instruct: bool = True,
    family_map: str | os.PathLike[str] | pd.DataFrame | None = None,
    corrections: bool | str | os.PathLike[str] | pd.DataFrame = True,
    registry: BenchmarkRegistry | None = None,
    download: bool = True,
    floors: Mapping[str, float] | None = None,
) -> ScoreTable:
    """Load the Observational Scaling Laws evaluations in the leaderboard's schema.

    Parameters
    ----------
    path : path-like or DataFrame, optional
        ``base_llm_benchmark_eval.csv``. Default: found through
        :func:`~sloth.data.sources.resolve_data_file` (``$SLOTH_DATA_DIR``, the cache, or a
        verified download from the pinned commit).
    benchmarks : str or sequence of str
        ``"v1"``, ``"v2"``, ``"all"`` (the leaderboard's twelve) or a list under the
        leaderboard's names, e.g. ``["HumanEval", "XWinograd"]`` (``Arena-Elo`` and
        ``MTBench`` of the instruct file need ``floors=``). Benchmarks a file lacks are empty.
    v2_path, instruct_path : path-like or DataFrame, optional
        ``base_llm_leaderboard_v2_eval.csv`` and ``instruct_llm_benchmark_eval.csv``, found
        like ``path`` by default.
    include_v2 : bool
        Join the v2 scores (IFEval, BBH, MATH Lvl 5, GPQA, MUSR, MMLU-PRO) of base models.
    instruct_models : bool
        Add the instruct models (those without size or tokens are skipped).
    include_instruct : bool
        Keep the 0/1 extra covariate ``"instruct"`` (1 for the instruct file's models).
    family_map : path-like or DataFrame, optional
        Family mapping (see :func:`read_family_map`); default the committed table.
        Families it lacks are lower-cased, with a warning.
    corrections : bool, path-like or DataFrame
        Apply the committed cell corrections (``True``), none (``False``), or your own table
        (columns ``model``, ``column``, ``file_value``, ``value``, ``note``, in the file's
        columns and units). A correction whose cell no longer holds ``file_value`` is not
        applied, with a warning.
    registry : BenchmarkRegistry, optional
        Where guessing floors are looked up (default registry if ``None``).
    download : bool
        Allow downloading the files when no local copy is found.
    floors : mapping of str to float, optional
        Guessing floors overriding the registry.

    Returns
    -------
    ScoreTable
        Models with a size, a token count and at least one chosen score: base models in file
        order, then instruct models; ``model`` is the file's name (e.g.
        ``"meta-llama/Llama-2-7b-hf"``; :func:`normalise_model_name` gives the leaderboard's
        spelling); ``params``/``tokens`` absolute counts; ``skipped`` lists the others with
        the reason. With the twelve benchmarks: 143 models (123 base, 20 instruct) from 61
        families, 1183 scores; 32 skipped for a missing size or token count.

    Raises
    ------
    DataValidationError
        For files without the expected columns, repeated models, scores outside [0, 1] or
        benchmarks without a known floor (see :func:`~sloth.data.validation.read_evaluations`).
    DataNotFoundError, ChecksumError
        If a file cannot be found or does not match its pinned SHA-256.
    """
    frame = obsscaling_frame(path, v2_path=v2_path, instruct_path=instruct_path,
                             include_v2=include_v2, instruct_models=instruct_models,
                             family_map=family_map, corrections=corrections,
                             download=download)
    names = select_benchmarks(frame, benchmarks, "the Observational Scaling Laws files")
    kept, skipped = drop_unusable(frame, names)
    return table_from_frame(
        kept,
        benchmarks=names,
        extra_covariates=[INSTRUCT] if include_instruct else [],
        floors=floors,
        registry=registry,
        skipped=skipped,
    )


# ------------------------------------------------------------------ simulated files


def render_obsscaling(table: ScoreTable, instruct: np.ndarray | Sequence[bool] | None = None
                      ) -> dict[str, pd.DataFrame]:
    """A table written in the three files' schema (for tests and examples).

    Parameters
    ----------
    table : ScoreTable
        E.g. from :func:`~sloth.model.simulate.simulate_leaderboard`; its benchmarks under the
        leaderboard's names.
    instruct : array of bool, shape (n,), optional
        Models to write to the instruct file instead of the base file (default: none, or
        ``table.extra_covariates["instruct"]`` when present).

    Returns
    -------
    dict of str to DataFrame
        ``"base"``, ``"v2"`` and ``"instruct"``: the files' columns (``Model Size (B)`` in
        billions, ``Pretraining Data Size (T)`` in trillions, ``FLOPs (1E21)`` = 6 N D,
        ``ARC-C``, ``Winograd``, ``leaderboard_*``); family names as given. The v2 file holds
        the base models with a v2 score (the instruct file has no v2 columns, so instruct models'
        v2 scores are left out); write them with ``DataFrame.to_csv(index=False)``.
    """
    if instruct is None:
        flag = table.extra_covariates.get(INSTRUCT, np.zeros(table.n_models))
        instruct = np.asarray(flag) > 0
    instruct = np.asarray(instruct, dtype=bool)
    if instruct.shape != (table.n_models,):
        raise ValueError(f"instruct must have shape ({table.n_models},), got {instruct.shape}")
    to_file = {v: k for k, v in BENCHMARK_NAMES.items()}
    v2_names = [to_file[b] for b in table.benchmarks if to_file.get(b, "").startswith("lead")]
    scores = pd.DataFrame(table.scores, columns=[to_file.get(b, b) for b in table.benchmarks])
    head = pd.DataFrame({
        OBS_MODEL: list(table.models),
        OBS_FAMILY: list(table.family),
        OBS_PARAMS_B: table.params / 1e9,
        OBS_TOKENS_T: table.tokens / 1e12,
        OBS_FLOPS: training_compute(table.params, table.tokens) / 1e21,
    })
    base_cols = [c for c in scores.columns if c not in v2_names]
    base = pd.concat([head, scores[base_cols]], axis=1)
    v2 = pd.concat([head[[OBS_MODEL]], scores[v2_names]], axis=1)
    has_v2 = scores[v2_names].notna().any(axis=1).to_numpy() & ~instruct
    return {
        "base": base.loc[~instruct].reset_index(drop=True),
        "v2": v2.loc[has_v2].reset_index(drop=True),
        "instruct": base.loc[instruct].reset_index(drop=True),
    }
