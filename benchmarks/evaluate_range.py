"""Far forecasts measured: the scale-up and compute-cutoff protocols, sloth beside the baselines.

Generates the splits of one protocol of :mod:`sloth.evaluation.protocol` from the
leaderboard, with the benchmark groups, floors and families held out together of the
paper's ``../shared/protocols/sloth-paper-splits.json``:

- ``scale-up``: for every family with at least 3 complete models, its k smallest models by
  compute C = 6 N D observed (k = 1, 2), its models with at least 4x the largest observed
  compute predicted; sloth conditions each held-out family on its observed models (one fit
  per held-out group serves k = 1, 2 and the zero-shot forecasts of the same test models);
- ``compute-cutoff``: every model at or below a FLOPs cutoff (default the 0.75 quantile of
  each benchmark group's compute) in one fit, every model above it predicted (families with
  models below the cutoff as fitted families, the others zero-shot);

runs sloth and the baselines on them, and writes (``TAG`` defaults to the protocol's name)

- ``benchmarks/out/TAG_splits.json`` (the splits run; a resumed sweep reuses it),
- ``benchmarks/out/TAG_predictions.csv`` (one row per method, held-out model, benchmark),
- ``benchmarks/out/TAG_fits.csv`` (one row per sloth fit: seconds, R-hat, divergences),
- ``benchmarks/out/TAG_conditioning.csv`` (per conditioned family: Pareto k-hat, ESS),
- ``benchmarks/results_TAG_range.md`` (the tables for RESULTS.md, via ``--report``):
  family-averaged MAE, interval coverage at every level the predictions carry (50/80/90/95%
  where the harness writes those quantiles or a PIT column; 90% from q05/q95 always), CRPS
  and 90% width, sloth beside each baseline and the best baseline; and sloth's figures by
  how far each test model lies outside its training data
  (:class:`sloth.model.design.DesignRange`: compute ratio, beyond or within the data).

The sweep resumes: groups whose every task is in the predictions file are skipped, and the
rows of a group cut short are dropped and rerun.

Usage::

    SLOTH_DATA_DIR=../shared/data python benchmarks/evaluate_range.py --protocol scale-up
    SLOTH_DATA_DIR=../shared/data python benchmarks/evaluate_range.py --protocol scale-up --report
    SLOTH_DATA_DIR=../shared/data python benchmarks/evaluate_range.py --protocol compute-cutoff
    SLOTH_DATA_DIR=../shared/data python benchmarks/evaluate_range.py --protocol compute-cutoff \\
        --report
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
from evaluate_paper import (  # beside this script
    SweepWriter,
    add_sloth_options,
    drop_groups,
    sloth_options,
)

ROOT = Path(__file__).resolve().parents[1]
PAPER_SPLITS = ROOT.parent / "shared" / "protocols" / "sloth-paper-splits.json"
OUT = ROOT / "benchmarks" / "out"
BASELINES = ("per_benchmark_flops_sigmoid_family_intercept", "per_benchmark_flops_sigmoid_shared",
             "pca_observational_d3")
#: Keys of one task's rows in the predictions file.
TASK_KEYS = ["benchmarks", "split_k", "test_families", "zero_shot"]


def files(tag: str) -> dict[str, Path]:
    return {name: OUT / f"{tag}{name}.{ext}" for name, ext in (
        ("splits", "json"), ("predictions", "csv"), ("fits", "csv"), ("conditioning", "csv"))}


def load_table(protocol):
    from sloth.data.leaderboard import load_leaderboard

    def load(benchmarks):
        return load_leaderboard(benchmarks=list(benchmarks),
                                family_column=protocol.family_column or "Family2",
                                floors=protocol.floors or None)

    return load


def the_protocol(args: argparse.Namespace, paths: dict[str, Path]):
    """The splits of this sweep: those of a file being resumed, else generated and written."""
    from sloth.evaluation.protocol import generate_protocol, load_protocol, write_protocol

    if paths["splits"].exists() and not args.fresh:
        return load_protocol(paths["splits"])
    base = load_protocol(PAPER_SPLITS)
    protocol = generate_protocol(args.protocol, load_table(base), base, ks=args.k,
                                 min_compute_ratio=args.min_compute_ratio, cutoff=args.cutoff)
    write_protocol(protocol, paths["splits"])
    return protocol


def task_keys(rows: pd.DataFrame) -> pd.DataFrame:
    """The task of each row: benchmark group, split k, held-out group, zero-shot or not."""
    return rows.assign(zero_shot=(rows.observed_models_per_test_family == 0)
                       & (rows.split_k > 0))[TASK_KEYS]


def sweep(args: argparse.Namespace) -> None:
    from sloth.evaluation.harness import baseline_forecaster, evaluate, sloth_forecaster
    from sloth.evaluation.protocol import describe_split, split_tasks

    OUT.mkdir(parents=True, exist_ok=True)
    paths = files(args.tag)
    if args.fresh:
        for path in paths.values():
            path.unlink(missing_ok=True)
    protocol = the_protocol(args, paths)
    for split in protocol.splits:
        print(describe_split(split), flush=True)
    load = load_table(protocol)
    zero_shot = args.protocol == "scale-up" and not args.no_zero_shot
    # the tasks of each held-out group, as keys of their rows
    tables = {s.benchmark_list: load(s.benchmark_list) for s in protocol.splits}
    expected: dict[tuple[str, str], set] = {}
    for split in protocol.splits:
        for shot in ([False, True] if zero_shot else [False]):
            for task in split_tasks(split, tables[split.benchmark_list], zero_shot=shot):
                group = (split.benchmarks, "+".join(task.group))
                expected.setdefault(group, set()).add((split.k, shot))
    done: set[tuple[str, str]] = set()
    if paths["predictions"].exists():
        old = pd.read_csv(paths["predictions"])
        keys = task_keys(old)
        seen: dict[tuple[str, str], set] = {}
        for row in keys.drop_duplicates().itertuples(index=False):
            seen.setdefault((row.benchmarks, row.test_families), set()).add(
                (int(row.split_k), bool(row.zero_shot)))
        done = {g for g, tasks in expected.items() if seen.get(g, set()) >= tasks}
        partial = [g for g in seen if g not in done]
        if partial:  # rows of groups cut short: dropped, the groups rerun
            drop_groups([paths["predictions"], paths["fits"], paths["conditioning"]], partial)
            print(f"rerunning {len(partial)} group(s) cut short: {partial}", flush=True)
    sloth = sloth_forecaster(sloth_options(args), conditioning=args.conditioning, seed=args.seed)
    methods = [sloth, *(baseline_forecaster(b, seed=args.seed) for b in BASELINES)]
    append = SweepWriter(paths["predictions"], {paths["fits"]: sloth.fits,
                                                paths["conditioning"]: sloth.conditioning})

    start = time.perf_counter()
    for setting in dict.fromkeys(s.benchmarks for s in protocol.splits):
        if args.settings and setting not in args.settings:
            continue
        groups = [g for (b, g) in expected if b == setting and (b, g) not in done]
        if groups:
            evaluate(protocol, load, methods, settings=[setting], groups=groups,
                     also_zero_shot=zero_shot, on_task=append)
    print(f"sweep finished in {time.perf_counter() - start:.0f} s")


# ------------------------------------------------------------------------------ report
def quantile_levels(columns) -> dict[float, tuple[str, str]]:
    """Central interval levels the predictions' quantile columns give: ``q05``/``q95`` ->
    0.90, ``q25``/``q75`` -> 0.50, ``q025``/``q975`` -> 0.95 (a column ``qDIGITS`` is the
    quantile ``0.DIGITS``)."""
    quantiles = {}
    for column in columns:
        match = re.fullmatch(r"q(\d+)", str(column))
        if match:
            quantiles[int(match.group(1)) / 10 ** len(match.group(1))] = str(column)
    return {round(hi - lo, 6): (quantiles[lo], quantiles[hi])
            for lo in quantiles for hi in quantiles
            if lo < 0.5 < hi and abs(lo + hi - 1) < 1e-9}


LEVELS = (0.5, 0.8, 0.9, 0.95)


def with_metrics(pred: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Rows with ``abs_error``, ``width90`` and a ``covNN`` column per level available (from
    quantile columns, else from a ``pit`` column)."""
    p = pred.assign(abs_error=(pred["mean"] - pred.observed).abs(), width90=pred.q95 - pred.q05)
    pairs = quantile_levels(pred.columns)
    names = []
    for level in LEVELS:
        name = f"cov{round(level * 100)}"
        if level in pairs:
            lo, hi = pairs[level]
            p[name] = (p.observed >= p[lo]) & (p.observed <= p[hi])
        elif "pit" in p:
            p[name] = (p["pit"] - 0.5).abs() <= level / 2
        else:
            continue
        names.append(name)
    return p, names


