"""Tests of read_prediction_table and check_observed_families: the tables of predict and
forecast, validated like the tables of fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sloth.data.validation import (
    check_observed_families,
    read_evaluations,
    read_prediction_table,
)
from sloth.exceptions import DataNotFoundError, DataValidationError

BENCHMARKS = ["MMLU", "ARC", "GSM8K"]


@pytest.fixture
def models() -> pd.DataFrame:
    """Three models of two new families, columns shuffled, with the fit's covariate."""
    return pd.DataFrame({
        "tokens": [2e12, 2e12, 3e12],
        "instruct": [0, 1, 0],
        "model": ["new-1b", "new-7b", "other-13b"],
        "params": [1e9, 7e9, 13e9],
        "family": ["new", "new", "other"],
    })


@pytest.fixture
def observed() -> pd.DataFrame:
    return pd.DataFrame({
        "model": ["new-0.5b"], "family": ["new"], "params": [5e8], "tokens": [2e12],
        "instruct": [0], "MMLU": [0.31], "GSM8K": [np.nan],
    })


def _read(df: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
    kwargs = {"covariates": ["instruct"], "benchmarks": BENCHMARKS, **kwargs}
    return read_prediction_table(df, **kwargs)  # type: ignore[arg-type]


def _error(df: pd.DataFrame, **kwargs: object) -> str:
    with pytest.raises(DataValidationError) as err:
        _read(df, **kwargs)
    return str(err.value)


def test_valid_table_in_canonical_order(models: pd.DataFrame, observed: pd.DataFrame) -> None:
    out = _read(models)
    assert list(out.columns) == ["model", "family", "params", "tokens", "instruct"]
    assert out["model"].tolist() == ["new-1b", "new-7b", "other-13b"]
    np.testing.assert_array_equal(out["params"], [1e9, 7e9, 13e9])
    assert out["instruct"].dtype == float
    obs = _read(observed, require_scores=True)
    assert list(obs.columns) == ["model", "family", "params", "tokens", "instruct", "MMLU",
                                 "GSM8K"]  # the fit's order, only the columns given
    assert obs["MMLU"].tolist() == [0.31] and np.isnan(obs.loc[0, "GSM8K"])


def test_reads_files_and_names_them(models: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "new.csv"
    models.to_csv(path, index=False)
    pd.testing.assert_frame_equal(_read(path), _read(models))  # type: ignore[arg-type]
    with pytest.raises(DataNotFoundError, match=r"--models file 'nowhere\.csv'"):
        _read("nowhere.csv", name="--models")  # type: ignore[arg-type]
    binary = tmp_path / "fit.nc"
    binary.write_bytes(b"\x89HDF\r\n\x1a\n\x00\x00")
    with pytest.raises(DataValidationError, match=r"--models file '.*fit\.nc'.*not a text"):
        _read(binary, name="--models")  # type: ignore[arg-type]


def test_messages_start_with_the_table_name(models: pd.DataFrame) -> None:
    msg = _error(models.drop(columns="tokens"), name="--models")
    assert msg.startswith("--models: ") and "'tokens'" in msg


def test_missing_covariate(models: pd.DataFrame) -> None:
    msg = _error(models.drop(columns="instruct"))
    assert "'instruct'" in msg and "extra covariate" in msg


def test_params_in_billions(models: pd.DataFrame) -> None:
    msg = _error(models.assign(params=[1.0, 7.0, 13.0]))
    assert "billions" in msg and "params_unit=1e9" in msg
    assert "--params-unit 1e9" in _error(models.assign(params=[1.0, 7.0, 13.0]),
                                         interface="cli")
    np.testing.assert_array_equal(
        _read(models.assign(params=[1.0, 7.0, 13.0]), params_unit=1e9)["params"],
        [1e9, 7e9, 13e9])


def test_one_row_off_against_the_fit(models: pd.DataFrame) -> None:
    """A single model cannot be compared with its own table: the fit's counts are used."""
    fit = read_evaluations(pd.DataFrame({
        "model": ["a", "b", "c"], "family": ["f", "f", "g"], "params": [1e9, 7e9, 7e10],
        "tokens": [1e12, 2e12, 2e12], "MMLU": [0.3, 0.5, 0.7]}))
    one = models.iloc[[1]].assign(params=7e6)  # thousands
    assert not _read(one).empty  # alone, 7e6 parameters is a small but possible model
    msg = _error(one, reference=fit)
    assert "'new-7b' (7e6)" in msg and "the fit" in msg


def test_duplicate_models(models: pd.DataFrame) -> None:
    msg = _error(models.assign(model=["new-1b", "new-1b", "other-13b"]))
    assert "duplicate" in msg and "'new-1b'" in msg


def test_unknown_columns_are_named(models: pd.DataFrame) -> None:
    msg = _error(models.assign(BBH=0.4, MMLUU=0.3, is_chat=1))
    assert "'BBH'" in msg and "'MMLUU'" in msg and "'is_chat'" in msg
    assert "'BBH': benchmark(s) the fit did not include" in msg
    assert "'MMLU', 'ARC', 'GSM8K'" in msg  # what the fit knows


def test_percent_scores(observed: pd.DataFrame) -> None:
    msg = _error(observed.assign(MMLU=31.0), name="--observed")
    assert msg.startswith("--observed: ") and "'MMLU'" in msg and "(31)" in msg
    assert "percentages" in msg and "divide the column by 100" in msg
    assert "benchmarks=" not in _error(observed.assign(MMLU="n/a"))


def test_observed_model_without_scores(observed: pd.DataFrame) -> None:
    assert "no score" in _error(observed.assign(MMLU=np.nan), require_scores=True)
    assert len(_read(observed.assign(MMLU=np.nan))) == 1


@pytest.mark.parametrize(("column", "value", "text"), [
    ("params", "7B", "non-numeric"), ("tokens", np.nan, "missing"), ("family", None, "empty"),
    ("instruct", np.nan, "missing"), ("params", -1.0, "positive"),
])
def test_bad_cells(models: pd.DataFrame, column: str, value: object, text: str) -> None:
    df = models.astype({column: object})
    df.loc[1, column] = value
    msg = _error(df)
    assert f"'{column}'" in msg and "'new-7b'" in msg and text in msg


def test_empty_table(models: pd.DataFrame) -> None:
    assert "empty" in _error(models.iloc[:0])


def test_observed_families_must_be_forecast(models: pd.DataFrame,
                                            observed: pd.DataFrame) -> None:
    check_observed_families(observed, models)
    typo = observed.assign(family="nwe")
    with pytest.raises(DataValidationError) as err:
        check_observed_families(typo, models, observed_name="--observed",
                                models_name="--models")
    msg = str(err.value)
    assert "'nwe'" in msg and "'new-0.5b'" in msg and "--models" in msg
    assert "'new', 'other'" in msg and "misspelt" in msg
