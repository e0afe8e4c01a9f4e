"""``sloth laws``: fit loss scaling laws and compute-optimal allocations from the shell.

::

    sloth laws fit RUNS.csv --law chinchilla|farseer [--skill-column COL] [--out FILE] [--json]
    sloth laws allocate FILE --compute 1e22 [1e23 ...] [--weights a=0.7,b=0.3] [--json]

The lead's :mod:`sloth.cli.main` calls :func:`add_laws_parser`; each subcommand's ``func(args)``
prints a summary (or JSON with ``--json``) and returns the exit code. Bad input raises
:class:`sloth.exceptions.SlothError` subclasses.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from sloth.cli.common import add_force_option, check_out
from sloth.exceptions import DataValidationError

__all__ = ["add_laws_parser", "run_allocate", "run_fit"]


def add_laws_parser(subparsers: Any) -> None:
    """Add the ``laws`` subcommand (with ``fit`` and ``allocate``) to ``subparsers``."""
    from sloth.laws.forms import available_laws

    laws = subparsers.add_parser(
        "laws", help="loss scaling laws (Chinchilla, Farseer) and compute-optimal allocation",
        description="Fit loss scaling laws to training runs and derive compute-optimal "
                    "model sizes and token counts, with intervals.")
    sub = laws.add_subparsers(dest="laws_command", required=True)

    fit = sub.add_parser("fit", help="fit a law to a CSV of runs",
                         description="Fit a loss law to a CSV with columns N, D (or C = "
                                     "training FLOPs) and loss; optionally one law per skill.")
    fit.add_argument("runs", help="CSV of runs (columns N, D or C, loss)")
    fit.add_argument("--law", default="chinchilla", choices=available_laws())
    fit.add_argument("--method", default="huber", choices=("huber", "bayes"),
                     help="robust least squares with bootstrap (default), or NUTS")
    fit.add_argument("--skill-column", default=None,
                     help="column naming each run's skill/domain: one law per skill")
    fit.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples (huber)")
    fit.add_argument("--max-starts", type=int, default=512,
                     help="L-BFGS starts kept from the grid (huber; 0 = all)")
    fit.add_argument("--warmup", type=int, default=500, help="NUTS warm-up (bayes)")
    fit.add_argument("--samples", type=int, default=500, help="NUTS draws per chain (bayes)")
    fit.add_argument("--chains", type=int, default=2, help="NUTS chains (bayes)")
    fit.add_argument("--drop-highest-loss", type=int, default=0,
                     help="drop this many highest-loss runs first (the Chinchilla "
                          "replication drops 5)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--level", type=float, default=0.95, help="interval level")
    fit.add_argument("--out", default=None, help="write the fit(s) to this JSON file")
    add_force_option(fit)
    fit.add_argument("--json", action="store_true", help="print JSON to stdout")
    fit.set_defaults(func=run_fit)

    alloc = sub.add_parser("allocate", help="compute-optimal N*, D*, D*/N* from a saved fit",
                           description="Compute-optimal allocation at given budgets from a "
                                       "fit file written by 'sloth laws fit --out'.")
    alloc.add_argument("fit_file", help="JSON file from 'sloth laws fit --out'")
    alloc.add_argument("--compute", type=float, nargs="+", required=True,
                       help="training budget(s) in FLOPs, e.g. 1e22")
    alloc.add_argument("--weights", default=None,
                       help="skill mix of the validation loss, e.g. 'knowledge=0.7,code=0.3'")
    alloc.add_argument("--level", type=float, default=0.95, help="interval level")
    alloc.add_argument("--json", action="store_true", help="print JSON to stdout")
    alloc.set_defaults(func=run_allocate)


def _num(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _interval(row: pd.Series, name: str) -> dict[str, float | None]:
    return {"estimate": _num(row[name]),
            "lower": _num(row.get(f"{name}_lower", np.nan)),
            "upper": _num(row.get(f"{name}_upper", np.nan))}


def _fit_record(fit, level: float) -> dict[str, Any]:
    table = fit.param_table(level)
    return {"law": fit.law, "method": fit.method, "skill": fit.skill, "n_runs": fit.n_runs,
            "level": level, "interval_kind": fit.draw_kind,
            "params": {k: {"estimate": _num(r["estimate"]), "lower": _num(r["lower"]),
                           "upper": _num(r["upper"])} for k, r in table.iterrows()},
            "internal_params": {k: {"estimate": _num(r["estimate"]), "lower": _num(r["lower"]),
                                    "upper": _num(r["upper"])}
                                for k, r in fit.param_table(level, internal=True).iterrows()},
            "diagnostics": json.loads(json.dumps(fit.to_dict()["diagnostics"]))}


def run_fit(args: argparse.Namespace) -> int:
    """``sloth laws fit``: fit, optionally save, print a summary or JSON."""
    from sloth.laws.bayes import fit_law_bayes
    from sloth.laws.fit import fit_law, save_fits
    from sloth.laws.runs import read_runs_csv

    if args.out:
        check_out(args.out, force=args.force)
    runs = read_runs_csv(args.runs, skill_column=args.skill_column)
    if args.drop_highest_loss:
        runs = runs.drop(runs["loss"].nlargest(args.drop_highest_loss).index)
    if not 0 < args.level < 1:
        raise DataValidationError(f"--level must be in (0, 1), got {args.level}")
    groups = ([(None, runs)] if args.skill_column is None
              else [(str(k), g.drop(columns="skill")) for k, g in runs.groupby("skill",
                                                                               sort=False)])
    fits = []
    for i, (skill, part) in enumerate(groups):
        if args.method == "bayes":
            fits.append(fit_law_bayes(part, args.law, num_warmup=args.warmup,
                                      num_samples=args.samples, num_chains=args.chains,
                                      seed=args.seed + i, skill=skill))
        else:
            fits.append(fit_law(part, args.law, n_boot=args.n_boot,
                                max_starts=args.max_starts or None, seed=args.seed + i,
                                skill=skill, level=args.level))
    if args.out:
        save_fits(fits, args.out)
    if args.json:
        print(json.dumps({"fits": [_fit_record(f, args.level) for f in fits],
                          "saved_to": args.out}, indent=1))
    else:
        for f in fits:
            print(f.summary(args.level))
            print()
        if args.out:
            print(f"saved to {args.out}")
    return 0


def _parse_weights(text: str) -> dict[str, float]:
    out = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise DataValidationError(
                f"--weights item {item!r} is not 'skill=weight'; write e.g. "
                "'knowledge=0.7,code=0.3'")
    return out


_QUANTITIES = ("N_opt", "D_opt", "D_per_N", "loss_opt")


def run_allocate(args: argparse.Namespace) -> int:
    """``sloth laws allocate``: compute-optimal allocation from a saved fit."""
    from sloth.laws.fit import load_fits
    from sloth.laws.mixture import mixture_optimum
    from sloth.laws.optimal import compute_optimal

    fits = load_fits(args.fit_file)
    compute = np.asarray(args.compute, dtype=float)
    if np.any(~np.isfinite(compute) | (compute <= 0)):
        raise DataValidationError(f"--compute must be positive FLOP counts, got {args.compute}")
    records = []
    for name, fit in fits.items():
        table = compute_optimal(fit, compute, level=args.level)
        for _, row in table.iterrows():
            records.append({"skill": fit.skill, "law": fit.law, "name": name,
                            "compute": float(row["compute"]),
                            **{q: _interval(row, q) for q in _QUANTITIES}})
    mixture = None
    if args.weights:
        weights = _parse_weights(args.weights)
        table = mixture_optimum(fits, weights, compute, level=args.level)
        mixture = {"weights": weights, "allocations": []}
        for _, row in table.iterrows():
            rec = {"compute": float(row["compute"]), **{q: _interval(row, q) for q in _QUANTITIES}}
            rec["shift_vs"] = {k: _interval(row, f"shift_vs_{k}") for k in fits}
            mixture["allocations"].append(rec)
    if args.json:
        print(json.dumps({"level": args.level, "allocations": records, "mixture": mixture},
                         indent=1))
        return 0
    pct = round(args.level * 100)

    def fmt(d: dict[str, float | None]) -> str:
        lo, hi = d["lower"], d["upper"]
        band = f" [{lo:.3g}, {hi:.3g}]" if lo is not None and hi is not None else ""
        return f"{d['estimate']:.3g}{band}" if d["estimate"] is not None else "no optimum"

    print(f"compute-optimal allocation ({pct}% intervals; C = 6 N D)")
    for r in records:
        label = f"{r['skill']} ({r['law']})" if r["skill"] is not None else r["law"]
        print(f"{label} at C = {r['compute']:.3g}: N* = {fmt(r['N_opt'])}, "
              f"D* = {fmt(r['D_opt'])}, D*/N* = {fmt(r['D_per_N'])}")
    if mixture is not None:
        print(f"mix {mixture['weights']}:")
        for r in mixture["allocations"]:
            shifts = ", ".join(f"vs {k} {fmt(v)}" for k, v in r["shift_vs"].items())
            print(f"  C = {r['compute']:.3g}: N* = {fmt(r['N_opt'])}, D*/N* = "
                  f"{fmt(r['D_per_N'])}; relative shift of N* {shifts}")
    return 0
