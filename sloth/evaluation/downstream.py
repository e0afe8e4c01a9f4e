"""Downstream prediction: a benchmark left out of the skill fit, predicted from the skills.

As in the Sloth paper (arXiv 2412.06540, downstream tasks), a benchmark that was not used to
fit the latent-skill model (HumanEval in the leaderboard's ``data_v2.csv``) is predicted from
the fitted models' posterior skills ``theta_i`` (d,) through a map fitted on the models that
have it::

    y_i = c + (1 - c) * sigmoid(w . theta_i + b) + e_i,    e_i ~ Normal(0, s^2 + m(1-m)/n + r^2)

``c`` is the benchmark's guessing floor and ``n`` its item count (binomial item noise; 0
when unknown), ``r`` the rounding of reported scores: the logistic link and the score scale of
the skill model (:func:`sloth.model.maths.link_mean`,
:func:`sloth.model.maths.observation_scale`). The map is fitted *per posterior draw* of the
skills (least squares with a light ridge on ``w``), so that a prediction carries the
uncertainty of the skills; the misfit ``s`` of each draw is estimated from its residuals
(corrected for the ``d + 1`` fitted parameters, less the item noise and the rounding).
Predictions are per draw ``mean + scale * z``, ``z ~ Normal(0, 1)``, clipped to [0, 1]; their
mean and quantiles are reported.

:func:`evaluate_downstream` runs the paper's check: leave one family out at a time (its
downstream scores are hidden, the skill model stays fitted on everything), fit the map on
the other families, predict the hidden ones; it compares with baselines that predict the
downstream benchmark from log FLOPs alone (:class:`~sloth.evaluation.baselines.FlopsSigmoid`)
and from the principal components of the observed scores of the skill benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Self

import numpy as np
import pandas as pd
import scipy.stats

from sloth.conditioning import population_draws
from sloth.data.registry import BenchmarkRegistry, default_registry
from sloth.data.table import FAMILY, MODEL, PARAMS, TOKENS, ScoreTable
from sloth.estimator import SlothModel
from sloth.evaluation.baselines import FlopsSigmoid, ScorePCA, normal_scale
from sloth.evaluation.harness import coverage_flags, interval_quantiles
from sloth.exceptions import DataValidationError, NotFittedError
from sloth.model import maths
from sloth.optim import batched_lbfgs

__all__ = [
    "DOWNSTREAM_METHODS",
    "DownstreamEvaluation",
    "DownstreamPredictor",
    "SkillMap",
    "evaluate_downstream",
    "posterior_skills",
    "thin_draws",
]

#: Methods compared by :func:`evaluate_downstream`.
DOWNSTREAM_METHODS = (
    "sloth_skills",
    "score_pcs",
    "flops_sigmoid_family_intercept",
    "flops_sigmoid_shared",
)


def thin_draws(n_draws: int, max_draws: int | None) -> np.ndarray:
    """Indices of at most ``max_draws`` evenly spaced draws out of ``n_draws`` (all if None)."""
    if max_draws is None or max_draws >= n_draws:
        return np.arange(n_draws)
    if max_draws < 1:
        raise ValueError(f"max_draws={max_draws!r} must be a positive integer or None")
    return np.unique(np.linspace(0, n_draws - 1, int(max_draws)).round().astype(int))


def _model_frame(model: SlothModel) -> pd.DataFrame:
    """The fitted models as a prediction frame: model, family, params, tokens, extras."""
    return model.table_.to_frame()[
        [MODEL, FAMILY, PARAMS, TOKENS, *model.posterior_.scaler.names[3:]]
    ]


def posterior_skills(
    model: SlothModel,
    frame: pd.DataFrame | None = None,
    *,
    max_draws: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Posterior draws of the skills of models, from a fitted :class:`SlothModel`.

    The same computation as :meth:`SlothModel.predict`: ``theta = alpha_f + x B`` per draw,
    with the covariates standardized as in the fit. A family that was not in the fit gets
    its efficiency ``alpha`` drawn from the fitted population of families, per draw (the
    zero-shot forecast of :mod:`sloth.forecast`).

    Parameters
    ----------
    model : SlothModel
        A fitted model.
    frame : DataFrame, optional
        Models: columns ``model, family, params, tokens`` and the fit's extra covariates.
        Default: the fitted models, in fit order.
    max_draws : int, optional
        Keep at most this many evenly spaced draws (chains stacked); default all.
    seed : int
        Seed of the population draws of unseen families.

    Returns
    -------
    ndarray, shape (S, n, d)
    """
    posterior = model.posterior_
    if frame is None:
        frame = _model_frame(model)
    else:
        frame = pd.DataFrame(frame).reset_index(drop=True)
        posterior.validate_frame(frame, "frame", models_only=True)
    keep = thin_draws(posterior.n_draws, max_draws)
    efficiency = posterior.draws(("family_efficiency",))["family_efficiency"][keep]
    x = posterior.standardize(frame)
    S, d = len(keep), posterior.n_skills
    known = {f: i for i, f in enumerate(posterior.families)}
    unseen = [f for f in dict.fromkeys(frame[FAMILY]) if f not in known]
    if unseen:
        rng = np.random.default_rng(seed)
        extra = []
        for _ in unseen:
            alpha, _ = population_draws(posterior, rng)
            extra.append(alpha[keep])
        efficiency = np.concatenate([efficiency, np.stack(extra, axis=1)], axis=1)
        known.update({f: len(posterior.families) + k for k, f in enumerate(unseen)})
    index = np.array([known[f] for f in frame[FAMILY]], dtype=int)
    if not len(frame):
        return np.zeros((S, 0, d))
    return posterior.skills(x, index, efficiency=efficiency, draws=keep)


