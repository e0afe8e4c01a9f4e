"""A new family's latent variables given its observed models: the exact posterior predictive.

A family that was not in the fit has an efficiency ``alpha`` (d,) and, with family-by-benchmark
effects, a deviation ``v_j = tau_j w_j`` per benchmark (``w ~ Normal(0, 1)``). Given the
family's observed scores ``y``, the posterior predictive of its other models is an average
over ``p(theta, alpha, w | data, y)``, with ``theta`` the shared parameters. With posterior
draws ``theta_s`` of the fit::

    p(theta_s, alpha, w | data, y)  ∝  p(y | theta_s)  p(alpha, w | theta_s, y)

so each draw needs (1) its conditional of ``(alpha, w)`` and (2) its *marginal likelihood*
``p(y | theta_s)`` of the new scores, which weights the draws: a draw of the shared
parameters under which the new family's scores are unlikely counts less. Both come from
importance sampling per draw: Newton's method finds the conditional mode (the linear
predictor is linear in ``(alpha, w)``, so the Hessian is an exact sum over cells), proposals
are drawn from a defensive mixture of the Laplace approximation there and the population,
``log p(y | theta_s)`` is the log mean of their importance weights, and one proposal is kept
by its weight. The weights across draws are Pareto-smoothed (PSIS, through ``arviz_stats``):
their Pareto ``k-hat`` says whether the posterior of the fit is a usable proposal for the
posterior with the new family (``k-hat <= 0.7``); above it the forecast must refit.
:func:`new_family_log_likelihood` returns the per-draw ``log p(y | theta_s)`` itself, whose
log mean over the draws is the log predictive density of the scores of a family the fit has
not seen (the exact leave-one-family-out ELPD of :mod:`sloth.comparison`).

The likelihood is the model's (:mod:`sloth.model.maths`): the same link, score scale and
Student-t or normal noise as the NumPyro model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache, partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from sloth.config import persistent_program
from sloth.model import maths
from sloth.posterior.api import Posterior

__all__ = [
    "KHAT_THRESHOLD",
    "ConditionedFamily",
    "Conditioning",
    "condition_family",
    "new_family_log_likelihood",
    "population_draws",
]

#: Pareto k-hat above which importance weights across draws are unreliable (Vehtari et al.
#: 2024): the forecast then refits instead (or raises, as asked).
KHAT_THRESHOLD = 0.7
#: Cells of a family's observed scores are padded to a multiple of this, so that families of
#: similar size share one compiled program.
CELL_PAD = 16


@dataclass(frozen=True)
class Conditioning:
    """How one new family's forecast was conditioned on its observed models.

    Attributes
    ----------
    family : str
    n_observed_models, n_observed_scores : int
    method : {"population", "importance", "refit"}
        ``"population"``: nothing observed, the family is drawn from the fitted population;
        ``"importance"``: the fit's draws reweighted by the new scores (PSIS);
        ``"refit"``: k-hat was too high, the model was refitted with the observed models.
    khat : float
        Pareto k-hat of the weights across draws (``nan`` without observed scores).
    ess : float
        Effective sample size of the smoothed weights (the number of draws without them).
    n_draws : int
        Posterior draws the weights were computed over.
    within_draw_ess : float
        Median over draws of the effective fraction of the proposals within one draw (how
        well the Laplace proposal matched the conditional; 1 is perfect).
    """

    family: str
    n_observed_models: int
    n_observed_scores: int
    method: str
    khat: float
    ess: float
    n_draws: int
    within_draw_ess: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """The record as plain Python values (``nan`` kept)."""
        return {k: (float(v) if isinstance(v, float | np.floating) else v)
                for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ConditionedFamily:
    """Draws of a new family's latent variables, aligned with posterior draws.

    Attributes
    ----------
    draw_index : int ndarray, shape (S,)
        The posterior draw behind each row (a resample by the weights; ``arange(S)`` for a
        population forecast).
    efficiency : ndarray, shape (S, d)
    effects : ndarray, shape (S, J) or None
        The family's benchmark effects on the linear predictor (``None`` without them).
    diagnostics : Conditioning
    """

    draw_index: np.ndarray
    efficiency: np.ndarray
    effects: np.ndarray | None
    diagnostics: Conditioning


def population_factor(posterior: Posterior) -> np.ndarray:
    """Cholesky factors (S, d, d) of the family population's covariance per draw, robust to
    correlation draws that are singular to rounding (eigenvalues floored at 1e-10, float64)."""
    p = posterior.draws(("family_scale", "family_corr"))
    corr = np.asarray(p["family_corr"], dtype=np.float64)
    try:
        chol = np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        eigval, eigvec = np.linalg.eigh(0.5 * (corr + np.swapaxes(corr, -1, -2)))
        fixed = np.einsum("sij,sj,skj->sik", eigvec, np.maximum(eigval, 1e-10), eigvec)
        chol = np.linalg.cholesky(fixed + 1e-12 * np.eye(corr.shape[-1]))
    return chol * np.asarray(p["family_scale"], dtype=np.float64)[:, :, None]


def has_effects(posterior: Posterior) -> bool:
    """Whether the fit has family-by-benchmark effects: sampled scales in the posterior, or
    the fit's estimate of them."""
    return (posterior.family_benchmark_scale is not None
            or "family_benchmark_scale" in posterior.tree["posterior"])


