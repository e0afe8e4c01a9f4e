"""Time of one ``sloth evaluate`` sweep in process and on a 2-worker Dask ``LocalCluster``.

Runs the same sweep (the paper's splits, one benchmark group and ``k``, a few held-out
groups, sloth alone with the sweep sampler of :data:`sloth.defaults.EVALUATION_SAMPLER`)
as whole ``sloth evaluate`` processes, in turn in process with NumPy's BLAS on one thread
(as Dask's workers run it), with ``--scheduler local:2``, and in process with BLAS's own
thread count, after one unmeasured warm-up run that fills JAX's persistent compilation
cache; says whether each run wrote the predictions of the first (bar ``fit_seconds``) and
prints the wall time of each run and the medians. The cluster's start (two worker
processes importing sloth and JAX) is inside the measured time.

    SLOTH_DATA_DIR=../shared/data python benchmarks/sweep_executor.py \\
        --groups bloom,falcon,olmo,opt --repeats 2
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

import pandas as pd

from sloth.executor import BLAS_THREADS

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ROOT.parent / "shared" / "protocols" / "sloth-paper-splits.json"


def run(out: Path, args: argparse.Namespace, scheduler: str | None, groups: str, *,
        blas_threads: int | None = None) -> float:
    """Wall seconds of one ``sloth evaluate`` process writing ``out`` (with NumPy's BLAS on
    ``blas_threads`` threads, default its own setting)."""
    command = [sys.executable, "-m", "sloth", "evaluate", "--splits", str(SPLITS),
               "--benchmarks", args.benchmarks, "--k", str(args.k), "--groups", groups,
               "--methods", "sloth", "--out", str(out), "--force", "--json"]
    if scheduler is not None:
        command += ["--scheduler", scheduler]
    env = dict(os.environ)
    if blas_threads is not None:
        env.update(dict.fromkeys(BLAS_THREADS, str(blas_threads)))
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", default="v1")
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--groups", default="bloom,falcon,olmo,opt")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warm-up", action=argparse.BooleanOptionalAction, default=True,
                        help="one unmeasured run first, to fill the compilation cache")
    args = parser.parse_args()
    cluster = f"local:{args.workers}"
    # in process with one BLAS thread, as Dask's workers run (see sloth.executor): the same
    # rows; and with this process's own BLAS setting (other rounding: other draws)
    runs = {"in process, 1 BLAS thread": (None, 1), cluster: (cluster, None),
            "in process, default BLAS threads": (None, None)}
    seconds: dict[str, list[float]] = {label: [] for label in runs}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if args.warm_up:
            warm = run(tmp / "warm.csv", args, None, args.groups.split(",")[0], blas_threads=1)
            print(f"warm-up (one group, in process, not counted): {warm:.1f} s", flush=True)
        reference = None
        for repeat in range(args.repeats):
            for index, (label, (scheduler, blas)) in enumerate(runs.items()):
                out = tmp / f"{repeat}-{index}.csv"
                seconds[label].append(run(out, args, scheduler, args.groups,
                                          blas_threads=blas))
                rows = pd.read_csv(out).drop(columns="fit_seconds")
                if reference is None:
                    reference = rows
                same = rows.equals(reference)
                gap = (rows["mean"] - reference["mean"]).abs().max()
                print(f"run {repeat + 1} {label}: {seconds[label][-1]:.1f} s, {len(rows)} rows, "
                      f"identical to the first run: {same} (largest difference of a mean "
                      f"{gap:.4f})", flush=True)
    for label, values in seconds.items():
        print(f"{label}: median {statistics.median(values):.1f} s over {len(values)} runs "
              f"({', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()
