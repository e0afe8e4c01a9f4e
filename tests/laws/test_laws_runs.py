"""Runs tables: validation messages, CSV reading, the Chinchilla loader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sloth.exceptions import DataNotFoundError, DataValidationError, DataWarning, SlothWarning
from sloth.laws import load_chinchilla_runs, read_runs_csv, split_by_compute, validate_runs


def _runs(**cols):
    base = {"N": [1e8, 4e8, 1e9], "D": [2e9, 8e9, 2e10], "loss": [3.2, 2.9, 2.7]}
    base.update(cols)
    return pd.DataFrame(base)


def test_canonical_columns_and_derived_compute():
    out = validate_runs(_runs())
    assert list(out.columns) == ["N", "D", "C", "loss"]
    np.testing.assert_allclose(out["C"], 6 * out["N"] * out["D"])
    only_c = pd.DataFrame({"Model Size": [1e8, 1e9], "Training FLOP": [1.2e18, 1.2e20],
                           "Loss": [3.0, 2.6]})
    out = validate_runs(only_c)
    np.testing.assert_allclose(out["D"], [2e9, 2e10])


def test_missing_columns_are_named():
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['loss'\]"):
        validate_runs(_runs().drop(columns="loss"))
    with pytest.raises(DataValidationError, match="D or C"):
        validate_runs(_runs().drop(columns="D"))
    with pytest.raises(DataValidationError, match="all look like 'N'"):
        validate_runs(_runs(params=[1, 2, 3]))


def test_bad_values_name_rows_and_fix():
    with pytest.raises(DataValidationError, match=r"'loss'.*non-numeric.*rows 1.*'abc'"):
        validate_runs(_runs(loss=[3.0, "abc", 2.0]))
    with pytest.raises(DataValidationError, match=r"'N'.*positive.*rows 0, 2.*log10"):
        validate_runs(_runs(N=[-1.0, 4e8, 0.0]))
    with pytest.raises(DataValidationError, match=r"'D'.*not finite at rows 2"):
        validate_runs(_runs(D=[1e9, 2e9, np.nan]))
    with pytest.raises(DataValidationError, match="DataFrame"):
        validate_runs({"N": [1]})


def test_inconsistent_compute_warns():
    with pytest.warns(DataWarning, match="C differs from 6 N D.*rows 1"):
        validate_runs(_runs(C=[1.2e18, 1e10, 1.2e20]))


def test_a_warning_raised_deep_inside_sloth_points_at_the_callers_line(tmp_path):
    """Raised in validate_runs under read_runs_csv: the location is this file, and the
    text is one line (a sloth warning, also a UserWarning)."""
    path = tmp_path / "runs.csv"
    _runs(C=[1.2e18, 1e10, 1.2e20]).to_csv(path, index=False)
    with pytest.warns(DataWarning) as record:
        read_runs_csv(path)
    [w] = [w for w in record if issubclass(w.category, DataWarning)]
    assert w.filename == __file__
    assert issubclass(w.category, SlothWarning) and issubclass(w.category, UserWarning)
    assert "\n" not in str(w.message)


def test_skill_column_checks():
    runs = _runs(domain=["code", None, "code"])
    with pytest.raises(DataValidationError, match="'domain' is empty at rows 1"):
        validate_runs(runs, skill_column="domain")
    with pytest.raises(DataValidationError, match="'task' is not in the runs table"):
        validate_runs(runs, skill_column="task")
    runs = _runs(domain=["code", "web", "code"])
    with pytest.raises(DataValidationError, match=r"\['web'\].*at least 2"):
        validate_runs(runs, skill_column="domain", min_runs=2)
    assert list(validate_runs(runs, skill_column="domain")["skill"]) == ["code", "web", "code"]


def test_csv_errors_point_at_lines(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("N,D,loss\n1e8,2e9,3.1\n4e8,oops,2.9\n1e9,2e10,2.7\n")
    with pytest.raises(DataValidationError, match="CSV lines 3"):
        read_runs_csv(path)
    with pytest.raises(DataNotFoundError):
        read_runs_csv(tmp_path / "nope.csv")


def test_split_by_compute():
    runs = validate_runs(_runs())
    below, above = split_by_compute(runs, 1e19)
    assert len(below) == 1 and len(above) == 2


def test_chinchilla_loader_through_data_dir(shared_data):
    runs = load_chinchilla_runs(download=False)
    assert len(runs) == 240
    raw = pd.read_csv(shared_data / "chinchilla-epoch" / "svg_extracted_data.csv")
    assert runs["loss"].max() < raw["loss"].nlargest(5).min()
    np.testing.assert_allclose(runs["D"], runs["C"] / (6 * runs["N"]))
    assert len(load_chinchilla_runs(download=False, drop_highest_loss=0)) == 245


def test_chinchilla_loader_explicit_path_errors(tmp_path):
    with pytest.raises(DataNotFoundError):
        load_chinchilla_runs(tmp_path / "missing.csv")
