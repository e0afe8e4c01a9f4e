"""Several sources of evaluations merged into one table, with a report of what overlapped.

A model held by two sources becomes one row. Models are matched by
:func:`~sloth.data.obsscaling.normalise_model_name` (``meta-llama/Llama-2-7b-hf`` and the
leaderboard's ``llama-2-7b`` are one model; ``pythia-1b-deduped`` and ``pythia-1b`` are two),
and the merged table names each model that way.

**Which source wins.** Sources are ranked in the order given, the first highest: each cell
(a score, the family, the size, the token count, the instruct flag) is taken from the first
source that holds it, and a cell the first source lacks is filled from the next. Nothing is
averaged. By default the Sloth paper's leaderboard comes first: it is the table the paper's
protocol and sloth's benchmark definitions (floors, groups) come from, so its models keep the
values the paper fitted, and the other sources add models, scores and token counts it lacks.
Pass ``sources=("obsscaling", "leaderboard")`` to rank the other way.

**What is reported.** Every cell held by more than one source is compared with the kept value:
scores that differ by more than ``tolerance`` (absolute, on the [0, 1] scale) and sizes or
token counts that differ by more than ``size_rtol`` (relative), or families and instruct flags
that differ, are listed in :attr:`Corpus.report` and counted in a warning.

On the default sources nearly all shared scores agree to rounding (the leaderboard's v2
scores are rounded to two decimals), with two exceptions the report shows: the Observational
Scaling Laws file's ``leaderboard_ifeval`` is higher than the leaderboard's IFEval by 0.06 on
every shared model (median; 0.02 to 0.075), a systematic offset that points to another
IFEval metric (the leaderboard averages prompt- and instruction-level accuracy), and
codellama-34b-instruct's GSM8K differs by 0.15. Leave IFEval out of ``benchmarks=``, or rank
the sources, as your use needs.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sloth.data.leaderboard import (
    INSTRUCT,
    LEADERBOARD_FILE,
    canonical_frame,
    drop_unusable,
)
from sloth.data.obsscaling import normalise_model_name, obsscaling_frame, select_benchmarks
from sloth.data.registry import BenchmarkRegistry, default_registry
from sloth.data.sources import resolve_data_file
from sloth.data.table import FAMILY, MODEL, PARAMS, TOKENS, ScoreTable
from sloth.data.validation import describe_rows, read_table, table_from_frame
from sloth.exceptions import DataValidationError

__all__ = ["SOURCES", "Corpus", "DuplicateReport", "derived_families", "load_corpus",
           "merge_sources"]

#: Default tolerance on scores held by two sources (absolute, score scale).
SCORE_TOLERANCE = 0.02
#: Default relative tolerance on sizes and token counts held by two sources.
SIZE_RTOL = 0.05

_ATTRIBUTES = (FAMILY, PARAMS, TOKENS, INSTRUCT)

#: Families of the other sources derived from a leaderboard family (package data).
DERIVED_FAMILIES_FILE = Path(__file__).with_name("corpus_derived_families.csv")


# ------------------------------------------------------------------------ sources


def _leaderboard_source(*, path: str | os.PathLike[str] | pd.DataFrame | None = None,
                        family_column: str = "Family2", download: bool = True) -> pd.DataFrame:
    """The leaderboard's rows in sloth's columns, every known score column kept."""
    raw = read_table(path if isinstance(path, pd.DataFrame)
                     else resolve_data_file(LEADERBOARD_FILE, path, download=download))
    known = [c for c in raw.columns if c in default_registry()
             or c in ("Arena-Elo", "MTBench")]
    return canonical_frame(raw, known, family_column, include_instruct=True)


def _obsscaling_source(**options: Any) -> pd.DataFrame:
    """The Observational Scaling Laws files in sloth's columns (see ``obsscaling_frame``)."""
    return obsscaling_frame(**options)


#: Known sources: name -> function returning its frame in sloth's columns (keyword options:
#: ``path=``, ``download=``, and the source's own, e.g. ``family_column=`` or
#: ``instruct_models=``).
SOURCES: dict[str, Callable[..., pd.DataFrame]] = {
    "leaderboard": _leaderboard_source,
    "obsscaling": _obsscaling_source,
}


# ------------------------------------------------------------------------- results


