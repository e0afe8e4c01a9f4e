"""Evaluation of sloth and baselines on a protocol of splits (leave one family group out, and
the scale-up and compute-cutoff protocols of :mod:`sloth.evaluation.protocol`).

:func:`evaluate` runs every task of a :class:`~sloth.evaluation.protocol.Protocol` (one fit
per training set: per held-out family group, or one for every group of a compute-cutoff
split) and returns one row per held-out model and benchmark;
:func:`summarize` turns those rows into the figures the Sloth paper reports (family-averaged
MAE) and the ones it does not: calibration (coverage of the central 50, 80, 90 and 95%
predictive intervals, :data:`INTERVALS`; the PIT value of each held-out score,
:func:`pit_from_draws`, drawn by :func:`sloth.plotting.plot_pit_histograms`), interval width
and CRPS (:func:`crps_from_draws`).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from sloth import defaults
from sloth.data.table import FAMILY, MODEL, ScoreTable
from sloth.evaluation.protocol import Protocol, Task, extra_training_rows, split_tasks
from sloth.exceptions import ConvergenceWarning, DataValidationError, ExtrapolationWarning
from sloth.executor import Executor, map_tasks

#: Central predictive intervals the harness reports, by level in percent: the columns of
#: their lower and upper bounds (the draws' quantiles (100 - level) / 200 and
#: (100 + level) / 200).
INTERVALS: dict[int, tuple[str, str]] = {
    50: ("q25", "q75"), 80: ("q10", "q90"), 90: ("q05", "q95"), 95: ("q025", "q975"),
}

#: Columns of the predictions table, in order. The first fourteen are those of files written
#: before the harness reported coverage at every level of :data:`INTERVALS` and PIT values;
#: :func:`summarize` reads both.
PREDICTION_COLUMNS = (
    "benchmarks", "observed_models_per_test_family", "test_families", "model", "benchmark",
    "observed", "mean", "q05", "q95", "median", "crps", "method", "split_k", "fit_seconds",
    "q025", "q10", "q25", "q75", "q90", "q975",
    *(f"covered{level}" for level in INTERVALS), "pit",
)

#: Conditioning of the held-out families on their observed models.
CONDITIONING = ("refit", "forecast")
CLEAR_COMPILED_EVERY = 10  # fits between clears of JAX's compiled programs in a sweep


def crps_from_draws(draws: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Continuous ranked probability score of sample forecasts (lower is better).

    ``CRPS = E|X - y| - E|X - X'| / 2`` with the expectation over the draws, computed
    exactly from the sorted draws in ``O(S log S)``.

    Parameters
    ----------
    draws : ndarray, shape (S, ...)
    observed : ndarray, shape (...)

    Returns
    -------
    ndarray, shape (...)
    """
    draws = np.sort(np.asarray(draws, dtype=float), axis=0)
    S = draws.shape[0]
    first = np.abs(draws - observed[None]).mean(axis=0)
    # E|X - X'| = 2 / S^2 * sum_i (2 i - S - 1) x_(i)   (i = 1..S)
    weights = (2.0 * np.arange(1, S + 1) - S - 1).reshape(-1, *([1] * (draws.ndim - 1)))
    spread = 2.0 * (weights * draws).sum(axis=0) / S**2
    return first - 0.5 * spread


def draws_below(draws: np.ndarray, observed: np.ndarray, *, name: str = "observed"
                ) -> tuple[np.ndarray, np.ndarray]:
    """How many draws lie below each value, and how many equal it.

    Parameters
    ----------
    draws : ndarray, shape (S, ...)
    observed : ndarray, shape (...)
    name : str
        How the error message names ``observed``.

    Returns
    -------
    below, ties : int ndarrays, shape (...)

    Raises
    ------
    ValueError
        If ``draws`` is not shaped ``(S, *observed.shape)``.
    """
    draws = np.asarray(draws, dtype=float)
    observed = np.asarray(observed, dtype=float)
    if draws.shape[1:] != observed.shape:
        raise ValueError(f"draws have shape {draws.shape} and {name} {observed.shape}: "
                         f"draws must be shaped (S, *{name}.shape)")
    return (draws < observed[None]).sum(axis=0), (draws == observed[None]).sum(axis=0)


