"""Assemble a fit's results into a labelled ArviZ ``xarray.DataTree``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from sloth.data.table import ScoreTable
from sloth.model.design import FitArrays
from sloth.model.maths import LINK_VARIABLES, compute_mean_score, compute_skills
from sloth.model.structure import ModelStructure

#: Posterior variables computed from the others (left out of files, recomputed on reading).
DERIVED_VARIABLES = ("skills", "mean_score")


def skill_labels(n_skills: int) -> list[str]:
    """Coordinate labels of the skills: ``skill_1 .. skill_d``."""
    return [f"skill_{k + 1}" for k in range(n_skills)]


def build_datatree(
    samples: dict[str, np.ndarray],
    sample_stats: dict[str, np.ndarray],
    log_likelihood: np.ndarray,
    table: ScoreTable,
    arrays: FitArrays,
    covariate_names: tuple[str, ...],
    attrs: Mapping[str, str | int],
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
    attrs : mapping
        Root attributes (see :func:`sloth.posterior.fileformat.posterior_attrs`).
    """
    d = samples["skill_slope"].shape[-1]
    skills, mean = _derived(samples, arrays.covariates, arrays.family_index, arrays.floors)
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


def _derived(
    draws: Mapping[str, np.ndarray], covariates: np.ndarray, family_index: np.ndarray,
    floors: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The derived variables ``skills`` (chain, draw, model, skill) and ``mean_score``
    (chain, draw, model, benchmark) from the parameter draws."""
    skills = compute_skills(draws["family_efficiency"], draws["skill_slope"], covariates,
                            family_index)
    mean = compute_mean_score(
        skills, draws["loading"], draws["intercept"], floors, draws.get("link_shape"),
        draws.get("link_ceiling"),
    )
    return skills, mean


def sample_sites(posterior: xr.Dataset, structure: ModelStructure) -> dict[str, np.ndarray]:
    """The sample sites of :func:`sloth.model.skill_model` from a posterior group: the
    inverse of the relabelling :func:`build_datatree` does.

    The posterior keeps the full ``loading`` (anchor rows included), the correlation
    ``family_corr`` and the degrees of freedom ``noise_df`` (the site plus 1); the model
    samples the free rows ``loading_free``, the Cholesky factor ``family_corr_chol`` and the
    site itself, and, non-centred, the standard-normal ``family_offset`` behind the
    efficiencies. With every site given, NumPyro's ``Predictive`` and ``log_likelihood``
    reproduce the fit (the stored ``log_likelihood`` group exactly).

    Parameters
    ----------
    posterior : xarray.Dataset
        A fit's ``posterior`` group (dims ``chain, draw`` first).
    structure : ModelStructure
        The anchored structure that was sampled
        (:func:`sloth.posterior.api.fit_structure`).

    Returns
    -------
    dict of str to ndarray
        Site name -> values shaped (chain, draw, ...): ``skill_slope`` (P, d),
        ``family_scale`` (d,), ``family_corr_chol`` (d, d; d > 1), ``family_efficiency``
        (centred) or ``family_offset`` (non-centred) (F, d), ``loading_free`` (J - d, d),
        ``intercept`` and ``noise_scale`` (J,), and where the fit has them ``link_shape``,
        ``link_ceiling`` (J,) and ``noise_df`` ().
    """
    def values(name: str) -> np.ndarray:
        return posterior[name].transpose("chain", "draw", ...).to_numpy()

    sites = {name: values(name) for name in ("skill_slope", "family_scale", "intercept",
                                              "noise_scale", *LINK_VARIABLES)
             if name in posterior}
    sites["loading_free"] = values("loading")[:, :, structure.free_rows, :]
    chol = np.linalg.cholesky(values("family_corr"))
    if structure.n_skills > 1:
        sites["family_corr_chol"] = chol
    efficiency = values("family_efficiency")
    if structure.centered:
        sites["family_efficiency"] = efficiency
    else:  # family_efficiency = family_offset @ (diag(tau) L)^T
        scale_tril = sites["family_scale"][..., :, None] * chol
        sites["family_offset"] = np.swapaxes(
            np.linalg.solve(scale_tril, np.swapaxes(efficiency, -1, -2)), -1, -2)
    if "noise_df" in posterior:
        sites["noise_df"] = values("noise_df") - 1.0
    return sites


def without_derived(tree: xr.DataTree) -> xr.DataTree:
    """A shallow copy of a posterior tree without :data:`DERIVED_VARIABLES`."""
    out = tree.copy(deep=False)
    post = out["posterior"].to_dataset()
    out["posterior"] = xr.DataTree(post.drop_vars(
        [k for k in DERIVED_VARIABLES if k in post]))
    return out


def with_derived(tree: xr.DataTree) -> xr.DataTree:
    """A shallow copy of a posterior tree with :data:`DERIVED_VARIABLES` (re)computed from the
    parameter draws and the ``constant_data`` group, exactly as :func:`build_datatree` does."""
    out = tree.copy(deep=False)
    post = out["posterior"].to_dataset()
    const = out["constant_data"]
    family_index = table_from_tree(out).family_index
    draws = {k: post[k].to_numpy() for k in post.data_vars if k not in DERIVED_VARIABLES}
    skills, mean = _derived(draws, const["covariates"].to_numpy(), family_index,
                            const["floors"].to_numpy())
    post["skills"] = (("chain", "draw", "model", "skill"), skills)
    post["mean_score"] = (("chain", "draw", "model", "benchmark"), mean)
    out["posterior"] = xr.DataTree(post)
    return out


def table_from_tree(tree: xr.DataTree) -> ScoreTable:
    """The data a posterior was fitted to, rebuilt from its ``observed_data`` and
    ``constant_data`` groups."""
    const = tree["constant_data"]
    scores = tree["observed_data"]["scores"]
    extra = {
        name[len("extra_"):]: const[name].to_numpy()
        for name in const.data_vars if name.startswith("extra_")
    }
    benchmarks = tuple(str(b) for b in scores["benchmark"].to_numpy())
    return ScoreTable(
        models=tuple(str(m) for m in scores["model"].to_numpy()),
        family=tuple(str(f) for f in const["model_family"].to_numpy()),
        params=const["params"].to_numpy(),
        tokens=const["tokens"].to_numpy(),
        benchmarks=benchmarks,
        floors=const["floors"].to_numpy(),
        scores=scores.to_numpy(),
        extra_covariates=extra,
    )
