"""The Sloth paper's leave-one-family-out sweep: sloth and the baselines, all six settings.

Runs the protocol of ``../shared/protocols/sloth-paper-splits.json`` (v1, v2, all; k = 1, 2)
plus the zero-shot forecasts (k = 0) on the same test models, with sloth's conditioning
forecast (one fit per held-out family group serves k = 0, 1, 2) and the baselines, and
writes

- ``benchmarks/out/paper_predictions.csv`` (one row per method, held-out model, benchmark),
- ``benchmarks/out/paper_fits.csv`` (one row per sloth fit: seconds, R-hat, divergences),
- ``benchmarks/results_evaluate.md`` (the tables for RESULTS.md, via ``--report``).

Usage::

    SLOTH_DATA_DIR=../shared/data python benchmarks/evaluate_paper.py            # sweep
    SLOTH_DATA_DIR=../shared/data python benchmarks/evaluate_paper.py --report   # tables
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = ROOT.parent / "shared" / "protocols"
OUT = ROOT / "benchmarks" / "out"
BASELINES = ("per_benchmark_flops_sigmoid_family_intercept", "per_benchmark_flops_sigmoid_shared",
             "pca_observational_d3")
SETTINGS = [("v1", 1), ("v1", 2), ("v2", 1), ("v2", 2), ("all", 1), ("all", 2)]


def sweep(args: argparse.Namespace) -> None:
    from sloth.data.leaderboard import load_leaderboard
    from sloth.evaluation.harness import baseline_forecaster, evaluate, sloth_forecaster
    from sloth.evaluation.protocol import load_protocol

    protocol = load_protocol(PROTOCOLS / "sloth-paper-splits.json")
    OUT.mkdir(parents=True, exist_ok=True)
    predictions = OUT / f"{args.tag}predictions.csv"
    fits_file = OUT / f"{args.tag}fits.csv"
    done = set()
    if predictions.exists() and not args.fresh:  # resume: skip finished groups
        old = pd.read_csv(predictions)
        done = set(zip(old.benchmarks, old.test_families, strict=True))
    elif predictions.exists():
        predictions.unlink()
        fits_file.unlink(missing_ok=True)
    sloth = sloth_forecaster(sloth_options(args), conditioning=args.conditioning, seed=args.seed)
    methods = [sloth, *(baseline_forecaster(b) for b in BASELINES)]

    def load(benchmarks):
        return load_leaderboard(benchmarks=list(benchmarks), family_column=protocol.family_column,
                                floors=protocol.floors)

    written = len(sloth.fits)

    def append(rows: pd.DataFrame) -> None:
        nonlocal written
        if predictions.exists():  # the columns of the file being resumed
            rows = rows.reindex(columns=pd.read_csv(predictions, nrows=0).columns)
        rows.to_csv(predictions, mode="a", header=not predictions.exists(), index=False)
        new = pd.DataFrame(sloth.fits[written:])
        if len(new):
            new.to_csv(fits_file, mode="a", header=not fits_file.exists(), index=False)
        written = len(sloth.fits)

    start = time.perf_counter()
    for setting in args.settings:
        groups = [
            "+".join(g) for s in protocol.splits if s.benchmarks == setting
            for g in s.test_families if (setting, "+".join(g)) not in done
        ]
        if not groups:
            continue
        evaluate(protocol, load, methods, settings=[setting], ks=args.k, groups=groups,
                 also_zero_shot=args.conditioning == "forecast", on_task=append)
    print(f"sweep finished in {time.perf_counter() - start:.0f} s")


def report(args: argparse.Namespace) -> None:
    from sloth.evaluation.harness import reference_table, summarize

    pred = pd.read_csv(OUT / f"{args.tag}predictions.csv")
    fits = pd.read_csv(OUT / f"{args.tag}fits.csv")
    reference = pd.read_csv(PROTOCOLS / "sloth-paper-reported-mae.csv")
    summary = summarize(pred)["settings"]
    kshot = pred[pred.observed_models_per_test_family > 0]
    ref = reference_table(reference, kshot).set_index(
        ["benchmarks", "observed_models_per_test_family"])
    lines = ["| setting | groups | sloth MAE | reference sloth_d3_trained_link | reference "
             "best | FLOPs sigmoid (family) | PCA obs. d3 | sloth 90% coverage | width | "
             "CRPS |", "|---|---|---|---|---|---|---|---|---|---|"]
    s = summary.set_index(["method", "benchmarks", "observed_models_per_test_family"])
    rows = []
    for setting, k in SETTINGS:
        if ("sloth", setting, k) not in s.index:
            continue
        ours = s.loc[("sloth", setting, k)]
        r = ref.loc[(setting, k)]
        best = r.drop(labels=[c for c in r.index if not c.startswith("sloth")]).min()
        rows.append((ours.family_mae, r["sloth_d3_trained_link"], ours.coverage90))
        lines.append(
            f"| {setting}/k={k} | {int(ours.groups)} | **{ours.family_mae:.4f}** | "
            f"{r['sloth_d3_trained_link']:.4f} | {best:.4f} | "
            f"{s.loc[(BASELINES[0], setting, k)].family_mae:.4f} | "
            f"{s.loc[(BASELINES[2], setting, k)].family_mae:.4f} | {ours.coverage90:.3f} | "
            f"{ours.width90:.3f} | {ours.crps:.4f} |")
    if rows:
        frame = pd.DataFrame(rows, columns=["ours", "ref", "cov"])
        lines.append(f"| mean of the settings | | **{frame.ours.mean():.4f}** | "
                     f"{frame.ref.mean():.4f} | | | | | | |")
    sk = kshot[kshot.method == "sloth"]
    covered = ((sk.observed >= sk.q05) & (sk.observed <= sk.q95)).mean()
    lines.append("")
    lines.append(f"Overall 90% coverage of sloth over all {len(sk)} held-out scores (k = 1, 2): "
                 f"{covered:.3f}.")
    # zero-shot
    zero = pred[pred.observed_models_per_test_family == 0]
    if len(zero):
        lines += ["", "Zero-shot (k = 0: the held-out families contribute no model; the same "
                  "test models as each split):", "",
                  "| split | sloth zero-shot MAE | sloth coverage | FLOPs sigmoid shared "
                  "(this run) | reference per_benchmark_flops_sigmoid_shared |",
                  "|---|---|---|---|---|"]
        for setting, k in SETTINGS:
            part = zero[(zero.benchmarks == setting) & (zero.split_k == k)]
            if part.empty:
                continue
            summ = summarize(part)["settings"].set_index("method")
            ref_k = reference_table(reference, part).set_index(
                ["benchmarks", "observed_models_per_test_family"]).loc[(setting, k)]
            lines.append(
                f"| {setting}/k={k} | {summ.loc['sloth'].family_mae:.4f} | "
                f"{summ.loc['sloth'].coverage90:.3f} | "
                f"{summ.loc[BASELINES[1]].family_mae:.4f} | "
                f"{ref_k['per_benchmark_flops_sigmoid_shared']:.4f} |")
    if "median" in sk and sk["median"].notna().any():
        with_median = sk[sk["median"].notna()]
        mae_mean = (with_median["mean"] - with_median.observed).abs().mean()
        mae_median = (with_median["median"] - with_median.observed).abs().mean()
        lines += ["", f"Point forecast: on the {len(with_median)} held-out scores whose "
                  f"predictive median was kept, MAE of the posterior predictive mean "
                  f"{mae_mean:.4f}, of its median {mae_median:.4f} (score-averaged)."]
    if "skills" not in fits:  # files written before the column
        fits["skills"] = args.skills
    per = fits.groupby("benchmarks").agg(
        skills=("skills", "first"),
        fits=("fit_seconds", "size"), median_s=("fit_seconds", "median"),
        max_s=("fit_seconds", "max"), map_s=("map_seconds", "median"),
        models=("models", "median"), rhat=("rhat_max", "max"),
        divergences=("divergences", "sum"), steps=("mean_leapfrog_steps", "mean"))
    lines += ["", "| benchmarks | d | fits | models (median) | fit s (median) | fit s (max) | "
              "MAP s (median) | worst R-hat | divergences | leapfrog steps |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in per.iterrows():
        lines.append(f"| {name} | {int(row.skills)} | {int(row.fits)} | {row.models:.0f} | "
                     f"{row.median_s:.1f} | "
                     f"{row.max_s:.1f} | {row.map_s:.1f} | {row.rhat:.3f} | "
                     f"{int(row.divergences)} | {row.steps:.0f} |")
    lines += ["", "Fits (sloth): " + (
        f"{len(fits)} fits, {int((fits.fit_seconds <= 30).sum())} of them within 30 s; "
        f"wall seconds median {fits.fit_seconds.median():.1f}, max "
        f"{fits.fit_seconds.max():.1f}, total {fits.fit_seconds.sum() / 60:.1f} min; "
        f"worst R-hat {fits.rhat_max.max():.3f} (fits with R-hat > 1.05: "
        f"{int((fits.rhat_max > 1.05).sum())}); divergences total {fits.divergences.sum()}; "
        f"mean leapfrog steps {fits.mean_leapfrog_steps.mean():.0f}.")]
    text = "\n".join(lines) + "\n"
    (ROOT / "benchmarks" / f"results_{args.tag}evaluate.md").write_text(text)
    print(text)


def add_sloth_options(parser: argparse.ArgumentParser) -> None:
    """The options of sloth's fits in a sweep (:func:`sloth_options` reads them)."""
    parser.add_argument("--skills", type=lambda t: t if t == "auto" else int(t), default=3,
                        help="number of latent skills d, or 'auto' (3; 2 for six benchmarks)")
    parser.add_argument("--link", default="flexible")
    parser.add_argument("--conditioning", default="forecast", choices=("forecast", "refit"))
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--map-starts", type=int, default=2)
    parser.add_argument("--max-tree-depth", type=int, default=8,
                        help="cap on NUTS trees: bounds the time of a badly conditioned split")
    parser.add_argument("--family-benchmark-effects", action=argparse.BooleanOptionalAction,
                        default=True, help="model each family's own deviation per benchmark")
    parser.add_argument("--seed", type=int, default=0, help="seed of sloth's fits and forecasts")


def sloth_options(args: argparse.Namespace) -> dict:
    """SlothModel keywords of the options of :func:`add_sloth_options`."""
    return {"n_skills": args.skills, "link": args.link, "num_chains": args.chains,
            "num_warmup": args.warmup, "num_samples": args.samples,
            "map_starts": args.map_starts,
            "family_benchmark_effects": args.family_benchmark_effects,
            "max_tree_depth": args.max_tree_depth}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", action="store_true", help="only write the tables")
    parser.add_argument("--settings", nargs="+", default=["all", "v2", "v1"])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2])
    add_sloth_options(parser)
    parser.add_argument("--tag", default="paper_", help="prefix of the output files")
    parser.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    args = parser.parse_args()
    report(args) if args.report else sweep(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
