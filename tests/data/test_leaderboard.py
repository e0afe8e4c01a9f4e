"""Tests of sloth.data.leaderboard: the paper's table and the schema-routing loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sloth.data import DATA_FILES, load_evaluations, load_leaderboard
from sloth.data.leaderboard import LEADERBOARD_FILE
from sloth.exceptions import DataNotFoundError, DataValidationError

MISSING_TOKENS = {
    "codellama-13b-instruct", "codellama-34b-instruct", "codellama-7b-instruct", "gpt2",
    "gpt2-large", "mixtral-8x22b-instruct-v0.1", "mixtral-8x22b-v0.1",
    "mixtral-8x7b-instruct-v0.1", "mixtral-8x7b-v0.1", "qwen1.5-110b", "qwen1.5-110b-chat",
    "recurrentgemma-9b", "recurrentgemma-9b-it",
}


@pytest.fixture
def mini() -> pd.DataFrame:
    """A small table in the leaderboard's own schema."""
    return pd.DataFrame({
        "Unnamed: 0": [0, 1, 2, 3, 4],
        "Model": ["a-1b", "a-7b", "a-7b-chat", "b-3b", "c-2b"],
        "Family": ["a", "a", "a", "b", "c"],
        "Family2": ["a", "a", "a-chat", "b", "c"],
        "Instruct": [False, False, True, False, False],
        "#Params (B)": [1.0, 7.0, 7.0, 3.0, 2.0],
        "Pretraining Data Size (T)": [1.0, 2.0, 2.0, np.nan, 0.5],
        "MMLU": [0.3, 0.5, 0.52, 0.4, np.nan],
        "GSM8K": [0.01, 0.1, 0.2, 0.05, np.nan],
        "HumanEval": [0.05, np.nan, 0.2, 0.1, 0.1],
        "date": ["2024-01-01"] * 5,
    })


# ------------------------------------------------------------------- the real file


@pytest.mark.parametrize(
    ("benchmarks", "n_models", "n_families", "n_scores", "n_no_score"),
    [("all", 175, 64, 1524, 0), ("v1", 149, 56, 894, 26), ("v2", 105, 40, 630, 70),
     (["HumanEval"], 83, 26, 83, 92)],
)
def test_real_leaderboard_counts(shared_data: Path, benchmarks: str | list[str],
                                 n_models: int, n_families: int, n_scores: int,
                                 n_no_score: int) -> None:
    table = load_leaderboard(benchmarks=benchmarks, download=False)
    assert table.n_models == n_models
    assert len(table.families) == n_families
    assert table.n_scores == n_scores
    reasons = table.skipped["reason"].value_counts().to_dict()
    assert reasons.pop("missing training tokens") == 13
    assert reasons == ({"no score on the chosen benchmarks": n_no_score} if n_no_score else {})
    assert set(table.skipped["model"][table.skipped["reason"] == "missing training tokens"]) \
        == MISSING_TOKENS
    assert not set(table.skipped["model"]) & set(table.models)


def test_real_leaderboard_contents(shared_data: Path) -> None:
    table = load_leaderboard(download=False)
    assert table.benchmarks[:2] == ("MMLU", "ARC") and table.n_benchmarks == 12
    i = table.models.index("bloom-7b1")
    assert table.family[i] == "bloom"
    assert table.params[i] == pytest.approx(7.0e9)  # the file says 7.0 (B)
    assert table.tokens[i] == pytest.approx(0.341e12)
    assert set(np.unique(table.extra_covariates["instruct"])) == {0.0, 1.0}
    assert table.extra_covariates["instruct"][table.models.index("yi-1.5-34b-chat")] == 1.0
    assert np.nanmin(table.scores) >= 0.0 and np.nanmax(table.scores) <= 1.0
    assert table.floors[table.benchmarks.index("MUSR")] == pytest.approx(0.3433, abs=1e-4)
    in_file = pd.read_csv(shared_data / LEADERBOARD_FILE)["Model"].tolist()
    assert list(table.models) == [m for m in in_file if m in set(table.models)]


