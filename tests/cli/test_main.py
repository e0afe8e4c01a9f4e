"""The ``sloth`` command line: bad input exits 2 with a message and a fix, ``--help`` documents
every option, ``--json`` prints one JSON object, and a small end-to-end fit works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sloth.cli import fit as cli_fit
from sloth.cli.main import build_parser, main

#: Every option of ``sloth fit``; ``--help`` must list each one.
FIT_OPTIONS = (
    "--data", "--benchmarks", "--family-column", "--floor", "--covariate", "--no-instruct",
    "--skip-incomplete", "--model-column", "--params-column", "--tokens-column",
    "--compute-column", "--params-unit", "--tokens-unit", "--compute-unit", "--rename",
    "--skills", "--noise", "--link", "--family-effects", "--no-family-effects",
    "--family-parametrization", "--anchors",
    "--chains", "--warmup",
    "--samples", "--max-samples",
    "--target-accept",
    "--map-starts", "--seed", "--out", "--force", "--json", "--quiet",
)


def _table() -> pd.DataFrame:
    """A valid user table of four models in two families."""
    return pd.DataFrame({
        "model": ["a-1b", "a-7b", "b-1b", "b-3b"],
        "family": ["a", "a", "b", "b"],
        "params": [1e9, 7e9, 1e9, 3e9],
        "tokens": [1e12, 1e12, 2e12, 2e12],
        "MMLU": [0.30, 0.50, 0.32, 0.41],
        "GSM8K": [0.02, 0.20, 0.05, 0.10],
    })


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "evals.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str
         ) -> tuple[int, str, str]:
    """``main(["fit", *argv])`` with the output file in ``tmp_path``; (code, out, err)."""
    code = main(["fit", *argv, "--out", str(tmp_path / "fit.nc")])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_bad_input(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and "Traceback" not in out
    assert out == ""
    for needle in needles:
        assert needle in err, f"{needle!r} not in stderr:\n{err}"


# ----------------------------------------------------------------------------- bad input


def test_missing_required_column(capsys, tmp_path):
    csv = _write(tmp_path, _table().drop(columns="tokens"))
    code, out, err = _run(capsys, tmp_path, "--data", csv)
    _assert_bad_input(code, out, err, "'tokens'", "not found", "Fix:")


def test_scores_look_like_percentages(capsys, tmp_path):
    frame = _table()
    frame["MMLU"] = frame["MMLU"] * 100
    code, out, err = _run(capsys, tmp_path, "--data", _write(tmp_path, frame))
    _assert_bad_input(code, out, err, "'MMLU'", "outside [0, 1]", "a-7b", "percentages",
                      "divide the column by 100")


def test_non_positive_size(capsys, tmp_path):
    frame = _table()
    frame.loc[2, "params"] = 0
    code, out, err = _run(capsys, tmp_path, "--data", _write(tmp_path, frame))
    _assert_bad_input(code, out, err, "'params'", "'b-1b'", "positive", "Fix:")


def test_missing_token_count(capsys, tmp_path):
    frame = _table()
    frame.loc[3, "tokens"] = None
    code, out, err = _run(capsys, tmp_path, "--data", _write(tmp_path, frame))
    _assert_bad_input(code, out, err, "'tokens'", "'b-3b'", "missing", "Fix:",
                      "--skip-incomplete")


def test_duplicate_model_names(capsys, tmp_path):
    frame = _table()
    frame.loc[3, "model"] = "a-1b"
    code, out, err = _run(capsys, tmp_path, "--data", _write(tmp_path, frame))
    _assert_bad_input(code, out, err, "duplicate", "'a-1b'", "unique name")


def test_benchmark_without_known_floor(capsys, tmp_path):
    frame = _table()
    frame["MyQA"] = [0.1, 0.2, 0.3, 0.4]
    code, out, err = _run(capsys, tmp_path, "--data", _write(tmp_path, frame))
    _assert_bad_input(code, out, err, "'MyQA'", "guessing floor", "--floor 'MyQA=VALUE'")


def test_model_without_any_score(capsys, tmp_path):
    frame = _table()
    frame.loc[2, ["MMLU", "GSM8K"]] = None
    code, out, err = _run(capsys, tmp_path, "--data", _write(tmp_path, frame))
    _assert_bad_input(code, out, err, "'b-1b'", "no score", "Fix:")


def test_missing_data_file(capsys, tmp_path):
    missing = str(tmp_path / "no-such-file.csv")
    code, out, err = _run(capsys, tmp_path, "--data", missing)
    _assert_bad_input(code, out, err, "no-such-file.csv", "no such file", "Fix:")


def test_unknown_benchmark_group(capsys, tmp_path):
    csv = _write(tmp_path, _table())
    code, out, err = _run(capsys, tmp_path, "--data", csv, "--benchmarks", "v3")
    _assert_bad_input(code, out, err, "'v3'", "'v1', 'v2', 'all'", "Fix:")


def test_unknown_benchmark_in_list(capsys, tmp_path):
    csv = _write(tmp_path, _table())
    code, out, err = _run(capsys, tmp_path, "--data", csv, "--benchmarks", "MMLU,Foo")
    _assert_bad_input(code, out, err, "'Foo'", "not found", "--benchmarks")


def test_zero_skills(capsys, tmp_path):
    csv = _write(tmp_path, _table())
    code, out, err = _run(capsys, tmp_path, "--data", csv, "--skills", "0")
    _assert_bad_input(code, out, err, "--skills", "from 1 to 4")


def test_too_many_skills_for_the_benchmarks(capsys, tmp_path):
    csv = _write(tmp_path, _table())
    code, out, err = _run(capsys, tmp_path, "--data", csv, "--skills", "2")
    _assert_bad_input(code, out, err, "2 benchmarks cannot identify 2 skills", "--skills")


def test_unwritable_output_folder_fails_before_fitting(capsys, tmp_path):
    csv = _write(tmp_path, _table())
    code = main(["fit", "--data", csv, "--out", str(tmp_path / "absent" / "fit.nc")])
    captured = capsys.readouterr()
    _assert_bad_input(code, captured.out, captured.err, "does not exist", "Fix:")


def test_leaderboard_bad_benchmark_list(capsys, tmp_path):
    """The default data source (the leaderboard via SLOTH_DATA_DIR) reports bad input too."""
    data_dir = os.environ.get("SLOTH_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "sloth-leaderboard" / "data_v2.csv").is_file():
        pytest.skip("reference leaderboard not available through SLOTH_DATA_DIR")
    code, out, err = _run(capsys, tmp_path, "--benchmarks", "MMLU,NoSuchBench")
    _assert_bad_input(code, out, err, "'NoSuchBench'", "Fix:")


def test_keyboard_interrupt_exits_130(capsys, tmp_path, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_fit, "_fit", interrupted)
    code, _, err = _run(capsys, tmp_path, "--data", _write(tmp_path, _table()))
    assert code == 130
    assert "interrupted" in err and "Traceback" not in err


def _sloth_command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m sloth``."""
    script = Path(sys.executable).parent / "sloth"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("sloth")
    return [found] if found else [sys.executable, "-m", "sloth"]