def pit_from_draws(draws: np.ndarray, observed: np.ndarray, *,
                   seed: int | np.random.Generator = 0) -> np.ndarray:
    """Probability integral transform of observed values under sample forecasts.

    The share of predictive draws below the observed value, in the randomised form for
    ties: ``PIT = (#{x_s < y} + V #{x_s = y}) / S`` with ``V ~ Uniform(0, 1)`` drawn per
    value. Draws tied with the observation (atoms, e.g. a baseline's draws clipped at a
    score of 0 that was observed) thus place it uniformly within the atom, and the PIT of a
    calibrated forecaster is uniform on [0, 1] up to the resolution ``1 / S`` of the draws
    (Czado, Gneiting & Held 2009). Without ties ``V`` plays no part: an observation below
    every draw has PIT 0, above every draw 1.

    Parameters
    ----------
    draws : ndarray, shape (S, ...)
        Predictive draws.
    observed : ndarray, shape (...)
        Observed values; a missing (NaN) value has PIT NaN.
    seed : int or numpy Generator
        Source of ``V`` (a fixed seed keeps the output reproducible).

    Returns
    -------
    ndarray, shape (...)
        Values in [0, 1].
    """
    draws = np.asarray(draws, dtype=float)
    observed = np.asarray(observed, dtype=float)
    below, ties = draws_below(draws, observed)
    rng = np.random.default_rng(seed)
    pit = (below + rng.uniform(size=observed.shape) * ties) / draws.shape[0]
    return np.where(np.isnan(observed), np.nan, pit)


@dataclass(frozen=True)
class PitHistogram:
    """A histogram of PIT values beside the sampling variation of a uniform one.

    Under calibration each bin's count is Binomial(n, 1 / bins); ``lower`` and ``upper``
    bound the central ``level`` of that distribution, bin by bin (a pointwise band: with
    10 bins and ``level = 0.99`` up to about one histogram in ten of a calibrated
    forecaster has a bin outside it).
    """

    #: Bin edges, shape (bins + 1,), from 0 to 1.
    edges: np.ndarray
    #: Count per bin divided by its expectation ``n / bins``, shape (bins,): 1 is uniform.
    density: np.ndarray
    #: Band of the density of a uniform histogram with ``n`` values.
    lower: float
    upper: float
    #: Number of (non-missing) PIT values.
    n: int
    #: Probability of the band.
    level: float

    @property
    def outside(self) -> int:
        """Number of bins outside the band."""
        return int(((self.density < self.lower) | (self.density > self.upper)).sum())


