"""Preview of the Sloth paper's leave-one-family-out protocol for one setting.

Not yet the `sloth evaluate` harness (issue 3): it runs the held-out groups of one setting
with the default model and prints family-averaged MAE and 90% coverage next to the
reference implementation's per-group MAE (sloth_d3_trained_link).

Usage::

    SLOTH_DATA_DIR=../shared/data python benchmarks/lofo_preview.py --benchmarks all --k 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "protocols"


def main() -> int:
    from sloth import SlothModel, load_leaderboard
    from sloth.data.registry import BENCHMARK_GROUPS

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--benchmarks", default="all", choices=sorted(BENCHMARK_GROUPS))
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--protocols", default=str(SHARED))
    args = parser.parse_args()
    splits = json.loads((Path(args.protocols) / "sloth-paper-splits.json").read_text())
    reference = pd.read_csv(Path(args.protocols) / "sloth-paper-reported-mae.csv")
    reference = reference[
        (reference["benchmarks"] == args.benchmarks)
        & (reference["observed_models_per_test_family"] == args.k)
        & (reference["method"] == "sloth_d3_trained_link")
    ]
    groups = next(
        s["test_families"] for s in splits["splits"]
        if s["benchmarks"] == args.benchmarks and s["observed_models_per_test_family"] == args.k
    )
    table = load_leaderboard(benchmarks=args.benchmarks)
    table = table.subset(models=table.observed.all(axis=1))  # complete rows only
    frame = table.to_frame()
    rows = []
    for group in groups:
        test = frame[frame["family"].isin(group)]
        keep = test.sort_values("params").groupby("family").head(args.k)
        held = test.drop(keep.index)
        train = np.array([m not in set(held["model"]) for m in table.models])
        start = time.perf_counter()
        model = SlothModel(3, extra_covariates=["instruct"], progress_bar=False).fit(
            table.subset(models=train)
        )
        seconds = time.perf_counter() - start
        mean = model.predict(held, kind="mean")
        score = model.predict(held)
        truth = held.melt(id_vars=["model"], value_vars=list(table.benchmarks),
                          var_name="benchmark", value_name="observed")
        merged = mean.merge(truth, on=["model", "benchmark"])
        merged = merged.merge(score[["model", "benchmark", "q05", "q95"]],
                              on=["model", "benchmark"], suffixes=("_mean", ""))
        mae = np.abs(merged["mean"] - merged["observed"]).mean()
        coverage = ((merged["observed"] >= merged["q05"])
                    & (merged["observed"] <= merged["q95"])).mean()
        name = "+".join(group)
        ref = reference[reference["test_families"] == name]["mae"].mean()
        s = model.summary()["sampler"]
        rows.append((name, len(held), mae, ref, coverage, s["divergences"], s["rhat_max"],
                     seconds))
        print(f"| {name} | {len(held)} | {mae:.4f} | {ref:.4f} | {coverage:.2f} | "
              f"{s['divergences']} | {s['rhat_max']:.3f} | {seconds:.0f} |", flush=True)
    res = pd.DataFrame(rows, columns=["group", "n", "mae", "ref", "cov", "div", "rhat", "s"])
    print(f"family-averaged MAE: sloth {res['mae'].mean():.4f}, reference "
          f"{res['ref'].mean():.4f}; coverage (mean over groups) {res['cov'].mean():.2f}; "
          f"fit time median {res['s'].median():.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
