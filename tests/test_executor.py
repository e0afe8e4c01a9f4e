"""Sweeps through an executor: in process, and on a Dask LocalCluster of two worker
processes, with the same rows; resuming a stopped ``sloth evaluate``; the error paths."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sloth.cli.main import main
from sloth.evaluation.harness import (
    baseline_forecaster,
    evaluate,
    finished_tasks,
    sloth_forecaster,
)
from sloth.evaluation.protocol import load_protocol
from sloth.exceptions import MissingDependencyError
from sloth.executor import (
    DaskExecutor,
    InProcessExecutor,
    executor_from_scheduler,
    map_tasks,
)
from sloth.model.simulate import simulate_leaderboard

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

BASELINE = "per_benchmark_flops_sigmoid_family_intercept"
#: A very short fit: one chain, so that every process runs it the same way whatever its
#: JAX device count.
FAST = {"n_skills": 2, "num_chains": 1, "num_warmup": 30, "num_samples": 30,
        "max_tree_depth": 5, "map_starts": 1, "link": "logistic"}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    table, _ = simulate_leaderboard(n_families=14, n_benchmarks=6, n_skills=2, seed=7,
                                    missing_fraction=0.0, models_per_family=(3, 4))
    raw = {"benchmark_groups": {"sim": list(table.benchmarks)}, "family_column": "family",
           "splits": [{"benchmarks": "sim", "observed_models_per_test_family": 1,
                       "test_families": [["fam00"], ["fam01", "fam02"]]}]}
    path = tmp_path_factory.mktemp("sweep") / "splits.json"
    path.write_text(json.dumps(raw))
    frame = table.to_frame()
    data = path.with_name("data.csv")
    frame.to_csv(data, index=False)
    return table, load_protocol(path), path, data


def _other(value):
    raise KeyError(value)


def test_in_process_runs_in_order_and_reports_each_result():
    seen = []
    assert map_tasks(abs, [-3, 1, -2], on_result=lambda i, r: seen.append((i, r))) == [3, 1, 2]
    assert seen == [(0, 3), (1, 1), (2, 2)]
    assert InProcessExecutor().map(str, []) == []


def test_a_sweep_on_two_dask_workers_gives_the_rows_of_a_sweep_in_process(sweep, cluster):
    """Two held-out groups (one unit of work each), sloth (forecast conditioning: k = 1 and
    zero-shot from one fit per group) and a baseline: the same predictions, in the same
    order, with the fits' records carried back from the workers."""
    table, protocol, _, _ = sweep

    def run(executor):
        methods = [sloth_forecaster(FAST, seed=2), baseline_forecaster(BASELINE, seed=2)]
        delivered = []
        rows = evaluate(protocol, lambda b: table, methods, also_zero_shot=True,
                        progress=False, executor=executor, on_task=delivered.append)
        return rows, methods, delivered

    here, here_methods, here_delivered = run(None)
    there, there_methods, there_delivered = run(cluster)
    assert len(cluster.client.scheduler_info()["workers"]) == 2
    assert len(here) == len(there) > 0 and len(here_delivered) == len(there_delivered) == 4
    timing = ["fit_seconds"]
    pd.testing.assert_frame_equal(here.drop(columns=timing), there.drop(columns=timing),
                                  check_exact=True)
    assert set(here.method) == {"sloth", BASELINE}
    # every task's rows reached on_task once, whatever the order the workers finished in
    assert (sorted(finished_tasks(r).pop() for r in there_delivered)
            == sorted(finished_tasks(r).pop() for r in here_delivered))
    for mine, theirs in zip(here_methods, there_methods, strict=True):
        assert len(mine.fits) == len(theirs.fits)
        assert len(mine.conditioning) == len(theirs.conditioning)
    sloth_here, sloth_there = here_methods[0], there_methods[0]
    assert len(sloth_here.fits) == 2  # one fit per group serves k = 1 and zero-shot
    key = ["test_families", "skills", "models", "divergences", "mean_leapfrog_steps"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(sloth_here.fits)[key].sort_values("test_families", ignore_index=True),
        pd.DataFrame(sloth_there.fits)[key].sort_values("test_families", ignore_index=True))
    np.testing.assert_array_equal(
        pd.DataFrame(sloth_here.conditioning).sort_values(["test_families", "k"]).khat,
        pd.DataFrame(sloth_there.conditioning).sort_values(["test_families", "k"]).khat)


