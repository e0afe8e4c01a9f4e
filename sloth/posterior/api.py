"""The public posterior API: what forecasting, evaluation and plots read from a fit.

A :class:`Posterior` wraps a fit's labelled ``xarray.DataTree`` (see
:func:`sloth.posterior.datatree.build_datatree`) and answers in arrays whose leading axis is
the posterior draw ``S`` (chains and draws stacked): draws of parameters, skills of models at
given covariates, their mean scores, score moments, posterior predictive draws, a family's
benchmark effects, and tidy summaries. Every formula comes from :mod:`sloth.model.maths`.
:attr:`sloth.SlothModel.posterior_` gives the posterior of a fitted model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from sloth.data.fixes import Interface
from sloth.data.registry import BenchmarkRegistry
from sloth.data.table import FAMILY, MODEL, PARAMS, TOKENS, ScoreTable
from sloth.data.validation import read_prediction_table
from sloth.exceptions import DataValidationError, ExtrapolationWarning, issue_warning
from sloth.model import maths
from sloth.model.design import CovariateScaler, DesignRange, FitArrays, build_arrays
from sloth.model.family_effects import conditional_effects, estimate_effect_scales
from sloth.model.priors import default_priors
from sloth.model.structure import ModelStructure
from sloth.posterior.datatree import sample_sites, table_from_tree
from sloth.posterior.fileformat import model_config

__all__ = ["QUANTILES", "Posterior", "fit_structure"]

#: Quantiles reported by :meth:`Posterior.tidy` (and :meth:`sloth.SlothModel.predict`).
QUANTILES = {"median": 0.5, "q05": 0.05, "q95": 0.95}


def fit_structure(tree: xr.DataTree) -> ModelStructure:
    """The anchored model structure a posterior tree was sampled with.

    Read from the tree's ``model_config`` (noise, link, priors, parametrization), its
    ``anchors`` and the sizes of its data, as :meth:`sloth.SlothModel.from_datatree` and the
    predictive checks need it.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit's posterior tree in the current file format (older ones are migrated).

    Returns
    -------
    ModelStructure

    Raises
    ------
    DataValidationError
        The tree holds no sloth settings (it was not written by a fit).
    """
    config = model_config(tree)
    table = table_from_tree(tree)
    anchors = json.loads(tree.attrs["anchors"])
    scaler = json.loads(tree.attrs["scaler"])
    return ModelStructure(
        n_families=len(table.families), n_benchmarks=table.n_benchmarks,
        n_covariates=len(scaler["names"]), n_skills=len(anchors),
        anchors=tuple(table.benchmarks.index(a) for a in anchors),
        noise=config["noise"], priors=default_priors(config["priors"]),
        centered=config["family_parametrization"] == "centered", link=config["link"],
    )


class Posterior:
    """A fit's posterior, as arrays over draws.

    Parameters
    ----------
    tree : xarray.DataTree
        The fit's posterior tree (groups ``posterior``, ``observed_data``, ``constant_data``;
        the root attribute ``scaler``).
    family_benchmark_scale : ndarray, shape (J,), optional
        Scales ``tau_j`` of the family-by-benchmark effects (see
        :mod:`sloth.model.family_effects`); ``None``: the fit has no such effects.

    Attributes
    ----------
    tree : xarray.DataTree
    scaler : CovariateScaler
        Standardization of the covariates.
    benchmarks : list of str, length J
    families : list of str, length F
        Fitted families, in the order of the posterior's ``family`` axis.
    models : list of str, length n_fit
        Fitted models, in the order of the posterior's ``model`` axis.
    floors, inv_items : ndarray, shape (J,)
        Guessing floor and ``1 / n_items`` (0 when unknown) of each benchmark.
    family_benchmark_scale : ndarray, shape (J,), or None
    """

    def __init__(
        self, tree: xr.DataTree, *, family_benchmark_scale: np.ndarray | None = None
    ) -> None:
        post = tree["posterior"]
        const = tree["constant_data"]
        self.tree = tree
        self.scaler = CovariateScaler.from_attrs(json.loads(tree.attrs["scaler"]))
        self.benchmarks = [str(b) for b in post["benchmark"].to_numpy()]
        self.families = [str(f) for f in post["family"].to_numpy()]
        self.models = [str(m) for m in post["model"].to_numpy()]
        self.floors = const["floors"].to_numpy()
        self.inv_items = const["inv_items"].to_numpy()
        self.family_benchmark_scale = (
            None if family_benchmark_scale is None
            else np.asarray(family_benchmark_scale, dtype=float)
        )

    # ------------------------------------------------------------------ draws
    @property
    def n_draws(self) -> int:
        """Number of posterior draws ``S`` (chains x draws)."""
        post = self.tree["posterior"]
        return int(post.sizes["chain"] * post.sizes["draw"])

    @property
    def n_skills(self) -> int:
        """Number of skills ``d``."""
        return int(self.tree["posterior"].sizes["skill"])

    def draws(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Posterior draws with chains and draws stacked.

        Parameters
        ----------
        names : sequence of str
            Posterior variables; those the posterior lacks (e.g. ``noise_df`` of a normal
            noise model, ``link_shape`` of the logistic link) are left out.

        Returns
        -------
        dict of str to ndarray
            Each shaped (S, ...), the variable's own dims after ``chain, draw``.
        """
        post = self.tree["posterior"]
        return {k: post[k].to_numpy().reshape(-1, *post[k].shape[2:])
                for k in names if k in post}

    def link_parameters(self, *, new_axis: int | None = None) -> dict[str, np.ndarray]:
        """Draws (S, J) of the link's parameters as keywords of
        :func:`sloth.model.maths.link_mean` (see :func:`sloth.model.maths.link_parameters`;
        empty for the logistic link)."""
        return maths.link_parameters(self.draws(maths.LINK_VARIABLES), new_axis=new_axis)

    def thinned(self, max_draws: int | None) -> Posterior:
        """The posterior with at most ``max_draws`` draws, every k-th draw of each chain
        (itself when it has no more). Forecasts use it: their Monte Carlo error with a
        couple of thousand draws is far below the posterior's own spread."""
        post = self.tree["posterior"]
        if max_draws is None or self.n_draws <= max_draws:
            return self
        step = -(-self.n_draws // int(max_draws))
        tree = self.tree.copy()
        tree["posterior"] = xr.DataTree(post.to_dataset().isel(draw=slice(None, None, step)))
        return Posterior(tree, family_benchmark_scale=self.family_benchmark_scale)

    def resampled(self, index: np.ndarray) -> Posterior:
        """The posterior with its draws replaced by ``index`` (S,), e.g. a resample by
        importance weights; the ``(chain, draw)`` shape is kept.

        Parameters
        ----------
        index : int ndarray, shape (S,)
            Indices into the stacked draws (chains x draws).
        """
        post = self.tree["posterior"].to_dataset()
        chains, per_chain = post.sizes["chain"], post.sizes["draw"]
        index = np.asarray(index)
        if index.shape != (chains * per_chain,):
            raise ValueError(f"index must have shape ({chains * per_chain},), got "
                             f"{index.shape}")
        data = {}
        for name, var in post.data_vars.items():
            values = var.to_numpy()
            flat = values.reshape(chains * per_chain, *values.shape[2:])[index]
            data[name] = (var.dims, flat.reshape(values.shape))
        tree = self.tree.copy()
        tree["posterior"] = xr.DataTree(xr.Dataset(data, coords=post.coords, attrs=post.attrs))
        return Posterior(tree, family_benchmark_scale=self.family_benchmark_scale)

    # ------------------------------------------------------------------ covariates
    def validate_frame(
        self, frame: pd.DataFrame | str | os.PathLike, name: str, *,
        require_scores: bool = False, params_unit: float = 1.0, tokens_unit: float = 1.0,
        interface: Interface = "python", models_only: bool = False,
        registry: BenchmarkRegistry | None = None,
    ) -> pd.DataFrame:
        """A table of models to predict or forecast, validated like a fit's table.

        The checks of :func:`sloth.data.validation.read_prediction_table` against this fit:
        required columns (``model, family, params, tokens`` and the fit's extra covariates),
        counts plausible against the fit's models (unit slips named), duplicate names,
        score columns only for the fit's benchmarks and as fractions.

        Parameters
        ----------
        frame : DataFrame or path-like
        name : str
            How the error messages call ``frame`` (e.g. ``"new_models"``, ``"--observed"``).
        require_scores : bool
            Refuse a model without any score (a table of observed models).
        params_unit, tokens_unit : float
            What one unit of the params and tokens columns counts (e.g. ``1e9``).
        interface : {"python", "cli"}
            How the messages spell their fix.
        models_only : bool
            Validate the model columns only and ignore the others (e.g. the scores of a
            benchmark left out of the fit, in downstream prediction).
        registry : BenchmarkRegistry, optional
            Lets a message say that an unknown column is a benchmark the fit left out.

        Returns
        -------
        DataFrame
            The validated table in canonical columns (see ``read_prediction_table``).

        Raises
        ------
        DataValidationError
        """
        if models_only and isinstance(frame, pd.DataFrame):
            frame = frame[[c for c in frame.columns if c in self.required_columns]]
        return read_prediction_table(
            frame, covariates=self.scaler.names[3:], benchmarks=self.benchmarks,
            reference=self.fitted_table(), require_scores=require_scores,
            params_unit=params_unit, tokens_unit=tokens_unit, interface=interface, name=name,
            registry=registry,
        )

    def fit_arrays(self) -> FitArrays:
        """The fit's data as the model's arrays: its observed cells, standardized
        covariates, floors and item counts (:func:`sloth.model.design.build_arrays`)."""
        return build_arrays(self.fitted_table(), self.scaler, self.inv_items)

    def sample_sites(self, structure: ModelStructure) -> dict[str, np.ndarray]:
        """The model's sample sites per draw, shaped (chain, draw, ...)
        (:func:`sloth.posterior.datatree.sample_sites`)."""
        return sample_sites(self.tree["posterior"].to_dataset(), structure)

    @property
    def required_columns(self) -> list[str]:
        """Columns every table of models to predict needs: ``model, family, params,
        tokens`` and the fit's extra covariates."""
        return [MODEL, FAMILY, PARAMS, TOKENS, *self.scaler.names[3:]]

    def fitted_table(self) -> ScoreTable:
        """The data of the fit (rebuilt from the tree's ``observed_data`` and
        ``constant_data``)."""
        return table_from_tree(self.tree)

    def standardize(self, frame: pd.DataFrame) -> np.ndarray:
        """Standardized covariates of the models in ``frame`` (columns as in
        :meth:`validate_frame`), shape (n, P)."""
        if not len(frame):
            return np.zeros((0, len(self.scaler.names)))
        extra = {k: frame[k].to_numpy(dtype=float) for k in self.scaler.names[3:]}
        return self.scaler.transform(
            frame[PARAMS].to_numpy(dtype=float), frame[TOKENS].to_numpy(dtype=float), extra
        )

    def design_range(self) -> DesignRange:
        """The range of the fitted models' parameters, tokens, compute and scaling
        covariates, against which :meth:`extrapolation` places new models."""
        const = self.tree["constant_data"]
        return DesignRange.fit(const["params"].to_numpy(), const["tokens"].to_numpy())

    def extrapolation(self, frame: pd.DataFrame, *, warn: bool = True) -> pd.DataFrame:
        """How far each model of ``frame`` lies outside the fitted data.

        Parameters
        ----------
        frame : DataFrame
            ``n`` models with columns ``model, params, tokens`` (absolute counts, as
            :meth:`validate_frame` returns them).
        warn : bool, default True
            Issue one :class:`sloth.exceptions.ExtrapolationWarning` naming the models beyond
            the fitted data, if any.

        Returns
        -------
        DataFrame
            ``n`` rows in the order of ``frame``: ``model`` and the
            :data:`sloth.model.design.EXTRAPOLATION_COLUMNS` (``params_ratio, tokens_ratio,
            compute_ratio, covariate_distance, extrapolating``; definitions and threshold in
            :class:`sloth.model.design.DesignRange`). ``attrs["range"]`` holds the fit's
            ranges (:meth:`sloth.model.design.DesignRange.to_attrs`).
        """
        design = self.design_range()
        names = frame[MODEL].astype(str).to_numpy()
        figures = design.figures(frame[PARAMS].to_numpy(dtype=float),
                                 frame[TOKENS].to_numpy(dtype=float))
        out = pd.DataFrame({MODEL: names, **figures})
        out.attrs["range"] = design.to_attrs()
        message = design.describe(list(names), figures)
        if warn and message is not None:
            issue_warning(message, ExtrapolationWarning)
        return out

    def scores_of(self, frame: pd.DataFrame) -> np.ndarray:
        """Scores of the models in ``frame`` on the fit's benchmarks, shape (n, J): its
        columns named after the benchmarks, ``nan`` where missing or absent."""
        if not len(frame):
            return np.zeros((0, len(self.benchmarks)))
        return np.column_stack(
            [pd.to_numeric(frame[b], errors="coerce").to_numpy(dtype=float)
             if b in frame.columns else np.full(len(frame), np.nan) for b in self.benchmarks]
        )

    def family_index(self, frame: pd.DataFrame) -> np.ndarray:
        """Index (n,) of each model's family among :attr:`families`.

        Raises
        ------
        DataValidationError
            A family was not in the fit.
        """
        unknown = sorted(set(frame[FAMILY]) - set(self.families))
        if unknown:
            raise DataValidationError(
                f"families {unknown} were not in the fit; predict covers fitted families "
                "only (forecast new families with the forecasting API)"
            )
        return np.array([self.families.index(f) for f in frame[FAMILY]], dtype=int)

    # ------------------------------------------------------------------ skills and scores
    def skills(
        self,
        covariates: np.ndarray,
        family_index: np.ndarray | None = None,
        *,
        efficiency: np.ndarray | None = None,
        draws: np.ndarray | None = None,
    ) -> np.ndarray:
        """Skill draws ``theta = alpha_f + x B`` of models.

        Parameters
        ----------
        covariates : ndarray, shape (n, P)
            Standardized covariates (:meth:`standardize`).
        family_index : int ndarray, shape (n,), optional
            Family of each model: among :attr:`families`, or among the families of
            ``efficiency``. May be left out when ``efficiency`` is one family's.
        efficiency : ndarray, shape (S, d) or (S, F', d), optional
            Family efficiencies per draw (one family's, e.g. a new family drawn by
            :func:`sloth.conditioning.condition_family`); default: the fitted families'.
        draws : int ndarray, shape (S',), optional
            Indices of the posterior draws to use (default: all); a given ``efficiency``
            then holds those ``S'`` draws.

        Returns
        -------
        ndarray, shape (S, n, d) (``S'`` with ``draws``)
        """
        keep = slice(None) if draws is None else np.asarray(draws)
        slope = self.draws(("skill_slope",))["skill_slope"][keep]
        if efficiency is None:
            efficiency = self.draws(("family_efficiency",))["family_efficiency"][keep]
        elif efficiency.ndim == 2:
            efficiency = efficiency[:, None, :]
        if family_index is None:
            if efficiency.shape[1] != 1:
                raise ValueError("family_index is needed with several families' efficiencies")
            family_index = np.zeros(len(covariates), dtype=int)
        return maths.compute_skills(efficiency, slope, covariates, family_index)

    def fitted_skills(self) -> np.ndarray:
        """Skill draws of the fitted models, shape (S, n_fit, d)."""
        stored = self.draws(("skills",))
        if "skills" in stored:
            return stored["skills"]
        return self.skills(self.tree["constant_data"]["covariates"].to_numpy(),
                           self.fitted_family_index())

    def fitted_family_index(self) -> np.ndarray:
        """Family (index among :attr:`families`) of each fitted model, shape (n_fit,)."""
        families = self.tree["constant_data"]["model_family"].to_numpy()
        return np.array([self.families.index(str(f)) for f in families], dtype=int)

    def observed_scores(self) -> np.ndarray:
        """Scores of the fitted models, shape (n_fit, J), ``nan`` where unobserved."""
        return self.tree["observed_data"]["scores"].to_numpy()

    def linear_predictor(self, skills: np.ndarray, offset: np.ndarray | None = None
                         ) -> np.ndarray:
        """Linear predictors ``eta = theta Lambda^T + b (+ offset)`` per draw.

        Parameters
        ----------
        skills : ndarray, shape (S, n, d)
        offset : ndarray, shape (S, J) or (S, n, J), optional
            A family's benchmark effects (:meth:`family_effects`).

        Returns
        -------
        ndarray, shape (S, n, J)
        """
        p = self.draws(("loading", "intercept"))
        return maths.linear_predictor(skills, p["loading"], p["intercept"], offset)

    def mean_scores(self, skills: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
        """Mean scores per draw with the fit's link.

        Parameters
        ----------
        skills : ndarray, shape (S, n, d)
        offset : ndarray, shape (S, J) or (S, n, J), optional
            Added to the linear predictor (a family's benchmark effects).

        Returns
        -------
        ndarray, shape (S, n, J)
        """
        p = self.draws(("loading", "intercept", *maths.LINK_VARIABLES))
        return maths.compute_mean_score(
            skills, p["loading"], p["intercept"], self.floors, p.get("link_shape"),
            p.get("link_ceiling"), offset=offset,
        )

    def cell_moments(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean score, score variance and link slope per draw at linear predictors.

        Parameters
        ----------
        eta : ndarray, shape (S, n, J)

        Returns
        -------
        mean, variance, slope : ndarray, each shaped (S, n, J)
            ``link_mean(eta)``, ``observation_scale(mean)^2`` and ``link_slope(eta)``.
        """
        link = self.link_parameters(new_axis=-2)
        mean = maths.link_mean(eta, self.floors, **link)
        noise_scale = self.draws(("noise_scale",))["noise_scale"]
        scale = maths.observation_scale(mean, noise_scale[:, None, :], self.inv_items)
        return mean, scale**2, maths.link_slope(eta, self.floors, **link)

    def noise_df(self) -> np.ndarray | None:
        """Draws (S,) of the noise site ``nu - 1`` of :func:`sloth.model.maths.score_distribution`
        (the posterior stores the degrees of freedom ``nu``); ``None`` for normal noise."""
        stored = self.draws(("noise_df",))
        return stored["noise_df"] - 1.0 if "noise_df" in stored else None

    def predictive_draws(self, mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Posterior predictive scores: each draw's misfit and item noise added to its mean
        scores (:func:`sloth.model.maths.predictive_scores`), clipped to [0, 1].

        Parameters
        ----------
        mean : ndarray, shape (S, n, J)
            Mean-score draws (:meth:`mean_scores`).
        rng : numpy Generator

        Returns
        -------
        ndarray, shape (S, n, J)
        """
        noise_scale = self.draws(("noise_scale",))["noise_scale"]
        scale = maths.observation_scale(mean, noise_scale[:, None, :], self.inv_items)
        noise_df = self.noise_df()
        return maths.predictive_scores(
            mean, scale, None if noise_df is None else noise_df[:, None, None], rng)

    # ------------------------------------------------------------------ family effects
    def family_effects(
        self, skills: np.ndarray, scores: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray | None:
        """Draws of one family's benchmark effects given its observed models.

        Parameters
        ----------
        skills : ndarray, shape (S, k, d)
            Skill draws of the family's ``k`` observed models (``k`` may be 0: the
            population).
        scores : ndarray, shape (k, J)
            Their scores, ``nan`` where missing.
        rng : numpy Generator

        Returns
        -------
        ndarray, shape (S, J), or None
            Effects on the linear predictor (see
            :func:`sloth.model.family_effects.conditional_effects`); ``None`` for a fit
            without family-by-benchmark effects.
        """
        if self.family_benchmark_scale is None:
            return None
        mean, var, slope = self.cell_moments(self.linear_predictor(skills))
        resid = np.asarray(scores, dtype=float)[None] - mean
        noise_df = self.draws(("noise_df",)).get("noise_df")
        return conditional_effects(resid, var, slope, self.family_benchmark_scale, noise_df,
                                   rng)

    def estimate_family_benchmark_scale(self, arrays: FitArrays, *, prior_scale: float
                                        ) -> np.ndarray:
        """Empirical-Bayes ``tau_j`` from the fit's residuals at posterior means.

        Parameters
        ----------
        arrays : FitArrays
            The fit's observed cells.
        prior_scale : float
            Scale of the ``HalfNormal`` prior on ``tau_j``.

        Returns
        -------
        ndarray, shape (J,)
        """
        eta = self.linear_predictor(self.fitted_skills())
        mean, var, slope = (m.mean(axis=0) for m in self.cell_moments(eta))
        rows, cols = arrays.obs_model, arrays.obs_benchmark
        resid = np.asarray(arrays.scores, dtype=float) - mean[rows, cols]
        return estimate_effect_scales(
            resid, var[rows, cols], slope[rows, cols], arrays.family_index[rows], cols,
            len(self.families), len(self.benchmarks), prior_scale=prior_scale,
        )

    # ------------------------------------------------------------------ predictions
    def predict_draws(self, frame: pd.DataFrame, *, kind: str = "score", seed: int = 0
                      ) -> np.ndarray:
        """Posterior draws of the scores of models of fitted families.

        Each family's benchmark effects (when the fit has them) are drawn given its models
        in the fit.

        Parameters
        ----------
        frame : DataFrame
            Models (columns as in :meth:`validate_frame`) of families in :attr:`families`.
        kind : {"score", "mean"}
            Posterior predictive of an observed score, or posterior of the mean score.
        seed : int
            Seed of the effects and the predictive noise.

        Returns
        -------
        ndarray, shape (S, n, J)
        """
        if kind not in ("score", "mean"):
            raise ValueError(f"kind={kind!r}: allowed values are 'score' and 'mean'")
        frame = self.validate_frame(frame, "the models to predict")
        fam_index = self.family_index(frame)
        skills = self.skills(self.standardize(frame), fam_index)
        rng = np.random.default_rng(seed)
        if self.family_benchmark_scale is not None:
            # each family's benchmark effects, conditioned on its models in the fit
            fitted = self.fitted_skills()
            fitted_family = self.fitted_family_index()
            observed = self.observed_scores()
            mean = np.empty((skills.shape[0], len(frame), len(self.benchmarks)))
            for f in np.unique(fam_index):
                rows = fam_index == f
                own = fitted_family == f
                effects = self.family_effects(fitted[:, own], observed[own], rng)
                mean[:, rows] = self.mean_scores(skills[:, rows], effects)
        else:
            mean = self.mean_scores(skills)
        if kind == "mean":
            return mean
        return self.predictive_draws(mean, rng)

    def tidy(self, frame: pd.DataFrame, draws: np.ndarray,
             extrapolation: pd.DataFrame | None = None) -> pd.DataFrame:
        """Summaries of draws of models' scores, one row per model and benchmark.

        Parameters
        ----------
        frame : DataFrame
            The ``n`` models (columns ``model``, ``family``), in the order of ``draws``.
        draws : ndarray, shape (S, n, J)
        extrapolation : DataFrame, optional
            The ``n`` models' extrapolation figures (:meth:`extrapolation`), in the same
            order: their columns are repeated on each model's rows.

        Returns
        -------
        DataFrame
            ``model, family, benchmark, mean`` and the :data:`QUANTILES` (``median, q05,
            q95``), then the extrapolation columns when given, in model-major order.
        """
        n, J = draws.shape[1:]
        out = pd.DataFrame(
            {
                MODEL: np.repeat(frame[MODEL].to_numpy(), J),
                FAMILY: np.repeat(frame[FAMILY].to_numpy(), J),
                "benchmark": np.tile(self.benchmarks, n),
                "mean": draws.mean(axis=0).reshape(-1),
            }
        )
        for name, q in QUANTILES.items():
            out[name] = np.quantile(draws, q, axis=0).reshape(-1)
        if extrapolation is not None:
            for name in extrapolation.columns.drop(MODEL, errors="ignore"):
                out[name] = np.repeat(extrapolation[name].to_numpy(), J)
        return out
