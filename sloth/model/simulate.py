"""Simulate leaderboards from known parameters: the ground truth of sloth's tests.

Regenerate the committed synthetic leaderboard with::

    python -m sloth.model.simulate --out data/synthetic_leaderboard.csv --seed 0
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import jax
import numpy as np
from numpyro.infer import Predictive

from sloth.data.registry import BENCHMARK_GROUPS, default_registry
from sloth.data.table import ScoreTable
from sloth.inference.programs import model_kwargs
from sloth.model import maths
from sloth.model.design import CovariateScaler, FitArrays
from sloth.model.priors import default_priors
from sloth.model.skill_model import skill_model
from sloth.model.structure import ModelStructure


@dataclass(frozen=True)
class SimulationTruth:
    """Parameters a leaderboard was simulated from.

    Shapes: skill_slope (P, d) on the covariates standardized by ``scaler``; family_efficiency
    (F, d); loading (J, d); intercept, noise_scale, inv_items (J,); skills (n, d);
    mean_score (n, J); family_benchmark_effect (F, J), the families' own deviations on the
    linear-predictor scale (zeros unless simulated).
    """

    skill_slope: np.ndarray
    family_efficiency: np.ndarray
    loading: np.ndarray
    intercept: np.ndarray
    noise_scale: np.ndarray
    noise_df: float
    inv_items: np.ndarray
    skills: np.ndarray
    mean_score: np.ndarray
    scaler: CovariateScaler
    family_benchmark_effect: np.ndarray | None = None


def _default_benchmarks(n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    registry = default_registry()
    names = list(BENCHMARK_GROUPS["all"])
    if n <= len(names):
        names = names[:n]
    else:
        names += [f"synthetic_{k:02d}" for k in range(n - len(names))]
    floors = np.array([registry.floor(b) if b in registry else 0.25 for b in names])
    items = np.array(
        [(registry.get(b).n_items or 1000) if b in registry else 1000 for b in names], dtype=float
    )
    return names, floors, items


def _draw_families(
    rng: np.random.Generator, n_families: int, models_per_family: tuple[int, int]
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Model names, families, sizes and token counts of simulated families (the design).

    Family ``famFF`` gets a token budget log-uniform in 1e11..1e13 and ``models_per_family``
    (inclusive range) sizes log-uniform in 1e8..1e11, named ``famFF-mK`` from the smallest;
    each model's tokens scatter around the budget by 0.1 in log10.

    Returns
    -------
    models, family : list of str, length n
    params, tokens : ndarray, shape (n,)
    """
    models, family, params, tokens = [], [], [], []
    for f in range(n_families):
        size = rng.integers(models_per_family[0], models_per_family[1] + 1)
        budget = 10 ** rng.uniform(11, 13)
        sizes = np.sort(10 ** rng.uniform(8, 11, size=size))
        for k, n_par in enumerate(sizes):
            models.append(f"fam{f:02d}-m{k}")
            family.append(f"fam{f:02d}")
            params.append(n_par)
            tokens.append(budget * 10 ** rng.normal(0, 0.1))
    return models, family, np.array(params), np.array(tokens)


