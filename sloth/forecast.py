"""Forecast models of families that were not in the fit, from 0, 1 or more observed models.

The forecast is the posterior predictive of the model with the new family added: the fit's
draws of the shared parameters are reweighted by their likelihood of the family's observed
scores (Pareto-smoothed importance sampling, with its k-hat and effective sample size
reported per family), and the family's efficiency and benchmark effects are drawn from their
conditional per draw (:mod:`sloth.conditioning`). With no observed model the family is drawn
from the fitted population. Where the weights are unreliable (k-hat above 0.7) the forecast
refits with the observed models instead, and says so (``on_high_khat="raise"`` refuses).

Every forecast also says how far each model lies outside the fitted data (its parameters,
tokens and compute against the fit's range, and its covariate distance:
:class:`sloth.model.design.DesignRange`), and warns
(:class:`sloth.exceptions.ExtrapolationWarning`) where a model lies beyond it.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import xarray as xr

from sloth.conditioning import KHAT_THRESHOLD, Conditioning, condition_family
from sloth.data.table import FAMILY, MODEL, PARAMS, TOKENS, ScoreTable
from sloth.data.validation import check_observed_families
from sloth.estimator import SlothModel
from sloth.exceptions import DataValidationError, ForecastError
from sloth.model.design import EXTRAPOLATION_COLUMNS
from sloth.model.maths import LINK_VARIABLES


def _check_finite(posterior) -> None:
    """Name non-finite posterior draws before anything is computed from them."""
    p = posterior.draws(
        ("skill_slope", "loading", "intercept", "noise_scale", "family_scale", "family_corr",
         "noise_df", *LINK_VARIABLES))
    bad = sorted(k for k, v in p.items() if not np.isfinite(np.asarray(v, dtype=float)).all())
    if bad:
        raise DataValidationError(
            f"the posterior has non-finite draws of {bad}, so its forecasts would be NaN. Fix: "
            "refit, e.g. with another seed or a longer warm-up (`sloth diagnose` on the saved "
            "posterior shows which chains failed)"
        )


def spread_draws(draws: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws spread evenly over ``draws`` (S, ...): the refit of a forecast may hold
    another number of draws than the fit it stands in for (each fit draws until its chains
    have mixed), and its draws fill the same (n, ...) array.

    Returns
    -------
    ndarray, shape (n, ...)
        ``draws`` itself when ``S == n``; else every k-th draw (``S > n``) or draws repeated
        evenly (``S < n``).
    """
    if len(draws) == n:
        return draws
    return draws[np.linspace(0, len(draws) - 1, n).round().astype(int)]


#: Posterior draws a forecast uses by default (every k-th draw of each chain).
MAX_DRAWS = 1000

#: What a forecast does when a family's Pareto k-hat exceeds :data:`KHAT_THRESHOLD`.
ON_HIGH_KHAT = ("refit", "raise")


def forecast_samples(
    model: SlothModel,
    new_models: pd.DataFrame,
    observed: pd.DataFrame | None = None,
    *,
    kind: str = "score",
    seed: int = 0,
    on_high_khat: str = "refit",
    max_draws: int | None = MAX_DRAWS,
) -> tuple[np.ndarray, list[Conditioning]]:
    """Posterior draws of the forecasts of :func:`forecast` and how each family was
    conditioned.

    Parameters as in :func:`forecast`.

    Returns
    -------
    draws : ndarray, shape (S, n, J)
        ``S`` posterior draws (chains x draws, at most ``max_draws``; resampled by each
        family's importance weights), ``n`` the rows of ``new_models`` in order, ``J`` the
        fit's benchmarks.
    conditioning : list of Conditioning
        One per family of ``new_models``, in order of first appearance: the method, the
        Pareto k-hat and the effective sample size of its weights.

    Warns
    -----
    ExtrapolationWarning
        Some of ``new_models`` lie beyond the fitted data (their figures:
        :meth:`sloth.posterior.Posterior.extrapolation`, or the columns of :func:`forecast`).

    Raises
    ------
    DataValidationError
        Bad tables, or families of the fit among ``new_models``.
    ForecastError
        A family's k-hat exceeds :data:`KHAT_THRESHOLD` and ``on_high_khat="raise"``.
    """
    draws, records, _ = _forecast_samples(model, new_models, observed, kind=kind, seed=seed,
                                          on_high_khat=on_high_khat, max_draws=max_draws,
                                          warn=True)
    return draws, records


