"""Factor rotations of loading matrices, per posterior draw, aligned across draws.

The skill model is invariant under ``theta -> M theta``, ``Lambda -> Lambda M^-1`` for any
invertible ``M``. The fit pins one frame (anchor benchmarks, :mod:`sloth.model.structure`);
this module moves each draw to an *interpretable* frame:

1. standardize the skills: with ``Sigma_s`` the covariance of the skills across the fitted
   models in draw ``s`` and ``C_s`` its Cholesky factor, ``L_s = Lambda_s C_s`` are the
   loadings of uncorrelated unit-variance skills;
2. rotate ``L_s`` by varimax (orthogonal), oblimin or geomin (oblique) with the gradient
   projection algorithm of Jennrich (2001, 2002), vectorized over draws: the rotated pattern
   is ``L_s T_s^{-T}`` and the skill correlation ``Phi_s = T_s^T T_s``;
3. align draws to a common reference (the rotation of the posterior-mean loadings, then the
   mean of the aligned draws) by the column permutation and signs that maximize the absolute
   Tucker congruence (Hungarian algorithm).

Each draw's transform ``M_s = Q_s^T T_s^T C_s^-1`` (``Q_s`` the signed permutation) maps
anchored skills to rotated skills, ``theta* = M_s theta``; loadings become
``Lambda_s M_s^-1``, so fitted means do not change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "ROTATIONS",
    "PosteriorRotation",
    "RotationResult",
    "align_columns",
    "rotate",
    "rotate_posterior",
]

#: Rotation methods: orthogonal or oblique.
ROTATIONS = {"varimax": "orthogonal", "quartimax": "orthogonal", "oblimin": "oblique",
             "geomin": "oblique", "none": "none"}

Criterion = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


# ----------------------------------------------------------------------------- criteria
# Each takes loadings shaped (..., J, d) and returns (value (...,), gradient (..., J, d)):
# the criterion is minimized.


def _varimax(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    L2 = L**2
    QL = L2 - L2.mean(axis=-2, keepdims=True)
    return -np.sum(QL**2, axis=(-2, -1)) / 4.0, -L * QL


def _quartimax(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    L2 = L**2
    return -np.sum(L2**2, axis=(-2, -1)) / 4.0, -L**3


def _oblimin(gamma: float) -> Criterion:
    def criterion(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = L.shape[-1]
        L2 = L**2
        X = L2 @ (1.0 - np.eye(d))  # sum of the other columns' squares
        if gamma:
            X = X - gamma * X.mean(axis=-2, keepdims=True)
        return np.sum(L2 * X, axis=(-2, -1)) / 4.0, L * X

    return criterion


def _geomin(delta: float) -> Criterion:
    def criterion(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = L.shape[-1]
        L2 = L**2 + delta
        pro = np.exp(np.mean(np.log(L2), axis=-1, keepdims=True))  # (..., J, 1)
        return np.sum(pro, axis=(-2, -1)), (2.0 / d) * (L / L2) * pro

    return criterion


def _criterion(method: str, gamma: float, delta: float) -> Criterion:
    if method == "varimax":
        return _varimax
    if method == "quartimax":
        return _quartimax
    if method == "oblimin":
        return _oblimin(gamma)
    if method == "geomin":
        return _geomin(delta)
    raise ValueError(
        f"rotation method {method!r} is unknown; choose one of {sorted(ROTATIONS)}"
    )


# ----------------------------------------------------------------------------- GPA


def _rotated(A: np.ndarray, T: np.ndarray, oblique: bool) -> np.ndarray:
    """Rotated loadings ``A T`` (orthogonal) or ``A T^{-T}`` (oblique), batched."""
    if oblique:
        return A @ np.swapaxes(np.linalg.inv(T), -1, -2)
    return A @ T


def _gradient(A: np.ndarray, T: np.ndarray, L: np.ndarray, Gq: np.ndarray,
              oblique: bool) -> np.ndarray:
    if oblique:
        return -np.swapaxes(np.swapaxes(L, -1, -2) @ Gq @ np.linalg.inv(T), -1, -2)
    return np.swapaxes(A, -1, -2) @ Gq


def _project(T: np.ndarray, G: np.ndarray, oblique: bool) -> np.ndarray:
    """Projection of the gradient onto the tangent space of the constraint set at T."""
    if oblique:
        return G - T * np.sum(T * G, axis=-2, keepdims=True)
    M = np.swapaxes(T, -1, -2) @ G
    return G - T @ (0.5 * (M + np.swapaxes(M, -1, -2)))


def _retract(X: np.ndarray, oblique: bool) -> np.ndarray:
    """Back onto the constraint set: unit-length columns, or the nearest orthogonal matrix."""
    if oblique:
        return X / np.sqrt(np.sum(X**2, axis=-2, keepdims=True))
    U, _, Vt = np.linalg.svd(X)
    return U @ Vt


def _gpa(A: np.ndarray, T0: np.ndarray, criterion: Criterion, oblique: bool, *,
         tol: float, max_iter: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient projection rotation of a batch of loading matrices.

    Parameters
    ----------
    A : ndarray, shape (S, J, d)
    T0 : ndarray, shape (S, d, d)
        Starting rotations (orthogonal, or with unit-length columns when oblique).

    Returns
    -------
    T : ndarray, shape (S, d, d)
    value : ndarray, shape (S,)
        Criterion at T.
    converged : bool ndarray, shape (S,)
    """
    T_all = np.array(T0, dtype=float)
    f_all = np.empty(len(A))
    converged = np.zeros(len(A), dtype=bool)
    idx = np.arange(len(A))  # draws still iterating
    A = np.asarray(A, dtype=float)
    Ai, T = A, T_all.copy()
    L = _rotated(Ai, T, oblique)
    f, Gq = criterion(L)
    G = _gradient(Ai, T, L, Gq, oblique)
    alpha = np.ones(len(A))
    for _ in range(max_iter + 1):
        Gp = _project(T, G, oblique)
        s = np.sqrt(np.sum(Gp**2, axis=(-2, -1)))
        done = s < tol
        if done.any():  # store finished draws and drop them from the batch
            T_all[idx[done]], f_all[idx[done]] = T[done], f[done]
            converged[idx[done]] = True
            keep = ~done
            idx, Ai, T, f, L, Gq, Gp, s, alpha = (
                v[keep] for v in (idx, Ai, T, f, L, Gq, Gp, s, alpha))
        if not len(idx) or _ == max_iter:
            break
        alpha = 2.0 * alpha
        taken = np.zeros(len(idx), dtype=bool)
        T_new, f_new, L_new, Gq_new = T.copy(), f.copy(), L.copy(), Gq.copy()
        for step in range(11):
            Tt = _retract(T - alpha[:, None, None] * Gp, oblique)
            Lt = _rotated(Ai, Tt, oblique)
            ft, Gqt = criterion(Lt)
            ok = ~taken & ((ft < f - 0.5 * s**2 * alpha) | (step == 10))
            T_new[ok], f_new[ok], L_new[ok], Gq_new[ok] = Tt[ok], ft[ok], Lt[ok], Gqt[ok]
            taken |= ok
            if taken.all():
                break
            alpha = np.where(taken, alpha, 0.5 * alpha)
        T, f, L, Gq = T_new, f_new, L_new, Gq_new
        G = _gradient(Ai, T, L, Gq, oblique)
    T_all[idx], f_all[idx] = T, f
    return T_all, f_all, converged


