"""Tests of sloth.data.validation.read_evaluations: one test per kind of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sloth.data.registry import BenchmarkRegistry
from sloth.data.validation import describe_rows, read_evaluations
from sloth.exceptions import DataNotFoundError, DataValidationError


@pytest.fixture
def frame() -> pd.DataFrame:
    """Four models of two families on MMLU, ARC and GSM8K; one score missing."""
    return pd.DataFrame({
        "model": ["zeta-1b", "zeta-7b", "alpha-3b", "alpha-13b"],
        "family": ["zeta", "zeta", "alpha", "alpha"],
        "params": [1e9, 7e9, 3e9, 13e9],
        "tokens": [1e12, 2e12, 1.5e12, 2e12],
        "MMLU": [0.30, 0.55, 0.40, np.nan],
        "ARC": [0.28, 0.50, 0.35, 0.60],
        "GSM8K": [0.02, 0.15, 0.05, 0.30],
    })


def _error(df: pd.DataFrame, **kwargs: object) -> str:
    with pytest.raises(DataValidationError) as err:
        read_evaluations(df, **kwargs)  # type: ignore[arg-type]
    return str(err.value)


def test_valid_table(frame: pd.DataFrame) -> None:
    table = read_evaluations(frame)
    assert table.models == ("zeta-1b", "zeta-7b", "alpha-3b", "alpha-13b")  # input order
    assert table.family == ("zeta", "zeta", "alpha", "alpha")
    assert table.benchmarks == ("MMLU", "ARC", "GSM8K")
    np.testing.assert_array_equal(table.floors, [0.25, 0.25, 0.0])
    np.testing.assert_array_equal(table.params, [1e9, 7e9, 3e9, 13e9])
    assert table.scores.shape == (4, 3)
    assert np.isnan(table.scores[3, 0]) and table.n_scores == 11
    assert table.extra_covariates == {}
    assert list(table.skipped.columns) == ["model", "reason"] and len(table.skipped) == 0


def test_input_frame_not_modified(frame: pd.DataFrame) -> None:
    before = frame.copy()
    read_evaluations(frame, benchmarks=["ARC"])
    pd.testing.assert_frame_equal(frame, before)


def test_benchmarks_selects_columns_and_groups(frame: pd.DataFrame) -> None:
    assert read_evaluations(frame, benchmarks=["GSM8K", "MMLU"]).benchmarks == ("GSM8K", "MMLU")
    v1 = frame.assign(HellaSwag=0.5, Winogrande=0.6, TruthfulQA=0.4)
    assert read_evaluations(v1, benchmarks="v1").n_benchmarks == 6


def test_renamed_columns_and_extra_covariates(frame: pd.DataFrame) -> None:
    df = frame.rename(columns={"model": "name", "family": "fam", "params": "N", "tokens": "D"})
    df["is_chat"] = [False, True, False, True]
    table = read_evaluations(df, model_column="name", family_column="fam", params_column="N",
                             tokens_column="D", extra_covariates=["is_chat"])
    np.testing.assert_array_equal(table.extra_covariates["is_chat"], [0.0, 1.0, 0.0, 1.0])
    assert table.benchmarks == ("MMLU", "ARC", "GSM8K")  # covariate is not a score column


def test_reads_csv_and_drops_index_column(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "evals.csv"
    frame.to_csv(path)  # writes an unnamed index column
    table = read_evaluations(path)
    assert table.benchmarks == ("MMLU", "ARC", "GSM8K")
    np.testing.assert_allclose(table.scores, read_evaluations(frame).scores)


def test_missing_file() -> None:
    with pytest.raises(DataNotFoundError, match=r"nowhere\.csv"):
        read_evaluations("/nonexistent/nowhere.csv")


def test_floors_override_and_custom_registry(frame: pd.DataFrame) -> None:
    df = frame.rename(columns={"GSM8K": "MyBench"})
    table = read_evaluations(df, floors={"MyBench": 0.2, "MMLU": 0.3})
    np.testing.assert_array_equal(table.floors, [0.3, 0.25, 0.2])
    reg = BenchmarkRegistry()
    for name in ("MMLU", "ARC", "MyBench"):
        reg.register(name, 0.1)
    np.testing.assert_array_equal(read_evaluations(df, registry=reg).floors, [0.1, 0.1, 0.1])


# ---------------------------------------------------------------- one test per bad input


def test_empty_table(frame: pd.DataFrame) -> None:
    assert "empty" in _error(frame.iloc[:0])


def test_missing_required_column(frame: pd.DataFrame) -> None:
    msg = _error(frame.drop(columns="tokens").rename(columns={"params": "size"}))
    assert "'params'" in msg  # the column
    assert "'size'" in msg and "'MMLU'" in msg  # the columns present
    assert "params_column=" in msg  # the fix


def test_missing_family_column_names_keyword(frame: pd.DataFrame) -> None:
    msg = _error(frame.drop(columns="family"))
    assert "'family'" in msg and "family_column=" in msg


def test_missing_benchmark_column(frame: pd.DataFrame) -> None:
    msg = _error(frame, benchmarks=["MMLU", "BBH"])
    assert "'BBH'" in msg and "benchmarks=" in msg


def test_missing_extra_covariate(frame: pd.DataFrame) -> None:
    msg = _error(frame, extra_covariates=["instruct"])
    assert "'instruct'" in msg and "extra_covariates=" in msg


def test_percentages(frame: pd.DataFrame) -> None:
    df = frame.assign(ARC=frame["ARC"] * 100)
    msg = _error(df)
    assert "'ARC'" in msg and "'zeta-1b'" in msg and "(28)" in msg
    assert "percentages" in msg and "divide the column by 100" in msg


def test_score_out_of_range_not_percent(frame: pd.DataFrame) -> None:
    df = frame.assign(GSM8K=[0.1, -0.2, 0.1, 0.1])
    msg = _error(df)
    assert "'GSM8K'" in msg and "'zeta-7b'" in msg and "outside [0, 1]" in msg
    assert "percentages" not in msg


def test_non_numeric_score(frame: pd.DataFrame) -> None:
    df = frame.astype({"MMLU": object})
    df.loc[2, "MMLU"] = "n/a"
    msg = _error(df)
    assert "'MMLU'" in msg and "'alpha-3b'" in msg and "'n/a'" in msg and "non-numeric" in msg


def test_non_numeric_extra_column_hints_benchmarks(frame: pd.DataFrame) -> None:
    msg = _error(frame.assign(date=["2024-01-01"] * 4))
    assert "'date'" in msg and "benchmarks=" in msg


def test_boolean_column_is_not_scores(frame: pd.DataFrame) -> None:
    msg = _error(frame.assign(chat=[True, False, True, False]))
    assert "'chat'" in msg and "extra_covariates=['chat']" in msg


def test_missing_size_raises(frame: pd.DataFrame) -> None:
    df = frame.assign(params=[1e9, np.nan, 3e9, 13e9])
    msg = _error(df)
    assert "'params'" in msg and "'zeta-7b'" in msg and "on_missing_size='skip'" in msg


def test_missing_tokens_raises(frame: pd.DataFrame) -> None:
    msg = _error(frame.assign(tokens=[1e12, 2e12, np.nan, 2e12]))
    assert "'tokens'" in msg and "'alpha-3b'" in msg


def test_missing_size_skip_records(frame: pd.DataFrame) -> None:
    df = frame.assign(params=[1e9, np.nan, 3e9, np.nan], tokens=[1e12, 2e12, 1e12, np.nan])
    table = read_evaluations(df, on_missing_size="skip")
    assert table.models == ("zeta-1b", "alpha-3b")
    assert table.params.shape == (2,) and table.scores.shape == (2, 3)
    assert table.skipped.to_dict("records") == [
        {"model": "zeta-7b", "reason": "missing parameter count"},
        {"model": "alpha-13b", "reason": "missing parameter count and training tokens"},
    ]


def test_skip_everything_raises(frame: pd.DataFrame) -> None:
    assert "no model left" in _error(frame.assign(tokens=np.nan), on_missing_size="skip")


@pytest.mark.parametrize("bad", [0.0, -7e9, np.inf])
def test_non_positive_size_raises_even_with_skip(frame: pd.DataFrame, bad: float) -> None:
    msg = _error(frame.assign(params=[1e9, bad, 3e9, 13e9]), on_missing_size="skip")
    assert "'params'" in msg and "'zeta-7b'" in msg and "positive" in msg


def test_non_numeric_size(frame: pd.DataFrame) -> None:
    msg = _error(frame.assign(params=["1B", "7e9", "3e9", "13e9"]))
    assert "'params'" in msg and "'zeta-1b'" in msg and "'1B'" in msg and "7e9" in msg


def test_params_in_billions(frame: pd.DataFrame) -> None:
    msg = _error(frame.assign(params=[1.0, 7.0, 3.0, 13.0]))
    assert "'params'" in msg and "billions" in msg and "multiply the column by 1e9" in msg
    assert "'alpha-13b'" in msg


def test_tokens_in_trillions(frame: pd.DataFrame) -> None:
    msg = _error(frame.assign(tokens=[1.0, 2.0, 1.5, 2.0]))
    assert "'tokens'" in msg and "trillions" in msg and "1e12" in msg and "1e9" in msg


def test_duplicate_models(frame: pd.DataFrame) -> None:
    df = frame.assign(model=["zeta-1b", "zeta-7b", "zeta-1b", "alpha-13b"])
    msg = _error(df)
    assert "'model'" in msg and "duplicate" in msg and "'zeta-1b'" in msg
    assert "'zeta-7b'" not in msg and "unique" in msg


def test_missing_model_name(frame: pd.DataFrame) -> None:
    df = frame.assign(model=["zeta-1b", None, "alpha-3b", "alpha-13b"])
    msg = _error(df)
    assert "'model'" in msg and "row(s) 1" in msg


def test_missing_family(frame: pd.DataFrame) -> None:
    msg = _error(frame.assign(family=["zeta", "zeta", None, "alpha"]))
    assert "'family'" in msg and "'alpha-3b'" in msg and "its own family" in msg


def test_unknown_floor(frame: pd.DataFrame) -> None:
    msg = _error(frame.rename(columns={"ARC": "MyBench"}))
    assert "'MyBench'" in msg
    assert "floors={'MyBench': ...}" in msg and "sloth.register_benchmark('MyBench'" in msg


def test_bad_floor_value(frame: pd.DataFrame) -> None:
    msg = _error(frame, floors={"ARC": 1.5})
    assert "'ARC'" in msg and "[0, 1)" in msg


def test_model_without_scores(frame: pd.DataFrame) -> None:
    df = frame.assign(MMLU=[0.3, 0.5, np.nan, np.nan], ARC=[0.3, 0.5, np.nan, 0.6],
                      GSM8K=[0.1, 0.1, np.nan, 0.1])
    msg = _error(df)
    assert "'alpha-3b'" in msg and "'alpha-13b'" not in msg
    assert "no score" in msg and "drop these rows or add their scores" in msg


def test_model_without_scores_among_chosen(frame: pd.DataFrame) -> None:
    msg = _error(frame, benchmarks=["MMLU"])
    assert "'alpha-13b'" in msg and "'MMLU'" in msg


def test_extra_covariate_missing_value(frame: pd.DataFrame) -> None:
    msg = _error(frame.assign(instruct=[0, 1, np.nan, 1]), extra_covariates=["instruct"])
    assert "'instruct'" in msg and "'alpha-3b'" in msg


def test_no_score_columns(frame: pd.DataFrame) -> None:
    assert "no score columns" in _error(frame[["model", "family", "params", "tokens"]])


def test_bad_on_missing_size(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="on_missing_size"):
        read_evaluations(frame, on_missing_size="drop")  # type: ignore[arg-type]


def test_long_lists_are_truncated() -> None:
    text = describe_rows([f"m{i}" for i in range(25)], list(range(25)))
    assert text.startswith("'m0' (0), 'm1' (1)")
    assert "'m9' (9)" in text and "'m10'" not in text
    assert text.endswith("and 15 more")


def test_non_positive_tokens(frame: pd.DataFrame) -> None:
    msg = _error(frame.assign(tokens=[1e12, 2e12, 1.5e12, -1.0]))
    assert "'tokens'" in msg and "'alpha-13b'" in msg and "positive" in msg


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataValidationError, match="empty"):
        read_evaluations(path)
    path.write_text("model,family,params,tokens,MMLU\n")
    with pytest.raises(DataValidationError, match="no rows"):
        read_evaluations(path)


# ------------------------------------------------------------------ per-row unit checks


def test_one_row_in_billions(frame: pd.DataFrame) -> None:
    msg = _error(frame.assign(params=[1e9, 7.0, 3e9, 13e9]))
    assert "'params'" in msg and "'zeta-7b' (7)" in msg and "'zeta-1b'" not in msg
    assert "7 x 1e9 = 7e9" in msg and "absolute counts" in msg


def test_one_row_a_thousand_times_off(frame: pd.DataFrame) -> None:
    msg = _error(frame.assign(params=[1e9, 7e9, 3e6, 13e9]))  # 3e9 written in thousands
    assert "'params'" in msg and "'alpha-3b' (3e6)" in msg and "1000 times off" in msg
    assert "3e6 x 1000 = 3e9" in msg


def test_one_row_too_large(frame: pd.DataFrame) -> None:
    msg = _error(frame.assign(params=[1e9, 7e18, 3e9, 13e9]))
    assert "'zeta-7b' (7e18)" in msg and "between 1e6 and 1e14" in msg


def test_one_token_count_implausible(frame: pd.DataFrame) -> None:
    msg = _error(frame.assign(tokens=[1e12, 2e12, 1.5, 2e12]))
    assert "'tokens'" in msg and "'alpha-3b' (1.5)" in msg and "1.5 x 1e12 = 1.5e12" in msg


def test_params_in_millions_and_params_unit(frame: pd.DataFrame) -> None:
    millions = frame.assign(params=[1000.0, 7000.0, 3000.0, 13000.0])
    msg = _error(millions)
    assert "millions" in msg and "by 1e6" in msg and "params_unit=1e6" in msg
    table = read_evaluations(millions, params_unit=1e6)
    np.testing.assert_array_equal(table.params, [1e9, 7e9, 3e9, 13e9])
    table = read_evaluations(frame.assign(tokens=[1.0, 2.0, 1.5, 2.0]), tokens_unit=1e12)
    np.testing.assert_array_equal(table.tokens, [1e12, 2e12, 1.5e12, 2e12])
    with pytest.raises(ValueError, match="params_unit"):
        read_evaluations(frame, params_unit=0)


def test_realistic_spread_is_accepted(frame: pd.DataFrame) -> None:
    """70M to 180B parameters, 0.15T to 15T tokens: the leaderboard's own spread."""
    df = frame.assign(params=[7e7, 7e9, 3e9, 1.8e11], tokens=[1.5e11, 2e12, 1.5e13, 2e12])
    np.testing.assert_array_equal(read_evaluations(df).params, df["params"])


