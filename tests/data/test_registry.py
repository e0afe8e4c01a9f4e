"""Tests of sloth.data.registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sloth.data import registry as registry_module
from sloth.data.registry import (
    BENCHMARK_GROUPS,
    BenchmarkInfo,
    BenchmarkRegistry,
    default_registry,
    register_benchmark,
    resolve_benchmarks,
)
from sloth.exceptions import DataValidationError

SPLITS = Path(__file__).resolve().parents[3] / "shared" / "protocols" / "sloth-paper-splits.json"


@pytest.fixture
def restore_default(monkeypatch: pytest.MonkeyPatch) -> BenchmarkRegistry:
    """Swap in a copy of the default registry so a test may register on it freely."""
    fresh = registry_module._DEFAULT.copy()
    monkeypatch.setattr(registry_module, "_DEFAULT", fresh)
    return fresh


def test_register_and_lookup() -> None:
    reg = BenchmarkRegistry()
    info = reg.register("MyQA", 0.25, n_items=500, description="mine")
    assert info == BenchmarkInfo("MyQA", 0.25, 500, "mine")
    assert reg.get("MyQA") is info
    assert reg.floor("MyQA") == 0.25
    assert "MyQA" in reg and "Other" not in reg
    assert reg.names() == ["MyQA"]
    assert len(reg) == 1


@pytest.mark.parametrize("floor", [-0.1, 1.0, 1.5, float("nan"), "a"])
def test_register_rejects_bad_floor(floor: object) -> None:
    with pytest.raises(ValueError, match=r"floor of benchmark 'X'.*\[0, 1\)"):
        BenchmarkRegistry().register("X", floor)  # type: ignore[arg-type]


@pytest.mark.parametrize("n_items", [0, -3, 2.5, True])
def test_register_rejects_bad_n_items(n_items: object) -> None:
    with pytest.raises(ValueError, match="n_items of benchmark 'X' must be a positive integer"):
        BenchmarkRegistry().register("X", 0.0, n_items=n_items)  # type: ignore[arg-type]


def test_reregister_different_floor_needs_overwrite() -> None:
    reg = BenchmarkRegistry()
    reg.register("MyQA", 0.25)
    with pytest.raises(ValueError, match=r"'MyQA'.*floor 0.25.*overwrite=True"):
        reg.register("MyQA", 0.2)
    assert reg.floor("MyQA") == 0.25
    reg.register("MyQA", 0.2, overwrite=True)
    assert reg.floor("MyQA") == 0.2


def test_reregister_same_floor_fills_in_and_refuses_conflicting_items() -> None:
    reg = BenchmarkRegistry()
    reg.register("MyQA", 0.25)
    reg.register("MyQA", 0.25, n_items=100)
    assert reg.get("MyQA").n_items == 100
    reg.register("MyQA", 0.25)  # identical re-registration keeps the item count
    assert reg.get("MyQA").n_items == 100
    with pytest.raises(ValueError, match="n_items=100"):
        reg.register("MyQA", 0.25, n_items=200)


def test_unknown_benchmark_message_names_it_and_the_fix() -> None:
    reg = BenchmarkRegistry([BenchmarkInfo("MMLU", 0.25)])
    with pytest.raises(DataValidationError) as err:
        reg.get("NewBench")
    msg = str(err.value)
    assert "'NewBench'" in msg
    assert "sloth.register_benchmark('NewBench', floor=...)" in msg
    assert "floors=" in msg
    assert "MMLU" in msg  # lists what is known


def test_floors_vector_and_all_unknown_named() -> None:
    reg = default_registry()
    np.testing.assert_array_equal(reg.floors(["MMLU", "Winogrande", "GSM8K"]), [0.25, 0.5, 0.0])
    assert reg.floors([]).shape == (0,)
    with pytest.raises(DataValidationError, match=r"'A', 'B'"):
        reg.floors(["MMLU", "A", "B"])


def test_copy_is_independent() -> None:
    reg = BenchmarkRegistry([BenchmarkInfo("A", 0.1)])
    other = reg.copy()
    other.register("B", 0.2)
    other.register("A", 0.3, overwrite=True)
    assert "B" not in reg
    assert reg.floor("A") == 0.1


def test_default_registry_matches_paper_splits() -> None:
    if not SPLITS.is_file():
        pytest.skip(f"{SPLITS} not found")
    spec = json.loads(SPLITS.read_text())
    assert spec["benchmark_groups"] == BENCHMARK_GROUPS
    reg = default_registry()
    for name, floor in spec["guessing_floors"].items():
        assert reg.floor(name) == floor, name


def test_default_registry_extras_and_item_counts() -> None:
    reg = default_registry()
    assert reg.floor("HumanEval") == 0.0
    assert reg.floor("XWinograd") == 0.5
    expected = {"MMLU": 14042, "ARC": 1172, "HellaSwag": 10042, "Winogrande": 1267,
                "TruthfulQA": 817, "GSM8K": 1319, "IFEval": 541, "BBH": 5761,
                "MATH Lvl 5": 1324, "GPQA": 1192, "MUSR": 756, "MMLU-PRO": 12032,
                "HumanEval": 164}
    assert {n: reg.n_items(n) for n in expected} == expected
    assert reg.n_items("XWinograd") is None


def test_groups() -> None:
    assert BENCHMARK_GROUPS["all"] == BENCHMARK_GROUPS["v1"] + BENCHMARK_GROUPS["v2"]
    assert len(BENCHMARK_GROUPS["v1"]) == len(BENCHMARK_GROUPS["v2"]) == 6


def test_resolve_benchmarks() -> None:
    got = resolve_benchmarks("v2")
    assert got == BENCHMARK_GROUPS["v2"]
    got.append("X")  # a fresh list: the group is unchanged
    assert len(BENCHMARK_GROUPS["v2"]) == 6
    assert resolve_benchmarks(("HumanEval", "MMLU")) == ["HumanEval", "MMLU"]


def test_resolve_benchmarks_unknown_group_lists_allowed() -> None:
    with pytest.raises(DataValidationError) as err:
        resolve_benchmarks("v3")
    msg = str(err.value)
    assert "'v3'" in msg and "'v1', 'v2', 'all'" in msg


@pytest.mark.parametrize(("spec", "match"), [([], "empty"), (["A", "A"], "more than once"),
                                              ([1], "strings")])
def test_resolve_benchmarks_bad_lists(spec: list[object], match: str) -> None:
    with pytest.raises(DataValidationError, match=match):
        resolve_benchmarks(spec)  # type: ignore[arg-type]


def test_module_register_benchmark_uses_default(restore_default: BenchmarkRegistry) -> None:
    register_benchmark("MyNewBench", 0.2, n_items=10)
    assert default_registry() is restore_default
    assert default_registry().floor("MyNewBench") == 0.2
    with pytest.raises(ValueError, match="MyNewBench"):
        register_benchmark("MyNewBench", 0.3)


def test_inv_items_is_zero_without_an_item_count() -> None:
    reg = BenchmarkRegistry()
    reg.register("Counted", 0.25, n_items=400)
    reg.register("Uncounted", 0.0)
    # an unregistered name gets no binomial noise either, as in a fit
    np.testing.assert_array_equal(reg.inv_items(["Counted", "Uncounted", "Unknown"]),
                                  [1 / 400, 0.0, 0.0])
