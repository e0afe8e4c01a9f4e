"""Factor rotations: recovery of simple structure, invariances, alignment across draws."""

import numpy as np
import pytest

from sloth.skills.rotation import align_columns, rotate, rotate_posterior

J, D = 12, 3


def _simple_structure(seed: int = 0, noise: float = 0.03) -> np.ndarray:
    """A (J, D) loading matrix with one large loading per row."""
    rng = np.random.default_rng(seed)
    L = rng.normal(0.0, noise, (J, D))
    L[np.arange(J), np.arange(J) % D] = rng.uniform(0.6, 0.9, J)
    return L


def _orthogonal(seed: int, d: int = D) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


PHI = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.4], [0.3, 0.4, 1.0]])


def _match(rotated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Signed permutation Q with rotated @ Q lined up with truth."""
    perm, signs = align_columns(rotated[None], truth)
    Q = np.zeros((D, D))
    Q[perm[0], np.arange(D)] = signs[0]
    return Q


@pytest.mark.parametrize("method", ["varimax", "quartimax", "oblimin", "geomin"])
def test_simple_structure_is_recovered_after_a_random_rotation(method):
    truth = _simple_structure()
    A = truth @ _orthogonal(1)
    result = rotate(A, method)
    assert result.converged
    Q = _match(result.loadings, truth)
    np.testing.assert_allclose(result.loadings @ Q, truth, atol=0.03)
    # the rotation reproduces A: L T^T = A (T orthogonal or with unit-length columns)
    np.testing.assert_allclose(result.loadings @ result.rotation.T, A, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(result.rotation, axis=0), 1.0, atol=1e-10)


@pytest.mark.parametrize("method", ["oblimin", "geomin"])
def test_oblique_rotations_recover_correlated_factors(method):
    truth = _simple_structure(seed=2)
    A = truth @ np.linalg.cholesky(PHI) @ _orthogonal(3)  # same model, uncorrelated factors
    result = rotate(A, method)
    Q = _match(result.loadings, truth)
    np.testing.assert_allclose(result.loadings @ Q, truth, atol=0.04)
    np.testing.assert_allclose(Q.T @ result.factor_corr @ Q, PHI, atol=0.05)
    # implied common covariance is unchanged: L Phi L^T = A A^T
    np.testing.assert_allclose(
        result.loadings @ result.factor_corr @ result.loadings.T, A @ A.T, atol=1e-9)


def test_varimax_cannot_recover_correlated_factors_but_stays_orthogonal():
    truth = _simple_structure(seed=2)
    A = truth @ np.linalg.cholesky(PHI) @ _orthogonal(3)
    result = rotate(A, "varimax")
    np.testing.assert_allclose(result.rotation.T @ result.rotation, np.eye(D), atol=1e-10)
    np.testing.assert_allclose(result.factor_corr, np.eye(D), atol=1e-10)
    Q = _match(result.loadings, truth)
    assert np.abs(result.loadings @ Q - truth).max() > 0.1  # an oblique truth is missed


def test_varimax_improves_its_criterion_and_is_deterministic():
    A = _simple_structure(seed=4) @ _orthogonal(5)

    def varimax_value(L):
        L2 = L**2 / np.sum(L**2, axis=1, keepdims=True)  # Kaiser-normalized
        return np.sum((L2 - L2.mean(axis=0)) ** 2)

    result = rotate(A, "varimax")
    assert varimax_value(result.loadings) > varimax_value(A) + 0.1
    again = rotate(A, "varimax")
    np.testing.assert_array_equal(result.loadings, again.loadings)
    none = rotate(A, "none")
    np.testing.assert_array_equal(none.loadings, A)


def test_rotate_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown"):
        rotate(np.ones((4, 2)), "promax")
    with pytest.raises(ValueError, match=r"\(J, d\)"):
        rotate(np.ones(4))


def test_align_columns_recovers_a_signed_permutation():
    rng = np.random.default_rng(6)
    ref = _simple_structure(seed=6)
    S = 20
    perms = np.stack([rng.permutation(D) for _ in range(S)])
    signs = rng.choice([-1.0, 1.0], size=(S, D))
    draws = np.stack([ref[:, p] * s for p, s in zip(perms, signs, strict=True)])
    draws += rng.normal(0, 0.02, draws.shape)
    perm, sign = align_columns(draws, ref)
    aligned = np.stack([draws[i][:, perm[i]] * sign[i] for i in range(S)])
    np.testing.assert_allclose(aligned, np.broadcast_to(ref, aligned.shape), atol=0.1)
    with pytest.raises(ValueError, match="aligned"):
        align_columns(draws[:, :, :2], ref)


def _posterior(seed: int = 7, S: int = 200):
    """Draws of anchored loadings and skill covariances from an oblique truth.

    The truth has loadings ``L`` (J, D) on unit-variance skills with correlation PHI. Draw s
    perturbs L and expresses it in the frame where rows 0..D-1 form the identity (the fit's
    anchor frame): ``Lambda = L A^-1`` with skills ``A theta`` of covariance ``A PHI A^T``.
    """
    rng = np.random.default_rng(seed)
    truth = _simple_structure(seed=seed)
    draws = truth + rng.normal(0.0, 0.03, (S, J, D))
    anchor = draws[:, :D]  # (S, D, D)
    loading = np.swapaxes(np.linalg.solve(np.swapaxes(anchor, 1, 2), np.swapaxes(draws, 1, 2)),
                          1, 2)
    cov = anchor @ PHI @ np.swapaxes(anchor, 1, 2)
    return truth, draws, loading, cov


@pytest.mark.parametrize("method", ["geomin", "oblimin"])
def test_rotate_posterior_recovers_the_truth_in_every_draw(method):
    truth, draws, loading, cov = _posterior()
    result = rotate_posterior(loading, cov, method)
    assert result.converged.all()
    Q = _match(result.reference, truth)
    np.testing.assert_allclose(result.reference @ Q, truth, atol=0.05)
    # each aligned draw is the rotated version of its own perturbed truth
    assert np.abs(result.loading @ Q - draws).max() < 0.1
    assert result.congruence.min() > 0.98
    np.testing.assert_allclose((Q.T @ result.factor_corr @ Q).mean(axis=0), PHI, atol=0.05)


def test_rotate_posterior_transform_is_consistent():
    _, _, loading, cov = _posterior(seed=8, S=50)
    result = rotate_posterior(loading, cov, "geomin")
    # Lambda* M = Lambda, so Lambda* (M theta) = Lambda theta
    np.testing.assert_allclose(result.loading @ result.transform, loading, atol=1e-9)
    theta = np.random.default_rng(0).normal(size=(50, 30, D))
    np.testing.assert_allclose(
        np.einsum("snd,sjd->snj", result.transform_skills(theta), result.loading),
        np.einsum("snd,sjd->snj", theta, loading), atol=1e-9)
    # rotated skills have unit variance: diag(M Sigma M^T) = 1, and correlation factor_corr
    rotated_cov = result.transform_covariance(cov)
    np.testing.assert_allclose(np.diagonal(rotated_cov, axis1=1, axis2=2), 1.0, atol=1e-9)
    np.testing.assert_allclose(rotated_cov, result.factor_corr, atol=1e-9)
    with pytest.raises(ValueError, match=r"\(S, \.\.\., d\)"):
        result.transform_skills(theta[:10])


def test_rotate_posterior_aligns_scrambled_draws():
    _, _, loading, cov = _posterior(seed=9, S=60)
    rng = np.random.default_rng(1)
    # the same posterior in frames differing by a signed permutation of the skills per draw
    scrambled_loading, scrambled_cov = loading.copy(), cov.copy()
    for s in range(60):
        P = np.eye(D)[rng.permutation(D)] * rng.choice([-1.0, 1.0], D)
        scrambled_loading[s] = loading[s] @ P
        scrambled_cov[s] = P.T @ cov[s] @ P
    a = rotate_posterior(loading, cov, "geomin")
    b = rotate_posterior(scrambled_loading, scrambled_cov, "geomin")
    Q = _match(b.reference, a.reference)
    np.testing.assert_allclose(b.loading @ Q, a.loading, atol=1e-3)
    # skills point so that loadings are mostly positive
    assert np.all(a.reference.sum(axis=0) > 0)


def test_rotate_posterior_none_and_errors():
    _, _, loading, cov = _posterior(seed=10, S=5)
    none = rotate_posterior(loading, cov, "none")
    np.testing.assert_array_equal(none.loading, loading)
    np.testing.assert_array_equal(none.transform, np.broadcast_to(np.eye(D), (5, D, D)))
    with pytest.raises(ValueError, match="skill_cov"):
        rotate_posterior(loading, cov[:, :2, :2])
    with pytest.raises(ValueError, match="positive definite"):
        rotate_posterior(loading, np.zeros_like(cov))
    with pytest.raises(ValueError, match="unknown"):
        rotate_posterior(loading, cov, "promax")
