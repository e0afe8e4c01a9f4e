"""Simulation-based calibration (SBC) of the skill model's fit and forecasts.

Each simulation draws a truth from the prior of the model that is then fitted
(:func:`sloth.model.simulate.simulate_from_prior`), simulates a small leaderboard from it,
fits :class:`~sloth.estimator.SlothModel` to all of it but one held-out family, and ranks
the truth among the ``L`` posterior draws (Talts et al. 2018, arXiv 1804.06788). If the
fit is the exact posterior, each rank is uniform on ``0..L``; the ranks of many simulations
are tested against that with the 99% simultaneous band of their ECDF (Säilynoja, Bürkner &
Vehtari 2022, from :func:`arviz_stats.ecdf_utils.ecdf_pit`) and with ArviZ's uniformity
test (``pot_c``), as :func:`calibration` reports.

The ranked quantities are identified ones: with ``d`` anchors (anchor ``k`` loads on skill
``k`` alone with loading 1) the scale, sign and rotation of the skills are pinned, so the
skill slopes, the free loadings and the family scale of the draw and of the fit are on the
same footing; the anchors' loadings (1 by construction) are left out. The forecasts are those
of the held-out family's largest model (:func:`sloth.forecast.forecast_samples`):

- ``forecast_score``: its noisy score on each benchmark, the family unseen (drawn from the
  fitted population), against the posterior predictive draws; both are clipped to [0, 1]
  as a reported score is, and ties (at 0 or 1) are broken at random;
- ``forecast_mean``: its noiseless mean score, against the posterior draws of the mean;
- ``forecast_score_k1``: its noisy score with the family's smallest model observed (the
  forecast conditions on it by importance sampling, or refits where k-hat is high).

:func:`simulate_once` is one simulation as a function of its seed and settings only, so
that simulations can run in any order, resume, or go to a task executor.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.ecdf_utils import ecdf_pit

from sloth import defaults
from sloth.checks.convergence import sampler_summary
from sloth.data.table import FAMILY, MODEL, PARAMS, TOKENS, ScoreTable
from sloth.evaluation.harness import draws_below
from sloth.exceptions import IdentifiabilityError
from sloth.inference.programs import ProgramCache
from sloth.model.simulate import PriorDraw, simulate_from_prior

__all__ = [
    "FORECASTS",
    "PARAMETERS",
    "SbcSettings",
    "calibration",
    "ecdf_band",
    "rank_columns",
    "rank_pit",
    "sbc_ranks",
    "simulate_once",
]

#: Posterior variables ranked by :func:`simulate_once` (identified given the anchors).
PARAMETERS = ("skill_slope", "loading", "family_scale")

#: Forecast quantities of the held-out family ranked by :func:`simulate_once`.
FORECASTS = ("forecast_score", "forecast_mean", "forecast_score_k1")

#: Band probability of :func:`calibration`'s verdict.
BAND_PROB = 0.99

_COLUMN = re.compile(r"^(?P<name>\w+)\[(?P<label>[^\]]*)\]$")


@dataclass(frozen=True)
class SbcSettings:
    """The simulated design and the fit of each simulation of :func:`simulate_once`.

    Parameters
    ----------
    n_families : int, default 10
        Families in the fit (one more is simulated and held out).
    models_per_family : (int, int), default (3, 4)
        Inclusive range of models per family.
    n_benchmarks : int, default 6
        Benchmarks J (the first of the leaderboard's, see
        :func:`sloth.model.simulate.simulate_from_prior`).
    n_skills : int, default 1
        Skills d; anchor ``k`` is benchmark ``k``.
    link, noise : str
        Link and noise of the simulated and the fitted model (default: sloth's link and
        Student-t noise).
    n_draws : int, default 100
        Posterior draws ``L`` the truth is ranked among (every k-th draw of each chain,
        :meth:`sloth.posterior.Posterior.thinned`), so that ranks lie in ``0..L``; far fewer
        than the fit's draws, so that the kept draws are close to independent.
    fit : mapping
        Sampler keywords of :class:`~sloth.estimator.SlothModel` (default: the evaluation
        sweeps' :data:`sloth.defaults.EVALUATION_SAMPLER`, 2 chains x (300 warm-up + 500
        draws), tree depth at most 8, and one start of the exploratory MAP, which only
        initializes the chains when the anchors are given).
    """

    n_families: int = 10
    models_per_family: tuple[int, int] = (3, 4)
    n_benchmarks: int = 6
    n_skills: int = 1
    link: str = defaults.LINK
    noise: str = "student_t"
    n_draws: int = 100
    fit: Mapping[str, Any] = field(
        default_factory=lambda: {**defaults.EVALUATION_SAMPLER, "map_starts": 1})

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-able values."""
        out = asdict(self)
        out["models_per_family"] = list(self.models_per_family)
        out["fit"] = dict(self.fit)
        return out


