"""The scale-up and compute-cutoff protocols: generated splits, their files and their runs."""

import json

import numpy as np
import pandas as pd
import pytest

from sloth.cli.main import main
from sloth.data.mapping import training_compute
from sloth.evaluation.harness import baseline_forecaster, evaluate, sloth_forecaster, summarize
from sloth.evaluation.protocol import (
    MIN_FAMILY_MODELS,
    Protocol,
    Split,
    compute_cutoff_split,
    family_groups,
    generate_protocol,
    load_protocol,
    scale_up_split,
    split_tasks,
    write_protocol,
)
from sloth.exceptions import DataValidationError
from sloth.model.simulate import simulate_leaderboard

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
BASELINE = "per_benchmark_flops_sigmoid_family_intercept"


@pytest.fixture(scope="module")
def table():
    table, _ = simulate_leaderboard(n_families=24, n_skills=2, seed=4, missing_fraction=0.0,
                                    models_per_family=(1, 6))
    return table


def _compute(frame):
    return training_compute(frame["params"], frame["tokens"])


def _by_family(table):
    frame = table.to_frame()
    return {f: rows.assign(compute=_compute(rows)) for f, rows in frame.groupby("family")}


@pytest.mark.parametrize("k", [1, 2])
def test_scale_up_splits_hold_out_exactly_the_families_that_scale_up_fourfold(table, k):
    groups = [("fam00", "fam01")]
    split = scale_up_split("sim", table, k=k, groups=groups)
    families = _by_family(table)
    qualifying = set()
    for family, rows in families.items():
        small = np.sort(rows.compute.to_numpy())[:k]
        if len(rows) >= MIN_FAMILY_MODELS and (rows.compute >= 4 * small.max()).any():
            qualifying.add(family)
    held = {f for g in split.test_families for f in g}
    assert qualifying and qualifying <= held
    few = set(split.skipped_families[f"fewer than {MIN_FAMILY_MODELS} complete models"])
    assert few == {f for f, rows in families.items() if len(rows) < MIN_FAMILY_MODELS} and few
    assert few | set(split.skipped_families["no model 4x the observed compute"]) | qualifying \
        == set(families)
    tasks = list(split_tasks(split, table))
    assert [t.group for t in tasks] == list(split.test_families)
    for task in tasks:
        for family in task.group:
            test = task.test[task.test.family == family]
            observed = task.observed[task.observed.family == family]
            if family not in qualifying:  # grouped with a qualifying family: withheld whole
                assert test.empty and observed.empty
                assert set(families[family].model) <= set(task.withheld)
                continue
            rows = families[family].sort_values("compute")
            assert list(observed.model) == list(rows.model[:k])
            # every test model has at least 4 times the family's largest observed compute
            assert (_compute(test) >= 4 * _compute(observed).max() * (1 - 1e-9)).all()
            between = rows[~rows.model.isin([*test.model, *observed.model])]
            assert set(between.model) <= set(task.withheld)
        train = set(task.training_table(include_observed=True).models)
        assert not train & (set(task.test.model) | set(task.withheld))
        assert set(task.observed.model) <= train
        assert not set(task.observed.model) & set(task.training_table(False).models)
        others = {m for f, rows in families.items() if f not in task.group for m in rows.model}
        assert others <= train  # the other families are all in the fit
    with pytest.raises(ValueError, match="k >= 1"):
        scale_up_split("sim", table, k=0)


def test_compute_cutoff_splits_train_below_and_predict_above(table):
    split = compute_cutoff_split("sim", table, cutoff=0.7)
    compute = training_compute(table.params, table.tokens)
    assert split.compute_cutoff == pytest.approx(np.quantile(compute, 0.7))
    above = {m for m, c in zip(table.models, compute, strict=True) if c > split.compute_cutoff}
    tasks = list(split_tasks(split, table))
    assert {m for t in tasks for m in t.test.model} == above
    assert all(len(t.group) == 1 and t.observed_in_training for t in tasks)
    fits = {tuple(t.training_table(include_observed=True).models) for t in tasks}
    [train] = fits  # one training set: every model at or below the cutoff
    assert set(train) == set(table.models) - above
    assert max(compute[table.models.index(m)] for m in train) <= split.compute_cutoff
    assert any(t.k == 0 for t in tasks) and any(t.k > 0 for t in tasks)  # zero-shot and not
    with pytest.raises(ValueError, match="zero-shot"):
        next(split_tasks(split, table, zero_shot=True))
    with pytest.raises(DataValidationError, match=r"no complete model lies above.*quantile"):
        compute_cutoff_split("sim", table, cutoff=10 * compute.max())
    with pytest.raises(ValueError, match="FLOPs"):
        compute_cutoff_split("sim", table, cutoff=-1.0)


def test_family_groups_merge_every_split_transitively():
    split = Split("v1", ("MMLU",), 1, (("a", "b"), ("c",), ("d", "e")))
    other = Split("v2", ("BBH",), 1, (("b", "c"), ("f",)))
    assert family_groups(Protocol((split, other))) == [("a", "b", "c"), ("d", "e")]
    assert family_groups(None) == []


