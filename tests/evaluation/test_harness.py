"""The leave-one-family-out harness: splits files, tasks, metrics, methods and the CLI."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sloth.cli.main import main
from sloth.evaluation.harness import (
    INTERVALS,
    Forecaster,
    baseline_forecaster,
    crps_from_draws,
    evaluate,
    format_summary,
    pit_from_draws,
    pit_histogram,
    reference_table,
    sloth_forecaster,
    summarize,
)
from sloth.evaluation.protocol import load_protocol, split_tasks
from sloth.exceptions import DataValidationError
from sloth.model.simulate import simulate_leaderboard

PROTOCOLS = Path(__file__).resolve().parents[3] / "shared" / "protocols"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def simulated():
    table, truth = simulate_leaderboard(n_families=24, n_benchmarks=8, n_skills=2, seed=3,
                                        missing_fraction=0.05, models_per_family=(3, 5))
    groups = [["fam00"], ["fam01", "fam02"], ["fam05"]]
    raw = {
        "benchmark_groups": {"sim": list(table.benchmarks)},
        "splits": [{"benchmarks": "sim", "observed_models_per_test_family": 1,
                    "test_families": groups}],
    }
    return table, truth, raw


def _write(tmp_path, raw) -> Path:
    path = tmp_path / "splits.json"
    path.write_text(json.dumps(raw))
    return path


def test_tasks_follow_the_protocol(simulated, tmp_path):
    table, _, raw = simulated
    protocol = load_protocol(_write(tmp_path, raw))
    split = protocol.splits[0]
    tasks = list(split_tasks(split, table))
    complete = table.observed.all(axis=1)
    # groups with no complete model beyond the k smallest are skipped
    expected = [tuple(g) for g in split.test_families
                if sum(complete[i] for i, f in enumerate(table.family) if f in g) > len(g)]
    assert [t.group for t in tasks] == expected and len(expected) >= 2
    for task in tasks:
        members = [i for i, f in enumerate(table.family) if f in task.group and complete[i]]
        # the k smallest complete models of each held-out family stay in training
        for family in task.group:
            sizes = sorted((table.params[i], table.models[i]) for i in members
                           if table.family[i] == family)
            assert list(task.observed[task.observed.family == family].model) == [sizes[0][1]]
        assert len(task.test) + len(task.observed) == len(members)
        train = task.training_table(include_observed=True)
        assert not set(task.test.model) & set(train.models)
        assert set(task.observed.model) <= set(train.models)
        assert train.observed.all()  # incomplete rows dropped
        assert not set(task.observed.model) & set(task.training_table(False).models)
    zero = list(split_tasks(split, table, zero_shot=True))
    assert all(t.k == 0 for t in zero)
    assert [list(t.test.model) for t in zero] == [list(t.test.model) for t in tasks]
    assert not set(zero[0].observed.model) & set(zero[0].training_table(True).models)


@pytest.mark.parametrize("mutate, match", [
    (lambda r: r.pop("splits"), "splits"),
    (lambda r: r["splits"][0].update(benchmarks="v9"), "v9"),
    (lambda r: r["splits"][0].update(observed_models_per_test_family=-1), ">= 0"),
    (lambda r: r["splits"][0].update(test_families=["fam00"]), "test_families"),
    (lambda r: r.update(guessing_floors={"MMLU": 2}), "guessing_floors"),
])
def test_bad_splits_files_are_named(simulated, tmp_path, mutate, match):
    raw = json.loads(json.dumps(simulated[2]))
    mutate(raw)
    with pytest.raises(DataValidationError, match=match):
        load_protocol(_write(tmp_path, raw))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataValidationError, match="not valid JSON"):
        load_protocol(tmp_path / "bad.json")


def test_crps_matches_its_definition_and_a_normal_closed_form():
    rng = np.random.default_rng(0)
    draws = rng.normal(0.3, 0.1, size=(400, 3))
    y = np.array([0.3, 0.5, 0.1])
    brute = (np.abs(draws - y).mean(axis=0)
             - 0.5 * np.abs(draws[:, None, :] - draws[None, :, :]).mean(axis=(0, 1)))
    np.testing.assert_allclose(crps_from_draws(draws, y), brute, rtol=1e-10)
    from scipy.stats import norm

    z = (y - 0.3) / 0.1
    exact = 0.1 * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))
    many = np.random.default_rng(1).normal(0.3, 0.1, size=(20000, 3))
    np.testing.assert_allclose(crps_from_draws(many, y), exact, rtol=0.03)


def test_pit_is_the_share_of_draws_below_with_ties_spread_uniformly():
    rng = np.random.default_rng(0)
    draws = rng.normal(0.5, 0.1, size=(1000, 4))
    pit = pit_from_draws(draws, np.array([-1.0, 2.0, 0.5, np.nan]))
    assert pit[0] == 0.0 and pit[1] == 1.0  # below every draw, above every draw
    assert pit[2] == pytest.approx((draws[:, 2] < 0.5).mean())
    assert np.isnan(pit[3])
    # an atom: 40% of the draws at 0 (a score clipped at its floor), observed 0: the PIT is
    # spread uniformly over [0, 0.4], not piled at one value
    atom = np.where(rng.uniform(size=(1000, 3000)) < 0.4, 0.0, rng.uniform(0.01, 1, (1000, 3000)))
    tied = pit_from_draws(atom, np.zeros(3000))
    share = (atom == 0).mean(axis=0)
    assert np.all((tied >= 0) & (tied <= share))
    from scipy.stats import kstest

    assert kstest(tied / share, "uniform").pvalue > 1e-3
    np.testing.assert_array_equal(tied, pit_from_draws(atom, np.zeros(3000)))  # seeded
    with pytest.raises(ValueError, match="shaped"):
        pit_from_draws(draws, np.zeros(3))


def test_pit_histogram_band_holds_a_uniform_histogram_at_its_level():
    rng = np.random.default_rng(1)
    outside = [pit_histogram(rng.uniform(size=500), bins=10, level=0.99).outside
               for _ in range(1000)]
    # pointwise 99% band, 10 bins: about 0.1 bins outside per histogram (a binomial band
    # is conservative: its coverage is at least the level)
    assert np.mean(outside) < 0.15
    hist = pit_histogram(rng.uniform(size=500), bins=10, level=0.99)
    assert hist.lower < 1 < hist.upper and hist.density.shape == (10,)
    assert hist.density.mean() == pytest.approx(1.0) and hist.n == 500
    wide = pit_histogram(rng.uniform(size=500), bins=10, level=0.5)
    assert hist.lower < wide.lower < wide.upper < hist.upper
    with pytest.raises(ValueError, match="pit"):
        pit_histogram(np.full(3, np.nan))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pit_histogram(np.array([0.2, 1.5]))


def _gaussian_forecaster(name: str, scale: float, draws: int = 2000) -> Forecaster:
    """A forecaster whose predictive is normal with sd 0.05 * scale around a centre drawn
    from N(observed, 0.05^2): the observation is a draw from its predictive when scale is 1
    (calibrated), intervals too narrow when scale < 1 (overconfident)."""
    sd = 0.05
    rng = np.random.default_rng(7)

    def run(task):
        observed = task.test[list(task.table.benchmarks)].to_numpy(dtype=float)
        centre = observed + sd * rng.standard_normal(observed.shape)
        return centre + scale * sd * rng.standard_normal((draws, *observed.shape)), 0.0, None

    return Forecaster(name, run)


def test_calibration_at_every_level_of_a_calibrated_and_an_overconfident_forecaster(
        simulated, tmp_path):
    from scipy.stats import kstest

    table, _, raw = simulated
    families = sorted(set(table.family))
    raw = {**raw, "splits": [{**raw["splits"][0], "test_families": [[f] for f in families]}]}
    protocol = load_protocol(_write(tmp_path, raw))
    methods = [_gaussian_forecaster("calibrated", 1.0),
               _gaussian_forecaster("overconfident", 0.4)]
    out = evaluate(protocol, lambda b: table, methods, also_zero_shot=True, progress=False)
    n = (out.method == "calibrated").sum()
    assert n > 500  # k = 1 and zero-shot tasks of 24 held-out families
    # bounds nested around the median; the flags are the bounds' verdicts
    order = ["q025", "q05", "q10", "q25", "median", "q75", "q90", "q95", "q975"]
    assert (np.diff(out[order].to_numpy(), axis=1) >= 0).all()
    for level, (low, high) in INTERVALS.items():
        inside = (out.observed >= out[low]) & (out.observed <= out[high])
        assert (out[f"covered{level}"] == inside).all()
    summary = summarize(out)
    for name in ("settings", "overall"):
        assert {f"coverage{level}" for level in (50, 80, 90, 95)} <= set(summary[name])
    overall = summary["overall"].set_index("method")
    good, bad = out[out.method == "calibrated"], out[out.method == "overconfident"]
    for level in INTERVALS:
        nominal = level / 100
        assert abs(overall.loc["calibrated", f"coverage{level}"] - nominal) < (
            4 * np.sqrt(nominal * (1 - nominal) / n))
        assert overall.loc["overconfident", f"coverage{level}"] < nominal - 0.1
    settings = summary["settings"].set_index(["method", "observed_models_per_test_family"])
    assert (settings.loc["overconfident", "coverage90"]
            < settings.loc["calibrated", "coverage90"]).all()
    assert kstest(good.pit, "uniform").pvalue > 1e-3
    assert pit_histogram(good.pit).outside <= 1
    u_shape = pit_histogram(bad.pit)
    assert u_shape.density[0] > u_shape.upper and u_shape.density[-1] > u_shape.upper
    assert (u_shape.density[3:7] < u_shape.lower).all()


def test_summary_averages_within_groups_first():
    rows = []
    # group a: 1 model x 2 benchmarks, errors 0.1; group b: 3 models x 2 benchmarks, 0.0
    for group, n, err in (("a", 1, 0.1), ("b", 3, 0.0)):
        for i in range(n):
            for bench in ("X", "Y"):
                rows.append({"benchmarks": "s", "observed_models_per_test_family": 1,
                             "test_families": group, "model": f"{group}{i}",
                             "benchmark": bench, "observed": 0.5, "mean": 0.5 + err,
                             "q05": 0.45 + err, "q95": 0.55 + err, "crps": err, "method": "m",
                             "split_k": 1, "fit_seconds": 1.0})
    summary = summarize(pd.DataFrame(rows))
    setting = summary["settings"].iloc[0]
    assert setting.family_mae == pytest.approx(0.05)  # (0.1 + 0) / 2 groups
    assert setting.score_mae == pytest.approx(0.1 * 2 / 8)  # pooled over scores
    assert setting.coverage90 == pytest.approx(6 / 8)
    assert summary["overall"].iloc[0].family_mae == pytest.approx(0.05)
    # rows of a file written before every level was kept: the 90% level only, the others
    # unknown (not 0) and written as such
    for table in ("settings", "overall"):
        assert summary[table][["coverage50", "coverage80", "coverage95"]].isna().to_numpy().all()
        assert summary[table].coverage90.iloc[0] == pytest.approx(6 / 8)
    assert "n/a" in format_summary(summary)


def test_sloth_and_baselines_in_one_run(simulated, tmp_path):
    """One fit per group serves the k-shot and zero-shot forecasts; observing a model
    helps, and sloth's intervals are calibrated where the baseline's are not."""
    table, _, raw = simulated
    protocol = load_protocol(_write(tmp_path, raw))
    fast = {"n_skills": 2, "num_chains": 2, "num_warmup": 150, "num_samples": 150,
            "map_starts": 1, "link": "logistic"}
    methods = [sloth_forecaster(fast, conditioning="forecast"),
               baseline_forecaster("per_benchmark_flops_sigmoid_family_intercept")]
    seen = []
    out = evaluate(protocol, lambda b: table, methods, also_zero_shot=True,
                   groups=["fam00", "fam01+fam02"], progress=False, on_task=seen.append)
    assert len(seen) == 4  # 2 groups x (k = 1, zero-shot)
    assert set(out.observed_models_per_test_family) == {0, 1}
    assert set(out.test_families) == {"fam00", "fam01+fam02"}
    # the k = 1 and zero-shot tasks of a group share one sloth fit
    sloth = out[out.method == "sloth"]
    assert sloth.groupby("test_families").fit_seconds.nunique().max() == 1
    summary = summarize(out)["settings"].set_index(["method", "observed_models_per_test_family"])
    assert summary.loc[("sloth", 1), "family_mae"] < summary.loc[("sloth", 0), "family_mae"]
    base = "per_benchmark_flops_sigmoid_family_intercept"
    assert summary.loc[("sloth", 1), "family_mae"] < 0.06
    assert summary.loc[("sloth", 1), "family_mae"] < 1.15 * summary.loc[(base, 1), "family_mae"]
    assert 0.8 <= summary.loc[("sloth", 1), "coverage90"] <= 1.0
    levels = summary.loc[("sloth", 1), ["coverage50", "coverage80", "coverage90", "coverage95"]]
    assert levels.is_monotonic_increasing and out.pit.between(0, 1).all()
    assert (out.q05 <= out["mean"]).all() and (out["mean"] <= out.q95).all()
    # observed values are the table's scores
    index = {m: i for i, m in enumerate(table.models)}
    j = {b: i for i, b in enumerate(table.benchmarks)}
    expected = [table.scores[index[m], j[b]] for m, b in zip(out.model, out.benchmark, strict=True)]
    np.testing.assert_allclose(out.observed, expected)


@pytest.mark.skipif(not (PROTOCOLS / "sloth-paper-splits.json").is_file(),
                    reason="protocol files not found")
def test_cli_runs_the_paper_protocol_with_baselines(tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    code = main(["evaluate", "--splits", str(PROTOCOLS / "sloth-paper-splits.json"),
                 "--out", str(out), "--benchmarks", "all", "--k", "1",
                 "--groups", "bloom,olmo,opt", "--methods",
                 "per_benchmark_flops_sigmoid_family_intercept,pca_observational_d3",
                 "--reference", str(PROTOCOLS / "sloth-paper-reported-mae.csv"), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    frame = pd.read_csv(out)
    assert list(frame.columns[:9]) == ["benchmarks", "observed_models_per_test_family",
                                       "test_families", "model", "benchmark", "observed",
                                       "mean", "q05", "q95"]
    assert set(frame.test_families) == {"bloom", "olmo", "opt"}
    assert frame.benchmark.nunique() == 12 and frame.observed.notna().all()
    reference = pd.read_csv(PROTOCOLS / "sloth-paper-reported-mae.csv")
    ours = reference_table(reference, frame)
    assert len(summary["reference"]) == 1
    # the same held-out models as the reference: identical counts per group
    counts = frame[frame.method == "pca_observational_d3"].groupby("test_families").model.nunique()
    ref_counts = reference[(reference.benchmarks == "all")
                           & (reference.observed_models_per_test_family == 1)
                           ].groupby("test_families").n_test_models.first()
    for group, n in counts.items():
        assert ref_counts[group] == n
    assert ours.shape[0] == 1
    # bad input: exit 2 with the option named
    assert main(["evaluate", "--splits", str(tmp_path / "none.json"), "--out", str(out)]) == 2
    assert "--splits" in capsys.readouterr().err
    assert main(["evaluate", "--splits", str(PROTOCOLS / "sloth-paper-splits.json"),
                 "--out", str(out), "--methods", "magic"]) == 2
    assert "magic" in capsys.readouterr().err


@pytest.mark.parametrize(("benchmarks", "skills"), [(6, 2), (8, 3)])
def test_auto_skills_are_chosen_per_split(simulated, tmp_path, monkeypatch, benchmarks, skills):
    """The harness fits with SlothModel's own defaults (n_skills='auto', the flexible link
    and the sweep's sampler), and 'auto' becomes a number that depends on the split."""
    import sloth.estimator
    from sloth import defaults
    from sloth.checks.structure import auto_skills

    table, _, raw = simulated
    raw = {**raw, "benchmark_groups": {"sim": list(table.benchmarks[:benchmarks])}}
    protocol = load_protocol(_write(tmp_path, raw))
    seen = []

    class Stop(Exception):
        pass

    class Recorder:
        def __init__(self, **config):
            seen.append(config)

        def fit(self, data, **kwargs):
            raise Stop

    monkeypatch.setattr(sloth.estimator, "SlothModel", Recorder)
    method = sloth_forecaster()
    with pytest.raises(Stop):
        evaluate(protocol, lambda b: table.subset(benchmarks=list(b)), [method],
                 groups=["fam00"], progress=False)
    [config] = seen
    assert "n_skills" not in config and "link" not in config  # the estimator's defaults
    assert {k: config[k] for k in defaults.EVALUATION_SAMPLER} == defaults.EVALUATION_SAMPLER
    assert auto_skills(benchmarks) == skills