def simulate_leaderboard(
    *,
    n_families: int = 30,
    models_per_family: tuple[int, int] = (2, 6),
    n_benchmarks: int = 12,
    n_skills: int = 3,
    benchmarks: Sequence[str] | None = None,
    floors: Sequence[float] | None = None,
    n_items: Sequence[float] | None = None,
    noise_scale: float = 0.02,
    noise_df: float = 5.0,
    missing_fraction: float = 0.1,
    family_benchmark_sd: float | Sequence[float] = 0.0,
    seed: int = 0,
) -> tuple[ScoreTable, SimulationTruth]:
    """Simulate a leaderboard of model families from the latent-skill model.

    Families get a token budget (log-uniform in 1e11..1e13) and 2..6 model sizes
    (log-uniform in 1e8..1e11); skills follow ``theta = alpha_f + B^T x`` with positive
    effects of size and tokens; each benchmark loads mainly on one skill.

    Parameters
    ----------
    n_families : int
        Number of families F.
    models_per_family : (int, int)
        Inclusive range of the number of models per family.
    n_benchmarks : int
        Number of benchmarks J (ignored when ``benchmarks`` is given). The first twelve are
        the Open LLM Leaderboard benchmarks with their registered floors.
    n_skills : int
        Number of latent skills d.
    benchmarks, floors, n_items : sequences of length J, optional
        Names, guessing floors and item counts (default: registry values).
    noise_scale : float
        Misfit scale sigma_j of every benchmark (score scale).
    noise_df : float
        Degrees of freedom of the Student-t misfit (``inf`` for Normal).
    missing_fraction : float
        Fraction of cells left unobserved at random (every model keeps one score).
    family_benchmark_sd : float or sequence of length J
        Standard deviation ``tau_j`` of each family's own deviation on each benchmark,
        ``v_fj ~ Normal(0, tau_j^2)`` added to the linear predictor (see
        :mod:`sloth.model.family_effects`); 0 (the default) leaves them out and draws nothing.
    seed : int
        Seed of the NumPy generator; the same seed gives the same leaderboard.

    Returns
    -------
    table : ScoreTable
    truth : SimulationTruth
    """
    rng = np.random.default_rng(seed)
    if benchmarks is None:
        names, default_floors, default_items = _default_benchmarks(n_benchmarks)
    else:
        names = list(benchmarks)
        default_floors = np.full(len(names), 0.25)
        default_items = np.full(len(names), 1000.0)
    J, d = len(names), n_skills
    floor_arr = np.asarray(floors if floors is not None else default_floors, dtype=float)
    items = np.asarray(n_items if n_items is not None else default_items, dtype=float)
    inv_items = np.where(items > 0, 1.0 / np.maximum(items, 1.0), 0.0)

    models, family, params_arr, tokens_arr = _draw_families(rng, n_families, models_per_family)
    scaler = CovariateScaler.fit(params_arr, tokens_arr)
    x = scaler.transform(params_arr, tokens_arr)
    family_index = np.array([int(f[3:]) for f in family])

    skill_slope = np.vstack(
        [rng.uniform(0.6, 1.2, d), rng.uniform(0.3, 0.8, d), rng.normal(0.0, 0.15, d)]
    )
    family_efficiency = rng.normal(size=(n_families, d))
    primary = np.arange(J) % d
    loading = rng.normal(0.3, 0.2, size=(J, d))
    loading[np.arange(J), primary] = rng.uniform(1.0, 1.8, J)
    intercept = rng.normal(0.0, 0.7, J)

    skills = maths.compute_skills(family_efficiency, skill_slope, x, family_index)
    eta = maths.linear_predictor(skills, loading, intercept)
    tau = np.broadcast_to(np.asarray(family_benchmark_sd, dtype=float), (J,))
    if np.any(tau < 0):
        raise ValueError(f"family_benchmark_sd={family_benchmark_sd!r} must be >= 0")
    effect = np.zeros((n_families, J))
    if np.any(tau > 0):  # nothing drawn otherwise: simulations without effects are unchanged
        effect = rng.normal(size=(n_families, J)) * tau
        eta = eta + effect[family_index]
    mean = maths.link_mean(eta, floor_arr)
    scale = maths.observation_scale(mean, noise_scale, inv_items)
    scores = maths.predictive_scores(
        mean, scale, noise_df - 1.0 if np.isfinite(noise_df) else None, rng)

    missing = rng.uniform(size=scores.shape) < missing_fraction
    keep = rng.integers(0, J, size=len(models))
    missing[np.arange(len(models)), keep] = False
    scores[missing] = np.nan

    table = ScoreTable(
        models=tuple(models),
        family=tuple(family),
        params=params_arr,
        tokens=tokens_arr,
        benchmarks=tuple(names),
        floors=floor_arr,
        scores=scores,
    )
    truth = SimulationTruth(
        skill_slope=skill_slope,
        family_efficiency=family_efficiency,
        loading=loading,
        intercept=intercept,
        noise_scale=np.full(J, noise_scale),
        noise_df=float(noise_df),
        inv_items=inv_items,
        skills=skills,
        mean_score=mean,
        scaler=scaler,
        family_benchmark_effect=effect,
    )
    return table, truth


@dataclass(frozen=True)
class PriorDraw:
    """Parameters drawn from the skill model's own prior, and the mean scores they give.

    Attributes
    ----------
    sites : dict of str to ndarray
        One draw of every sample site and deterministic of
        :func:`sloth.model.skill_model.skill_model`, without a draw axis: ``skill_slope``
        (P, d), ``family_scale`` (d,), ``family_efficiency`` (F, d), ``loading`` (J, d) and
        ``loading_free`` (J - d, d), ``intercept`` and ``noise_scale`` (J,), ``link_shape``
        and ``link_ceiling`` (J,) where the link has them, ``noise_df`` (Student-t noise),
        ``family_corr_chol`` (d, d) when d > 1, and ``scores`` (n * J,), the simulated
        scores of every model (row-major: model, then benchmark).
    structure : ModelStructure
        The anchored structure the draw came from (anchor ``k`` is benchmark ``k``; centred
        family efficiencies): the model a fit with ``anchors=anchors`` samples.
    anchors : list of str, length d
        Anchor benchmark of each skill.
    scaler : CovariateScaler
        Standardization of the covariates the parameters act on.
    mean_score : ndarray, shape (n, J)
        Mean score of every model on every benchmark.
    """

    sites: dict[str, np.ndarray]
    structure: ModelStructure
    anchors: list[str]
    scaler: CovariateScaler
    mean_score: np.ndarray


