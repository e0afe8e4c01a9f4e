"""Benchmark registry: guessing floors, item counts and the paper's benchmark groups.

Every benchmark that sloth models needs a *guessing floor* ``c_j`` (the expected score of
random guessing, e.g. 0.25 for four-way multiple choice): the mean score is
``c_j + (1 - c_j) * g(eta)``. The item count ``n_items`` (size of the test set) is optional
and lets the noise model derive the binomial sampling error of a score.

The default registry knows the twelve Open LLM Leaderboard benchmarks of the Sloth paper plus
HumanEval and XWinograd. Register your own with :func:`register_benchmark` or pass
``floors={...}`` to the loaders.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from sloth.data.fixes import PYTHON, Fixes, Interface
from sloth.exceptions import DataValidationError

__all__ = [
    "BENCHMARK_GROUPS",
    "BenchmarkInfo",
    "BenchmarkRegistry",
    "default_registry",
    "register_benchmark",
    "resolve_benchmarks",
]


@dataclass(frozen=True)
class BenchmarkInfo:
    """What sloth knows about one benchmark.

    Parameters
    ----------
    name : str
        Benchmark name, as it appears as a column of an evaluations table.
    floor : float
        Guessing floor in [0, 1): expected score of random guessing.
    n_items : int or None
        Number of test items, used to derive binomial noise; ``None`` if unknown.
    description : str
        Free text (what the benchmark measures, which split is counted).
    """

    name: str
    floor: float
    n_items: int | None = None
    description: str = ""


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"benchmark name must be a non-empty string, got {name!r}")
    return name


def _check_floor(name: str, floor: object) -> float:
    try:
        value = float(floor)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(
            f"floor of benchmark {name!r} must be a number in [0, 1), got {floor!r}"
        ) from None
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise ValueError(
            f"floor of benchmark {name!r} must lie in [0, 1) (the expected score of random "
            f"guessing, e.g. 0.25 for four choices), got {floor!r}"
        )
    return value


def _check_n_items(name: str, n_items: object) -> int | None:
    if n_items is None:
        return None
    if isinstance(n_items, bool) or not isinstance(n_items, int | np.integer) or n_items <= 0:
        raise ValueError(
            f"n_items of benchmark {name!r} must be a positive integer (the number of test "
            f"items) or None, got {n_items!r}"
        )
    return int(n_items)


class BenchmarkRegistry:
    """A mutable mapping from benchmark name to :class:`BenchmarkInfo`.

    Examples
    --------
    >>> reg = BenchmarkRegistry()
    >>> reg.register("MyQA", floor=0.25, n_items=500)
    >>> reg.floor("MyQA")
    0.25
    """

    def __init__(self, infos: Sequence[BenchmarkInfo] = ()) -> None:
        self._infos: dict[str, BenchmarkInfo] = {}
        for info in infos:
            self.register(info.name, info.floor, info.n_items, info.description)

    def register(
        self,
        name: str,
        floor: float,
        n_items: int | None = None,
        description: str = "",
        *,
        overwrite: bool = False,
    ) -> BenchmarkInfo:
        """Add a benchmark, or update one with ``overwrite=True``.

        Parameters
        ----------
        name : str
            Benchmark name (the column name in evaluation tables).
        floor : float
            Guessing floor in [0, 1).
        n_items : int, optional
            Positive number of test items.
        description : str
            Free text.
        overwrite : bool
            Replace an existing entry whose floor or item count differs. Without it such a
            re-registration raises ``ValueError``; re-registering identical values (or only
            filling in a missing item count or description) is allowed.

        Returns
        -------
        BenchmarkInfo
            The entry now held by the registry.
        """
        name = _check_name(name)
        new = BenchmarkInfo(
            name=name,
            floor=_check_floor(name, floor),
            n_items=_check_n_items(name, n_items),
            description=str(description),
        )
        old = self._infos.get(name)
        if old is not None and not overwrite:
            new = self._merge(old, new)
        self._infos[name] = new
        return new

    @staticmethod
    def _merge(old: BenchmarkInfo, new: BenchmarkInfo) -> BenchmarkInfo:
        """Combine a re-registration with the existing entry, refusing conflicts."""
        if new.floor != old.floor:
            raise ValueError(
                f"benchmark {old.name!r} is already registered with floor {old.floor}; "
                f"re-registering it with floor {new.floor} needs overwrite=True"
            )
        if new.n_items is not None and old.n_items is not None and new.n_items != old.n_items:
            raise ValueError(
                f"benchmark {old.name!r} is already registered with n_items={old.n_items}; "
                f"re-registering it with n_items={new.n_items} needs overwrite=True"
            )
        return replace(
            old,
            n_items=old.n_items if new.n_items is None else new.n_items,
            description=new.description or old.description,
        )

    def get(self, name: str) -> BenchmarkInfo:
        """The entry of ``name``.

        Raises
        ------
        DataValidationError
            If ``name`` is not registered; the message says how to register it.
        """
        try:
            return self._infos[name]
        except KeyError:
            raise DataValidationError(self._unknown_message([name])) from None

    def _unknown_message(self, names: Sequence[str], fixes: Fixes = PYTHON) -> str:
        listed = ", ".join(repr(n) for n in names)
        return (
            f"benchmark {listed} has no known guessing floor. Fix: {fixes.floor(names[0])} "
            f"(the floor is the expected score of random guessing, e.g. 0.25 for four "
            f"choices, 0.0 for free-form answers). Known benchmarks: "
            f"{', '.join(self.names())}."
        )

    def floor(self, name: str) -> float:
        """Guessing floor of ``name``."""
        return self.get(name).floor

    def n_items(self, name: str) -> int | None:
        """Item count of ``name`` (``None`` if unknown)."""
        return self.get(name).n_items

    def inv_items(self, names: Sequence[str]) -> np.ndarray:
        """``1 / n_items`` of several benchmarks, 0 where the item count is unknown or the
        benchmark is not registered: the binomial part of a score's noise
        (:func:`sloth.model.observation_scale`), which is left out without an item count.

        Parameters
        ----------
        names : sequence of str, length J

        Returns
        -------
        ndarray of float, shape (J,)
        """
        counts = [self._infos[n].n_items if n in self._infos else None for n in names]
        return np.array([1.0 / c if c else 0.0 for c in counts], dtype=float)

    def floors(self, names: Sequence[str], *, interface: Interface = "python") -> np.ndarray:
        """Guessing floors of several benchmarks.

        Parameters
        ----------
        names : sequence of str, length J
        interface : {"python", "cli"}
            How the error message spells the fix (see :class:`~sloth.data.fixes.Fixes`).

        Returns
        -------
        ndarray of float, shape (J,)

        Raises
        ------
        DataValidationError
            Naming every unknown benchmark at once.
        """
        names = list(names)
        unknown = [n for n in names if n not in self._infos]
        if unknown:
            raise DataValidationError(self._unknown_message(unknown, Fixes(interface)))
        return np.array([self._infos[n].floor for n in names], dtype=float)

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._infos)

    def copy(self) -> BenchmarkRegistry:
        """An independent registry with the same entries."""
        return BenchmarkRegistry(list(self._infos.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._infos))

    def __len__(self) -> int:
        return len(self._infos)

    def __repr__(self) -> str:
        return f"BenchmarkRegistry({self.names()!r})"


# Benchmark groups and guessing floors copied from
# ../shared/protocols/sloth-paper-splits.json ("benchmark_groups", "guessing_floors"), whose
# source is felipemaiapolo/sloth at commit 6dc6bb3efeefc7c1db01d60cba1f4b73e5d260d1
# (sloth/definitions.py). Keep them equal to that file.
_V1 = ["MMLU", "ARC", "HellaSwag", "Winogrande", "TruthfulQA", "GSM8K"]
_V2 = ["IFEval", "BBH", "MATH Lvl 5", "GPQA", "MUSR", "MMLU-PRO"]

#: The paper's benchmark groups: Open LLM Leaderboard v1, v2, and both.
BENCHMARK_GROUPS: dict[str, list[str]] = {"v1": _V1, "v2": _V2, "all": _V1 + _V2}

# (name, floor, n_items, description). Floors of the twelve leaderboard benchmarks: the
# splits file above. n_items: size of the evaluated test split as run by the Open LLM
# Leaderboard (v1: lm-eval-harness tasks; v2: the leaderboard_* tasks).
_DEFAULT_BENCHMARKS: list[tuple[str, float, int | None, str]] = [
    ("MMLU", 0.25, 14042, "57-subject multiple choice (4 options), test split"),
    ("ARC", 0.25, 1172, "AI2 Reasoning Challenge, challenge test split (4 options)"),
    ("HellaSwag", 0.25, 10042, "commonsense completion (4 endings), validation split"),
    ("Winogrande", 0.5, 1267, "pronoun resolution (2 options), validation split"),
    ("TruthfulQA", 0.31, 817, "TruthfulQA mc2"),
    ("GSM8K", 0.0, 1319, "grade-school math, free-form answers, test split"),
    ("IFEval", 0.0, 541, "instruction following (verifiable constraints)"),
    ("BBH", 0.28850360952061127, 5761, "BIG-Bench Hard, the 24 leaderboard v2 tasks"),
    ("MATH Lvl 5", 0.0, 1324, "MATH level-5 problems, free-form answers"),
    ("GPQA", 0.25, 1192, "graduate-level QA (diamond + extended + main, 4 options)"),
    ("MUSR", 0.34329805996472657, 756, "multistep soft reasoning (3 sub-tasks)"),
    ("MMLU-PRO", 0.1, 12032, "MMLU-Pro (10 options)"),
    ("HumanEval", 0.0, 164, "Python code generation, pass@1"),
    ("XWinograd", 0.5, None, "multilingual Winograd schemas (2 options)"),
]

_DEFAULT = BenchmarkRegistry([BenchmarkInfo(*row) for row in _DEFAULT_BENCHMARKS])


def default_registry() -> BenchmarkRegistry:
    """The module-level registry used when no ``registry=`` is passed.

    It is shared and mutable: :func:`register_benchmark` adds to it. Use
    ``default_registry().copy()`` for an independent registry.
    """
    return _DEFAULT


def register_benchmark(
    name: str,
    floor: float,
    n_items: int | None = None,
    description: str = "",
    *,
    overwrite: bool = False,
) -> BenchmarkInfo:
    """Register a benchmark on the default registry (see :meth:`BenchmarkRegistry.register`)."""
    return _DEFAULT.register(name, floor, n_items, description, overwrite=overwrite)


def resolve_benchmarks(spec: str | Sequence[str]) -> list[str]:
    """Benchmark names from a group name or an explicit list.

    Parameters
    ----------
    spec : str or sequence of str
        ``"v1"``, ``"v2"``, ``"all"`` (see :data:`BENCHMARK_GROUPS`) or a list of names.

    Returns
    -------
    list of str, length J
        A fresh list (safe to modify).

    Raises
    ------
    DataValidationError
        For an unknown group name, an empty list, non-string or repeated names.
    """
    if isinstance(spec, str):
        if spec not in BENCHMARK_GROUPS:
            raise DataValidationError(
                f"unknown benchmark group {spec!r}; allowed values: "
                f"{', '.join(repr(g) for g in BENCHMARK_GROUPS)}, or a list of benchmark "
                f"names such as [{spec!r}]"
            )
        return list(BENCHMARK_GROUPS[spec])
    names = list(spec)
    if not names:
        raise DataValidationError("benchmarks is empty; pass a group name or a list of names")
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise DataValidationError(f"benchmark names must be strings, got {bad!r}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataValidationError(f"benchmarks lists {repeated!r} more than once")
    return names