def _random_start(rng: np.random.Generator, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


@dataclass(frozen=True)
class RotationResult:
    """A rotated loading matrix.

    Attributes
    ----------
    loadings : ndarray, shape (J, d)
        Rotated pattern ``A T^{-T}`` (``A T`` for an orthogonal rotation).
    rotation : ndarray, shape (d, d)
        ``T``; orthogonal, or with unit-length columns when oblique.
    factor_corr : ndarray, shape (d, d)
        ``T^T T``: correlation of the rotated factors (identity when orthogonal).
    criterion : float
        Value of the (minimized) rotation criterion.
    converged : bool
    """

    loadings: np.ndarray
    rotation: np.ndarray
    factor_corr: np.ndarray
    criterion: float
    converged: bool


def _normalizer(A: np.ndarray, normalize: bool) -> np.ndarray:
    """Kaiser row weights ``sqrt(sum_k A_jk^2)``, shape (..., J, 1) (ones without)."""
    if not normalize:
        return np.ones((*A.shape[:-1], 1))
    w = np.sqrt(np.sum(A**2, axis=-1, keepdims=True))
    return np.where(w > 0, w, 1.0)


def _check_method(method: str) -> str:
    if method not in ROTATIONS:
        raise ValueError(
            f"rotation method {method!r} is unknown; choose one of {sorted(ROTATIONS)}"
        )
    return method


def rotate(
    loadings: np.ndarray,
    method: str = "varimax",
    *,
    normalize: bool = True,
    gamma: float = 0.0,
    delta: float = 0.01,
    start: np.ndarray | None = None,
    n_starts: int = 10,
    seed: int = 0,
    tol: float = 1e-7,
    max_iter: int = 1000,
) -> RotationResult:
    """Rotate a loading matrix towards simple structure.

    Parameters
    ----------
    loadings : array, shape (J, d)
        Loadings of uncorrelated unit-variance factors.
    method : {"varimax", "quartimax", "oblimin", "geomin", "none"}
        ``oblimin`` with ``gamma=0`` is quartimin.
    normalize : bool, default True
        Kaiser normalization: rows scaled to unit length while rotating, so that every
        benchmark counts equally whatever its loadings' scale (logit-scale loadings differ
        several-fold across benchmarks); it also speeds convergence.
    gamma : float
        Oblimin parameter (0: quartimin; 0.5: biquartimin; 1: covarimin).
    delta : float
        Geomin's small constant.
    start : array, shape (d, d), optional
        Starting rotation; default: the identity and ``n_starts - 1`` random orthogonal
        matrices, keeping the best.
    n_starts : int
        Number of starts when ``start`` is not given.
    seed : int
        Seed of the random starts.

    Returns
    -------
    RotationResult
    """
    A = np.asarray(loadings, dtype=float)
    if A.ndim != 2:
        raise ValueError(f"loadings must be a (J, d) matrix; got shape {A.shape}")
    d = A.shape[1]
    kind = ROTATIONS[_check_method(method)]
    if kind == "none" or d == 1:
        return RotationResult(A.copy(), np.eye(d), np.eye(d), float("nan"), True)
    oblique = kind == "oblique"
    if start is not None:
        starts = np.asarray(start, dtype=float)[None]
    else:
        rng = np.random.default_rng(seed)
        starts = np.stack([np.eye(d)] + [_random_start(rng, d) for _ in range(n_starts - 1)])
    w = _normalizer(A, normalize)
    batch = np.broadcast_to(A / w, (len(starts), *A.shape))
    T, f, conv = _gpa(batch, starts, _criterion(method, gamma, delta), oblique,
                      tol=tol, max_iter=max_iter)
    best = int(np.argmin(np.where(np.isfinite(f), f, np.inf)))
    Tb = T[best]
    return RotationResult(
        loadings=_rotated(A, Tb, oblique),
        rotation=Tb,
        factor_corr=Tb.T @ Tb,
        criterion=float(f[best]),
        converged=bool(conv[best]),
    )


# ----------------------------------------------------------------------------- alignment


def align_columns(loadings: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column permutation and signs matching each matrix to a reference.

    Maximizes the summed absolute Tucker congruence between matched columns (Hungarian
    algorithm per matrix).

    Parameters
    ----------
    loadings : array, shape (S, J, d)
    reference : array, shape (J, d)

    Returns
    -------
    perm : int ndarray, shape (S, d)
        ``loadings[s][:, perm[s]]`` lines up with the reference's columns.
    signs : ndarray, shape (S, d)
        ``+1``/``-1`` applied after the permutation.
    """
    X = np.asarray(loadings, dtype=float)
    R = np.asarray(reference, dtype=float)
    if X.ndim != 3 or X.shape[1:] != R.shape:
        raise ValueError(
            f"loadings of shape {X.shape} cannot be aligned to a reference of shape "
            f"{R.shape}: pass (S, J, d) draws and a (J, d) reference"
        )
    xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-300)
    rn = R / np.maximum(np.linalg.norm(R, axis=0, keepdims=True), 1e-300)
    congruence = np.einsum("sjk,jl->skl", xn, rn)  # draw column k vs reference column l
    perm = np.empty((len(X), R.shape[1]), dtype=int)
    signs = np.empty((len(X), R.shape[1]))
    for s in range(len(X)):
        rows, cols = linear_sum_assignment(-np.abs(congruence[s]))
        perm[s, cols] = rows
        signs[s] = np.sign(congruence[s][perm[s], np.arange(R.shape[1])])
    signs[signs == 0] = 1.0
    return perm, signs


def _signed_permutation(perm: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Matrices ``Q`` (S, d, d) with ``(X Q)[:, l] = signs[l] * X[:, perm[l]]``."""
    S, d = perm.shape
    Q = np.zeros((S, d, d))
    Q[np.arange(S)[:, None], perm, np.arange(d)[None, :]] = signs
    return Q


# ----------------------------------------------------------------------------- posterior


@dataclass(frozen=True)
class PosteriorRotation:
    """Rotated, aligned loadings of every posterior draw.

    Attributes
    ----------
    method : str
    loading : ndarray, shape (S, J, d)
        Rotated loadings ``Lambda_s M_s^-1``, aligned across draws.
    transform : ndarray, shape (S, d, d)
        ``M_s``: rotated skills are ``M_s theta`` (apply with :meth:`transform_skills`).
    factor_corr : ndarray, shape (S, d, d)
        Correlation of the rotated skills across the models whose covariance was given.
    reference : ndarray, shape (J, d)
        Posterior mean of the aligned rotated loadings.
    converged : bool ndarray, shape (S,)
        Whether each draw's rotation converged.
    congruence : ndarray, shape (S, d)
        Tucker congruence of each aligned draw's columns with the reference.
    """

    method: str
    loading: np.ndarray
    transform: np.ndarray
    factor_corr: np.ndarray
    reference: np.ndarray
    converged: np.ndarray
    congruence: np.ndarray

    def transform_skills(self, values: np.ndarray) -> np.ndarray:
        """Rotate skill-indexed draws: ``values @ M_s^T`` per draw.

        Parameters
        ----------
        values : array, shape (S, ..., d)
            Skills, skill slopes (S, P, d) or family efficiencies (S, F, d) of the fit.

        Returns
        -------
        ndarray, shape (S, ..., d)
        """
        values = np.asarray(values, dtype=float)
        S = self.transform.shape[0]
        if values.shape[0] != S or values.shape[-1] != self.transform.shape[-1]:
            raise ValueError(
                f"values of shape {values.shape} do not match {S} draws of "
                f"{self.transform.shape[-1]} skills: pass an (S, ..., d) array"
            )
        flat = values.reshape(S, -1, values.shape[-1])
        out = flat @ np.swapaxes(self.transform, -1, -2)
        return out.reshape(values.shape)

    def transform_covariance(self, cov: np.ndarray) -> np.ndarray:
        """Rotate skill covariances: ``M_s Sigma_s M_s^T``, shapes (S, d, d)."""
        return self.transform @ np.asarray(cov, dtype=float) @ np.swapaxes(
            self.transform, -1, -2)


def _order_and_sign(reference: np.ndarray) -> np.ndarray:
    """Signed permutation (d, d) putting columns in decreasing sum of squares, each with a
    positive column sum (higher skill, higher scores)."""
    order = np.argsort(-np.sum(reference**2, axis=0), kind="stable")
    signs = np.sign(reference[:, order].sum(axis=0))
    signs[signs == 0] = 1.0
    return _signed_permutation(order[None], signs[None])[0]


def _correlation(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.maximum(np.diagonal(cov, axis1=-2, axis2=-1), 1e-300))
    return cov / (sd[..., :, None] * sd[..., None, :])


def rotate_posterior(
    loading: np.ndarray,
    skill_cov: np.ndarray,
    method: str = "oblimin",
    *,
    normalize: bool = True,
    gamma: float = 0.0,
    delta: float = 0.01,
    n_starts: int = 20,
    seed: int = 0,
    align_iterations: int = 2,
    tol: float = 1e-5,
    max_iter: int = 1000,
) -> PosteriorRotation:
    """Rotate every posterior draw of a loading matrix and align the draws.

    Parameters
    ----------
    loading : array, shape (S, J, d)
        Loadings in the fit's frame (draws stacked over chains).
    skill_cov : array, shape (S, d, d)
        Covariance of the skills per draw (e.g. across the fitted models), which fixes the
        scale of the rotated skills (unit variance) before rotating.
    method : {"oblimin", "geomin", "varimax", "quartimax", "none"}
        ``"none"`` keeps the fit's frame (identity transform).
    normalize, gamma, delta
        See :func:`rotate`.
    n_starts : int
        Random starts of the reference rotation (of the posterior-mean loadings); each draw
        then starts from the reference's rotation.
    seed : int
        Seed of the random starts (the result is deterministic given it).
    align_iterations : int
        Rounds of aligning draws to the reference and replacing the reference by the mean of
        the aligned draws.

    Returns
    -------
    PosteriorRotation
    """
    Lam = np.asarray(loading, dtype=float)
    cov = np.asarray(skill_cov, dtype=float)
    if Lam.ndim != 3:
        raise ValueError(f"loading must have shape (S, J, d); got {Lam.shape}")
    S, _, d = Lam.shape
    if cov.shape != (S, d, d):
        raise ValueError(
            f"skill_cov has shape {cov.shape}; it must be (S, d, d) = ({S}, {d}, {d}), one "
            "skill covariance per draw of the loadings"
        )
    kind = ROTATIONS[_check_method(method)]
    if kind == "none":
        eye = np.broadcast_to(np.eye(d), (S, d, d)).copy()
        ref = Lam.mean(axis=0)
        return PosteriorRotation(method, Lam.copy(), eye, _correlation(cov), ref,
                                 np.ones(S, dtype=bool), np.ones((S, d)))
    try:
        C = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError(
            "a skill covariance is not positive definite (a skill with no spread across "
            "models in some draw); fit fewer skills or rotate with method='none'"
        ) from None
    A = Lam @ C  # loadings of standardized, uncorrelated skills
    oblique = kind == "oblique"
    ref_rot = rotate(A.mean(axis=0), method, normalize=normalize, gamma=gamma, delta=delta,
                     n_starts=n_starts, seed=seed, tol=tol, max_iter=max_iter)
    fix = _order_and_sign(ref_rot.loadings)
    reference = ref_rot.loadings @ fix
    w = _normalizer(A, normalize)
    T0 = np.broadcast_to(ref_rot.rotation @ fix, (S, d, d))
    T, _, converged = _gpa(A / w, T0, _criterion(method, gamma, delta), oblique,
                           tol=tol, max_iter=max_iter)
    rotated = _rotated(A, T, oblique)
    Q = np.broadcast_to(np.eye(d), (S, d, d))
    for _ in range(max(1, align_iterations)):
        perm, signs = align_columns(rotated, reference)
        Q = _signed_permutation(perm, signs)
        reference = (rotated @ Q).mean(axis=0)
    T = T @ Q  # (T Q)^{-T} = T^{-T} Q for a signed permutation Q
    aligned = rotated @ Q
    # theta* = T^T C^-1 theta, so loadings* = Lambda C T^{-T}.
    transform = np.swapaxes(T, -1, -2) @ np.linalg.inv(C)
    xn = aligned / np.maximum(np.linalg.norm(aligned, axis=1, keepdims=True), 1e-300)
    rn = reference / np.maximum(np.linalg.norm(reference, axis=0, keepdims=True), 1e-300)
    congruence = np.einsum("sjk,jk->sk", xn, rn)
    return PosteriorRotation(
        method=method,
        loading=aligned,
        transform=transform,
        factor_corr=_correlation(np.swapaxes(T, -1, -2) @ T),
        reference=reference,
        converged=converged,
        congruence=congruence,
    )
