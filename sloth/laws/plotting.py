"""Plots of loss laws, compute-optimal allocations, IsoFLOP profiles and skill mixes.

Every function draws on ``ax`` (a new figure's axes when ``None``) and returns it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sloth.data.mapping import FLOPS_PER_PARAM_TOKEN
from sloth.laws.fit import LawFit
from sloth.laws.optimal import IsoFlopResult, compute_optimal, group_by_budget

__all__ = ["plot_compute_optimal", "plot_isoflop", "plot_law_fit", "plot_mixture_sweep"]


def _axes(ax: Any):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(6, 4))
    return ax


def plot_law_fit(fit: LawFit, runs: pd.DataFrame, *, n_sizes: int = 5, ax: Any = None):
    """Observed losses against compute, with the fitted law along a few model sizes.

    Parameters
    ----------
    fit : LawFit
    runs : DataFrame
        Validated runs (``N``, ``D``, ``C``, ``loss``).
    n_sizes : int
        Model sizes (quantiles of ``N``) whose predicted loss-vs-compute curves are drawn.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    ax = _axes(ax)
    sc = ax.scatter(runs["C"], runs["loss"], c=np.log10(runs["N"]), cmap="viridis", s=14,
                    label="runs")
    plt.colorbar(sc, ax=ax, label="log10 N")
    c_grid = np.geomspace(runs["C"].min(), runs["C"].max() * 10, 100)
    cmap = plt.get_cmap("viridis")
    log_n = np.log10(runs["N"])
    for q in np.linspace(0.05, 0.95, n_sizes):
        n = float(10 ** np.quantile(log_n, q))
        colour = cmap((np.log10(n) - log_n.min()) / max(np.ptp(log_n), 1e-12))
        tokens = c_grid / (FLOPS_PER_PARAM_TOKEN * n)
        ax.plot(c_grid, fit.predict(np.full_like(c_grid, n), tokens), color=colour, lw=1)
    opt = compute_optimal(fit, c_grid)
    ax.plot(c_grid, opt["loss_opt"], "k--", lw=1.2, label="compute-optimal frontier")
    ax.set_xscale("log")
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel("loss")
    ax.set_title(f"{fit.law} fit" + (f" ({fit.skill})" if fit.skill else ""))
    ax.legend(loc="upper right", fontsize=8)
    return ax


def plot_compute_optimal(fits: LawFit | Mapping[str, LawFit],
                         compute: Sequence[float] | np.ndarray | None = None, *,
                         quantity: str = "N_opt", level: float = 0.95, ax: Any = None):
    """Compute-optimal ``N*``, ``D*`` or ``D*/N*`` against compute, with interval bands.

    Parameters
    ----------
    fits : LawFit or mapping of label to LawFit
    compute : array-like, optional
        Budgets (default 1e18 to 1e25 FLOPs).
    quantity : {"N_opt", "D_opt", "D_per_N"}
    level : float

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    if isinstance(fits, LawFit):
        fits = {fits.skill or fits.law: fits}
    compute = np.geomspace(1e18, 1e25, 60) if compute is None else np.asarray(compute)
    for label, fit in fits.items():
        t = compute_optimal(fit, compute, level=level)
        (line,) = ax.plot(t["compute"], t[quantity], label=label)
        if f"{quantity}_lower" in t:
            ax.fill_between(t["compute"], t[f"{quantity}_lower"], t[f"{quantity}_upper"],
                            color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel({"N_opt": "compute-optimal N*", "D_opt": "compute-optimal D*",
                   "D_per_N": "tokens per parameter D*/N*"}.get(quantity, quantity))
    ax.legend(fontsize=8)
    return ax


def plot_isoflop(result: IsoFlopResult, runs: pd.DataFrame, *, budgets=None,
                 tolerance: float = 0.05, ax: Any = None):
    """IsoFLOP profiles: loss against ``N`` per budget, parabolas and their vertices.

    ``budgets`` and ``tolerance`` must be those given to :func:`isoflop_fit`.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    ax = _axes(ax)
    ids = group_by_budget(runs["C"].to_numpy(), budgets=budgets, tolerance=tolerance)
    groups = sorted(set(ids.tolist()) - {-1})
    cmap = plt.get_cmap("plasma")
    for j, g in enumerate(groups):
        part = runs[ids == g]
        colour = cmap(j / max(len(groups) - 1, 1))
        ax.scatter(part["N"], part["loss"], color=colour, s=12)
        if len(part) >= 3:
            u = np.log(part["N"].to_numpy())
            coef = np.polyfit(u, part["loss"].to_numpy(), 2)
            grid = np.linspace(u.min(), u.max(), 50)
            ax.plot(np.exp(grid), np.polyval(coef, grid), color=colour, lw=1)
    used = result.groups[result.groups["used"]]
    ax.scatter(used["N_opt"], used["loss_opt"], marker="*", s=80, color="k", zorder=3,
               label=f"vertices (N* ~ C^{result.a:.2f})")
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    return ax


def plot_mixture_sweep(sweep: pd.DataFrame, *, ax: Any = None):
    """``N*(C; w)`` of a two-skill mix against the weight ``w`` of the second skill.

    Parameters
    ----------
    sweep : DataFrame
        Output of :func:`sloth.laws.mixture_sweep`.

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    first, second = sweep.attrs.get("skills", ("skill 1", "skill 2"))
    ax.plot(sweep["w"], sweep["N_opt"], "o-", label="mix")
    if "N_opt_lower" in sweep:
        ax.fill_between(sweep["w"], sweep["N_opt_lower"], sweep["N_opt_upper"], alpha=0.25,
                        lw=0)
    for skill, colour in ((first, "C1"), (second, "C2")):
        col = f"shift_vs_{skill}"
        if col in sweep:
            pure = float((sweep["N_opt"] / (1.0 + sweep[col])).iloc[0])
            ax.axhline(pure, ls=":", color=colour, label=f"pure {skill}")
    ax.set_yscale("log")
    ax.set_xlabel(f"weight of {second} in the validation mix")
    ax.set_ylabel("compute-optimal N*")
    ax.set_title(f"C = {sweep['compute'].iloc[0]:.1e} FLOPs")
    ax.legend(fontsize=8)
    return ax