def pit_histogram(pit: np.ndarray | pd.Series, *, bins: int = 10,
                  level: float = 0.99) -> PitHistogram:
    """Histogram of PIT values (:func:`pit_from_draws`) and the band of a uniform one.

    Parameters
    ----------
    pit : array-like, shape (n,)
        Values in [0, 1]; missing values (NaN) are left out.
    bins : int
        Number of equal bins on [0, 1].
    level : float
        Probability of the binomial band, in (0, 1).

    Returns
    -------
    PitHistogram
    """
    from scipy.stats import binom

    values = np.asarray(pit, dtype=float).reshape(-1)
    values = values[~np.isnan(values)]
    if not (isinstance(bins, int | np.integer) and bins >= 1):
        raise ValueError(f"bins={bins!r}: give a positive integer, e.g. 10")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r}: give a probability in (0, 1), e.g. 0.99")
    if values.size == 0:
        raise ValueError("no PIT values: none given, or all missing. Fix: pass the 'pit' "
                         "column of predictions written by sloth evaluate (or "
                         "sloth.evaluation.harness.evaluate)")
    if values.min() < 0.0 or values.max() > 1.0:
        raise ValueError(f"PIT values must lie in [0, 1]; got values from {values.min():.3g} "
                         f"to {values.max():.3g}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, _ = np.histogram(values, bins=edges)
    expected = values.size / bins
    low, high = binom.ppf([(1 - level) / 2, (1 + level) / 2], values.size, 1 / bins)
    return PitHistogram(edges=edges, density=counts / expected, lower=float(low / expected),
                        upper=float(high / expected), n=int(values.size), level=level)


def interval_quantiles() -> dict[str, float]:
    """The bounds of the central intervals of :data:`INTERVALS` as ``{column: probability}``
    (``q25: 0.25, q75: 0.75, q10: 0.1, ...``), in the order of the levels."""
    out = {}
    for level, (low, high) in INTERVALS.items():
        out[low], out[high] = (100 - level) / 200, (100 + level) / 200
    return out


def coverage_flags(predictions: pd.DataFrame) -> pd.DataFrame:
    """Whether each observed score lies in its central predictive intervals.

    Parameters
    ----------
    predictions : DataFrame, shape (n, ...)
        Columns ``observed`` and the bounds of :data:`INTERVALS` (files written before the
        harness kept every level have only ``q05, q95``).

    Returns
    -------
    DataFrame, shape (n, len(INTERVALS))
        Columns ``covered50, covered80, covered90, covered95``: 1.0 when ``lower <= observed
        <= upper``, 0.0 when not, NaN where a bound (or its column) is missing.
    """
    observed = predictions["observed"].to_numpy(dtype=float)
    flags = {}
    for level, (low, high) in INTERVALS.items():
        if low in predictions and high in predictions:
            lower = predictions[low].to_numpy(dtype=float)
            upper = predictions[high].to_numpy(dtype=float)
            inside = ((observed >= lower) & (observed <= upper)).astype(float)
            known = ~(np.isnan(lower) | np.isnan(upper) | np.isnan(observed))
            flags[f"covered{level}"] = np.where(known, inside, np.nan)
        else:
            flags[f"covered{level}"] = np.full(len(predictions), np.nan)
    return pd.DataFrame(flags, index=predictions.index)


#: What identifies a training set: its benchmarks and its models.
TrainingKey = tuple[tuple[str, ...], tuple[str, ...]]


def training_key(table: ScoreTable) -> TrainingKey:
    """The key under which a method keeps its fit to ``table``: the benchmarks and the models
    (tasks of two benchmark groups of a table without missing scores train on the same
    models, and must not share a fit)."""
    return tuple(map(str, table.benchmarks)), tuple(map(str, table.models))


@dataclass(frozen=True)
class Forecaster:
    """A method of the harness: trains on a task and returns predictive draws.

    ``run(task) -> (draws, fit_seconds, point)`` with predictive draws shaped
    (S, n_test, J) in the order of ``task.test`` and ``task.table.benchmarks``, and the
    method's point prediction (n_test, J), or ``None`` for the mean of the draws.

    A forecaster with a ``recipe`` (those of :func:`sloth_forecaster` and
    :func:`baseline_forecaster`) travels to another process (a Dask worker, see
    :mod:`sloth.executor`) as its recipe and arrives new: without the fits and compiled
    programs it holds here, and with empty records. One without is serialised as it is.
    """

    name: str
    run: Callable[[Task], tuple[np.ndarray, float, np.ndarray | None]]
    fits: list[dict[str, Any]] = field(default_factory=list)
    #: How each held-out family of each task was conditioned (sloth: method, k-hat, ESS).
    conditioning: list[dict[str, Any]] = field(default_factory=list)
    #: ``recipe() -> Forecaster``: a new forecaster of the same method (module-level
    #: callables and data only, so that Dask's serialisation carries it by reference).
    recipe: Callable[[], Forecaster] | None = None

    def __reduce_ex__(self, protocol: Any) -> Any:
        if self.recipe is not None:
            return _call, (self.recipe,)
        return super().__reduce_ex__(protocol)


def _call(recipe: Callable[[], Forecaster]) -> Forecaster:
    """``recipe()``: how a :class:`Forecaster` with a recipe is unpickled."""
    return recipe()


def sloth_forecaster(
    options: Mapping[str, Any] | None = None,
    *,
    conditioning: str = defaults.CONDITIONING,
    seed: int = 0,
    name: str = "sloth",
) -> Forecaster:
    """The latent-skill model as a harness method.

    Parameters
    ----------
    options : mapping, optional
        Keyword arguments of :class:`~sloth.estimator.SlothModel` over its defaults (the
        link and the rule for the number of skills of :mod:`sloth.defaults`, which picks
        d per split), the sampler settings of :data:`sloth.defaults.EVALUATION_SAMPLER`
        and the ``instruct`` covariate when the table has it.
    conditioning : {"forecast", "refit"}, default "forecast"
        ``"refit"`` follows the protocol literally: the held-out families' observed models
        are in the fit. ``"forecast"`` fits once without the held-out families and
        conditions each family's efficiency on its observed models per posterior draw
        (:func:`sloth.forecast.forecast_draws`); one fit then serves every ``k`` of a group
        and the zero-shot forecasts. Zero-shot tasks always use the forecast path. Tasks
        whose observed models are the fit's (:attr:`Task.observed_in_training`: the
        compute-cutoff protocol) always fit with them, whatever ``conditioning``: one fit
        of every model below the cutoff serves all of the split's families, those with
        models in it predicted as fitted families (:meth:`Posterior.predict_draws`), those
        without forecast from the fitted population (zero-shot).

    Notes
    -----
    One fit is kept at a time, keyed by its training models, so tasks with the same
    training set (those of one family group, or of one compute-cutoff split) share it when
    they come in a row, as :func:`evaluate` orders them. Extrapolation warnings of the
    forecasts are silenced (every scale-up forecast is one).
    seed : int
    name : str
        Method name in the output.
    """
    if conditioning not in CONDITIONING:
        raise ValueError(f"conditioning={conditioning!r}: allowed values are {CONDITIONING}")
    base = {**defaults.EVALUATION_SAMPLER, "progress_bar": False, "seed": seed}
    base.update(options or {})
    cache: dict[TrainingKey, tuple[Any, float]] = {}
    # compiled programs shared by the sweep's fits, and what they hold since the last clear
    compiled: dict[str, Any] = {"fits": 0, "benchmarks": None, "programs": None}

    def fitted(task: Task, include_observed: bool) -> tuple[Any, float]:
        from sloth.estimator import SlothModel

        # the training rows: the split's complete rows less the test and withheld models,
        # and less the group's observed models unless they are included (never for
        # zero-shot tasks); one fit per training set
        observed_k = task.split.k if include_observed else 0
        table = task.training_table(include_observed)
        key = training_key(table)
        if key not in cache:
            from sloth.inference import ProgramCache

            # every split compiles its own programs; a sweep that keeps them all runs out of
            # LLVM's code memory after about 40 fits ("Unable to allocate section memory").
            # Splits of one benchmark set share many programs (their shapes depend on J and
            # d only), so the programs are dropped when the set changes or every few fits:
            # clearing before every fit cost about 8 s of recompilation per fit.
            if (compiled["benchmarks"] != task.split.benchmark_list
                    or compiled["fits"] >= CLEAR_COMPILED_EVERY):
                if compiled["programs"] is not None:
                    compiled["programs"].clear()
                compiled.update(fits=0, benchmarks=task.split.benchmark_list,
                                programs=ProgramCache())
            compiled["fits"] += 1
            config = dict(base)
            if "extra_covariates" not in config:
                config["extra_covariates"] = [c for c in ("instruct",)
                                              if c in table.extra_covariates]
            start = time.perf_counter()
            with warnings.catch_warnings():
                # recorded per fit below (convergence_warnings), not printed per fit
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = SlothModel(**config).fit(table, programs=compiled["programs"])
            seconds = time.perf_counter() - start
            cache.clear()  # one fit kept: tasks of a group come together
            cache[key] = (model, seconds)
            forecaster.fits.append(_fit_record(task, model, seconds, observed_k))
        return cache[key]

    def record(task: Task, records: Sequence[Any]) -> None:
        forecaster.conditioning.extend(
            {"benchmarks": task.split.benchmarks, "test_families": "+".join(task.group),
             "k": task.k, **r.to_dict()} for r in records)

    def run(task: Task) -> tuple[np.ndarray, float, None]:
        from sloth.forecast import MAX_DRAWS, forecast_samples

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExtrapolationWarning)
            if not task.observed_in_training and (task.zero_shot
                                                  or conditioning == "forecast"):
                model, seconds = fitted(task, include_observed=False)
                observed = None if task.zero_shot else task.observed
                draws, records = forecast_samples(model, task.test, observed, kind="score",
                                                  seed=seed)
                record(task, records)
                return draws, seconds, None
            model, seconds = fitted(task, include_observed=True)
            known = task.test[FAMILY].isin(model.families_).to_numpy()
            draws = None
            if known.any():
                # the draws forecast_samples keeps, so that both parts have as many
                part = model.posterior_.thinned(MAX_DRAWS).predict_draws(
                    task.test[known], kind="score", seed=seed)
                draws = np.empty((part.shape[0], len(task.test), part.shape[2]))
                draws[:, known] = part
            if not known.all():  # families with no model in the fit: zero-shot
                part, records = forecast_samples(model, task.test[~known], None,
                                                 kind="score", seed=seed)
                if draws is None:
                    draws = np.empty((part.shape[0], len(task.test), part.shape[2]))
                draws[:, ~known] = part
                record(task, records)
        return draws, seconds, None

    forecaster = Forecaster(name, run, recipe=partial(
        sloth_forecaster, dict(options or {}), conditioning=conditioning, seed=seed, name=name))
    return forecaster


