"""Latency of ``sloth forecast`` from a saved default fit: whole process, median of repeats.

50 candidate models of four new families, each family with one observed model (its scores
taken from a leaderboard model of similar size, renamed), forecast from the posterior of a
plain ``sloth fit``. Also times the stages of one forecast in a fresh process (imports,
``configure``, file read, table validation, conditioning with JAX's tracing, lowering and
compilation counted apart, output) so that the whole-process figure can be read.

    python benchmarks/forecast_latency.py --posterior leaderboard-fit.nc [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: JAX's duration events (jax.monitoring) reported as stages of the first forecast.
JAX_EVENTS = {"/jax/core/compile/jaxpr_trace_duration": "jax_trace",
              "/jax/core/compile/jaxpr_to_mlir_module_duration": "jax_lower",
              "/jax/core/compile/backend_compile_duration": "jax_compile_or_cache"}


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
    """Seconds of each stage of one forecast as ``sloth forecast`` runs it, in this process
    (call it in a fresh one: imports are counted first)."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    import jax.monitoring

    events = dict.fromkeys(JAX_EVENTS.values(), 0.0)

    def listen(event: str, duration: float, **_: object) -> None:
        if event in JAX_EVENTS:
            events[JAX_EVENTS[event]] += duration

    jax.monitoring.register_event_duration_secs_listener(listen)
    from sloth.cli.main import build_parser, configure_process

    build_parser()
    out["import_cli"] = time.perf_counter() - start
    start = time.perf_counter()
    configure_process()
    out["configure"] = time.perf_counter() - start
    start = time.perf_counter()
    from sloth.cli.common import print_json
    from sloth.estimator import SlothModel
    from sloth.forecast import forecast
    out["import_forecast"] = time.perf_counter() - start
    start = time.perf_counter()
    # as sloth forecast reads it
    model = SlothModel.load(posterior, log_likelihood=False, sample_stats=False, derived=False)
    out["read_posterior"] = time.perf_counter() - start
    start = time.perf_counter()
    post = model.posterior_
    models = post.validate_frame(models_csv, "--models", interface="cli")
    observed = post.validate_frame(observed_csv, "--observed", require_scores=True,
                                   interface="cli")
    out["validate_tables"] = time.perf_counter() - start
    start = time.perf_counter()
    result = forecast(model, models, observed)
    out["forecast_first"] = time.perf_counter() - start
    out.update(events)
    start = time.perf_counter()
    forecast(model, models, observed)
    out["forecast_again"] = time.perf_counter() - start
    start = time.perf_counter()
    with open(os.devnull, "w") as sink:
        stdout, sys.stdout = sys.stdout, sink
        try:
            print_json({"predictions": result.to_dict(orient="records")})
        finally:
            sys.stdout = stdout
    out["print_json"] = time.perf_counter() - start
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posterior", required=True, type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stages-of", nargs=2, metavar=("MODELS", "OBSERVED"),
                        help=argparse.SUPPRESS)  # the fresh process that times the stages
    args = parser.parse_args(argv)
    if args.stages_of:
        print(json.dumps(stages(args.posterior, *map(Path, args.stages_of))))
        return 0
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
        proc = subprocess.run([sys.executable, __file__, "--posterior", str(args.posterior),
                               "--stages-of", str(models_csv), str(observed_csv)],
                              capture_output=True, text=True, env=os.environ, check=True)
        parts = json.loads(proc.stdout.strip().splitlines()[-1])
    size = args.posterior.stat().st_size / 1e6
    print(f"posterior {args.posterior} ({size:.1f} MB); load average "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    print(f"whole process, {args.repeats} runs: " + ", ".join(f"{w:.2f}" for w in walls)
          + f" s; median {statistics.median(walls):.2f} s, min {min(walls):.2f} s")
    print("stages in one process: " + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
