"""The estimator users fit, inspect, save and load: :class:`SlothModel`."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal, Self

import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr
from numpyro.infer import log_likelihood as numpyro_log_likelihood

from sloth import __version__
from sloth.checks.diagnostics import sampler_summary
from sloth.checks.structure import check_structure
from sloth.data.registry import BenchmarkRegistry, default_registry
from sloth.data.table import FAMILY, MODEL, PARAMS, TOKENS, ScoreTable
from sloth.exceptions import DataValidationError, IdentifiabilityError, NotFittedError
from sloth.inference.pipeline import SamplerSettings, fit_posterior
from sloth.inference.programs import ProgramCache, model_kwargs
from sloth.model import (
    LINKS,
    NOISE_MODELS,
    ModelStructure,
    default_priors,
    link_mean,
    link_slope,
    observation_scale,
    skill_model,
)
from sloth.model.design import CovariateScaler, FitArrays, build_arrays
from sloth.model.family_effects import conditional_effects, estimate_effect_scales
from sloth.model.maths import compute_mean_score, compute_skills
from sloth.posterior.datatree import LINK_VARIABLES, build_datatree, table_from_tree
from sloth.posterior.fileformat import read_posterior, write_posterior

#: Posterior variables computed from the others, left out of saved files.
DERIVED_VARIABLES = ("skills", "mean_score")

#: Quantiles reported by :meth:`SlothModel.predict`.
QUANTILES = {"median": 0.5, "q05": 0.05, "q95": 0.95}


class SlothModel:
    """Hierarchical latent-skill model of benchmark scores, fitted with NUTS.

    Parameters
    ----------
    n_skills : int, default 3
        Number of latent skills d (1 to 4).
    benchmarks : sequence of str, optional
        Benchmarks to use (default: every benchmark of the table passed to :meth:`fit`).
    extra_covariates : sequence of str, default ()
        Extra covariates of the skills besides size and tokens (columns of the table's
        ``extra_covariates``, e.g. ``"instruct"``).
    link : {"logistic", "richards", "ceiling", "flexible"}, default "logistic"
        Link from the linear predictor to the mean score, ``c + (1 - c) h sigmoid(eta)^k``
        (see :func:`sloth.model.link_mean`): ``"logistic"`` has ``h = k = 1``; ``"richards"``
        learns an asymmetry exponent ``k_j`` per benchmark, ``"ceiling"`` a ceiling ``h_j``
        per benchmark, ``"flexible"`` both.
    family_benchmark_effects : bool, default True
        Give each family its own deviation on each benchmark, ``v_fj ~ Normal(0, tau_j^2)``
        on the linear-predictor scale (see :mod:`sloth.model.family_effects`): ``tau_j`` is
        estimated from the fit's residuals after sampling, and predictions and forecasts
        draw each family's ``v`` given its models' scores, so a new family's deviations on
        its first models carry over to its larger ones (and a family with no observed model
        gets the extra spread ``tau_j``).
    noise : {"student_t", "normal"}, default "student_t"
        Misfit distribution of a score around its mean (binomial item noise is always added
        in quadrature where the benchmark's item count is known).
    family_parametrization : {"centered", "non_centered"}, default "centered"
        How family efficiencies are sampled: directly from ``MultivariateNormal(0, Sigma)``
        (centred) or as ``diag(tau) L z`` with standard-normal ``z`` (non-centred). Most
        families are measured on many benchmarks, so the centred form has the better geometry
        here (on the leaderboard: about 160 leapfrog steps per iteration against 530).
    anchors : sequence of str, optional
        Anchor benchmarks, one per skill (anchor k loads on skill k alone). Default: chosen
        from the data by pivoted QR of an exploratory MAP fit's loadings.
    priors : mapping, optional
        Overrides of :data:`sloth.model.DEFAULT_PRIORS`.
    num_chains, num_warmup, num_samples : int, default 4, 500, 2000
        NUTS settings (a pilot run of 150 + 150 iterations per chain precedes the warm-up;
        see :func:`sloth.inference.run_nuts`).
    target_accept : float, default 0.9
        Target acceptance probability of NUTS.
    dense_mass : bool, default False
        Adapt a dense mass matrix on top of the Laplace whitening (else diagonal).
    max_tree_depth : int, default 10
        Maximum depth of NUTS trees (at most ``2**max_tree_depth - 1`` leapfrog steps per
        iteration): a cap on the time a badly conditioned posterior can take.
    map_starts : int, default 2
        Random starts of the exploratory MAP fit that chooses the anchors.
    seed : int, default 0
        Seed of everything random: the same seed gives the same posterior.
    progress_bar : bool, default True
        Show stage messages and a progress bar of the NUTS iterations on stderr (it moves
        every :data:`sloth.inference.NUTS_CHUNK` iterations).
    registry : BenchmarkRegistry, optional
        Where item counts of benchmarks are looked up (default: the global registry).

    Attributes
    ----------
    idata_ : xarray.DataTree
        The labelled posterior (see :func:`sloth.posterior.build_datatree`).
    table_ : ScoreTable
        The data the model was fitted to.
    anchors_ : list of str
        Anchor benchmark of each skill.
    scaler_ : CovariateScaler
        Standardization of the covariates.
    timings_ : dict
        Seconds spent in the MAP fits and in sampling.
    family_benchmark_scale_ : ndarray of shape (J,) or None
        Estimated ``tau_j`` of the family-by-benchmark effects (``None`` without them).
    """

    def __init__(
        self,
        n_skills: int = 3,
        *,
        benchmarks: Sequence[str] | None = None,
        extra_covariates: Sequence[str] = (),
        link: Literal["logistic", "richards", "ceiling", "flexible"] = "logistic",
        family_benchmark_effects: bool = True,
        noise: Literal["student_t", "normal"] = "student_t",
        family_parametrization: Literal["centered", "non_centered"] = "centered",
        anchors: Sequence[str] | None = None,
        priors: Mapping[str, float] | None = None,
        num_chains: int = 4,
        num_warmup: int = 500,
        num_samples: int = 2000,
        target_accept: float = 0.9,
        dense_mass: bool = False,
        max_tree_depth: int = 10,
        map_starts: int = 2,
        seed: int = 0,
        progress_bar: bool = True,
        registry: BenchmarkRegistry | None = None,
    ) -> None:
        self.n_skills = n_skills
        self.benchmarks = benchmarks
        self.extra_covariates = extra_covariates
        self.link = link
        self.family_benchmark_effects = family_benchmark_effects
        self.noise = noise
        self.family_parametrization = family_parametrization
        self.anchors = anchors
        self.priors = priors
        self.num_chains = num_chains
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.target_accept = target_accept
        self.dense_mass = dense_mass
        self.max_tree_depth = max_tree_depth
        self.map_starts = map_starts
        self.seed = seed
        self.progress_bar = progress_bar
        self.registry = registry

    # ------------------------------------------------------------------ configuration
    def get_config(self) -> dict[str, Any]:
        """The constructor options (JSON-serializable, without the registry)."""
        return {
            "n_skills": self.n_skills,
            "benchmarks": None if self.benchmarks is None else list(self.benchmarks),
            "extra_covariates": list(self.extra_covariates),
            "link": self.link,
            "family_benchmark_effects": self.family_benchmark_effects,
            "noise": self.noise,
            "family_parametrization": self.family_parametrization,
            "anchors": None if self.anchors is None else list(self.anchors),
            "priors": default_priors(self.priors),
            "num_chains": self.num_chains,
            "num_warmup": self.num_warmup,
            "num_samples": self.num_samples,
            "target_accept": self.target_accept,
            "dense_mass": self.dense_mass,
            "max_tree_depth": self.max_tree_depth,
            "map_starts": self.map_starts,
            "seed": self.seed,
        }

    def _validate_config(self, table: ScoreTable) -> None:
        if not isinstance(self.n_skills, int | np.integer) or not 1 <= self.n_skills <= 4:
            raise ValueError(f"n_skills={self.n_skills!r}: allowed values are 1, 2, 3 or 4")
        if self.family_parametrization not in ("centered", "non_centered"):
            raise ValueError(
                f"family_parametrization={self.family_parametrization!r}: allowed values are "
                "'centered' and 'non_centered'"
            )
        if self.noise not in NOISE_MODELS:
            raise ValueError(f"noise={self.noise!r}: allowed values are {list(NOISE_MODELS)}")
        if self.link not in LINKS:
            raise ValueError(f"link={self.link!r}: allowed values are {list(LINKS)}")
        for name, value in (("num_chains", self.num_chains), ("num_warmup", self.num_warmup),
                            ("num_samples", self.num_samples), ("map_starts", self.map_starts),
                            ("max_tree_depth", self.max_tree_depth)):
            if int(value) < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if not 0.5 <= self.target_accept < 1:
            raise ValueError(f"target_accept={self.target_accept!r} must be in [0.5, 1)")
        if table.n_benchmarks <= self.n_skills:
            raise IdentifiabilityError(
                f"{table.n_benchmarks} benchmarks cannot identify {self.n_skills} skills: "
                f"use n_skills <= {table.n_benchmarks - 1} or add benchmarks"
            )
        missing = [c for c in self.extra_covariates if c not in table.extra_covariates]
        if missing:
            raise DataValidationError(
                f"extra_covariates {missing} are not columns of the data (it has "
                f"{sorted(table.extra_covariates)}): add them or drop them from extra_covariates"
            )
        if not isinstance(self.family_benchmark_effects, bool | np.bool_):
            raise ValueError(
                f"family_benchmark_effects={self.family_benchmark_effects!r}: allowed values are "
                "True and False"
            )
        if self.anchors is not None:
            if len(self.anchors) != self.n_skills:
                raise ValueError(
                    f"anchors={list(self.anchors)} has {len(self.anchors)} entries; give one "
                    f"benchmark per skill ({self.n_skills})"
                )
            unknown = [a for a in self.anchors if a not in table.benchmarks]
            if unknown:
                raise ValueError(
                    f"anchors {unknown} are not among the benchmarks {list(table.benchmarks)}"
                )

    def _log(self, message: str) -> None:
        if self.progress_bar:
            print(f"[sloth] {message}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ fitting
    def _prepare(self, data: ScoreTable | pd.DataFrame) -> ScoreTable:
        if isinstance(data, pd.DataFrame):
            from sloth.data.validation import read_evaluations

            data = read_evaluations(
                data, benchmarks=self.benchmarks, extra_covariates=self.extra_covariates,
                registry=self.registry,
            )
        elif not isinstance(data, ScoreTable):
            raise TypeError(
                f"fit expects a ScoreTable or a pandas DataFrame, got {type(data).__name__}; "
                "load a CSV with sloth.data.load_evaluations(path)"
            )
        if self.benchmarks is not None:
            unknown = [b for b in self.benchmarks if b not in data.benchmarks]
            if unknown:
                raise DataValidationError(
                    f"benchmarks {unknown} are not in the data (it has {list(data.benchmarks)})"
                )
            data = data.subset(benchmarks=list(self.benchmarks))
            has_score = data.observed.any(axis=1)
            if not has_score.all():
                data = data.subset(models=has_score)
        extra = {k: data.extra_covariates[k] for k in self.extra_covariates}
        return replace(data, extra_covariates=extra)

    def _inv_items(self, benchmarks: Sequence[str]) -> np.ndarray:
        registry = self.registry or default_registry()
        out = []
        for b in benchmarks:
            n_items = registry.get(b).n_items if b in registry else None
            out.append(1.0 / n_items if n_items else 0.0)
        return np.asarray(out)

    def fit(self, data: ScoreTable | pd.DataFrame, *,
            programs: ProgramCache | None = None) -> Self:
        """Fit the model with NUTS (see :func:`sloth.inference.fit_posterior`).

        Parameters
        ----------
        data : ScoreTable or DataFrame
            Evaluations (a DataFrame is validated with :func:`sloth.data.read_evaluations`).
        programs : ProgramCache, optional
            Compiled programs to reuse and keep: fits of data of similar size (an evaluation
            sweep) that share one cache compile their programs once. Default: a cache for
            this fit only.

        Returns
        -------
        self
        """
        table = self._prepare(data)
        self._validate_config(table)
        check_structure(
            table, self.n_skills, anchors=self.anchors, extra_covariates=self.extra_covariates,
        ).raise_if_errors()
        start = time.perf_counter()
        scaler = CovariateScaler.fit(table.params, table.tokens, table.extra_covariates)
        arrays = build_arrays(table, scaler, self._inv_items(table.benchmarks))
        base = ModelStructure(
            n_families=len(table.families), n_benchmarks=table.n_benchmarks,
            n_covariates=len(scaler.names), n_skills=self.n_skills, anchors=None,
            noise=self.noise, priors=default_priors(self.priors), link=self.link,
        )
        self._log(
            f"{table.n_models} models, {len(table.families)} families, {table.n_scores} scores"
            f" on {table.n_benchmarks} benchmarks; {len(table.skipped)} models skipped"
        )
        fitted = fit_posterior(
            arrays, base,
            anchors=None if self.anchors is None else [table.benchmarks.index(a)
                                                       for a in self.anchors],
            centered=self.family_parametrization == "centered", map_starts=self.map_starts,
            sampler=SamplerSettings(
                num_chains=self.num_chains, num_warmup=self.num_warmup,
                num_samples=self.num_samples, target_accept=self.target_accept,
                max_tree_depth=int(self.max_tree_depth), dense_mass=self.dense_mass,
                progress_bar=self.progress_bar,
            ),
            seed=self.seed, programs=programs, benchmarks=table.benchmarks, log=self._log,
        )
        structure = fitted.structure
        map_seconds, sampling_seconds = fitted.timings["map"], fitted.timings["sampling"]
        anchor_names = [table.benchmarks[a] for a in fitted.anchors]
        loglik = self._pointwise_log_likelihood(arrays, structure, fitted.samples)
        attrs = {
            "sloth_version": __version__,
            "config": json.dumps(self.get_config()),
            "scaler": json.dumps(scaler.to_attrs()),
            "anchors": json.dumps(anchor_names),
            "skipped": json.dumps(table.skipped.to_dict(orient="records")),
            "chain_method": fitted.chain_method,
            "map_seconds": f"{map_seconds:.3f}",
            "sampling_seconds": f"{sampling_seconds:.3f}",
        }
        self.idata_ = build_datatree(
            fitted.samples, fitted.sample_stats, loglik, table, arrays, scaler.names,
            attrs,
        )
        self._set_fitted(table, scaler, anchor_names, structure)
        if self.family_benchmark_effects:
            self.family_benchmark_scale_ = self._estimate_family_benchmark_scale(arrays)
            self.idata_.attrs["family_benchmark_scale"] = json.dumps(
                [float(t) for t in self.family_benchmark_scale_])
        self.timings_ = {"map": map_seconds, "sampling": sampling_seconds,
                         "total": time.perf_counter() - start}
        return self

    def _set_fitted(self, table: ScoreTable, scaler: CovariateScaler, anchors: list[str],
                    structure: ModelStructure) -> None:
        self.table_ = table
        self.scaler_ = scaler
        self.anchors_ = anchors
        self.structure_ = structure
        self.benchmarks_ = list(table.benchmarks)
        self.families_ = list(table.families)
        self.models_ = list(table.models)
        self.family_benchmark_scale_ = None

    def _pointwise_log_likelihood(
        self, arrays: FitArrays, structure: ModelStructure, samples: dict[str, np.ndarray]
    ) -> np.ndarray:
        sites = {"skill_slope", "family_offset", "family_efficiency", "family_scale",
                 "family_corr_chol", "loading_free", "intercept", "noise_scale", "noise_df",
                 *LINK_VARIABLES}
        flat = {k: jnp.asarray(v) for k, v in samples.items() if k in sites}
        ll = numpyro_log_likelihood(
            skill_model, flat, batch_ndims=2, **model_kwargs(arrays, structure)
        )
        return np.asarray(ll["scores"])

    # ------------------------------------------------------------------ results
    def _check_fitted(self) -> None:
        if not hasattr(self, "idata_"):
            raise NotFittedError(
                "this SlothModel is not fitted yet: call fit(data) or SlothModel.load(path)"
            )

    def summary(self) -> dict[str, Any]:
        """Sampler diagnostics, loadings and in-sample error as a JSON-friendly dict."""
        self._check_fitted()
        post = self.idata_["posterior"]
        observed = self.idata_["observed_data"]["scores"].to_numpy()
        fitted = post["mean_score"].mean(("chain", "draw")).to_numpy()
        mask = ~np.isnan(observed)
        abs_err = np.abs(fitted - observed)[mask]
        per_benchmark = {
            b: float(np.nanmean(np.where(mask[:, j], np.abs(fitted - observed)[:, j], np.nan)))
            for j, b in enumerate(self.benchmarks_)
        }
        loading = post["loading"].mean(("chain", "draw")).to_pandas()
        return {
            "n_models": len(self.models_),
            "n_families": len(self.families_),
            "n_scores": int(mask.sum()),
            "n_skipped": len(json.loads(self.idata_.attrs.get("skipped", "[]"))),
            "n_skills": self.structure_.n_skills,
            "anchors": self.anchors_,
            "sampler": sampler_summary(self.idata_),
            "timings": {k: float(v) for k, v in getattr(self, "timings_", {}).items()},
            "in_sample_mae": float(abs_err.mean()),
            "in_sample_mae_per_benchmark": per_benchmark,
            "loadings": {b: loading.loc[b].round(4).to_dict() for b in loading.index},
        }

    def predict(
        self,
        data: pd.DataFrame | ScoreTable,
        *,
        kind: Literal["score", "mean"] = "score",
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Posterior predictions for models of families in the fit.

        Parameters
        ----------
        data : DataFrame or ScoreTable
            Models to predict: columns ``model``, ``family``, ``params``, ``tokens`` (absolute
            counts) and any extra covariates of the fit; score columns are ignored.
        kind : {"score", "mean"}, default "score"
            ``"score"``: posterior predictive of an observed score (with noise, clipped to
            [0, 1]); ``"mean"``: posterior of the mean score.
        seed : int, optional
            Seed of the predictive noise (default: the model's seed).

        Returns
        -------
        DataFrame
            One row per model and benchmark: ``model, family, benchmark, mean, median, q05,
            q95``.
        """
        self._check_fitted()
        if kind not in ("score", "mean"):
            raise ValueError(f"kind={kind!r}: allowed values are 'score' and 'mean'")
        frame = data.to_frame() if isinstance(data, ScoreTable) else pd.DataFrame(data)
        self._check_prediction_frame(frame, "predict's data")
        unknown = sorted(set(frame[FAMILY]) - set(self.families_))
        if unknown:
            raise DataValidationError(
                f"families {unknown} were not in the fit; predict covers fitted families "
                "only (forecast new families with the forecasting API)"
            )
        draws = self._predict_draws(frame, kind, self.seed if seed is None else seed)
        return self._tidy(frame, draws)

    def _check_prediction_frame(self, frame: pd.DataFrame, name: str) -> None:
        """Raise unless ``frame`` has the columns a prediction needs, with positive counts."""
        needed = (MODEL, FAMILY, PARAMS, TOKENS, *self.scaler_.names[3:])
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataValidationError(
                f"{name} lacks columns {missing}; it needs {list(needed)} (absolute counts "
                f"for params and tokens); it has {list(frame.columns)}"
            )
        for column in (PARAMS, TOKENS):
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
            if not np.all(np.isfinite(values) & (values > 0)):
                bad = frame.loc[~(np.isfinite(values) & (values > 0)), MODEL].tolist()
                raise DataValidationError(
                    f"column {column!r} of {name} must hold positive counts; rows {bad[:10]} "
                    "do not"
                )

    def _standardized(self, frame: pd.DataFrame) -> np.ndarray:
        """Standardized covariates of the models in ``frame``, shape (n, P)."""
        if not len(frame):
            return np.zeros((0, len(self.scaler_.names)))
        extra = {k: frame[k].to_numpy(dtype=float) for k in self.scaler_.names[3:]}
        return self.scaler_.transform(
            frame[PARAMS].to_numpy(dtype=float), frame[TOKENS].to_numpy(dtype=float), extra
        )

    def _draws(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Posterior draws of ``names`` with chains and draws stacked, each (S, ...)."""
        post = self.idata_["posterior"]
        return {k: post[k].to_numpy().reshape(-1, *post[k].shape[2:])
                for k in names if k in post}

    def _predict_draws(self, frame: pd.DataFrame, kind: str, seed: int) -> np.ndarray:
        x = self._standardized(frame)
        fam_index = np.array([self.families_.index(f) for f in frame[FAMILY]])
        stacked = self._draws(("family_efficiency", "skill_slope"))
        skills = compute_skills(stacked["family_efficiency"], stacked["skill_slope"], x,
                                fam_index)
        rng = np.random.default_rng(seed)
        if self.family_benchmark_effects:
            # each family's benchmark effects, conditioned on its models in the fit
            fitted = self.idata_["posterior"]["skills"].to_numpy()
            fitted = fitted.reshape(-1, *fitted.shape[2:])
            mean = np.empty((skills.shape[0], len(frame), len(self.benchmarks_)))
            for f in np.unique(fam_index):
                rows = fam_index == f
                own = self.table_.family_index == f
                effects = self._family_effects(fitted[:, own], self.table_.scores[own], rng)
                mean[:, rows] = self._mean_score(skills[:, rows], effects)
        else:
            mean = self._mean_score(skills)
        if kind == "mean":
            return mean
        return self._predictive(mean, rng)

    def _mean_score(self, skills: np.ndarray, effects: np.ndarray | None = None) -> np.ndarray:
        """Mean scores (S, n, J) from skill draws shaped (S, n, d), with this fit's link, and
        a family's benchmark effects (S, J) added to the linear predictor when given."""
        p = self._draws(("loading", "intercept", *LINK_VARIABLES))
        floors = self.idata_["constant_data"]["floors"].to_numpy()
        return compute_mean_score(
            skills, p["loading"], p["intercept"], floors, p.get("link_shape"),
            p.get("link_ceiling"), offset=effects,
        )

    def _family_effects(
        self, skills: np.ndarray, scores: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray | None:
        """Draws (S, J) of one family's benchmark effects given the skills (S, k, d) and the
        scores (k, J; ``nan`` where missing) of its observed models (``k`` may be 0: the
        population); ``None`` for a fit without family-by-benchmark effects."""
        if not self.family_benchmark_effects:
            return None
        p = self._draws(("loading", "intercept", "noise_df"))
        eta = np.einsum("skd,sjd->skj", skills, p["loading"]) + p["intercept"][:, None, :]
        mean, var, slope = self._cell_moments(eta)
        resid = np.asarray(scores, dtype=float)[None] - mean
        return conditional_effects(resid, var, slope, self.family_benchmark_scale_,
                                   p.get("noise_df"), rng)

    def _cell_moments(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, noise variance and link slope per draw for linear predictors (S, n, J)."""
        p = self._draws(("noise_scale", *LINK_VARIABLES))
        const = self.idata_["constant_data"]
        floors = const["floors"].to_numpy()
        link = [None if p.get(k) is None else p[k][:, None, :] for k in LINK_VARIABLES]
        mean = link_mean(eta, floors, *link)
        scale = observation_scale(mean, p["noise_scale"][:, None, :],
                                  const["inv_items"].to_numpy())
        return mean, scale**2, link_slope(eta, floors, *link)

    def _estimate_family_benchmark_scale(self, arrays: FitArrays) -> np.ndarray:
        """Empirical-Bayes ``tau_j`` (J,) from the fit's residuals at posterior means."""
        p = self._draws(("loading", "intercept"))
        skills = self.idata_["posterior"]["skills"].to_numpy()
        skills = skills.reshape(-1, *skills.shape[2:])
        eta = np.einsum("snd,sjd->snj", skills, p["loading"]) + p["intercept"][:, None, :]
        mean, var, slope = (m.mean(axis=0) for m in self._cell_moments(eta))
        rows, cols = arrays.obs_model, arrays.obs_benchmark
        resid = np.asarray(arrays.scores, dtype=float) - mean[rows, cols]
        return estimate_effect_scales(
            resid, var[rows, cols], slope[rows, cols], arrays.family_index[rows], cols,
            len(self.families_), len(self.benchmarks_),
            prior_scale=default_priors(self.priors)["family_benchmark_scale"],
        )

    def _predictive(self, mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Posterior predictive scores from mean-score draws shaped (S, n, J): misfit and
        binomial noise added per draw, clipped to [0, 1]."""
        draws = self._draws(("noise_scale", "noise_df"))
        inv_items = self.idata_["constant_data"]["inv_items"].to_numpy()
        scale = observation_scale(mean, draws["noise_scale"][:, None, :], inv_items)
        if "noise_df" in draws:
            df = draws["noise_df"][:, None, None]
            noise = rng.standard_t(np.broadcast_to(df, mean.shape))
        else:
            noise = rng.standard_normal(mean.shape)
        return np.clip(mean + scale * noise, 0.0, 1.0)

    def _tidy(self, frame: pd.DataFrame, draws: np.ndarray) -> pd.DataFrame:
        """Tidy table of draws shaped (S, n, J)."""
        n, J = draws.shape[1:]
        out = pd.DataFrame(
            {
                MODEL: np.repeat(frame[MODEL].to_numpy(), J),
                FAMILY: np.repeat(frame[FAMILY].to_numpy(), J),
                "benchmark": np.tile(self.benchmarks_, n),
                "mean": draws.mean(axis=0).reshape(-1),
            }
        )
        for name, q in QUANTILES.items():
            out[name] = np.quantile(draws, q, axis=0).reshape(-1)
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the posterior and configuration to a netCDF file (no pickle).

        The derived variables ``skills`` and ``mean_score`` are left out (they are most of
        the size) and recomputed exactly by :meth:`load`.
        """
        self._check_fitted()
        tree = self.idata_.copy()
        tree["posterior"] = xr.DataTree(
            tree["posterior"].to_dataset().drop_vars(list(DERIVED_VARIABLES))
        )
        write_posterior(tree, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SlothModel:
        """Rebuild a fitted model from a file written by :meth:`save`."""
        tree = read_posterior(path)
        config = json.loads(tree.attrs["config"])
        config.setdefault("family_benchmark_effects", False)  # files before the option
        model = cls(**config, progress_bar=False)
        table = table_from_tree(tree)
        scaler = CovariateScaler.from_attrs(json.loads(tree.attrs["scaler"]))
        anchors = json.loads(tree.attrs["anchors"])
        structure = ModelStructure(
            n_families=len(table.families), n_benchmarks=table.n_benchmarks,
            n_covariates=len(scaler.names), n_skills=config["n_skills"],
            anchors=tuple(table.benchmarks.index(a) for a in anchors), noise=config["noise"],
            priors=config["priors"], centered=config["family_parametrization"] == "centered",
            link=config.get("link", "logistic"),
        )
        post = tree["posterior"].to_dataset()
        const = tree["constant_data"]
        skills = compute_skills(
            post["family_efficiency"].to_numpy(), post["skill_slope"].to_numpy(),
            const["covariates"].to_numpy(), table.family_index,
        )
        link = {k: post[k].to_numpy() for k in LINK_VARIABLES if k in post}
        mean = compute_mean_score(
            skills, post["loading"].to_numpy(), post["intercept"].to_numpy(),
            const["floors"].to_numpy(), link.get("link_shape"), link.get("link_ceiling"),
        )
        post["skills"] = (("chain", "draw", "model", "skill"), skills)
        post["mean_score"] = (("chain", "draw", "model", "benchmark"), mean)
        tree["posterior"] = xr.DataTree(post)
        model.idata_ = tree
        model._set_fitted(table, scaler, anchors, structure)
        if "family_benchmark_scale" in tree.attrs:
            model.family_benchmark_scale_ = np.asarray(
                json.loads(tree.attrs["family_benchmark_scale"]), dtype=float)
        elif model.family_benchmark_effects:
            model.family_benchmark_scale_ = model._estimate_family_benchmark_scale(
                build_arrays(table, scaler, tree["constant_data"]["inv_items"].to_numpy()))
        return model


__all__ = ["SlothModel"]

