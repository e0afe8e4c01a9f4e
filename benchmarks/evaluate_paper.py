"""The Sloth paper's leave-one-family-out sweep: sloth and the baselines, all six settings.

Runs the protocol of ``../shared/protocols/sloth-paper-splits.json`` (v1, v2, all; k = 1, 2)
plus the zero-shot forecasts (k = 0) on the same test models, with sloth's conditioning
forecast (one fit per held-out family group serves k = 0, 1, 2) and the baselines, and
writes

- ``benchmarks/out/paper_predictions.csv`` (one row per method, held-out model, benchmark),
- ``benchmarks/out/paper_fits.csv`` (one row per sloth fit: seconds, R-hat, divergences),
- ``benchmarks/results_evaluate.md`` (the tables for RESULTS.md, via ``--report``), with the
  PIT histograms of every method in ``benchmarks/figures/pit_paper.png`` (``pit_<tag>.png``).

``--training corpus`` trains every method on the merged corpus
(:func:`sloth.data.corpus.load_corpus`: the leaderboard and the Observational Scaling Laws
files) instead of the leaderboard alone: each task's training rows gain the corpus's models
that are not in the leaderboard's table of the split, less every row of the held-out families
and of the families derived from them (:func:`sloth.data.corpus.derived_families`). The test
models and their scores stay the leaderboard's, so the figures compare with the leaderboard
runs. The output files are prefixed ``paper_corpus_`` (``--tag``), and
``<tag>training.csv`` records per task how many extra rows were kept and why the others
were not.

Usage::

    SLOTH_DATA_DIR=../shared/data python benchmarks/evaluate_paper.py            # sweep
    SLOTH_DATA_DIR=../shared/data python benchmarks/evaluate_paper.py --report   # tables
    SLOTH_DATA_DIR=../shared/data python benchmarks/evaluate_paper.py --training corpus
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from sloth import defaults
from sloth.cli.common import max_samples_option
from sloth.data.table import MODEL

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = ROOT.parent / "shared" / "protocols"
OUT = ROOT / "benchmarks" / "out"
FIGURES = ROOT / "benchmarks" / "figures"
BASELINES = ("per_benchmark_flops_sigmoid_family_intercept", "per_benchmark_flops_sigmoid_shared",
             "pca_observational_d3")
SETTINGS = [("v1", 1), ("v1", 2), ("v2", 1), ("v2", 2), ("all", 1), ("all", 2)]


def drop_groups(paths: Iterable[Path], groups: Collection[tuple[str, str]]) -> None:
    """Rewrite each existing CSV of ``paths`` without the rows of ``groups``, pairs of
    (``benchmarks``, ``test_families``): a resumed sweep reruns those groups whole."""
    for path in paths:
        if not path.exists():
            continue
        rows = pd.read_csv(path)
        pairs = pd.Series(list(zip(rows.benchmarks, rows.test_families, strict=True)))
        rows[~pairs.isin(set(groups)).to_numpy()].to_csv(path, index=False)


class SweepWriter:
    """Appends a sweep's rows as each task finishes (the ``on_task`` of ``evaluate``): the
    task's predictions, and the records that lists (a forecaster's ``fits`` and
    ``conditioning``) gained since the last call, each to its CSV, in the columns of a file
    being resumed."""

    def __init__(self, predictions: Path, records: Mapping[Path, list[dict]]) -> None:
        self.predictions = predictions
        self.records = dict(records)
        self.written = {path: len(rows) for path, rows in self.records.items()}

    @staticmethod
    def _append(path: Path, rows: pd.DataFrame) -> None:
        if path.exists():  # the columns of the file being resumed
            rows = rows.reindex(columns=pd.read_csv(path, nrows=0).columns)
        rows.to_csv(path, mode="a", header=not path.exists(), index=False)

    def __call__(self, rows: pd.DataFrame) -> None:
        self._append(self.predictions, rows)
        for path, records in self.records.items():
            new = pd.DataFrame(records[self.written[path]:])
            if len(new):
                self._append(path, new)
            self.written[path] = len(records)


def load_training_corpus(protocol):
    """The merged corpus on the protocol's benchmarks and floors (leaderboard first)."""
    from sloth.data.corpus import load_corpus

    benchmarks = list(dict.fromkeys(b for s in protocol.splits for b in s.benchmark_list))
    return load_corpus(sources=("leaderboard", "obsscaling"), benchmarks=benchmarks,
                       options={"leaderboard": {"family_column": protocol.family_column}},
                       floors=protocol.floors)