def test_cli_accepts_auto_skills_and_names_the_choices(capsys, tmp_path):
    splits = tmp_path / "none.json"
    assert main(["evaluate", "--splits", str(splits), "--out", str(tmp_path / "o.csv"),
                 "--skills", "5"]) == 2
    err = capsys.readouterr().err
    assert "--skills" in err and "'auto'" in err
    # 'auto' parses: the run then stops at the missing splits file, not at --skills
    assert main(["evaluate", "--splits", str(splits), "--out", str(tmp_path / "o.csv"),
                 "--skills", "auto"]) == 2
    err = capsys.readouterr().err
    assert "--splits" in err and "--skills" not in err


@pytest.mark.skipif(not (PROTOCOLS / "sloth-paper-splits.json").is_file(),
                    reason="protocol files not found")
def test_cli_writes_the_pit_figure_and_refuses_to_overwrite_it(tmp_path, capsys):
    figure = tmp_path / "pit.png"

    def run(out, *extra):
        return main(["evaluate", "--splits", str(PROTOCOLS / "sloth-paper-splits.json"),
                     "--out", str(tmp_path / out), "--benchmarks", "all", "--k", "1",
                     "--groups", "bloom,olmo", "--methods",
                     "per_benchmark_flops_sigmoid_family_intercept,pca_observational_d3",
                     "--pit-figure", str(figure), *extra])

    assert run("a.csv", "--json") == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["pit_figure"] == str(figure) and payload["coverage_levels"] == [50, 80, 90, 95]
    for table in ("settings", "overall"):
        assert {"coverage50", "coverage80", "coverage90", "coverage95"} <= set(
            payload[table][0])
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frame = pd.read_csv(tmp_path / "a.csv")
    assert frame.pit.between(0, 1).all()
    assert {"q025", "q975", "covered50", "covered95"} <= set(frame.columns)
    # an existing figure is refused before any work, and left as it was
    before = figure.read_bytes()
    assert run("b.csv") == 2
    err = capsys.readouterr().err
    assert "--pit-figure" in err and "--force" in err
    assert figure.read_bytes() == before and not (tmp_path / "b.csv").exists()
    assert run("b.csv", "--force") == 0
    text = capsys.readouterr().out
    assert "coverage50" in text and "coverage95" in text and f"written to {figure}" in text
    # a format Matplotlib cannot write, or the predictions file itself
    figure = tmp_path / "pit.notaformat"
    assert run("c.csv") == 2
    err = capsys.readouterr().err
    assert "--pit-figure" in err and ".png" in err and not (tmp_path / "c.csv").exists()
    figure = tmp_path / "d.png"
    assert run("d.png") == 2
    assert "--out file" in capsys.readouterr().err


