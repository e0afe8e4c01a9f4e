"""Predictive checks of a fit: does the model reproduce its data, and do its priors put their
mass on plausible scores?

- the **posterior predictive check** draws replicated scores of every observed cell from the
  skill model itself (NumPyro's ``Predictive`` with the posterior's sample sites,
  :func:`sloth.inference.predictive.predictive_scores`) and compares them with the observed
  scores, per benchmark: coverage of the central 50 and 90% intervals and posterior
  predictive p-values of the benchmark's mean and standard deviation across models
  (:func:`posterior_predictive_summary`);
- the **prior predictive check** draws the same cells with every parameter from its prior
  (:func:`prior_predictive_summary`): the share of scores that are possible at all (in
  [0, 1]), above the benchmark's guessing floor, piled up at the floor or at a perfect score,
  and inside the range the benchmark's observed scores span.

Both are of the *sampled* model, the one :mod:`sloth.comparison` scores: the
family-by-benchmark effects, estimated after sampling, are not part of them (the predictions
of :meth:`sloth.SlothModel.predict` carry them). :func:`check_predictive` runs both and
returns a :class:`PredictiveReport` with the two groups (``posterior_predictive`` and
``prior_predictive``, dims ``chain, draw, model, benchmark`` like ``observed_data``, ``nan``
where a score is unobserved), the tables and the findings; ``sloth diagnose --predictive``
prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from sloth.checks.findings import Finding, Findings, jsonable
from sloth.evaluation.harness import pit_from_draws
from sloth.exceptions import DataValidationError
from sloth.inference.predictive import predictive_scores
from sloth.posterior.api import Posterior, fit_structure
from sloth.posterior.fileformat import tree_of

__all__ = [
    "PREDICTIVE_CHECKS",
    "PredictiveReport",
    "PredictiveThresholds",
    "check_predictive",
    "posterior_predictive",
    "posterior_predictive_summary",
    "prior_predictive",
    "prior_predictive_summary",
    "with_predictive",
]

#: The checks of :func:`check_predictive`, in report order.
PREDICTIVE_CHECKS = ("posterior_predictive", "prior_predictive")

#: Half-width, on the score scale, of the bands at the guessing floor and at a perfect score
#: where :func:`prior_predictive_summary` counts mass piled up against the link's bounds.
BOUND_BAND = 0.02


@dataclass(frozen=True)
class PredictiveThresholds:
    """Limits of the predictive checks (:func:`check_predictive`).

    Parameters
    ----------
    alpha : float, default 0.01
        A benchmark fails the posterior predictive check when its 90% intervals cover fewer
        of its observed scores than a Binomial(n, 0.9) count does with probability
        ``alpha``, or when the posterior predictive p-value of its mean or standard
        deviation lies outside ``[alpha / 2, 1 - alpha / 2]``.
    min_valid : float, default 0.9
        Smallest share of a benchmark's prior predictive scores that must be possible
        scores (in [0, 1]).
    max_at_bounds : float, default 0.25
        Largest share of a benchmark's prior predictive scores piled up within
        :data:`BOUND_BAND` of its floor or of 1, several times the 4 to 8% that a flat
        prior over [floor, 1] puts there: a prior whose link saturates for that many draws
        says that scores are mostly at chance or perfect.
    """

    alpha: float = 0.01
    min_valid: float = 0.9
    max_at_bounds: float = 0.25


# ----------------------------------------------------------------------------- draws


def _grid(tree: xr.DataTree, cells: np.ndarray, lead: dict[str, np.ndarray]) -> xr.Dataset:
    """Cell draws (..., m) laid out as ``scores`` (*lead, model, benchmark) like
    ``observed_data``, ``nan`` where unobserved."""
    observed = tree["observed_data"]["scores"]
    rows, cols = np.nonzero(~np.isnan(observed.to_numpy()))
    values = np.full((*cells.shape[:-1], *observed.shape), np.nan)
    values[..., rows, cols] = cells
    coords = {**lead, "model": observed["model"].to_numpy(),
              "benchmark": observed["benchmark"].to_numpy()}
    return xr.Dataset({"scores": ((*lead, "model", "benchmark"), values)}, coords=coords)


def posterior_predictive(fitted: Any, *, max_draws: int | None = 1000, seed: int = 0
                         ) -> xr.Dataset:
    """Replicated scores of the fit's observed cells, one per posterior draw.

    Draws from the skill model with ``scores=None`` and the posterior's sample sites
    (NumPyro's ``Predictive``, :func:`sloth.inference.predictive.predictive_scores`).

    Parameters
    ----------
    fitted : SlothModel, xarray.DataTree or path
        A fit, its ``idata_`` or a posterior file.
    max_draws : int or None, default 1000
        Thin the posterior to at most this many draws (every k-th draw of each chain;
        ``None``: all).
    seed : int, default 0
        Seed of the predictive noise.

    Returns
    -------
    xarray.Dataset
        ``scores`` (chain, draw, model, benchmark), ``nan`` where ``observed_data`` is.
    """
    tree = tree_of(fitted, "check_predictive")[0]
    posterior = Posterior(tree).thinned(max_draws)
    structure = fit_structure(tree)
    cells = predictive_scores(posterior.fit_arrays(), structure,
                              samples=posterior.sample_sites(structure), seed=seed)
    post = posterior.tree["posterior"]
    return _grid(tree, cells, {"chain": post["chain"].to_numpy(),
                               "draw": post["draw"].to_numpy()})


def prior_predictive(fitted: Any, *, num_draws: int = 1000, seed: int = 0) -> xr.Dataset:
    """Scores of the fit's observed cells drawn with every parameter from its prior.

    The design (covariates, families, floors, item counts) and the anchors are the fit's;
    nothing is conditioned on the scores.

    Parameters
    ----------
    fitted : SlothModel, xarray.DataTree or path
    num_draws : int, default 1000
    seed : int, default 0
        Seed of the PRNG key (``jax.random.PRNGKey(seed)``).

    Returns
    -------
    xarray.Dataset
        ``scores`` (chain, draw, model, benchmark) with one chain, ``nan`` where
        ``observed_data`` is.
    """
    tree = tree_of(fitted, "check_predictive")[0]
    cells = predictive_scores(Posterior(tree).fit_arrays(), fit_structure(tree),
                              num_samples=num_draws, seed=seed)
    return _grid(tree, cells[None], {"chain": np.arange(1), "draw": np.arange(num_draws)})


def with_predictive(fitted: Any, *, posterior: bool = True, prior: bool = True,
                    max_draws: int | None = 1000, prior_draws: int = 1000, seed: int = 0
                    ) -> xr.DataTree:
    """A shallow copy of the fit's tree with ``posterior_predictive`` and
    ``prior_predictive`` groups (:func:`posterior_predictive`, :func:`prior_predictive`),
    as ArviZ and arviz-plots read them.

    Parameters
    ----------
    fitted : SlothModel, xarray.DataTree or path
    posterior, prior : bool, default True
        Which groups to add.
    max_draws, prior_draws, seed
        As in :func:`posterior_predictive` and :func:`prior_predictive`.

    Returns
    -------
    xarray.DataTree
    """
    tree = tree_of(fitted, "check_predictive")[0]
    out = tree.copy(deep=False)
    if posterior:
        out["posterior_predictive"] = xr.DataTree(
            posterior_predictive(tree, max_draws=max_draws, seed=seed))
    if prior:
        out["prior_predictive"] = xr.DataTree(
            prior_predictive(tree, num_draws=prior_draws, seed=seed))
    return out


# ----------------------------------------------------------------------------- summaries


def _group(tree: xr.DataTree, group: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Draws (S, n, J) of ``group``, the observed scores (n, J) and the benchmarks."""
    if group not in tree.children:
        raise DataValidationError(
            f"the tree has no {group!r} group. Fix: add it with "
            f"sloth.checks.predictive.with_predictive(fit)")
    da = tree[group]["scores"].transpose("chain", "draw", "model", "benchmark")
    observed = tree["observed_data"]["scores"].transpose("model", "benchmark")
    draws = da.to_numpy()
    return (draws.reshape(-1, *draws.shape[2:]), observed.to_numpy(),
            [str(b) for b in observed["benchmark"].to_numpy()])


def posterior_predictive_summary(tree: xr.DataTree, *, seed: int = 0) -> pd.DataFrame:
    """Per benchmark, how the observed scores sit in their posterior predictive.

    Parameters
    ----------
    tree : xarray.DataTree
        With ``posterior_predictive`` and ``observed_data`` (:func:`with_predictive`).
    seed : int, default 0
        Seed of the PIT's tie-breaking (:func:`sloth.evaluation.harness.pit_from_draws`).

    Returns
    -------
    DataFrame, one row per benchmark (index ``benchmark``)
        ``n`` (observed scores); ``coverage50``, ``coverage90``: share of them inside the
        central 50 and 90% interval of their own cell's replicates (in-sample: a calibrated
        fit covers about the nominal share, a little more since the data are used twice;
        the shares of PIT values, :func:`sloth.evaluation.harness.pit_from_draws`, within
        0.25 and 0.45 of 1/2); ``p_mean``,
        ``p_sd``: posterior predictive p-values ``P(T(y_rep) >= T(y))`` of the benchmark's
        mean and standard deviation across its models (near 0 or 1: the replicates are
        systematically higher or lower, narrower or wider than the data).
    """
    draws, observed, benchmarks = _group(tree, "posterior_predictive")
    pit = pit_from_draws(draws, observed, seed=seed)
    rows = []
    for j, name in enumerate(benchmarks):
        seen = ~np.isnan(observed[:, j])
        y, rep, u = observed[seen, j], draws[:, seen, j], pit[seen, j]
        n = int(seen.sum())
        rows.append({
            "benchmark": name, "n": n,
            "coverage50": float(np.mean(np.abs(u - 0.5) <= 0.25)) if n else float("nan"),
            "coverage90": float(np.mean(np.abs(u - 0.5) <= 0.45)) if n else float("nan"),
            "p_mean": float(np.mean(rep.mean(axis=1) >= y.mean())) if n else float("nan"),
            "p_sd": (float(np.mean(rep.std(axis=1) >= y.std())) if n >= 2
                     else float("nan")),
        })
    return pd.DataFrame(rows).set_index("benchmark")


def prior_predictive_summary(tree: xr.DataTree) -> pd.DataFrame:
    """Per benchmark, where the prior predictive puts its scores.

    Parameters
    ----------
    tree : xarray.DataTree
        With ``prior_predictive``, ``observed_data`` and ``constant_data``
        (:func:`with_predictive`).

    Returns
    -------
    DataFrame, one row per benchmark (index ``benchmark``)
        ``floor``; ``valid``: share of the prior predictive scores that are possible scores
        (in [0, 1]); ``above_floor``: in [floor, 1]; ``at_floor``: below ``floor +``
        :data:`BOUND_BAND`; ``at_ceiling``: above ``1 -`` :data:`BOUND_BAND`;
        ``in_observed_range``: between the benchmark's lowest and highest observed score;
        ``q05``, ``median``, ``q95``, ``width90`` (``q95 - q05``); ``observed_min``,
        ``observed_max``. Shares are over every draw of every observed cell.
    """
    draws, observed, benchmarks = _group(tree, "prior_predictive")
    floors = tree["constant_data"]["floors"].to_numpy()
    rows = []
    for j, name in enumerate(benchmarks):
        seen = ~np.isnan(observed[:, j])
        y, prior = observed[seen, j], draws[:, seen, j].reshape(-1)
        low, high = (float(y.min()), float(y.max())) if y.size else (np.nan, np.nan)
        c = float(floors[j])
        q05, median, q95 = np.quantile(prior, [0.05, 0.5, 0.95]) if prior.size else [np.nan] * 3
        rows.append({
            "benchmark": name, "floor": c,
            "valid": float(np.mean((prior >= 0.0) & (prior <= 1.0))),
            "above_floor": float(np.mean((prior >= c) & (prior <= 1.0))),
            "at_floor": float(np.mean(prior < c + BOUND_BAND)),
            "at_ceiling": float(np.mean(prior > 1.0 - BOUND_BAND)),
            "in_observed_range": float(np.mean((prior >= low) & (prior <= high))),
            "q05": float(q05), "median": float(median), "q95": float(q95),
            "width90": float(q95 - q05), "observed_min": low, "observed_max": high,
        })
    return pd.DataFrame(rows).set_index("benchmark")


# ----------------------------------------------------------------------------- findings


def check_posterior_predictive(summary: pd.DataFrame, th: PredictiveThresholds
                               ) -> list[Finding]:
    """Benchmarks whose observed scores the posterior predictive does not reproduce
    (:class:`PredictiveThresholds`); a warning naming them, else ok."""
    from scipy.stats import binom

    low = {b: binom.ppf(th.alpha, int(n), 0.9) / n if n else 0.0
           for b, n in summary["n"].items()}
    extreme = lambda p: p < th.alpha / 2 or p > 1 - th.alpha / 2  # noqa: E731
    failed = {}
    for name, row in summary.iterrows():
        reasons = []
        if row["n"] and row["coverage90"] < low[name]:
            reasons.append(f"90% intervals cover {row['coverage90']:.0%}")
        for stat in ("mean", "sd"):
            if extreme(row[f"p_{stat}"]):
                reasons.append(f"p-value of the {stat} {row[f'p_{stat}']:.3f}")
        if reasons:
            failed[str(name)] = reasons
    details = {"alpha": th.alpha, "failed": failed,
               "benchmarks": summary.reset_index().to_dict(orient="records")}
    cover = summary["coverage90"]
    overall = float(np.average(cover, weights=summary["n"])) if summary["n"].sum() else np.nan
    if not failed:
        return [Finding("posterior_predictive", "ok",
                        f"the posterior predictive reproduces every benchmark: 90% intervals "
                        f"cover {overall:.0%} of the observed scores ({cover.min():.0%} to "
                        f"{cover.max():.0%} per benchmark), no extreme p-value of the mean "
                        f"or sd", details)]
    parts = "; ".join(f"{b} ({', '.join(r)})" for b, r in failed.items())
    return [Finding(
        "posterior_predictive", "warning",
        f"{len(failed)} of {len(summary)} benchmarks are not reproduced by the posterior "
        f"predictive: {parts}. The model misfits them (a wrong floor, a link or noise that "
        f"does not fit, scores the skills do not explain); their predictions and intervals "
        f"are suspect. Fix: check their floors and data, or try another link or noise",
        details)]


def check_prior_predictive(summary: pd.DataFrame, th: PredictiveThresholds
                           ) -> list[Finding]:
    """Benchmarks whose prior predictive puts too much mass on impossible scores or on the
    link's bounds (:class:`PredictiveThresholds`); a warning naming them, else ok."""
    invalid = summary.index[summary["valid"] < th.min_valid].tolist()
    bounds = summary["at_floor"] + summary["at_ceiling"]
    piled = summary.index[bounds > th.max_at_bounds].tolist()
    details = {"min_valid": th.min_valid, "max_at_bounds": th.max_at_bounds,
               "invalid": invalid, "at_bounds": piled,
               "benchmarks": summary.reset_index().to_dict(orient="records")}
    headline = (f"the prior predictive puts {summary['valid'].min():.0%} to "
                f"{summary['valid'].max():.0%} of its scores in [0, 1], "
                f"{summary['in_observed_range'].min():.0%} to "
                f"{summary['in_observed_range'].max():.0%} inside the observed range, "
                f"{bounds.min():.0%} to {bounds.max():.0%} within {BOUND_BAND} of the floor "
                f"or of 1")
    if not invalid and not piled:
        return [Finding("prior_predictive", "ok", headline, details)]
    problems = []
    if piled:
        problems.append(f"over {th.max_at_bounds:.0%} of the scores are piled within "
                        f"{BOUND_BAND} of the floor or of 1 on {', '.join(piled)} (wide priors "
                        f"on the logit scale saturate the link)")
    if invalid:
        problems.append(f"under {th.min_valid:.0%} are possible scores on {', '.join(invalid)} "
                        f"(the unbounded noise around means at the floor or at 1)")
    return [Finding(
        "prior_predictive", "warning",
        f"{headline}: {'; '.join(problems)}. The priors put much of their mass on implausible "
        f"scores; with many scores per benchmark the posterior contracts far from them, but "
        f"on a small table (or a new family) they show. Fix: narrower priors on the "
        f"intercepts, slopes and family spread (priors={{'intercept_scale': ..., "
        f"'skill_slope_scale': ..., 'family_scale_scale': ...}})", details)]


# ----------------------------------------------------------------------------- report


@dataclass
class PredictiveReport(Findings):
    """The predictive checks of a fit (:func:`check_predictive`).

    Attributes
    ----------
    findings : list of Finding
        ``posterior_predictive`` and ``prior_predictive`` (those that ran).
    posterior : DataFrame or None
        :func:`posterior_predictive_summary`.
    prior : DataFrame or None
        :func:`prior_predictive_summary`.
    tree : xarray.DataTree
        The fit's tree with the predictive groups (:func:`with_predictive`), for plots
        (:func:`sloth.plotting.plot_ppc`).
    settings : dict
        The draws and seed used.
    """

    findings: list[Finding]
    posterior: pd.DataFrame | None
    prior: pd.DataFrame | None
    tree: xr.DataTree
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: ``passed``, ``settings``, ``findings`` and the two tables as
        ``posterior_predictive`` and ``prior_predictive`` (benchmark -> row)."""
        def table(frame: pd.DataFrame | None) -> dict | None:
            return None if frame is None else frame.to_dict(orient="index")

        return jsonable({
            "passed": self.passed, "settings": self.settings,
            "findings": [{k: v for k, v in f.to_dict().items() if k != "details"}
                         for f in self.findings],
            "posterior_predictive": table(self.posterior),
            "prior_predictive": table(self.prior),
        })

    def format(self) -> str:
        """Readable text: the findings, then the two tables."""
        lines = ["Predictive checks (the sampled model, without family-by-benchmark effects):"]
        lines += [f.format() for f in self.findings]
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            if self.posterior is not None:
                lines += ["", f"Posterior predictive per benchmark "
                              f"({self.settings.get('posterior_draws')} draws):",
                          self.posterior.round(3).to_string()]
            if self.prior is not None:
                columns = ["floor", "valid", "above_floor", "at_floor", "at_ceiling",
                           "in_observed_range", "q05", "median", "q95"]
                lines += ["", f"Prior predictive per benchmark "
                              f"({self.settings.get('prior_draws')} draws):",
                          self.prior[columns].round(3).to_string()]
        return "\n".join(lines)


def check_predictive(
    fitted: Any,
    *,
    posterior: bool = True,
    prior: bool = True,
    max_draws: int | None = 1000,
    prior_draws: int = 1000,
    seed: int = 0,
    thresholds: PredictiveThresholds | None = None,
) -> PredictiveReport:
    """Posterior and prior predictive checks of a fit.

    Parameters
    ----------
    fitted : SlothModel, xarray.DataTree or path
        A fit, its ``idata_`` or a posterior file written by :meth:`SlothModel.save`.
    posterior, prior : bool, default True
        Which checks to run.
    max_draws : int or None, default 1000
        Posterior draws for the replicates (the posterior thinned to at most this many).
    prior_draws : int, default 1000
        Prior predictive draws.
    seed : int, default 0
        Seed of both predictive draws: the same seed gives the same report.
    thresholds : PredictiveThresholds, optional

    Returns
    -------
    PredictiveReport
    """
    th = thresholds or PredictiveThresholds()
    tree = with_predictive(fitted, posterior=posterior, prior=prior, max_draws=max_draws,
                           prior_draws=prior_draws, seed=seed)
    findings: list[Finding] = []
    post_summary = prior_summary = None
    settings: dict[str, Any] = {"seed": seed}
    if posterior:
        post_summary = posterior_predictive_summary(tree, seed=seed)
        findings += check_posterior_predictive(post_summary, th)
        pp = tree["posterior_predictive"]
        settings["posterior_draws"] = int(pp.sizes["chain"] * pp.sizes["draw"])
    if prior:
        prior_summary = prior_predictive_summary(tree)
        findings += check_prior_predictive(prior_summary, th)
        settings["prior_draws"] = int(tree["prior_predictive"].sizes["draw"])
    return PredictiveReport(findings=findings, posterior=post_summary, prior=prior_summary,
                            tree=tree, settings=settings)