def effect_scales(posterior: Posterior) -> np.ndarray:
    """``tau`` per draw and benchmark (S, J): the sampled scales if the posterior has them,
    else the fit's estimate broadcast over draws, else zeros (no effects)."""
    sampled = posterior.draws(("family_benchmark_scale",)).get("family_benchmark_scale")
    if sampled is not None:
        return np.asarray(sampled, dtype=np.float64)
    tau = posterior.family_benchmark_scale
    J = len(posterior.benchmarks)
    if tau is None:
        return np.zeros((posterior.n_draws, J))
    return np.broadcast_to(np.asarray(tau, dtype=np.float64), (posterior.n_draws, J)).copy()


def population_draws(posterior: Posterior, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """A new family drawn from the fitted population, one per posterior draw.

    Returns
    -------
    efficiency : ndarray, shape (S, d)
    effects : ndarray, shape (S, J) or None
        ``v_j ~ Normal(0, tau_j^2)`` as the model states (``None`` without effects).
    """
    chol = population_factor(posterior)
    S, d = chol.shape[:2]
    efficiency = np.einsum("sij,sj->si", chol, rng.standard_normal((S, d)))
    if not has_effects(posterior):
        return efficiency, None
    tau = effect_scales(posterior)
    return efficiency, tau * rng.standard_normal(tau.shape)


def _cell_loglik(eta, y, floor, shape, ceiling, noise_scale, inv_items, noise_df, *,
                 normal: bool):
    """Log density of one score given its linear predictor (the model's likelihood)."""
    mean = maths.link_mean(eta, floor, shape, ceiling)
    scale = maths.observation_scale(mean, noise_scale, inv_items)
    return maths.score_distribution(mean, scale, None if normal else noise_df).log_prob(y)


def _cell_information(eta, y, floor, shape, ceiling, noise_scale, inv_items, noise_df, *,
                      normal: bool):
    """Expected information of one score about its linear predictor: ``(dm/deta)^2 / s^2``,
    times ``(nu + 1) / (nu + 3)`` for Student-t noise with ``nu`` degrees of freedom."""
    mean = maths.link_mean(eta, floor, shape, ceiling)
    scale = maths.observation_scale(mean, noise_scale, inv_items)
    slope = maths.link_slope(eta, floor, shape, ceiling)
    nu = noise_df + 1.0  # score_distribution's Student-t has noise_df + 1 degrees of freedom
    factor = 1.0 if normal else (nu + 1.0) / (nu + 3.0)
    return factor * slope**2 / scale**2


def _condition_kernel(key, prior_chol, tau, base, loading, intercept, noise_scale, noise_df,
                      shape, ceiling, rows, cols, y, mask, floors, inv_items, *,
                      proposals: int, newton_steps: int, normal: bool):
    """Per draw: the conditional mode of ``u = (alpha, w)``, importance proposals, the log
    marginal likelihood of the observed cells and the within-draw weights.

    Shapes: ``prior_chol`` (S, d, d), ``tau`` (S, J), ``base`` (S, k, d), ``loading``
    (S, J, d), ``intercept``/``noise_scale``/``shape``/``ceiling`` (S, J), ``noise_df`` (S,),
    cells ``rows``/``cols``/``y``/``mask`` (m,), ``floors``/``inv_items`` (J,).
    """
    d = prior_chol.shape[-1]
    J = tau.shape[-1]
    eye_w = jnp.eye(J)
    cell_ll = partial(_cell_loglik, normal=normal)
    axes = (0, 0, 0, 0, 0, 0, 0, None)
    cell_values = jax.vmap(cell_ll, in_axes=axes)
    cell_slopes = jax.vmap(jax.grad(cell_ll), in_axes=axes)
    cell_curvatures = jax.vmap(jax.grad(jax.grad(cell_ll)), in_axes=axes)
    cell_information = jax.vmap(partial(_cell_information, normal=normal), in_axes=axes)

    def per_draw(key, chol, tau, base, loading, intercept, noise_scale, noise_df, shape,
                 ceiling):
        # eta_c = lam_j . (alpha + base_i) + b_j + tau_j w_j: linear in u = (alpha, w)
        design = jnp.concatenate([loading[cols], tau[cols, None] * eye_w[cols]], axis=1)
        offset = jnp.sum(loading[cols] * base[rows], axis=1) + intercept[cols]
        cell = (y, floors[cols], shape[cols], ceiling[cols], noise_scale[cols], inv_items[cols])
        prec_alpha = jax.scipy.linalg.cho_solve((chol, True), jnp.eye(d))
        prior_precision = jax.scipy.linalg.block_diag(prec_alpha, jnp.eye(J))

        def loglik(u):
            eta = design @ u + offset
            ll = cell_values(eta, *cell, noise_df)
            return jnp.sum(jnp.where(mask, ll, 0.0))

        def log_prior(u):
            z = jax.scipy.linalg.solve_triangular(chol, u[:d], lower=True)
            return (-0.5 * jnp.sum(z**2) - 0.5 * jnp.sum(u[d:] ** 2)
                    - jnp.sum(jnp.log(jnp.abs(jnp.diag(chol))))
                    - 0.5 * (d + J) * jnp.log(2 * jnp.pi))

        def derivatives(u):
            """Gradient and the negative Hessian of the log density at ``u`` (exact: eta is
            linear in u, so the Hessian is a sum over cells)."""
            eta = design @ u + offset
            g1 = jnp.where(mask, cell_slopes(eta, *cell, noise_df), 0.0)
            g2 = jnp.where(mask, cell_curvatures(eta, *cell, noise_df), 0.0)
            grad = design.T @ g1 - jnp.concatenate([prec_alpha @ u[:d], u[d:]])
            return grad, -(design.T * g2) @ design + prior_precision

        def scoring(u):
            """Gradient and the expected information (Fisher scoring), positive definite:
            steps need no eigen-decomposition where the Student-t density is not concave."""
            eta = design @ u + offset
            g1 = jnp.where(mask, cell_slopes(eta, *cell, noise_df), 0.0)
            info = jnp.where(mask, cell_information(eta, *cell, noise_df), 0.0)
            grad = design.T @ g1 - jnp.concatenate([prec_alpha @ u[:d], u[d:]])
            return grad, (design.T * info) @ design + prior_precision

        def log_post(u):
            return loglik(u) + log_prior(u)

        def step(u, _):
            grad, info = scoring(u)
            delta = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(info, lower=True),
                                               grad)
            # backtracking: the best of the current point and four step lengths
            lengths = jnp.array([0.0, 1.0, 0.5, 0.25, 0.125])
            cands = u[None, :] + lengths[:, None] * delta[None, :]
            return cands[jnp.argmax(jax.vmap(log_post)(cands))], None

        # starts: the population mean, and +-1.5 population sd along each skill
        starts = jnp.concatenate([jnp.zeros((1, d)), 1.5 * chol.T, -1.5 * chol.T])
        starts = jnp.concatenate([starts, jnp.zeros((starts.shape[0], J))], axis=1)
        modes = jax.vmap(lambda u0: jax.lax.scan(step, u0, None, length=newton_steps)[0])(
            starts)
        mode = modes[jnp.argmax(jax.vmap(log_post)(modes))]
        _, neg = derivatives(mode)
        eigval, eigvec = jnp.linalg.eigh(0.5 * (neg + neg.T))
        # widened a little: in d + J dimensions a wide proposal wastes most of its draws
        scales = 1.2 / jnp.sqrt(jnp.maximum(eigval, 0.05))
        # a defensive mixture (Hesterberg 1995): 3/4 Laplace, 1/4 population
        n_prior = proposals // 4
        key_eps, key_pick = jax.random.split(key)
        eps = jax.random.normal(key_eps, (proposals, d + J))
        laplace = mode[None, :] + (eps * scales[None, :]) @ eigvec.T
        population = jnp.concatenate([eps[:, :d] @ chol.T, eps[:, d:]], axis=1)
        is_laplace = jnp.arange(proposals) < proposals - n_prior
        cand = jnp.where(is_laplace[:, None], laplace, population)
        white = ((cand - mode[None, :]) @ eigvec) / scales[None, :]
        log_laplace = (-0.5 * jnp.sum(white**2, axis=1) - jnp.sum(jnp.log(scales))
                       - 0.5 * (d + J) * jnp.log(2 * jnp.pi))
        log_population = jax.vmap(log_prior)(cand)
        mix = n_prior / proposals
        log_q = jnp.logaddexp(jnp.log1p(-mix) + log_laplace, jnp.log(mix) + log_population)
        log_target = jax.vmap(log_post)(cand)
        logw = log_target - log_q
        logw = jnp.where(jnp.isfinite(logw), logw, -jnp.inf)
        log_marginal = jax.scipy.special.logsumexp(logw) - jnp.log(proposals)
        w = jnp.exp(logw - jnp.max(logw))
        w = w / jnp.sum(w)
        ess_fraction = 1.0 / jnp.sum(w**2) / proposals
        pick = jax.random.choice(key_pick, proposals, p=w)
        return cand[pick], log_marginal, ess_fraction

    keys = jax.random.split(key, tau.shape[0])
    return jax.vmap(per_draw)(keys, prior_chol, tau, base, loading, intercept, noise_scale,
                              noise_df, shape, ceiling)