def _fit_record(task: Task, model: Any, seconds: float, observed_k: int) -> dict:
    """Sampler diagnostics of one fit of the harness (worst R-hat and its variable over every
    sampled variable, as :func:`sloth.checks.convergence.sampler_summary` reports them)."""
    from sloth.checks.convergence import sampler_summary

    summary = model.convergence_.sampler or sampler_summary(model.idata_)
    return {
        "benchmarks": task.split.benchmarks, "test_families": "+".join(task.group),
        "k": observed_k, "skills": model.n_skills_, "models": model.table_.n_models,
        "families": len(model.families_),
        "extra_models": 0 if task.extra is None else task.extra.n_models,
        "fit_seconds": seconds,
        "map_seconds": model.timings_["map"], "rhat_max": summary["rhat_max"],
        "worst_rhat_variable": summary["worst_rhat_variable"],
        "ess_bulk_min": summary["ess_bulk_min"], "divergences": summary["divergences"],
        "draws_per_chain": int(model.idata_["posterior"].sizes["draw"]),
        "mean_leapfrog_steps": summary["mean_leapfrog_steps"],
        "chain_method": str(model.idata_.attrs.get("chain_method", "")),
        "convergence_warnings": " ".join(sorted(
            f.check for f in model.convergence_.problems)),
    }


