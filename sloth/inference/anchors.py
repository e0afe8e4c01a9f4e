"""Anchor benchmarks chosen from the data, and the exact map of an exploratory solution onto
the anchored parametrization.

An unconstrained (exploratory) MAP fit's loadings, weighted by each benchmark's information
about the skills, pick ``d`` well-separated anchors by pivoted QR; :func:`to_anchored`
rotates that solution into the anchored model, where the anchored MAP starts.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.linalg

from sloth.model import ModelStructure, maths
from sloth.model.design import FitArrays

__all__ = ["benchmark_information", "choose_anchors", "to_anchored"]


def benchmark_information(values: dict[str, np.ndarray], arrays: FitArrays) -> np.ndarray:
    """Signal-to-noise of each benchmark about the skills at a solution, shape (J,).

    ``w_j = mean_i[dm_ij/deta_ij / s_ij] * sqrt(coverage_j)``: the slope of the mean score per
    unit of linear predictor (:func:`sloth.model.maths.link_slope`, with the solution's link
    parameters when its link has them), over the score's scale
    (:func:`sloth.model.maths.observation_scale`), averaged over the observed models and
    scaled by the square root of the fraction of models observed. Near-floor benchmarks have
    steep linear predictors but little information; this weighting keeps them from being
    chosen as anchors.

    Parameters
    ----------
    values : dict of ndarray
        Site values of the exploratory model: ``family_offset`` (F, d), ``skill_slope``
        (P, d), ``loading_free`` (J, d), ``intercept`` and ``noise_scale`` (J,), and the
        link's ``link_shape`` / ``link_ceiling`` (J,) where it has them.
    arrays : FitArrays
    """
    skills = maths.compute_skills(values["family_offset"], values["skill_slope"],
                                  arrays.covariates, arrays.family_index)
    loading = values["loading_free"]
    rows, cols = arrays.obs_model, arrays.obs_benchmark
    eta = maths.cell_predictor(skills, loading, values["intercept"], rows, cols)
    link = {k: v[cols] for k, v in maths.link_parameters(values).items()}
    floors = arrays.floors[cols]
    slope = maths.link_slope(eta, floors, **link)
    mean = maths.link_mean(eta, floors, **link)
    sd = maths.observation_scale(mean, values["noise_scale"][cols], arrays.inv_items[cols])
    n_bench = loading.shape[0]
    count = np.bincount(cols, minlength=n_bench)
    snr = np.bincount(cols, weights=slope / sd, minlength=n_bench) / np.maximum(count, 1)
    coverage = count / arrays.covariates.shape[0]
    return snr * np.sqrt(coverage)


def choose_anchors(loading: np.ndarray, information: np.ndarray | None = None) -> tuple[int, ...]:
    """Pick ``d`` anchor benchmarks from unconstrained loadings by pivoted QR.

    Parameters
    ----------
    loading : ndarray, shape (J, d)
    information : ndarray, shape (J,), optional
        Row weights (see :func:`benchmark_information`); the QR runs on ``diag(w) Lambda``.

    Returns
    -------
    tuple of int, length d
        Benchmark indices, the most informative first.
    """
    d = loading.shape[1]
    weighted = loading if information is None else loading * information[:, None]
    _, _, pivots = scipy.linalg.qr(weighted.T, pivoting=True)
    return tuple(int(p) for p in pivots[:d])


def to_anchored(
    values: dict[str, np.ndarray], anchors: tuple[int, ...], structure: ModelStructure
) -> dict[str, np.ndarray]:
    """Map an exploratory solution exactly onto the anchored parametrization.

    With ``A = Lambda[anchors]`` (d, d): ``Lambda' = Lambda A^-1``, skills ``theta' = theta A^T``
    (so ``B' = B A^T`` and ``alpha' = alpha A^T``); the family scale and correlation are those of
    ``alpha'`` and the offsets ``z`` solve ``alpha' = z (diag(tau) L)^T``.

    Parameters
    ----------
    values : dict
        Exploratory site values: skill_slope (P, d), family_offset (F, d), loading_free (J, d),
        intercept, noise_scale (J,), optionally noise_df.
    anchors : tuple of int, length d
    structure : ModelStructure
        The exploratory structure (``anchors=None``).

    Returns
    -------
    dict of constrained site values of the anchored model.
    """
    d = structure.n_skills
    block = values["loading_free"][list(anchors)]
    loading = values["loading_free"] @ np.linalg.inv(block)
    efficiency = values["family_offset"] @ block.T
    cov = np.atleast_2d(np.cov(efficiency, rowvar=False)) + 1e-3 * np.eye(d)
    scale = np.sqrt(np.diag(cov))
    chol = np.linalg.cholesky(cov / np.outer(scale, scale))
    out = {k: v for k, v in values.items() if k not in ("loading_free", "family_offset")}
    out["skill_slope"] = values["skill_slope"] @ block.T
    out["family_offset"] = efficiency @ np.linalg.inv(scale[:, None] * chol).T
    out["family_efficiency"] = efficiency
    out["family_scale"] = scale
    if d > 1:
        out["family_corr_chol"] = chol
    out["loading_free"] = loading[replace(structure, anchors=anchors).free_rows]
    return out
