"""Skill mixes: compute-optimal allocation for a validation loss that mixes skills.

A validation set whose tokens come from skills ``k`` in proportions ``w_k`` has loss
``L_w(N, D) = sum_k w_k L_k(N, D)`` (per-token cross-entropy averages over tokens), where
``L_k`` is the law fitted to skill ``k`` alone. Its compute-optimal size ``N*(C; w)``
minimizes ``L_w(N, C / (6 N))`` (numerically, as for Farseer). Roberts et al. (2025) find
that the mix can move ``N*`` by nearly 50%; :func:`mixture_sweep` measures that shift, per
draw, against each pure skill.

Intervals pair the ``s``-th draw of every skill's fit (the fits are independent, so paired
draws are draws from the joint); their number is the smallest draw count among the fits.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from sloth.data.mapping import FLOPS_PER_PARAM_TOKEN
from sloth.exceptions import DataValidationError
from sloth.laws.fit import LawFit
from sloth.laws.optimal import compute_optimal, loss_function, minimize_over_n, optimal_allocation

__all__ = ["compare_skills", "mixture_loss", "mixture_optimum", "mixture_sweep"]


def _weights(fits: Mapping[str, LawFit], weights: Mapping[str, float]) -> dict[str, float]:
    unknown = set(weights) - set(fits)
    if unknown:
        raise DataValidationError(f"weights name skills {sorted(unknown)} that have no fit; "
                                  f"fitted skills: {list(fits)}")
    w = {k: float(weights.get(k, 0.0)) for k in fits}
    if any(not np.isfinite(v) or v < 0 for v in w.values()) or sum(w.values()) <= 0:
        raise DataValidationError(f"skill weights must be >= 0 with a positive sum, got {w}")
    total = sum(w.values())
    return {k: v / total for k, v in w.items()}


def _thetas(fits: Mapping[str, LawFit], use_draws: bool) -> tuple[dict[str, np.ndarray], int]:
    if not use_draws:
        return {k: f.theta[None, :] for k, f in fits.items()}, 1
    missing = [k for k, f in fits.items() if f.draws is None or len(f.draws) == 0]
    if missing:
        raise DataValidationError(f"fits of {missing} have no draws; fit with n_boot > 0")
    n = min(len(f.draws) for f in fits.values())
    return {k: f.draws[:n] for k, f in fits.items()}, n


def _mixture_fn(fits: Mapping[str, LawFit], w: Mapping[str, float],
                thetas: Mapping[str, np.ndarray]):
    parts = [(w[k], loss_function(fits[k].form, thetas[k])) for k in fits if w[k] > 0]

    def loss(log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
        return sum(wk * fn(log_n, log_d) for wk, fn in parts)

    return loss


def mixture_loss(fits: Mapping[str, LawFit], weights: Mapping[str, float],
                 n: Sequence[float] | np.ndarray, d: Sequence[float] | np.ndarray, *,
                 draws: bool = False) -> np.ndarray:
    """Loss of the skill mix ``sum_k w_k L_k(N, D)``.

    Returns
    -------
    ndarray, shape (m,), or (S, m) with ``draws``
    """
    w = _weights(fits, weights)
    thetas, s = _thetas(fits, draws)
    log_n = np.log(np.broadcast_to(np.asarray(n, dtype=float), (s, np.size(n))))
    log_d = np.log(np.broadcast_to(np.asarray(d, dtype=float), (s, np.size(d))))
    out = _mixture_fn(fits, w, thetas)(log_n, log_d)
    return out if draws else out[0]


def _mix_opt(fits, w, thetas, s, compute, span, n_grid):
    u, f = minimize_over_n(_mixture_fn(fits, w, thetas), s, compute, span=span,
                           n_grid=n_grid)
    n = np.exp(u)
    return n, compute[None, :] / (FLOPS_PER_PARAM_TOKEN * n), f


def mixture_optimum(fits: Mapping[str, LawFit], weights: Mapping[str, float],
                    compute: float | Sequence[float] | np.ndarray, *, level: float = 0.95,
                    span: float = 12.0, n_grid: int = 241) -> pd.DataFrame:
    """Compute-optimal allocation for a skill mix, and its shift from each pure skill.

    Parameters
    ----------
    fits : mapping of str to LawFit
        One fitted law per skill (e.g. from :func:`sloth.laws.fit_per_skill`).
    weights : mapping of str to float
        Share of each skill in the validation loss (normalized to sum 1; missing = 0).
    compute : float or array-like, shape (K,)
        Budgets in FLOPs.
    level : float
        Interval level.

    Returns
    -------
    DataFrame, K rows
        ``compute``, ``N_opt``, ``D_opt``, ``D_per_N``, ``loss_opt`` with ``_lower``/
        ``_upper``; and per skill ``k``, ``shift_vs_<k>`` = ``N*(C; w) / N*_k(C) - 1``
        (relative shift of the optimal size from the pure skill), with intervals.
    """
    compute = np.atleast_1d(np.asarray(compute, dtype=float))
    w = _weights(fits, weights)
    has_draws = all(f.draws is not None and len(f.draws) for f in fits.values())
    thetas_p, _ = _thetas(fits, False)
    point = _mix_opt(fits, w, thetas_p, 1, compute, span, n_grid)
    pure_p = {k: optimal_allocation(f.form, f.theta, compute)[0] for k, f in fits.items()}
    q = [(1 - level) / 2, (1 + level) / 2]
    table = pd.DataFrame({"compute": compute})
    names = ("N_opt", "D_opt", "D_per_N", "loss_opt")
    point_vals = (point[0], point[1], point[1] / point[0], point[2])
    if has_draws:
        thetas_d, s = _thetas(fits, True)
        nd, dd, fd = _mix_opt(fits, w, thetas_d, s, compute, span, n_grid)
        draw_vals = (nd, dd, dd / nd, fd)
        pure_d = {k: optimal_allocation(f.form, thetas_d[k], compute)[0]
                  for k, f in fits.items()}
    for j, name in enumerate(names):
        table[name] = point_vals[j][0]
        if has_draws:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                table[f"{name}_lower"], table[f"{name}_upper"] = np.nanquantile(
                    draw_vals[j], q, axis=0)
    for k in fits:
        table[f"shift_vs_{k}"] = (point[0] / pure_p[k] - 1.0)[0]
        if has_draws:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                table[f"shift_vs_{k}_lower"], table[f"shift_vs_{k}_upper"] = np.nanquantile(
                    nd / pure_d[k] - 1.0, q, axis=0)
    return table


def mixture_sweep(fits: Mapping[str, LawFit], compute: float, *,
                  skills: tuple[str, str] | None = None,
                  weights: Sequence[float] | np.ndarray | None = None,
                  level: float = 0.95) -> pd.DataFrame:
    """``N*(C; w)`` as the weight ``w`` of one skill goes from 0 to 1 in a two-skill mix.

    Parameters
    ----------
    fits : mapping of str to LawFit
    compute : float
        Budget in FLOPs.
    skills : (str, str), optional
        ``(first, second)``; ``w`` is the weight of ``second`` (``1 - w`` of ``first``).
        Default: the first two fits.
    weights : array-like, shape (W,), optional
        Values of ``w`` (default 0, 0.1, ..., 1).
    level : float

    Returns
    -------
    DataFrame, W rows
        ``w`` and the columns of :func:`mixture_optimum` at ``compute``.
    """
    if skills is None:
        if len(fits) < 2:
            raise DataValidationError(f"a mix needs two skills; got fits for {list(fits)}")
        skills = tuple(list(fits)[:2])  # type: ignore[assignment]
    first, second = skills
    sub = {first: fits[first], second: fits[second]}
    weights = np.linspace(0.0, 1.0, 11) if weights is None else weights
    rows = []
    for w in np.asarray(weights, dtype=float):
        row = mixture_optimum(sub, {first: 1.0 - w, second: w}, compute, level=level)
        row.insert(0, "w", w)
        rows.append(row)
    out = pd.concat(rows, ignore_index=True)
    out.attrs["skills"] = (first, second)
    return out


def compare_skills(fits: Mapping[str, LawFit], compute: float | Sequence[float] | np.ndarray,
                   *, level: float = 0.95) -> pd.DataFrame:
    """Compute-optimal allocation of each skill's law, stacked (column ``skill``)."""
    parts = []
    for k, f in fits.items():
        t = compute_optimal(f, compute, level=level)
        t.insert(0, "skill", k)
        parts.append(t)
    return pd.concat(parts, ignore_index=True)