def simulate_from_prior(
    *,
    n_families: int = 10,
    models_per_family: tuple[int, int] = (3, 4),
    n_benchmarks: int = 6,
    n_skills: int = 1,
    link: str = "flexible",
    noise: str = "student_t",
    priors: Mapping[str, float] | None = None,
    held_out_families: int = 0,
    seed: int = 0,
) -> tuple[ScoreTable, PriorDraw]:
    """Simulate a leaderboard whose truth is drawn from the prior of the model that fits it.

    The parameters are one draw of :func:`sloth.model.skill_model.skill_model` with no
    scores observed (``numpyro.infer.Predictive``), and the scores are the model's own draws
    given them, so that a fit of the same model (``SlothModel`` with ``anchors``, ``link``,
    ``noise``, ``priors`` as here, ``family_benchmark_effects=False``) has the simulation's
    joint distribution as its prior: what simulation-based calibration needs
    (:mod:`sloth.evaluation.sbc`). :func:`simulate_leaderboard` instead fixes the truth by
    hand.

    Parameters
    ----------
    n_families : int
        Number of families F (those held out included).
    models_per_family : (int, int)
        Inclusive range of the number of models per family (sizes and tokens as in
        :func:`simulate_leaderboard`).
    n_benchmarks : int
        Number of benchmarks J: the first of the Open LLM Leaderboard benchmarks (floors and
        item counts from the default registry), then ``synthetic_KK`` ones (floor 0.25, no
        item count).
    n_skills : int
        Number of skills d; anchor ``k`` is benchmark ``k``.
    link : {"logistic", "richards", "ceiling", "flexible"}
    noise : {"student_t", "normal"}
    priors : mapping, optional
        Overrides of :data:`sloth.model.DEFAULT_PRIORS`.
    held_out_families : int, default 0
        The last families that a fit will not see: the covariates are standardized on the
        other families' models, as a fit to those standardizes them, so that the drawn slopes
        act on the fit's scale.
    seed : int
        Seed of the design (NumPy) and of the draw (JAX): the same seed, the same table.

    Returns
    -------
    table : ScoreTable
        Every model of every family, each scored on every benchmark. The scores are the
        model's Student-t (or Normal) draws, not clipped to [0, 1], so that they follow the
        likelihood a fit uses (``SlothModel.fit`` takes them as they are); clip them where a
        reported score is wanted (a forecast's predictive draws are clipped).
    truth : PriorDraw

    Raises
    ------
    ValueError
        If ``held_out_families`` leaves no family to fit or ``n_benchmarks <= n_skills``.
    """
    if not 0 <= held_out_families < n_families:
        raise ValueError(f"held_out_families={held_out_families!r} must be in 0..n_families-1 "
                         f"({n_families - 1}): a fit needs at least one family")
    if n_benchmarks <= n_skills:
        raise ValueError(f"n_benchmarks={n_benchmarks!r} cannot identify n_skills={n_skills!r}:"
                         f" use n_benchmarks > n_skills")
    rng = np.random.default_rng(seed)
    models, family, params, tokens = _draw_families(rng, n_families, models_per_family)
    names, floors, _ = _default_benchmarks(n_benchmarks)
    inv_items = default_registry().inv_items(names)
    family_index = np.array([int(f[3:]) for f in family])
    fitted = family_index < n_families - held_out_families
    scaler = CovariateScaler.fit(params[fitted], tokens[fitted])
    n, J = len(models), len(names)
    rows, cols = np.divmod(np.arange(n * J), J)
    arrays = FitArrays(
        covariates=scaler.transform(params, tokens), family_index=family_index,
        obs_model=rows.astype(np.int32), obs_benchmark=cols.astype(np.int32),
        scores=np.zeros(n * J), floors=floors, inv_items=inv_items)
    structure = ModelStructure(
        n_families=n_families, n_benchmarks=J, n_covariates=len(scaler.names),
        n_skills=n_skills, anchors=tuple(range(n_skills)), noise=noise,
        priors=default_priors(priors), centered=True, link=link)
    draw = Predictive(skill_model, num_samples=1)(
        jax.random.key(seed), **model_kwargs(arrays, structure, observed=False))
    sites = {k: np.asarray(v[0], dtype=float) for k, v in draw.items()}
    skills = maths.compute_skills(sites["family_efficiency"], sites["skill_slope"],
                                  arrays.covariates, family_index)
    mean = maths.link_mean(
        maths.linear_predictor(skills, sites["loading"], sites["intercept"]), floors,
        **maths.link_parameters(sites))
    table = ScoreTable(
        models=tuple(models), family=tuple(family), params=params, tokens=tokens,
        benchmarks=tuple(names), floors=floors, scores=sites["scores"].reshape(n, J))
    truth = PriorDraw(sites=sites, structure=structure, anchors=list(names[:n_skills]),
                      scaler=scaler, mean_score=mean)
    return table, truth


def main(argv: Sequence[str] | None = None) -> int:
    """Write a simulated leaderboard as CSV (model, family, params, tokens, scores)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--families", type=int, default=30, help="number of families")
    parser.add_argument("--skills", type=int, default=3, help="number of latent skills")
    args = parser.parse_args(argv)
    table, _ = simulate_leaderboard(n_families=args.families, n_skills=args.skills, seed=args.seed)
    table.to_frame().to_csv(args.out, index=False, float_format="%.6g")
    print(f"wrote {table.n_models} models, {table.n_scores} scores to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