# ----------------------------------------------------- fixes spoken in the caller's interface


@pytest.mark.parametrize(("damage", "python", "cli"), [
    (lambda df: df.rename(columns={"tokens": "D"}), "tokens_column='<that name>'",
     "--tokens-column '<that name>'"),
    (lambda df: df.rename(columns={"ARC": "MyBench"}),
     "sloth.register_benchmark('MyBench', floor=...)", "--floor 'MyBench=VALUE'"),
    (lambda df: df.assign(params=[1e9, np.nan, 3e9, 13e9]), "on_missing_size='skip'",
     "--skip-incomplete"),
    (lambda df: df.assign(chat=[True, False, True, False]), "extra_covariates=['chat']",
     "--covariate chat"),
    (lambda df: df.assign(params=[1.0, 7.0, 3.0, 13.0]), "params_unit=1e9", "--params-unit 1e9"),
    (lambda df: df.assign(date=["2024-01-01"] * 4), "benchmarks=[...]",
     "--benchmarks NAME,NAME,..."),
])
def test_fix_spelt_for_the_interface(frame: pd.DataFrame, damage: object, python: str,
                                     cli: str) -> None:
    df = damage(frame)  # type: ignore[operator]
    from_python, from_cli = _error(df), _error(df, interface="cli")
    assert python in from_python and cli not in from_python
    assert cli in from_cli and python not in from_cli


