"""Latency of ``sloth forecast`` from a saved default fit: whole process, median of repeats.

50 candidate models of four new families, each family with one observed model (its scores
taken from a leaderboard model of similar size, renamed), forecast from the posterior of a
plain ``sloth fit``. Also times the stages inside one process (import, file read,
validation, conditioning) so that the whole-process figure can be read.

    python benchmarks/forecast_latency.py --posterior leaderboard-fit.nc [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def write_inputs(folder: Path) -> tuple[Path, Path]:
    """``models.csv`` (50 rows, 4 families) and ``observed.csv`` (one model per family)."""
    from sloth import load_leaderboard

    frame = load_leaderboard().to_frame()
    rng = np.random.default_rng(0)
    donors = frame[(frame["params"] > 1e9) & (frame["params"] < 1e10)].sample(4, random_state=0)
    observed, models = [], []
    for i, (_, donor) in enumerate(donors.iterrows()):
        family = f"planned-{i}"
        observed.append({**donor.to_dict(), "model": f"{family}-first", "family": family})
        for k in range(12 if i else 14):
            models.append({"model": f"{family}-{k}", "family": family,
                           "params": float(10 ** rng.uniform(9, 11)),
                           "tokens": float(10 ** rng.uniform(11.5, 13)),
                           "instruct": donor["instruct"]})
    models_csv, observed_csv = folder / "models.csv", folder / "observed.csv"
    pd.DataFrame(models).to_csv(models_csv, index=False)
    pd.DataFrame(observed).to_csv(observed_csv, index=False)
    return models_csv, observed_csv


def stages(posterior: Path, models_csv: Path, observed_csv: Path) -> dict[str, float]:
    """Seconds of each stage of one forecast, in this process (imports counted first)."""
    out = {}
    start = time.perf_counter()
    from sloth.estimator import SlothModel
    from sloth.forecast import forecast
    out["import"] = time.perf_counter() - start
    start = time.perf_counter()
    model = SlothModel.load(posterior)
    out["read_posterior"] = time.perf_counter() - start
    start = time.perf_counter()
    forecast(model, pd.read_csv(models_csv), pd.read_csv(observed_csv))
    out["forecast_first"] = time.perf_counter() - start
    start = time.perf_counter()
    forecast(model, pd.read_csv(models_csv), pd.read_csv(observed_csv))
    out["forecast_again"] = time.perf_counter() - start
    return out


def main(argv: list[str] | None = None) -> int:
    # as the command line does: chains in parallel on CPU devices, compiled programs kept
    from sloth.cli.main import configure_process

    configure_process()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posterior", required=True, type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        models_csv, observed_csv = write_inputs(Path(tmp))
        command = [sys.executable, "-m", "sloth", "forecast", "--posterior",
                   str(args.posterior), "--models", str(models_csv), "--observed",
                   str(observed_csv), "--json"]
        walls = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True, env=os.environ)
            walls.append(time.perf_counter() - start)
            if proc.returncode:
                print(proc.stderr, file=sys.stderr)
                return proc.returncode
        parts = stages(args.posterior, models_csv, observed_csv)
    size = args.posterior.stat().st_size / 1e6
    print(f"posterior {args.posterior} ({size:.1f} MB)")
    print(f"whole process, {args.repeats} runs: " + ", ".join(f"{w:.2f}" for w in walls)
          + f" s; median {statistics.median(walls):.2f} s")
    print("stages in one process: " + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