def training_audit(protocol, load, corpus, derived, settings, ks) -> pd.DataFrame:
    """Per task (setting, k, held-out group): the corpus rows kept as extra training rows and
    those removed, by rule (:func:`sloth.evaluation.protocol.extra_training_rows`); of the
    kept, those whose row comes from another source than the leaderboard (``kept_new``), and
    those the leaderboard holds but that lack one of the split's benchmarks there; and the
    derived families removed."""
    from sloth.evaluation.protocol import extra_training_rows, split_tasks

    extra = corpus.table
    source = dict(zip(corpus.provenance[MODEL], corpus.provenance["source"], strict=True))
    rows = []
    tables = {}
    for split in protocol.splits:
        if split.benchmarks not in settings or split.k not in ks:
            continue
        if split.benchmark_list not in tables:
            tables[split.benchmark_list] = load(split.benchmark_list)
        for task in split_tasks(split, tables[split.benchmark_list]):
            kept, removed = extra_training_rows(extra, task.table, task.group, derived=derived)
            leaked = sorted(set(kept.family) & set(task.group))
            if leaked or set(kept.models) & set(task.test[MODEL]):
                raise AssertionError(f"{split.label} {task.group}: extra rows of the held-out "
                                     f"families {leaked} or of test models were kept")
            rows.append({"benchmarks": split.benchmarks, "k": split.k,
                         "test_families": "+".join(task.group),
                         "table_models": task.table.n_models, **removed,
                         "kept_new": sum(source[m] != "leaderboard" for m in kept.models),
                         "kept_scores": kept.n_scores,
                         "derived_families": " ".join(sorted(
                             {r for f in task.group for r in derived.get(f, ())}
                             & set(extra.family)))})
    return pd.DataFrame(rows)


