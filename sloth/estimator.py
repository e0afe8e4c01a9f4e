"""The estimator users fit, inspect, save and load: :class:`SlothModel`."""

from __future__ import annotations

import inspect
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from numbers import Integral, Real
from typing import Any, Literal, Self

import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.infer import log_likelihood as numpyro_log_likelihood

from sloth import defaults
from sloth.checks.diagnostics import sampler_summary
from sloth.checks.report import DiagnosticReport, check_convergence
from sloth.checks.structure import auto_skills, check_structure
from sloth.checks.thresholds import DiagnosticThresholds
from sloth.data.registry import BenchmarkInfo, BenchmarkRegistry, default_registry
from sloth.data.table import ScoreTable
from sloth.exceptions import (
    ConvergenceWarning,
    DataValidationError,
    IdentifiabilityError,
    NotFittedError,
    issue_warning,
)
from sloth.inference.pipeline import SamplerSettings, fit_posterior
from sloth.inference.programs import ProgramCache, model_kwargs
from sloth.model import (
    LINKS,
    NOISE_MODELS,
    ModelStructure,
    default_priors,
    skill_model,
)
from sloth.model.design import CovariateScaler, FitArrays, build_arrays
from sloth.posterior.api import QUANTILES, Posterior, fit_structure
from sloth.posterior.datatree import LINK_VARIABLES, build_datatree, table_from_tree
from sloth.posterior.fileformat import (
    model_config,
    posterior_attrs,
    read_posterior,
    sampler_config,
    write_posterior,
)

#: Constructor keywords that define the model: the ``model_config`` block of a file.
MODEL_KEYS = ("n_skills", "benchmarks", "extra_covariates", "link", "family_benchmark_effects",
              "noise", "family_parametrization", "anchors", "priors", "registry")

#: Constructor keywords that drive the fit's computation: the ``sampler_config`` block.
SAMPLER_KEYS = ("num_chains", "num_warmup", "num_samples", "max_samples", "target_accept",
                "dense_mass", "max_tree_depth", "map_starts", "seed", "progress_bar")

#: ``max_samples="auto"``: at most this many times ``num_samples`` draws per chain.
AUTO_DRAW_FACTOR = 4

#: Constructor keywords holding a sequence of benchmark or covariate names (or ``None``).
_NAME_LISTS = ("benchmarks", "extra_covariates", "anchors")



