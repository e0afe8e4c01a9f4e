"""Column and unit mapping (``sloth.data.mapping``), through the API and ``sloth fit``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sloth.cli.main import main
from sloth.data.leaderboard import load_evaluations
from sloth.data.mapping import ColumnMapping, map_columns, parse_renames, parse_unit
from sloth.data.obsscaling import render_obsscaling
from sloth.exceptions import DataValidationError
from sloth.model.simulate import simulate_leaderboard

OBS_OPTIONS = {
    "model_column": "Model", "family_column": "Model Family",
    "params_column": "Model Size (B)", "params_unit": "billions",
    "tokens_column": "Pretraining Data Size (T)", "tokens_unit": "trillions",
    "rename": {"ARC-C": "ARC", "Winograd": "Winogrande"},
}


@pytest.fixture(scope="module")
def simulated():
    table, _ = simulate_leaderboard(n_families=8, n_skills=1, n_benchmarks=5, seed=3)
    return table


@pytest.fixture(scope="module")
def obs_file(simulated, tmp_path_factory):
    """A small table of the Observational Scaling Laws schema, made by the simulator."""
    path = tmp_path_factory.mktemp("obs") / "base_llm_benchmark_eval.csv"
    render_obsscaling(simulated)["base"].to_csv(path, index=False)
    return path


def test_units_parse_by_name_alias_or_multiplier():
    assert parse_unit("billions") == 1e9
    assert parse_unit("T") == 1e12
    assert parse_unit("1e21") == 1e21
    with pytest.raises(DataValidationError, match="'lots' is not a unit"):
        parse_unit("lots")
    with pytest.raises(DataValidationError, match="not a unit"):
        parse_unit("-3")
    assert parse_renames("ARC-C=ARC, Winograd=Winogrande") == {"ARC-C": "ARC",
                                                               "Winograd": "Winogrande"}
    with pytest.raises(DataValidationError, match="OLD=NEW"):
        parse_renames("ARC-C")


def test_obsscaling_schema_read_through_the_mapping_matches_the_truth(simulated, obs_file):
    table = load_evaluations(obs_file, benchmarks=list(simulated.benchmarks), **OBS_OPTIONS)
    order = [simulated.models.index(m) for m in table.models]
    np.testing.assert_allclose(table.params, simulated.params[order], rtol=1e-9)
    np.testing.assert_allclose(table.tokens, simulated.tokens[order], rtol=1e-9)
    assert set(table.benchmarks) == set(simulated.benchmarks)
    j = simulated.benchmarks.index("ARC")
    np.testing.assert_allclose(table.scores[:, table.benchmarks.index("ARC")],
                               simulated.scores[order, j], equal_nan=True)


def test_tokens_from_compute_when_the_table_has_none(simulated, obs_file):
    frame = pd.read_csv(obs_file).drop(columns=["Pretraining Data Size (T)"])
    options = {k: v for k, v in OBS_OPTIONS.items() if not k.startswith("tokens")}
    table = load_evaluations(frame, compute_column="FLOPs (1E21)", compute_unit=1e21,
                             benchmarks=list(simulated.benchmarks), **options)
    order = [simulated.models.index(m) for m in table.models]
    np.testing.assert_allclose(table.tokens, simulated.tokens[order], rtol=1e-6)


def test_mapping_errors_name_the_option_of_the_interface(obs_file):
    frame = pd.read_csv(obs_file)
    with pytest.raises(DataValidationError, match=r"--params-column 'Size'.*not a column"):
        map_columns(frame, ColumnMapping(model="Model", family="Model Family", params="Size",
                                         tokens="Pretraining Data Size (T)"), interface="cli")
    with pytest.raises(DataValidationError, match=r"params_column= 'Size'"):
        map_columns(frame, ColumnMapping(model="Model", family="Model Family", params="Size",
                                         tokens="Pretraining Data Size (T)"))
    with pytest.raises(DataValidationError, match="same name"):
        map_columns(frame, ColumnMapping(model="Model", family="Model Family",
                                         params="Model Size (B)",
                                         tokens="Pretraining Data Size (T)",
                                         renames={"ARC-C": "MMLU"}))
    # without the unit the sizes are implausible counts, and validation says so
    with pytest.raises(DataValidationError, match=r"Model Size|params"):
        load_evaluations(frame, benchmarks=["ARC"],
                         **{k: v for k, v in OBS_OPTIONS.items() if k != "params_unit"})


def test_sloth_fit_reads_the_obsscaling_schema_from_the_shell(obs_file, tmp_path, capsys):
    out = tmp_path / "obs-fit.nc"
    code = main([
        "fit", "--data", str(obs_file), "--model-column", "Model",
        "--family-column", "Model Family", "--params-column", "Model Size (B)",
        "--params-unit", "billions", "--tokens-column", "Pretraining Data Size (T)",
        "--tokens-unit", "trillions", "--rename", "ARC-C=ARC,Winograd=Winogrande",
        "--benchmarks", "MMLU,ARC,HellaSwag,Winogrande,TruthfulQA",
        "--skills", "1", "--chains", "1", "--warmup", "100", "--samples", "100",
        "--no-family-effects", "--out", str(out), "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["n_models"] == len(pd.read_csv(obs_file))
    assert {"ARC", "Winogrande"} <= set(summary["loadings"])
    assert out.is_file()


def test_conflicting_or_misplaced_options_are_refused(tmp_path, capsys):
    code = main(["fit", "--no-instruct", "--covariate", "instruct",
                 "--out", str(tmp_path / "x.nc")])
    assert code == 2
    assert "--no-instruct and --covariate instruct" in capsys.readouterr().err
    code = main(["fit", "--params-unit", "billions", "--out", str(tmp_path / "x.nc")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--params-unit" in err and "--data PATH" in err
    assert not (tmp_path / "x.nc").exists()