@cache
def _kernel_program(proposals: int, newton_steps: int, normal: bool) -> Callable[..., Any]:
    """:func:`_condition_kernel` jitted for these settings, its traced program kept across
    processes where a compilation cache is configured (:func:`sloth.config.persistent_program`)."""
    kernel = jax.jit(partial(_condition_kernel, proposals=proposals, newton_steps=newton_steps,
                             normal=normal))
    noise = "normal" if normal else "student_t"
    return persistent_program(kernel, f"condition-{proposals}-{newton_steps}-{noise}")


def _pad(values: np.ndarray, size: int, fill: float | int) -> np.ndarray:
    return np.concatenate([values, np.full(size - len(values), fill, dtype=values.dtype)])


def new_family_log_likelihood(
    posterior: Posterior,
    covariates: np.ndarray,
    scores: np.ndarray,
    *,
    seed: int = 0,
    proposals: int = 32,
    newton_steps: int = 12,
) -> np.ndarray:
    """Log likelihood ``log p(y | theta_s)`` of a new family's scores under each posterior
    draw, its efficiency (and benchmark effects, where the posterior has them) integrated
    over the fitted population of families.

    ``logsumexp(out) - log(S)`` is the log posterior predictive density of the family's
    scores as a new family (the exact leave-one-family-out ELPD of :mod:`sloth.comparison`,
    from a fit without the family). The integral is estimated by importance sampling per
    draw, as :func:`condition_family` weights the draws (an unbiased estimate of
    ``p(y | theta_s)``).

    Parameters
    ----------
    posterior : Posterior
    covariates : ndarray, shape (k, P)
        Standardized covariates of the family's models (:meth:`Posterior.standardize`).
    scores : ndarray, shape (k, J)
        Their scores, ``nan`` where not evaluated (at least one score).
    seed, proposals, newton_steps :
        As in :func:`condition_family`.

    Returns
    -------
    ndarray, shape (S,)
    """
    rng = np.random.default_rng(seed)
    _, log_marginal, _, _ = _conditionals(posterior, covariates, scores, rng,
                                          proposals=proposals, newton_steps=newton_steps)
    return log_marginal