def baseline_forecaster(name: str, *, draws: int = 1000, seed: int = 0) -> Forecaster:
    """A baseline of :mod:`sloth.evaluation.baselines` as a harness method.

    The baseline is trained on the task's training rows including the held-out families'
    observed models (none when zero-shot). Its predictive is normal with the baseline's
    mean and the standard deviation implied by its 90% interval, clipped to [0, 1]; draws of
    it give the CRPS.

    Parameters
    ----------
    name : str
        A key of :data:`sloth.evaluation.baselines.BASELINES` (the reference's method names, e.g.
        ``"per_benchmark_flops_sigmoid_family_intercept"``).
    """
    from sloth.evaluation.baselines import BASELINES, make_baseline, normal_scale

    if name not in BASELINES:
        raise ValueError(f"baseline {name!r} is not one of {sorted(BASELINES)}")
    cache: dict[TrainingKey, tuple[Any, float]] = {}  # the last fit, by training set

    def run(task: Task) -> tuple[np.ndarray, float, np.ndarray]:
        train = task.training_table(include_observed=True)
        key = training_key(train)
        if key not in cache:
            start = time.perf_counter()
            fitted = make_baseline(name).fit(train)
            cache.clear()
            cache[key] = (fitted, time.perf_counter() - start)
        model, seconds = cache[key]
        table = model.predict(task.test)
        benchmarks = list(task.table.benchmarks)
        shape = (len(task.test), len(benchmarks))
        wide = {q: table.pivot(index="model", columns="benchmark", values=q)
                .loc[task.test[MODEL], benchmarks].to_numpy(dtype=float).reshape(shape)
                for q in ("mean", "q05", "q95")}
        sd = normal_scale(wide["q05"], wide["q95"])
        z = np.random.default_rng(seed).standard_normal((draws, *shape))
        return np.clip(wide["mean"] + sd * z, 0.0, 1.0), seconds, wide["mean"]

    return Forecaster(name, run, recipe=partial(baseline_forecaster, name, draws=draws,
                                                seed=seed))


def _task_rows(task: Task, method: str, draws: np.ndarray, seconds: float,
               point: np.ndarray | None) -> pd.DataFrame:
    """The rows of one method on one task (columns :data:`PREDICTION_COLUMNS`), from its
    draws shaped (S, n_test, J) and its point prediction (n_test, J) or ``None``."""
    benchmarks = list(task.table.benchmarks)
    observed = task.test[benchmarks].to_numpy(dtype=float)
    n, J = observed.shape
    names, probs = zip(*interval_quantiles().items(), strict=True)
    quantiles = np.quantile(draws, probs, axis=0).reshape(len(probs), -1)
    rows = pd.DataFrame({
        "benchmarks": task.split.benchmarks,
        "observed_models_per_test_family": task.k,
        "test_families": "+".join(task.group),
        "model": np.repeat(task.test[MODEL].to_numpy(), J),
        "benchmark": np.tile(benchmarks, n),
        "observed": observed.reshape(-1),
        "mean": (draws.mean(axis=0) if point is None else point).reshape(-1),
        "median": np.median(draws, axis=0).reshape(-1),
        "crps": crps_from_draws(draws, observed).reshape(-1),
        "pit": pit_from_draws(draws, observed).reshape(-1),
        "method": method,
        "split_k": task.split.k,
        "fit_seconds": seconds,
        **dict(zip(names, quantiles, strict=True)),
    }, columns=list(PREDICTION_COLUMNS))
    flags = coverage_flags(rows)
    rows[list(flags.columns)] = flags.astype(bool)  # every bound is known here
    return rows


