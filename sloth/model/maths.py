"""The model's maths as functions of arrays, NumPy and JAX alike.

For model ``i`` of family ``f(i)`` with standardized covariates ``x_i`` (P,)::

    theta_i = alpha_{f(i)} + B^T x_i                         skills            (d,)
    eta_ij  = Lambda_j . theta_i + b_j (+ v_{f(i)j})          linear predictor
    m_ij    = c_j + (1 - c_j) * h_j * r_k(eta_ij)            mean score        (link_mean)
    s_ij    = sqrt(sigma_j^2 + m_ij (1 - m_ij) / n_j + r^2)  score scale       (observation_scale)
    y_ij    ~ StudentT(1 + nu, m_ij, s_ij) or Normal          observed score    (score_distribution)

This module is the only statement of these formulas: the NumPyro model
(:func:`sloth.model.skill_model.skill_model`), the posterior's derived quantities, predictions,
forecasts, the anchor heuristic and the diagnostics all call it, as attributes of the module
(``maths.link_mean(...)``), so that swapping a function here reaches every caller. Functions
dispatch on the type of their first array argument: NumPy in, NumPy out; JAX in, JAX out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

# numpyro itself first: after arviz_base has registered numpyro with lazy_loader, importing
# ``numpyro.distributions`` before ``numpyro`` leaves the package without its
# ``distribution`` attribute, and numpyro.factor (used by NumPyro's own potential) fails
import numpyro  # noqa: F401
import numpyro.distributions as dist

#: A NumPy or JAX array.
ArrayLike = Any

NOISE_MODELS = ("student_t", "normal")

#: Link functions from the linear predictor to the mean score (see :func:`link_mean`).
LINKS = ("logistic", "richards", "ceiling", "flexible")

#: Per-benchmark parameters of the flexible links (sites and posterior variables, shape (J,)),
#: absent for the logistic link; they fill the keywords ``shape`` and ``ceiling`` of
#: :func:`link_mean` and :func:`link_slope` (see :func:`link_parameters`).
LINK_VARIABLES = ("link_shape", "link_ceiling")
_LINK_KEYWORDS = dict(zip(LINK_VARIABLES, ("shape", "ceiling"), strict=True))


def _xp(x: ArrayLike) -> Any:
    """NumPy for NumPy arrays and Python scalars, else ``jax.numpy``."""
    return np if isinstance(x, np.ndarray | np.generic | float | int) else jnp


def compute_skills(
    efficiency: ArrayLike, slope: ArrayLike, covariates: ArrayLike, family_index: ArrayLike
) -> ArrayLike:
    """Skills ``theta = alpha_f + x B`` (per draw when the parameters carry leading axes).

    Parameters
    ----------
    efficiency : array, shape (..., F, d)
        Family efficiencies ``alpha``.
    slope : array, shape (..., P, d)
        Skill slopes ``B``.
    covariates : array, shape (n, P)
    family_index : int array, shape (n,)

    Returns
    -------
    array, shape (..., n, d)
    """
    xp = _xp(efficiency)
    return efficiency[..., family_index, :] + xp.einsum("np,...pd->...nd", covariates, slope)


def linear_predictor(
    skills: ArrayLike, loading: ArrayLike, intercept: ArrayLike, offset: ArrayLike | None = None
) -> ArrayLike:
    """Linear predictor ``eta = theta Lambda^T + b (+ offset)`` of every model and benchmark.

    Parameters
    ----------
    skills : array, shape (..., n, d)
    loading : array, shape (..., J, d)
    intercept : array, shape (..., J)
    offset : array, shape (..., J) or (..., n, J), optional
        Added to the linear predictor (a family's benchmark effects): shape (..., J) adds the
        same offset to every model.

    Returns
    -------
    array, shape (..., n, J)
    """
    xp = _xp(skills)
    eta = xp.einsum("...nd,...jd->...nj", skills, loading) + intercept[..., None, :]
    if offset is not None:
        offset = xp.asarray(offset)
        eta = eta + (offset[..., None, :] if offset.ndim == eta.ndim - 1 else offset)
    return eta


def cell_predictor(
    skills: ArrayLike, loading: ArrayLike, intercept: ArrayLike, rows: ArrayLike,
    cols: ArrayLike,
) -> ArrayLike:
    """Linear predictor of selected cells ``(rows[m], cols[m])``, shape (..., m)."""
    xp = _xp(skills)
    return xp.sum(skills[..., rows, :] * loading[..., cols, :], axis=-1) + intercept[..., cols]


def link_parameters(
    values: Mapping[str, ArrayLike], *, new_axis: int | None = None
) -> dict[str, ArrayLike]:
    """The link's parameters among ``values``, as keywords of :func:`link_mean`.

    Parameters
    ----------
    values : mapping
        Site values or posterior draws by name; ``link_shape`` and ``link_ceiling`` (each of
        shape (..., J)) are taken where present, anything else is ignored.
    new_axis : int, optional
        Insert a length-1 axis at this position of each parameter (e.g. ``-2`` to broadcast
        draws shaped (S, J) over the models of linear predictors shaped (S, n, J)).

    Returns
    -------
    dict
        ``{"shape": ..., "ceiling": ...}`` restricted to the parameters present (empty for
        the logistic link), so that ``link_mean(eta, floors, **link_parameters(values))``.
    """
    out = {}
    for name, keyword in _LINK_KEYWORDS.items():
        value = values.get(name)
        if value is not None:
            out[keyword] = value if new_axis is None else _xp(value).expand_dims(
                value, new_axis)
    return out


def _richards_constants(shape: ArrayLike, xp: Any) -> tuple[ArrayLike, ArrayLike]:
    """``(b_k, a_k)`` of the centred Richards curve: ``b_k = logit(2^(-1/k))`` and
    ``a_k = 1 / (2 k (1 - 2^(-1/k)))``, written without cancellation."""
    log_half = -np.log(2.0) / shape
    one_minus_half = -xp.expm1(log_half)
    return log_half - xp.log(one_minus_half), 1.0 / (2.0 * shape * one_minus_half)


def ceiling_offset(ceiling: ArrayLike, shape: ArrayLike | None = None) -> ArrayLike:
    """How far the ceiling moves the argument of the rise: ``log(h) / (k a_k)``.

    :func:`link_mean` evaluates the rise at ``eta - ceiling_offset(h, k)``, so that the
    ceiling leaves the curve's low end alone. The curve ``h r_k(eta)`` of a link without that
    move is the curve of :func:`link_mean` with the intercept ``b + ceiling_offset(h, k)``
    (how :mod:`sloth.posterior.fileformat` brings files of format 2 to format 3).

    Parameters
    ----------
    ceiling : array, shape (...)
        ``h`` in (0, 1].
    shape : array, broadcastable to ``ceiling``, optional
        ``k`` (the logistic rise when absent: ``log h``).

    Returns
    -------
    array, shape of ``ceiling`` (non-positive)
    """
    xp = _xp(ceiling)
    if shape is None:
        return xp.log(ceiling)
    return xp.log(ceiling) / (shape * _richards_constants(shape, xp)[1])


def _ceiling_shift(eta: ArrayLike, shape: ArrayLike | None,
                   ceiling: ArrayLike | None) -> ArrayLike:
    """The linear predictor moved so that the ceiling leaves the curve's low end alone:
    ``eta - ceiling_offset(h, k)``; ``eta`` itself without a ceiling."""
    if ceiling is None:
        return eta
    return eta - ceiling_offset(ceiling, shape)


def link_mean(
    eta: ArrayLike, floors: ArrayLike, shape: ArrayLike | None = None,
    ceiling: ArrayLike | None = None,
) -> ArrayLike:
    """Mean score from the linear predictor (broadcasting; NumPy and JAX arrays alike).

    ``m = c + (1 - c) h r_k(eta - log(h) / (k a_k))`` with the centred Richards curve
    ``r_k(eta) = sigmoid(a_k eta + b_k)^k``, where ``b_k = logit(2^(-1/k))`` and
    ``a_k = 1 / (2 k (1 - 2^(-1/k)))`` keep ``r_k(0) = 1/2`` and ``r_k'(0) = 1/4`` for every
    ``k``. The logistic link is ``h = k = 1``. The asymmetry exponent ``k > 0`` lets a
    benchmark rise slowly and saturate fast (``k > 1``) or the reverse, without moving its
    midpoint or its slope there (so ``k`` is nearly orthogonal to the benchmark's intercept
    and loadings, which keeps the posterior geometry simple); the ceiling ``h`` in (0, 1]
    lets it saturate below a perfect score.

    The ceiling moves the argument of the rise so that it changes the top of the curve and
    leaves its low end alone: as ``eta -> -inf``, ``h r_k(eta - log(h) / (k a_k))`` tends to
    ``exp(k (a_k eta + b_k))`` whatever ``h``. The curves are those of ``h r_k(eta)`` (the
    move is absorbed by the intercept), but a benchmark whose scores lie far below their
    ceiling no longer trades its ceiling against its intercept and loadings (the ridge that
    made NUTS slow to mix them; ``benchmarks/RESULTS.md`` §20). The link is increasing in
    ``eta``.

    Parameters
    ----------
    eta : array, shape (...)
    floors : array, broadcastable to ``eta``
        Guessing floor ``c`` of the benchmark.
    shape, ceiling : array, broadcastable to ``eta``, optional
        ``k`` and ``h`` (default 1).
    """
    xp = np if isinstance(eta, np.ndarray) else jnp
    eta = _ceiling_shift(eta, shape, ceiling)
    if shape is None:
        rise = 0.5 * (xp.tanh(0.5 * eta) + 1.0)
    else:
        offset, scale = _richards_constants(shape, xp)
        rise = xp.exp(-shape * xp.logaddexp(0.0, -(scale * eta + offset)))
    if ceiling is not None:
        rise = ceiling * rise
    return floors + (1.0 - floors) * rise


def link_slope(
    eta: ArrayLike, floors: ArrayLike, shape: ArrayLike | None = None,
    ceiling: ArrayLike | None = None,
) -> ArrayLike:
    """Derivative of :func:`link_mean` with respect to ``eta`` (same arguments and shapes).

    With ``x = a_k (eta - log(h) / (k a_k)) + b_k``, ``s = sigmoid(x)`` and ``r = s^k``:
    ``dm/deta = (1 - c) h k a_k r (1 - s)`` (logistic: ``(1 - c) sigmoid(eta) (1 -
    sigmoid(eta))``).
    """
    xp = np if isinstance(eta, np.ndarray) else jnp
    eta = _ceiling_shift(eta, shape, ceiling)
    if shape is None:
        slope = 0.25 * (1.0 - xp.tanh(0.5 * eta) ** 2)
    else:
        offset, scale = _richards_constants(shape, xp)
        x = scale * eta + offset
        # k a r (1 - s) = k a exp(-k softplus(-x) - softplus(x))
        slope = shape * scale * xp.exp(-shape * xp.logaddexp(0.0, -x) - xp.logaddexp(0.0, x))
    if ceiling is not None:
        slope = ceiling * slope
    return (1.0 - floors) * slope


def score_distribution(
    mean: jnp.ndarray, scale: jnp.ndarray, noise_df: jnp.ndarray | None
) -> dist.Distribution:
    """Distribution of an observed score: Student-t with ``1 + noise_df`` degrees of freedom,
    or Normal when ``noise_df`` is ``None``."""
    if noise_df is None:
        return dist.Normal(mean, scale)
    return dist.StudentT(noise_df + 1.0, mean, scale)


#: Standard deviation of the rounding of reported scores (the leaderboard reports the newer
#: benchmarks to two decimals: uniform rounding error of width 0.01). It keeps the scale of
#: scores at the floor (MATH Lvl 5 of small models is 0.0) from collapsing to zero.
SCORE_RESOLUTION_SD = 0.01 / 12**0.5


def observation_scale(
    mean: ArrayLike, noise_scale: ArrayLike, inv_items: ArrayLike
) -> ArrayLike:
    """Scale of a score: misfit ``sigma_j``, binomial item noise and rounding of the
    reported score (:data:`SCORE_RESOLUTION_SD`) added in quadrature.

    Works on NumPy and JAX arrays alike (broadcasting shapes).

    Parameters
    ----------
    mean : array, shape (...)
        Mean score ``m``.
    noise_scale : array, broadcastable to ``mean``
        Misfit scale ``sigma_j``.
    inv_items : array, broadcastable to ``mean``
        ``1 / n_items`` of the benchmark (0 when unknown).
    """
    return (noise_scale**2 + mean * (1.0 - mean) * inv_items + SCORE_RESOLUTION_SD**2) ** 0.5


def predictive_scores(
    mean: np.ndarray, scale: np.ndarray, noise_df: np.ndarray | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draws of observed scores: ``clip(mean + scale * e, 0, 1)`` (NumPy).

    ``e`` is standard Student-t with ``1 + noise_df`` degrees of freedom, or standard normal
    when ``noise_df`` is ``None`` (the noise of :func:`score_distribution`), clipped because a
    reported score is a fraction.

    Parameters
    ----------
    mean, scale : ndarray, shape (...)
        Mean score and score scale (:func:`observation_scale`).
    noise_df : ndarray, broadcastable to ``mean``, or None
        The noise site ``nu - 1`` (as in :func:`score_distribution`).
    rng : numpy Generator

    Returns
    -------
    ndarray, shape of ``mean``
    """
    if noise_df is None:
        noise = rng.standard_normal(mean.shape)
    else:
        noise = rng.standard_t(np.broadcast_to(noise_df + 1.0, mean.shape))
    return np.clip(mean + scale * noise, 0.0, 1.0)


def compute_mean_score(
    skills: ArrayLike, loading: ArrayLike, intercept: ArrayLike, floors: ArrayLike,
    shape: ArrayLike | None = None, ceiling: ArrayLike | None = None,
    offset: ArrayLike | None = None,
) -> ArrayLike:
    """Mean scores ``link(theta Lambda^T + b + offset)`` per draw.

    Parameters
    ----------
    skills : array, shape (..., n, d)
    loading : array, shape (..., J, d)
    intercept : array, shape (..., J)
    floors : array, shape (J,)
    shape, ceiling : array, shape (..., J), optional
        The link's asymmetry exponent and ceiling (absent for the logistic link).
    offset : array, shape (..., J) or (..., n, J), optional
        Added to the linear predictor (see :func:`linear_predictor`).

    Returns
    -------
    array, shape (..., n, J)
    """
    xp = _xp(skills)
    eta = linear_predictor(skills, loading, intercept, offset)
    return link_mean(
        eta, floors,
        None if shape is None else xp.asarray(shape)[..., None, :],
        None if ceiling is None else xp.asarray(ceiling)[..., None, :],
    )