@dataclass(frozen=True)
class DuplicateReport:
    """Cells held by more than one source, compared with the value kept.

    Parameters
    ----------
    scores : DataFrame, shape (m, 7)
        One row per score held twice: ``model``, ``benchmark``, ``kept_source``, ``kept``,
        ``other_source``, ``other``, ``difference`` (``other - kept``).
    attributes : DataFrame, shape (k, 7)
        The same for family, params, tokens and instruct: ``model``, ``attribute``,
        ``kept_source``, ``kept``, ``other_source``, ``other``, ``agree`` (relative
        difference within ``size_rtol`` for counts, equality otherwise).
    tolerance : float
        Largest absolute score difference taken as agreement.
    size_rtol : float
        Largest relative size or token difference taken as agreement.
    """

    scores: pd.DataFrame
    attributes: pd.DataFrame
    tolerance: float
    size_rtol: float

    @property
    def disagreements(self) -> pd.DataFrame:
        """Rows of :attr:`scores` whose ``|difference|`` exceeds :attr:`tolerance`."""
        return self.scores.loc[self.scores["difference"].abs() > self.tolerance]

    @property
    def attribute_disagreements(self) -> pd.DataFrame:
        """Rows of :attr:`attributes` that do not agree."""
        return self.attributes.loc[~self.attributes["agree"].astype(bool)]

    @property
    def shared_models(self) -> list[str]:
        """Models held by more than one source, in table order."""
        return list(dict.fromkeys(self.attributes[MODEL]))

    def by_benchmark(self) -> pd.DataFrame:
        """Shared scores per benchmark: ``shared``, ``disagreeing``, ``median_difference``
        (signed, ``other - kept``) and ``max_abs_difference``; index the benchmarks."""
        diff = self.scores.assign(abs=self.scores["difference"].abs())
        grouped = diff.groupby("benchmark", sort=False)
        return pd.DataFrame({
            "shared": grouped.size(),
            "disagreeing": grouped["abs"].apply(lambda a: int((a > self.tolerance).sum())),
            "median_difference": grouped["difference"].median(),
            "max_abs_difference": grouped["abs"].max(),
        })

    def summary(self) -> dict[str, float | int]:
        """Counts and sizes of the overlap.

        Returns
        -------
        dict
            ``shared_models``, ``shared_scores``, ``disagreeing_scores``,
            ``disagreeing_models``, ``median_abs_difference`` and ``max_abs_difference``
            (over all shared scores; ``nan`` if none), ``disagreeing_attributes``.
        """
        diff = self.scores["difference"].abs().to_numpy(dtype=float)
        bad = self.disagreements
        return {
            "shared_models": len(self.shared_models),
            "shared_scores": int(diff.size),
            "disagreeing_scores": len(bad),
            "disagreeing_models": int(bad[MODEL].nunique()),
            "median_abs_difference": float(np.median(diff)) if diff.size else float("nan"),
            "max_abs_difference": float(diff.max()) if diff.size else float("nan"),
            "disagreeing_attributes": len(self.attribute_disagreements),
        }


@dataclass(frozen=True)
class Corpus:
    """A merged table and where each of its values came from.

    Parameters
    ----------
    table : ScoreTable
        ``n`` models, ``J`` benchmarks; model names normalised.
    provenance : DataFrame, shape (n, 5 + S)
        Per model, in table order: ``model``; ``source`` (the highest-ranked source holding
        it, which gave its family); ``sources`` (all of them, joined with ``+``);
        ``params_source`` and ``tokens_source``; and one column per source with the model's
        name there (``""`` if absent).
    cell_source : ndarray of str, shape (n, J)
        Source of each score, ``""`` where unobserved.
    report : DuplicateReport
        The cells held by more than one source (over every merged model, also those then
        skipped for a missing size).
    """

    table: ScoreTable
    provenance: pd.DataFrame
    cell_source: np.ndarray
    report: DuplicateReport

    @property
    def sources(self) -> tuple[str, ...]:
        """Source names, highest rank first."""
        return tuple(c.removeprefix("name_") for c in self.provenance.columns
                     if c.startswith("name_"))

    @property
    def source(self) -> np.ndarray:
        """Highest-ranked source of each model, shape (n,)."""
        return self.provenance["source"].to_numpy(dtype=object)

    def counts(self) -> pd.DataFrame:
        """Models, families and scores per source (as kept in the table) and in all.

        Returns
        -------
        DataFrame
            Index: each source then ``"all"``; columns ``models`` (models whose row comes
            from that source), ``held_by`` (models the source holds), ``families`` and
            ``scores`` (scores taken from that source).
        """
        fam = np.asarray(self.table.family, dtype=object)
        rows = {}
        for s in self.sources:
            mine = self.source == s
            held = self.provenance[f"name_{s}"].to_numpy() != ""
            rows[s] = {"models": int(mine.sum()), "held_by": int(held.sum()),
                       "families": len(set(fam[mine])),
                       "scores": int((self.cell_source == s).sum())}
        rows["all"] = {"models": self.table.n_models, "held_by": self.table.n_models,
                       "families": len(self.table.families), "scores": self.table.n_scores}
        return pd.DataFrame.from_dict(rows, orient="index")

    def to_frame(self) -> pd.DataFrame:
        """The table's wide frame with a ``source`` column after ``model``."""
        frame = self.table.to_frame()
        frame.insert(1, "source", self.source)
        return frame