def test_missing_benchmark_and_floor_value_from_cli(frame: pd.DataFrame) -> None:
    assert "--benchmarks NAME" in _error(frame, benchmarks=["MMLU", "BBH"], interface="cli")
    msg = _error(frame, floors={"ARC": 1.5}, interface="cli")
    assert "--floor 'ARC=...'" in msg and "floors=" not in msg


def test_bad_interface(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="interface"):
        read_evaluations(frame, interface="gui")  # type: ignore[arg-type]


@pytest.mark.parametrize("column", ["instruct", "Instruct", "is_chat"])
def test_covariate_column_is_not_a_benchmark(frame: pd.DataFrame, column: str) -> None:
    df = frame.assign(**{column: [0, 1, 0, 1]})
    msg = _error(df)
    assert f"extra_covariates=[{column!r}]" in msg and "no known guessing floor" not in msg
    assert f"--covariate {column}" in _error(df, interface="cli")
    table = read_evaluations(df, extra_covariates=[column])
    np.testing.assert_array_equal(table.extra_covariates[column], [0, 1, 0, 1])


def test_binary_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "fit.nc"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(DataValidationError, match=r"fit\.nc.*not a text table"):
        read_evaluations(path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("model,family,params,tokens,MMLU\nm\xe9,f,1e9,1e12,0.3\n".encode("latin-1"))
    with pytest.raises(DataValidationError, match=r"latin\.csv"):
        read_evaluations(latin)