def test_real_leaderboard_options(shared_data: Path) -> None:
    table = load_leaderboard(benchmarks=["HumanEval"], family_column="Family",
                             include_instruct=False, download=False)
    assert table.extra_covariates == {}
    np.testing.assert_array_equal(table.floors, [0.0])
    assert len(table.families) < 26  # "Family" is coarser than "Family2"


def test_explicit_path_and_load_evaluations_agree(shared_data: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = shared_data / LEADERBOARD_FILE
    monkeypatch.delenv("SLOTH_DATA_DIR")
    direct = load_leaderboard(path, benchmarks="v2", download=False)
    routed = load_evaluations(path, benchmarks="v2")
    assert direct.models == routed.models
    np.testing.assert_array_equal(direct.scores, routed.scores)
    assert routed.n_models == 105


def test_offline_without_data_names_the_url() -> None:
    with pytest.raises(DataNotFoundError) as err:
        load_leaderboard(download=False)
    msg = str(err.value)
    assert DATA_FILES[LEADERBOARD_FILE].url in msg and "SLOTH_DATA_DIR" in msg


# ---------------------------------------------------------------- the mapping, offline


def test_mapping_of_leaderboard_schema(mini: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "lb.csv"
    mini.to_csv(path, index=False)
    table = load_leaderboard(path, benchmarks=["MMLU", "GSM8K"])
    assert table.models == ("a-1b", "a-7b", "a-7b-chat")
    assert table.family == ("a", "a", "a-chat")
    np.testing.assert_allclose(table.params, [1e9, 7e9, 7e9])
    np.testing.assert_allclose(table.tokens, [1e12, 2e12, 2e12])
    np.testing.assert_array_equal(table.extra_covariates["instruct"], [0.0, 0.0, 1.0])
    assert table.skipped.to_dict("records") == [
        {"model": "b-3b", "reason": "missing training tokens"},
        {"model": "c-2b", "reason": "no score on the chosen benchmarks"},
    ]


def test_held_out_benchmark(mini: pd.DataFrame) -> None:
    table = load_evaluations(mini, benchmarks=["HumanEval"], family_column="Family")
    assert table.models == ("a-1b", "a-7b-chat", "c-2b")
    assert table.family == ("a", "a", "c")
    np.testing.assert_array_equal(table.floors, [0.0])


def test_leaderboard_schema_validation_still_applies(mini: pd.DataFrame) -> None:
    bad = mini.assign(MMLU=mini["MMLU"] * 100)
    with pytest.raises(DataValidationError, match=r"'MMLU'.*percentages"):
        load_evaluations(bad, benchmarks=["MMLU"])


def test_leaderboard_schema_missing_benchmark(mini: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match=r"'BBH'.*benchmarks="):
        load_evaluations(mini, benchmarks=["MMLU", "BBH"])


def test_leaderboard_schema_bad_instruct(mini: pd.DataFrame) -> None:
    bad = mini.assign(Instruct=["no", "no", "maybe", "no", "no"])
    with pytest.raises(DataValidationError, match=r"'Instruct'.*'a-7b-chat'.*include_instruct"):
        load_evaluations(bad, benchmarks=["MMLU"])
    table = load_evaluations(bad.drop(columns="Instruct"), benchmarks=["MMLU"],
                             include_instruct=False)
    assert table.n_models == 3


def test_load_evaluations_routes_other_tables_to_read_evaluations(tmp_path: Path) -> None:
    df = pd.DataFrame({"name": ["x-1b", "x-2b"], "family": ["x", "x"], "params": [1e9, 2e9],
                       "tokens": [1e12, 1e12], "ARC": [0.3, 0.4]})
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    table = load_evaluations(path, model_column="name")
    assert table.models == ("x-1b", "x-2b") and table.benchmarks == ("ARC",)
    with pytest.raises(DataValidationError, match="model_column="):
        load_evaluations(path)