def sweep(args: argparse.Namespace) -> None:
    from sloth.data.leaderboard import load_leaderboard
    from sloth.evaluation.harness import baseline_forecaster, evaluate, sloth_forecaster
    from sloth.evaluation.protocol import load_protocol

    protocol = load_protocol(PROTOCOLS / "sloth-paper-splits.json")
    OUT.mkdir(parents=True, exist_ok=True)
    predictions = OUT / f"{args.tag}predictions.csv"
    fits_file = OUT / f"{args.tag}fits.csv"
    conditioning_file = OUT / f"{args.tag}conditioning.csv"
    done = set()
    if predictions.exists() and not args.fresh:  # resume: skip finished groups
        from sloth.evaluation.harness import PREDICTION_COLUMNS

        old = pd.read_csv(predictions)
        # a group is done when every split (k) that holds it has rows; the rows of a group
        # stopped between its splits are dropped, and the group runs again whole
        wanted = {(s.benchmarks, s.k, "+".join(g)) for s in protocol.splits
                  if s.k in args.k for g in s.test_families}
        have = set(zip(old.benchmarks, old.split_k, old.test_families, strict=True))
        done = {(b, g) for b, _, g in wanted} - {(b, g) for b, k, g in wanted - have}
        partial = {(b, g) for b, _, g in have} - done
        if partial:
            drop_groups([predictions, fits_file, conditioning_file], partial)
        lost = [c for c in PREDICTION_COLUMNS if c not in old.columns]
        if lost:
            print(f"resuming {predictions}, written before the columns {lost}: the new rows "
                  f"are written without them too (--fresh starts over with them)")
    elif predictions.exists():
        predictions.unlink()
        fits_file.unlink(missing_ok=True)
        conditioning_file.unlink(missing_ok=True)
    sloth = sloth_forecaster(sloth_options(args), conditioning=args.conditioning, seed=args.seed)
    methods = [sloth, *(baseline_forecaster(b) for b in BASELINES)]

    def load(benchmarks):
        return load_leaderboard(benchmarks=list(benchmarks), family_column=protocol.family_column,
                                floors=protocol.floors)

    append = SweepWriter(predictions, {fits_file: sloth.fits,
                                       conditioning_file: sloth.conditioning})
    extra = {}
    if args.training == "corpus":
        from sloth.data.corpus import derived_families

        corpus = load_training_corpus(protocol)
        extra = {"extra_training": corpus.table, "derived_families": derived_families()}
        audit = training_audit(protocol, load, corpus, extra["derived_families"],
                               args.settings, args.k)
        audit.to_csv(OUT / f"{args.tag}training.csv", index=False)
        print(f"corpus: {corpus.table.n_models} models, {len(corpus.table.families)} "
              f"families, {corpus.table.n_scores} scores; extra training rows per task: "
              f"median {audit.kept.median():.0f} (min {audit.kept.min()}, max "
              f"{audit.kept.max()}); rows of derived families removed in "
              f"{int((audit.derived > 0).sum())} of {len(audit)} tasks")

    start = time.perf_counter()
    for setting in args.settings:
        groups = [
            "+".join(g) for s in protocol.splits if s.benchmarks == setting
            for g in s.test_families if (setting, "+".join(g)) not in done
        ]
        if not groups:
            continue
        evaluate(protocol, load, methods, settings=[setting], ks=args.k, groups=groups,
                 also_zero_shot=args.conditioning == "forecast", on_task=append, **extra)
    print(f"sweep finished in {time.perf_counter() - start:.0f} s")


def _coverage(row: pd.Series) -> str:
    """Coverage at every level of a summary row, ``0.512 / 0.804 / 0.901 / 0.951`` (``–``
    for a level the predictions file lacks)."""
    from sloth.evaluation.harness import INTERVALS

    return " / ".join(f"{row[f'coverage{level}']:.3f}" if pd.notna(row[f"coverage{level}"])
                      else "–" for level in INTERVALS)


def _calibration(pred: pd.DataFrame, figure: Path) -> list[str]:
    """Coverage at every level and PIT of every method (k = 1, 2 and zero-shot), and the PIT
    histograms of the k-shot forecasts written to ``figure``; a file without a ``pit``
    column (written before the harness kept it) gets the coverage it has and a note."""
    from sloth.cli.evaluate import write_pit_figure
    from sloth.evaluation.harness import INTERVALS, pit_histogram, summarize

    levels = " / ".join(str(level) for level in INTERVALS)
    has_pit = "pit" in pred and pred["pit"].notna().any()
    parts = {label: part for label, part in (
        ("k = 1, 2", pred[pred.observed_models_per_test_family > 0]),
        ("k = 0", pred[pred.observed_models_per_test_family == 0])) if len(part)}
    overall = {label: summarize(part)["overall"].set_index("method")
               for label, part in parts.items()}
    header = "".join(f" scores ({label}) | coverage {levels}% ({label}) | PIT bins outside "
                     f"({label}) |" for label in parts)
    lines = ["", "Calibration of every method over all held-out scores: coverage of the central "
             f"{levels}% predictive intervals, and bins of its 10-bin PIT histogram outside "
             "the pointwise 99% band of a uniform one (a calibrated method has about 0):", "",
             f"| method |{header}", "|---|" + "---|---|---|" * len(parts)]

    def cells(label: str, method: str) -> str:
        part = parts[label]
        if method not in overall[label].index:
            return " | | |"
        pit = part.loc[part.method == method, "pit"] if has_pit else pd.Series([np.nan])
        outside = pit_histogram(pit).outside if pit.notna().any() else "–"
        return (f" {int((part.method == method).sum())} | "
                f"{_coverage(overall[label].loc[method])} | {outside} |")

    for method in dict.fromkeys(pred.method):
        lines.append(f"| {method} |" + "".join(cells(label, method) for label in parts))
    if not has_pit:
        lines += ["", "PIT histograms: not drawn, the predictions file has no `pit` column "
                  "(written before the harness kept PIT values and the 50, 80 and 95% bounds); "
                  "rerun the sweep with `--fresh` for them."]
    elif "k = 1, 2" in parts:
        write_pit_figure(parts["k = 1, 2"], figure)
        lines += ["", "PIT histograms of the k = 1, 2 forecasts (shaded: the pointwise 99% "
                  "band of a uniform histogram with as many values):", "",
                  f"![PIT histograms](figures/{figure.name})"]
    return lines


