"""Reading a fit's posterior tree for the checks: draws, entry labels, saved settings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from sloth.exceptions import DataValidationError
from sloth.posterior.fileformat import model_config, sampler_config

__all__ = [
    "entry_labels",
    "fit_anchors",
    "fit_setting",
    "masked_extreme",
    "stacked_draws",
    "varying_entries",
    "worst_labels",
]


def stacked_draws(da: xr.DataArray) -> np.ndarray:
    """Draws of ``da`` with chains and draws merged, shape (S, ...)."""
    values = da.transpose("chain", "draw", ...).to_numpy()
    return values.reshape(-1, *values.shape[2:])


def varying_entries(da: xr.DataArray) -> xr.DataArray:
    """Mask of the entries of ``da`` that vary across draws.

    Structural constants (fixed anchor loadings, the diagonal of a correlation matrix, also
    when float rounding leaves it a hair off 1) have no R-hat, ESS or contraction; the
    tolerance is relative to the entry's size.
    """
    sd = da.std(("chain", "draw"))
    return sd > 1e-6 * (1.0 + np.abs(da.mean(("chain", "draw"))))


def masked_extreme(stat: xr.DataArray, mask: xr.DataArray, largest: bool = True) -> float:
    """Largest (or smallest) entry of ``stat`` where ``mask`` holds, ``nan`` entries skipped
    (``nan`` when none is left)."""
    values = np.asarray(stat.where(mask).to_numpy(), dtype=float).ravel()
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan")
    return float(values.max() if largest else values.min())


def entry_labels(da: xr.DataArray) -> list[str]:
    """Labels ``name[c1, c2]`` of the entries of ``da`` (without chain and draw)."""
    dims = [d for d in da.dims if d not in ("chain", "draw")]
    if not dims:
        return [str(da.name)]
    coords = [[str(v) for v in da[d].to_numpy()] if d in da.coords else
              [str(i) for i in range(da.sizes[d])] for d in dims]
    grid = np.array(np.meshgrid(*coords, indexing="ij")).reshape(len(dims), -1).T
    return [f"{da.name}[{', '.join(row)}]" for row in grid]


def worst_labels(values: np.ndarray, labels: Sequence[str], k: int = 5,
                 largest: bool = True) -> list[str]:
    """Labels of the ``k`` largest (or smallest) finite values."""
    finite = np.flatnonzero(np.isfinite(values))
    order = finite[np.argsort(values[finite])]
    if largest:
        order = order[::-1]
    return [labels[i] for i in order[:k]]


def _json_attr(tree: xr.DataTree, key: str) -> Any:
    try:
        return json.loads(tree.attrs[key])
    except (KeyError, TypeError, ValueError):
        return None


def fit_setting(tree: xr.DataTree, name: str, default: Any = None) -> Any:
    """A setting saved with a fit (``default`` when the tree does not record it).

    Read through the posterior file format's own readers (model settings, then sampler
    settings; older trees are migrated): :func:`sloth.posterior.fileformat.model_config`
    and :func:`~sloth.posterior.fileformat.sampler_config`.

    Parameters
    ----------
    tree : xarray.DataTree
    name : str
        The setting, e.g. ``"max_tree_depth"``, ``"priors"``, ``"n_skills"``.
    default : optional
        Returned when the tree records no such setting (or no settings at all).
    """
    for read in (model_config, sampler_config):
        try:
            block = read(tree)
        except DataValidationError:  # a tree without sloth's settings (built by hand)
            return default
        if name in block:
            return block[name]
    return default


def fit_anchors(tree: xr.DataTree) -> list[str] | None:
    """The anchor benchmarks a fit used (``None`` when it records none)."""
    anchors = _json_attr(tree, "anchors")
    return [str(a) for a in anchors] if isinstance(anchors, list) else None
