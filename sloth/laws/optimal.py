"""Compute-optimal allocation: N*(C), D*(C) and tokens per parameter, with intervals.

With training compute ``C = 6 N D``, the compute-optimal model minimizes
``L(N, C / (6 N))`` over ``N``. For Chinchilla the optimum is closed-form,

    N*(C) = G (C / 6)^(beta / (alpha + beta)),  D*(C) = (C / 6)^(alpha / (alpha + beta)) / G,
    G = (alpha A / (beta B))^(1 / (alpha + beta));

for other forms (Farseer) it is found numerically: a grid over ``log N`` spanning
tokens-per-parameter ratios from ``e^-2 span`` to ``e^2 span``, refined by golden-section
search, vectorized over draws and budgets. Intervals are percentiles over the bootstrap or
posterior draws of the fit. The IsoFLOP-parabola method (Hoffmann et al. 2022, approach 2)
is :func:`isoflop_fit`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sloth.data.mapping import FLOPS_PER_PARAM_TOKEN
from sloth.exceptions import DataValidationError, issue_warning
from sloth.laws.fit import LawFit
from sloth.laws.forms import LawForm
from sloth.laws.runs import validate_runs

__all__ = [
    "IsoFlopResult",
    "compute_optimal",
    "group_by_budget",
    "isoflop_fit",
    "loss_function",
    "minimize_over_n",
    "optimal_allocation",
]

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def loss_function(form: LawForm, thetas: np.ndarray
                  ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The loss of ``S`` parameter vectors as a function of log inputs.

    Parameters
    ----------
    form : LawForm
        The law.
    thetas : ndarray, shape (S, P) or (P,)
        Internal parameters.

    Returns
    -------
    callable
        ``loss(log_n, log_d)``: arrays of shape (S, ...) of natural-log N and D, to losses
        of the same shape (row ``s`` with ``thetas[s]``; overflow gives ``inf``, silently).
    """
    thetas = np.atleast_2d(np.asarray(thetas, dtype=float))

    def loss(log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
        extra = (1,) * (log_n.ndim - 1)
        params = [thetas[:, i].reshape((-1, *extra)) for i in range(form.n_params)]
        x_n = log_n - np.log(form.n_scale)
        x_d = log_d - np.log(form.d_scale)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.exp(form.log_loss(params, x_n, x_d, np))

    return loss


def minimize_over_n(loss: Callable[[np.ndarray, np.ndarray], np.ndarray], n_draws: int,
                    compute: np.ndarray, *, span: float = 12.0, n_grid: int = 241,
                    n_golden: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Numeric compute-optimal ``N`` for many draws and budgets.

    Parameters
    ----------
    loss : callable
        ``loss(log_n, log_d) -> L`` on arrays of shape ``(n_draws, K, G)``.
    n_draws : int
        Leading dimension ``S`` of the draws inside ``loss``.
    compute : ndarray, shape (K,)
        Budgets in FLOPs (``C = 6 N D``).
    span : float
        Half-width of the search in ``log N`` around ``log sqrt(C / 6)`` (so tokens per
        parameter from ``e^-2span`` to ``e^2span``).
    n_grid, n_golden : int
        Grid points, then golden-section iterations around the best one.

    Returns
    -------
    log_n_opt : ndarray, shape (S, K)
        ``log N*``; ``nan`` where the minimum is at the edge of the search (no interior
        optimum).
    loss_opt : ndarray, shape (S, K)
    """
    log_c6 = np.log(np.asarray(compute, dtype=float) / FLOPS_PER_PARAM_TOKEN)           # (K,)
    centre = log_c6 / 2.0
    offsets = np.linspace(-span, span, n_grid)
    u = centre[None, :, None] + offsets[None, None, :]                   # (1, K, G)
    u = np.broadcast_to(u, (n_draws, len(log_c6), n_grid))
    vals = loss(u, log_c6[None, :, None] - u)
    vals = np.where(np.isfinite(vals), vals, np.inf)
    best = np.argmin(vals, axis=-1)                                      # (S, K)
    edge = (best == 0) | (best == n_grid - 1)
    step = offsets[1] - offsets[0]
    u_best = centre[None, :] + offsets[best]
    lo, hi = u_best - step, u_best + step
    lc = log_c6[None, :]
    a = hi - _GOLDEN * (hi - lo)
    b = lo + _GOLDEN * (hi - lo)
    fa = loss(a[..., None], (lc - a)[..., None])[..., 0]
    fb = loss(b[..., None], (lc - b)[..., None])[..., 0]
    for _ in range(n_golden):
        left = fa < fb
        hi = np.where(left, b, hi)
        lo = np.where(left, lo, a)
        b_new = np.where(left, a, lo + _GOLDEN * (hi - lo))
        a_new = np.where(left, hi - _GOLDEN * (hi - lo), b)
        new = np.where(left, a_new, b_new)
        f_new = loss(new[..., None], (lc - new)[..., None])[..., 0]
        fa, fb = np.where(left, f_new, fb), np.where(left, fa, f_new)
        a, b = a_new, b_new
    u_opt = (lo + hi) / 2.0
    f_opt = loss(u_opt[..., None], (lc - u_opt)[..., None])[..., 0]
    u_opt = np.where(edge, np.nan, u_opt)
    return u_opt, f_opt


def optimal_allocation(form: LawForm, thetas: np.ndarray, compute: Sequence[float] | np.ndarray,
                       *, method: str = "auto", span: float = 12.0, n_grid: int = 241,
                       chunk: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute-optimal ``N*``, ``D*`` and loss for parameter vectors and budgets.

    Parameters
    ----------
    form : LawForm
    thetas : ndarray, shape (S, P) or (P,)
        Internal parameters (e.g. bootstrap or posterior draws).
    compute : array-like, shape (K,)
        Budgets in FLOPs.
    method : {"auto", "closed", "numeric"}
        ``"auto"`` uses the form's closed form when it has one.

    Returns
    -------
    n_opt, d_opt, loss_opt : ndarray, shape (S, K)
        ``nan`` where the law has no interior optimum at that budget.
    """
    thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
    compute = np.atleast_1d(np.asarray(compute, dtype=float))
    if np.any(~np.isfinite(compute) | (compute <= 0)):
        raise DataValidationError(f"compute budgets must be positive FLOP counts, got {compute}")
    if method not in ("auto", "closed", "numeric"):
        raise ValueError(f"method must be 'auto', 'closed' or 'numeric', got {method!r}")
    if method == "closed" and form.optimum is None:
        raise ValueError(f"the {form.name} law has no closed-form optimum; use 'numeric'")
    if form.optimum is not None and method in ("auto", "closed"):
        n_opt, d_opt = form.optimum(thetas, compute)
        with np.errstate(invalid="ignore", divide="ignore"):
            loss_opt = loss_function(form, thetas)(np.log(n_opt), np.log(d_opt))
        return n_opt, d_opt, loss_opt
    out_u, out_f = [], []
    for start in range(0, len(thetas), chunk):
        part = thetas[start:start + chunk]
        u, f = minimize_over_n(loss_function(form, part), len(part), compute, span=span,
                               n_grid=n_grid)
        out_u.append(u)
        out_f.append(f)
    log_n = np.concatenate(out_u)
    n_opt = np.exp(log_n)
    return n_opt, compute[None, :] / (FLOPS_PER_PARAM_TOKEN * n_opt), np.concatenate(out_f)


def _summarize(compute: np.ndarray, point: tuple[np.ndarray, ...],
               draws: tuple[np.ndarray, ...] | None, level: float) -> pd.DataFrame:
    names = ("N_opt", "D_opt", "D_per_N", "loss_opt")
    table = pd.DataFrame({"compute": compute})
    q_lo, q_hi = (1 - level) / 2, (1 + level) / 2
    for j, name in enumerate(names):
        table[name] = point[j][0]
        if draws is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                table[f"{name}_lower"] = np.nanquantile(draws[j], q_lo, axis=0)
                table[f"{name}_upper"] = np.nanquantile(draws[j], q_hi, axis=0)
    if draws is not None:
        table["n_draws_without_optimum"] = np.isnan(draws[0]).sum(axis=0)
    return table


def compute_optimal(fit: LawFit, compute: float | Sequence[float] | np.ndarray, *,
                    level: float = 0.95, method: str = "auto") -> pd.DataFrame:
    """Compute-optimal allocation of a fitted law, with intervals from its draws.

    Parameters
    ----------
    fit : LawFit
    compute : float or array-like, shape (K,)
        Budgets in FLOPs.
    level : float
        Interval level (equal-tailed percentiles of the draws).
    method : {"auto", "closed", "numeric"}

    Returns
    -------
    DataFrame, K rows
        ``compute``, ``N_opt``, ``D_opt``, ``D_per_N`` (tokens per parameter) and
        ``loss_opt`` from the point estimate, each with ``_lower``/``_upper`` interval
        columns when the fit has draws, and ``n_draws_without_optimum``.
    """
    compute = np.atleast_1d(np.asarray(compute, dtype=float))
    form = fit.form
    n, d, f = optimal_allocation(form, fit.theta, compute, method=method)
    point = (n, d, d / n, f)
    draws = None
    if fit.draws is not None and len(fit.draws):
        nd, dd, fd = optimal_allocation(form, fit.draws, compute, method=method)
        draws = (nd, dd, dd / nd, fd)
    table = _summarize(compute, point, draws, level)
    if np.isnan(point[0]).any():
        issue_warning(f"the fitted {fit.law} law has no interior compute optimum at "
                      f"budgets {compute[np.isnan(point[0][0])].tolist()}")
    return table


# ------------------------------------------------------------------------- IsoFLOP method


def group_by_budget(compute: np.ndarray, *, budgets: Sequence[float] | None = None,
                    tolerance: float = 0.05) -> np.ndarray:
    """Group runs into IsoFLOP budgets.

    Parameters
    ----------
    compute : ndarray, shape (n,)
        Training FLOPs of the runs.
    budgets : sequence of float, optional
        Nominal budgets; a run joins the nearest one within ``tolerance`` decades, or none.
        Without budgets, runs are clustered on ``log10 C``: sorted, a new group starts
        where the gap to the previous run exceeds ``tolerance`` decades.
    tolerance : float
        In decades of ``C``.

    Returns
    -------
    ndarray of int, shape (n,)
        Group id of each run; ``-1`` for runs in no group.
    """
    lc = np.log10(np.asarray(compute, dtype=float))
    if budgets is not None:
        lb = np.log10(np.asarray(budgets, dtype=float))
        dist = np.abs(lc[:, None] - lb[None, :])
        nearest = np.argmin(dist, axis=1)
        return np.where(dist[np.arange(len(lc)), nearest] <= tolerance, nearest, -1)
    order = np.argsort(lc)
    gaps = np.diff(lc[order]) > tolerance
    ids_sorted = np.concatenate([[0], np.cumsum(gaps)])
    ids = np.empty(len(lc), dtype=int)
    ids[order] = ids_sorted
    return ids


def _parabola_vertex(log_n: np.ndarray, loss: np.ndarray) -> tuple[float, float, str]:
    c2, c1, c0 = np.polyfit(log_n, loss, 2)
    if not c2 > 0:
        return np.nan, np.nan, "parabola opens downward"
    u = -c1 / (2.0 * c2)
    if not log_n.min() <= u <= log_n.max():
        return np.nan, np.nan, "vertex outside the sizes trained"
    return u, c0 + c1 * u + c2 * u * u, ""


def _line(log_c: np.ndarray, log_n: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(log_c, log_n, 1)
    return float(slope), float(intercept)


@dataclass(frozen=True)
class IsoFlopResult:
    """Outcome of :func:`isoflop_fit`.

    Attributes
    ----------
    groups : DataFrame
        One row per budget: ``budget``, ``n_runs``, ``N_opt``, ``loss_opt``, ``used`` and
        ``reason`` (why a group was left out).
    a : float
        Exponent of ``N* = k C^a``; ``D*`` scales as ``C^(1 - a)``.
    log_k : float
        Natural log of ``k``.
    draws : ndarray, shape (B, 2)
        Bootstrap draws of ``(a, log_k)``.
    """

    groups: pd.DataFrame
    a: float
    log_k: float
    draws: np.ndarray

    @property
    def b(self) -> float:
        """Exponent of ``D* ~ C^b`` (``b = 1 - a`` under ``C = 6 N D``)."""
        return 1.0 - self.a

    def exponents(self, level: float = 0.95) -> pd.DataFrame:
        """``a`` and ``b`` with bootstrap intervals."""
        q = [(1 - level) / 2, (1 + level) / 2]
        a_lo, a_hi = np.quantile(self.draws[:, 0], q) if len(self.draws) else (np.nan,) * 2
        return pd.DataFrame({"estimate": [self.a, self.b], "lower": [a_lo, 1 - a_hi],
                             "upper": [a_hi, 1 - a_lo]}, index=["a", "b"])

    def predict(self, compute: float | Sequence[float] | np.ndarray, *,
                level: float = 0.95) -> pd.DataFrame:
        """``N*``, ``D*`` and ``D*/N*`` at budgets (columns as :func:`compute_optimal`)."""
        compute = np.atleast_1d(np.asarray(compute, dtype=float))
        lc = np.log(compute)

        def alloc(a, log_k):
            a = np.atleast_1d(a)[:, None]
            n = np.exp(np.atleast_1d(log_k)[:, None] + a * lc[None, :])
            d = compute[None, :] / (FLOPS_PER_PARAM_TOKEN * n)
            return n, d, d / n, np.full_like(n, np.nan)

        point = alloc(self.a, self.log_k)
        draws = alloc(self.draws[:, 0], self.draws[:, 1]) if len(self.draws) else None
        return _summarize(compute, point, draws, level).drop(
            columns=["loss_opt", "loss_opt_lower", "loss_opt_upper"], errors="ignore")


def isoflop_fit(runs: pd.DataFrame, *, budgets: Sequence[float] | None = None,
                tolerance: float = 0.05, min_runs: int = 5, n_boot: int = 200,
                seed: int = 0) -> IsoFlopResult:
    """Chinchilla approach 2: parabolas through IsoFLOP profiles.

    Runs are grouped by compute budget (:func:`group_by_budget`); in each group the loss
    is fitted by a parabola in ``log N`` whose vertex is the budget's optimal ``N``; then
    ``log N* = log k + a log C`` by least squares over budgets. Intervals resample the runs
    within each group (bootstrap) and redo both steps.

    Parameters
    ----------
    runs : DataFrame
        Runs with ``N``, ``D`` or ``C``, and ``loss``.
    budgets : sequence of float, optional
        Nominal budgets (FLOPs) to group around; by default clusters of ``log10 C``.
    tolerance : float
        Grouping tolerance in decades.
    min_runs : int
        Smallest group used.
    n_boot : int
        Bootstrap resamples.
    seed : int

    Returns
    -------
    IsoFlopResult

    Raises
    ------
    DataValidationError
        When fewer than two budgets have an interior parabola vertex.
    """
    runs = validate_runs(runs)
    ids = group_by_budget(runs["C"].to_numpy(), budgets=budgets, tolerance=tolerance)
    log_n_all = np.log(runs["N"].to_numpy())
    loss_all = runs["loss"].to_numpy()
    log_c_all = np.log(runs["C"].to_numpy())
    rows, members = [], []
    for g in sorted(set(ids.tolist()) - {-1}):
        idx = np.flatnonzero(ids == g)
        budget = (float(budgets[g]) if budgets is not None
                  else float(np.exp(np.mean(log_c_all[idx]))))
        row = {"budget": budget, "n_runs": len(idx), "N_opt": np.nan, "loss_opt": np.nan,
               "used": False, "reason": ""}
        if len(idx) < min_runs or len(np.unique(log_n_all[idx])) < 3:
            row["reason"] = f"fewer than {min_runs} runs"
        else:
            u, f, why = _parabola_vertex(log_n_all[idx], loss_all[idx])
            row.update(N_opt=float(np.exp(u)), loss_opt=f, used=not why, reason=why)
            if not why:
                members.append((np.log(budget), idx))
        rows.append(row)
    groups = pd.DataFrame(rows, columns=["budget", "n_runs", "N_opt", "loss_opt", "used",
                                         "reason"])
    if len(members) < 2:
        raise DataValidationError(
            f"only {len(members)} compute budget(s) have an interior IsoFLOP minimum "
            f"(groups: {groups[['budget', 'n_runs', 'reason']].to_dict('records')}); train "
            "at least 3 sizes on each side of the optimum at two or more budgets, or set "
            "budgets= and tolerance= to group the runs")
    used = groups[groups["used"]]
    a, log_k = _line(np.log(used["budget"].to_numpy()), np.log(used["N_opt"].to_numpy()))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        xs, ys = [], []
        for log_b, idx in members:
            pick = rng.choice(idx, size=len(idx), replace=True)
            if len(np.unique(log_n_all[pick])) < 3:
                continue
            u, _, why = _parabola_vertex(log_n_all[pick], loss_all[pick])
            if not why:
                xs.append(log_b)
                ys.append(u)
        if len(xs) >= 2:
            draws.append(_line(np.array(xs), np.array(ys)))
    return IsoFlopResult(groups=groups, a=a, log_k=log_k,
                         draws=np.array(draws, dtype=float).reshape(-1, 2))
