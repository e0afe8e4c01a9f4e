"""Sampler diagnostics of a fit, computed with ``arviz_stats``."""

from __future__ import annotations

import arviz_stats
import numpy as np
import xarray as xr

#: Posterior variables whose every entry is identified (structural constants are skipped).
IDENTIFIED_VARIABLES = (
    "skill_slope", "family_efficiency", "family_scale", "family_corr", "loading", "intercept",
    "noise_scale", "noise_df", "mean_score",
)


def _varying(da: xr.DataArray) -> xr.DataArray:
    """Mask of entries that vary across draws (fixed anchor loadings, diagonal correlations
    and other structural constants have no R-hat)."""
    return da.std(("chain", "draw")) > 1e-9


def convergence_table(tree: xr.DataTree) -> dict[str, dict[str, float]]:
    """Worst R-hat (rank-normalized) and lowest bulk and tail ESS per posterior variable.

    Returns
    -------
    dict
        ``{variable: {"rhat_max", "ess_bulk_min", "ess_tail_min"}}`` over entries that vary.
    """
    post = tree["posterior"].to_dataset()
    names = [v for v in IDENTIFIED_VARIABLES if v in post]
    ds = post[names]
    rhat = arviz_stats.rhat(ds)
    ess_bulk = arviz_stats.ess(ds, method="bulk")
    ess_tail = arviz_stats.ess(ds, method="tail")
    out: dict[str, dict[str, float]] = {}
    for name in names:
        mask = _varying(ds[name])
        out[name] = {
            "rhat_max": float(rhat[name].where(mask).max()),
            "ess_bulk_min": float(ess_bulk[name].where(mask).min()),
            "ess_tail_min": float(ess_tail[name].where(mask).min()),
        }
    return out


def sampler_summary(tree: xr.DataTree) -> dict[str, float | int]:
    """Divergences, worst R-hat, lowest ESS and tree sizes of a fit.

    Returns
    -------
    dict with ``divergences``, ``rhat_max``, ``ess_bulk_min``, ``ess_tail_min``,
    ``worst_rhat_variable``, ``lowest_ess_variable``, ``mean_leapfrog_steps``,
    ``max_tree_depth_hits`` (fraction of iterations at the maximum depth), ``num_chains``,
    ``num_draws``.
    """
    stats = tree["sample_stats"]
    table = convergence_table(tree)
    worst = max(table, key=lambda k: table[k]["rhat_max"])
    lowest = min(table, key=lambda k: table[k]["ess_bulk_min"])
    steps = np.asarray(stats["n_steps"])
    depth = np.asarray(stats["tree_depth"])
    return {
        "divergences": int(np.asarray(stats["diverging"]).sum()),
        "rhat_max": table[worst]["rhat_max"],
        "worst_rhat_variable": worst,
        "ess_bulk_min": table[lowest]["ess_bulk_min"],
        "lowest_ess_variable": lowest,
        "ess_tail_min": min(v["ess_tail_min"] for v in table.values()),
        "mean_leapfrog_steps": float(steps.mean()),
        "max_tree_depth_hits": float((depth >= depth.max()).mean()) if steps.max() >= 1023
        else 0.0,
        "num_chains": int(steps.shape[0]),
        "num_draws": int(steps.shape[1]),
    }
