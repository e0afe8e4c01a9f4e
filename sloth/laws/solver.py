"""The multi-start robust solver behind the least-squares law fits.

The objective is the Huber loss of log-loss residuals, divided by its threshold ``delta``
(same minimizer, unit-scale values), plus the form's optional penalty:
``sum_i w_i Huber_delta(log L_hat(N_i, D_i) - log L_i) / delta + pen_weight * penalty``.
Many starts are stepped together by :func:`sloth.optim.batched_lbfgs` (in float64); the best
few distinct optima are then polished by a second, tighter pass.

The solver needs only what :class:`LawLike` names of a form, so it imports nothing from
:mod:`sloth.laws.forms`: the forms (Farseer's start grid is a Chinchilla fit) and
:mod:`sloth.laws.fit` both build on it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sloth.exceptions import DataValidationError
from sloth.optim import Objective, batched_lbfgs, padded_call

__all__ = [
    "BEST_RTOL",
    "LawLike",
    "MultiStart",
    "box_bounds",
    "distinct_optima",
    "make_objective",
    "multistart",
    "polish",
]

#: Relative objective tolerance within which a start counts as reaching the best optimum.
BEST_RTOL = 1e-6


class LawLike(Protocol):
    """What the solver reads of a law form (:class:`sloth.laws.LawForm` has all of it)."""

    name: str
    log_loss: Callable[..., Any]
    penalty: Callable[..., Any] | None
    bounds: tuple[tuple[float, float], ...] | None

    @property
    def n_params(self) -> int: ...


@functools.cache
def _jitted_objective(log_loss: Callable[..., Any], penalty: Callable[..., Any] | None,
                      n_par: int) -> Callable[..., Any]:
    import jax
    import jax.numpy as jnp

    def per_row(theta, w, x_n, x_d, y, delta, pen_weight):
        params = [theta[:, i, None] for i in range(n_par)]
        r = log_loss(params, x_n[None, :], x_d[None, :], jnp) - y[None, :]
        a = jnp.abs(r)
        h = jnp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)) / delta
        value = jnp.sum(w * h, axis=1)
        if penalty is not None:
            value = value + pen_weight * penalty(theta, jnp)
        return value

    def total(theta, *args):
        v = per_row(theta, *args)
        return jnp.sum(v), v

    return jax.jit(jax.value_and_grad(total, has_aux=True))


def _pad_width(n: int) -> int:
    """Runs are padded (with zero weight) to a power of two, so that data sets of similar
    size share compiled objectives."""
    return max(256, 1 << (int(n) - 1).bit_length())


def make_objective(form: LawLike, x_n: np.ndarray, x_d: np.ndarray, y: np.ndarray,
                   weights: np.ndarray, delta: float, pen_weight: float = 1.0) -> Objective:
    """The robust objective of many problems that share the runs and differ in weights.

    Parameters
    ----------
    form : LawLike
        The law.
    x_n, x_d, y : ndarray, shape (n,)
        Rescaled log inputs and log losses of the runs.
    weights : ndarray, shape (S, n) or (1, n)
        Weight of each run in each problem (one row shared by all problems).
    delta : float
        Huber threshold on log-loss residuals.
    pen_weight : float
        Weight of the form's penalty (0: none).

    Returns
    -------
    Objective
        ``fg(x (k, P), rows (k,)) -> (f (k,), g (k, P))`` for the problems ``rows``.
    """
    import jax
    import jax.numpy as jnp

    fn = _jitted_objective(form.log_loss, form.penalty, form.n_params)
    n = len(y)
    pad = _pad_width(n) - n
    weights = np.pad(np.asarray(weights, dtype=float), ((0, 0), (0, pad)))
    with jax.enable_x64(True):
        data = tuple(jnp.asarray(np.pad(np.asarray(v, dtype=float), (0, pad)))
                     for v in (x_n, x_d, y))
        scalars = (jnp.asarray(float(delta)), jnp.asarray(float(pen_weight)))
    shared = weights.shape[0] == 1

    def fg(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # one weight row per problem even when shared: a single compiled shape per batch size
        w = np.broadcast_to(weights, (len(rows), weights.shape[1])) if shared else weights[rows]
        with jax.enable_x64(True):
            (_, v), g = fn(jnp.asarray(x, dtype=jnp.float64), jnp.asarray(w, dtype=jnp.float64),
                           *data, *scalars)
            return np.asarray(v), np.asarray(g)

    return fg


def box_bounds(form: LawLike) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the form's parameters, each (P,) (infinite when unbounded)."""
    if form.bounds is None:
        inf = np.full(form.n_params, np.inf)
        return -inf, inf
    b = np.asarray(form.bounds, dtype=float)
    return b[:, 0], b[:, 1]