# ------------------------------------------------------------------------- merging


def _as_frame(name: str, source: ScoreTable | pd.DataFrame) -> pd.DataFrame:
    frame = source.to_frame() if isinstance(source, ScoreTable) else read_table(source)
    missing = [c for c in (MODEL, FAMILY, PARAMS, TOKENS) if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"source {name!r} lacks column(s) {missing!r}; columns present: "
            f"{', '.join(map(repr, frame.columns))}. Fix: pass a ScoreTable, or a frame with "
            f"columns model, family, params, tokens (absolute counts) and scores")
    frame = frame.copy()
    frame["_key"] = frame[MODEL].map(normalise_model_name)
    repeated = list(dict.fromkeys(frame["_key"][frame["_key"].duplicated()]))
    if repeated:
        raise DataValidationError(
            f"source {name!r} holds model(s) {describe_rows(repeated)} more than once when "
            f"names are normalised (organisation and '-hf' dropped, lower case). Fix: drop "
            f"the repeated rows")
    return frame


def _source_floors(sources: Mapping[str, ScoreTable | pd.DataFrame],
                   floors: Mapping[str, float] | None) -> dict[str, float] | None:
    """Floors carried by ScoreTable sources, then ``floors`` on top; conflicts raise."""
    found: dict[str, tuple[str, float]] = {}
    for name, src in sources.items():
        if not isinstance(src, ScoreTable):
            continue
        for b, f in zip(src.benchmarks, src.floors, strict=True):
            if b in found and not np.isclose(found[b][1], f):
                raise DataValidationError(
                    f"benchmark {b!r} has floor {found[b][1]:g} in source {found[b][0]!r} "
                    f"but {f:g} in {name!r}. Fix: pass floors={{{b!r}: ...}}")
            found[b] = (name, float(f))
    out = {b: f for b, (_, f) in found.items()} | dict(floors or {})
    return out or None


def _compare(model: str, column: str, kept_src: str, kept: object, other_src: str,
             other: object, size_rtol: float) -> dict[str, object]:
    if column in (PARAMS, TOKENS):
        agree = bool(abs(float(other) / float(kept) - 1.0) <= size_rtol)
    elif column == INSTRUCT:
        agree = bool(float(other) == float(kept))
    else:
        agree = str(other) == str(kept)
    return {MODEL: model, "attribute": column, "kept_source": kept_src, "kept": kept,
            "other_source": other_src, "other": other, "agree": agree}


