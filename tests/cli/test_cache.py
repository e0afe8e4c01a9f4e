"""``sloth forecast`` without ``--posterior`` (the cached default fit) and ``sloth cache``."""

from __future__ import annotations

import json

import pytest

import sloth.cli.fit as cli_fit
from sloth.cli.main import main
from sloth.model.simulate import simulate_leaderboard


@pytest.fixture
def small_default(tmp_path, monkeypatch):
    """The default fit made small: a simulated table and short chains, in a fresh cache."""
    table, _ = simulate_leaderboard(n_families=11, n_skills=1, n_benchmarks=5, seed=4)
    frame = table.to_frame()
    held = sorted(frame["family"].unique())[-1]
    data = tmp_path / "train.csv"
    frame[frame["family"] != held].to_csv(data, index=False)
    real = cli_fit.default_fit_args

    def small():
        args = real()
        args.data, args.skills, args.chains = str(data), 1, 1
        args.warmup, args.samples, args.quiet = 60, 60, True
        return args

    monkeypatch.setattr(cli_fit, "default_fit_args", small)
    monkeypatch.setenv("SLOTH_CACHE_DIR", str(tmp_path / "cache"))
    new = tmp_path / "new.csv"
    frame[frame["family"] == held][["model", "family", "params", "tokens"]].to_csv(
        new, index=False)
    return new, tmp_path / "cache"


def test_forecast_fits_the_default_once_then_reuses_it(small_default, capsys):
    new, cache = small_default
    assert main(["forecast", "--models", str(new), "--json"]) == 0
    first = capsys.readouterr()
    assert "fitting" in first.err and "once" in first.err
    fits = list((cache / "fits").glob("*.nc"))
    assert len(fits) == 1
    stamp = fits[0].stat().st_mtime_ns
    assert json.loads(first.out)["posterior_file"] == str(fits[0])

    assert main(["forecast", "--models", str(new), "--json"]) == 0
    second = capsys.readouterr()
    assert "fitting" not in second.err
    assert fits[0].stat().st_mtime_ns == stamp  # read, not refitted
    assert json.loads(second.out)["predictions"] == json.loads(first.out)["predictions"]

    assert main(["cache", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)["entries"]
    assert [e["kind"] for e in entries if e["kind"] == "fit"] == ["fit"]
    assert "every default" in entries[0]["description"]
    assert main(["cache", "clear"]) == 0
    capsys.readouterr()
    assert not (cache / "fits").exists()


def test_the_cache_key_changes_with_the_data_and_the_configuration():
    from sloth.cache import fit_key

    table, _ = simulate_leaderboard(n_families=10, n_skills=1, n_benchmarks=5, seed=4)
    other, _ = simulate_leaderboard(n_families=10, n_skills=1, n_benchmarks=5, seed=5)
    config = {"model_config": {"n_skills": 1}, "sampler_config": {"seed": 0}}
    assert fit_key(table, config) == fit_key(table, json.loads(json.dumps(config)))
    assert fit_key(table, config) != fit_key(other, config)
    assert fit_key(table, config) != fit_key(
        table, {**config, "sampler_config": {"seed": 1}})
