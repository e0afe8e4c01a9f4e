"""Leave-one-family-out evaluation protocols: reading a splits file and building its tasks.

A splits file follows the schema of the Sloth paper's protocol
(``sloth-paper-splits.json``)::

    {"benchmark_groups": {"v1": ["MMLU", ...], ...},
     "guessing_floors": {"MMLU": 0.25, ...},          # optional
     "family_column": "Family2",                      # optional
     "splits": [{"benchmarks": "v1", "observed_models_per_test_family": 1,
                 "test_families": [["bloom"], ["pythia", "dolly-v2"], ...]}, ...]}

For every split and every group of test families: rows missing any benchmark of the group
are dropped, the ``k`` smallest models (by parameter count) of each test family stay in
training, and the rest of the test families' models are predicted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sloth.data.table import FAMILY, MODEL, PARAMS, ScoreTable
from sloth.exceptions import DataValidationError


@dataclass(frozen=True)
class Split:
    """One setting of a protocol: a benchmark group, ``k`` and the held-out family groups.

    Parameters
    ----------
    benchmarks : str
        Name of the benchmark group (a key of the file's ``benchmark_groups``).
    benchmark_list : tuple of str
        The group's benchmarks.
    k : int
        Observed models per test family (the smallest ones stay in training).
    test_families : tuple of tuple of str
        Families held out together, one tuple per fit.
    """

    benchmarks: str
    benchmark_list: tuple[str, ...]
    k: int
    test_families: tuple[tuple[str, ...], ...]

    @property
    def label(self) -> str:
        """Short label, e.g. ``"v1/k=1"``."""
        return f"{self.benchmarks}/k={self.k}"


@dataclass(frozen=True)
class Protocol:
    """A parsed splits file."""

    splits: tuple[Split, ...]
    floors: dict[str, float] = field(default_factory=dict)
    family_column: str = "Family2"
    source: str = ""


@dataclass(frozen=True)
class Task:
    """One fit of an evaluation: training table, models to predict, observed test models.

    Parameters
    ----------
    split : Split
    group : tuple of str
        The held-out families.
    table : ScoreTable
        Complete rows of the split's benchmarks (every family).
    test : DataFrame
        Held-out models to predict (wide: model, family, params, tokens, extras, scores).
    observed : DataFrame
        The ``k`` smallest models of each held-out family (the same columns).
    zero_shot : bool
        Whether the observed models are withheld too (``k = 0``).
    """

    split: Split
    group: tuple[str, ...]
    table: ScoreTable
    test: pd.DataFrame
    observed: pd.DataFrame
    zero_shot: bool = False

    @property
    def k(self) -> int:
        """Observed models per test family in this task (0 when zero-shot)."""
        return 0 if self.zero_shot else self.split.k

    def training_table(self, include_observed: bool) -> ScoreTable:
        """Complete rows without the test models, and without the observed models of the
        held-out families unless ``include_observed``."""
        drop = set(self.test[MODEL])
        if not include_observed or self.zero_shot:
            drop |= set(self.observed[MODEL])
        return self.table.subset(models=np.array([m not in drop for m in self.table.models]))


def _fail(path: str, message: str) -> DataValidationError:
    return DataValidationError(
        f"splits file {path!r}: {message} (see ../shared/protocols/sloth-paper-splits.json "
        "for the schema)"
    )


def load_protocol(path: str | os.PathLike[str]) -> Protocol:
    """Read and validate a splits file.

    Parameters
    ----------
    path : path-like
        JSON file with ``benchmark_groups`` and ``splits`` (see the module docstring).

    Returns
    -------
    Protocol

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    DataValidationError
        The file is not valid JSON or does not follow the schema; the message names the
        offending entry.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no splits file at {path!r}")
    try:
        raw = json.loads(open(path, encoding="utf-8").read())
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise _fail(path, "the top level must be a JSON object")
    groups = raw.get("benchmark_groups")
    if not isinstance(groups, dict) or not groups:
        raise _fail(path, "needs a non-empty object 'benchmark_groups' (name -> benchmarks)")
    for name, benchmarks in groups.items():
        if not (isinstance(benchmarks, list) and benchmarks
                and all(isinstance(b, str) for b in benchmarks)):
            raise _fail(path, f"benchmark_groups[{name!r}] must be a list of benchmark names")
    entries = raw.get("splits")
    if not isinstance(entries, list) or not entries:
        raise _fail(path, "needs a non-empty list 'splits'")
    splits = []
    for i, entry in enumerate(entries):
        where = f"splits[{i}]"
        if not isinstance(entry, dict):
            raise _fail(path, f"{where} must be an object")
        missing = [key for key in ("benchmarks", "observed_models_per_test_family",
                                   "test_families") if key not in entry]
        if missing:
            raise _fail(path, f"{where} lacks {missing}")
        name = entry["benchmarks"]
        if name not in groups:
            raise _fail(path, f"{where}.benchmarks={name!r} is not one of {sorted(groups)}")
        k = entry["observed_models_per_test_family"]
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise _fail(path, f"{where}.observed_models_per_test_family={k!r} must be an "
                              "integer >= 0")
        families = entry["test_families"]
        if not (isinstance(families, list) and families and all(
            isinstance(g, list) and g and all(isinstance(f, str) for f in g) for g in families
        )):
            raise _fail(path, f"{where}.test_families must be a non-empty list of non-empty "
                              "lists of family names")
        splits.append(Split(name, tuple(groups[name]), k, tuple(tuple(g) for g in families)))
    floors = raw.get("guessing_floors", {})
    if not isinstance(floors, dict) or not all(
        isinstance(v, int | float) and 0 <= v < 1 for v in floors.values()
    ):
        raise _fail(path, "guessing_floors must map benchmark names to numbers in [0, 1)")
    family_column = raw.get("family_column", "Family2")
    if not isinstance(family_column, str):
        raise _fail(path, "family_column must be a string")
    return Protocol(tuple(splits), {k: float(v) for k, v in floors.items()}, family_column,
                    str(raw.get("source", "")))


def complete_rows(table: ScoreTable) -> ScoreTable:
    """The models observed on every benchmark of the table."""
    return table.subset(models=table.observed.all(axis=1))


def split_tasks(split: Split, table: ScoreTable, *, zero_shot: bool = False) -> Iterator[Task]:
    """The tasks of one split on a table of its benchmarks.

    Parameters
    ----------
    split : Split
    table : ScoreTable
        Scores on (at least) the split's benchmarks; incomplete rows are dropped here.
    zero_shot : bool
        Withhold the ``k`` observed models too (they are still left out of the predictions,
        so zero-shot figures are on the same test models as the split's).

    Yields
    ------
    Task
        One per group of test families. Groups whose families have no model beyond the
        ``k`` smallest are skipped.
    """
    table = complete_rows(table.subset(benchmarks=list(split.benchmark_list)))
    frame = table.to_frame()
    for group in split.test_families:
        members = frame[frame[FAMILY].isin(group)]
        order = members.sort_values([PARAMS, MODEL], kind="stable")
        observed = order.groupby(FAMILY, sort=False).head(split.k)
        test = members.drop(observed.index)
        if test.empty:
            continue
        yield Task(split, tuple(group), table, test.reset_index(drop=True),
                   observed.reset_index(drop=True), zero_shot)
