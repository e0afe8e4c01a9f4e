"""The latent-skill model of benchmark scores as a plain NumPyro function of arrays.

For model ``i`` of family ``f(i)`` with standardized covariates ``x_i`` (P,), skills are::

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

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

import sloth.model.maths as maths
from sloth.model.priors import prior_distributions
from sloth.model.structure import ModelStructure, assemble_loadings


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
    s = structure
    d, J, P = s.n_skills, s.n_benchmarks, s.n_covariates
    prior = prior_distributions(s.priors, d)

    skill_slope = numpyro.sample("skill_slope", prior["skill_slope"].expand([P, d]).to_event(2))
    if s.anchors is None:
        with numpyro.plate("family", s.n_families, dim=-2), numpyro.plate("skill", d, dim=-1):
            family_efficiency = numpyro.sample("family_offset", dist.Normal(0.0, 1.0))
    else:
        family_scale = numpyro.sample(
            "family_scale", prior["family_scale"].expand([d]).to_event(1))
        if d > 1:
            corr_chol = numpyro.sample("family_corr_chol", prior["family_corr_chol"])
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
        "loading_free", prior["loading_free"].expand([n_free, d]).to_event(2))
    loading = numpyro.deterministic(
        "loading", assemble_loadings(s, loading_free, anchor_rows, free_rows))

    with numpyro.plate("benchmark", J):
        intercept = numpyro.sample("intercept", prior["intercept"])
        noise_scale = numpyro.sample("noise_scale", prior["noise_scale"])
        link_shape = link_ceiling = None
        if s.has_shape:
            link_shape = numpyro.sample("link_shape", prior["link_shape"])
        if s.has_ceiling:
            link_ceiling = numpyro.sample("link_ceiling", prior["link_ceiling"])
    noise_df = None
    if s.noise == "student_t":
        noise_df = numpyro.sample("noise_df", prior["noise_df"])

    skills = maths.compute_skills(family_efficiency, skill_slope, covariates, family_index)
    eta = maths.cell_predictor(skills, loading, intercept, obs_model, obs_benchmark)
    mean = maths.link_mean(
        eta, floors[obs_benchmark],
        None if link_shape is None else link_shape[obs_benchmark],
        None if link_ceiling is None else link_ceiling[obs_benchmark],
    )
    scale = maths.observation_scale(mean, noise_scale[obs_benchmark], inv_items[obs_benchmark])
    with numpyro.plate("score", obs_model.shape[0]), numpyro.handlers.mask(
        mask=True if score_mask is None else score_mask
    ):
        numpyro.sample("scores", maths.score_distribution(mean, scale, noise_df),
                       obs=scores)