def merge_sources(
    sources: Mapping[str, ScoreTable | pd.DataFrame],
    *,
    benchmarks: str | Sequence[str] = "all",
    tolerance: float = SCORE_TOLERANCE,
    size_rtol: float = SIZE_RTOL,
    include_instruct: bool = True,
    registry: BenchmarkRegistry | None = None,
    floors: Mapping[str, float] | None = None,
) -> Corpus:
    """Merge tables of evaluations into one, ranked in the mapping's order.

    Parameters
    ----------
    sources : mapping of str to ScoreTable or DataFrame
        Source name -> its table (a ScoreTable, or a frame with columns ``model``,
        ``family``, ``params``, ``tokens`` as absolute counts, optionally ``instruct``, and
        scores); the first entry ranks highest (see the module's documentation).
    benchmarks : str or sequence of str
        Group name or list; a benchmark a source lacks is empty there, one no source holds
        raises.
    tolerance : float
        Largest absolute score difference between two sources taken as agreement.
    size_rtol : float
        Largest relative difference of sizes or token counts taken as agreement.
    include_instruct : bool
        Keep the 0/1 covariate ``instruct`` (when a source has it).
    registry : BenchmarkRegistry, optional
        Where floors are looked up (after the floors ScoreTable sources carry).
    floors : mapping of str to float, optional
        Guessing floors overriding both.

    Returns
    -------
    Corpus
        The merged table (models with a size, a token count and a chosen score, first
        source's order then each later source's new models), its provenance and the
        duplicate report. A warning counts the disagreements when there are any.

    Raises
    ------
    DataValidationError
        For no source, a source without the needed columns or holding a model twice, or the
        validation errors of :func:`~sloth.data.validation.read_evaluations`.
    """
    if not sources:
        raise DataValidationError("no source to merge. Fix: pass at least one source")
    if not (np.isfinite(tolerance) and tolerance >= 0 and np.isfinite(size_rtol)
            and size_rtol >= 0):
        raise ValueError(f"tolerance ({tolerance!r}) and size_rtol ({size_rtol!r}) must be "
                         f"finite and >= 0")
    names = list(sources)
    frames = {n: _as_frame(n, s) for n, s in sources.items()}
    combined = pd.concat(frames.values(), ignore_index=True)
    chosen = select_benchmarks(combined, benchmarks, f"the sources {names!r}")
    keys = list(dict.fromkeys(combined["_key"]))
    with_instruct = include_instruct and any(INSTRUCT in f.columns for f in frames.values())
    columns = [c for c in _ATTRIBUTES if c != INSTRUCT or with_instruct] + chosen

    aligned = {}
    for n, f in frames.items():
        part = f.set_index("_key").reindex(index=keys, columns=columns)
        for c in columns:
            if c != FAMILY:
                part[c] = pd.to_numeric(part[c], errors="coerce")
        aligned[n] = part
    merged = aligned[names[0]].copy()
    origin = pd.DataFrame(np.where(merged.notna(), names[0], ""), index=keys, columns=columns)
    for n in names[1:]:
        fill = merged.isna() & aligned[n].notna()
        merged = merged.mask(fill, aligned[n])
        origin = origin.mask(fill, n)

    score_rows, attr_rows = [], []
    for n in names:
        held = aligned[n].notna() & (origin != n) & (origin != "")
        for key, column in zip(*np.nonzero(held.to_numpy()), strict=True):
            model, col = keys[key], columns[column]
            kept, other = merged.iat[key, column], aligned[n].iat[key, column]
            if col in chosen:
                score_rows.append({MODEL: model, "benchmark": col,
                                   "kept_source": origin.iat[key, column], "kept": kept,
                                   "other_source": n, "other": other,
                                   "difference": float(other) - float(kept)})
            else:
                attr_rows.append(_compare(model, col, origin.iat[key, column], kept, n, other,
                                          size_rtol))
    report = DuplicateReport(
        scores=pd.DataFrame(score_rows, columns=[MODEL, "benchmark", "kept_source", "kept",
                                                 "other_source", "other", "difference"]),
        attributes=pd.DataFrame(attr_rows, columns=[MODEL, "attribute", "kept_source", "kept",
                                                    "other_source", "other", "agree"]),
        tolerance=float(tolerance), size_rtol=float(size_rtol))
    _warn(report)

    frame = merged.reset_index(names=MODEL)
    kept, skipped = drop_unusable(frame, chosen)
    table = table_from_frame(kept, benchmarks=chosen,
                             extra_covariates=[INSTRUCT] if with_instruct else [],
                             floors=_source_floors(sources, floors), registry=registry,
                             skipped=skipped)
    order = list(table.models)
    names_of = {n: dict(zip(f["_key"], f[MODEL].astype(str), strict=True))
                for n, f in frames.items()}
    provenance = pd.DataFrame({
        MODEL: order,
        "source": origin.loc[order, FAMILY].to_numpy(dtype=object),
        "sources": ["+".join(n for n in names if m in names_of[n]) for m in order],
        "params_source": origin.loc[order, PARAMS].to_numpy(dtype=object),
        "tokens_source": origin.loc[order, TOKENS].to_numpy(dtype=object),
    } | {f"name_{n}": [names_of[n].get(m, "") for m in order] for n in names})
    return Corpus(table=table, provenance=provenance,
                  cell_source=origin.loc[order, chosen].to_numpy(dtype=object).astype(str),
                  report=report)


def _warn(report: DuplicateReport) -> None:
    s = report.summary()
    if s["disagreeing_scores"]:
        bad = report.disagreements["difference"].abs()
        warnings.warn(
            f"{s['disagreeing_scores']} of {s['shared_scores']} scores held by two sources "
            f"({s['disagreeing_models']} of {s['shared_models']} shared models) differ by "
            f"more than {report.tolerance:g} (median {bad.median():.3g}, max {bad.max():.3g});"
            f" the higher-ranked source's value is kept. See Corpus.report.disagreements",
            stacklevel=3)
    if s["disagreeing_attributes"]:
        bad = report.attribute_disagreements
        counts = ", ".join(f"{k} {v}" for k, v in bad["attribute"].value_counts().items())
        warnings.warn(
            f"{len(bad)} family/size/token/instruct values of shared models differ between "
            f"sources ({counts}; sizes and tokens beyond {report.size_rtol:.0%}); the "
            f"higher-ranked source's value is kept. See "
            f"Corpus.report.attribute_disagreements", stacklevel=3)


