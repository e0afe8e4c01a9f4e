"""Nothing lost, nothing silent: damaged inputs and files through ``sloth forecast``,
``diagnose``, ``skills``, ``laws`` and ``fit``, each refused with exit status 2, a message
naming the input and the command-line fix, and every file of the user's unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sloth.cli.main import main
from sloth.model.simulate import simulate_leaderboard

META = ["model", "family", "params", "tokens"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A small fit saved through ``sloth fit`` and two families held out of it."""
    table, _ = simulate_leaderboard(n_families=12, n_skills=1, n_benchmarks=5, seed=11)
    frame = table.to_frame()
    held = sorted(frame["family"].unique())[-2:]
    folder = tmp_path_factory.mktemp("fit")
    data = folder / "train.csv"
    frame[~frame["family"].isin(held)].to_csv(data, index=False)
    posterior = folder / "fit.nc"
    code = main(["fit", "--data", str(data), "--skills", "1", "--chains", "2", "--warmup",
                 "100", "--samples", "100", "--out", str(posterior), "--quiet", "--json"])
    assert code == 0
    new = frame[frame["family"].isin(held)]
    return posterior, new, list(table.benchmarks)


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _forecast(capsys, posterior, models, observed=None, *extra):
    argv = ["forecast", "--posterior", str(posterior), "--models", str(models)]
    if observed is not None:
        argv += ["--observed", str(observed)]
    code = main([*argv, *extra])
    return code, capsys.readouterr()


def _bad(code, captured, *needles):
    assert code == 2, captured.err
    assert captured.out == ""
    assert "Traceback" not in captured.err
    for needle in needles:
        assert needle in captured.err, (needle, captured.err)


def _split(new, tmp_path):
    first = new.groupby("family").head(1)
    rest = new.drop(first.index)
    models, observed = tmp_path / "models.csv", tmp_path / "observed.csv"
    rest[META].to_csv(models, index=False)
    first.to_csv(observed, index=False)
    return models, observed, rest, first


def test_percent_scores_in_observed_are_refused(fitted, tmp_path, capsys):
    posterior, new, benchmarks = fitted
    models, observed, _, first = _split(new, tmp_path)
    first = first.copy()
    first[benchmarks[0]] = first[benchmarks[0]] * 100
    first.to_csv(observed, index=False)
    before = _digest(posterior)
    _bad(*_forecast(capsys, posterior, models, observed), "--observed", benchmarks[0])
    assert _digest(posterior) == before


def test_sizes_in_billions_are_refused_with_the_unit_option(fitted, tmp_path, capsys):
    posterior, new, _ = fitted
    models, _, rest, _ = _split(new, tmp_path)
    rest = rest[META].copy()
    rest["params"] = rest["params"] / 1e9
    rest.to_csv(models, index=False)
    _bad(*_forecast(capsys, posterior, models), "--models", "params", "--params-unit")
    code, captured = _forecast(capsys, posterior, models, None, "--params-unit", "billions",
                               "--json")
    assert code == 0, captured.err


def test_duplicate_names_unknown_benchmarks_and_families_are_named(fitted, tmp_path, capsys):
    posterior, new, _ = fitted
    models, observed, rest, first = _split(new, tmp_path)
    pd.concat([rest[META], rest[META].head(1)]).to_csv(models, index=False)
    _bad(*_forecast(capsys, posterior, models), "--models", "duplicate",
         str(rest["model"].iloc[0]))

    rest[META].to_csv(models, index=False)
    first.assign(MyQA=0.5).to_csv(observed, index=False)
    _bad(*_forecast(capsys, posterior, models, observed), "--observed", "MyQA")

    first.assign(family=first["family"] + "-typo").to_csv(observed, index=False)
    _bad(*_forecast(capsys, posterior, models, observed), "--observed", "-typo")


def test_existing_out_is_refused_without_force(fitted, tmp_path, capsys):
    posterior, new, _ = fitted
    models, observed, _, _ = _split(new, tmp_path)
    out = tmp_path / "notes.txt"
    out.write_text("my notes\n")
    _bad(*_forecast(capsys, posterior, models, observed, "--out", str(out)), "--force",
         str(out))
    assert out.read_text() == "my notes\n"
    code, captured = _forecast(capsys, posterior, models, observed, "--out", str(out),
                               "--force")
    assert code == 0, captured.err
    assert pd.read_csv(out)["model"].isin(new["model"]).all()

    fit_out = tmp_path / "keep.nc"
    fit_out.write_bytes(b"not a posterior")
    code = main(["fit", "--data", str(models), "--out", str(fit_out)])
    _bad(code, capsys.readouterr(), "--force", str(fit_out))
    assert fit_out.read_bytes() == b"not a posterior"


def _damaged_copy(posterior: Path, out: Path, variable: str) -> Path:
    """A copy of ``posterior`` with the stored bytes of ``variable`` (``group/name``) zeroed
    (its first chunk, or the whole of a contiguous one); nothing else changed."""
    with h5py.File(posterior, "r") as handle:
        dataset = handle[variable]
        if dataset.chunks is None:
            start, size = dataset.id.get_offset(), dataset.id.get_storage_size()
        else:
            info = dataset.id.get_chunk_info(0)
            start, size = info.byte_offset, info.size
    raw = bytearray(Path(posterior).read_bytes())
    raw[start:start + size] = bytes(size)
    out.write_bytes(bytes(raw))
    return out


@pytest.mark.parametrize("command", ["forecast", "diagnose", "skills"])
def test_corrupted_and_foreign_posteriors_are_refused(fitted, tmp_path, capsys, command):
    posterior, new, _ = fitted
    models, _, _, _ = _split(new, tmp_path)
    # the draws every command reads (the middle of the file is the log-likelihood, which
    # a forecast does not read: see the test below)
    damaged = _damaged_copy(posterior, tmp_path / "damaged.nc", "posterior/loading")
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("i", np.arange(3.0))}, attrs={"config": "{}"}).to_netcdf(
        foreign, engine="h5netcdf")
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(Path(posterior).read_bytes()[:5000])
    for path in (damaged, foreign, truncated):
        if command == "forecast":
            code, captured = _forecast(capsys, path, models)
        else:
            code, captured = main([command, str(path)]), capsys.readouterr()
        _bad(code, captured, str(path))


def test_a_forecast_reads_and_verifies_only_what_it_needs(fitted, tmp_path, capsys):
    """``sloth forecast`` reads the draws and the fitted data, verified against their
    checksums; damage in the pointwise log-likelihood it does not read goes unnoticed by it
    (the same forecast), and ``sloth diagnose``, which reads it, refuses the file."""
    posterior, new, _ = fitted
    models, observed, _, _ = _split(new, tmp_path)
    code, clean = _forecast(capsys, posterior, models, observed, "--json")
    assert code == 0, clean.err
    for variable, forecast_reads in (("log_likelihood/scores", False),
                                     ("sample_stats/energy", False),
                                     ("posterior/intercept", True),
                                     ("constant_data/covariates", True),
                                     ("observed_data/scores", True)):
        damaged = _damaged_copy(posterior, tmp_path / "damaged.nc", variable)
        code, captured = _forecast(capsys, damaged, models, observed, "--json")
        if forecast_reads:
            _bad(code, captured, str(damaged), f"group '/{variable.split('/')[0]}'")
        else:
            assert code == 0, captured.err
            assert (json.loads(captured.out)["predictions"]
                    == json.loads(clean.out)["predictions"])
        _bad(main(["diagnose", str(damaged)]), capsys.readouterr(), str(damaged))