class SkillMap:
    """Per-draw map from skills to a downstream score, ``c + (1-c) sigmoid(w . theta + b)``.

    Fitted by least squares on the score scale with the ridge ``ridge * |w|^2``, separately
    for every draw of the skills (batched L-BFGS from a linearized logit-scale start;
    deterministic). The misfit scale of draw ``s`` is
    ``s_s^2 = max(SSR_s / (n - d - 1) - mean(m (1 - m)) / n_items - r^2, 1e-6)``; predictive
    draws add ``Normal(0, s_s^2 + m (1 - m) / n_items + r^2)`` noise (the score scale
    :func:`sloth.model.maths.observation_scale`, ``r`` the rounding of reported scores),
    clipped to [0, 1].

    Parameters
    ----------
    floor : float, default 0.0
        Guessing floor ``c`` of the downstream benchmark.
    n_items : int, optional
        Its number of items (binomial noise); ``None``: no item noise.
    ridge : float, default 1e-2
        Ridge on the weights ``w``.
    maxiter : int, default 500
        L-BFGS iterations.

    Attributes
    ----------
    weights_ : ndarray, shape (S, d)
    bias_ : ndarray, shape (S,)
    noise_scale_ : ndarray, shape (S,)
        Misfit scale ``s_s``.
    converged_ : ndarray of bool, shape (S,)
    """

    def __init__(self, floor: float = 0.0, *, n_items: int | None = None, ridge: float = 1e-2,
                 maxiter: int = 500) -> None:
        self.floor = floor
        self.n_items = n_items
        self.ridge = ridge
        self.maxiter = maxiter

    @property
    def inv_items(self) -> float:
        """``1 / n_items`` (0 without an item count)."""
        return 1.0 / self.n_items if self.n_items else 0.0

    def _mean(self, features: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        eta = np.einsum("snd,sd->sn", features, w) + b[:, None]
        return maths.link_mean(eta, self.floor)

    def predictive_scale(self, mean: np.ndarray) -> np.ndarray:
        """Scale (S, m) of a downstream score around its mean draws ``mean`` (S, m): each
        draw's misfit, item noise and rounding (:func:`sloth.model.maths.observation_scale`)."""
        if not hasattr(self, "noise_scale_"):
            raise NotFittedError("this SkillMap is not fitted yet: call fit(features, scores)")
        return maths.observation_scale(mean, self.noise_scale_[:, None], self.inv_items)

    def fit(self, features: np.ndarray, scores: np.ndarray) -> Self:
        """Fit one map per draw.

        Parameters
        ----------
        features : ndarray, shape (S, n, d) or (n, d)
            Skills (or any features) of the training models, per draw.
        scores : ndarray, shape (n,)
            Their downstream scores (finite, in [0, 1]).

        Returns
        -------
        self
        """
        feats = np.asarray(features, dtype=float)
        if feats.ndim == 2:
            feats = feats[None]
        y = np.asarray(scores, dtype=float)
        if feats.ndim != 3 or y.ndim != 1 or feats.shape[1] != len(y):
            raise ValueError(
                f"features must be shaped (S, n, d) or (n, d) and scores (n,) with the same n;"
                f" got features {np.shape(features)} and scores {np.shape(scores)}"
            )
        if not np.all(np.isfinite(y)) or np.any((y < 0) | (y > 1)):
            raise DataValidationError(
                "scores must be finite fractions in [0, 1]; drop models without a score "
                "(nan) and rescale percentages by 1/100"
            )
        if not np.all(np.isfinite(feats)):
            raise DataValidationError("features contain nan or inf; drop those models")
        S, n, d = feats.shape
        if n < d + 2:
            raise DataValidationError(
                f"{n} training models cannot fit a map from {d} features (d + 1 = {d + 1} "
                f"parameters and a residual); give at least {d + 2} models with a score"
            )
        if not 0 <= self.floor < 1:
            raise ValueError(f"floor={self.floor!r} must be in [0, 1)")
        c, ridge = float(self.floor), float(self.ridge)
        # start: ridge regression of the clipped logit, per draw
        u = np.clip((y - c) / (1 - c), 0.01, 0.99)
        target = np.log(u) - np.log1p(-u)
        design = np.concatenate([feats, np.ones((S, n, 1))], axis=2)
        gram = np.einsum("snp,snq->spq", design, design)
        gram[:, np.arange(d), np.arange(d)] += max(ridge, 1e-3)
        x0 = np.linalg.solve(gram, np.einsum("snp,n->sp", design, target)[..., None])[..., 0]

        def fg(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            w, b = x[:, :d], x[:, d]
            f_rows = feats[rows]
            eta = np.einsum("snd,sd->sn", f_rows, w) + b[:, None]
            r = maths.link_mean(eta, c) - y[None, :]
            d_eta = 2.0 * r * maths.link_slope(eta, c)
            g = np.empty_like(x)
            g[:, :d] = np.einsum("sn,snd->sd", d_eta, f_rows) + 2 * ridge * w
            g[:, d] = d_eta.sum(axis=1)
            return np.sum(r**2, axis=1) + ridge * np.sum(w**2, axis=1), g

        result = batched_lbfgs(fg, x0, maxiter=self.maxiter)
        w, b = result.x[:, :d], result.x[:, d]
        mean = self._mean(feats, w, b)
        ssr = np.sum((mean - y) ** 2, axis=1)
        item_var = np.mean(mean * (1 - mean), axis=1) * self.inv_items
        self.weights_ = w
        self.bias_ = b
        self.noise_scale_ = np.sqrt(np.maximum(
            ssr / (n - d - 1) - item_var - maths.SCORE_RESOLUTION_SD**2, 1e-6))
        self.converged_ = result.converged
        self.n_features_ = d
        return self

    def predict_draws(self, features: np.ndarray, *, kind: Literal["score", "mean"] = "score",
                      seed: int = 0) -> np.ndarray:
        """Draws of the downstream score (or its mean) of new models.

        Parameters
        ----------
        features : ndarray, shape (S, m, d) or (m, d)
            Features of the models, with the draws of :meth:`fit` (or one set for all).
        kind : {"score", "mean"}
            With misfit and item noise, or the mean score only.
        seed : int
            Seed of the noise.

        Returns
        -------
        ndarray, shape (S, m)
        """
        if not hasattr(self, "weights_"):
            raise NotFittedError("this SkillMap is not fitted yet: call fit(features, scores)")
        if kind not in ("score", "mean"):
            raise ValueError(f"kind={kind!r}: allowed values are 'score' and 'mean'")
        feats = np.asarray(features, dtype=float)
        if feats.ndim == 2:
            feats = np.broadcast_to(feats, (len(self.bias_), *feats.shape))
        if feats.ndim != 3 or feats.shape[0] != len(self.bias_) \
                or feats.shape[2] != self.n_features_:
            raise ValueError(
                f"features must be shaped ({len(self.bias_)}, m, {self.n_features_}) like the"
                f" fit's draws; got {np.shape(features)}"
            )
        mean = self._mean(feats, self.weights_, self.bias_)
        if kind == "mean":
            return mean
        return maths.predictive_scores(mean, self.predictive_scale(mean), None,
                                       np.random.default_rng(seed))


def _summarize_draws(draws: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, median and the interval bounds of
    :func:`~sloth.evaluation.harness.interval_quantiles` of draws shaped (S, m), each (m,)."""
    out = {"mean": draws.mean(axis=0), "median": np.median(draws, axis=0)}
    for name, q in interval_quantiles().items():
        out[name] = np.quantile(draws, q, axis=0)
    return out


def _lookup_benchmark(benchmark: str, registry: BenchmarkRegistry | None
                      ) -> tuple[float, int | None]:
    registry = registry or default_registry()
    if benchmark in registry:
        entry = registry.get(benchmark)
        return float(entry.floor), entry.n_items
    return 0.0, None


class DownstreamPredictor:
    """Predict a benchmark left out of a :class:`SlothModel` fit from its posterior skills.

    Parameters
    ----------
    model : SlothModel
        A fitted skill model.
    benchmark : str, default "HumanEval"
        The downstream benchmark (a score column of the tables passed to :meth:`fit`).
    floor : float, optional
        Its guessing floor (default: the registry's, else 0).
    n_items : int, optional
        Its item count (default: the registry's, else no item noise).
    ridge : float, default 1e-2
        Ridge on the map's weights (see :class:`SkillMap`).
    max_draws : int, optional, default 1000
        Posterior draws used (evenly thinned); ``None``: all.
    seed : int, default 0
        Seed of the predictive noise and of population draws for unseen families.
    registry : BenchmarkRegistry, optional

    Attributes
    ----------
    map_ : SkillMap
        The per-draw map.
    train_models_ : list of str
        Models the map was fitted on.
    """

    def __init__(self, model: SlothModel, benchmark: str = "HumanEval", *,
                 floor: float | None = None, n_items: int | None = None, ridge: float = 1e-2,
                 max_draws: int | None = 1000, seed: int = 0,
                 registry: BenchmarkRegistry | None = None) -> None:
        self.model = model
        self.benchmark = benchmark
        self.floor = floor
        self.n_items = n_items
        self.ridge = ridge
        self.max_draws = max_draws
        self.seed = seed
        self.registry = registry

    def _frame(self, data: pd.DataFrame | ScoreTable, name: str) -> pd.DataFrame:
        if isinstance(data, ScoreTable):
            data = data.to_frame()
        if not isinstance(data, pd.DataFrame):
            raise TypeError(
                f"{name} must be a DataFrame or a ScoreTable, got {type(data).__name__}"
            )
        frame = data.reset_index(drop=True)
        self.model.posterior_.validate_frame(frame, name, models_only=True)
        return frame

    def fit(self, data: pd.DataFrame | ScoreTable) -> Self:
        """Fit the map on the models of ``data`` that have a downstream score.

        Parameters
        ----------
        data : DataFrame or ScoreTable
            Columns ``model, family, params, tokens``, the skill model's extra covariates
            and the downstream score column ``benchmark`` (``nan`` rows are skipped).

        Returns
        -------
        self
        """
        frame = self._frame(data, "data")
        if self.benchmark not in frame.columns:
            raise DataValidationError(
                f"data lacks the downstream score column {self.benchmark!r}; it has "
                f"{list(frame.columns)}. Fix: load it, e.g. load_leaderboard(benchmarks="
                f"[{self.benchmark!r}]), or set benchmark="
            )
        y = pd.to_numeric(frame[self.benchmark], errors="coerce").to_numpy(dtype=float)
        frame = frame.loc[~np.isnan(y)].reset_index(drop=True)
        y = y[~np.isnan(y)]
        floor, n_items = _lookup_benchmark(self.benchmark, self.registry)
        floor = floor if self.floor is None else float(self.floor)
        n_items = n_items if self.n_items is None else self.n_items
        skills = posterior_skills(self.model, frame, max_draws=self.max_draws, seed=self.seed)
        self.map_ = SkillMap(floor, n_items=n_items, ridge=self.ridge).fit(skills, y)
        self.train_models_ = frame[MODEL].tolist()
        return self

    def predict_draws(self, frame: pd.DataFrame | ScoreTable, *,
                      kind: Literal["score", "mean"] = "score") -> np.ndarray:
        """Draws of the downstream score of the models of ``frame``, shape (S, m)."""
        if not hasattr(self, "map_"):
            raise NotFittedError(
                "this DownstreamPredictor is not fitted yet: call fit(data) first"
            )
        frame = self._frame(frame, "frame")
        skills = posterior_skills(self.model, frame, max_draws=self.max_draws,
                                  seed=self.seed + 1)
        return self.map_.predict_draws(skills, kind=kind, seed=self.seed)

    def predict(self, frame: pd.DataFrame | ScoreTable, *,
                kind: Literal["score", "mean"] = "score") -> pd.DataFrame:
        """Predict the downstream benchmark for the models of ``frame``.

        Parameters
        ----------
        frame : DataFrame or ScoreTable
            Columns ``model, family, params, tokens`` and the skill model's extra covariates.
        kind : {"score", "mean"}
            Posterior predictive of a score or posterior of the mean score.

        Returns
        -------
        DataFrame
            One row per model: ``model, family, benchmark, mean, median`` and the interval bounds
            ``q025, q05, q10, q25, q75, q90, q95, q975``.
        """
        draws = self.predict_draws(frame, kind=kind)
        frame = self._frame(frame, "frame")
        return pd.DataFrame({
            MODEL: frame[MODEL].to_numpy(), FAMILY: frame[FAMILY].to_numpy(),
            "benchmark": self.benchmark, **_summarize_draws(draws),
        })


@dataclass(frozen=True)
class DownstreamEvaluation:
    """Result of :func:`evaluate_downstream`.

    Attributes
    ----------
    predictions : DataFrame
        One row per method and held-out model: ``method, held_out, model, family,
        benchmark, observed, mean, median`` and the interval bounds ``q025 ... q975``.
    summary : DataFrame
        One row per method: ``method, n_families, n_models, mae`` (family-averaged: mean
        over a family's models, then over families), ``mae_pooled``, ``coverage50`` ...
        ``coverage95`` (pooled share of scores in each central interval), ``width90`` (mean
        width of the 90% interval).
    skipped : list of str
        Downstream models left out because the skill model was not fitted on them.
    """

    predictions: pd.DataFrame
    summary: pd.DataFrame
    skipped: list[str] = field(default_factory=list)


def summarize_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per-method MAE (family-averaged and pooled), coverage at every interval level and the
    90% interval's width.

    Parameters
    ----------
    predictions : DataFrame
        Columns ``method, held_out, observed, mean`` and the interval bounds of
        :data:`sloth.evaluation.harness.INTERVALS` (at least ``q05, q95``; a level whose
        bounds are missing has a NaN coverage).

    Returns
    -------
    DataFrame
        ``method, n_families, n_models, mae, mae_pooled, coverage50, coverage80,
        coverage90, coverage95, width90``.
    """
    flags = coverage_flags(predictions)
    p = pd.concat([predictions.assign(
        abs_err=(predictions["mean"] - predictions["observed"]).abs(),
        width=predictions["q95"] - predictions["q05"],
    ), flags], axis=1)
    rows = []
    for method, g in p.groupby("method", sort=False):
        rows.append({
            "method": method,
            "n_families": g["held_out"].nunique(),
            "n_models": len(g),
            "mae": g.groupby("held_out")["abs_err"].mean().mean(),
            "mae_pooled": g["abs_err"].mean(),
            **{name.replace("covered", "coverage"): g[name].mean() for name in flags.columns},
            "width90": g["width"].mean(),
        })
    return pd.DataFrame(rows)


def evaluate_downstream(
    model: SlothModel,
    downstream: ScoreTable | pd.DataFrame,
    *,
    benchmark: str = "HumanEval",
    methods: Sequence[str] = DOWNSTREAM_METHODS,
    families: Sequence[str] | None = None,
    ridge: float = 1e-2,
    max_draws: int | None = 1000,
    seed: int = 0,
    registry: BenchmarkRegistry | None = None,
) -> DownstreamEvaluation:
    """Leave-one-family-out evaluation of downstream prediction.

    The skill model stays as fitted (on the skill benchmarks of every model); for each
    family of ``downstream`` its downstream scores are hidden, every method is fitted on
    the other families' downstream scores, and the hidden ones are predicted.

    Methods (any subset of :data:`DOWNSTREAM_METHODS`):

    - ``"sloth_skills"``: :class:`DownstreamPredictor`, the per-draw map from posterior
      skills;
    - ``"score_pcs"``: the same sigmoid map (one fit, no draws) from the first ``d``
      principal components of the models' observed skill-benchmark scores (centred, as
      :class:`~sloth.evaluation.baselines.ObservationalScaling`);
    - ``"flops_sigmoid_family_intercept"`` / ``"flops_sigmoid_shared"``:
      :class:`~sloth.evaluation.baselines.FlopsSigmoid` on the downstream benchmark alone (log FLOPs
      only; the held-out family, unseen, gets the population intercept).

    Parameters
    ----------
    model : SlothModel
        Fitted skill model (on benchmarks other than ``benchmark``).
    downstream : ScoreTable or DataFrame
        Models with downstream scores: ``model, family, params, tokens``, the skill model's
        extra covariates and the column ``benchmark``. Models outside the skill fit are
        skipped (listed in the result).
    benchmark : str, default "HumanEval"
    methods : sequence of str
    families : sequence of str, optional
        Families to hold out (default: every family of ``downstream``).
    ridge : float
        Ridge of the sigmoid maps.
    max_draws : int, optional
        Posterior draws used by ``"sloth_skills"``.
    seed : int
    registry : BenchmarkRegistry, optional
        Where the benchmark's floor and item count are looked up.

    Returns
    -------
    DownstreamEvaluation
    """
    posterior = model.posterior_
    unknown = [m for m in methods if m not in DOWNSTREAM_METHODS]
    if unknown:
        raise ValueError(f"methods {unknown} are unknown; choose among {DOWNSTREAM_METHODS}")
    frame = downstream.to_frame() if isinstance(downstream, ScoreTable) else pd.DataFrame(
        downstream)
    posterior.validate_frame(frame, "downstream", models_only=True)
    if benchmark in posterior.benchmarks:
        raise DataValidationError(
            f"benchmark {benchmark!r} was used to fit the skill model; downstream prediction "
            "needs a benchmark left out of the fit: refit without it"
        )
    if benchmark not in frame.columns:
        raise DataValidationError(
            f"downstream lacks the column {benchmark!r}; it has {list(frame.columns)}. Fix: "
            f"load it with load_leaderboard(benchmarks=[{benchmark!r}]) or set benchmark="
        )
    frame[benchmark] = pd.to_numeric(frame[benchmark], errors="coerce")
    frame = frame.loc[frame[benchmark].notna()]
    in_fit = frame[MODEL].isin(model.models_)
    skipped = frame.loc[~in_fit, MODEL].tolist()
    frame = frame.loc[in_fit].reset_index(drop=True)
    all_families = list(dict.fromkeys(frame[FAMILY]))
    held_families = all_families if families is None else list(families)
    missing = [f for f in held_families if f not in all_families]
    if missing:
        raise DataValidationError(
            f"families {missing} have no model with a {benchmark} score in the skill fit; "
            f"choose among {all_families}"
        )
    if len(all_families) < 2:
        raise DataValidationError(
            f"downstream has {len(all_families)} family with {benchmark} scores; "
            "leave-one-family-out needs at least 2"
        )
    floor, n_items = _lookup_benchmark(benchmark, registry)
    y = frame[benchmark].to_numpy(dtype=float)

    # features computed once: posterior skills (S, n, d) and PCs of the observed scores
    skills = posterior_skills(model, frame, max_draws=max_draws, seed=seed)
    d = skills.shape[-1]
    pcs = None
    if "score_pcs" in methods:
        pca = ScorePCA(d, standardize=False).fit(model.table_.scores)
        rows = [model.models_.index(m) for m in frame[MODEL]]
        pcs = pca.transform(model.table_.scores[rows])

    dtable = ScoreTable(
        models=tuple(frame[MODEL]), family=tuple(frame[FAMILY]),
        params=frame[PARAMS].to_numpy(float), tokens=frame[TOKENS].to_numpy(float),
        benchmarks=(benchmark,), floors=np.array([floor]), scores=y[:, None],
    )
    rng = np.random.default_rng(seed)
    out = []
    for fam in held_families:
        test = (frame[FAMILY] == fam).to_numpy()
        train = ~test
        noise_seed = int(rng.integers(2**31))
        results: dict[str, dict[str, np.ndarray]] = {}
        if "sloth_skills" in methods:
            smap = SkillMap(floor, n_items=n_items, ridge=ridge).fit(skills[:, train], y[train])
            results["sloth_skills"] = _summarize_draws(
                smap.predict_draws(skills[:, test], seed=noise_seed))
        if pcs is not None:
            ok = ~np.isnan(pcs).any(axis=1)
            pmap = SkillMap(floor, n_items=n_items, ridge=ridge).fit(
                pcs[train & ok], y[train & ok])
            mean = pmap.predict_draws(np.nan_to_num(pcs[test]), kind="mean")[0]
            scale = pmap.predictive_scale(mean[None])[0]
            results["score_pcs"] = _normal_summary(mean, scale)
        for name, shared in (("flops_sigmoid_family_intercept", False),
                             ("flops_sigmoid_shared", True)):
            if name in methods:
                base = FlopsSigmoid(family_intercepts=not shared).fit(dtable.subset(train))
                pred = base.predict(frame.loc[test])
                # the baseline's normal predictive, its scale read off its 90% interval (as
                # the harness reads it): every interval level from one distribution
                scale = normal_scale(pred["q05"].to_numpy(), pred["q95"].to_numpy())
                results[name] = _normal_summary(pred["mean"].to_numpy(), scale)
        for name, res in results.items():
            out.append(pd.DataFrame({
                "method": name, "held_out": fam, MODEL: frame.loc[test, MODEL].to_numpy(),
                FAMILY: fam, "benchmark": benchmark, "observed": y[test], **res,
            }))
    predictions = pd.concat(out, ignore_index=True)
    order = {m: i for i, m in enumerate(methods)}
    summary = summarize_predictions(predictions)
    summary = summary.sort_values("method", key=lambda s: s.map(order)).reset_index(drop=True)
    return DownstreamEvaluation(predictions=predictions, summary=summary, skipped=skipped)


def _normal_summary(mean: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, median and the interval bounds of
    :func:`~sloth.evaluation.harness.interval_quantiles` of ``clip(Normal(mean, scale), 0,
    1)`` (the quantiles of the clipped normal are the clipped quantiles), each (m,)."""
    out = {"mean": mean, "median": np.clip(mean, 0.0, 1.0)}
    for name, q in interval_quantiles().items():
        out[name] = np.clip(mean + scipy.stats.norm.ppf(q) * scale, 0.0, 1.0)
    return out
