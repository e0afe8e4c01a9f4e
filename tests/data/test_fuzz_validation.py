"""Fuzz test: randomly damaged tables through fit's and forecast's validation.

Each table is the committed synthetic leaderboard with one to three random kinds of damage:
shuffled columns, percent scores, counts off by 1e3 or 1e9 on random rows, NaN, text in
numeric columns, duplicated rows. Every table must be refused with a DataValidationError
exactly when an independent oracle says its damage is detectable, and an accepted table must
carry its values through unchanged (scores in [0, 1], counts as given).

A count off by 1e3 that stays within 1e3 of the other rows' median (e.g. 8.8e10 -> 8.8e7
among models from 1e8 to 9e10) is a possible LLM size and is accepted by design; such a slip
is the only damage that can pass, and a 1e9 slip never does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sloth.data.table import FAMILY, MODEL, PARAMS, TOKENS, ScoreTable
from sloth.data.validation import (
    PARAMS_RANGE,
    TOKENS_RANGE,
    UNIT_SLIP_RATIO,
    read_evaluations,
    read_prediction_table,
)
from sloth.exceptions import DataValidationError

CLEAN_CSV = Path(__file__).resolve().parents[2] / "data" / "synthetic_leaderboard.csv"
N_TABLES = 300
SIZES = {PARAMS: PARAMS_RANGE, TOKENS: TOKENS_RANGE}


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return pd.read_csv(CLEAN_CSV)


def _benchmarks(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in (MODEL, FAMILY, PARAMS, TOKENS)]


# ----------------------------------------------------------------------------- damage


def _shuffle(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return df[list(rng.permutation(df.columns))]


def _percent(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    column = str(rng.choice(_benchmarks(df)))
    if rng.random() < 0.5:
        df[column] = df[column] * 100.0
    else:
        df.loc[rng.integers(len(df)), column] *= 100.0
    return df


def _unit(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    column = str(rng.choice([PARAMS, TOKENS]))
    rows = rng.choice(len(df), size=rng.integers(1, 4), replace=False)
    factor = float(rng.choice([1e3, 1e9])) ** float(rng.choice([-1, 1]))
    df.loc[rows, column] = df.loc[rows, column] * factor
    return df


def _nan(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    df.loc[rng.integers(len(df)), str(rng.choice(df.columns))] = np.nan
    return df


def _text(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    column = str(rng.choice([PARAMS, TOKENS, *_benchmarks(df)]))
    df[column] = df[column].astype(object)
    df.loc[rng.integers(len(df)), column] = str(rng.choice(["n/a", "7B", "-", "0,5"]))
    return df


def _duplicate(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return pd.concat([df, df.iloc[[rng.integers(len(df))]]], ignore_index=True)


DAMAGES: list[Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]] = [
    _shuffle, _percent, _unit, _nan, _text, _duplicate]


def _damaged(clean: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    df = clean.copy()
    # in list order: text cells come after the arithmetic of the other kinds
    for i in sorted(rng.choice(len(DAMAGES), size=rng.integers(1, 4), replace=False)):
        df = DAMAGES[i](df, rng)
    return df


# ----------------------------------------------------------------------------- oracle


def _detectable(df: pd.DataFrame, reference: pd.DataFrame | None = None) -> bool:
    """Whether a table's damage is one the validation promises to catch."""
    if df[MODEL].isna().any() or df[MODEL].astype(str).duplicated().any():
        return True
    if df[FAMILY].isna().any():
        return True
    numeric = {}
    for column in (PARAMS, TOKENS, *_benchmarks(df)):
        values = pd.to_numeric(df[column], errors="coerce")
        if (values.isna() & df[column].notna()).any():
            return True  # text in a numeric column
        numeric[column] = values.to_numpy(dtype=float)
    for column, (low, high) in SIZES.items():
        values = numeric[column]
        if np.isnan(values).any() or ((values < low) | (values > high)).any():
            return True
        pooled = values if reference is None else np.concatenate(
            [values, reference[column].to_numpy(dtype=float)])
        others = ~np.eye(pooled.size, dtype=bool)[: values.size]  # row i: all but i
        medians = np.median(np.broadcast_to(pooled, others.shape)[others].reshape(
            values.size, pooled.size - 1), axis=1)
        if (np.abs(np.log10(values / medians)) >= np.log10(UNIT_SLIP_RATIO)).any():
            return True
    scores = np.column_stack([numeric[b] for b in _benchmarks(df)])
    observed = ~np.isnan(scores)
    if ((scores < 0) | (scores > 1))[observed].any():
        return True
    return bool((~observed).all(axis=1).any())


