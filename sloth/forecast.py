"""Forecast models of families that were not in the fit, from 0, 1 or more observed models.

For each posterior draw ``s`` of the shared parameters, the new family's efficiency
``alpha`` (d,) is drawn from its conditional given the family's observed scores::

    p(alpha | y, theta_s)  ∝  MVN(alpha; 0, Sigma_s) * prod StudentT(y | m(alpha, theta_s))

With no observed score this is the population ``MVN(0, Sigma_s)``. Otherwise a few Newton
steps per draw find the conditional mode, ``K`` proposals are drawn from a widened Gaussian
(Laplace) approximation there, and one is kept by importance resampling. Everything is
vectorized over draws with JAX, so no refit is needed and forecasts take seconds.
"""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from sloth.data.table import FAMILY, MODEL, PARAMS, TOKENS, ScoreTable
from sloth.data.validation import check_observed_families
from sloth.estimator import SlothModel
from sloth.exceptions import DataValidationError
from sloth.model import maths


def _stacked(model: SlothModel) -> dict[str, np.ndarray]:
    """The draws (S, ...) the conditional needs, the link's parameters filled with ones
    (``k = h = 1``) for the logistic link so that every draw has them."""
    p = model.posterior_.draws(
        ("skill_slope", "loading", "intercept", "noise_scale", "family_scale", "family_corr",
         "noise_df", *maths.LINK_VARIABLES)
    )
    for name in maths.LINK_VARIABLES:  # the logistic link: k = h = 1
        p.setdefault(name, np.ones_like(p["intercept"]))
    bad = sorted(k for k, v in p.items() if not np.isfinite(np.asarray(v, dtype=float)).all())
    if bad:
        raise DataValidationError(
            f"the posterior has non-finite draws of {bad}, so its forecasts would be NaN. Fix: "
            "refit, e.g. with another seed or a longer warm-up (`sloth diagnose` on the saved "
            "posterior shows which chains failed)"
        )
    return p


def _cholesky(corr: np.ndarray) -> np.ndarray:
    """Cholesky factors of correlation matrices shaped (S, d, d), robust to draws that are
    singular to rounding (eigenvalues floored at 1e-10, in float64)."""
    try:
        return np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        # in float64: a floor of 1e-10 is below float32's resolution of a unit diagonal
        corr = np.asarray(corr, dtype=np.float64)
        eigval, eigvec = np.linalg.eigh(0.5 * (corr + np.swapaxes(corr, -1, -2)))
        fixed = np.einsum("sij,sj,skj->sik", eigvec, np.maximum(eigval, 1e-10), eigvec)
        return np.linalg.cholesky(fixed + 1e-12 * np.eye(corr.shape[-1]))


def _log_conditional(
    alpha: jnp.ndarray, chol: jnp.ndarray, base: jnp.ndarray, loading: jnp.ndarray,
    intercept: jnp.ndarray, noise_scale: jnp.ndarray, df: jnp.ndarray | None,
    shape: jnp.ndarray, ceiling: jnp.ndarray, rows: jnp.ndarray, cols: jnp.ndarray,
    y: jnp.ndarray, floors: jnp.ndarray, inv_items: jnp.ndarray,
) -> jnp.ndarray:
    """Log density (up to a constant) of one family's efficiency given one draw, scalar.

    ``alpha`` (d,) is the efficiency, ``chol`` (d, d) the Cholesky factor of the population
    covariance, ``base`` (k, d) the observed models' skills less their efficiency; the ``m``
    observed scores ``y`` sit in cells ``(rows, cols)``. ``df`` is the posterior's degrees of
    freedom of the noise (``None``: normal noise); the rest are one draw's parameters (J,).
    """
    z = jax.scipy.linalg.solve_triangular(chol, alpha, lower=True)
    log_prior = -0.5 * jnp.sum(z**2)
    eta = maths.cell_predictor(alpha + base, loading, intercept, rows, cols)
    mean = maths.link_mean(eta, floors[cols], shape[cols], ceiling[cols])
    scale = maths.observation_scale(mean, noise_scale[cols], inv_items[cols])
    noise_df = None if df is None else df - 1.0  # the model's site is df - 1
    return log_prior + jnp.sum(maths.score_distribution(mean, scale, noise_df).log_prob(y))


