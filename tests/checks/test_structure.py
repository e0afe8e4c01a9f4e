"""Structural identifiability checks (before sampling) on simulated leaderboards."""

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest

from sloth.checks.structure import (
    Finding,
    StructuralThresholds,
    auto_skills,
    benchmark_signal,
    check_structure,
    ledermann_max_skills,
)
from sloth.exceptions import IdentifiabilityError, IdentifiabilityWarning
from sloth.model.simulate import simulate_leaderboard


@pytest.fixture(scope="module")
def well_posed():
    table, _ = simulate_leaderboard(n_families=20, n_skills=2, n_benchmarks=8, seed=1)
    return table


def _noise_column(table, name, seed=0):
    """The table with benchmark ``name`` replaced by noise around a constant (loads on
    nothing), on the same observed cells."""
    j = table.benchmarks.index(name)
    scores = table.scores.copy()
    observed = ~np.isnan(scores[:, j])
    rng = np.random.default_rng(seed)
    scores[observed, j] = 0.45 + rng.normal(0.0, 0.02, observed.sum())
    return replace(table, scores=scores)


def test_well_posed_simulation_passes_clean(well_posed):
    report = check_structure(well_posed, 2, anchors=["MMLU", "ARC"])
    assert report.passed
    assert report.errors == [] and report.warnings == []
    checks = {f.check for f in report.findings}
    assert checks == {"design_rank", "benchmark_coverage", "benchmarks_per_skill", "n_families",
                      "family_coverage", "anchors", "benchmark_signal"}
    assert report.raise_if_errors() is report
    assert check_structure(well_posed, 1, anchors=["MMLU"]).passed


@pytest.mark.parametrize(("n_benchmarks", "max_skills"), [(2, 0), (3, 1), (4, 1), (5, 2),
                                                          (6, 3), (8, 4), (12, 7)])
def test_ledermann_bound(n_benchmarks, max_skills):
    assert ledermann_max_skills(n_benchmarks) == max_skills


def test_too_many_skills_for_the_benchmarks():
    table, _ = simulate_leaderboard(n_families=20, n_skills=2, n_benchmarks=5, seed=2)
    report = check_structure(table, 3)
    assert not report.passed
    assert report.severity_of("benchmarks_per_skill") == "error"
    [finding] = report.by_check("benchmarks_per_skill")
    assert "n_skills <= 2" in finding.message and "6" in finding.message
    assert finding.details["max_skills"] == 2
    # every other check is fine: the error is attributed to the right check
    assert {f.check for f in report.errors} == {"benchmarks_per_skill"}
    assert check_structure(table, 2).passed


def test_too_few_families():
    table, _ = simulate_leaderboard(n_families=3, n_skills=2, n_benchmarks=8, seed=3)
    report = check_structure(table, 2)
    assert {f.check for f in report.errors} == {"n_families"}
    assert "add families" in report.errors[0].message
    # a handful of families is only a warning
    table6, _ = simulate_leaderboard(n_families=6, n_skills=2, n_benchmarks=8, seed=3)
    report6 = check_structure(table6, 2)
    assert report6.passed and report6.severity_of("n_families") == "warning"


def test_benchmark_never_observed(well_posed):
    scores = well_posed.scores.copy()
    scores[:, well_posed.benchmarks.index("BBH")] = np.nan
    report = check_structure(replace(well_posed, scores=scores), 2)
    assert {f.check for f in report.errors} == {"benchmark_coverage"}
    [error] = report.errors
    assert "'BBH'" in error.message and "drop" in error.message
    assert error.details["never_observed"] == ["BBH"]
    # the usable benchmarks shrink by one
    [bound] = report.by_check("benchmarks_per_skill")
    assert bound.details["usable_benchmarks"] == 7


def test_barely_observed_benchmark_warns_and_anchor_errors(well_posed):
    scores = well_posed.scores.copy()
    j = well_posed.benchmarks.index("GSM8K")
    scores[5:, j] = np.nan
    table = replace(well_posed, scores=scores)
    report = check_structure(table, 2)
    assert report.passed and report.severity_of("benchmark_coverage") == "warning"
    anchored = check_structure(table, 2, anchors=["GSM8K", "ARC"])
    assert anchored.severity_of("anchors") == "error"
    assert any("'GSM8K'" in f.message for f in anchored.errors)


def test_anchor_that_loads_on_nothing(well_posed):
    table = _noise_column(well_posed, "TruthfulQA")
    signal = benchmark_signal(table, 2)
    j = table.benchmarks.index("TruthfulQA")
    assert signal[j] < 0.1
    assert np.all(np.delete(signal, j) > 0.5)
    report = check_structure(table, 2, anchors=["TruthfulQA", "ARC"])
    assert {f.check for f in report.errors} == {"anchors"}
    [error] = report.errors
    assert "'TruthfulQA'" in error.message and "load on no skill" in error.message
    assert "TruthfulQA" not in error.message.split("e.g.")[1]  # the suggested fix differs
    # not an anchor: only a warning that it adds noise
    plain = check_structure(table, 2)
    assert plain.passed and plain.severity_of("benchmark_signal") == "warning"
    assert plain.by_check("benchmark_signal")[0].details["silent"] == ["TruthfulQA"]