def test_generated_splits_files_round_trip(table, tmp_path):
    base = Protocol((Split("sim", tuple(table.benchmarks), 1, (("fam00", "fam01"),)),),
                    {"MMLU": 0.25}, "Family2", "test base")
    for kind, options in (("scale-up", {"ks": (1, 2)}), ("compute-cutoff", {"cutoff": 0.8})):
        protocol = generate_protocol(kind, lambda b: table, base, **options)
        assert protocol.floors == base.floors and protocol.groups() == base.groups()
        write_protocol(protocol, tmp_path / f"{kind}.json")
        back = load_protocol(tmp_path / f"{kind}.json")
        assert back.splits == protocol.splits and back.description == protocol.description
        assert [s.skipped_families for s in back.splits] == [
            s.skipped_families for s in protocol.splits]
        for mine, theirs in zip(protocol.splits, back.splits, strict=True):
            a, b = list(split_tasks(mine, table)), list(split_tasks(theirs, table))
            assert [(list(t.test.model), t.withheld) for t in a] == [
                (list(t.test.model), t.withheld) for t in b]
    # a paper-format file reads, writes and reads back unchanged
    write_protocol(base, tmp_path / "paper.json")
    assert "protocol" not in json.loads((tmp_path / "paper.json").read_text())["splits"][0]
    assert load_protocol(tmp_path / "paper.json").splits == base.splits


@pytest.mark.parametrize("change, match", [
    ({"protocol": "scale-down"}, "scale-down.*'scale-up'"),
    ({"protocol": "scale-up", "observed_models_per_test_family": 0}, ">= 1"),
    ({"protocol": "scale-up", "min_compute_ratio": 0.5}, "min_compute_ratio"),
    ({"protocol": "compute-cutoff"}, "compute_cutoff"),
    ({"protocol": "compute-cutoff", "compute_cutoff": "big"}, "FLOPs"),
])
def test_bad_protocol_entries_are_named(tmp_path, change, match):
    entry = {"benchmarks": "g", "observed_models_per_test_family": 1,
             "test_families": [["a"]], **change}
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"benchmark_groups": {"g": ["MMLU"]}, "splits": [entry]}))
    with pytest.raises(DataValidationError, match=match):
        load_protocol(path)


def test_cli_writes_runs_and_reads_back_both_protocols(table, tmp_path, capsys):
    """Baselines on both generated protocols from the command line, splits written and read
    back."""
    data = tmp_path / "sim.csv"
    table.to_frame().to_csv(data, index=False)
    common = ["--data", str(data), "--benchmarks", "all", "--methods", BASELINE, "--json"]
    splits = tmp_path / "scale-up.json"
    assert main(["evaluate", "--protocol", "scale-up", "--write-splits", str(splits),
                 *common]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["splits"][0].startswith("all/scale-up/k=1:")
    assert load_protocol(splits).splits[0].protocol == "scale-up"
    for name, args in (("scale-up", ["--splits", str(splits)]),
                       ("cutoff", ["--protocol", "compute-cutoff", "--compute-cutoff", "0.75"])):
        out = tmp_path / f"{name}.csv"
        assert main(["evaluate", *args, "--out", str(out), *common]) == 0
        summary = json.loads(capsys.readouterr().out)
        rows = pd.read_csv(out)
        assert len(rows) and rows.observed.notna().all() and summary["overall"]
        assert set(rows.method) == {BASELINE}
    # bad input names the option
    assert main(["evaluate", "--out", str(tmp_path / "x.csv"), *common]) == 2
    assert "--splits" in capsys.readouterr().err
    assert main(["evaluate", "--protocol", "compute-cutoff", "--compute-cutoff", "1e40",
                 "--out", str(tmp_path / "y.csv"), *common]) == 2
    assert "compute cutoff" in capsys.readouterr().err
    assert main(["evaluate", "--protocol", "scale-up", *common]) == 2
    assert "--out" in capsys.readouterr().err


def test_sloth_and_a_baseline_on_both_protocols(table):
    """A small sloth fit per training set: the scale-up group conditioned on its smallest
    model (and zero-shot), the compute-cutoff split in one fit for every family."""
    fast = {"n_skills": 1, "num_chains": 2, "num_warmup": 60, "num_samples": 60,
            "map_starts": 1, "link": "logistic", "family_benchmark_effects": False}
    benchmarks = list(table.benchmarks[:4])
    small = table.subset(benchmarks=benchmarks)
    scale_up = Protocol((scale_up_split("sim", small, k=1),))
    cutoff = Protocol((compute_cutoff_split("sim", small, cutoff=0.8),))
    rows = {}
    for name, protocol, options in (
            ("scale-up", scale_up, {"also_zero_shot": True,
                                    "groups": ["+".join(scale_up.splits[0].test_families[0])]}),
            ("cutoff", cutoff, {})):
        sloth = sloth_forecaster(fast, conditioning="forecast")
        out = evaluate(protocol, lambda b: small, [sloth, baseline_forecaster(BASELINE)],
                       progress=False, **options)
        assert set(out.method) == {"sloth", BASELINE} and out.observed.notna().all()
        assert np.isfinite(out[["mean", "q05", "q95", "crps"]].to_numpy()).all()
        assert len(sloth.fits) == 1  # one training set
        rows[name] = out
    assert set(rows["scale-up"].observed_models_per_test_family) == {0, 1}
    tested = set(rows["cutoff"].model)
    compute = training_compute(small.params, small.tokens)
    assert tested == {m for m, c in zip(small.models, compute, strict=True)
                      if c > cutoff.splits[0].compute_cutoff}
    summary = summarize(rows["cutoff"])["overall"].set_index("method")
    assert summary.loc["sloth", "family_mae"] < 0.15
