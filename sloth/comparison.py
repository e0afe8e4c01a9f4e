"""Model comparison: PSIS-LOO and leave-one-family-out ELPD of fits of the same data.

Which number of skills, which link? The fit that predicts unseen data better, measured by
its expected log predictive density (ELPD), estimated two ways from the pointwise
log-likelihood every fit stores (the ``log_likelihood`` group, one entry per observed score):

- **PSIS-LOO** (per score): ``arviz_stats.loo`` over the observations, with the Pareto
  k-hat of each observation's importance weights (Vehtari et al. 2017, 2024).
- **Leave-one-family-out** (per family, the question users bring: how well is a family
  predicted that the fit has not seen?): the log-likelihood summed over each family's
  scores, then PSIS over the draws of those family totals (the grouped, leave-one-group-out
  approximation). A family's importance ratio removes its efficiency's information, so the
  estimate is of the family's scores forecast as a new family from the population. Families
  whose scores pin down much of the posterior have k-hat above
  :data:`~sloth.conditioning.KHAT_THRESHOLD` (0.7), where the estimate is unreliable;
  ``refit_families=True`` replaces it by the exact value: the model refitted without the
  family, and the family's scores scored under that fit's forecast of a new family, ``log
  mean_s p(y_f | theta_s)`` with the family's efficiency integrated over the population per
  draw (:func:`sloth.conditioning.new_family_log_likelihood`).

Both are of the sampled model, whose likelihood is the NumPyro model's
(:func:`sloth.model.skill_model`): the family-by-benchmark effects that a fit estimates after
sampling (``family_benchmark_effects``) are part of neither, so two fits that differ only in
that option have the same ELPD.

:func:`compare` tabulates fits side by side; :func:`fit_elpd` gives one fit's estimates.
The fits must be of the same observations (the same models, benchmarks and scores).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass
from functools import partial
from typing import Any

import arviz_stats
import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.utils import ELPDDataLOO
from scipy.special import logsumexp

from sloth.conditioning import KHAT_THRESHOLD, new_family_log_likelihood
from sloth.data.table import FAMILY, MODEL, ScoreTable
from sloth.estimator import SlothModel
from sloth.exceptions import (
    ConvergenceWarning,
    DataValidationError,
    SlothError,
    issue_warning,
)
from sloth.executor import Executor, map_tasks
from sloth.inference.programs import ProgramCache
from sloth.posterior.api import Posterior
from sloth.posterior.datatree import DERIVED_VARIABLES
from sloth.posterior.fileformat import read_posterior

__all__ = [
    "KHAT_BINS",
    "FitELPD",
    "compare",
    "default_names",
    "family_log_likelihood",
    "fit_elpd",
    "khat_counts",
    "loo_families",
    "loo_observations",
    "observations",
]

#: Bins of the Pareto k-hat summary: name -> (lower, upper], Vehtari et al. (2024)'s
#: good, ok (usable with enough draws), bad and very bad.
KHAT_BINS = {"k_good": (-math.inf, 0.5), "k_ok": (0.5, 0.7), "k_bad": (0.7, 1.0),
             "k_very_bad": (1.0, math.inf)}

#: A fit to compare: a fitted model, its posterior tree, or a posterior file.
FitLike = SlothModel | xr.DataTree | str | os.PathLike

_VAR = "scores"  # the log-likelihood variable of a posterior tree


@dataclass(frozen=True)
class FitELPD:
    """One fit's ELPD estimates.

    Attributes
    ----------
    name : str
    loo : ELPDDataLOO
        PSIS-LOO over the observations (pointwise: ``elpd_i`` and ``pareto_k`` over the
        ``observation`` dim).
    lofo : ELPDDataLOO
        Leave-one-family-out over the ``family`` dim: PSIS, with the exact value for each
        refitted family (whose ``pareto_k`` entry is then 0, as ``arviz_stats.reloo`` does).
    families : DataFrame
        One row per family: ``family, n_models, n_observations, khat`` (PSIS, before any
        refit), ``elpd_psis, elpd`` (the value in ``lofo``), ``method`` (``"psis"``,
        ``"refit"``, or ``"psis (refit failed: ...)"``), ``refit_seconds`` and
        ``refit_converged`` (whether the refit passed its convergence checks; ``None``
        without a refit).
    """

    name: str
    loo: ELPDDataLOO
    lofo: ELPDDataLOO
    families: pd.DataFrame

    def high_khat_families(self, threshold: float = KHAT_THRESHOLD) -> list[str]:
        """Families whose leave-one-family-out estimate is still PSIS with k-hat above
        ``threshold`` (unreliable: not refitted)."""
        f = self.families
        return [str(x) for x in f.loc[(f["khat"] > threshold) & (f["method"] != "refit"),
                                      "family"]]


# ----------------------------------------------------------------------------- inputs


def _tree_and_model(fit: FitLike, name: str) -> tuple[xr.DataTree, SlothModel | None]:
    """The posterior tree of ``fit`` (and its model, if it is one)."""
    if isinstance(fit, SlothModel):
        if not hasattr(fit, "idata_"):
            raise DataValidationError(f"fit {name!r} is not fitted: fit it or load a file")
        return fit.idata_, fit
    if isinstance(fit, xr.DataTree):
        return fit, None
    if isinstance(fit, str | os.PathLike):
        return read_posterior(fit, log_likelihood=True, derived=False), None
    raise TypeError(f"fit {name!r}: expected a fitted SlothModel, an xarray.DataTree or a "
                    f"posterior file path, got {type(fit).__name__}")


def _check_log_likelihood(tree: xr.DataTree, name: str) -> None:
    if "log_likelihood" not in tree.children or _VAR not in tree["log_likelihood"]:
        raise DataValidationError(
            f"fit {name!r} has no pointwise log-likelihood (group 'log_likelihood', variable "
            f"{_VAR!r}), which model comparison needs. Fix: load the file with "
            "SlothModel.load(path) (log_likelihood=True, the default) or give its path; a "
            "file without the group must be refitted and saved (sloth fit --out FILE)")


def observations(tree: xr.DataTree) -> pd.DataFrame:
    """The observations of a fit's ``log_likelihood`` group, in its order.

    Returns
    -------
    DataFrame
        One row per observation: ``model, family, benchmark, score`` (the family from
        ``constant_data``, the score from ``observed_data``).
    """
    ll = tree["log_likelihood"]
    obs_model = ll["observation_model"].to_numpy().astype(str)
    obs_bench = ll["observation_benchmark"].to_numpy().astype(str)
    scores = tree["observed_data"]["scores"]
    models = [str(m) for m in scores["model"].to_numpy()]
    benches = [str(b) for b in scores["benchmark"].to_numpy()]
    row = pd.Index(models).get_indexer(obs_model)
    col = pd.Index(benches).get_indexer(obs_bench)
    families = tree["constant_data"]["model_family"].to_numpy().astype(str)
    return pd.DataFrame({MODEL: obs_model, FAMILY: families[row], "benchmark": obs_bench,
                         "score": scores.to_numpy()[row, col]})


def family_log_likelihood(tree: xr.DataTree) -> xr.DataArray:
    """The pointwise log-likelihood summed over each family's observations.

    Returns
    -------
    DataArray
        Dims ``(chain, draw, family)``, families in order of first appearance among the
        observations, with the coordinate ``n_observations`` (scores per family).
    """
    family = observations(tree)[FAMILY].to_numpy()
    names = list(dict.fromkeys(family))
    ll = tree["log_likelihood"][_VAR].transpose("chain", "draw", "observation")
    values = np.asarray(ll.to_numpy(), dtype=np.float64)
    index = pd.Index(names).get_indexer(family)
    summed = np.zeros((*values.shape[:2], len(names)))
    np.add.at(summed, (slice(None), slice(None), index), values)
    return xr.DataArray(
        summed, dims=("chain", "draw", "family"),
        coords={"chain": ll["chain"].to_numpy(), "draw": ll["draw"].to_numpy(),
                "family": names, "n_observations": ("family", np.bincount(index))},
        name=_VAR)


def relative_efficiency(tree: xr.DataTree) -> float:
    """``r_eff`` of PSIS: the mean ESS of the sampled variables over the number of draws
    (``arviz_stats.loo``'s own rule, without the derived variables); 1 for one chain."""
    post = tree["posterior"].to_dataset()
    n = post.sizes["chain"] * post.sizes["draw"]
    if post.sizes["chain"] == 1:
        return 1.0
    sampled = post[[v for v in post.data_vars if v not in DERIVED_VARIABLES]]
    ess = sampled.azstats.ess(method="mean")
    values = np.concatenate([np.ravel(ess[v].to_numpy()) for v in ess.data_vars])
    return float(np.nanmean(values) / n)


def _loo(log_lik: xr.DataArray, reff: float) -> ELPDDataLOO:
    """``arviz_stats.loo`` of a log-likelihood array, pointwise; its warnings about k-hat
    are left out (the comparison reports k-hat itself)."""
    tree = xr.DataTree.from_dict({"log_likelihood": log_lik.to_dataset(name=_VAR)})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        return arviz_stats.loo(tree, pointwise=True, var_name=_VAR, reff=reff)


def loo_observations(tree: xr.DataTree, reff: float | None = None) -> ELPDDataLOO:
    """PSIS-LOO over a fit's observations (``arviz_stats.loo``, pointwise).

    Parameters
    ----------
    tree : xarray.DataTree
        A fit's posterior tree with its ``log_likelihood`` group.
    reff : float, optional
        Relative efficiency of the draws (default: :func:`relative_efficiency`).
    """
    _check_log_likelihood(tree, "the tree")
    reff = relative_efficiency(tree) if reff is None else reff
    ll = tree["log_likelihood"][_VAR].transpose("chain", "draw", "observation")
    return _loo(ll.astype(np.float64), reff)


def loo_families(tree: xr.DataTree, reff: float | None = None) -> ELPDDataLOO:
    """Leave-one-family-out PSIS: ``arviz_stats.loo`` of :func:`family_log_likelihood`
    (pointwise over the ``family`` dim, with each family's Pareto k-hat)."""
    _check_log_likelihood(tree, "the tree")
    reff = relative_efficiency(tree) if reff is None else reff
    return _loo(family_log_likelihood(tree), reff)


def khat_counts(pareto_k: xr.DataArray | np.ndarray) -> dict[str, int]:
    """Counts of k-hat values in each of the :data:`KHAT_BINS`."""
    k = np.ravel(np.asarray(pareto_k, dtype=float))
    return {name: int(np.count_nonzero((k > lo) & (k <= hi)))
            for name, (lo, hi) in KHAT_BINS.items()}


# ----------------------------------------------------------------------------- exact refits


@dataclass(frozen=True)
class _FamilyRefit:
    """One exact leave-one-family-out refit: a task of :func:`sloth.executor.map_tasks`
    (data only, so that it travels to a Dask worker)."""

    #: Constructor keywords of the fit, and those the refit changes.
    params: dict[str, Any]
    overrides: dict[str, Any]
    table: ScoreTable
    family: str
    seed: int


@dataclass(frozen=True)
class _RefitResult:
    """What a refit sends back: the exact ELPD (``None`` if the refit failed, ``error``
    says why), the refit's convergence problems (``None`` when it converged) and seconds."""

    elpd: float | None
    problems: str | None
    error: str | None
    seconds: float


def _exact_family_elpd(refit: _FamilyRefit, *,
                       programs: ProgramCache | None = None) -> _RefitResult:
    """``log p(y_f | y_-f)``: the fit refitted without ``refit.family`` (the same number of
    skills and anchors), the family's scores scored as a new family's under the refit."""
    start = time.perf_counter()
    table = refit.table
    own = np.asarray(table.family) == refit.family
    model = SlothModel(**refit.params).set_params(**refit.overrides)
    try:
        with warnings.catch_warnings():  # said once by the caller, naming the family
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(table.subset(models=~own), programs=programs)
    except SlothError as exc:
        return _RefitResult(None, None, " ".join(str(exc).split()),
                            time.perf_counter() - start)
    # the sampled model's likelihood, as in the log_likelihood group: no family effects
    posterior = Posterior(model.idata_)
    held_out = table.subset(models=own).to_frame()
    log_lik = new_family_log_likelihood(posterior, posterior.standardize(held_out),
                                        posterior.scores_of(held_out), seed=refit.seed)
    report = model.convergence_
    problems = report.describe_problems() if report is not None and report.problems else None
    return _RefitResult(float(logsumexp(log_lik) - math.log(len(log_lik))), problems, None,
                        time.perf_counter() - start)


def _with_exact(lofo: ELPDDataLOO, exact: Mapping[str, float], lpd: xr.DataArray
                ) -> ELPDDataLOO:
    """``lofo`` with the exact ELPD of some families (k-hat 0, effective parameters
    ``lpd - elpd``), its totals and standard error recomputed as ``arviz_stats.reloo``
    does."""
    out = deepcopy(lofo)
    if not exact:
        return out
    if out.p_loo_i is None:
        out.p_loo_i = lpd - out.elpd_i
    for family, value in exact.items():
        out.elpd_i.loc[{"family": family}] = value
        out.pareto_k.loc[{"family": family}] = 0.0
        out.p_loo_i.loc[{"family": family}] = float(lpd.sel(family=family)) - value
    n = out.elpd_i.size
    out.elpd = float(np.sum(out.elpd_i.to_numpy()))
    out.se = float(np.sqrt(n * np.var(out.elpd_i.to_numpy(), ddof=1))) if n > 1 else 0.0
    out.p = float(np.sum(out.p_loo_i.to_numpy()))
    out.warning = bool(np.any(out.pareto_k.to_numpy() > out.good_k))
    return out


def fit_elpd(
    fit: FitLike,
    *,
    name: str = "fit",
    refit_families: bool | Sequence[str] = False,
    khat_threshold: float = KHAT_THRESHOLD,
    refit_params: Mapping[str, Any] | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    executor: Executor | None = None,
) -> FitELPD:
    """PSIS-LOO and leave-one-family-out ELPD of one fit.

    Parameters
    ----------
    fit : SlothModel, DataTree or path
        A fitted model, its posterior tree (:attr:`sloth.SlothModel.idata_`) or a posterior
        file, with its pointwise log-likelihood.
    name : str
        How messages name the fit.
    refit_families : bool or sequence of str, default False
        Replace the leave-one-family-out PSIS estimate by the exact value (one refit per
        family, with the fit's settings, number of skills and anchors; see the module doc):
        ``True`` for each family with k-hat above ``khat_threshold``, names for those
        families.
    khat_threshold : float, default :data:`~sloth.conditioning.KHAT_THRESHOLD`
    refit_params : mapping, optional
        Constructor keywords changed for the refits (e.g. ``{"num_samples": 1000}``).
    seed : int
        Seed of the importance sampling of the exact values (``seed + i`` for the i-th
        family refitted, whatever order the refits finish in).
    log : callable, optional
        Receives a line per refit (progress).
    executor : Executor, optional
        Where the refits run (:mod:`sloth.executor`; default: in this process, one after
        another, sharing compiled programs). On a Dask cluster they run at once, with the
        same values.

    Returns
    -------
    FitELPD

    Raises
    ------
    DataValidationError
        The fit has no pointwise log-likelihood.
    """
    tree, model = _tree_and_model(fit, name)
    _check_log_likelihood(tree, name)
    return _fit_elpd(tree, model, name=name, refit_families=refit_families,
                     khat_threshold=khat_threshold, refit_params=refit_params, seed=seed,
                     log=log, executor=executor)


def _fit_elpd(tree: xr.DataTree, model: SlothModel | None, *, name: str,
              refit_families: bool | Sequence[str], khat_threshold: float,
              refit_params: Mapping[str, Any] | None, seed: int,
              log: Callable[[str], None] | None,
              executor: Executor | None = None) -> FitELPD:
    """:func:`fit_elpd` of a tree with its log-likelihood (``model``: the fit behind it, for
    the refits; built from the tree when needed)."""
    reff = relative_efficiency(tree)
    loo = loo_observations(tree, reff)
    family_ll = family_log_likelihood(tree)
    lofo = _loo(family_ll, reff)
    fam_obs = observations(tree).groupby(FAMILY, sort=False)[MODEL].nunique()
    khat = lofo.pareto_k.to_numpy()
    families = pd.DataFrame({
        "family": family_ll["family"].to_numpy().astype(str),
        "n_models": fam_obs.reindex(family_ll["family"].to_numpy()).to_numpy(),
        "n_observations": family_ll["n_observations"].to_numpy(),
        "khat": khat,
        "elpd_psis": lofo.elpd_i.to_numpy(),
    })
    families["elpd"] = families["elpd_psis"]
    families["method"] = "psis"
    families["refit_seconds"] = np.nan
    families["refit_converged"] = pd.Series([None] * len(families), dtype=object)
    exact: dict[str, float] = {}
    if isinstance(refit_families, str):
        refit_families = [refit_families]
    if isinstance(refit_families, bool):
        flagged = families.index[families["khat"] > khat_threshold] if refit_families else []
    else:
        unknown = sorted(set(refit_families) - set(families["family"]))
        if unknown:
            raise DataValidationError(
                f"refit_families names {unknown}, which are not families of fit {name!r} "
                f"(it has {list(families['family'])})")
        flagged = families.index[families["family"].isin(list(refit_families))]
    if len(flagged):
        if model is None:
            model = SlothModel.from_datatree(tree, source=f"fit {name!r}")
        overrides = {"n_skills": model.n_skills_, "anchors": list(model.anchors_),
                     **dict(refit_params or {})}
        refits = [_FamilyRefit(model.get_params(), overrides, model.table_,
                               str(families.at[row, "family"]), seed + i)
                  for i, row in enumerate(flagged, start=1)]
        for i, (row, refit) in enumerate(zip(flagged, refits, strict=True), start=1):
            if log is not None:
                log(f"{name}: refitting without family {refit.family!r} ({i}/{len(flagged)}, "
                    f"k-hat {families.at[row, 'khat']:.2f})")

        def record(index: int, result: _RefitResult) -> None:
            row, family = flagged[index], refits[index].family
            if result.error is not None:
                families.at[row, "method"] = f"psis (refit failed: {result.error})"
                return
            if result.problems is not None:
                issue_warning(
                    f"the refit without family {family!r} did not converge cleanly: "
                    + result.problems + "; its exact leave-one-family-out ELPD is uncertain "
                    "(refit with more warm-up, refit_params={'num_warmup': ...})",
                    ConvergenceWarning)
            exact[family] = result.elpd
            families.at[row, "elpd"] = result.elpd
            families.at[row, "method"] = "refit"
            families.at[row, "refit_seconds"] = result.seconds
            families.at[row, "refit_converged"] = result.problems is None

        # in process the refits share compiled programs; a cache travels to a worker empty
        map_tasks(partial(_exact_family_elpd, programs=ProgramCache()), refits,
                  executor=executor, on_result=record)
    lpd = xr.DataArray(logsumexp(family_ll.to_numpy(), axis=(0, 1))
                       - math.log(family_ll.sizes["chain"] * family_ll.sizes["draw"]),
                       dims=("family",), coords={"family": family_ll["family"].to_numpy()})
    return FitELPD(name, loo, _with_exact(lofo, exact, lpd), families)


# ----------------------------------------------------------------------------- comparison


def default_names(fits: Sequence[FitLike]) -> list[str]:
    """Names of fits in a table: the files' names without suffix (their paths where two
    names clash), ``fit_1, fit_2, ...`` for fits that are not files."""
    fits = list(fits)
    names = [os.path.splitext(os.path.basename(os.fspath(f)))[0]
             if isinstance(f, str | os.PathLike) else f"fit_{i + 1}" for i, f in enumerate(fits)]
    if len(set(names)) < len(names):
        names = [os.fspath(f) if isinstance(f, str | os.PathLike) else n
                 for f, n in zip(fits, names, strict=True)]
    if len(set(names)) < len(names):
        names = [f"{n} ({i + 1})" for i, n in enumerate(names)]
    return names


def _same_data(reference: tuple[str, pd.DataFrame], other: tuple[str, pd.DataFrame]
               ) -> np.ndarray:
    """Positions in ``other``'s observations of ``reference``'s, in its order (the two fits'
    pointwise values are then compared entry by entry); raises when the data differ."""
    (ref_name, ref), (name, obs) = reference, other
    ref_keys = pd.MultiIndex.from_frame(ref[[MODEL, "benchmark"]])
    keys = pd.MultiIndex.from_frame(obs[[MODEL, "benchmark"]])
    problem = None
    if len(keys) != len(ref_keys) or not ref_keys.isin(keys).all():
        only_ref = ref_keys.difference(keys)
        only = keys.difference(ref_keys)
        examples = [f"{m}/{b}" for m, b in [*only_ref[:2], *only[:2]]]
        problem = (f"{len(ref_keys)} and {len(keys)} observed scores, {len(only_ref)} only "
                   f"in the first and {len(only)} only in the second (e.g. "
                   f"{', '.join(examples)})")
    else:
        position = keys.get_indexer(ref_keys)
        aligned = obs.iloc[position].reset_index(drop=True)
        bad_score = ~np.isclose(aligned["score"].to_numpy(), ref["score"].to_numpy(),
                                rtol=0, atol=1e-9)
        bad_family = aligned[FAMILY].to_numpy() != ref[FAMILY].to_numpy()
        if bad_score.any():
            i = int(np.argmax(bad_score))
            problem = (f"{int(bad_score.sum())} scores differ (e.g. {ref.at[i, MODEL]} on "
                       f"{ref.at[i, 'benchmark']}: {ref.at[i, 'score']:.4f} and "
                       f"{aligned.at[i, 'score']:.4f})")
        elif bad_family.any():
            i = int(np.argmax(bad_family))
            problem = (f"models are in other families (e.g. {ref.at[i, MODEL]}: "
                       f"{ref.at[i, FAMILY]!r} and {aligned.at[i, FAMILY]!r})")
        else:
            return position
    raise DataValidationError(
        f"fits {ref_name!r} and {name!r} were fitted to different data: {problem}. ELPDs are "
        "comparable on the same observations only. Fix: compare fits of the same table "
        "(the same data file, benchmarks, covariates and skipped models; e.g. `sloth fit` "
        "with the same --data, --benchmarks and --skip-incomplete, changing only --skills "
        "or --link)")


def _aligned(tree: xr.DataTree, position: np.ndarray) -> xr.DataTree:
    """``tree`` with its log-likelihood's observations reordered by ``position``."""
    if np.array_equal(position, np.arange(len(position))):
        return tree
    out = tree.copy(deep=False)
    ll = tree["log_likelihood"].to_dataset().isel(observation=position)
    out["log_likelihood"] = xr.DataTree(ll.assign_coords(observation=np.arange(len(position))))
    return out


def _compare_table(elpds: Mapping[str, ELPDDataLOO], method: str) -> pd.DataFrame:
    """``arviz_stats.compare`` of precomputed ELPDs, raw numbers."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        return arviz_stats.compare(dict(elpds), method=method, round_to="none")


def _diagnosis(table: pd.DataFrame, name: str) -> str:
    """``arviz_stats.compare``'s cautions of a row (``diag_diff`` and ``diag_elpd``), joined."""
    notes = [str(table.at[name, c]) for c in ("diag_diff", "diag_elpd")
             if c in table.columns and not pd.isna(table.at[name, c]) and str(table.at[name, c])]
    return "; ".join(notes)


def compare(
    fits: Mapping[str, FitLike] | Sequence[FitLike],
    *,
    refit_families: bool | Sequence[str] = False,
    khat_threshold: float = KHAT_THRESHOLD,
    refit_params: Mapping[str, Any] | None = None,
    method: str = "stacking",
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Compare fits of the same data by PSIS-LOO and leave-one-family-out ELPD.

    Parameters
    ----------
    fits : mapping of name to fit, or sequence of fits
        Fitted models, posterior trees or posterior files, each with its pointwise
        log-likelihood (a sequence is named after the files' stems, else ``fit_1, ...``).
    refit_families : bool or sequence of str, default False
        Compute the leave-one-family-out ELPD exactly, by refitting without the family (see
        :func:`fit_elpd`), of each family with k-hat above ``khat_threshold`` (``True``) or
        of the families named: one fit per family and fit.
    khat_threshold : float, default 0.7
    refit_params : mapping, optional
        Constructor keywords changed for the refits (e.g. ``{"num_samples": 1000}``).
    method : {"stacking", "bb-pseudo-bma", "pseudo-bma"}
        How ``arviz_stats.compare`` weighs the fits (the ``weight_loo`` column).
    seed : int
        Seed of the exact values' importance sampling.
    log : callable, optional
        Receives a line per refit.
    executor : Executor, optional
        Where each fit's refits run (see :func:`fit_elpd`).

    Returns
    -------
    DataFrame
        One row per fit (index: its name), best PSIS-LOO ELPD first. Columns: ``rank_loo,
        elpd_loo, se_loo, elpd_diff_loo, dse_loo, p_loo, weight_loo`` (``arviz_stats.compare``
        over the observations: the difference and its standard error against the best
        fit), ``diag_loo`` (its cautions about the difference, e.g. ``N < 100`` or
        ``|elpd_diff| < 4``, where the normal approximation of ``dse`` is rough), the
        observations' Pareto k-hat counts ``k_good, k_ok, k_bad, k_very_bad``
        (:data:`KHAT_BINS`), ``rank_lofo, elpd_lofo, se_lofo, elpd_diff_lofo, dse_lofo,
        p_lofo, diag_lofo`` (the same over families, leave-one-family-out), ``families_khat_high``
        (families with PSIS k-hat above ``khat_threshold``), ``families_refitted``,
        ``families_unreliable`` (k-hat above it and not refitted), ``n_observations,
        n_families, n_draws``. ``attrs["families"]`` holds one record per fit and family
        (``fit`` and the columns of :attr:`FitELPD.families`), ``attrs["unreliable"]`` the
        names of the unreliable families per fit, ``attrs["khat_threshold"]`` the threshold.

    Raises
    ------
    DataValidationError
        No fit, a fit without pointwise log-likelihood, or fits of different data.
    """
    if isinstance(fits, Mapping):
        named = {str(k): v for k, v in fits.items()}
    else:
        named = dict(zip(default_names(fits), fits, strict=True))
    if not named:
        raise DataValidationError("compare needs at least one fit")
    trees = {}
    models = {}
    for name, fit in named.items():
        trees[name], models[name] = _tree_and_model(fit, name)
        _check_log_likelihood(trees[name], name)
    obs = {name: observations(tree) for name, tree in trees.items()}
    first = next(iter(named))
    for name in named:
        position = _same_data((first, obs[first]), (name, obs[name]))
        trees[name] = _aligned(trees[name], position)
    results = {
        name: _fit_elpd(trees[name], models[name], name=name, refit_families=refit_families,
                        khat_threshold=khat_threshold, refit_params=refit_params, seed=seed,
                        log=log, executor=executor)
        for name in named
    }
    loo = _compare_table({n: r.loo for n, r in results.items()}, method)
    lofo = _compare_table({n: r.lofo for n, r in results.items()}, method)
    rows = []
    for name in loo.index:
        r = results[name]
        fam = r.families
        high = fam["khat"] > khat_threshold
        tree = trees[name]
        rows.append({
            "fit": name,
            "rank_loo": int(loo.at[name, "rank"]), "elpd_loo": float(r.loo.elpd),
            "se_loo": float(r.loo.se), "elpd_diff_loo": float(loo.at[name, "elpd_diff"]),
            "dse_loo": float(loo.at[name, "dse"]), "p_loo": float(r.loo.p),
            "weight_loo": float(loo.at[name, "weight"]),
            "diag_loo": _diagnosis(loo, name),
            **khat_counts(r.loo.pareto_k),
            "rank_lofo": int(lofo.at[name, "rank"]), "elpd_lofo": float(r.lofo.elpd),
            "se_lofo": float(r.lofo.se), "elpd_diff_lofo": float(lofo.at[name, "elpd_diff"]),
            "dse_lofo": float(lofo.at[name, "dse"]), "p_lofo": float(r.lofo.p),
            "diag_lofo": _diagnosis(lofo, name),
            "families_khat_high": int(high.sum()),
            "families_refitted": int((fam["method"] == "refit").sum()),
            "families_unreliable": len(r.high_khat_families(khat_threshold)),
            "n_observations": int(r.loo.n_data_points), "n_families": len(fam),
            "n_draws": int(tree["posterior"].sizes["chain"] * tree["posterior"].sizes["draw"]),
        })
    out = pd.DataFrame(rows).set_index("fit")
    out.attrs["families"] = [{"fit": n, **rec} for n, r in results.items()
                             for rec in r.families.to_dict(orient="records")]
    out.attrs["unreliable"] = {n: r.high_khat_families(khat_threshold)
                               for n, r in results.items()}
    out.attrs["khat_threshold"] = float(khat_threshold)
    return out