def test_a_failing_task_raises_its_error_and_a_client_given_stays_open(cluster):
    executor = DaskExecutor(cluster.client)
    with pytest.raises(KeyError, match="boom"):
        executor.map(_other, ["boom"])
    executor.close()  # a client given is not closed
    assert cluster.client.status == "running"
    assert cluster.map(abs, [-1, -2]) == [1, 2]


def test_sloth_evaluate_resumes_a_stopped_run(sweep, tmp_path, capsys):
    _, _, splits, data = sweep

    def run(out, *extra):
        return main(["evaluate", "--splits", str(splits), "--data", str(data), "--out",
                     str(out), "--methods", BASELINE, "--json", *extra])

    whole = tmp_path / "whole.csv"
    assert run(whole) == 0
    complete = json.loads(capsys.readouterr().out)
    rows = pd.read_csv(whole)
    first = rows.test_families.iloc[0]
    stopped = tmp_path / "stopped.csv"
    rows[rows.test_families == first].to_csv(stopped, index=False)  # stopped after a task
    assert run(stopped) == 2  # an existing file is refused without --resume
    assert "--force" in capsys.readouterr().err
    assert run(stopped, "--resume") == 0
    captured = capsys.readouterr()
    assert "resuming" in captured.err and "1 task(s) done" in captured.err
    resumed = pd.read_csv(stopped)
    pd.testing.assert_frame_equal(resumed.drop(columns="fit_seconds"),
                                  rows.drop(columns="fit_seconds"))
    [overall] = json.loads(captured.out)["overall"]
    assert overall["family_mae"] == pytest.approx(complete["overall"][0]["family_mae"])
    assert overall["scores"] == complete["overall"][0]["scores"] == len(rows)
    # nothing left to do: the file stays as it was
    assert run(stopped, "--resume") == 0
    assert len(pd.read_csv(stopped)) == len(rows)
    capsys.readouterr()
    # a file of other methods, or of another program, is refused, as is --resume --force
    assert run(stopped, "--resume", "--methods", "per_benchmark_flops_sigmoid_shared") == 2
    assert "--methods of the stopped run" in capsys.readouterr().err
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    assert run(other, "--resume") == 2
    assert "--force to start over" in capsys.readouterr().err
    assert run(stopped, "--resume", "--force") == 2
    assert "--resume" in capsys.readouterr().err
    # rows of tasks this run does not have (other --groups)
    assert run(stopped, "--resume", "--groups", "fam01+fam02") == 2
    assert "options of the stopped run" in capsys.readouterr().err
    assert len(pd.read_csv(stopped)) == len(rows)  # left as it was


def test_scheduler_errors_name_the_option_and_the_fix(sweep, tmp_path, capsys, monkeypatch):
    _, _, splits, data = sweep
    out = tmp_path / "p.csv"

    def run(scheduler):
        return main(["evaluate", "--splits", str(splits), "--data", str(data), "--out",
                     str(out), "--methods", BASELINE, "--scheduler", scheduler])

    assert run("local:two") == 2
    err = capsys.readouterr().err
    assert "--scheduler local:two" in err and "'local:2'" in err
    assert not out.exists()
    with pytest.raises(OSError, match="dask scheduler"):
        DaskExecutor("tcp://127.0.0.1:9", timeout=0.5)
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    assert run("local:2") == 2
    assert "pip install 'sloth-scaling[dask]'" in capsys.readouterr().err
    with pytest.raises(MissingDependencyError, match=r"sloth-scaling\[dask\]"):
        executor_from_scheduler("tcp://127.0.0.1:8786")
    assert isinstance(executor_from_scheduler(None), InProcessExecutor)  # no Dask needed


def test_import_sloth_and_a_sweep_in_process_do_not_import_dask():
    code = ("import sys, sloth, sloth.executor, sloth.evaluation.harness, sloth.cli.main;"
            "from sloth.executor import map_tasks; map_tasks(abs, [-1]);"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', "
            "'distributed')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_the_install_command_names_the_extra_that_holds_dask():
    import tomllib
    from pathlib import Path

    from sloth.executor import DASK_INSTALL

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml")
                            .read_text())["project"]
    extras = project["optional-dependencies"]
    assert DASK_INSTALL == f"pip install '{project['name']}[dask]'"
    for extra in ("dask", "dev"):  # the tests (CI installs dev) run the Dask path
        assert {"dask", "distributed"} <= {r.split(">")[0].split("=")[0] for r in extras[extra]}
