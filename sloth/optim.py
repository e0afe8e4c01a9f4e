"""A limited-memory BFGS minimizer vectorized over many independent problems.

Multi-start fitting runs thousands of small L-BFGS problems (one per start, or per start and
bootstrap resample). Stepping them together turns thousands of tiny objective calls into a
few hundred batched ones; finished problems drop out of the batch, which is padded to a
power of two so that a jitted objective compiles for a handful of shapes only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["BatchedResult", "Objective", "batched_lbfgs", "padded_call"]

#: ``fg(x (k, P), rows (k,)) -> (f (k,), g (k, P))``: objective and gradient of the problems
#: ``rows`` at the points ``x``.
Objective = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class BatchedResult:
    """Outcome of :func:`batched_lbfgs` for ``S`` problems.

    Attributes
    ----------
    x : ndarray, shape (S, P)
        Final points.
    fun : ndarray, shape (S,)
        Objective at ``x`` (``inf`` where it was never finite).
    nit : ndarray of int, shape (S,)
        Iterations taken.
    converged : ndarray of bool, shape (S,)
        Stopped on the tolerance rather than on ``maxiter`` or a failed line search.
    n_evals : int
        Batched objective calls.
    """

    x: np.ndarray
    fun: np.ndarray
    nit: np.ndarray
    converged: np.ndarray
    n_evals: int


def _bucket(k: int, min_batch: int = 8) -> int:
    """Padded batch size: the next power of two, at least ``min_batch``."""
    return max(min_batch, 1 << (int(k) - 1).bit_length())


def padded_call(fg: Objective, x: np.ndarray, rows: np.ndarray, min_batch: int = 8
                ) -> tuple[np.ndarray, np.ndarray]:
    """``fg(x, rows)`` on a batch padded to a power of two (at least ``min_batch``).

    The padding repeats the first row, so that a jitted ``fg`` sees a handful of batch
    sizes only; the padded rows are dropped from the result.

    Parameters
    ----------
    fg : Objective
        ``fg(x (k, P), rows (k,)) -> (f (k,), g (k, P))``.
    x : ndarray, shape (k, P)
        Points.
    rows : ndarray of int, shape (k,)
        Problems the points belong to.
    min_batch : int
        Smallest padded batch size.

    Returns
    -------
    f : ndarray, shape (k,)
    g : ndarray, shape (k, P)
    """
    k = len(rows)
    size = _bucket(k, min_batch)
    if size > k:
        pad = size - k
        x = np.concatenate([x, np.repeat(x[:1], pad, axis=0)])
        rows = np.concatenate([rows, np.repeat(rows[:1], pad)])
    f, g = fg(x, rows)
    return np.asarray(f, dtype=float)[:k], np.asarray(g, dtype=float)[:k]


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("sp,sp->s", a, b)


def batched_lbfgs(fg: Objective, x0: np.ndarray, lower: np.ndarray | None = None,
                  upper: np.ndarray | None = None, *, maxiter: int = 500, memory: int = 10,
                  ftol: float = 1e-12, gtol: float = 1e-9,
                  max_backtracks: int = 40, min_batch: int = 8) -> BatchedResult:
    """Minimize ``S`` independent smooth objectives, one start each, together.

    L-BFGS (two-loop recursion, ``memory`` pairs) with a backtracking Armijo line search,
    projected onto the box ``[lower, upper]``. A problem stops when its relative decrease
    falls below ``ftol``, its projected gradient below ``gtol`` (max-norm), or its line
    search fails twice in a row (once with its memory reset to steepest descent).

    Parameters
    ----------
    fg : callable
        ``fg(x (k, P), rows (k,)) -> (f (k,), g (k, P))``; ``rows`` index the problems.
    x0 : ndarray, shape (S, P)
        Starting points.
    lower, upper : ndarray, shape (P,), optional
        Box constraints (``None``: unbounded).
    min_batch : int
        Smallest padded batch passed to ``fg``. Batches are padded to powers of two so that
        a jitted ``fg`` compiles once per size as problems finish; a costly objective with
        few starts should use ``min_batch`` = its padded start count (one compile, no
        wasted rows).

    Returns
    -------
    BatchedResult
    """
    x = np.array(x0, dtype=float)
    n_prob, n_par = x.shape
    lo = np.full(n_par, -np.inf) if lower is None else np.asarray(lower, dtype=float)
    hi = np.full(n_par, np.inf) if upper is None else np.asarray(upper, dtype=float)
    x = np.clip(x, lo, hi)
    all_rows = np.arange(n_prob)
    f, g = padded_call(fg, x, all_rows, min_batch)
    n_evals = 1
    finite = np.isfinite(f) & np.isfinite(g).all(axis=1)
    f = np.where(finite, f, np.inf)
    g = np.where(finite[:, None], g, 0.0)

    s_hist = np.zeros((n_prob, memory, n_par))
    y_hist = np.zeros((n_prob, memory, n_par))
    rho = np.zeros((n_prob, memory))
    head = np.zeros(n_prob, dtype=int)           # next write slot per problem
    count = np.zeros(n_prob, dtype=int)          # stored pairs per problem
    h0 = np.minimum(1.0, 1.0 / np.maximum(np.abs(g).max(axis=1), 1e-12))
    active = finite.copy()
    converged = np.zeros(n_prob, dtype=bool)
    nit = np.zeros(n_prob, dtype=int)

    for _ in range(maxiter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        xa, fa, ga = x[idx], f[idx], g[idx]
        # two-loop recursion on the active problems
        q = ga.copy()
        alphas = []
        max_mem = int(count[idx].max())
        for i in range(max_mem):
            slot = (head[idx] - 1 - i) % memory
            use = count[idx] > i
            s_i = s_hist[idx, slot]
            y_i = y_hist[idx, slot]
            r_i = np.where(use, rho[idx, slot], 0.0)
            a_i = r_i * _dot(s_i, q)
            q -= a_i[:, None] * y_i
            alphas.append((slot, use, a_i))
        r = h0[idx, None] * q
        for i in reversed(range(max_mem)):
            slot, use, a_i = alphas[i]
            s_i = s_hist[idx, slot]
            y_i = y_hist[idx, slot]
            r_i = np.where(use, rho[idx, slot], 0.0)
            b_i = r_i * _dot(y_i, r)
            r += s_i * (a_i - b_i)[:, None]
        d = -r
        not_descent = ~(_dot(ga, d) < 0)
        d[not_descent] = -ga[not_descent] * h0[idx[not_descent], None]

        # backtracking Armijo line search, evaluating only problems still searching
        t = np.ones(idx.size)
        accepted = np.zeros(idx.size, dtype=bool)
        x_new, f_new, g_new = xa.copy(), fa.copy(), ga.copy()
        for _ls in range(max_backtracks):
            todo = np.flatnonzero(~accepted)
            trial = np.clip(xa[todo] + t[todo, None] * d[todo], lo, hi)
            ft, gt = padded_call(fg, trial, idx[todo], min_batch)
            n_evals += 1
            ok = (np.isfinite(ft) & np.isfinite(gt).all(axis=1)
                  & (ft <= fa[todo] + 1e-4 * _dot(ga[todo], trial - xa[todo])))
            acc = todo[ok]
            x_new[acc], f_new[acc], g_new[acc] = trial[ok], ft[ok], gt[ok]
            accepted[acc] = True
            if accepted.all():
                break
            t[~accepted] *= 0.5

        step = x_new - xa
        yv = g_new - ga
        sy = _dot(step, yv)
        yy = _dot(yv, yv)
        valid = accepted & (sy > 1e-10 * np.sqrt(yy * _dot(step, step))) & (sy > 0)
        vi = idx[valid]
        slot = head[vi]
        s_hist[vi, slot] = step[valid]
        y_hist[vi, slot] = yv[valid]
        rho[vi, slot] = 1.0 / sy[valid]
        h0[vi] = sy[valid] / yy[valid]
        head[vi] = (head[vi] + 1) % memory
        count[vi] = np.minimum(count[vi] + 1, memory)

        decrease = fa - f_new
        x[idx], f[idx], g[idx] = x_new, f_new, g_new
        nit[idx] += 1
        pg = np.abs(np.clip(x_new - g_new, lo, hi) - x_new).max(axis=1)
        done = accepted & ((decrease <= ftol * np.maximum(np.abs(f_new), 1.0)) | (pg <= gtol))
        converged[idx[done]] = True
        failed = ~accepted
        # a failed search resets the memory once (steepest descent); a second failure stops
        reset = failed & (count[idx] > 0)
        ri = idx[reset]
        count[ri] = 0
        h0[ri] = np.minimum(1.0, 1.0 / np.maximum(np.abs(g[ri]).max(axis=1), 1e-12))
        stop = done | (failed & ~reset)
        active[idx[stop]] = False

    return BatchedResult(x=x, fun=f, nit=nit, converged=converged, n_evals=n_evals)
