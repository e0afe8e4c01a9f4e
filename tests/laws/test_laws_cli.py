"""``sloth laws fit`` / ``sloth laws allocate`` through a local argparse harness."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from sloth.cli.laws import add_laws_parser
from sloth.exceptions import DataNotFoundError, DataValidationError


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sloth")
    add_laws_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def runs_csv(two_skill_runs, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "runs.csv"
    two_skill_runs[["N", "D", "loss", "skill"]].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fit_file(runs_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "fits.json"
    assert run(["laws", "fit", str(runs_csv), "--skill-column", "skill", "--n-boot", "40",
                "--max-starts", "32", "--out", str(out)]) == 0
    return out


def test_fit_json_has_parameters_with_intervals(runs_csv, capsys, tmp_path):
    one = tmp_path / "knowledge.csv"
    import pandas as pd

    df = pd.read_csv(runs_csv)
    df[df["skill"] == "knowledge"].drop(columns="skill").to_csv(one, index=False)
    assert run(["laws", "fit", str(one), "--law", "chinchilla", "--n-boot", "30",
                "--max-starts", "32", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    (fit,) = payload["fits"]
    assert fit["law"] == "chinchilla" and fit["interval_kind"] == "bootstrap"
    for name in ("E", "A", "B", "alpha", "beta"):
        p = fit["params"][name]
        assert p["lower"] <= p["estimate"] <= p["upper"]
    assert fit["params"]["alpha"]["estimate"] == pytest.approx(0.30, abs=0.04)
    assert fit["diagnostics"]["n_best"] >= 1


def test_fit_summary_and_allocate(fit_file, capsys):
    assert run(["laws", "allocate", str(fit_file), "--compute", "1e21", "1e22"]) == 0
    text = capsys.readouterr().out
    assert "knowledge (chinchilla) at C = 1e+21" in text and "D*/N*" in text
    assert run(["laws", "allocate", str(fit_file), "--compute", "1e21", "--json",
                "--weights", "knowledge=0.5,code=0.5"]) == 0
    payload = json.loads(capsys.readouterr().out)
    by_skill = {r["skill"]: r for r in payload["allocations"]}
    assert by_skill["code"]["D_per_N"]["estimate"] > 4 * by_skill["knowledge"]["D_per_N"][
        "estimate"]
    for r in payload["allocations"]:
        assert r["N_opt"]["lower"] <= r["N_opt"]["estimate"] <= r["N_opt"]["upper"]
    mix = payload["mixture"]["allocations"][0]
    n_k = by_skill["knowledge"]["N_opt"]["estimate"]
    n_c = by_skill["code"]["N_opt"]["estimate"]
    assert n_c < mix["N_opt"]["estimate"] < n_k
    assert mix["shift_vs"]["knowledge"]["estimate"] < 0 < mix["shift_vs"]["code"]["estimate"]


def test_fit_prints_summary(runs_csv, capsys, tmp_path):
    out = tmp_path / "f.json"
    assert run(["laws", "fit", str(runs_csv), "--skill-column", "skill", "--n-boot", "0",
                "--max-starts", "8", "--drop-highest-loss", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "chinchilla law" in text and "skill: code" in text and f"saved to {out}" in text
    assert "runs: 61" in text       # the 2 highest losses (both knowledge) dropped


def test_bad_input_raises_sloth_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("params,loss\n1e8,3.0\n")
    with pytest.raises(DataValidationError, match="D or C"):
        run(["laws", "fit", str(bad)])
    with pytest.raises(DataNotFoundError):
        run(["laws", "allocate", str(tmp_path / "none.json"), "--compute", "1e21"])


def test_bad_weights_and_compute(fit_file):
    with pytest.raises(DataValidationError, match="skill=weight"):
        run(["laws", "allocate", str(fit_file), "--compute", "1e21", "--weights", "code"])
    with pytest.raises(DataValidationError, match="positive"):
        run(["laws", "allocate", str(fit_file), "--compute", "-5"])


def test_entry_point_subprocess(fit_file):
    proc = subprocess.run([sys.executable, "-m", "sloth", "laws", "allocate",
                           str(fit_file),
                           "--compute", "1e21", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["allocations"]


def test_entry_point_bad_input_exit_code(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("N,D,loss\n1e8,2e9,-3\n")
    proc = subprocess.run([sys.executable, "-m", "sloth", "laws", "fit", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "'loss'" in proc.stderr and "positive" in proc.stderr