def test_bad_input_in_a_real_process(tmp_path):
    frame = _table()
    frame["GSM8K"] = frame["GSM8K"] * 100
    csv = _write(tmp_path, frame)
    proc = subprocess.run(
        [sys.executable, "-m", "sloth", "fit", "--data", csv, "--json",
         "--out", str(tmp_path / "fit.nc")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert "'GSM8K'" in proc.stderr and "divide the column by 100" in proc.stderr


# ----------------------------------------------------------------------------- help


def test_fit_help_lists_every_option_with_defaults(capsys):
    assert main(["fit", "--help"]) == 0
    text = capsys.readouterr().out
    for option in FIT_OPTIONS:
        assert option in text, option
    parser_options = {
        opt
        for action in build_parser()._subparsers._group_actions[0].choices["fit"]._actions
        for opt in action.option_strings if opt.startswith("--") and opt != "--help"
    }
    assert parser_options == set(FIT_OPTIONS)
    for default in ("(default: auto)", "(default: 4)", "(default: 500)", "(default: 1000)",
                    "sloth-fit.nc", "Family2", "(default: student_t)", "(default: 0.9)",
                    "(default: off)", "all 12", "(default: flexible)"):
        assert default in text, default


def test_top_level_help_in_a_real_process():
    proc = subprocess.run([*_sloth_command(), "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "fit" in proc.stdout and "--version" in proc.stdout


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


# ----------------------------------------------------------------------------- end to end


def test_fit_end_to_end_json(capsys, tmp_path):
    from sloth import SlothModel
    from sloth.model.simulate import simulate_leaderboard

    table, _ = simulate_leaderboard(n_families=8, n_skills=1, seed=1)
    csv = _write(tmp_path, table.to_frame(), "simulated.csv")
    out_file = tmp_path / "f.nc"
    code = main(["fit", "--data", csv, "--skills", "1", "--chains", "2", "--warmup", "150",
                 "--samples", "150", "--out", str(out_file), "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)  # stdout holds exactly one JSON object
    for key in ("n_models", "n_families", "n_scores", "n_skipped", "n_skills", "anchors",
                "sampler", "timings", "in_sample_mae", "in_sample_mae_per_benchmark",
                "loadings", "skipped", "posterior_file"):
        assert key in summary, key
    assert summary["n_models"] == table.n_models
    assert summary["n_skills"] == 1
    for key in ("divergences", "rhat_max", "worst_rhat_variable", "ess_bulk_min",
                "mean_leapfrog_steps"):
        assert key in summary["sampler"], key
    assert set(summary["loadings"]) == set(table.benchmarks)
    assert 0 <= summary["in_sample_mae"] < 0.2
    assert summary["posterior_file"] == str(out_file)
    assert out_file.is_file()

    model = SlothModel.load(out_file)
    assert model.family_benchmark_effects  # on by default
    assert model.family_benchmark_scale_.shape == (table.n_benchmarks,)
    pred = model.predict(table.to_frame().head(3))
    assert len(pred) == 3 * table.n_benchmarks
    assert pred[["mean", "q05", "q95"]].notna().all().all()

    text = cli_fit.format_fit_report(summary)
    for part in ("divergences", "worst R-hat", "bulk ESS", "leapfrog", "in-sample MAE",
                 str(out_file), "GSM8K"):
        assert part in text, part


def test_leaderboard_fits_default_to_the_instruct_covariate():
    from sloth.cli.fit import _covariates
    from sloth.cli.main import build_parser
    from sloth.model.simulate import simulate_leaderboard

    table, _ = simulate_leaderboard(n_families=3, n_benchmarks=6, seed=0)
    with_flag = replace(table, extra_covariates={"instruct": np.zeros(table.n_models)})
    parse = build_parser().parse_args
    assert _covariates(parse(["fit"]), with_flag) == ["instruct"]
    assert _covariates(parse(["fit", "--no-instruct"]), with_flag) == []
    assert _covariates(parse(["fit"]), table) == []
    assert _covariates(parse(["fit", "--covariate", "size_class"]), with_flag) == ["size_class"]


def test_family_effects_flag():
    from sloth.cli.main import build_parser

    parse = build_parser().parse_args
    assert parse(["fit"]).family_effects is True
    assert parse(["fit", "--no-family-effects"]).family_effects is False
    evaluate = ["evaluate", "--splits", "s.json", "--out", "p.csv"]
    assert parse(evaluate).family_effects is True
    assert parse([*evaluate, "--no-family-effects"]).family_effects is False
