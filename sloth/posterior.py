"""Assemble a fit's results into a labelled ArviZ ``xarray.DataTree``."""

from __future__ import annotations

import numpy as np
import xarray as xr

from sloth.data.table import ScoreTable
from sloth.design import FitArrays
from sloth.model import link_mean

#: Posterior variables of the flexible links (per benchmark), present when the link has them.
LINK_VARIABLES = ("link_shape", "link_ceiling")


def skill_labels(n_skills: int) -> list[str]:
    """Coordinate labels of the skills: ``skill_1 .. skill_d``."""
    return [f"skill_{k + 1}" for k in range(n_skills)]


def compute_skills(
    efficiency: np.ndarray, slope: np.ndarray, covariates: np.ndarray, family_index: np.ndarray
) -> np.ndarray:
    """Skills ``theta = alpha_f + x B`` per draw.

    Parameters
    ----------
    efficiency : ndarray, shape (..., F, d)
    slope : ndarray, shape (..., P, d)
    covariates : ndarray, shape (n, P)
    family_index : int ndarray, shape (n,)

    Returns
    -------
    ndarray, shape (..., n, d)
    """
    return efficiency[..., family_index, :] + np.einsum("np,...pd->...nd", covariates, slope)


def compute_mean_score(
    skills: np.ndarray, loading: np.ndarray, intercept: np.ndarray, floors: np.ndarray,
    shape: np.ndarray | None = None, ceiling: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> np.ndarray:
    """Mean scores ``link(theta Lambda^T + b)`` per draw (see :func:`sloth.model.link_mean`).

    Parameters
    ----------
    skills : ndarray, shape (..., n, d)
    loading : ndarray, shape (..., J, d)
    intercept : ndarray, shape (..., J)
    floors : ndarray, shape (J,)
    shape, ceiling : ndarray, shape (..., J), optional
        The link's asymmetry exponent and ceiling (absent for the logistic link).
    offset : ndarray, shape (..., J), optional
        Added to the linear predictor of every model (a family's benchmark effects).

    Returns
    -------
    ndarray, shape (..., n, J)
    """
    eta = np.einsum("...nd,...jd->...nj", skills, loading) + intercept[..., None, :]
    if offset is not None:
        eta = eta + np.asarray(offset)[..., None, :]
    return np.asarray(link_mean(
        eta, floors,
        None if shape is None else np.asarray(shape)[..., None, :],
        None if ceiling is None else np.asarray(ceiling)[..., None, :],
    ))


def build_datatree(
    samples: dict[str, np.ndarray],
    sample_stats: dict[str, np.ndarray],
    log_likelihood: np.ndarray,
    table: ScoreTable,
    arrays: FitArrays,
    covariate_names: tuple[str, ...],
    attrs: dict[str, str],
) -> xr.DataTree:
    """Labelled posterior of a fit.

    Groups: ``posterior`` (parameters, ``skills`` and the fitted means ``mean_score``),
    ``log_likelihood`` (per observed score, dim ``observation``), ``sample_stats``,
    ``observed_data`` (scores, ``nan`` where unobserved), ``constant_data`` (covariates, sizes,
    tokens, families, floors).

    Parameters
    ----------
    samples : dict of ndarray, each shaped (chain, draw, ...)
        Constrained sites and deterministics of the anchored model.
    sample_stats : dict of ndarray (chain, draw)
    log_likelihood : ndarray, shape (chain, draw, m)
    table : ScoreTable
    arrays : FitArrays
    covariate_names : tuple of str, length P
    attrs : dict of str
        Root attributes (configuration, scaler, anchors... as JSON strings).
    """
    d = samples["skill_slope"].shape[-1]
    skills = compute_skills(
        samples["family_efficiency"], samples["skill_slope"], arrays.covariates,
        arrays.family_index,
    )
    mean = compute_mean_score(
        skills, samples["loading"], samples["intercept"], arrays.floors,
        samples.get("link_shape"), samples.get("link_ceiling"),
    )
    corr_chol = samples.get("family_corr_chol")
    if corr_chol is None:
        corr = np.ones((*samples["skill_slope"].shape[:2], 1, 1))
    else:
        corr = np.einsum("...ik,...jk->...ij", corr_chol, corr_chol)
    cd = ("chain", "draw")
    posterior = xr.Dataset(
        {
            "skill_slope": ((*cd, "covariate", "skill"), samples["skill_slope"]),
            "family_efficiency": ((*cd, "family", "skill"), samples["family_efficiency"]),
            "family_scale": ((*cd, "skill"), samples["family_scale"]),
            "family_corr": ((*cd, "skill", "skill_other"), corr),
            "loading": ((*cd, "benchmark", "skill"), samples["loading"]),
            "intercept": ((*cd, "benchmark"), samples["intercept"]),
            "noise_scale": ((*cd, "benchmark"), samples["noise_scale"]),
            "skills": ((*cd, "model", "skill"), skills),
            "mean_score": ((*cd, "model", "benchmark"), mean),
        }
    )
    if "noise_df" in samples:
        posterior["noise_df"] = (cd, samples["noise_df"] + 1.0)
    for name in LINK_VARIABLES:
        if name in samples:
            posterior[name] = ((*cd, "benchmark"), samples[name])
    labels = skill_labels(d)
    coords = {
        "chain": np.arange(samples["skill_slope"].shape[0]),
        "draw": np.arange(samples["skill_slope"].shape[1]),
        "covariate": list(covariate_names),
        "skill": labels,
        "skill_other": labels,
        "family": list(table.families),
        "benchmark": list(table.benchmarks),
        "model": list(table.models),
    }
    posterior = posterior.assign_coords({k: v for k, v in coords.items()})
    obs = xr.Dataset(
        {"scores": (("model", "benchmark"), table.scores)},
        coords={"model": coords["model"], "benchmark": coords["benchmark"]},
    )
    observation = np.arange(arrays.scores.shape[0])
    obs_coords = {
        "observation": observation,
        "observation_model": ("observation", np.asarray(table.models)[arrays.obs_model]),
        "observation_benchmark": (
            "observation", np.asarray(table.benchmarks)[arrays.obs_benchmark]
        ),
    }
    loglik = xr.Dataset(
        {"scores": ((*cd, "observation"), log_likelihood)},
        coords={"chain": coords["chain"], "draw": coords["draw"], **obs_coords},
    )
    stats = xr.Dataset(
        {k: (cd, v) for k, v in sample_stats.items()},
        coords={"chain": coords["chain"], "draw": coords["draw"]},
    )
    constant = xr.Dataset(
        {
            "covariates": (("model", "covariate"), arrays.covariates),
            "params": (("model",), np.asarray(table.params, dtype=float)),
            "tokens": (("model",), np.asarray(table.tokens, dtype=float)),
            "model_family": (("model",), np.asarray(table.family, dtype=str)),
            "floors": (("benchmark",), arrays.floors),
            "inv_items": (("benchmark",), arrays.inv_items),
            **{
                f"extra_{k}": (("model",), np.asarray(v, dtype=float))
                for k, v in table.extra_covariates.items()
            },
        },
        coords={
            "model": coords["model"], "benchmark": coords["benchmark"],
            "covariate": coords["covariate"],
        },
    )
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "log_likelihood": loglik,
            "sample_stats": stats,
            "observed_data": obs,
            "constant_data": constant,
        }
    )
    tree.attrs.update(attrs)
    return tree