def _conditioning(path: Path) -> list[str]:
    """How the k-shot forecasts conditioned each held-out family: the distribution of the
    Pareto k-hat of the importance weights, their ESS, and the share that needed a refit."""
    if not path.exists():
        return []
    cond = pd.read_csv(path)
    cond = cond[cond.method != "population"]  # zero-shot: no weights
    if cond.empty:
        return []
    q = cond.khat.quantile([0.1, 0.5, 0.9]).to_numpy()
    counts = cond.method.value_counts().to_dict()
    return ["", f"Conditioning of the {len(cond)} k-shot family forecasts (importance weights "
            "over the fit's posterior, Pareto-smoothed): k-hat 10/50/90% quantiles "
            f"{q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f}, max {cond.khat.max():.2f}; "
            f"{int((cond.khat > 0.5).sum())} above 0.5, {int((cond.khat > 0.7).sum())} above "
            f"0.7; methods {counts} (refit share "
            f"{counts.get('refit', 0) / len(cond):.1%}); importance ESS median "
            f"{cond.ess.median():.0f}."]


def _training(path: Path) -> list[str]:
    """The corpus a ``--training corpus`` sweep trained on: its counts, its duplicate report
    and, per setting, the extra training rows of the tasks (from ``<tag>training.csv``)."""
    if not path.exists():
        return []
    import warnings

    from sloth.data.corpus import derived_families
    from sloth.evaluation.protocol import load_protocol

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the disagreements are reported below
        corpus = load_training_corpus(load_protocol(PROTOCOLS / "sloth-paper-splits.json"))
    counts = corpus.counts()
    dup = corpus.report.summary()
    by = corpus.report.by_benchmark()
    off = by[by.disagreeing > 0]
    lines = ["", "Training data: the merged corpus (`load_corpus(('leaderboard', 'obsscaling'))`, "
             "leaderboard first), the test models and scores the leaderboard's.", "",
             "| source | models (row from it) | models held | families | scores |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {row.models} | {row.held_by} | {row.families} | {row.scores} |"
              for name, row in counts.iterrows()]
    lines += ["", f"Duplicates: {dup['shared_models']} models held by both sources, "
              f"{dup['shared_scores']} scores held twice, {dup['disagreeing_scores']} of them "
              f"differing by more than {corpus.report.tolerance:g} ("
              + ", ".join(f"{b} {int(r.disagreeing)} of {int(r.shared)}, median difference "
                          f"{r.median_difference:+.3f}" for b, r in off.iterrows())
              + f"); {dup['disagreeing_attributes']} sizes or token counts differing by more "
              f"than {corpus.report.size_rtol:.0%} (the leaderboard's kept)."]
    audit = pd.read_csv(path)
    lines += ["", "Extra training rows per task (corpus rows outside the leaderboard's table "
              "of the split, less the held-out families and the families derived from them):",
              "", "| setting | tasks | extra rows (median, min-max) | of them from the other "
              "source | their scores (median) | tasks removing derived families |",
              "|---|---|---|---|---|---|"]
    for (setting, k), part in audit.groupby(["benchmarks", "k"], sort=False):
        lines.append(f"| {setting}/k={k} | {len(part)} | {part.kept.median():.0f} "
                     f"({part.kept.min()}-{part.kept.max()}) | {part.kept_new.median():.0f} | "
                     f"{part.kept_scores.median():.0f} | {int((part.derived > 0).sum())} |")
    derived = derived_families()
    lines += ["", "Derived families held out with their base: " + "; ".join(
        f"{base}: {', '.join(fams)}" for base, fams in derived.items()) + "."]
    return lines