def sbc_ranks(draws: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank of each true value among its posterior draws, ties broken at random.

    Parameters
    ----------
    draws : ndarray, shape (L, ...)
        Posterior (or posterior predictive) draws.
    truth : ndarray, shape (...)
        The values the simulation was drawn from.
    rng : numpy Generator
        Source of the tie-breaking (a truth tied with ``t`` draws takes a rank uniform among
        the ``t + 1`` places it could hold, as in a random order of equal values).

    Returns
    -------
    int ndarray, shape (...)
        Values in ``0..L``: the number of draws below the truth (plus a share of the ties).
        Uniform on ``0..L`` when the truth and the draws are exchangeable (an exact
        posterior and independent draws).
    """
    below, ties = draws_below(draws, truth, name="truth")
    return below + rng.integers(0, ties + 1)


def rank_pit(ranks: np.ndarray, n_draws: np.ndarray | int,
             rng: np.random.Generator) -> np.ndarray:
    """Ranks in ``0..L`` spread to values uniform on (0, 1) under calibration.

    ``u = (r + V) / (L + 1)`` with ``V ~ Uniform(0, 1)``: rank ``r`` of ``L + 1`` equally
    likely places becomes a uniform value within its place, so that ECDF bands and
    uniformity tests made for continuous values apply exactly.

    Parameters
    ----------
    ranks : ndarray, shape (N,)
        Ranks from :func:`sbc_ranks`; NaN where a simulation has none (it stays NaN).
    n_draws : int or ndarray of shape (N,)
        The number of draws ``L`` each rank was taken among.
    rng : numpy Generator

    Returns
    -------
    ndarray, shape (N,)
    """
    ranks = np.asarray(ranks, dtype=float)
    n_draws = np.broadcast_to(np.asarray(n_draws, dtype=float), ranks.shape)
    if np.any((ranks < 0) | (ranks > n_draws)):
        raise ValueError(f"ranks must lie in 0..n_draws; got {np.nanmin(ranks)}.."
                         f"{np.nanmax(ranks)} with n_draws {np.min(n_draws)}..{np.max(n_draws)}")
    return (ranks + rng.uniform(size=ranks.shape)) / (n_draws + 1.0)


def ecdf_band(pit: np.ndarray, *, prob: float = BAND_PROB, n_simulations: int = 2000,
              seed: int = 0) -> dict[str, Any]:
    """Whether the ECDF of ``pit`` stays within the simultaneous band of uniform values.

    The band is ArviZ's (:func:`arviz_stats.ecdf_utils.ecdf_pit`): pointwise binomial
    intervals at the evaluation points ``1/N, ..., (N-1)/N``, widened by simulation until
    the ECDF of ``N`` uniform values stays inside all of them with probability ``prob``.

    Parameters
    ----------
    pit : ndarray, shape (N,)
        Values in (0, 1) (:func:`rank_pit`).
    prob : float, default 0.99
        Simultaneous coverage of the band.
    n_simulations : int, default 2000
        Simulated uniform ECDFs that calibrate the band.
    seed : int, default 0

    Returns
    -------
    dict
        ``inside`` (bool), ``points_outside`` (evaluation points where the ECDF leaves the
        band), ``max_deviation`` (largest ``|ECDF(x) - x|``), and the band itself:
        ``x``, ``ecdf``, ``lower``, ``upper`` (ndarrays of shape (N + 1,)).
    """
    pit = np.asarray(pit, dtype=float)
    if pit.ndim != 1 or len(pit) < 2 or not np.all((pit >= 0) & (pit <= 1)):
        raise ValueError(f"pit must be a 1-d array of at least 2 values in [0, 1]; got shape "
                         f"{pit.shape} with range {np.nanmin(pit)}..{np.nanmax(pit)}")
    x, ecdf, lower, upper = ecdf_pit(pit, prob, n_simulations, rng=np.random.default_rng(seed))
    outside = (ecdf < lower) | (ecdf > upper)
    return {"inside": not bool(outside.any()), "points_outside": int(outside.sum()),
            "max_deviation": float(np.max(np.abs(ecdf - x))),
            "x": x, "ecdf": ecdf, "lower": lower, "upper": upper}


def rank_columns(frame: pd.DataFrame) -> list[str]:
    """The rank columns of a table of :func:`simulate_once` rows: ``name[label]``."""
    return [c for c in frame.columns if _COLUMN.match(str(c))]


def calibration(rows: pd.DataFrame, *, prob: float = BAND_PROB, seed: int = 0) -> pd.DataFrame:
    """Verdict per ranked quantity of an SBC run: ECDF band and uniformity test.

    Parameters
    ----------
    rows : DataFrame
        Rows of :func:`simulate_once`: ``n_draws`` and the rank columns ``name[label]``;
        rows without ranks (``status`` other than ``"ok"``) and NaN ranks are left out.
    prob : float, default 0.99
        Band probability (:func:`ecdf_band`); the test's p-value is compared with
        ``1 - prob``.
    seed : int, default 0
        Seed of the spreading of ranks (:func:`rank_pit`) and of the band.

    Returns
    -------
    DataFrame
        One row per rank column: ``quantity`` (the name), ``element`` (the label),
        ``n`` (simulations), ``inside_band``, ``points_outside``, ``max_deviation``,
        ``p_value`` (ArviZ's ``pot_c`` uniformity test), ``mean_pit`` (0.5 when unbiased;
        above: the truth tends to lie above the draws, the fit underestimates),
        ``central_90`` (share of truths within the draws' central 90%: 0.9 when the spread
        is right, lower when overconfident) and ``calibrated`` (inside the band and
        ``p_value >= 1 - prob``).
    """
    rows = rows[rows["status"] == "ok"] if "status" in rows else rows
    rng = np.random.default_rng(seed)
    out = []
    for column in rank_columns(rows):
        keep = rows[column].notna().to_numpy()
        if keep.sum() < 2:
            continue
        pit = rank_pit(rows[column].to_numpy()[keep], rows["n_draws"].to_numpy()[keep], rng)
        band = ecdf_band(pit, prob=prob, seed=seed)
        p_value = float(xr.DataArray(pit, dims=["simulation"]).azstats.uniformity_test(
            dim="simulation", method="pot_c")[0])
        match = _COLUMN.match(column)
        out.append({
            "quantity": match["name"], "element": match["label"], "n": int(keep.sum()),
            "inside_band": band["inside"], "points_outside": band["points_outside"],
            "max_deviation": band["max_deviation"], "p_value": p_value,
            "mean_pit": float(pit.mean()),
            "central_90": float(np.mean((pit > 0.05) & (pit < 0.95))),
            "calibrated": band["inside"] and p_value >= 1.0 - prob,
        })
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------- simulation


def _held_out_frame(table: ScoreTable, index: np.ndarray, scores: bool) -> pd.DataFrame:
    """Models ``index`` of ``table`` as a forecast's frame (scores clipped to [0, 1])."""
    frame = pd.DataFrame({MODEL: [table.models[i] for i in index],
                          FAMILY: [table.family[i] for i in index],
                          PARAMS: table.params[index], TOKENS: table.tokens[index]})
    if scores:
        for j, b in enumerate(table.benchmarks):
            frame[b] = np.clip(table.scores[index, j], 0.0, 1.0)
    return frame


def _parameter_ranks(posterior: Any, truth: PriorDraw, rng: np.random.Generator
                     ) -> dict[str, int]:
    """Ranks of the identified parameters, by column name ``name[label]``."""
    draws = posterior.draws(PARAMETERS)
    post = posterior.tree["posterior"]
    anchors = set(truth.anchors)
    out = {}
    for name in PARAMETERS:
        ranks = sbc_ranks(draws[name], truth.sites[name], rng)
        dims = post[name].dims[2:]
        labels = [[str(v) for v in post[dim].to_numpy()] for dim in dims]
        for position in np.ndindex(ranks.shape):
            label = [labels[k][i] for k, i in enumerate(position)]
            if name == "loading" and label[0] in anchors:
                continue  # an anchor's loadings are fixed (1 on its skill, 0 elsewhere)
            out[f"{name}[{','.join(label)}]"] = int(ranks[position])
    return out


def simulate_once(seed: int, settings: SbcSettings | None = None, *,
                  programs: ProgramCache | None = None) -> dict[str, Any]:
    """One simulation of SBC: draw a truth from the prior, fit, rank the truth.

    A function of ``seed`` and ``settings`` only (``programs`` only saves compilation):
    the simulated leaderboard (:func:`sloth.model.simulate.simulate_from_prior`, its last
    family held out), the fit (:class:`~sloth.estimator.SlothModel` with the draw's anchors,
    ``family_benchmark_effects=False`` as the NumPyro model has no such effects, and
    ``seed``) and the forecasts (seed ``seed``) are all seeded by it.

    Parameters
    ----------
    seed : int
    settings : SbcSettings, optional
    programs : ProgramCache, optional
        Compiled programs shared by the simulations of a run (their shapes agree).

    Returns
    -------
    dict
        ``seed``; ``status``: ``"ok"``, or ``"refused"`` where sloth's structural check
        refused the simulated table (``reason`` says why; such rows have no ranks: leaving
        them out keeps the others uniform, as the choice depends on the data alone);
        ``fit_seconds``, ``seconds`` (all of it), ``n_draws`` (``L``); the fit's sampler
        figures ``divergences, rhat_max, ess_bulk_min, ess_tail_min, tree_depth_hits`` and
        ``convergence_problems`` (the failing checks' names); ``k1_method`` and ``k1_khat``
        of the conditioned forecast; ``clipped_fraction`` (share of simulated scores
        outside [0, 1]); and one rank column per ranked quantity, ``name[label]``
        (:data:`PARAMETERS`, :data:`FORECASTS`; e.g. ``loading[ARC,skill_1]``,
        ``forecast_score[GSM8K]``), each in ``0..n_draws``.
    """
    from sloth.estimator import SlothModel
    from sloth.forecast import MAX_DRAWS, forecast_samples

    settings = SbcSettings() if settings is None else settings
    start = time.perf_counter()
    table, truth = simulate_from_prior(
        n_families=settings.n_families + 1, models_per_family=settings.models_per_family,
        n_benchmarks=settings.n_benchmarks, n_skills=settings.n_skills, link=settings.link,
        noise=settings.noise, held_out_families=1, seed=seed)
    held = np.array([f == table.family[-1] for f in table.family])
    row: dict[str, Any] = {
        "seed": int(seed), "status": "ok", "reason": "",
        "clipped_fraction": float(np.mean((table.scores < 0) | (table.scores > 1))),
    }
    model = SlothModel(
        settings.n_skills, anchors=truth.anchors, link=settings.link, noise=settings.noise,
        family_benchmark_effects=False, progress_bar=False, seed=seed, **settings.fit)
    with warnings.catch_warnings():
        # the fit's warnings are recorded below (convergence_problems), not printed
        warnings.simplefilter("ignore")
        try:
            model.fit(table.subset(models=np.nonzero(~held)[0]), programs=programs)
        except IdentifiabilityError as exc:
            row.update(status="refused", reason=" ".join(str(exc).split())[:300],
                       seconds=time.perf_counter() - start)
            return row
        fit_seconds = time.perf_counter() - start
        posterior = model.posterior_.thinned(settings.n_draws)
        rng = np.random.default_rng(seed)
        ranks = _parameter_ranks(posterior, truth, rng)
        index = np.nonzero(held)[0]
        smallest, largest = index[np.argmin(table.params[index])], index[np.argmax(
            table.params[index])]
        target = _held_out_frame(table, np.array([largest]), scores=False)
        observed = _held_out_frame(table, np.array([smallest]), scores=True)
        truths = {"forecast_score": np.clip(table.scores[largest], 0.0, 1.0),
                  "forecast_mean": truth.mean_score[largest],
                  "forecast_score_k1": np.clip(table.scores[largest], 0.0, 1.0)}
        k1: Any = None
        for name in FORECASTS:
            conditioned = name.endswith("_k1")
            # the conditioned forecast weighs the forecast's usual number of draws (its
            # importance weights are poor on L draws), then keeps L of its resample
            draws, records = forecast_samples(
                model, target, observed if conditioned else None,
                kind="mean" if name == "forecast_mean" else "score", seed=seed,
                max_draws=MAX_DRAWS if conditioned else settings.n_draws, on_high_khat="refit")
            draws = draws[::max(1, len(draws) // settings.n_draws)][:posterior.n_draws]
            if conditioned:
                k1 = records[0]
            for j, b in enumerate(table.benchmarks):
                ranks[f"{name}[{b}]"] = int(sbc_ranks(draws[:, 0, j], truths[name][j], rng))
    summary = model.convergence_.sampler or sampler_summary(model.idata_)
    row.update(
        fit_seconds=fit_seconds, seconds=time.perf_counter() - start,
        n_draws=posterior.n_draws, divergences=summary["divergences"],
        rhat_max=summary["rhat_max"], ess_bulk_min=summary["ess_bulk_min"],
        ess_tail_min=summary["ess_tail_min"], tree_depth_hits=summary["max_tree_depth_hits"],
        convergence_problems=" ".join(sorted(f.check for f in model.convergence_.problems)),
        k1_method=k1.method, k1_khat=k1.khat, **ranks)
    return row