def load_corpus(
    sources: Sequence[str] = ("leaderboard", "obsscaling"),
    *,
    benchmarks: str | Sequence[str] = "all",
    options: Mapping[str, Mapping[str, Any]] | None = None,
    tolerance: float = SCORE_TOLERANCE,
    size_rtol: float = SIZE_RTOL,
    include_instruct: bool = True,
    registry: BenchmarkRegistry | None = None,
    download: bool = True,
    floors: Mapping[str, float] | None = None,
) -> Corpus:
    """Load several public sources merged into one table.

    Parameters
    ----------
    sources : sequence of str
        Names among :data:`SOURCES` (``"leaderboard"``, ``"obsscaling"``), highest rank
        first: a value held by two sources is taken from the earlier (see the module's
        documentation for why the leaderboard ranks first by default).
    benchmarks : str or sequence of str
        ``"v1"``, ``"v2"``, ``"all"`` (the leaderboard's twelve) or a list of names.
    options : mapping of str to mapping, optional
        Keyword arguments per source, e.g. ``{"leaderboard": {"path": "data_v2.csv"},
        "obsscaling": {"instruct_models": False}}`` (see
        :func:`~sloth.data.leaderboard.load_leaderboard` and
        :func:`~sloth.data.obsscaling.load_obsscaling` for their meaning).
    tolerance, size_rtol, include_instruct, registry, floors
        See :func:`merge_sources`.
    download : bool
        Allow downloading files when no local copy is found (unless ``options`` says).

    Returns
    -------
    Corpus
        ``.table`` (ScoreTable), ``.provenance`` (source per model), ``.cell_source``
        (source per score), ``.report`` (scores and attributes held twice). With the default
        sources and the twelve benchmarks: 222 models from 88 families, 1917 scores
        (111 models held by both).

    Raises
    ------
    DataValidationError
        For an unknown or repeated source name, or invalid data.
    DataNotFoundError, ChecksumError
        If a file cannot be found or does not match its pinned SHA-256.
    """
    if isinstance(sources, str):
        sources = [s.strip() for s in sources.split(",")]
    names = list(sources)
    unknown = [n for n in names if n not in SOURCES]
    if unknown or not names or len(set(names)) < len(names):
        raise DataValidationError(
            f"sources={names!r}: each must be one of {', '.join(map(repr, SOURCES))}, given "
            f"once. Fix: e.g. sources=('leaderboard', 'obsscaling')")
    options = dict(options or {})
    stray = [n for n in options if n not in names]
    if stray:
        raise DataValidationError(f"options= names source(s) {stray!r} not in sources={names!r}")
    frames = {n: SOURCES[n](**({"download": download} | dict(options.get(n, {}))))
              for n in names}
    return merge_sources(frames, benchmarks=benchmarks, tolerance=tolerance,
                         size_rtol=size_rtol, include_instruct=include_instruct,
                         registry=registry, floors=floors)


def derived_families(
    source: str | os.PathLike[str] | pd.DataFrame | None = None,
) -> dict[str, tuple[str, ...]]:
    """Families of the corpus derived from a leaderboard family, by that family.

    A leave-one-family-out evaluation that trains on the corpus holds these out with the
    family they derive from: fine-tunes of its models (``vicuna-v1.5`` of ``llama-2``) and
    reruns of them (``pythia-deduped`` of ``pythia``). Only families the leaderboard lacks
    are listed (the families of :data:`~sloth.data.obsscaling.FAMILY_MAP_FILE` marked new):
    how the leaderboard's own families are held out together is the protocol's to say
    (e.g. the Sloth paper's splits hold ``dolly-v2`` out with ``pythia`` in some splits).

    Parameters
    ----------
    source : path or DataFrame, optional
        A table with columns ``family``, ``derived_from``, ``note``; default the committed
        ``corpus_derived_families.csv``.

    Returns
    -------
    dict of str to tuple of str
        Leaderboard family -> the families derived from it, in the table's order.

    Raises
    ------
    DataValidationError
        If the table lacks a column.
    """
    frame = read_table(DERIVED_FAMILIES_FILE if source is None else source)
    missing = [c for c in ("family", "derived_from", "note") if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"derived families table lacks column(s) {missing!r}; columns present: "
            f"{', '.join(map(repr, frame.columns))}. Fix: give it the columns family, "
            "derived_from, note")
    out: dict[str, list[str]] = {}
    for family, base in zip(frame["family"].astype(str), frame["derived_from"].astype(str),
                            strict=True):
        out.setdefault(base, []).append(family)
    return {base: tuple(families) for base, families in out.items()}