@pytest.mark.parametrize(
    ("anchors", "message"),
    [(["MMLU"], "one benchmark per skill"), (["MMLU", "MMLU"], "distinct"),
     (["MMLU", "NoSuchBench"], "NoSuchBench")],
)
def test_invalid_anchors_are_errors(well_posed, anchors, message):
    report = check_structure(well_posed, 2, anchors=anchors)
    assert report.severity_of("anchors") == "error"
    assert message in report.by_check("anchors")[0].message


def test_redundant_anchors_warn(well_posed):
    # two benchmarks driven by the same skill, one a near copy of the other
    j, k = well_posed.benchmarks.index("MMLU"), well_posed.benchmarks.index("Winogrande")
    scores = well_posed.scores.copy()
    rng = np.random.default_rng(0)
    scores[:, k] = np.clip(scores[:, j] + rng.normal(0, 0.003, len(scores)), 0, 1)
    report = check_structure(replace(well_posed, scores=scores), 2,
                             anchors=["MMLU", "Winogrande"])
    assert report.severity_of("anchors") == "warning"
    assert "barely distinct" in report.by_check("anchors")[0].message


def test_tokens_constant_within_every_family_is_flagged(well_posed):
    fam = well_posed.family_index
    budget = np.array([well_posed.tokens[fam == f][0] for f in range(fam.max() + 1)])
    table = replace(well_posed, tokens=budget[fam])
    report = check_structure(table, 2)
    [finding] = report.by_check("design_rank")
    assert finding.severity == "warning"
    assert finding.details["between_only"] == ["log_tokens"]
    # with too few families to compare, the slope is not identified at all
    few = table.subset(models=np.isin(fam, [0, 1]))
    assert check_structure(few, 1).severity_of("design_rank") == "error"


def test_constant_or_missing_extra_covariate_is_an_error(well_posed):
    table = replace(well_posed, extra_covariates={"instruct": np.zeros(well_posed.n_models)})
    report = check_structure(table, 2, extra_covariates=["instruct"])
    [finding] = report.by_check("design_rank")
    assert finding.severity == "error" and finding.details["constant"] == ["instruct"]
    missing = check_structure(well_posed, 2, extra_covariates=["size_class"])
    assert missing.severity_of("design_rank") == "error"
    assert "size_class" in missing.errors[0].message


def test_raise_if_errors_and_warnings(well_posed):
    table, _ = simulate_leaderboard(n_families=3, n_skills=2, n_benchmarks=8, seed=3)
    with pytest.raises(IdentifiabilityError, match="n_families") as info:
        check_structure(table, 2).raise_if_errors()
    assert "add families" in str(info.value)
    few, _ = simulate_leaderboard(n_families=6, n_skills=1, n_benchmarks=6, seed=3)
    with pytest.warns(IdentifiabilityWarning, match="n_families") as record:
        check_structure(few, 1).raise_if_errors()
    assert {w.filename for w in record} == {__file__}  # the caller's line, not sloth's
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_structure(few, 1).raise_if_errors(warn=False)


def test_report_serializes_and_formats(well_posed):
    report = check_structure(well_posed, 3, anchors=["MMLU", "ARC", "NoSuch"])
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["passed"] is False and data["n_errors"] == len(report.errors) >= 1
    assert {f["check"] for f in data["findings"]} >= {"design_rank", "anchors"}
    text = report.format()
    assert "FAILED" in text and "[ERROR] anchors" in text
    assert len(text.splitlines()) == 1 + len(report.findings)


def test_thresholds_and_input_validation(well_posed):
    strict = StructuralThresholds(min_families=50)
    assert check_structure(well_posed, 2, thresholds=strict).severity_of("n_families") == (
        "warning")
    with pytest.raises(TypeError, match="ScoreTable"):
        check_structure(well_posed.to_frame(), 2)
    with pytest.raises(ValueError, match="n_skills"):
        check_structure(well_posed, 0)
    with pytest.raises(ValueError, match="severity"):
        Finding("x", "fatal", "message")


def test_skills_at_the_ledermann_bound_warn():
    # six benchmarks and three skills: (6 - 3)^2 == 6 + 3, zero degrees of freedom
    table, _ = simulate_leaderboard(n_families=20, n_skills=2, n_benchmarks=6, seed=2)
    report = check_structure(table, 3)
    assert report.passed and report.severity_of("benchmarks_per_skill") == "warning"
    [finding] = report.by_check("benchmarks_per_skill")
    assert "n_skills <= 2" in finding.message and finding.details["degrees_of_freedom"] == 0
    # one skill fewer, or one benchmark more, is clean
    assert check_structure(table, 2).severity_of("benchmarks_per_skill") == "ok"
    table7, _ = simulate_leaderboard(n_families=20, n_skills=2, n_benchmarks=7, seed=2)
    assert check_structure(table7, 3).severity_of("benchmarks_per_skill") == "ok"


@pytest.mark.parametrize(("n_benchmarks", "strict_max", "auto"),
                         [(3, 0, 1), (4, 1, 1), (5, 2, 2), (6, 2, 2), (7, 3, 3), (12, 7, 3)])
def test_auto_skills_leave_a_degree_of_freedom(n_benchmarks, strict_max, auto):
    """'auto' takes three skills, or fewer where they would be just identified (six
    benchmarks: (6 - 3)^2 = 6 + 3)."""
    assert ledermann_max_skills(n_benchmarks, strict=True) == strict_max
    assert ledermann_max_skills(n_benchmarks, strict=True) <= ledermann_max_skills(n_benchmarks)
    assert auto_skills(n_benchmarks) == auto
    assert auto_skills(12, most=2) == 2