@dataclass(frozen=True)
class MultiStart:
    """Outcome of :func:`multistart`.

    Attributes
    ----------
    theta : ndarray, shape (P,)
        Best optimum.
    fun : float
        Objective at ``theta``.
    x : ndarray, shape (S, P)
        Final points of the starts run.
    f : ndarray, shape (S,)
        Their objectives.
    n_grid : int
        Starting points offered.
    n_starts : int
        Starts run.
    n_best : int
        Starts within a relative :data:`BEST_RTOL` of the best objective.
    distinct : ndarray, shape (K, P)
        Best distinct optima, best first.
    """

    theta: np.ndarray
    fun: float
    x: np.ndarray
    f: np.ndarray
    n_grid: int
    n_starts: int
    n_best: int
    distinct: np.ndarray


def distinct_optima(x: np.ndarray, f: np.ndarray, k: int, tol: float = 1e-3) -> np.ndarray:
    """The ``k`` best points of ``x`` (S, P) by ``f`` that differ by more than ``tol`` (max
    norm) from each better one, shape (K, P) with ``K <= k``; non-finite ``f`` are left out."""
    order = np.argsort(f)
    keep: list[np.ndarray] = []
    for i in order:
        if not np.isfinite(f[i]):
            break
        if all(np.max(np.abs(x[i] - y)) > tol for y in keep):
            keep.append(x[i])
        if len(keep) >= k:
            break
    return np.array(keep).reshape(-1, x.shape[1])


def polish(form: LawLike, fg: Objective, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A second, tighter L-BFGS pass (longer memory, tolerances at round-off) from
    ``thetas`` (K, P); returns their final points (K, P) and objectives (K,)."""
    lower, upper = box_bounds(form)
    res = batched_lbfgs(fg, thetas, lower, upper, maxiter=3000, memory=20, ftol=1e-16,
                        gtol=1e-13)
    return res.x, res.fun


def multistart(form: LawLike, starts: np.ndarray, x_n: np.ndarray, x_d: np.ndarray,
               y: np.ndarray, *, weights: np.ndarray | None = None, delta: float = 1e-3,
               max_starts: int | None = None, polish_best: int = 3, maxiter: int = 500,
               pen_weight: float = 1.0) -> MultiStart:
    """Multi-start robust fit of one law to one set of runs.

    Parameters
    ----------
    form : LawLike
        The law.
    starts : ndarray, shape (S, P)
        Starting points (clipped to the form's bounds).
    x_n, x_d, y : ndarray, shape (n,)
        Rescaled log inputs and log losses of the runs.
    weights : ndarray, shape (n,), optional
        Weight of each run (default 1).
    delta : float
        Huber threshold on log-loss residuals.
    max_starts : int, optional
        Run only the ``max_starts`` starts of lowest initial objective when there are more.
    polish_best : int
        Distinct optima polished by :func:`polish` (0: none).
    maxiter : int
        Iterations of the first pass.
    pen_weight : float
        Weight of the form's penalty.

    Returns
    -------
    MultiStart

    Raises
    ------
    DataValidationError
        When the objective is not finite at any start.
    """
    starts = np.asarray(starts, dtype=float)
    n_grid = len(starts)
    lower, upper = box_bounds(form)
    starts = np.clip(starts, lower, upper)
    w_row = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    fg_one = make_objective(form, x_n, x_d, y, w_row[None, :], delta, pen_weight)
    if max_starts is not None and n_grid > max_starts:
        f0 = np.concatenate([
            padded_call(fg_one, chunk, np.zeros(len(chunk), dtype=int))[0]
            for chunk in np.array_split(starts, math.ceil(n_grid / 4096))])
        f0 = np.where(np.isfinite(f0), f0, np.inf)
        starts = starts[np.argsort(f0, kind="stable")[:max_starts]]
    res = batched_lbfgs(fg_one, starts, lower, upper, maxiter=maxiter)
    distinct = distinct_optima(res.x, res.fun, max(polish_best, 1))
    if len(distinct) == 0:
        raise DataValidationError(
            f"the {form.name} law could not be evaluated at any start on these runs "
            "(non-finite objective); check that N, D and loss are positive and of plausible "
            "size")
    best_theta, best_f = distinct[0], float(np.min(res.fun))
    if polish_best:
        px, pf = polish(form, fg_one, distinct[:polish_best])
        i = int(np.argmin(pf))
        if pf[i] < best_f:
            best_theta, best_f = px[i], float(pf[i])
    n_best = int(np.sum(res.fun <= best_f + BEST_RTOL * max(1.0, abs(best_f))))
    others = [t for t in distinct if np.max(np.abs(t - best_theta)) > 1e-3]
    return MultiStart(theta=best_theta, fun=best_f, x=res.x, f=res.fun, n_grid=n_grid,
                      n_starts=len(starts), n_best=n_best,
                      distinct=np.vstack([best_theta[None, :], *[t[None, :] for t in others]]))