def condition_efficiency(
    model: SlothModel,
    covariates: np.ndarray,
    scores: np.ndarray,
    *,
    seed: int = 0,
    proposals: int = 16,
    newton_steps: int = 30,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a new family's efficiency per posterior draw, given its observed scores.

    Parameters
    ----------
    model : fitted SlothModel
    covariates : ndarray, shape (k, P)
        Standardized covariates of the family's observed models.
    scores : ndarray, shape (k, J)
        Their scores (``nan`` where unobserved); ``k = 0`` gives the population draw.
    seed : int
    proposals : int
        Importance proposals per draw.

    Returns
    -------
    alpha : ndarray, shape (S, d)
        One draw of the efficiency per posterior draw.
    ess_fraction : ndarray, shape (S,)
        Effective sample size of the importance weights over ``proposals`` (1 = perfect
        proposal); ``1`` everywhere when nothing is observed.
    """
    p = _stacked(model)
    S, d = p["family_scale"].shape
    rng = np.random.default_rng(seed)
    chol = _cholesky(p["family_corr"]) * p["family_scale"][:, :, None]
    rows, cols = np.nonzero(~np.isnan(scores))
    if len(rows) == 0:
        z = rng.standard_normal((S, d))
        return np.einsum("sij,sj->si", chol, z), np.ones(S)
    posterior = model.posterior_
    floors = jnp.asarray(posterior.floors)
    inv_items = jnp.asarray(posterior.inv_items)
    y = jnp.asarray(scores[rows, cols])
    # the observed models' skills less the efficiency, (S, k, d)
    base = posterior.skills(covariates, efficiency=np.zeros((S, d)))
    df = p.get("noise_df")

    def logp(alpha, chol_s, base_s, loading_s, intercept_s, noise_s, df_s, shape_s, ceil_s):
        return _log_conditional(
            alpha, chol_s, base_s, loading_s, intercept_s, noise_s,
            None if df is None else df_s, shape_s, ceil_s, jnp.asarray(rows),
            jnp.asarray(cols), y, floors, inv_items,
        )

    grad = jax.grad(logp)
    hess = jax.hessian(logp)

    def newton(*args):

        def step(alpha, _):
            g = grad(alpha, *args)
            neg = -hess(alpha, *args)
            # Levenberg-style curvature: where the density is not concave (Student-t tails
            # far from the data), |eigenvalue| floored at 1 keeps the step bounded
            eigval, eigvec = jnp.linalg.eigh(0.5 * (neg + neg.T))
            delta = eigvec @ ((eigvec.T @ g) / jnp.maximum(jnp.abs(eigval), 1.0))
            # backtracking: the best of the current point and six step lengths
            lengths = jnp.concatenate([jnp.zeros(1), 0.5 ** jnp.arange(6.0)])
            cands = alpha[None, :] + lengths[:, None] * delta[None, :]
            values = jax.vmap(lambda a: logp(a, *args))(cands)
            return cands[jnp.argmax(values)], None

        # several starts (the population mean and +-1.5 population sd along each skill):
        # with a heavy-tailed likelihood and a saturating link the conditional need not be
        # concave, and a start at 0 alone can stall far from its mode
        chol_s = args[0]
        offsets = jnp.concatenate([jnp.zeros((1, d)), 1.5 * chol_s.T, -1.5 * chol_s.T])
        modes = jax.vmap(lambda a0: jax.lax.scan(step, a0, None, length=newton_steps)[0])(
            offsets)
        mode = modes[jnp.argmax(jax.vmap(lambda a: logp(a, *args))(modes))]
        neg = -hess(mode, *args)
        eigval, eigvec = jnp.linalg.eigh(0.5 * (neg + neg.T))
        scales = 1.5 / jnp.sqrt(jnp.maximum(eigval, 0.05))
        return mode, eigvec, scales

    df_arr = jnp.asarray(df if df is not None else np.zeros(S))
    arrays = (
        *(jnp.asarray(a) for a in (chol, base, p["loading"], p["intercept"], p["noise_scale"])),
        df_arr, jnp.asarray(p["link_shape"]), jnp.asarray(p["link_ceiling"]),
    )
    # the Laplace proposal at each mode: N(mode, V diag(scales)^2 V^T), V orthonormal
    modes, eigvecs, scales = (np.asarray(a) for a in jax.jit(jax.vmap(newton))(*arrays))
    # a defensive mixture (Hesterberg 1995): most proposals from the Laplace approximation at
    # the mode, a quarter from the population, so that no weight exceeds 4x the likelihood
    # even where the Laplace approximation misses the conditional
    n_prior = proposals // 4
    eps = rng.standard_normal((S, proposals, d))
    laplace = modes[:, None, :] + np.einsum("sij,skj->ski", eigvecs * scales[:, None, :], eps)
    population = np.einsum("sij,skj->ski", chol, eps)
    cand = np.where(np.arange(proposals)[None, :, None] < proposals - n_prior,
                    laplace, population)
    log_target = jax.jit(jax.vmap(jax.vmap(logp, in_axes=(0,) + (None,) * 8)))(
        jnp.asarray(cand), *arrays)
    # normalized log densities of both components at every candidate (the Laplace one
    # whitened through its eigen-decomposition: V^T (cand - mode) / scales)
    u = np.einsum("sji,skj->ski", eigvecs, cand - modes[:, None, :]) / scales[:, None, :]
    log_laplace = -0.5 * np.sum(u**2, axis=-1) - np.sum(np.log(scales), axis=1)[:, None]
    zp = np.linalg.solve(chol[:, None], cand[..., None])[..., 0]
    log_population = (-0.5 * np.sum(zp**2, axis=-1)
                      - np.sum(np.log(np.abs(np.diagonal(chol, axis1=1, axis2=2))), axis=1)
                      [:, None])
    mix = n_prior / proposals
    log_proposal = np.logaddexp(np.log1p(-mix) + log_laplace, np.log(mix) + log_population)
    logw = np.asarray(log_target, dtype=float) - log_proposal
    # proposals where the density overflows (extreme draws of the link) get no weight; a
    # draw with no usable proposal falls back to its population draw
    logw = np.where(np.isfinite(logw) & np.isfinite(cand).all(axis=-1), logw, -np.inf)
    failed = ~np.isfinite(logw).any(axis=1)
    if failed.any():
        z = rng.standard_normal((int(failed.sum()), d))
        cand[failed, 0] = np.einsum("sij,sj->si", chol[failed], z)
        logw[failed] = -np.inf
        logw[failed, 0] = 0.0
    logw -= logw.max(axis=1, keepdims=True)
    w = np.exp(logw)
    w /= w.sum(axis=1, keepdims=True)
    ess_fraction = np.where(failed, 0.0, 1.0 / (w**2).sum(axis=1) / proposals)
    pick = np.array([rng.choice(proposals, p=w_s) for w_s in w])
    return cand[np.arange(S), pick], ess_fraction


def forecast_draws(
    model: SlothModel,
    new_models: pd.DataFrame,
    observed: pd.DataFrame | None = None,
    *,
    kind: str = "score",
    seed: int = 0,
) -> np.ndarray:
    """Posterior draws of the forecasts of :func:`forecast`, shape (S, n, J).

    ``S`` is chains x draws, ``n`` the rows of ``new_models`` (in order), ``J`` the fit's
    benchmarks. Parameters as in :func:`forecast`.
    """
    posterior = model.posterior_
    if kind not in ("score", "mean"):
        raise ValueError(f"kind={kind!r}: allowed values are 'score' and 'mean'")
    new_models = posterior.validate_frame(new_models, "new_models")
    known = sorted(set(new_models[FAMILY]) & set(posterior.families))
    if known:
        raise DataValidationError(
            f"families {known} were in the fit: use SlothModel.predict for them"
        )
    if observed is not None:
        observed = posterior.validate_frame(observed, "observed", require_scores=True)
        check_observed_families(observed, new_models)
    _stacked(model)  # names non-finite draws before anything is computed
    rng = np.random.default_rng(seed)
    new_models = new_models.reset_index(drop=True)
    out = np.empty((posterior.n_draws, len(new_models), len(posterior.benchmarks)))
    for family in dict.fromkeys(new_models[FAMILY]):
        index = np.nonzero((new_models[FAMILY] == family).to_numpy())[0]
        rows = new_models.iloc[index]
        obs = (observed[observed[FAMILY] == family] if observed is not None
               else new_models.iloc[:0])
        obs_x = posterior.standardize(obs)
        obs_scores = posterior.scores_of(obs)
        alpha, _ = condition_efficiency(
            model, obs_x, obs_scores, seed=int(rng.integers(2**31))
        )
        skills = posterior.skills(posterior.standardize(rows), efficiency=alpha)
        obs_skills = posterior.skills(obs_x, efficiency=alpha)
        effects = posterior.family_effects(obs_skills, obs_scores, rng)
        mean = posterior.mean_scores(skills, effects)
        out[:, index, :] = posterior.predictive_draws(mean, rng) if kind == "score" else mean
    return out


def refit_with(model: SlothModel, observed: pd.DataFrame) -> SlothModel:
    """The exact alternative to conditioning: refit ``model``'s configuration on its data
    plus the ``observed`` models of new families.

    Parameters
    ----------
    model : fitted SlothModel
    observed : DataFrame
        Models of new families with their scores (columns as in :func:`forecast`).

    Returns
    -------
    SlothModel
        A new fitted model whose families include those of ``observed``.
    """
    posterior = model.posterior_
    observed = posterior.validate_frame(observed, "observed", require_scores=True)
    table = model.table_
    scores = posterior.scores_of(observed)
    if np.isnan(scores).all():
        raise DataValidationError(
            "observed has no score in the fit's benchmarks "
            f"{list(table.benchmarks)}: nothing to refit on"
        )
    extra = {k: np.concatenate([v, observed[k].to_numpy(dtype=float)])
             for k, v in table.extra_covariates.items()}
    combined = ScoreTable(
        models=(*table.models, *observed[MODEL].astype(str)),
        family=(*table.family, *observed[FAMILY].astype(str)),
        params=np.concatenate([table.params, observed[PARAMS].to_numpy(dtype=float)]),
        tokens=np.concatenate([table.tokens, observed[TOKENS].to_numpy(dtype=float)]),
        benchmarks=table.benchmarks, floors=table.floors,
        scores=np.vstack([table.scores, scores]), extra_covariates=extra,
    )
    refit = type(model)(**model.get_params())
    return refit.fit(replace(combined, skipped=table.skipped))


def forecast(
    model: SlothModel,
    new_models: pd.DataFrame,
    observed: pd.DataFrame | None = None,
    *,
    kind: str = "score",
    seed: int = 0,
    method: str = "condition",
) -> pd.DataFrame:
    """Posterior predictions for models of families that were not in the fit.

    Parameters
    ----------
    model : fitted SlothModel
    new_models : DataFrame
        Models to forecast: ``model, family, params, tokens`` (+ the fit's extra covariates).
    observed : DataFrame, optional
        Already evaluated models of those families: the same columns plus score columns
        named after the fit's benchmarks (``nan`` where not evaluated). Families without
        observed models are drawn from the fitted population of families.
    kind : {"score", "mean"}
        Posterior predictive of a score (with noise) or posterior of the mean score.
    seed : int
    method : {"condition", "refit"}
        ``"condition"`` (seconds): each posterior draw's shared parameters are kept and the
        new family's efficiency is drawn from its conditional given the observed models.
        ``"refit"`` (a full fit): the model is refitted with the observed models added
        (:func:`refit_with`), so they also inform the shared parameters; families without
        observed models are then drawn from the refitted population.

    Returns
    -------
    DataFrame
        One row per model and benchmark: ``model, family, benchmark, mean, median, q05,
        q95``.

    See Also
    --------
    forecast_datatree : the same forecasts as a ``predictions`` group of the posterior.
    """
    if method not in ("condition", "refit"):
        raise ValueError(f"method={method!r}: allowed values are 'condition' and 'refit'")
    new_models = new_models.reset_index(drop=True)
    if method == "refit" and observed is not None and len(observed):
        refit = refit_with(model, observed)
        seen = new_models[FAMILY].isin(set(observed[FAMILY])).to_numpy()
        posterior = refit.posterior_
        draws = np.empty((posterior.n_draws, len(new_models), len(posterior.benchmarks)))
        if seen.any():
            draws[:, seen] = posterior.predict_draws(new_models[seen], kind=kind, seed=seed)
        if (~seen).any():
            draws[:, ~seen] = forecast_draws(refit, new_models[~seen], None, kind=kind,
                                             seed=seed)
        return posterior.tidy(new_models, draws)
    draws = forecast_draws(model, new_models, observed, kind=kind, seed=seed)
    return model.posterior_.tidy(new_models, draws)


def forecast_datatree(
    model: SlothModel,
    new_models: pd.DataFrame,
    observed: pd.DataFrame | None = None,
    *,
    kind: str = "score",
    seed: int = 0,
) -> xr.DataTree:
    """The fit's DataTree with the forecasts added as ArviZ ``predictions`` groups.

    Parameters as in :func:`forecast`.

    Returns
    -------
    xarray.DataTree
        A copy of ``model.idata_`` with group ``predictions`` (variable ``scores``, dims
        ``chain, draw, model, benchmark``; the posterior predictive with ``kind="score"``,
        the mean score with ``kind="mean"``) and ``predictions_constant_data`` (family,
        params and tokens of each forecast model).
    """
    draws = forecast_draws(model, new_models, observed, kind=kind, seed=seed)
    post = model.idata_["posterior"]
    chains, per_chain = post.sizes["chain"], post.sizes["draw"]
    frame = new_models.reset_index(drop=True)
    names = frame[MODEL].astype(str).to_numpy()
    coords = {"chain": post["chain"].to_numpy(), "draw": post["draw"].to_numpy(),
              "model": names, "benchmark": list(model.benchmarks_)}
    predictions = xr.Dataset(
        {"scores": (("chain", "draw", "model", "benchmark"),
                    draws.reshape(chains, per_chain, *draws.shape[1:]))},
        coords=coords, attrs={"kind": kind, "seed": seed},
    )
    constant = xr.Dataset(
        {"model_family": ("model", frame[FAMILY].astype(str).to_numpy()),
         "params": ("model", frame[PARAMS].to_numpy(dtype=float)),
         "tokens": ("model", frame[TOKENS].to_numpy(dtype=float))},
        coords={"model": names},
    )
    tree = model.idata_.copy()
    tree["predictions"] = xr.DataTree(predictions)
    tree["predictions_constant_data"] = xr.DataTree(constant)
    return tree