def _only_small_slips(accepted: np.ndarray, clean: np.ndarray) -> bool:
    """Accepted counts equal the clean ones but for rows off by exactly 1e3 either way."""
    ratio = accepted / clean
    return bool(np.all(np.isclose(ratio, 1.0) | np.isclose(ratio, 1e3)
                       | np.isclose(ratio, 1e-3)))


# ------------------------------------------------------------------------------ tests


def test_clean_table_with_shuffled_columns_is_accepted(clean: pd.DataFrame) -> None:
    rng = np.random.default_rng(1)
    table = read_evaluations(_shuffle(clean.copy(), rng))
    np.testing.assert_array_equal(table.params, clean[PARAMS])
    assert set(table.benchmarks) == set(_benchmarks(clean))
    assert not _detectable(clean)


def test_fuzz_fit_validation(clean: pd.DataFrame) -> None:
    rng = np.random.default_rng(20240614)
    clean_by_model = clean.set_index(MODEL)
    outcomes = {"refused": 0, "accepted": 0}
    for _ in range(N_TABLES):
        df = _damaged(clean, rng)
        expected_refusal = _detectable(df)
        try:
            table = read_evaluations(df)
        except DataValidationError:
            assert expected_refusal, f"refused a table the contract accepts:\n{df.head()}"
            outcomes["refused"] += 1
            continue
        assert not expected_refusal, "accepted a table with detectable damage"
        outcomes["accepted"] += 1
        reference = clean_by_model.loc[list(table.models)]
        assert _only_small_slips(table.params, reference[PARAMS].to_numpy())
        assert _only_small_slips(table.tokens, reference[TOKENS].to_numpy())
        scores = table.scores[table.observed]
        assert ((scores >= 0) & (scores <= 1)).all()
        expected = reference[list(table.benchmarks)].to_numpy(dtype=float)
        same = table.observed & ~np.isnan(expected)
        np.testing.assert_array_equal(table.scores[same], expected[same])
    assert min(outcomes.values()) >= N_TABLES // 10, outcomes  # both outcomes exercised


def test_fuzz_prediction_validation(clean: pd.DataFrame) -> None:
    """Tables of one or two families' observed models, against the rest as the fit."""
    rng = np.random.default_rng(7)
    benchmarks = _benchmarks(clean)
    families = clean[FAMILY].unique()
    outcomes = {"refused": 0, "accepted": 0}
    for _ in range(N_TABLES):
        chosen = rng.choice(families, size=rng.integers(1, 3), replace=False)
        mine = clean[FAMILY].isin(chosen).to_numpy()
        fit_frame = clean.loc[~mine]
        fit = ScoreTable(  # only its counts are used: the rest of the fit, unvalidated
            models=tuple(fit_frame[MODEL]), family=tuple(fit_frame[FAMILY]),
            params=fit_frame[PARAMS].to_numpy(), tokens=fit_frame[TOKENS].to_numpy(),
            benchmarks=(), floors=np.empty(0), scores=np.empty((len(fit_frame), 0)))
        df = _damaged(clean.loc[mine].reset_index(drop=True), rng)
        expected_refusal = _detectable(df, fit_frame)
        try:
            out = read_prediction_table(df, benchmarks=benchmarks, reference=fit,
                                        require_scores=True, name="--observed")
        except DataValidationError as exc:
            assert str(exc).startswith("--observed: ")
            assert expected_refusal, f"refused a table the contract accepts:\n{df}"
            outcomes["refused"] += 1
            continue
        assert not expected_refusal, f"accepted a table with detectable damage:\n{df}"
        outcomes["accepted"] += 1
        assert list(out.columns[:4]) == [MODEL, FAMILY, PARAMS, TOKENS]
        reference = clean.set_index(MODEL).loc[out[MODEL]]
        assert _only_small_slips(out[PARAMS].to_numpy(), reference[PARAMS].to_numpy())
        assert _only_small_slips(out[TOKENS].to_numpy(), reference[TOKENS].to_numpy())
        scores = out[[b for b in benchmarks if b in out.columns]].to_numpy()
        assert np.nanmin(scores) >= 0 and np.nanmax(scores) <= 1
    assert min(outcomes.values()) >= N_TABLES // 10, outcomes