def _forecast_samples(
    model: SlothModel,
    new_models: pd.DataFrame,
    observed: pd.DataFrame | None,
    *,
    kind: str,
    seed: int,
    on_high_khat: str,
    max_draws: int | None,
    warn: bool,
) -> tuple[np.ndarray, list[Conditioning], pd.DataFrame]:
    """:func:`forecast_samples`, with the extrapolation figures of ``new_models``
    (:meth:`sloth.posterior.Posterior.extrapolation`, warning only when ``warn``)."""
    posterior = model.posterior_.thinned(max_draws)
    if kind not in ("score", "mean"):
        raise ValueError(f"kind={kind!r}: allowed values are 'score' and 'mean'")
    if on_high_khat not in ON_HIGH_KHAT:
        raise ValueError(f"on_high_khat={on_high_khat!r}: allowed values are {ON_HIGH_KHAT}")
    new_models = posterior.validate_frame(new_models, "new_models").reset_index(drop=True)
    known = sorted(set(new_models[FAMILY]) & set(posterior.families))
    if known:
        raise DataValidationError(
            f"families {known} were in the fit: use SlothModel.predict for them"
        )
    if observed is not None:
        observed = posterior.validate_frame(observed, "observed", require_scores=True)
        check_observed_families(observed, new_models)
    _check_finite(model.posterior_)  # every draw, not only those the forecast keeps
    extrapolation = posterior.extrapolation(new_models, warn=warn)
    rng = np.random.default_rng(seed)
    out = np.empty((posterior.n_draws, len(new_models), len(posterior.benchmarks)))
    records: list[Conditioning] = []
    unreliable: list[str] = []
    for family in dict.fromkeys(new_models[FAMILY]):
        index = np.nonzero((new_models[FAMILY] == family).to_numpy())[0]
        obs = (observed[observed[FAMILY] == family] if observed is not None
               else new_models.iloc[:0])
        conditioned = condition_family(
            posterior, posterior.standardize(obs), posterior.scores_of(obs), family=family,
            seed=int(rng.integers(2**31)))
        records.append(conditioned.diagnostics)
        if conditioned.diagnostics.khat > KHAT_THRESHOLD:
            unreliable.append(family)
            continue
        draws = posterior.resampled(conditioned.draw_index)
        skills = draws.skills(draws.standardize(new_models.iloc[index]),
                              efficiency=conditioned.efficiency)
        mean = draws.mean_scores(skills, conditioned.effects)
        out[:, index, :] = draws.predictive_draws(mean, rng) if kind == "score" else mean
    if unreliable:
        khats = {r.family: round(r.khat, 2) for r in records if r.family in unreliable}
        if on_high_khat == "raise":
            raise ForecastError(
                f"the fit's posterior is not a reliable proposal for families {khats} "
                f"(Pareto k-hat above {KHAT_THRESHOLD}): their observed scores move the "
                "shared parameters too much for importance weights. Fix: forecast them with "
                "method='refit' (or on_high_khat='refit'), which refits with their models")
        seen = new_models[FAMILY].isin(unreliable).to_numpy()
        refit = refit_with(model, observed[observed[FAMILY].isin(unreliable)])
        refitted = refit.posterior_.thinned(max_draws).predict_draws(
            new_models[seen], kind=kind, seed=int(rng.integers(2**31)))
        out[:, seen, :] = spread_draws(refitted, len(out))
        records = [replace(r, method="refit") if r.family in unreliable else r
                   for r in records]
    return out, records, extrapolation