def _conditionals(posterior: Posterior, covariates: np.ndarray, scores: np.ndarray,
                  rng: np.random.Generator, *, proposals: int, newton_steps: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per draw: one draw of ``u = (alpha, w)`` from its conditional, the log marginal
    likelihood of the observed cells, the within-draw effective fraction of the proposals,
    and the effect scales ``tau`` (S, J); ``scores`` must hold at least one score."""
    S = posterior.n_draws
    rows, cols = np.nonzero(~np.isnan(np.asarray(scores, dtype=float)))
    if len(rows) == 0:
        raise ValueError("scores holds no observed score")
    p = posterior.draws(("loading", "intercept", "noise_scale"))
    link = posterior.link_parameters()
    ones = np.ones_like(p["intercept"])
    noise_df = posterior.noise_df()
    base = posterior.skills(covariates, efficiency=np.zeros((S, posterior.n_skills)))
    tau = effect_scales(posterior)
    m = len(rows)
    m_pad = -(-m // CELL_PAD) * CELL_PAD
    y = np.asarray(scores, dtype=float)[rows, cols]
    args = [np.asarray(a, dtype=np.float32) for a in (
        population_factor(posterior), tau, base, p["loading"], p["intercept"],
        p["noise_scale"], np.zeros(S) if noise_df is None else noise_df,
        link.get("shape", ones), link.get("ceiling", ones))]
    cells = (_pad(rows, m_pad, 0), _pad(cols, m_pad, 0), _pad(y, m_pad, 0.5).astype(np.float32),
             np.arange(m_pad) < m)
    key = jax.random.PRNGKey(int(rng.integers(2**31)))
    kernel = _kernel_program(int(proposals), int(newton_steps), noise_df is None)
    u, log_marginal, ess_fraction = (np.asarray(a, dtype=np.float64) for a in kernel(
        key, *args, *cells, np.asarray(posterior.floors, np.float32),
        np.asarray(posterior.inv_items, np.float32)))
    return u, log_marginal, ess_fraction, tau


def condition_family(
    posterior: Posterior,
    covariates: np.ndarray,
    scores: np.ndarray,
    *,
    family: str = "new family",
    seed: int = 0,
    proposals: int = 32,
    newton_steps: int = 12,
) -> ConditionedFamily:
    """Draws of a new family's efficiency and benchmark effects given its observed models.

    Parameters
    ----------
    posterior : Posterior
        The fit's posterior (:attr:`sloth.SlothModel.posterior_`).
    covariates : ndarray, shape (k, P)
        Standardized covariates of the family's observed models (:meth:`Posterior.standardize`).
    scores : ndarray, shape (k, J)
        Their scores, ``nan`` where not evaluated. No score: a population draw.
    family : str
        The family's name, for the diagnostics.
    seed : int
    proposals : int
        Importance proposals per posterior draw.
    newton_steps : int
        Newton steps from each start.

    Returns
    -------
    ConditionedFamily
        ``S`` rows (the number of posterior draws): resampled by the Pareto-smoothed weights
        when scores are observed. Its ``diagnostics`` carry the Pareto k-hat and the ESS.
    """
    rng = np.random.default_rng(seed)
    S = posterior.n_draws
    m = int(np.count_nonzero(~np.isnan(np.asarray(scores, dtype=float))))
    k = int(np.asarray(scores).shape[0])
    if m == 0:
        efficiency, effects = population_draws(posterior, rng)
        return ConditionedFamily(
            np.arange(S), efficiency, effects,
            Conditioning(family, k, 0, "population", float("nan"), float(S), S))
    u, log_marginal, ess_fraction, tau = _conditionals(
        posterior, covariates, scores, rng, proposals=proposals, newton_steps=newton_steps)
    log_weights, khat = _smoothed_log_weights(log_marginal, posterior)
    weights = np.exp(log_weights - log_weights.max())
    weights /= weights.sum()
    ess = 1.0 / np.sum(weights**2)
    index = _systematic_resample(weights, rng)
    d = posterior.n_skills
    effects = None
    if has_effects(posterior):
        effects = tau[index] * u[index, d:]
    return ConditionedFamily(
        index, u[index, :d], effects,
        Conditioning(family, k, m, "importance", khat, float(ess), S,
                     float(np.median(ess_fraction))))


def _smoothed_log_weights(log_marginal: np.ndarray, posterior: Posterior
                          ) -> tuple[np.ndarray, float]:
    """Pareto-smoothed log weights (S,) of the draws, ``log p(y | theta_s)`` smoothed, and
    their k-hat (``arviz_stats``' PSIS).

    ``arviz_stats`` is imported here, where it is used: a zero-shot forecast does without it
    (its import, mostly ``scipy.stats``, takes about a second).
    """
    import arviz_stats  # noqa: F401  (registers the .azstats accessor)

    post = posterior.tree["posterior"]
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    finite = np.where(np.isfinite(log_marginal), log_marginal, -np.inf)
    if not np.isfinite(finite).any():
        raise FloatingPointError("no posterior draw gives the observed scores a finite "
                                 "likelihood")
    floor = np.max(finite) - 1e4  # PSIS needs finite values: an impossible draw gets ~0
    # arviz_stats' psislw smooths the weights exp(-x) of its input x (written for
    # leave-one-out, whose input is the log-likelihood and whose weights are its inverse):
    # the weight of a draw here is p(y | theta_s) itself, so its input is -log p(y | theta_s)
    da = xr.DataArray(-np.maximum(finite, floor).reshape(chains, draws),
                      dims=("chain", "draw"))
    try:
        log_weights, khat = da.azstats.psislw(dim=["chain", "draw"])
    except ValueError:
        # arviz_stats refuses a tail of equal weights ("All tail values are the same"): a
        # few draws, equally likely, carry all the weight; no Pareto fit describes that, so
        # the weights are unusable (k-hat infinite) and the caller refits or raises
        raw = -da.to_numpy().reshape(-1)
        return raw - np.logaddexp.reduce(raw), float("inf")
    return np.asarray(log_weights).reshape(-1), float(khat)


def _systematic_resample(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``len(weights)`` indices drawn by systematic resampling (low variance), shuffled."""
    n = len(weights)
    positions = (rng.random() + np.arange(n)) / n
    index = np.searchsorted(np.cumsum(weights), positions)
    return rng.permutation(np.minimum(index, n - 1))