def summary_table(p: pd.DataFrame, coverage: list[str], keys: list[str]) -> pd.DataFrame:
    """Per method and ``keys``: groups, family-averaged MAE (a group's mean error, then the
    mean over groups), coverage, 90% width, CRPS, scores."""
    per_group = p.groupby(["method", *keys, "test_families"], sort=False).abs_error.mean()
    family = per_group.groupby(level=["method", *keys], sort=False).agg(["mean", "size"])
    family.columns = ["family_mae", "groups"]
    cells = p.groupby(["method", *keys], sort=False).agg(
        **{c: (c, "mean") for c in coverage}, width90=("width90", "mean"),
        crps=("crps", "mean"), scores=("abs_error", "size"))
    return family.join(cells).reset_index()


def markdown(frame: pd.DataFrame, coverage: list[str]) -> list[str]:
    fmt = {"family_mae": "{:.4f}", "width90": "{:.3f}", "crps": "{:.4f}",
           **{c: "{:.3f}" for c in coverage}}
    columns = list(frame.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.itertuples(index=False):
        cells = [fmt[c].format(v) if c in fmt and pd.notna(v) else
                 (f"{v:.3g}" if isinstance(v, float) else str(v))
                 for c, v in zip(columns, row, strict=True)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def extrapolation_figures(protocol) -> pd.DataFrame:
    """Per task and test model: its compute ratio and whether it lies beyond the task's
    training data (the observed models included), as :class:`DesignRange` defines them, and
    its scale-up factor: its compute over the largest of its family's observed models
    (``nan`` where none is observed)."""
    from sloth.data.mapping import training_compute
    from sloth.evaluation.protocol import split_tasks
    from sloth.model.design import DesignRange

    load = load_table(protocol)
    rows = []
    for split in protocol.splits:
        for task in split_tasks(split, load(split.benchmark_list)):
            train = task.training_table(include_observed=True)
            figures = DesignRange.fit(train.params, train.tokens).figures(
                task.test.params.to_numpy(), task.test.tokens.to_numpy())
            largest = task.observed.assign(c=training_compute(
                task.observed.params, task.observed.tokens)).groupby("family").c.max()
            scale = training_compute(task.test.params, task.test.tokens) / task.test.family.map(
                largest).to_numpy(dtype=float)
            rows.append(pd.DataFrame({
                "benchmarks": split.benchmarks, "split_k": split.k,
                "test_families": "+".join(task.group), "model": task.test.model.to_numpy(),
                "compute_ratio": figures["compute_ratio"],
                "extrapolating": figures["extrapolating"], "scale_factor": scale}))
    return pd.concat(rows, ignore_index=True)


def report(args: argparse.Namespace) -> None:
    from sloth.evaluation.protocol import describe_split, load_protocol

    paths = files(args.tag)
    protocol = load_protocol(paths["splits"])
    p, coverage = with_metrics(pd.read_csv(paths["predictions"]))
    p["setting"] = [f"{b}/{'cutoff' if args.protocol == 'compute-cutoff' else f'k={k}'}"
                    + ("/zero-shot" if z else "")
                    for b, k, z in zip(p.benchmarks, p.split_k, task_keys(p).zero_shot,
                                       strict=True)]
    lines = [f"# {args.protocol} protocol", "", "Splits:", ""]
    lines += [f"- {describe_split(s)}" for s in protocol.splits]
    table = summary_table(p, coverage, ["setting"])
    lines += ["", "Per setting (family-averaged MAE: a held-out group's mean absolute error "
              "over its test models and benchmarks, then the mean over groups; coverage of "
              "the central intervals over all scores):", ""]
    lines += markdown(table.sort_values(["setting", "method"]), coverage)
    # sloth against the best baseline, per setting and over all settings
    wide = table.pivot(index="setting", columns="method", values="family_mae")
    cov90 = table.pivot(index="setting", columns="method", values="cov90")
    if "sloth" in wide:
        best = wide[[c for c in wide if c != "sloth"]]
        lines += ["", "| setting | sloth MAE | best baseline | its MAE | sloth 90% coverage | "
                  "sloth below the best baseline |", "|---|---|---|---|---|---|"]
        for setting, row in wide.iterrows():
            name = best.loc[setting].idxmin()
            lines.append(f"| {setting} | {row['sloth']:.4f} | {name} | "
                         f"{best.loc[setting, name]:.4f} | {cov90.loc[setting, 'sloth']:.3f} | "
                         f"{'yes' if row['sloth'] < best.loc[setting, name] else 'no'} |")
        shots = p[~task_keys(p).zero_shot]
        overall = summary_table(shots.assign(all="all"), coverage, ["all"]).drop(columns="all")
        lines += ["", "All settings pooled (zero-shot rows left out; family-averaged MAE over "
                  "every held-out group of every setting):", ""]
        lines += markdown(overall, coverage)
    # sloth by distance outside the training data
    figures = extrapolation_figures(protocol)
    merged = p[p.method == "sloth"].merge(figures, on=["benchmarks", "split_k", "test_families",
                                                       "model"], how="left")
    if len(merged):
        bins = pd.cut(merged.compute_ratio, [0, 1 / 3, 1 - 1e-12, 1 + 1e-12, 3, 10, np.inf],
                      labels=["< 1/3", "1/3 to 1", "inside", "1 to 3", "3 to 10", "> 10"])
        scale = pd.cut(merged.scale_factor, [0, 4, 10, 30, 100, np.inf], right=False,
                       labels=["< 4x", "4x to 10x", "10x to 30x", "30x to 100x", ">= 100x"])
        merged = merged.assign(compute_bin=bins.astype(str),
                               scale_bin=scale.astype(str).where(scale.notna(), "none observed"),
                               beyond=merged.extrapolating.map({True: "beyond the data",
                                                                False: "within the data"}))
        for key, title in (("beyond", "beyond the training data or within it "
                            "(sloth.model.design.DesignRange: 3x outside the range of N, D or "
                            "C, or farther than any training model)"),
                           ("compute_bin", "compute ratio to the training data's range"),
                           ("scale_bin", "scale-up factor (compute over the largest observed "
                            "compute of the family; the zero-shot rows by the same models)")):
            part = summary_table(merged, coverage, ["setting", key]).drop(columns="method")
            order = {"compute_bin": list(bins.cat.categories),
                     "scale_bin": [*scale.cat.categories, "none observed"]}.get(key)
            if order is not None:  # the bins in their order, not the alphabet's
                part[key] = pd.Categorical(part[key], categories=order, ordered=True)
            lines += ["", f"sloth by {title}:", ""]
            lines += markdown(part.sort_values(["setting", key]), coverage)
    if paths["conditioning"].exists():
        cond = pd.read_csv(paths["conditioning"])
        imp = cond[cond.method != "population"]
        if len(imp):
            lines += ["", f"Conditioning: {len(imp)} family forecasts conditioned on observed "
                      f"models; Pareto k-hat median {imp.khat.median():.2f}, "
                      f"{int((imp.method == 'refit').sum())} refitted (k-hat > 0.7)."]
    if paths["fits"].exists():
        fits = pd.read_csv(paths["fits"])
        lines += ["", f"Fits (sloth): {len(fits)} fits; wall seconds median "
                  f"{fits.fit_seconds.median():.1f}, max {fits.fit_seconds.max():.1f}, total "
                  f"{fits.fit_seconds.sum() / 60:.1f} min; worst R-hat {fits.rhat_max.max():.3f} "
                  f"(fits with R-hat > 1.05: {int((fits.rhat_max > 1.05).sum())}); divergences "
                  f"total {fits.divergences.sum()}."]
    text = "\n".join(lines) + "\n"
    (ROOT / "benchmarks" / f"results_{args.tag}range.md").write_text(text)
    print(text)


def main() -> int:
    # as the command line does: chains in parallel on CPU devices, compiled programs kept
    from sloth.cli.main import configure_process

    configure_process()
    from sloth.evaluation.protocol import DEFAULT_CUTOFF_QUANTILE, MIN_COMPUTE_RATIO

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", required=True, choices=("scale-up", "compute-cutoff"))
    parser.add_argument("--report", action="store_true", help="only write the tables")
    parser.add_argument("--settings", nargs="+", default=None,
                        help="only these benchmark groups (default: v1, v2, all)")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2],
                        help="scale-up: observed models per held-out family")
    parser.add_argument("--min-compute-ratio", type=float, default=MIN_COMPUTE_RATIO)
    parser.add_argument("--cutoff", type=float, default=DEFAULT_CUTOFF_QUANTILE,
                        help="compute-cutoff: FLOPs, or a quantile in (0, 1) of each "
                             "benchmark group's compute")
    parser.add_argument("--no-zero-shot", action="store_true",
                        help="scale-up: skip the zero-shot forecasts of the same test models")
    add_sloth_options(parser)  # the paper sweep's sloth settings, the same defaults
    parser.add_argument("--tag", default=None,
                        help="prefix of the output files (default: the protocol's name and _)")
    parser.add_argument("--fresh", action="store_true",
                        help="start over (new splits too) instead of resuming")
    args = parser.parse_args()
    args.tag = args.tag if args.tag is not None else f"{args.protocol}_"
    report(args) if args.report else sweep(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