def test_two_benchmark_groups_of_a_complete_table_do_not_share_a_fit(tmp_path):
    """Without missing scores, two benchmark groups train on the same models: each group's
    tasks must be predicted by a fit to its own benchmarks."""
    table, _ = simulate_leaderboard(n_families=12, n_benchmarks=8, n_skills=2, seed=5,
                                    missing_fraction=0.0, models_per_family=(3, 4))
    first, second = list(table.benchmarks[:4]), list(table.benchmarks[4:])
    raw = {"benchmark_groups": {"a": first, "b": second},
           "splits": [{"benchmarks": name, "observed_models_per_test_family": 1,
                       "test_families": [["fam00"]]} for name in ("a", "b")]}
    protocol = load_protocol(_write(tmp_path, raw))
    method = baseline_forecaster("per_benchmark_flops_sigmoid_shared")
    rows = evaluate(protocol, lambda b: table.subset(benchmarks=list(b)), [method],
                    progress=False)
    for name, benchmarks in (("a", first), ("b", second)):
        part = rows[rows.benchmarks == name]
        assert sorted(set(part.benchmark)) == sorted(benchmarks)
        assert part["mean"].notna().all()


def test_extra_training_never_holds_the_held_out_families_of_any_source(tmp_path):
    """A two-source corpus as extra training rows: a task trains on the second source's new
    models (incomplete rows included), but on none of its held-out families' rows from either
    source, none of a family derived from them, and none of its test models under the other
    source's spelling of their names; the test models' scores stay the first source's."""
    from sloth.data.corpus import merge_sources

    table, _ = simulate_leaderboard(n_families=6, n_benchmarks=4, n_skills=2, seed=3,
                                    missing_fraction=0.0, models_per_family=(3, 4))
    benchmarks = list(table.benchmarks)
    frame = table.to_frame()
    donor = frame[frame.family.isin(["fam00", "fam03"])].copy()
    other = pd.concat([
        # fam00's models under the other source's names, a score changed: never trained on
        donor.assign(model="org/" + donor.model.str.upper() + "-hf",
                     **{benchmarks[0]: donor[benchmarks[0]] * 0.5}),
        # new models of the held-out family, of a family derived from it, of another family
        donor.assign(model=donor.model + "-new"),
        donor.assign(model=donor.model + "-rerun",  # fam00's under a name of its own
                     family=donor.family.map({"fam00": "renamed", "fam03": "fam03-rerun"})),
        frame[frame.family == "fam04"].assign(model=lambda f: f.model + "-extra",
                                              **{benchmarks[-1]: np.nan}),
    ], ignore_index=True)
    corpus = merge_sources({"first": table, "other": other}, benchmarks=benchmarks)
    raw = {"benchmark_groups": {"sim": benchmarks},
           "splits": [{"benchmarks": "sim", "observed_models_per_test_family": 1,
                       "test_families": [["fam00"], ["fam01"]]}]}
    protocol = load_protocol(_write(tmp_path, raw))
    seen = {}

    def run(task):
        seen[(task.group, task.k)] = (task.training_table(include_observed=True),
                                      task.training_table(include_observed=False), task.test)
        observed = task.test[benchmarks].to_numpy(dtype=float)
        return np.repeat(observed[None], 10, axis=0), 0.0, None

    rows = evaluate(protocol, lambda b: table, [Forecaster("spy", run)], also_zero_shot=True,
                    progress=False, extra_training=corpus.table,
                    derived_families={"fam00": ["renamed"]})
    assert set(seen) == {(("fam00",), 1), (("fam00",), 0), (("fam01",), 1), (("fam01",), 0)}
    own = frame.set_index("model")
    for (group, k), (with_observed, without, test) in seen.items():
        models = set(with_observed.models)
        families = set(with_observed.family)
        assert group[0] not in set(without.family)
        assert ("renamed" in families) == (group != ("fam00",))
        assert (group[0] in families) == (k == 1)  # only the observed model, from table
        assert not {m for m in models if m.startswith(group[0]) and m not in own.index}
        assert not models & set(test.model)
        assert len(models) == with_observed.n_models  # no model twice
        # the first source's rows of every other family, and its scores
        train = with_observed.to_frame().set_index("model")
        mine = [m for m in models if m in own.index]
        np.testing.assert_allclose(train.loc[mine, benchmarks], own.loc[mine, benchmarks])
        extra = {m for m in models if m not in own.index}
        # the other source's new models: fam03's and its rerun's, fam04's incomplete rows;
        # fam00's and its rerun's (family "renamed") only when fam01 is held out
        expected = ({m + "-new" for m in donor.model if m.startswith("fam03")}
                    | {m + "-extra" for m in frame.model[frame.family == "fam04"]})
        if group == ("fam01",):
            expected |= ({m + "-new" for m in donor.model if m.startswith("fam00")}
                         | {m + "-rerun" for m in donor.model})
        else:
            expected |= {m + "-rerun" for m in donor.model if m.startswith("fam03")}
        assert extra == expected
        assert np.isnan(train.loc[[m for m in extra if m.endswith("-extra")],
                                  benchmarks[-1]]).all()
    # predicted scores: the first source's (the other's shifted copies never used)
    scores = own.loc[rows.model, benchmarks].to_numpy(dtype=float)
    np.testing.assert_allclose(rows.observed, scores[
        np.arange(len(rows)), [benchmarks.index(b) for b in rows.benchmark]])
    # an unmerged source naming fam01's models its own way, under another family: its rows
    # of the split's models are dropped by normalised name (a test model never comes back)
    from sloth.data.obsscaling import normalise_model_name
    from sloth.data.validation import table_from_frame

    fam01 = frame[frame.family == "fam01"]
    unmerged = table_from_frame(pd.concat([other, fam01.assign(
        model="org/" + fam01.model.str.upper() + "-hf", family="mislabelled")]),
        benchmarks=benchmarks, floors=dict(zip(benchmarks, table.floors, strict=True)))
    seen.clear()
    evaluate(protocol, lambda b: table, [Forecaster("spy", run)], progress=False,
             extra_training=unmerged, groups=["fam01"])
    (train, _, test), = seen.values()
    assert "mislabelled" not in set(train.family)
    assert not {normalise_model_name(m) for m in train.models} & set(test.model)
