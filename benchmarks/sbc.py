"""Simulation-based calibration of sloth's fit and forecasts on small simulated leaderboards.

Each simulation (:func:`sloth.evaluation.sbc.simulate_once`, a function of its seed only)
draws a truth from the fitted model's prior, simulates 10 fitted families of 3-4 models and
one held-out family on 6 benchmarks, fits sloth (1 skill, the draw's anchor, the evaluation
sampler: 2 chains x (300 + 500), tree depth 8), and ranks the truth among 100 posterior draws:
skill slopes, free loadings, family scale, and the held-out family's largest model's
forecasts (noisy score zero-shot, noiseless mean zero-shot, noisy score given the family's
smallest model). Rows are appended to ``benchmarks/out/sbc_<tag>.jsonl`` (one JSON object a
line) as each simulation finishes, so a stopped run resumes where it stopped (seeds already
in the file are skipped). The simulations are independent tasks of :mod:`sloth.executor`:
in process by default, on a Dask cluster with ``--scheduler ADDRESS|local:N``.

``--report`` computes the verdicts (:func:`sloth.evaluation.sbc.calibration`: the 99%
simultaneous ECDF band and ArviZ's ``pot_c`` uniformity test per quantity), writes them to
``benchmarks/out/sbc_<tag>_calibration.csv``, prints them as a Markdown table and draws the
Δ-ECDFs with their bands (``arviz_plots.plot_ecdf_pit``) to ``benchmarks/figures/sbc.png``
(``sbc_<tag>.png`` for another tag).

Usage::

    python benchmarks/sbc.py --simulations 120            # run (resumes)
    python benchmarks/sbc.py --report                     # verdicts and figure
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
FIGURES = ROOT / "benchmarks" / "figures"


def _settings(args: argparse.Namespace):
    from sloth.evaluation.sbc import SbcSettings

    return SbcSettings(n_skills=args.skills, link=args.link, n_families=args.families,
                       n_draws=args.draws)


def _rows_path(tag: str) -> Path:
    return OUT / f"sbc_{tag}.jsonl"


def _plain(value):
    """A NumPy scalar of a row as a Python one (for JSON)."""
    return value.item()


def read_rows(path: Path) -> pd.DataFrame:
    """The rows of a run, one JSON object a line (a refused simulation has no ranks)."""
    return pd.read_json(path, lines=True, dtype=False) if path.exists() else pd.DataFrame()


@dataclass(frozen=True)
class Simulation:
    """One simulation as a task of :func:`sloth.evaluation.sbc.simulate_once`: a seed in,
    its row out; ``programs`` keeps the compiled programs of a process (a Dask worker gets
    an empty cache of its own)."""

    settings: Any
    programs: Any

    def __call__(self, seed: int) -> dict:
        from sloth.evaluation.sbc import simulate_once

        return simulate_once(seed, self.settings, programs=self.programs)


def run(args: argparse.Namespace) -> None:
    import sloth
    from sloth.cli.common import open_executor
    from sloth.executor import map_tasks
    from sloth.inference import ProgramCache

    sloth.configure(host_devices=2)
    settings = _settings(args)
    OUT.mkdir(parents=True, exist_ok=True)
    path = _rows_path(args.tag)
    (OUT / f"sbc_{args.tag}_settings.json").write_text(json.dumps(settings.to_dict(), indent=1))
    if args.fresh:
        path.unlink(missing_ok=True)
    rows = read_rows(path)
    done = set(rows["seed"]) if len(rows) else set()
    seeds = [s for s in range(args.start, args.start + args.simulations) if s not in done]

    def write(_: int, row: dict) -> None:  # one line per finished simulation: resumable
        with path.open("a") as out:
            out.write(json.dumps(row, default=_plain) + "\n")
        print(f"{time.strftime('%H:%M:%S')} seed {row['seed']}: {row['status']} "
              f"{row['seconds']:.1f}s", flush=True)

    # every simulation has the same padded shapes: one cache of compiled programs serves all
    with open_executor(args.scheduler) as executor:
        map_tasks(Simulation(settings, ProgramCache()), seeds, executor=executor,
                  on_result=write)


def _figure(rows: pd.DataFrame, verdict: pd.DataFrame, path: Path, seed: int) -> None:
    """Δ-ECDF of each quantity's PIT (ArviZ's ``plot_ecdf_pit``, its ``pot_c`` test marking
    the points that drive a departure) with the 99% simultaneous band of the verdict
    (:func:`sloth.evaluation.sbc.ecdf_band`, ArviZ's envelope) shaded."""
    import matplotlib.pyplot as plt
    import xarray as xr
    from arviz_plots import plot_ecdf_pit

    from sloth.cli.common import write_figure
    from sloth.evaluation.sbc import BAND_PROB, ecdf_band, rank_columns, rank_pit

    ok = rows[rows["status"] == "ok"]
    rng = np.random.default_rng(seed)
    data = {}
    for column in rank_columns(ok):
        values = ok[column].to_numpy(dtype=float)
        keep = ~np.isnan(values)
        name = column.replace("[", " ").replace(",skill_1", "").rstrip("]")
        data[name] = xr.DataArray(
            rank_pit(values[keep], ok["n_draws"].to_numpy()[keep], rng), dims=["simulation"])
    tree = xr.DataTree.from_dict({"prior_sbc": xr.Dataset(data)})
    # method="envelope" would draw the band itself, but arviz-plots 1.3.2 fails on it
    # (np.linspace of a DataArray); pot_c draws the same Δ-ECDF, and the band is added below
    pc = plot_ecdf_pit(tree, sample_dims=["simulation"], method="pot_c",
                       envelope_prob=BAND_PROB, col_wrap=6,
                       figure_kwargs={"figsize": (20, 18)})
    for name, pit in data.items():
        band = ecdf_band(pit.to_numpy(), prob=BAND_PROB, seed=seed)
        ax = pc.get_viz("plot", name)
        x = band["x"]
        ax.fill_between(x, band["lower"] - x, band["upper"] - x, step="post", color="grey",
                        alpha=0.25, linewidth=0)
        if not band["inside"]:
            ax.set_title(f"{name} (outside)", color="C3")
    figure = pc.get_viz("figure")
    n = int(verdict["n"].max()) if len(verdict) else 0
    figure.suptitle(f"SBC: Δ-ECDF of the rank PIT of {n} simulations; grey: 99% simultaneous "
                    "band (a title in red leaves it)")
    write_figure(figure, path, dpi=70)
    plt.close(figure)


def report(args: argparse.Namespace) -> None:
    from evaluate_range import markdown  # beside this script

    from sloth.evaluation.sbc import calibration

    rows = read_rows(_rows_path(args.tag))
    verdict = calibration(rows, seed=args.seed)
    verdict.to_csv(OUT / f"sbc_{args.tag}_calibration.csv", index=False)
    ok = rows[rows["status"] == "ok"]
    print(f"{len(rows)} simulations: {len(ok)} fitted, {int((rows['status'] == 'refused').sum())}"
          f" refused by the structural check")
    print(f"fit seconds median {ok['fit_seconds'].median():.1f}, simulation seconds median "
          f"{ok['seconds'].median():.1f}; divergent fits {int((ok['divergences'] > 0).sum())}"
          f", R-hat > 1.01 in {int((ok['rhat_max'] > 1.01).sum())}, bulk ESS < 400 in "
          f"{int((ok['ess_bulk_min'] < 400).sum())}; conditioned forecasts refitted "
          f"(k-hat > 0.7) {int((ok['k1_method'] == 'refit').sum())}; share of simulated "
          f"scores outside [0, 1] median {ok['clipped_fraction'].median():.3f}")
    table = verdict.assign(
        inside_band=verdict["inside_band"].map({True: "yes", False: "**no**"}),
        p_value=verdict["p_value"].map("{:.3f}".format),
        mean_pit=verdict["mean_pit"].map("{:.2f}".format),
        central_90=verdict["central_90"].map("{:.2f}".format),
        max_deviation=verdict["max_deviation"].map("{:.3f}".format),
    )[["quantity", "element", "n", "inside_band", "p_value", "max_deviation", "mean_pit",
       "central_90"]]
    print("\n".join(markdown(table, [])))
    figure = FIGURES / ("sbc.png" if args.tag == "d1" else f"sbc_{args.tag}.png")
    _figure(rows, verdict, figure, args.seed)
    print(f"wrote {figure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulations", type=int, default=120, help="simulations to run")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--skills", type=int, default=1, help="skills d (anchors: the first d)")
    parser.add_argument("--link", default="flexible", help="link of simulation and fit")
    parser.add_argument("--families", type=int, default=10, help="fitted families")
    parser.add_argument("--draws", type=int, default=100, help="posterior draws L per rank")
    parser.add_argument("--tag", default="d1", help="name of the output files")
    parser.add_argument("--fresh", action="store_true", help="start over")
    parser.add_argument("--report", action="store_true", help="verdicts and figure")
    parser.add_argument("--seed", type=int, default=0, help="seed of the report's jitter")
    from sloth.cli.common import add_scheduler_option

    add_scheduler_option(parser, "the simulations")
    args = parser.parse_args()
    report(args) if args.report else run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