class SlothModel:
    """Hierarchical latent-skill model of benchmark scores, fitted with NUTS.

    Parameters
    ----------
    n_skills : int or "auto", default "auto"
        Number of latent skills d (1 to 4). ``"auto"`` takes
        :func:`sloth.checks.structure.auto_skills` of the fitted table's benchmarks: 3, or
        fewer where three would be just identified or worse (2 for six benchmarks); with
        ``anchors``, one skill per anchor. The number used is ``n_skills_``.
    benchmarks : sequence of str, optional
        Benchmarks to use (default: every benchmark of the table passed to :meth:`fit`).
    extra_covariates : sequence of str, default ()
        Extra covariates of the skills besides size and tokens (columns of the table's
        ``extra_covariates``, e.g. ``"instruct"``).
    link : {"logistic", "richards", "ceiling", "flexible"}, default "flexible"
        Link from the linear predictor to the mean score, a centred Richards curve
        ``c + (1 - c) h r_k(eta - log(h) / (k a_k))`` (see :func:`sloth.model.link_mean`;
        the ceiling ``h`` bounds the top and leaves the low end alone): ``"logistic"`` has
        ``h = k = 1``; ``"richards"``
        learns an asymmetry exponent ``k_j`` per benchmark, ``"ceiling"`` a ceiling ``h_j``
        per benchmark, ``"flexible"`` both (the default: its forecasts are the more
        accurate and the better calibrated on held-out families, benchmarks/RESULTS.md §3).
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
        here (the leapfrog steps of each are measured in ``benchmarks/RESULTS.md``).
    anchors : sequence of str, optional
        Anchor benchmarks, one per skill (anchor k loads on skill k alone). Default: chosen
        from the data by pivoted QR of an exploratory MAP fit's loadings.
    priors : mapping, optional
        Overrides of :data:`sloth.model.DEFAULT_PRIORS`.
    num_chains, num_warmup, num_samples : int, default 4, 500, 1000
        NUTS settings (a pilot run of 150 + 150 iterations per chain precedes the warm-up;
        see :func:`sloth.inference.run_nuts`).
    max_samples : int, "auto" or None, default "auto"
        Draws per chain at most. While the chains have not mixed after ``num_samples`` draws
        (worst R-hat above, or bulk or tail ESS per chain below, the warning levels of
        :class:`sloth.checks.DiagnosticThresholds`, over the parameters and the fitted means
        of a sample of models), the chains draw on in blocks of about ``num_samples / 2`` up
        to ``max_samples``. ``"auto"``: four times ``num_samples``; ``None``: exactly
        ``num_samples``.
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
    n_skills_ : int
        The number of skills of the fit (``n_skills``, or what ``"auto"`` chose).
    idata_ : xarray.DataTree
        The labelled posterior (see :func:`sloth.posterior.datatree.build_datatree`).
    posterior_ : Posterior
        The public posterior API over :attr:`idata_` (draws, skills, mean scores,
        predictive draws, tidy summaries; see :class:`sloth.posterior.Posterior`).
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
    convergence_ : DiagnosticReport
        The sampler's convergence checks of the fit (divergences, tree depth against
        ``max_tree_depth``, E-BFMI, R-hat and ESS over every sampled variable; see
        :func:`sloth.checks.check_convergence`), also stored in the file. :meth:`fit` issues
        a :class:`~sloth.exceptions.ConvergenceWarning` when one of them did not pass.
    """

    def __init__(
        self,
        n_skills: int | Literal["auto"] = defaults.N_SKILLS,
        *,
        benchmarks: Sequence[str] | None = None,
        extra_covariates: Sequence[str] = (),
        link: Literal["logistic", "richards", "ceiling", "flexible"] = defaults.LINK,
        family_benchmark_effects: bool = True,
        noise: Literal["student_t", "normal"] = "student_t",
        family_parametrization: Literal["centered", "non_centered"] = "centered",
        anchors: Sequence[str] | None = None,
        priors: Mapping[str, float] | None = None,
        num_chains: int = 4,
        num_warmup: int = 500,
        num_samples: int = 1000,
        max_samples: int | Literal["auto"] | None = "auto",
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
        self.max_samples = max_samples
        self.target_accept = target_accept
        self.dense_mass = dense_mass
        self.max_tree_depth = max_tree_depth
        self.map_starts = map_starts
        self.seed = seed
        self.progress_bar = progress_bar
        self.registry = registry

    # ------------------------------------------------------------------ configuration
    @classmethod
    def _param_names(cls) -> list[str]:
        """The constructor's keywords, read from its signature (as scikit-learn does)."""
        names = []
        for p in inspect.signature(cls.__init__).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"{cls.__name__}.__init__ may not take *args or **kwargs")
            if p.name != "self":
                names.append(p.name)
        return names

    def get_params(self) -> dict[str, Any]:
        """Every constructor keyword and its current value (the objects themselves).

        ``type(model)(**model.get_params())`` is an unfitted copy of ``model``.
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Change constructor keywords (effective at the next :meth:`fit`).

        Raises
        ------
        ValueError
            For a name that is not a constructor keyword.
        """
        allowed = self._param_names()
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"unknown parameters {unknown}; allowed: {allowed}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def get_config(self) -> dict[str, dict[str, Any]]:
        """Every constructor keyword as JSON, in two blocks: model and sampler settings.

        Returns
        -------
        dict
            ``{"model_config": {...}, "sampler_config": {...}}``, the keywords of
            :data:`MODEL_KEYS` and of :data:`SAMPLER_KEYS` (together, the constructor's
            signature). Sequences become lists, ``priors`` the full prior scales
            (:func:`sloth.model.default_priors`), ``registry`` the list of its entries
            (``name``, ``floor``, ``n_items``, ``description``) or ``None`` for the default
            registry. :meth:`from_config` is the inverse; a saved file holds the two blocks
            as its ``model_config`` and ``sampler_config`` attributes.
        """
        config: dict[str, dict[str, Any]] = {"model_config": {}, "sampler_config": {}}
        for name, value in self.get_params().items():
            if name in MODEL_KEYS:
                config["model_config"][name] = _encode(name, value)
            elif name in SAMPLER_KEYS:
                config["sampler_config"][name] = _encode(name, value)
            else:
                raise TypeError(
                    f"constructor keyword {name!r} is in neither MODEL_KEYS nor SAMPLER_KEYS: "
                    "add it to one of them (and a file-format migration for older files)"
                )
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Mapping[str, Any]]) -> Self:
        """An unfitted model from the output of :meth:`get_config` (e.g. read from a file).

        Raises
        ------
        DataValidationError
            If a block lacks a constructor keyword, has an unknown one, or holds a value
            that cannot be decoded.
        """
        params: dict[str, Any] = {}
        for block, keys in (("model_config", MODEL_KEYS), ("sampler_config", SAMPLER_KEYS)):
            values = dict(config.get(block) or {})
            missing = [k for k in keys if k not in values]
            unknown = sorted(set(values) - set(keys))
            if missing or unknown:
                raise DataValidationError(
                    f"{block} lacks {missing} and has unknown keys {unknown}: it must hold "
                    f"exactly {list(keys)} (as written by SlothModel.get_config)"
                )
            params.update({k: _decode(k, v) for k, v in values.items()})
        return cls(**params)

    def _validate_params(self) -> None:
        """Check each constructor keyword on its own (no data needed).

        Raises
        ------
        ValueError
            Naming the keyword, its value and the allowed values.
        """
        if self.n_skills != "auto" and (
                isinstance(self.n_skills, bool) or not isinstance(self.n_skills, Integral)
                or not 1 <= self.n_skills <= 4):
            raise ValueError(
                f"n_skills={self.n_skills!r}: allowed values are 1, 2, 3, 4 or 'auto'")
        for name, allowed in (("link", list(LINKS)), ("noise", list(NOISE_MODELS)),
                              ("family_parametrization", ["centered", "non_centered"])):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}: allowed values are {allowed}")
        for name in ("num_chains", "num_warmup", "num_samples", "map_starts",
                     "max_tree_depth", "seed"):
            value = getattr(self, name)
            least = 0 if name == "seed" else 1
            if isinstance(value, bool) or not isinstance(value, Integral) or value < least:
                kind = "non-negative" if name == "seed" else "positive"
                raise ValueError(f"{name}={value!r} must be a {kind} integer")
        if self.max_samples not in (None, "auto") and (
                isinstance(self.max_samples, bool) or not isinstance(self.max_samples, Integral)
                or self.max_samples < self.num_samples):
            raise ValueError(
                f"max_samples={self.max_samples!r}: allowed values are 'auto' (four times "
                f"num_samples), None (num_samples exactly) and integers at least num_samples "
                f"({self.num_samples})")
        if (isinstance(self.target_accept, bool) or not isinstance(self.target_accept, Real)
                or not 0.5 <= self.target_accept < 1):
            raise ValueError(
                f"target_accept={self.target_accept!r} must be a number in [0.5, 1)"
            )
        for name in ("family_benchmark_effects", "dense_mass", "progress_bar"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise ValueError(
                    f"{name}={getattr(self, name)!r}: allowed values are True and False"
                )
        for name in _NAME_LISTS:
            value = getattr(self, name)
            if value is None and name != "extra_covariates":
                continue
            if (isinstance(value, str) or not isinstance(value, Sequence)
                    or not all(isinstance(v, str) for v in value)):
                raise ValueError(
                    f"{name}={value!r} must be a list of names, e.g. {name}=['MMLU']"
                    if name != "extra_covariates" else
                    f"extra_covariates={value!r} must be a list of column names, e.g. "
                    "extra_covariates=['instruct'] (or [] for none)"
                )
        if self.priors is not None and not isinstance(self.priors, Mapping):
            raise ValueError(
                f"priors={self.priors!r} must be a mapping of prior name to scale, e.g. "
                "priors={'loading_scale': 1.0}"
            )
        default_priors(self.priors)  # unknown names raise, listing the allowed ones
        if self.registry is not None and not isinstance(self.registry, BenchmarkRegistry):
            raise ValueError(
                f"registry={self.registry!r} must be a sloth.data.BenchmarkRegistry or None "
                "(the default registry)"
            )

    def _skills_for(self, table: ScoreTable) -> int:
        """The number of skills to fit to ``table``: ``n_skills``, or what ``"auto"``
        gives (one per anchor when anchors are given)."""
        if self.n_skills != "auto":
            return int(self.n_skills)
        if self.anchors is not None:
            return len(self.anchors)
        return auto_skills(table.n_benchmarks)

    def _validate_config(self, table: ScoreTable) -> None:
        """Check the constructor keywords, alone and against the data to fit."""
        self._validate_params()
        d = self._skills_for(table)
        if table.n_benchmarks <= d:
            raise IdentifiabilityError(
                f"{table.n_benchmarks} benchmarks cannot identify {d} skills: "
                f"use n_skills <= {table.n_benchmarks - 1} or add benchmarks"
            )
        missing = [c for c in self.extra_covariates if c not in table.extra_covariates]
        if missing:
            raise DataValidationError(
                f"extra_covariates {missing} are not columns of the data (it has "
                f"{sorted(table.extra_covariates)}): add them or drop them from extra_covariates"
            )
        if self.anchors is not None:
            if len(self.anchors) != d:
                raise ValueError(
                    f"anchors={list(self.anchors)} has {len(self.anchors)} entries; give one "
                    f"benchmark per skill ({d})"
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
        return (self.registry or default_registry()).inv_items(benchmarks)

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
        self._validate_params()
        table = self._prepare(data)
        self._validate_config(table)
        d = self._skills_for(table)
        check_structure(
            table, d, anchors=self.anchors, extra_covariates=self.extra_covariates,
        ).raise_if_errors()
        start = time.perf_counter()
        scaler = CovariateScaler.fit(table.params, table.tokens, table.extra_covariates)
        arrays = build_arrays(table, scaler, self._inv_items(table.benchmarks))
        base = ModelStructure(
            n_families=len(table.families), n_benchmarks=table.n_benchmarks,
            n_covariates=len(scaler.names), n_skills=d, anchors=None,
            noise=self.noise, priors=default_priors(self.priors), link=self.link,
        )
        self._log(
            f"{table.n_models} models, {len(table.families)} families, {table.n_scores} scores"
            f" on {table.n_benchmarks} benchmarks; {len(table.skipped)} models skipped"
        )
        thresholds = DiagnosticThresholds()  # the levels the fit's own check warns at
        fitted = fit_posterior(
            arrays, base,
            anchors=None if self.anchors is None else [table.benchmarks.index(a)
                                                       for a in self.anchors],
            centered=self.family_parametrization == "centered", map_starts=self.map_starts,
            sampler=SamplerSettings(
                num_chains=self.num_chains, num_warmup=self.num_warmup,
                num_samples=self.num_samples,
                max_samples=self._draw_cap(),
                rhat_target=thresholds.rhat_warn,
                ess_per_chain_target=thresholds.ess_per_chain_warn,
                target_accept=self.target_accept,
                max_tree_depth=int(self.max_tree_depth), dense_mass=self.dense_mass,
                progress_bar=self.progress_bar,
            ),
            seed=self.seed, programs=programs, benchmarks=table.benchmarks, log=self._log,
        )
        structure = fitted.structure
        map_seconds, sampling_seconds = fitted.timings["map"], fitted.timings["sampling"]
        anchor_names = [table.benchmarks[a] for a in fitted.anchors]
        loglik = self._pointwise_log_likelihood(arrays, structure, fitted.samples)
        attrs = posterior_attrs(
            **self.get_config(), scaler=scaler.to_attrs(), anchors=anchor_names,
            skipped=table.skipped.to_dict(orient="records"), chain_method=fitted.chain_method,
            map_seconds=map_seconds, sampling_seconds=sampling_seconds,
        )
        self.idata_ = build_datatree(
            fitted.samples, fitted.sample_stats, loglik, table, arrays, scaler.names,
            attrs,
        )
        self._set_fitted(table, scaler, anchor_names, structure)
        if self.family_benchmark_effects:
            self.family_benchmark_scale_ = self._estimate_family_benchmark_scale(arrays)
            self.idata_.attrs["family_benchmark_scale"] = json.dumps(
                [float(t) for t in self.family_benchmark_scale_])
        self._check_convergence()
        self.timings_ = {"map": map_seconds, "sampling": sampling_seconds,
                         "total": time.perf_counter() - start}
        return self

    def _draw_cap(self) -> int | None:
        """Draws per chain at most (``max_samples`` resolved; None: ``num_samples``)."""
        if self.max_samples is None:
            return None
        if self.max_samples == "auto":
            return AUTO_DRAW_FACTOR * int(self.num_samples)
        return int(self.max_samples)

    def _check_convergence(self) -> None:
        """Run :func:`sloth.checks.report.check_convergence` on the new fit, keep it as
        ``convergence_`` and in the file's attributes, and warn when a check did not pass."""
        self.convergence_ = check_convergence(self.idata_)
        self.idata_.attrs["convergence"] = json.dumps(self.convergence_.to_dict())
        problems = self.convergence_.problems
        if problems:
            issue_warning(
                f"the sampler did not converge cleanly ({len(problems)} check(s)): "
                + self.convergence_.describe_problems()
                + " (model.convergence_ holds the report; sloth.diagnose(model) runs every "
                "check)", ConvergenceWarning)

    def _set_fitted(self, table: ScoreTable, scaler: CovariateScaler, anchors: list[str],
                    structure: ModelStructure) -> None:
        self.table_ = table
        self.n_skills_ = structure.n_skills
        self.scaler_ = scaler
        self.anchors_ = anchors
        self.structure_ = structure
        self.benchmarks_ = list(table.benchmarks)
        self.families_ = list(table.families)
        self.models_ = list(table.models)
        self.family_benchmark_scale_ = None
        self.convergence_: DiagnosticReport | None = None

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
            "sampler": (self.convergence_.sampler if self.convergence_ is not None
                        and self.convergence_.sampler else sampler_summary(self.idata_)),
            "convergence_warnings": [] if self.convergence_ is None else [
                f.to_dict() for f in self.convergence_.problems],
            "timings": {k: float(v) for k, v in getattr(self, "timings_", {}).items()},
            "in_sample_mae": float(abs_err.mean()),
            "in_sample_mae_per_benchmark": per_benchmark,
            "loadings": {b: loading.loc[b].round(4).to_dict() for b in loading.index},
        }

    @property
    def posterior_(self) -> Posterior:
        """The public posterior API of the fit (:class:`sloth.posterior.Posterior`): draws,
        skills, mean scores, predictive draws and tidy summaries, as arrays over draws.

        Built on each access from :attr:`idata_` and the current family-by-benchmark
        effects (``family_benchmark_scale_`` when ``family_benchmark_effects``, else none).

        Raises
        ------
        NotFittedError
            The model is not fitted.
        """
        self._check_fitted()
        scale = self.family_benchmark_scale_ if self.family_benchmark_effects else None
        return Posterior(self.idata_, family_benchmark_scale=scale)

    def predict(
        self,
        data: pd.DataFrame | ScoreTable,
        *,
        kind: Literal["score", "mean"] = "score",
        seed: int | None = None,
        params_unit: float = 1.0,
        tokens_unit: float = 1.0,
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
        params_unit, tokens_unit : float, default 1.0
            What one unit of the params and tokens columns counts (e.g. ``1e9`` for sizes
            in billions); the counts are checked against the fit's models either way.

        Returns
        -------
        DataFrame
            One row per model and benchmark: ``model, family, benchmark, mean, median, q05,
            q95``, and how far the model lies outside the fitted data: ``params_ratio,
            tokens_ratio, compute_ratio, covariate_distance, extrapolating`` (see
            :class:`sloth.model.design.DesignRange`).

        Warns
        -----
        ExtrapolationWarning
            Some models lie beyond the fitted data (``extrapolating``).

        See Also
        --------
        Posterior.predict_draws : the draws (S, n, J) behind this summary.
        """
        posterior = self.posterior_
        if kind not in ("score", "mean"):
            raise ValueError(f"kind={kind!r}: allowed values are 'score' and 'mean'")
        frame = data.to_frame() if isinstance(data, ScoreTable) else data
        frame = posterior.validate_frame(frame, "predict's data", params_unit=params_unit,
                                         tokens_unit=tokens_unit)
        extrapolation = posterior.extrapolation(frame)
        draws = posterior.predict_draws(frame, kind=kind,
                                        seed=self.seed if seed is None else seed)
        return posterior.tidy(frame, draws, extrapolation)

    def _estimate_family_benchmark_scale(self, arrays: FitArrays) -> np.ndarray:
        """Empirical-Bayes ``tau_j`` (J,) from the fit's residuals at posterior means."""
        return Posterior(self.idata_).estimate_family_benchmark_scale(
            arrays, prior_scale=default_priors(self.priors)["family_benchmark_scale"])

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the posterior and configuration to a netCDF file (no pickle).

        The file format is described in :mod:`sloth.posterior.fileformat`. The derived
        variables ``skills`` and ``mean_score`` are left out (they are most of the size) and
        recomputed exactly by :meth:`load`.
        """
        self._check_fitted()
        write_posterior(self.idata_, path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, log_likelihood: bool = True,
             sample_stats: bool = True, derived: bool = True) -> Self:
        """Rebuild a fitted model from a file written by :meth:`save`.

        Every constructor keyword is restored as saved (change one with :meth:`set_params`,
        e.g. ``progress_bar=False``); files of older format versions are migrated (see
        :func:`sloth.posterior.fileformat.migrate`).

        Parameters
        ----------
        path : str or path-like
        log_likelihood : bool, default True
            Read the pointwise log-likelihood too (model comparison needs it; ``False``
            reads a fraction of the file, enough to predict and forecast, and verifies the
            checksums of the groups it reads only: damage in the skipped group goes
            unnoticed).
        sample_stats : bool, default True
            Read the sampler statistics too (:func:`sloth.diagnose` needs them; ``False``
            is enough to predict and forecast, verified as ``log_likelihood=False`` is).
        derived : bool, default True
            Recompute the fitted models' skills and mean scores (``summary``, ``predict``
            and the diagnostics need them; forecasting new families does not).

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        DataValidationError
            The file is not a sloth posterior, is damaged, or was written by a newer sloth.
        """
        tree = read_posterior(path, log_likelihood=log_likelihood, sample_stats=sample_stats,
                              derived=derived)
        return cls.from_datatree(tree, source=repr(os.fspath(path)))

    @classmethod
    def from_datatree(cls, tree: Any, *, source: str = "the posterior tree") -> Self:
        """A fitted model around a posterior tree of the current file format: a fit's
        :attr:`idata_`, or what :func:`sloth.posterior.fileformat.read_posterior` returns
        (:meth:`load` reads a file with it, then calls this).

        Parameters
        ----------
        tree : xarray.DataTree
        source : str
            How error messages name the tree (``load`` gives the file's path).

        Raises
        ------
        DataValidationError
            The tree holds settings this sloth cannot use.
        """
        try:
            model = cls.from_config({"model_config": model_config(tree),
                                     "sampler_config": sampler_config(tree)})
            model._validate_params()
        except ValueError as exc:
            raise DataValidationError(
                f"{source} holds settings this sloth cannot use: {exc}"
            ) from None
        table = table_from_tree(tree)
        scaler = CovariateScaler.from_attrs(json.loads(tree.attrs["scaler"]))
        anchors = json.loads(tree.attrs["anchors"])
        model.idata_ = tree
        model._set_fitted(table, scaler, anchors, fit_structure(tree))
        if "convergence" in tree.attrs:
            model.convergence_ = DiagnosticReport.from_dict(json.loads(tree.attrs["convergence"]))
        if "family_benchmark_scale" in tree.attrs:
            model.family_benchmark_scale_ = np.asarray(
                json.loads(tree.attrs["family_benchmark_scale"]), dtype=float)
        elif model.family_benchmark_effects:
            model.family_benchmark_scale_ = model._estimate_family_benchmark_scale(
                build_arrays(table, scaler, tree["constant_data"]["inv_items"].to_numpy()))
        return model


def _encode(name: str, value: Any) -> Any:
    """The JSON form of constructor keyword ``name``'s value (see ``get_config``)."""
    if name == "priors":
        return default_priors(value)
    if name == "registry":
        if value is None:
            return None
        return [asdict(value.get(b)) for b in value]
    if isinstance(value, np.generic):
        return value.item()
    if name in _NAME_LISTS:
        return None if value is None else [str(v) for v in value]
    return value


def _decode(name: str, value: Any) -> Any:
    """The constructor value of keyword ``name`` from its JSON form (see ``from_config``)."""
    if name == "registry" and value is not None:
        try:
            return BenchmarkRegistry([BenchmarkInfo(**entry) for entry in value])
        except (TypeError, ValueError) as exc:
            raise DataValidationError(
                f"registry of model_config is not a list of benchmark entries (name, floor, "
                f"n_items, description): {exc}"
            ) from None
    return value


__all__ = ["MODEL_KEYS", "QUANTILES", "SAMPLER_KEYS", "SlothModel"]