def evaluate(
    protocol: Protocol,
    load_table: Callable[[Sequence[str]], ScoreTable],
    methods: Sequence[Forecaster],
    *,
    zero_shot: bool = False,
    also_zero_shot: bool = False,
    settings: Sequence[str] | None = None,
    ks: Sequence[int] | None = None,
    groups: Sequence[str] | None = None,
    progress: bool = True,
    on_task: Callable[[pd.DataFrame], None] | None = None,
    resume: pd.DataFrame | None = None,
    executor: Executor | None = None,
    extra_training: ScoreTable | None = None,
    derived_families: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Run a protocol: every task of its splits, with every method.

    Parameters
    ----------
    protocol : Protocol
        From :func:`sloth.evaluation.protocol.load_protocol` or
        :func:`sloth.evaluation.protocol.generate_protocol`.
    load_table : callable
        ``load_table(benchmarks) -> ScoreTable`` with (at least) those benchmarks.
    methods : sequence of Forecaster
        E.g. :func:`sloth_forecaster` and the baselines of :mod:`sloth.evaluation.baselines`.
    zero_shot : bool
        Hold out whole families (``k = 0``); the predicted models are those of each split.
        Compute-cutoff splits have no zero-shot tasks (their observed models are the fit's).
    also_zero_shot : bool
        Run both the splits' ``k`` and the zero-shot tasks (with ``conditioning="forecast"``
        one fit per family group serves both); compute-cutoff splits run their own tasks
        only.
    settings, ks, groups : optional filters
        Benchmark group names, values of ``k`` and '+'-joined family groups to run.
    progress : bool
        One line per task on stderr.
    on_task : callable, optional
        Called in this process with each task's rows (every method's) as they are made,
        e.g. to append them to a file.
    resume : DataFrame, optional
        The rows a stopped sweep wrote (through ``on_task``): their tasks are not run again
        (nor passed to ``on_task``) and their rows are returned in their place.
    executor : Executor, optional
        Where the tasks run (:mod:`sloth.executor`; default: in this process, one after
        another). The tasks of one held-out group are one unit of work (with
        ``conditioning="forecast"`` one fit serves them); on a Dask cluster the units run
        at once, each with new methods built from their recipes (:class:`Forecaster`),
        and their records are added to ``methods``' as each unit finishes. Every task is
        deterministic given the methods' seeds, so the rows come back in the same order and
        are the same on every executor (bar ``fit_seconds``; with NumPy's BLAS on one
        thread here as in Dask's workers, see :mod:`sloth.executor`).
    extra_training : ScoreTable, optional
        Further training rows from other sources (e.g. the merged corpus of
        :func:`sloth.data.corpus.load_corpus`, families named as ``load_table``'s): each task
        trains on them too, less the rows of its held-out families and of the families
        ``derived_families`` derives from them, and less the models of its split's table
        (:func:`sloth.evaluation.protocol.extra_training_rows`). Their rows may miss scores
        (the fits and baselines mask them). The test models and their scores stay
        ``load_table``'s.
    derived_families : mapping of str to sequence of str, optional
        Family -> families of ``extra_training`` held out with it (e.g.
        :func:`sloth.data.corpus.derived_families`).

    Returns
    -------
    DataFrame
        Columns :data:`PREDICTION_COLUMNS`: one row per method, held-out model and
        benchmark, in the order of the tasks (those of ``resume`` included); ``on_task``
        receives them in the order they finish.

    Raises
    ------
    DataValidationError
        ``resume`` has rows of tasks that this run does not have.
    """
    tables: dict[tuple[str, ...], ScoreTable] = {}
    splits = [s for s in protocol.splits
              if (settings is None or s.benchmarks in settings) and (ks is None or s.k in ks)]
    if not splits:
        raise ValueError(
            f"no split matches settings={settings} and ks={ks}; the file has "
            f"{sorted({s.label for s in protocol.splits})}"
        )
    shots = [zero_shot] if not also_zero_shot else [False, True]
    tasks = []
    for split in splits:
        if split.benchmark_list not in tables:
            tables[split.benchmark_list] = load_table(split.benchmark_list)
        if split.protocol == "compute-cutoff" and zero_shot:
            raise ValueError(
                f"split {split.label}: a compute-cutoff split has no zero-shot tasks (its "
                "observed models are in the fit); run it without zero_shot (--zero-shot)")
        for shot in shots if split.protocol != "compute-cutoff" else [False]:
            tasks += [t if extra_training is None else replace(t, extra=extra_training_rows(
                          extra_training, t.table, t.group, derived=derived_families)[0])
                      for t in split_tasks(split, tables[split.benchmark_list],
                                           zero_shot=shot)
                      if groups is None or "+".join(t.group) in groups]
    if not tasks:
        raise ValueError(f"no task matches groups={groups}")
    # tasks of one family group together, so that a fit can serve several of them: each
    # group is one unit of work of the executor, and the rows come in this order
    units: dict[tuple, list[Task]] = {}
    for task in tasks:
        units.setdefault((task.split.benchmark_list, task.group), []).append(task)
    ordered = [task_key(t) for unit in units.values() for t in unit]
    earlier = _rows_by_task(resume, ordered)
    work = [todo for unit in units.values()
            if (todo := [t for t in unit if task_key(t) not in earlier])]
    computed: dict[TaskKey, pd.DataFrame] = {}
    start = time.perf_counter()

    def deliver(index: int, result: _UnitResult) -> None:
        for method, fits, conditioning in zip(methods, result.fits, result.conditioning,
                                              strict=True):
            method.fits.extend(fits)
            method.conditioning.extend(conditioning)
        for task, rows in zip(work[index], result.rows, strict=True):
            computed[task_key(task)] = rows
            if on_task is not None:
                on_task(rows)
            if progress:
                mae = (rows["mean"] - rows["observed"]).abs().groupby(rows["method"]).mean()
                text = ", ".join(f"{m} {v:.4f}" for m, v in mae.items())
                extra = "" if task.extra is None else f", {task.extra.n_models} extra training"
                print(f"[sloth evaluate] {len(computed) + len(earlier)}/{len(ordered)} "
                      f"{task.split.label} {'+'.join(task.group)} (k={task.k}, "
                      f"{len(task.test)} models{extra}): MAE {text}; "
                      f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)

    map_tasks(partial(_run_unit, methods=tuple(methods)), work, executor=executor,
              on_result=deliver)
    # in the order of the tasks, whatever ran first
    frames = [computed[key] if key in computed else earlier[key] for key in ordered]
    if not frames:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def _rows_by_task(resume: pd.DataFrame | None, tasks: Sequence[TaskKey]
                  ) -> dict[TaskKey, pd.DataFrame]:
    """The rows of ``resume`` (a stopped sweep's) by task; an error names the tasks of
    ``resume`` that are not among ``tasks`` (those of the run resuming it)."""
    if resume is None or resume.empty:
        return {}
    positions: dict[TaskKey, list[int]] = {}
    for i, key in enumerate(_row_keys(resume)):
        positions.setdefault(key, []).append(i)
    by_task = {key: resume.iloc[rows].reset_index(drop=True)
               for key, rows in positions.items()}
    foreign = [key for key in by_task if key not in set(tasks)]
    if foreign:
        raise DataValidationError(
            f"the rows to resume have tasks that this run does not have, e.g. {foreign[:3]} "
            f"(benchmarks, k, observed models, held-out families): they were written by a run "
            "with other splits, benchmarks, k or groups. Fix: resume with the options of the "
            "stopped run, or start over")
    return by_task


@dataclass(frozen=True)
class _UnitResult:
    """What one unit of :func:`evaluate` (the tasks of one held-out group) sends back: each
    task's rows, and the records each method gained (its ``fits`` and ``conditioning``)."""

    rows: list[pd.DataFrame]
    fits: list[list[dict[str, Any]]]
    conditioning: list[list[dict[str, Any]]]


def _run_unit(tasks: Sequence[Task], methods: Sequence[Forecaster]) -> _UnitResult:
    """Every method on each task of ``tasks`` (one held-out group: a fit serves several).

    Runs wherever the executor sends it; the records the methods gain are taken from them
    and returned, and :func:`evaluate` puts them back on its own methods (in process the
    same objects; on a Dask worker new ones built from their recipes).
    """
    marks = [(len(m.fits), len(m.conditioning)) for m in methods]
    rows = []
    for task in tasks:
        rows.append(pd.concat([_task_rows(task, method.name, *method.run(task))
                               for method in methods], ignore_index=True))

    def take(records: list[dict[str, Any]], mark: int) -> list[dict[str, Any]]:
        new = records[mark:]
        del records[mark:]
        return new

    return _UnitResult(
        rows=rows,
        fits=[take(m.fits, mark) for m, (mark, _) in zip(methods, marks, strict=True)],
        conditioning=[take(m.conditioning, mark)
                      for m, (_, mark) in zip(methods, marks, strict=True)])


#: What identifies a task in a predictions table: its benchmark group, its split's ``k``,
#: its observed models per held-out family and its '+'-joined held-out families (the
#: columns :data:`TASK_COLUMNS`).
TaskKey = tuple[str, int, int, str]
TASK_COLUMNS = ("benchmarks", "split_k", "observed_models_per_test_family", "test_families")


def task_key(task: Task) -> TaskKey:
    """The key of ``task`` (:data:`TaskKey`), as its rows of :func:`evaluate` spell it."""
    return (str(task.split.benchmarks), int(task.split.k), int(task.k), "+".join(task.group))


def finished_tasks(predictions: pd.DataFrame) -> set[TaskKey]:
    """The tasks that have rows in ``predictions`` (written by :func:`evaluate`, whose
    ``on_task`` receives each task's rows of every method at once).

    Raises
    ------
    DataValidationError
        ``predictions`` lacks a column of :data:`TASK_COLUMNS`.
    """
    return set(_row_keys(predictions))


def _row_keys(predictions: pd.DataFrame) -> list[TaskKey]:
    """The task of each row of ``predictions``."""
    missing = [c for c in TASK_COLUMNS if c not in predictions]
    if missing:
        raise DataValidationError(f"the predictions lack the columns {missing}: they were not "
                                  "written by sloth evaluate")
    return [(str(b), int(s), int(k), str(g))
            for b, s, k, g in predictions[list(TASK_COLUMNS)].itertuples(index=False)]


def summarize(predictions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Summary figures of a predictions table.

    Coverage at a level is the share of held-out scores inside their central interval at
    that level (:func:`coverage_flags`, recomputed from the bounds); it is NaN where the
    table lacks the level's bounds (files written before every level of :data:`INTERVALS`
    was kept have the 90% bounds only) and is taken over the rows that have them.

    Returns
    -------
    dict of DataFrame
        ``"settings"``: per method, benchmark group and ``k``: family-averaged MAE (mean over
        a group's test models and benchmarks, then over groups), score-averaged MAE,
        coverage of the 50, 80, 90 and 95% intervals (``coverage50`` ... ``coverage95``),
        mean width of the 90% interval, mean CRPS, groups, scores, median fit seconds.
        ``"benchmarks"``: per method, group and ``k``, MAE per benchmark (columns).
        ``"overall"``: per method, the family-averaged MAE averaged over the settings, and
        coverage at every level, width and CRPS over all scores.
    """
    p = predictions.copy()
    p["abs_error"] = (p["mean"] - p["observed"]).abs()
    flags = coverage_flags(p)
    p[list(flags.columns)] = flags
    p["width"] = p["q95"] - p["q05"]
    coverage = {f"coverage{level}": (f"covered{level}", "mean") for level in INTERVALS}
    keys = ["method", "benchmarks", "observed_models_per_test_family"]
    per_group = p.groupby([*keys, "test_families"], sort=False).agg(
        mae=("abs_error", "mean"), fit_seconds=("fit_seconds", "first"))
    settings = per_group.groupby(level=keys, sort=False).agg(
        family_mae=("mae", "mean"), groups=("mae", "size"),
        median_fit_seconds=("fit_seconds", "median"))
    cells = p.groupby(keys, sort=False).agg(
        score_mae=("abs_error", "mean"), **coverage,
        width90=("width", "mean"), crps=("crps", "mean"), scores=("abs_error", "size"))
    settings = settings.join(cells).reset_index()
    benchmarks = p.pivot_table(index=keys, columns="benchmark", values="abs_error",
                               aggfunc="mean").reset_index()
    overall = settings.groupby("method", sort=False).agg(
        family_mae=("family_mae", "mean"), settings=("family_mae", "size")).join(
        p.groupby("method", sort=False).agg(
            **coverage, width90=("width", "mean"), crps=("crps", "mean"),
            scores=("abs_error", "size"))).reset_index()
    return {"settings": settings, "benchmarks": benchmarks, "overall": overall}


def reference_table(reference: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """The reference implementation's family-averaged MAE on the groups of ``predictions``.

    Parameters
    ----------
    reference : DataFrame
        Per-group, per-benchmark errors with columns ``benchmarks,
        observed_models_per_test_family, test_families, method, benchmark, mae`` (the
        schema of ``sloth-paper-reported-mae.csv``).
    predictions : DataFrame
        Output of :func:`evaluate`; its (setting, ``split_k``, group) triples select the
        reference rows, so zero-shot runs are compared on the same test models.

    Returns
    -------
    DataFrame
        One row per setting and ``k`` of the reference, one column per reference method.
    """
    needed = {"benchmarks", "observed_models_per_test_family", "test_families", "method",
              "mae"}
    missing = sorted(needed - set(reference.columns))
    if missing:
        raise ValueError(f"the reference table lacks columns {missing}")
    keys = predictions[["benchmarks", "split_k", "test_families"]].drop_duplicates()
    keys = keys.rename(columns={"split_k": "observed_models_per_test_family"})
    ref = reference.merge(keys, on=["benchmarks", "observed_models_per_test_family",
                                    "test_families"])
    per_group = ref.groupby(["benchmarks", "observed_models_per_test_family", "method",
                             "test_families"]).mae.mean()
    table = per_group.groupby(level=[0, 1, 2]).mean().unstack("method")
    return table.reset_index()


def format_summary(summary: Mapping[str, pd.DataFrame]) -> str:
    """Readable text of :func:`summarize`'s tables (a level a file lacks reads ``n/a``)."""
    fmt = {"family_mae": "{:.4f}", "score_mae": "{:.4f}",
           **{f"coverage{level}": "{:.3f}" for level in INTERVALS},
           "width90": "{:.3f}", "crps": "{:.4f}", "median_fit_seconds": "{:.1f}"}

    def render(frame: pd.DataFrame) -> str:
        frame = frame.copy()
        for column, spec in fmt.items():
            if column in frame:
                frame[column] = frame[column].map(
                    lambda v, spec=spec: spec.format(v) if pd.notna(v) else "n/a")
        return frame.to_string(index=False)

    levels = "/".join(str(level) for level in INTERVALS)
    per_bench = summary["benchmarks"].copy()
    numeric = per_bench.columns[3:]
    per_bench[numeric] = per_bench[numeric].map(lambda v: f"{v:.3f}" if pd.notna(v) else "")
    return "\n\n".join([
        "Per setting (family-averaged MAE: mean over a group's test models and benchmarks, "
        f"then over groups; coverage of the central {levels}% intervals; width of the 90% "
        "interval):\n" + render(summary["settings"]),
        "MAE per benchmark:\n" + per_bench.to_string(index=False),
        "Overall (family-averaged MAE averaged over settings; coverage, width, CRPS over all "
        "scores):\n" + render(summary["overall"]),
    ])