def report(args: argparse.Namespace) -> None:
    from sloth.evaluation.harness import INTERVALS, reference_table, summarize

    levels = " / ".join(str(level) for level in INTERVALS)
    pred = pd.read_csv(OUT / f"{args.tag}predictions.csv")
    fits = pd.read_csv(OUT / f"{args.tag}fits.csv")
    reference = pd.read_csv(PROTOCOLS / "sloth-paper-reported-mae.csv")
    summary = summarize(pred)["settings"]
    kshot = pred[pred.observed_models_per_test_family > 0]
    ref = reference_table(reference, kshot).set_index(
        ["benchmarks", "observed_models_per_test_family"])
    lines = ["| setting | groups | sloth MAE | reference sloth_d3_trained_link | reference "
             f"best | FLOPs sigmoid (family) | PCA obs. d3 | sloth coverage {levels}% | "
             "width (90%) | CRPS |", "|---|---|---|---|---|---|---|---|---|---|"]
    s = summary.set_index(["method", "benchmarks", "observed_models_per_test_family"])
    rows = []
    for setting, k in SETTINGS:
        if ("sloth", setting, k) not in s.index:
            continue
        ours = s.loc[("sloth", setting, k)]
        r = ref.loc[(setting, k)]
        best = r.drop(labels=[c for c in r.index if not c.startswith("sloth")]).min()
        rows.append((ours.family_mae, r["sloth_d3_trained_link"]))
        lines.append(
            f"| {setting}/k={k} | {int(ours.groups)} | **{ours.family_mae:.4f}** | "
            f"{r['sloth_d3_trained_link']:.4f} | {best:.4f} | "
            f"{s.loc[(BASELINES[0], setting, k)].family_mae:.4f} | "
            f"{s.loc[(BASELINES[2], setting, k)].family_mae:.4f} | {_coverage(ours)} | "
            f"{ours.width90:.3f} | {ours.crps:.4f} |")
    if rows:
        frame = pd.DataFrame(rows, columns=["ours", "ref"])
        lines.append(f"| mean of the settings | | **{frame.ours.mean():.4f}** | "
                     f"{frame.ref.mean():.4f} | | | | | | |")
    sk = kshot[kshot.method == "sloth"]
    lines.append("")
    if len(sk):
        overall = summarize(sk)["overall"].iloc[0]
        lines.append(f"Overall coverage of the central {levels}% intervals of sloth over all "
                     f"{len(sk)} held-out scores (k = 1, 2): {_coverage(overall)}.")
    # zero-shot
    zero = pred[pred.observed_models_per_test_family == 0]
    if len(zero):
        lines += ["", "Zero-shot (k = 0: the held-out families contribute no model; the same "
                  "test models as each split):", "",
                  f"| split | sloth zero-shot MAE | sloth coverage {levels}% | FLOPs sigmoid "
                  "shared (this run) | reference per_benchmark_flops_sigmoid_shared |",
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
                f"{_coverage(summ.loc['sloth'])} | "
                f"{summ.loc[BASELINES[1]].family_mae:.4f} | "
                f"{ref_k['per_benchmark_flops_sigmoid_shared']:.4f} |")
    lines += _calibration(pred, FIGURES / f"pit_{args.tag.rstrip('_') or 'evaluate'}.png")
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
    lines.append(
        f"Convergence over every sampled variable: {int((fits.rhat_max <= 1.01).sum())} of "
        f"{len(fits)} fits at R-hat <= 1.01, {int((fits.rhat_max <= 1.05).sum())} at <= 1.05"
        + ("; worst variables: " + ", ".join(
            f"{v} {n}" for v, n in fits.worst_rhat_variable.value_counts().items())
           if "worst_rhat_variable" in fits else "") + ".")
    if "draws_per_chain" in fits:  # files written before sampling until mixed
        drawn = fits.draws_per_chain
        lines.append(
            f"Draws per chain: {args.samples} to start; {int((drawn > args.samples).sum())} of "
            f"{len(fits)} fits drew on until mixed (median {drawn.median():.0f}, max "
            f"{drawn.max():.0f}; {int((drawn >= drawn.max()).sum())} at the largest).")
    lines += _conditioning(OUT / f"{args.tag}conditioning.csv")
    lines += _training(OUT / f"{args.tag}training.csv")
    text = "\n".join(lines) + "\n"
    (ROOT / "benchmarks" / f"results_{args.tag}evaluate.md").write_text(text)
    print(text)