def forecast_draws(
    model: SlothModel,
    new_models: pd.DataFrame,
    observed: pd.DataFrame | None = None,
    *,
    kind: str = "score",
    seed: int = 0,
    on_high_khat: str = "refit",
    max_draws: int | None = MAX_DRAWS,
) -> np.ndarray:
    """Posterior draws of the forecasts of :func:`forecast`, shape (S, n, J) (see
    :func:`forecast_samples`, which also says how each family was conditioned)."""
    return forecast_samples(model, new_models, observed, kind=kind, seed=seed,
                            on_high_khat=on_high_khat, max_draws=max_draws)[0]


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
    on_high_khat: str = "refit",
    max_draws: int | None = MAX_DRAWS,
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
        ``"condition"`` (seconds): the fit's posterior draws are reweighted by each draw's
        likelihood of the observed scores (Pareto-smoothed importance sampling), and the new
        family's efficiency and benchmark effects are drawn from their conditional per draw
        (:mod:`sloth.conditioning`): the posterior predictive of the model with the new
        family added. ``"refit"`` (a full fit): the model is refitted with the observed
        models added (:func:`refit_with`).
    on_high_khat : {"refit", "raise"}
        What ``"condition"`` does for a family whose Pareto k-hat exceeds
        :data:`sloth.conditioning.KHAT_THRESHOLD` (the weights are then unreliable): refit
        with its observed models (the default), or raise :class:`sloth.exceptions.ForecastError`.
    max_draws : int or None, default :data:`MAX_DRAWS`
        Posterior draws used, every k-th of each chain (``None``: all of them).

    Returns
    -------
    DataFrame
        One row per model and benchmark: ``model, family, benchmark, mean, median, q05,
        q95``, and how far the model lies outside the data of the fit that forecast it:
        ``params_ratio, tokens_ratio, compute_ratio, covariate_distance, extrapolating``
        (definitions and threshold: :class:`sloth.model.design.DesignRange`; the observed
        models of a conditioned family are not part of that range, as they inform its
        efficiency only, but they are with ``method="refit"``). ``attrs["conditioning"]``
        holds one record per family: ``method`` (``"population"``, ``"importance"`` or
        ``"refit"``), ``khat``, ``ess``, ``n_draws``; ``attrs["extrapolation_range"]`` the
        fit's ranges (:meth:`sloth.model.design.DesignRange.to_attrs`).

    Warns
    -----
    ExtrapolationWarning
        Some of ``new_models`` lie beyond the fitted data (``extrapolating``).

    See Also
    --------
    forecast_datatree : the same forecasts as a ``predictions`` group of the posterior.
    """
    if method not in ("condition", "refit"):
        raise ValueError(f"method={method!r}: allowed values are 'condition' and 'refit'")
    new_models = new_models.reset_index(drop=True)
    if method == "refit" and observed is not None and len(observed):
        # the inputs are checked against the fit before the refit, not after its minutes
        new_models = model.posterior_.validate_frame(new_models, "new_models").reset_index(
            drop=True)
        observed = model.posterior_.validate_frame(observed, "observed", require_scores=True)
        check_observed_families(observed, new_models)
        refit = refit_with(model, observed)
        seen = new_models[FAMILY].isin(set(observed[FAMILY])).to_numpy()
        posterior = refit.posterior_.thinned(max_draws)
        extrapolation = posterior.extrapolation(new_models)
        draws = np.empty((posterior.n_draws, len(new_models), len(posterior.benchmarks)))
        records = []
        for family in dict.fromkeys(new_models[FAMILY][seen]):
            own = observed[observed[FAMILY] == family]
            records.append(Conditioning(
                str(family), len(own), int(np.isfinite(posterior.scores_of(own)).sum()),
                "refit", float("nan"), float(posterior.n_draws), posterior.n_draws))
        if seen.any():
            draws[:, seen] = posterior.predict_draws(new_models[seen], kind=kind, seed=seed)
        if (~seen).any():
            draws[:, ~seen], more, _ = _forecast_samples(
                refit, new_models[~seen], None, kind=kind, seed=seed,
                on_high_khat=on_high_khat, max_draws=max_draws, warn=False)
            records += more
        out = posterior.tidy(new_models, draws, extrapolation)
    else:
        draws, records, extrapolation = _forecast_samples(
            model, new_models, observed, kind=kind, seed=seed, on_high_khat=on_high_khat,
            max_draws=max_draws, warn=True)
        out = model.posterior_.tidy(new_models, draws, extrapolation)
    out.attrs["conditioning"] = [r.to_dict() for r in records]
    out.attrs["extrapolation_range"] = extrapolation.attrs["range"]
    return out


def forecast_datatree(
    model: SlothModel,
    new_models: pd.DataFrame,
    observed: pd.DataFrame | None = None,
    *,
    kind: str = "score",
    seed: int = 0,
    max_draws: int | None = MAX_DRAWS,
) -> xr.DataTree:
    """The fit's DataTree with the forecasts added as ArviZ ``predictions`` groups.

    Parameters as in :func:`forecast`.

    Returns
    -------
    xarray.DataTree
        A copy of ``model.idata_`` with group ``predictions`` (variable ``scores``, dims
        ``chain, draw, model, benchmark``: the draws the forecast used, see ``max_draws``;
        the posterior predictive with ``kind="score"``, the mean score with
        ``kind="mean"``; ``attrs["conditioning"]`` the JSON records of
        :func:`forecast_samples`) and ``predictions_constant_data`` (family, params and
        tokens of each forecast model, and its extrapolation figures ``params_ratio,
        tokens_ratio, compute_ratio, covariate_distance, extrapolating``, dim ``model``, as
        in :func:`forecast`; ``attrs["extrapolation_range"]`` the fit's ranges as JSON).
        The figures are constants of each forecast model, not draws, so they sit beside its
        params and tokens rather than in ``predictions``, whose variables ArviZ expects to
        have ``chain`` and ``draw`` dims (``arviz.summary`` fails on one without).

    Warns
    -----
    ExtrapolationWarning
        Some of ``new_models`` lie beyond the fitted data.
    """
    draws, records, extrapolation = _forecast_samples(
        model, new_models, observed, kind=kind, seed=seed, on_high_khat="refit",
        max_draws=max_draws, warn=True)
    post = model.posterior_.thinned(max_draws).tree["posterior"]
    chains, per_chain = post.sizes["chain"], post.sizes["draw"]
    frame = new_models.reset_index(drop=True)
    names = frame[MODEL].astype(str).to_numpy()
    coords = {"chain": post["chain"].to_numpy(), "draw": post["draw"].to_numpy(),
              "model": names, "benchmark": list(model.benchmarks_)}
    predictions = xr.Dataset(
        {"scores": (("chain", "draw", "model", "benchmark"),
                    draws.reshape(chains, per_chain, *draws.shape[1:]))},
        coords=coords, attrs={"kind": kind, "seed": seed,
                              "conditioning": json.dumps([r.to_dict() for r in records])},
    )
    figures = {name: ("model", extrapolation[name].to_numpy())
               for name in EXTRAPOLATION_COLUMNS}
    constant = xr.Dataset(
        {"model_family": ("model", frame[FAMILY].astype(str).to_numpy()),
         "params": ("model", frame[PARAMS].to_numpy(dtype=float)),
         "tokens": ("model", frame[TOKENS].to_numpy(dtype=float)), **figures},
        coords={"model": names},
        attrs={"extrapolation_range": json.dumps(extrapolation.attrs["range"])},
    )
    tree = model.idata_.copy()
    tree["predictions"] = xr.DataTree(predictions)
    tree["predictions_constant_data"] = xr.DataTree(constant)
    return tree
