"""Tests of sloth.data.corpus: several sources merged into one table."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from sloth.data import Corpus, load_corpus, merge_sources, simulate_leaderboard
from sloth.data.table import ScoreTable
from sloth.exceptions import DataValidationError
from tests.data.conftest import LEADERBOARD, SHARED_DATA
from tests.data.test_obsscaling import OBS_FILES

# ----------------------------------------------------------------- simulated sources


@pytest.fixture
def two_sources() -> tuple[ScoreTable, ScoreTable]:
    """Source ``a`` (10 models) and ``b``: 4 of a's models under Hugging Face names, one
    score off by 0.1, one size off by 50 %, a cell a lacks, and 2 models of its own."""
    table, _ = simulate_leaderboard(n_families=4, models_per_family=(3, 3), seed=5)
    a = table.subset(np.arange(10))
    a.scores[0, 1] = np.nan  # a lacks this cell; b holds it
    b = table.subset([0, 1, 2, 3, 10, 11])
    b.scores[1, 0] = b.scores[1, 0] + 0.1 if b.scores[1, 0] < 0.8 else b.scores[1, 0] - 0.1
    b.scores[2, :] = np.where(np.isnan(b.scores[2]), np.nan, b.scores[2] + 0.001)
    b.params[3] *= 1.5
    b = ScoreTable(models=tuple(f"org/{m.upper()}-hf" for m in b.models), family=b.family,
                   params=b.params, tokens=b.tokens, benchmarks=b.benchmarks,
                   floors=b.floors, scores=b.scores)
    return a, b


def _merge(a: ScoreTable, b: ScoreTable, **kwargs: object) -> tuple[Corpus, list[str]]:
    """The merge of ``a`` then ``b``, and the messages of the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        corpus = merge_sources({"a": a, "b": b}, **kwargs)
    return corpus, [str(w.message) for w in caught]


def test_shared_model_is_one_row(two_sources: tuple[ScoreTable, ScoreTable]) -> None:
    a, b = two_sources
    corpus, _ = _merge(a, b)
    table = corpus.table
    assert table.n_models == 12
    assert table.models[:10] == a.models and table.models[10:] == ("fam03-m1", "fam03-m2")
    prov = corpus.provenance.set_index("model")
    assert prov.loc["fam00-m0", "sources"] == "a+b"
    assert prov.loc["fam00-m0", "name_b"] == "org/FAM00-M0-hf"
    assert prov.loc["fam00-m0", "source"] == "a"
    assert prov.loc["fam03-m1", "source"] == "b" and prov.loc["fam03-m1", "name_a"] == ""
    assert list(corpus.source[:10]) == ["a"] * 10
    assert corpus.to_frame()["source"].tolist() == ["a"] * 10 + ["b"] * 2
    assert corpus.report.shared_models == ["fam00-m0", "fam00-m1", "fam00-m2", "fam01-m0"]


def test_disagreeing_score_is_reported_not_averaged(
        two_sources: tuple[ScoreTable, ScoreTable]) -> None:
    a, b = two_sources
    corpus, messages = _merge(a, b)
    assert len(messages) == 2
    assert messages[0].startswith(f"1 of {len(corpus.report.scores)} scores held by two sources")
    bad = corpus.report.disagreements
    assert len(bad) == 1
    row = bad.iloc[0]
    assert (row["model"], row["benchmark"]) == ("fam00-m1", a.benchmarks[0])
    assert row["kept_source"] == "a" and row["other_source"] == "b"
    assert row["difference"] == pytest.approx(b.scores[1, 0] - a.scores[1, 0])
    assert corpus.table.scores[1, 0] == a.scores[1, 0]  # the higher rank's value, unaveraged
    # the 0.001 shift of fam00-m2 is within tolerance: shared, compared, not a disagreement
    small = corpus.report.scores[corpus.report.scores["model"] == "fam00-m2"]
    assert len(small) > 0 and small["difference"].abs().max() == pytest.approx(0.001)
    summary = corpus.report.summary()
    assert summary["disagreeing_scores"] == 1 and summary["shared_models"] == 4
    assert corpus.report.by_benchmark().loc[a.benchmarks[0], "disagreeing"] == 1
    # ranked the other way, b's value is kept
    with pytest.warns(UserWarning):
        flipped = merge_sources({"b": b, "a": a})
    i = flipped.table.models.index("fam00-m1")
    assert flipped.table.scores[i, 0] == b.scores[1, 0]


def test_missing_cell_filled_and_size_disagreement(
        two_sources: tuple[ScoreTable, ScoreTable]) -> None:
    a, b = two_sources
    corpus, messages = _merge(a, b)
    assert "(params 1;" in messages[1]
    assert corpus.table.scores[0, 1] == b.scores[0, 1]
    assert corpus.cell_source[0, 1] == "b" and corpus.cell_source[0, 0] == "a"
    assert corpus.cell_source[10, 0] in ("b", "")
    sizes = corpus.report.attribute_disagreements
    assert sizes[["model", "attribute"]].values.tolist() == [["fam01-m0", "params"]]
    assert corpus.table.params[3] == a.params[3]
    counts = corpus.counts()
    assert counts.loc["b", "models"] == 2 and counts.loc["b", "held_by"] == 6
    assert counts.loc["all", "scores"] == corpus.table.n_scores
    assert counts.loc["a", "scores"] + counts.loc["b", "scores"] == corpus.table.n_scores


