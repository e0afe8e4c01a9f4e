"""The latent-skill model of benchmark scores as a plain NumPyro function of arrays.

Notation follows DESIGN section 2. For model ``i`` of family ``f(i)`` with standardized
covariates ``x_i`` (P,), skills are::

    theta_i = alpha_{f(i)} + B^T x_i                       (d,)
    eta_ij  = Lambda_j . theta_i + b_j
    m_ij    = c_j + (1 - c_j) * h_j * r_k(eta_ij)      (see link_mean; logistic: h = k = 1)

and the observed score ``y_ij ~ StudentT(nu, m_ij, s_ij)`` (or Normal) with
``s_ij^2 = sigma_j^2 + m_ij (1 - m_ij) / n_items_j + r^2`` (misfit, binomial item noise and
the rounding of reported scores).

Identification. Scale, rotation, sign and permutation are pinned by ``d`` *anchor*
benchmarks: anchor ``a_k`` loads on skill ``k`` alone with loading 1 (``Lambda_A = I``), so
skill ``k`` is measured on the logit scale of its anchor. The family efficiencies are
``alpha_f ~ MultivariateNormal(0, Sigma)`` with ``Sigma = diag(tau) Omega diag(tau)``
(LKJ correlation ``Omega``), non-centred: ``alpha_f = diag(tau) L_Omega z_f``. Any loading matrix
with an invertible anchor block maps exactly onto this form (``Lambda' = Lambda Lambda_A^-1``,
``theta' = Lambda_A theta``), so nothing is lost; the population mean is absorbed by the
benchmark intercepts because the covariates are centred. Fixing the scale through the data
(rather than a unit-variance population) removes the scale ridge between skills and loadings
that otherwise forces NUTS to its maximum tree depth.

With ``anchors=None`` all loadings are free and ``alpha_f ~ Normal(0, I)`` (identified only up
to rotation): that exploratory form is used to choose anchors from a MAP fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

#: A NumPy or JAX array.
ArrayLike = Any

#: Prior scales of the model; override any of them through ``priors=``.
DEFAULT_PRIORS: dict[str, float] = {
    "skill_slope_scale": 3.0,  # Normal scale of B (covariates x skills)
    "loading_scale": 1.5,  # Normal scale of free loadings
    "family_scale_scale": 2.0,  # HalfNormal scale of the family spread per skill (anchored)
    "family_corr_concentration": 2.0,  # LKJ concentration of the family skill correlation
    "intercept_scale": 3.0,  # Normal scale of benchmark intercepts b_j (logit scale)
    "noise_scale_scale": 0.05,  # HalfNormal scale of the misfit sigma_j (score scale)
    "noise_df_rate": 0.1,  # Gamma(2, rate) prior on the Student-t degrees of freedom
    "link_shape_scale": 0.5,  # LogNormal scale of the link's asymmetry exponent k_j
    "link_ceiling_a": 8.0,  # Beta(a, b) prior on the link's ceiling h_j (fraction of 1 - c_j)
    "link_ceiling_b": 1.0,
    # HalfNormal scale of tau_j, a family's own deviation on benchmark j (linear-predictor
    # scale), estimated after sampling when family_benchmark_effects=True (sloth.family_effects)
    "family_benchmark_scale": 0.5,
}

NOISE_MODELS = ("student_t", "normal")

#: Link functions from the linear predictor to the mean score (see :func:`link_mean`).
LINKS = ("logistic", "richards", "ceiling", "flexible")


@dataclass(frozen=True)
class ModelStructure:
    """Static structure of the model: sizes, anchors, noise model and priors.

    Parameters
    ----------
    n_families : int
        Number of families F.
    n_benchmarks : int
        Number of benchmarks J.
    n_covariates : int
        Number of covariates P.
    n_skills : int
        Number of latent skills d.
    anchors : tuple of int or None
        Benchmark indices (length d); anchor ``k`` loads on skill ``k`` alone, with loading 1.
        ``None`` leaves every loading free (exploratory form).
    noise : {"student_t", "normal"}
        Observation noise.
    priors : dict
        Prior scales (see :data:`DEFAULT_PRIORS`).
    """

    n_families: int
    n_benchmarks: int
    n_covariates: int
    n_skills: int
    anchors: tuple[int, ...] | None
    noise: str = "student_t"
    priors: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PRIORS))
    centered: bool = False
    link: str = "logistic"

    def __post_init__(self) -> None:
        if self.noise not in NOISE_MODELS:
            raise ValueError(f"noise={self.noise!r} is not one of {NOISE_MODELS}")
        if self.link not in LINKS:
            raise ValueError(f"link={self.link!r} is not one of {LINKS}")
        if self.anchors is not None and len(self.anchors) != self.n_skills:
            raise ValueError(
                f"anchors has {len(self.anchors)} entries; it needs one per skill "
                f"({self.n_skills})"
            )

    @property
    def has_shape(self) -> bool:
        """Whether the link has a per-benchmark asymmetry exponent ``link_shape``."""
        return self.link in ("richards", "flexible")

    @property
    def has_ceiling(self) -> bool:
        """Whether the link has a per-benchmark ceiling ``link_ceiling``."""
        return self.link in ("ceiling", "flexible")

    @property
    def free_rows(self) -> np.ndarray:
        """Benchmark indices whose loadings are unconstrained, shape (J - d,) or (J,)."""
        anchors = set(self.anchors or ())
        return np.array([j for j in range(self.n_benchmarks) if j not in anchors], dtype=int)


def assemble_loadings(
    structure: ModelStructure, free: jnp.ndarray, anchor_rows: jnp.ndarray | None = None,
    free_rows: jnp.ndarray | None = None,
) -> jnp.ndarray:
    """Build the (J, d) loading matrix: free rows, and the identity on the anchor rows.

    Parameters
    ----------
    structure : ModelStructure
    free : array, shape (..., J - d, d), or (..., J, d) when there are no anchors
    anchor_rows, free_rows : int arrays, shapes (d,) and (J - d,), optional
        The anchor and free rows as data (default: ``structure.anchors`` and
        ``structure.free_rows``), so that one compiled program serves any anchors.

    Returns
    -------
    array, shape (..., J, d)
    """
    free = jnp.asarray(free)
    if structure.anchors is None:
        return free
    d, J = structure.n_skills, structure.n_benchmarks
    batch = free.shape[:-2]
    loading = jnp.zeros((*batch, J, d), dtype=free.dtype)
    anchor_rows = np.asarray(structure.anchors) if anchor_rows is None else anchor_rows
    free_rows = structure.free_rows if free_rows is None else free_rows
    loading = loading.at[..., anchor_rows, np.arange(d)].set(1.0)
    return loading.at[..., free_rows, :].set(free)


def link_mean(
    eta: ArrayLike, floors: ArrayLike, shape: ArrayLike | None = None,
    ceiling: ArrayLike | None = None,
) -> ArrayLike:
    """Mean score from the linear predictor (broadcasting; NumPy and JAX arrays alike).

    ``m = c + (1 - c) h r_k(eta)`` with the centred Richards curve
    ``r_k(eta) = sigmoid(a_k eta + b_k)^k``, where ``b_k = logit(2^(-1/k))`` and
    ``a_k = 1 / (2 k (1 - 2^(-1/k)))`` keep ``r_k(0) = 1/2`` and ``r_k'(0) = 1/4`` for every
    ``k``. The logistic link is ``h = k = 1``. The asymmetry exponent ``k > 0`` lets a
    benchmark rise slowly and saturate fast (``k > 1``) or the reverse, without moving its
    midpoint or its slope there (so ``k`` is nearly orthogonal to the benchmark's intercept
    and loadings, which keeps the posterior geometry simple); the ceiling ``h`` in (0, 1]
    lets it saturate below a perfect score. The link is increasing in ``eta``.

    Parameters
    ----------
    eta : array, shape (...)
    floors : array, broadcastable to ``eta``
        Guessing floor ``c`` of the benchmark.
    shape, ceiling : array, broadcastable to ``eta``, optional
        ``k`` and ``h`` (default 1).
    """
    xp = np if isinstance(eta, np.ndarray) else jnp
    if shape is None:
        rise = 0.5 * (xp.tanh(0.5 * eta) + 1.0)
    else:
        # r_k(0) = sigmoid(b_k)^k = 1/2 with 2^(-1/k) = half, written without cancellation
        log_half = -np.log(2.0) / shape
        one_minus_half = -xp.expm1(log_half)
        offset = log_half - xp.log(one_minus_half)
        scale = 1.0 / (2.0 * shape * one_minus_half)
        rise = xp.exp(-shape * xp.logaddexp(0.0, -(scale * eta + offset)))
    if ceiling is not None:
        rise = ceiling * rise
    return floors + (1.0 - floors) * rise


def link_slope(
    eta: ArrayLike, floors: ArrayLike, shape: ArrayLike | None = None,
    ceiling: ArrayLike | None = None,
) -> ArrayLike:
    """Derivative of :func:`link_mean` with respect to ``eta`` (same arguments and shapes).

    With ``s = sigmoid(a_k eta + b_k)`` and ``r = s^k``: ``dm/deta = (1 - c) h k a_k r (1 - s)``
    (logistic: ``(1 - c) sigmoid(eta) (1 - sigmoid(eta))``).
    """
    xp = np if isinstance(eta, np.ndarray) else jnp
    if shape is None:
        slope = 0.25 * (1.0 - xp.tanh(0.5 * eta) ** 2)
    else:
        log_half = -np.log(2.0) / shape
        one_minus_half = -xp.expm1(log_half)
        offset = log_half - xp.log(one_minus_half)
        scale = 1.0 / (2.0 * shape * one_minus_half)
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


def observation_scale(mean, noise_scale, inv_items):
    """Scale of a score: misfit ``sigma_j``, binomial item noise and rounding of the
    reported score (:data:`SCORE_RESOLUTION_SD`) added in quadrature.

    Works on NumPy and JAX arrays alike (broadcasting shapes).
    """
    return (noise_scale**2 + mean * (1.0 - mean) * inv_items + SCORE_RESOLUTION_SD**2) ** 0.5


def skill_model(
    covariates: jnp.ndarray,
    family_index: jnp.ndarray,
    obs_model: jnp.ndarray,
    obs_benchmark: jnp.ndarray,
    floors: jnp.ndarray,
    inv_items: jnp.ndarray,
    structure: ModelStructure,
    scores: jnp.ndarray | None = None,
    family_mask: jnp.ndarray | None = None,
    score_mask: jnp.ndarray | None = None,
    anchor_rows: jnp.ndarray | None = None,
    free_rows: jnp.ndarray | None = None,
) -> None:
    """NumPyro model of benchmark scores driven by latent skills.

    Parameters
    ----------
    covariates : array, shape (n, P)
        Standardized covariates of each model.
    family_index : int array, shape (n,)
        Family of each model, in ``0..F-1``.
    obs_model, obs_benchmark : int arrays, shape (m,)
        Row and column of each observed (or to-be-predicted) cell.
    floors : array, shape (J,)
        Guessing floor of each benchmark.
    inv_items : array, shape (J,)
        ``1 / n_items`` per benchmark (0 when unknown) for the binomial part of the noise.
    structure : ModelStructure
        Sizes, anchors, noise model and priors.
    scores : array, shape (m,), optional
        Observed scores of the cells; ``None`` to sample them (prediction).
    family_mask, score_mask : bool arrays, shapes (F,) and (m,), optional
        Padding (see :func:`sloth.inference.pad_arrays`): families and cells marked ``False``
        are placeholders that keep array shapes fixed across fits. A placeholder cell adds
        nothing; a placeholder family's efficiency is a standard normal apart from the model.
    anchor_rows, free_rows : int arrays, shapes (d,) and (J - d,), optional
        Anchors as data (see :func:`assemble_loadings`); default ``structure.anchors``.
    """
    s, pr = structure, structure.priors
    d, J, P = s.n_skills, s.n_benchmarks, s.n_covariates

    skill_slope = numpyro.sample(
        "skill_slope", dist.Normal(0.0, pr["skill_slope_scale"]).expand([P, d]).to_event(2)
    )
    if s.anchors is None:
        with numpyro.plate("family", s.n_families, dim=-2), numpyro.plate("skill", d, dim=-1):
            family_efficiency = numpyro.sample("family_offset", dist.Normal(0.0, 1.0))
    else:
        family_scale = numpyro.sample(
            "family_scale", dist.HalfNormal(pr["family_scale_scale"]).expand([d]).to_event(1)
        )
        if d > 1:
            corr_chol = numpyro.sample(
                "family_corr_chol", dist.LKJCholesky(d, pr["family_corr_concentration"])
            )
        else:
            corr_chol = jnp.ones((1, 1))
        scale_tril = family_scale[:, None] * corr_chol
        if s.centered:
            with numpyro.plate("family", s.n_families), numpyro.handlers.mask(
                mask=True if family_mask is None else family_mask
            ):
                family_efficiency = numpyro.sample(
                    "family_efficiency",
                    dist.MultivariateNormal(jnp.zeros(d), scale_tril=scale_tril),
                )
            if family_mask is not None:  # placeholders: standard normal, outside the population
                numpyro.factor("family_padding", -0.5 * jnp.sum(
                    jnp.where(family_mask[:, None], 0.0, family_efficiency**2)))
        else:
            with numpyro.plate("family", s.n_families, dim=-2), numpyro.plate("skill", d, dim=-1):
                family_offset = numpyro.sample("family_offset", dist.Normal(0.0, 1.0))
            family_efficiency = family_offset @ scale_tril.T
    if not (s.centered and s.anchors is not None):
        numpyro.deterministic("family_efficiency", family_efficiency)

    n_free = len(s.free_rows)
    loading_free = numpyro.sample(
        "loading_free", dist.Normal(0.0, pr["loading_scale"]).expand([n_free, d]).to_event(2)
    )
    loading = numpyro.deterministic(
        "loading", assemble_loadings(s, loading_free, anchor_rows, free_rows))

    with numpyro.plate("benchmark", J):
        intercept = numpyro.sample("intercept", dist.Normal(0.0, pr["intercept_scale"]))
        noise_scale = numpyro.sample("noise_scale", dist.HalfNormal(pr["noise_scale_scale"]))
        link_shape = link_ceiling = None
        if s.has_shape:
            link_shape = numpyro.sample("link_shape", dist.LogNormal(0.0, pr["link_shape_scale"]))
        if s.has_ceiling:
            link_ceiling = numpyro.sample(
                "link_ceiling", dist.Beta(pr["link_ceiling_a"], pr["link_ceiling_b"])
            )
    noise_df = None
    if s.noise == "student_t":
        noise_df = numpyro.sample("noise_df", dist.Gamma(2.0, pr["noise_df_rate"]))

    skills = family_efficiency[family_index] + covariates @ skill_slope  # (n, d)
    eta = jnp.sum(skills[obs_model] * loading[obs_benchmark], axis=-1) + intercept[obs_benchmark]
    mean = link_mean(
        eta, floors[obs_benchmark],
        None if link_shape is None else link_shape[obs_benchmark],
        None if link_ceiling is None else link_ceiling[obs_benchmark],
    )
    scale = observation_scale(mean, noise_scale[obs_benchmark], inv_items[obs_benchmark])
    with numpyro.plate("score", obs_model.shape[0]), numpyro.handlers.mask(
        mask=True if score_mask is None else score_mask
    ):
        numpyro.sample("scores", score_distribution(mean, scale, noise_df), obs=scores)


def default_priors(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """Default prior scales updated with ``overrides`` (unknown keys raise ``ValueError``)."""
    priors = dict(DEFAULT_PRIORS)
    for key, value in (overrides or {}).items():
        if key not in priors:
            raise ValueError(f"unknown prior {key!r}; allowed: {sorted(priors)}")
        priors[key] = float(value)
    return priors