def add_sloth_options(parser: argparse.ArgumentParser) -> None:
    """The options of sloth's fits in a sweep (:func:`sloth_options` reads them)."""
    parser.add_argument("--skills", type=lambda t: t if t == "auto" else int(t),
                        default=defaults.N_SKILLS,
                        help="number of latent skills d, or 'auto' (3; 2 for six benchmarks)")
    parser.add_argument("--link", default=defaults.LINK)
    parser.add_argument("--conditioning", default=defaults.CONDITIONING,
                        choices=("forecast", "refit"))
    sampler = defaults.EVALUATION_SAMPLER
    parser.add_argument("--chains", type=int, default=sampler["num_chains"])
    parser.add_argument("--warmup", type=int, default=sampler["num_warmup"])
    parser.add_argument("--samples", type=int, default=sampler["num_samples"])
    parser.add_argument("--max-samples", type=max_samples_option, default=sampler["max_samples"],
                        help="draws per chain at most while the chains have not mixed "
                             "('auto': four times --samples; 'none': exactly --samples)")
    parser.add_argument("--map-starts", type=int, default=2)
    parser.add_argument("--max-tree-depth", type=int, default=sampler["max_tree_depth"],
                        help="cap on NUTS trees: bounds the time of a badly conditioned split")
    parser.add_argument("--family-benchmark-effects", action=argparse.BooleanOptionalAction,
                        default=True, help="model each family's own deviation per benchmark")
    parser.add_argument("--family-parametrization", default="centered",
                        choices=("centered", "non_centered"),
                        help="the family efficiencies as sampled (SlothModel's default: "
                        "centered)")
    parser.add_argument("--seed", type=int, default=0, help="seed of sloth's fits and forecasts")


def sloth_options(args: argparse.Namespace) -> dict:
    """SlothModel keywords of the options of :func:`add_sloth_options`."""
    return {"n_skills": args.skills, "link": args.link, "num_chains": args.chains,
            "num_warmup": args.warmup, "num_samples": args.samples,
            "max_samples": args.max_samples, "map_starts": args.map_starts,
            "family_benchmark_effects": args.family_benchmark_effects,
            "family_parametrization": args.family_parametrization,
            "max_tree_depth": args.max_tree_depth}


def main() -> int:
    # as the command line does: chains in parallel on CPU devices, compiled programs kept
    from sloth.cli.main import configure_process

    configure_process()
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", action="store_true", help="only write the tables")
    parser.add_argument("--settings", nargs="+", default=["all", "v2", "v1"])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2])
    add_sloth_options(parser)
    parser.add_argument("--training", default="leaderboard", choices=("leaderboard", "corpus"),
                        help="training data: the leaderboard alone, or the merged corpus "
                        "(leaderboard and Observational Scaling Laws; the test models stay "
                        "the leaderboard's)")
    parser.add_argument("--tag", default=None,
                        help="prefix of the output files (default paper_, or paper_corpus_ "
                        "with --training corpus)")
    parser.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    args = parser.parse_args()
    if args.tag is None:
        args.tag = "paper_corpus_" if args.training == "corpus" else "paper_"
    report(args) if args.report else sweep(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