def test_tolerance_and_agreeing_sources(two_sources: tuple[ScoreTable, ScoreTable]) -> None:
    a, _ = two_sources
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        corpus = merge_sources({"a": a, "copy": a.subset(np.arange(3))})
    assert corpus.table.n_models == 10 and len(corpus.report.disagreements) == 0
    assert corpus.report.summary()["max_abs_difference"] == 0.0
    np.testing.assert_array_equal(corpus.table.floors, a.floors)


def test_errors(two_sources: tuple[ScoreTable, ScoreTable]) -> None:
    a, _ = two_sources
    with pytest.raises(DataValidationError, match="must be one of 'leaderboard'"):
        load_corpus(("leaderboard", "nope"), download=False)
    with pytest.raises(DataValidationError, match="not in sources"):
        load_corpus(("leaderboard",), options={"obsscaling": {}}, download=False)
    frame = a.to_frame()
    frame.loc[1, "model"] = "Org/FAM00-M0"
    with pytest.raises(DataValidationError, match="more than once when names are normalised"):
        merge_sources({"x": frame})
    with pytest.raises(DataValidationError, match="lacks column"):
        merge_sources({"x": frame.drop(columns=["tokens"])})


# ------------------------------------------------------------------- the real files


@pytest.fixture
def real(monkeypatch: pytest.MonkeyPatch) -> Path:
    if not (LEADERBOARD.is_file() and all(f.is_file() for f in OBS_FILES)):
        pytest.skip(f"reference data not found under {SHARED_DATA}")
    monkeypatch.setenv("SLOTH_DATA_DIR", str(SHARED_DATA))
    return SHARED_DATA


def test_real_corpus(real: Path) -> None:
    with pytest.warns(UserWarning) as caught:
        corpus = load_corpus(download=False)
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("49 of 952 scores held by two sources") for m in messages)
    table = corpus.table
    assert (table.n_models, len(table.families), table.n_scores) == (222, 88, 1917)
    counts = corpus.counts()
    assert counts.loc["leaderboard", "models"] == 178  # 175 + 3 given tokens by obsscaling
    assert counts.loc["obsscaling", "models"] == 44
    assert (corpus.provenance["sources"] == "leaderboard+obsscaling").sum() == 111
    assert table.models.count("llama-2-7b") == 1
    prov = corpus.provenance.set_index("model")
    assert prov.loc["llama-2-7b", "name_obsscaling"] == "meta-llama/Llama-2-7b-hf"
    assert prov.loc["meta-llama-3.1-8b", "source"] == "obsscaling"
    assert prov.loc["codellama-13b-instruct", "tokens_source"] == "obsscaling"
    i = table.models.index("codellama-13b-instruct")
    assert table.tokens[i] == pytest.approx(2.52e12) and table.params[i] == 13e9
    assert table.extra_covariates["instruct"][i] == 1.0
    j = table.models.index("meta-llama-3.1-405b-fp8")
    assert table.params[j] == 405e9 and table.family[j] == "meta-llama-3.1"
    report = corpus.report
    by = report.by_benchmark()
    assert by.loc["IFEval", "disagreeing"] == 48 == by.loc["IFEval", "shared"]
    assert 0.05 < by.loc["IFEval", "median_difference"] < 0.07
    assert by.drop(index=["IFEval", "GSM8K"])["disagreeing"].sum() == 0
    assert set(report.attribute_disagreements["model"]) >= {"stablelm-2-1_6b", "gemma-2-2b"}
    # families of shared models agree once mapped
    assert "family" not in set(report.attribute_disagreements["attribute"])


def test_derived_families_are_corpus_families_of_leaderboard_bases(real: Path) -> None:
    """Every family the committed table derives from a leaderboard family is one the corpus
    adds (not the leaderboard's own: the protocol groups those), and each base is a
    leaderboard family; the fine-tunes of Llama 2 and the reruns of Pythia are among them."""
    from sloth.data.corpus import derived_families

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        corpus = load_corpus(download=False)
    family = np.asarray(corpus.table.family, dtype=object)
    leaderboard = set(family[corpus.source == "leaderboard"])
    derived = derived_families()
    assert set(derived) <= leaderboard
    assert not {f for families in derived.values() for f in families} & leaderboard
    assert {"vicuna-v1.5", "wizardlm-v1.2", "lemur-chat-v1"} <= set(derived["llama-2"])
    assert {"pythia-deduped", "oasst-sft-pythia"} <= set(derived["pythia"])
    with pytest.raises(DataValidationError, match="derived_from"):
        derived_families(corpus.provenance)
