"""Tests of sloth.data.obsscaling: the Observational Scaling Laws files as a ScoreTable."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sloth.data import DATA_FILES, load_obsscaling, normalise_model_name, simulate_leaderboard
from sloth.data.obsscaling import (
    OBS_BASE_FILE,
    OBS_INSTRUCT_FILE,
    OBS_V2_FILE,
    obsscaling_frame,
    read_family_map,
    render_obsscaling,
)
from sloth.exceptions import DataValidationError
from tests.data.conftest import LEADERBOARD, SHARED_DATA

OBS_FILES = [SHARED_DATA / n for n in (OBS_BASE_FILE, OBS_V2_FILE, OBS_INSTRUCT_FILE)]


@pytest.fixture
def obs_data(monkeypatch: pytest.MonkeyPatch) -> Path:
    """SLOTH_DATA_DIR set to the reference data; skip if the three files are absent."""
    if not all(f.is_file() for f in OBS_FILES):
        pytest.skip(f"Observational Scaling Laws files not found under {SHARED_DATA}")
    monkeypatch.setenv("SLOTH_DATA_DIR", str(SHARED_DATA))
    return SHARED_DATA


def _load(**kwargs: object):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the committed map covers every family: no warning
        return load_obsscaling(download=False, **kwargs)


# ------------------------------------------------------------------- the real files


def test_registry_knows_the_three_files() -> None:
    for name in (OBS_BASE_FILE, OBS_V2_FILE, OBS_INSTRUCT_FILE):
        assert "4d6e1e43fd2635d04654aa77d1df9d5266ea0382" in DATA_FILES[name].url
    assert DATA_FILES[OBS_INSTRUCT_FILE].sha256.startswith("9bc50f32")


def test_real_counts(obs_data: Path) -> None:
    table = _load()
    assert (table.n_models, len(table.families), table.n_scores) == (143, 61, 1183)
    assert int(table.extra_covariates["instruct"].sum()) == 20
    reasons = table.skipped["reason"].value_counts().to_dict()
    assert reasons == {"missing training tokens": 26,
                       "missing parameter count and missing training tokens": 6}
    assert {"gpt-4-0613", "claude-2.0", "Qwen/Qwen2-7B"} <= set(table.skipped["model"])
    raw = pd.read_csv(obs_data / OBS_BASE_FILE)
    assert (len(raw), raw["Model Family"].nunique()) == (148, 47)
    assert table.benchmarks == ("MMLU", "ARC", "HellaSwag", "Winogrande", "TruthfulQA",
                                "GSM8K", "IFEval", "BBH", "MATH Lvl 5", "GPQA", "MUSR",
                                "MMLU-PRO")
    v2 = _load(benchmarks="v2")
    assert (v2.n_models, v2.n_scores) == (55, 330)  # the v2 file's 72, less 17 without tokens


def test_units_scores_and_instruct(obs_data: Path) -> None:
    table = _load(benchmarks=["ARC", "Winogrande", "BBH", "HumanEval"])
    i = table.models.index("meta-llama/Llama-2-7b-hf")
    assert table.params[i] == 7e9 and table.tokens[i] == 2e12
    assert table.family[i] == "llama-2"
    assert table.extra_covariates["instruct"][i] == 0.0
    row = dict(zip(table.benchmarks, table.scores[i], strict=True))
    assert row["ARC"] == pytest.approx(0.5307167235494881)  # the file's ARC-C
    assert row["Winogrande"] == pytest.approx(0.7403314917127072)  # the file's Winograd
    assert row["BBH"] == pytest.approx(0.34750911300121506)  # leaderboard_bbh, v2 file
    j = table.models.index("llama-2-7b-chat")
    assert table.extra_covariates["instruct"][j] == 1.0
    assert table.family[j] == "llama-2-chat"
    k = table.models.index("cerebras/Cerebras-GPT-111M")
    assert table.params[k] == pytest.approx(1.11e8) and table.tokens[k] == pytest.approx(2.22e9)


def test_corrections(obs_data: Path) -> None:
    fixed, raw = _load(), _load(corrections=False)
    for name, params, tokens in [("cerebras/btlm-3b-8k-base", 3e9, 0.627e12),
                                 ("openlm-research/open_llama_7b_v2", 7e9, 1e12),
                                 ("vicuna-33b-v1.3", 33e9, 1.4e12)]:
        i = fixed.models.index(name)
        assert (fixed.params[i], fixed.tokens[i]) == pytest.approx((params, tokens))
    assert raw.tokens[raw.models.index("cerebras/btlm-3b-8k-base")] == pytest.approx(627e12)
    assert raw.params[raw.models.index("openlm-research/open_llama_7b_v2")] == 13e9


def test_families_agree_with_the_leaderboard(obs_data: Path) -> None:
    if not LEADERBOARD.is_file():
        pytest.skip("leaderboard file absent")
    lb = pd.read_csv(LEADERBOARD)
    lb_family = dict(zip(lb["Model"], lb["Family2"], strict=True))
    frame = obsscaling_frame(download=False)
    shared = frame[frame["model"].map(normalise_model_name).isin(lb_family)]
    assert len(shared) == 116
    expected = shared["model"].map(normalise_model_name).map(lb_family)
    assert (shared["family"] == expected).all(), shared.loc[shared["family"] != expected]
    table = _load()
    family = dict(zip(table.models, table.family, strict=True))
    assert family["meta-llama/Meta-Llama-3.1-8B"] == "meta-llama-3.1"
    assert family["tiiuae/falcon-rw-1b"] == "falcon-rw"
    assert family["tiiuae/falcon-7b"] == "falcon"
    assert family["EleutherAI/pythia-1b-deduped"] == "pythia-deduped"
    assert family["allenai/OLMo-7B-0424-hf"] == "olmo-0424"
    assert {family[f"h2oai/{m}"] for m in ("h2o-danube-1.8b-base", "h2o-danube2-1.8b-base",
                                           "h2o-danube3-4b-base")} == {
        "h2o-danube-base", "h2o-danube2-base", "h2o-danube3-base"}


def test_family_map_has_no_stale_rows(obs_data: Path) -> None:
    mapping = read_family_map()
    files = pd.concat([pd.read_csv(obs_data / OBS_BASE_FILE),
                       pd.read_csv(obs_data / OBS_INSTRUCT_FILE)])
    assert set(mapping["obsscaling_family"]) == set(files["Model Family"])
    named = mapping.loc[mapping["model"] != "", "model"]
    assert set(named) <= set(files["Model"])
    assert set(mapping["leaderboard_family"]).issuperset(_load().families)


def test_normalise_model_name() -> None:
    assert normalise_model_name("meta-llama/Llama-2-7b-hf") == "llama-2-7b"
    assert normalise_model_name("llama-2-7b") == "llama-2-7b"
    assert normalise_model_name("EleutherAI/pythia-1b-deduped") == "pythia-1b-deduped"


# --------------------------------------------------------------- simulated files


@pytest.fixture
def simulated(tmp_path: Path) -> tuple[object, dict[str, Path], pd.DataFrame]:
    """A simulated table written as the three files, and a family map for it."""
    table, _ = simulate_leaderboard(n_families=5, models_per_family=(3, 3), seed=3)
    instruct = np.array([m.endswith("-m2") for m in table.models])
    files = {}
    for kind, frame in render_obsscaling(table, instruct).items():
        files[kind] = tmp_path / f"{kind}.csv"
        frame.to_csv(files[kind], index=False)
    fams = list(table.families)
    family_map = pd.DataFrame({"obsscaling_family": fams, "model": "",
                               "leaderboard_family": [f"lb-{f}" for f in fams], "note": ""})
    return table, files, family_map


def _load_files(files: dict[str, Path], **kwargs: object):
    return load_obsscaling(files["base"], v2_path=files["v2"], instruct_path=files["instruct"],
                           download=False, **kwargs)


def test_simulated_round_trip(simulated: tuple) -> None:
    table, files, family_map = simulated
    header = pd.read_csv(files["base"], nrows=0).columns.tolist()
    assert header[:5] == ["Model", "Model Family", "Model Size (B)",
                          "Pretraining Data Size (T)", "FLOPs (1E21)"]
    assert "ARC-C" in header and "Winograd" in header and "leaderboard_bbh" not in header
    assert "leaderboard_bbh" in pd.read_csv(files["v2"], nrows=0).columns
    loaded = _load_files(files, family_map=family_map)
    assert sorted(loaded.models) == sorted(table.models)
    order = [table.models.index(m) for m in loaded.models]
    np.testing.assert_allclose(loaded.params, table.params[order], rtol=1e-12)
    np.testing.assert_allclose(loaded.tokens, table.tokens[order], rtol=1e-12)
    assert loaded.benchmarks == table.benchmarks
    instruct = loaded.extra_covariates["instruct"]
    expected = table.scores[order]
    expected[np.ix_(instruct == 1, np.arange(6, 12))] = np.nan  # no v2 in the instruct file
    np.testing.assert_allclose(loaded.scores, expected, rtol=1e-12)
    assert instruct.sum() == 5
    assert all((m.endswith("-m2")) == bool(f) for m, f in zip(loaded.models, instruct,
                                                               strict=True))
    assert set(loaded.families) == {f"lb-{f}" for f in table.families}


def test_model_rows_of_the_map_win(simulated: tuple) -> None:
    _, files, family_map = simulated
    special = pd.DataFrame({"obsscaling_family": ["fam00"], "model": ["fam00-m1"],
                            "leaderboard_family": ["special"], "note": [""]})
    loaded = _load_files(files, family_map=pd.concat([family_map, special]))
    family = dict(zip(loaded.models, loaded.family, strict=True))
    assert family["fam00-m1"] == "special" and family["fam00-m0"] == "lb-fam00"


def test_unmapped_family_warns_and_is_lower_cased(simulated: tuple) -> None:
    _, files, family_map = simulated
    with pytest.warns(UserWarning, match=r"no row for family.*'fam04'"):
        loaded = _load_files(files, family_map=family_map.iloc[:4])
    assert "fam04" in loaded.families


def test_missing_column_names_the_file(simulated: tuple, tmp_path: Path) -> None:
    _, files, family_map = simulated
    bad = pd.read_csv(files["base"]).drop(columns=["Pretraining Data Size (T)"])
    with pytest.raises(DataValidationError, match=r"base file.*'Pretraining Data Size"):
        load_obsscaling(bad, v2_path=files["v2"], instruct_path=files["instruct"],
                        family_map=family_map, download=False)


def test_model_in_base_and_instruct_raises(simulated: tuple) -> None:
    _, files, family_map = simulated
    base = pd.read_csv(files["base"])
    with pytest.raises(DataValidationError, match=r"fam00-m0.*more than once"):
        load_obsscaling(base, v2_path=files["v2"], instruct_path=base.iloc[:1],
                        family_map=family_map, download=False)


def test_stale_correction_warns(simulated: tuple) -> None:
    _, files, family_map = simulated
    fixes = pd.DataFrame({"model": ["fam00-m0"], "column": ["Model Size (B)"],
                          "file_value": [123.0], "value": [1.0], "note": [""]})
    with pytest.warns(UserWarning, match="not applied"):
        loaded = _load_files(files, family_map=family_map, corrections=fixes)
    fixes["file_value"] = pd.read_csv(files["base"])["Model Size (B)"].iloc[0]
    fixed = _load_files(files, family_map=family_map, corrections=fixes)
    i = fixed.models.index("fam00-m0")
    assert fixed.params[i] == 1e9 and loaded.params[i] != 1e9


def test_family_map_validation(tmp_path: Path) -> None:
    twice = pd.DataFrame({"obsscaling_family": ["A", "A"], "model": ["", ""],
                          "leaderboard_family": ["a", "b"], "note": ["", ""]})
    with pytest.raises(DataValidationError, match="more than once"):
        read_family_map(twice)
    with pytest.raises(DataValidationError, match="lacks column"):
        read_family_map(twice.drop(columns=["leaderboard_family"]))
