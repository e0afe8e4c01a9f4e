"""Evaluation protocols: reading and writing a splits file, generating splits and building
their tasks.

A splits file follows the schema of the Sloth paper's protocol
(``sloth-paper-splits.json``)::

    {"benchmark_groups": {"v1": ["MMLU", ...], ...},
     "guessing_floors": {"MMLU": 0.25, ...},          # optional
     "family_column": "Family2",                      # optional
     "splits": [{"benchmarks": "v1", "observed_models_per_test_family": 1,
                 "test_families": [["bloom"], ["pythia", "dolly-v2"], ...]}, ...]}

Every split first drops the rows missing any benchmark of its group (its *complete* rows
remain), then, for each group of test families held out together, splits the group's models
into *observed* models (trained on, or conditioned on), *test* models (predicted) and, in the
protocols below, *withheld* models (neither). Rows of the families that are not held out are
in training. A split entry's ``"protocol"`` key says how (absent: ``"paper"``):

``"paper"`` (leave one family group out, the Sloth paper's)
    The ``k = observed_models_per_test_family`` smallest models (by parameter count) of each
    held-out family are observed, the rest are test models.
``"scale-up"`` (forecast a family's far larger models from its small ones)
    Keys ``observed_models_per_test_family`` (``k >= 1``) and ``min_compute_ratio`` (``r``,
    default :data:`MIN_COMPUTE_RATIO` = 4). For each held-out family with at least
    :data:`MIN_FAMILY_MODELS` (3) complete models: its ``k`` smallest models by training
    compute ``C = 6 N D`` are observed (so its threshold is the largest observed compute
    ``C_k``), its models with ``C >= r C_k`` are test models, and those in between are
    withheld. A held-out family with fewer models, or with no model ``r`` times beyond, is
    withheld whole (it stays out of training, since it was held out with the others of its
    group). :func:`scale_up_split` builds such a split: every family that qualifies, held out
    alone or with the families it is grouped with.
``"compute-cutoff"`` (the hold-out of Observational Scaling Laws, Ruan et al. 2024)
    Key ``compute_cutoff`` (FLOPs). Every model with ``C <= cutoff``, of every family, is in
    training; every model above it is predicted. Each family with a model above the cutoff
    is one test group: its models above the cutoff are its test models, its models below it
    are its observed models *and in training* (:attr:`Task.observed_in_training`), and the
    other families' models above the cutoff are withheld. A family with no model below the
    cutoff is forecast with nothing observed (zero-shot). ``observed_models_per_test_family``
    is not used (0); the test groups' number of observed models is each task's ``k``.
    :func:`compute_cutoff_split` builds one.

:func:`generate_protocol` generates a whole scale-up or compute-cutoff protocol from a table
(with the benchmark groups, floors and family groups of a base protocol such as the
paper's), and :func:`write_protocol` writes any protocol as a splits file that
:func:`load_protocol` reads back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sloth.data.mapping import training_compute
from sloth.data.registry import BENCHMARK_GROUPS
from sloth.data.table import FAMILY, MODEL, PARAMS, TOKENS, ScoreTable
from sloth.exceptions import DataValidationError
from sloth.io import atomic_write

#: How a split divides a held-out family's models (see the module docstring).
PROTOCOLS = ("paper", "scale-up", "compute-cutoff")
#: Scale-up: least ratio of a test model's compute to its family's largest observed compute.
MIN_COMPUTE_RATIO = 4.0
#: Scale-up: families with fewer complete models are not held out.
MIN_FAMILY_MODELS = 3
#: Compute cutoff by default: this quantile of the compute of a benchmark group's complete
#: models (the largest quarter of the models are predicted).
DEFAULT_CUTOFF_QUANTILE = 0.75
#: Relative tolerance of compute comparisons (``C >= r C_k`` holds for ``r C_k`` rounded).
_RTOL = 1e-9


@dataclass(frozen=True)
class Split:
    """One setting of a protocol: a benchmark group, the held-out family groups and how their
    models divide (see the module docstring).

    Parameters
    ----------
    benchmarks : str
        Name of the benchmark group (a key of the file's ``benchmark_groups``).
    benchmark_list : tuple of str
        The group's benchmarks.
    k : int
        Observed models per test family (``"paper"``: the smallest ones by parameters;
        ``"scale-up"``: by compute; unused, 0, for ``"compute-cutoff"``).
    test_families : tuple of tuple of str
        Families held out together, one tuple per task.
    protocol : {"paper", "scale-up", "compute-cutoff"}, default "paper"
    min_compute_ratio : float, optional
        ``"scale-up"``: test models have at least this times the compute of their family's
        largest observed model.
    compute_cutoff : float, optional
        ``"compute-cutoff"``: FLOPs at and below which models are trained on.
    skipped_families : mapping of str to tuple of str
        Generated splits: families not held out, by reason (informational).
    """

    benchmarks: str
    benchmark_list: tuple[str, ...]
    k: int
    test_families: tuple[tuple[str, ...], ...]
    protocol: str = "paper"
    min_compute_ratio: float | None = None
    compute_cutoff: float | None = None
    skipped_families: Mapping[str, tuple[str, ...]] = field(default_factory=dict,
                                                            compare=False)

    @property
    def label(self) -> str:
        """Short label, e.g. ``"v1/k=1"``, ``"v1/scale-up/k=1"``, ``"v1/cutoff=2.4e+23"``."""
        if self.protocol == "scale-up":
            return f"{self.benchmarks}/scale-up/k={self.k}"
        if self.protocol == "compute-cutoff":
            return f"{self.benchmarks}/cutoff={self.compute_cutoff:.2g}"
        return f"{self.benchmarks}/k={self.k}"

    def to_dict(self) -> dict:
        """The split's entry in a splits file."""
        entry: dict = {"benchmarks": self.benchmarks}
        if self.protocol != "paper":
            entry["protocol"] = self.protocol
        if self.protocol != "compute-cutoff":
            entry["observed_models_per_test_family"] = self.k
        if self.min_compute_ratio is not None:
            entry["min_compute_ratio"] = self.min_compute_ratio
        if self.compute_cutoff is not None:
            entry["compute_cutoff"] = self.compute_cutoff
        entry["test_families"] = [list(g) for g in self.test_families]
        if self.skipped_families:
            entry["skipped_families"] = {k: list(v) for k, v in self.skipped_families.items()}
        return entry


@dataclass(frozen=True)
class Protocol:
    """A parsed splits file.

    Parameters
    ----------
    splits : tuple of Split
    floors : dict of str to float
        Guessing floors the file sets.
    family_column : str or None
        Family column of the leaderboard's schema the families refer to (``None``: the
        loaders' default, e.g. a generated protocol without a base).
    source : str
    benchmark_groups : dict of str to tuple of str
        Benchmark groups by name (default: those of the splits).
    description : str
    """

    splits: tuple[Split, ...]
    floors: dict[str, float] = field(default_factory=dict)
    family_column: str | None = "Family2"
    source: str = ""
    benchmark_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Benchmark groups by name: :attr:`benchmark_groups`, else those of the splits."""
        return dict(self.benchmark_groups) or {s.benchmarks: s.benchmark_list
                                               for s in self.splits}

    def to_dict(self) -> dict:
        """The protocol as a splits file's JSON object."""
        out: dict = {}
        if self.description:
            out["description"] = self.description
        if self.source:
            out["source"] = self.source
        out["family_column"] = self.family_column
        out["benchmark_groups"] = {k: list(v) for k, v in self.groups().items()}
        if self.floors:
            out["guessing_floors"] = dict(self.floors)
        out["splits"] = [s.to_dict() for s in self.splits]
        return out


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
        The held-out families' observed models (the same columns): ``"paper"``, their ``k``
        smallest; ``"scale-up"``, their ``k`` smallest by compute; ``"compute-cutoff"``, their
        models below the cutoff.
    zero_shot : bool
        Whether the observed models are withheld too (``k = 0``).
    withheld : tuple of str
        Models neither trained on nor predicted (see the module docstring).
    observed_in_training : bool
        The protocol trains on the observed models (``"compute-cutoff"``): a forecaster that
        conditions on observed models instead of training on them must not take them out.
    extra : ScoreTable, optional
        Further training rows from other sources (:func:`extra_training_rows`): none of the
        held-out families (nor of the families derived from them) and none of ``table``'s
        models, on the split's benchmarks, with missing scores where the source lacks them.
        Every training table of the task ends with them.
    """

    split: Split
    group: tuple[str, ...]
    table: ScoreTable
    test: pd.DataFrame
    observed: pd.DataFrame
    zero_shot: bool = False
    withheld: tuple[str, ...] = ()
    observed_in_training: bool = False
    extra: ScoreTable | None = None

    @property
    def k(self) -> int:
        """Observed models per test family in this task (0 when zero-shot; for
        ``"compute-cutoff"`` the held-out group's models below the cutoff)."""
        if self.zero_shot:
            return 0
        if self.split.protocol == "compute-cutoff":
            return len(self.observed)
        return self.split.k

    def training_table(self, include_observed: bool) -> ScoreTable:
        """Complete rows without the test and withheld models, and without the observed
        models of the held-out families unless ``include_observed``; then the
        :attr:`extra` rows, if any."""
        drop = set(self.test[MODEL]) | set(self.withheld)
        if not include_observed or self.zero_shot:
            drop |= set(self.observed[MODEL])
        table = self.table.subset(models=np.array([m not in drop for m in self.table.models]))
        return table if self.extra is None else table.concat(self.extra)


def extra_training_rows(
    extra: ScoreTable,
    table: ScoreTable,
    group: Sequence[str],
    *,
    derived: Mapping[str, Sequence[str]] | None = None,
) -> tuple[ScoreTable, dict[str, int]]:
    """The rows of another source a task may train on.

    Parameters
    ----------
    extra : ScoreTable
        Further evaluations (e.g. the merged corpus of :func:`sloth.data.corpus.load_corpus`),
        families named as ``table``'s; on (at least) ``table``'s benchmarks.
    table : ScoreTable
        The task's own table (every model of its split: training, observed, test, withheld).
    group : sequence of str
        The held-out families.
    derived : mapping of str to sequence of str, optional
        Family -> families of ``extra`` derived from it (fine-tunes, reruns), held out with it
        (e.g. :func:`sloth.data.corpus.derived_families`).

    Returns
    -------
    rows : ScoreTable
        ``extra`` on ``table``'s benchmarks without: the rows of a held-out family or of one
        derived from it, the models of ``table`` (by normalised name: a test model never
        comes back from another source, and a training model keeps ``table``'s row), and
        models without a score on these benchmarks. Missing scores stay missing.
    removed : dict of str to int
        How many rows each rule removed: ``"held_out"`` (family in ``group``),
        ``"derived"`` (a family derived from one in ``group``), ``"in_table"``,
        ``"no_score"``; and ``"kept"``.
    """
    from sloth.data.obsscaling import normalise_model_name

    extra = extra.subset(benchmarks=list(table.benchmarks))
    family = np.asarray(extra.family, dtype=object)
    held = np.isin(family, list(group))
    related = {r for f in group for r in (derived or {}).get(f, ())}
    from_related = ~held & np.isin(family, sorted(related))
    known = {normalise_model_name(m) for m in table.models}
    in_table = np.array([normalise_model_name(m) in known for m in extra.models], dtype=bool)
    in_table &= ~(held | from_related)
    no_score = ~extra.observed.any(axis=1) & ~(held | from_related | in_table)
    keep = ~(held | from_related | in_table | no_score)
    removed = {"held_out": int(held.sum()), "derived": int(from_related.sum()),
               "in_table": int(in_table.sum()), "no_score": int(no_score.sum()),
               "kept": int(keep.sum())}
    return extra.subset(models=keep), removed


def _fail(path: str, message: str) -> DataValidationError:
    return DataValidationError(
        f"splits file {path!r}: {message} (see ../shared/protocols/sloth-paper-splits.json "
        "for the schema, and sloth.evaluation.protocol for the scale-up and compute-cutoff "
        "entries)"
    )


def _positive_number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and bool(np.isfinite(value)) and value > 0)


def _parse_split(path: str, where: str, entry: object,
                 groups: Mapping[str, list[str]]) -> Split:
    """One entry of a splits file's ``splits`` list, validated."""
    if not isinstance(entry, dict):
        raise _fail(path, f"{where} must be an object")
    protocol = entry.get("protocol", "paper")
    if protocol not in PROTOCOLS:
        raise _fail(path, f"{where}.protocol={protocol!r} is not one of {list(PROTOCOLS)}")
    required = ["benchmarks", "test_families"]
    if protocol != "compute-cutoff":
        required.insert(1, "observed_models_per_test_family")
    if protocol == "compute-cutoff":
        required.append("compute_cutoff")
    missing = [key for key in required if key not in entry]
    if missing:
        raise _fail(path, f"{where} lacks {missing}")
    name = entry["benchmarks"]
    if name not in groups:
        raise _fail(path, f"{where}.benchmarks={name!r} is not one of {sorted(groups)}")
    k = entry.get("observed_models_per_test_family", 0)
    least = 1 if protocol == "scale-up" else 0
    if not isinstance(k, int) or isinstance(k, bool) or k < least:
        raise _fail(path, f"{where}.observed_models_per_test_family={k!r} must be an "
                          f"integer >= {least}"
                          + (" (a scale-up threshold is a family's observed compute)"
                             if least else ""))
    families = entry["test_families"]
    if not (isinstance(families, list) and families and all(
        isinstance(g, list) and g and all(isinstance(f, str) for f in g) for g in families
    )):
        raise _fail(path, f"{where}.test_families must be a non-empty list of non-empty "
                          "lists of family names")
    ratio = entry.get("min_compute_ratio", MIN_COMPUTE_RATIO if protocol == "scale-up"
                      else None)
    if ratio is not None and not (_positive_number(ratio) and ratio >= 1):
        raise _fail(path, f"{where}.min_compute_ratio={ratio!r} must be a number >= 1")
    cutoff = entry.get("compute_cutoff")
    if cutoff is not None and not _positive_number(cutoff):
        raise _fail(path, f"{where}.compute_cutoff={cutoff!r} must be a positive number of "
                          "FLOPs")
    skipped = entry.get("skipped_families", {})
    if not (isinstance(skipped, dict) and all(
            isinstance(v, list) and all(isinstance(f, str) for f in v)
            for v in skipped.values())):
        raise _fail(path, f"{where}.skipped_families must map reasons to lists of families")
    return Split(name, tuple(groups[name]), k, tuple(tuple(g) for g in families), protocol,
                 None if ratio is None else float(ratio),
                 None if cutoff is None else float(cutoff),
                 {str(r): tuple(v) for r, v in skipped.items()})


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
    splits = [_parse_split(path, f"splits[{i}]", entry, groups)
              for i, entry in enumerate(entries)]
    floors = raw.get("guessing_floors", {})
    if not isinstance(floors, dict) or not all(
        isinstance(v, int | float) and 0 <= v < 1 for v in floors.values()
    ):
        raise _fail(path, "guessing_floors must map benchmark names to numbers in [0, 1)")
    family_column = raw.get("family_column", "Family2")
    if not isinstance(family_column, str | None):
        raise _fail(path, "family_column must be a string (or null: the loaders' default)")
    return Protocol(tuple(splits), {k: float(v) for k, v in floors.items()}, family_column,
                    str(raw.get("source", "")),
                    {k: tuple(v) for k, v in groups.items()}, str(raw.get("description", "")))


def write_protocol(protocol: Protocol, path: str | os.PathLike[str]) -> None:
    """Write ``protocol`` as a splits file that :func:`load_protocol` reads back (atomically:
    an interrupted write leaves any previous file whole).

    Parameters
    ----------
    protocol : Protocol
    path : path-like
    """
    text = json.dumps(protocol.to_dict(), indent=1) + "\n"
    atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def complete_rows(table: ScoreTable) -> ScoreTable:
    """The models observed on every benchmark of the table."""
    return table.subset(models=table.observed.all(axis=1))


def _with_compute(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a column ``compute`` (``C = 6 N D``)."""
    return frame.assign(compute=training_compute(frame[PARAMS], frame[TOKENS]))


def scale_up_division(models: pd.DataFrame, k: int, min_compute_ratio: float
                      ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """How the scale-up protocol divides one family's complete models.

    Parameters
    ----------
    models : DataFrame
        One family's models (columns ``model, params, tokens``).
    k : int
        Observed models: the ``k`` smallest by compute (ties by parameters, then name).
    min_compute_ratio : float
        Test models have at least this times the largest observed compute.

    Returns
    -------
    observed, test, withheld : DataFrame
        Rows of ``models``. A family with fewer than :data:`MIN_FAMILY_MODELS` models, or
        with no test model, has every model withheld (the other two empty).
    """
    order = _with_compute(models).sort_values(["compute", PARAMS, MODEL], kind="stable")
    observed = order.head(k)
    if len(order) < MIN_FAMILY_MODELS or not len(observed):
        return order.iloc[:0], order.iloc[:0], order
    threshold = observed["compute"].max() * min_compute_ratio * (1 - _RTOL)
    rest = order.iloc[k:]
    test = rest[rest["compute"] >= threshold]
    if test.empty:
        return order.iloc[:0], order.iloc[:0], order
    return observed, test, rest[rest["compute"] < threshold]


def split_tasks(split: Split, table: ScoreTable, *, zero_shot: bool = False) -> Iterator[Task]:
    """The tasks of one split on a table of its benchmarks.

    Parameters
    ----------
    split : Split
    table : ScoreTable
        Scores on (at least) the split's benchmarks; incomplete rows are dropped here.
    zero_shot : bool
        Withhold the observed models too (they are still left out of the predictions, so
        zero-shot figures are on the same test models as the split's). Not for
        ``"compute-cutoff"`` splits, whose observed models are the fit's.

    Yields
    ------
    Task
        One per group of test families. Groups without a test model are skipped.

    Raises
    ------
    ValueError
        ``zero_shot`` for a ``"compute-cutoff"`` split.
    """
    table = complete_rows(table.subset(benchmarks=list(split.benchmark_list)))
    frame = table.to_frame()
    if split.protocol == "compute-cutoff":
        if zero_shot:
            raise ValueError(
                f"split {split.label}: zero-shot tasks do not apply to a compute-cutoff split "
                "(its observed models are in every fit); run it without zero_shot "
                "(--zero-shot on the command line)")
        above = _with_compute(frame)["compute"].to_numpy() > split.compute_cutoff
        for group in split.test_families:
            members = frame[FAMILY].isin(group).to_numpy()
            test = frame[members & above]
            if test.empty:
                continue
            yield Task(split, tuple(group), table, test.reset_index(drop=True),
                       frame[members & ~above].reset_index(drop=True),
                       withheld=tuple(frame[~members & above][MODEL]),
                       observed_in_training=True)
        return
    for group in split.test_families:
        members = frame[frame[FAMILY].isin(group)]
        if split.protocol == "scale-up":
            parts = [scale_up_division(rows, split.k, split.min_compute_ratio)
                     for _, rows in members.groupby(FAMILY, sort=False)]
            observed, test, withheld = (
                pd.concat([p[i] for p in parts]).drop(columns="compute") if parts
                else members.iloc[:0] for i in range(3))
        else:
            order = members.sort_values([PARAMS, MODEL], kind="stable")
            observed = order.groupby(FAMILY, sort=False).head(split.k)
            test = members.drop(observed.index)
            withheld = members.iloc[:0]
        if test.empty:
            continue
        yield Task(split, tuple(group), table, test.reset_index(drop=True),
                   observed.reset_index(drop=True), zero_shot,
                   withheld=tuple(withheld[MODEL]))


def describe_split(split: Split) -> str:
    """One line: the split's label, its held-out groups and the families it skipped."""
    text = f"{split.label}: {len(split.test_families)} held-out group(s)"
    if split.protocol == "compute-cutoff":
        text += f" (every family with a model above {split.compute_cutoff:.3g} FLOPs)"
    skipped = [f"{len(v)} with {r}" for r, v in split.skipped_families.items() if v]
    if skipped:
        text += "; families skipped: " + ", ".join(skipped)
    return text


# ------------------------------------------------------------------------------ generation
def family_groups(protocol: Protocol | None) -> list[tuple[str, ...]]:
    """Families held out together anywhere in a protocol, merged into disjoint groups.

    Two families held out together in any split (e.g. a base family and its instruct
    variant in the paper's splits) are in one group, and so, transitively, are their
    groups.

    Parameters
    ----------
    protocol : Protocol or None
        ``None``: no groups.

    Returns
    -------
    list of tuple of str
        Disjoint groups (of two families or more), in order of first appearance.
    """
    parent: dict[str, str] = {}

    def root(f: str) -> str:
        while parent.setdefault(f, f) != f:
            f = parent[f]
        return f

    for split in protocol.splits if protocol is not None else ():
        for group in split.test_families:
            for other in group[1:]:
                parent[root(other)] = root(group[0])
    merged: dict[str, list[str]] = {}
    for f in parent:
        merged.setdefault(root(f), []).append(f)
    return [tuple(g) for g in merged.values() if len(g) > 1]


def scale_up_split(name: str, table: ScoreTable, *, k: int = 1,
                   min_compute_ratio: float = MIN_COMPUTE_RATIO,
                   groups: Sequence[Sequence[str]] = ()) -> Split:
    """A scale-up split: every family of ``table`` that the rule can hold out.

    A family qualifies with at least :data:`MIN_FAMILY_MODELS` complete models of which at
    least one has ``min_compute_ratio`` times the compute of its ``k``-th smallest
    (:func:`scale_up_division`). Each qualifying family is held out alone, or with the
    families of its group in ``groups`` (the group is held out if any member qualifies;
    the members that do not are withheld whole).

    Parameters
    ----------
    name : str
        The benchmark group's name.
    table : ScoreTable
        Scores on the group's benchmarks (its complete rows are used).
    k : int, default 1
        Observed models per test family (>= 1).
    min_compute_ratio : float, default :data:`MIN_COMPUTE_RATIO`
    groups : sequence of sequence of str
        Families held out together (e.g. :func:`family_groups` of the paper's protocol).

    Returns
    -------
    Split
        Its ``skipped_families`` name the families not held out: ``"fewer than 3 complete
        models"`` and ``"no model 4x the observed compute"`` (with the ratio given).
        ``test_families`` may be empty (no family qualifies).

    Raises
    ------
    ValueError
        ``k < 1`` or ``min_compute_ratio < 1``.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r}: a scale-up split needs k >= 1 observed models per family")
    if not min_compute_ratio >= 1:
        raise ValueError(f"min_compute_ratio={min_compute_ratio!r} must be >= 1")
    table = complete_rows(table)
    frame = table.to_frame()
    few = f"fewer than {MIN_FAMILY_MODELS} complete models"
    short = f"no model {min_compute_ratio:g}x the observed compute"
    skipped: dict[str, list[str]] = {few: [], short: []}
    qualifying = set()
    for family, rows in frame.groupby(FAMILY, sort=False):
        _, test, _ = scale_up_division(rows, k, min_compute_ratio)
        if len(test):
            qualifying.add(family)
        else:
            skipped[few if len(rows) < MIN_FAMILY_MODELS else short].append(str(family))
    group_of = {f: tuple(g) for g in groups for f in g}
    held: list[tuple[str, ...]] = []
    for family in table.families:
        group = tuple(f for f in group_of.get(family, (family,)) if f in table.families)
        if family in qualifying and group not in held:
            held.append(group)
    return Split(name, tuple(table.benchmarks), k, tuple(held), "scale-up",
                 float(min_compute_ratio), None, {r: tuple(v) for r, v in skipped.items()})


def resolve_cutoff(table: ScoreTable, cutoff: float) -> float:
    """A compute cutoff in FLOPs: ``cutoff`` itself (> 1), or that quantile (in (0, 1)) of
    the compute of ``table``'s complete models.

    Raises
    ------
    ValueError
        ``cutoff`` is neither.
    """
    if not (isinstance(cutoff, int | float) and np.isfinite(cutoff) and cutoff > 0
            and cutoff != 1):
        raise ValueError(f"compute cutoff {cutoff!r}: give FLOPs (e.g. 1e23) or a quantile of "
                         "the models' compute in (0, 1) (e.g. 0.75)")
    if cutoff > 1:
        return float(cutoff)
    table = complete_rows(table)
    return float(np.quantile(training_compute(table.params, table.tokens), cutoff))


def compute_cutoff_split(name: str, table: ScoreTable, *, cutoff: float) -> Split:
    """A compute-cutoff split: every model at or below ``cutoff`` FLOPs is trained on, each
    family with models above it is a test group.

    Parameters
    ----------
    name : str
        The benchmark group's name.
    table : ScoreTable
        Scores on the group's benchmarks (its complete rows are used).
    cutoff : float
        FLOPs, or a quantile in (0, 1) of the complete models' compute
        (:func:`resolve_cutoff`).

    Returns
    -------
    Split

    Raises
    ------
    DataValidationError
        No complete model on one side of the cutoff.
    """
    table = complete_rows(table)
    flops = resolve_cutoff(table, cutoff)
    compute = training_compute(table.params, table.tokens)
    above = compute > flops
    if above.all() or not above.any():
        raise DataValidationError(
            f"compute cutoff {flops:.3g} FLOPs of benchmark group {name!r}: "
            f"{'every' if above.all() else 'no'} complete model lies above it (their compute "
            f"spans {compute.min():.3g} to {compute.max():.3g}). Fix: choose a cutoff inside "
            "that range, or a quantile such as 0.75")
    families = list(dict.fromkeys(f for f, a in zip(table.family, above, strict=True) if a))
    return Split(name, tuple(table.benchmarks), 0, tuple((f,) for f in families),
                 "compute-cutoff", None, flops)


def generate_protocol(
    protocol: str,
    load_table: Callable[[Sequence[str]], ScoreTable],
    base: Protocol | None = None,
    *,
    benchmarks: Sequence[str] | None = None,
    ks: Sequence[int] = (1, 2),
    min_compute_ratio: float = MIN_COMPUTE_RATIO,
    cutoff: float = DEFAULT_CUTOFF_QUANTILE,
) -> Protocol:
    """A scale-up or compute-cutoff protocol generated from the data.

    Parameters
    ----------
    protocol : {"scale-up", "compute-cutoff"}
    load_table : callable
        ``load_table(benchmarks) -> ScoreTable`` with (at least) those benchmarks.
    base : Protocol, optional
        Where the benchmark groups, guessing floors, family column and (scale-up) the
        families held out together (:func:`family_groups`) come from, e.g. the paper's
        splits; default: the benchmark groups ``v1``, ``v2``, ``all`` of
        :data:`sloth.data.registry.BENCHMARK_GROUPS`, the loaders' family column and
        floors, each family held out alone.
    benchmarks : sequence of str, optional
        Only these benchmark groups.
    ks : sequence of int, default (1, 2)
        Scale-up: one split per ``k``.
    min_compute_ratio : float, default :data:`MIN_COMPUTE_RATIO`
    cutoff : float, default :data:`DEFAULT_CUTOFF_QUANTILE`
        Compute-cutoff: FLOPs, or a quantile of each benchmark group's complete models'
        compute (the split records the FLOPs).

    Returns
    -------
    Protocol
        Splits without a held-out family are left out.

    Raises
    ------
    ValueError
        An unknown ``protocol``, or unknown ``benchmarks``; and see :func:`scale_up_split`
        and :func:`compute_cutoff_split`.
    """
    kinds = PROTOCOLS[1:]
    if protocol not in kinds:
        raise ValueError(f"protocol={protocol!r}: allowed values are {list(kinds)}")
    available = base.groups() if base is not None else {
        k: tuple(v) for k, v in BENCHMARK_GROUPS.items()}
    names = list(available) if benchmarks is None else list(benchmarks)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"benchmark groups {unknown} are not among {list(available)}")
    groups = family_groups(base)
    splits = []
    for name in names:
        table = load_table(available[name]).subset(benchmarks=list(available[name]))
        if protocol == "scale-up":
            for k in ks:
                split = scale_up_split(name, table, k=k, min_compute_ratio=min_compute_ratio,
                                       groups=groups)
                if split.test_families:
                    splits.append(split)
        else:
            splits.append(compute_cutoff_split(name, table, cutoff=cutoff))
    if not splits:
        raise ValueError(f"no {protocol} split: no family of benchmark groups {names} "
                         "qualifies (see sloth.evaluation.protocol)")
    rule = (f"for every family with at least {MIN_FAMILY_MODELS} complete models, its k "
            f"smallest by compute C = 6 N D are observed and its models with at least "
            f"{min_compute_ratio:g}x the largest observed compute are predicted; those in "
            "between are withheld" if protocol == "scale-up" else
            "every model with compute C = 6 N D at or below the cutoff is in the fit; every "
            "model above it is predicted, each family a test group")
    based = f" Benchmark groups and family groups from: {base.source or 'a base protocol'}." \
        if base is not None else ""
    return Protocol(tuple(splits), dict(base.floors) if base is not None else {},
                    base.family_column if base is not None else None,
                    f"sloth.evaluation.protocol.generate_protocol({protocol!r})",
                    {n: available[n] for n in names},
                    f"{protocol} protocol generated by sloth: {rule}.{based}")
