"""Interpretable skills of a fitted model: rotated loadings, names, growth, compute optima.

:func:`analyze_skills` rotates the posterior of a :class:`~sloth.estimator.SlothModel` (or of
its ``DataTree``) per draw (see :mod:`sloth.skills.rotation`) and returns a :class:`SkillAnalysis`:

- loadings with posterior means and intervals, and the correlation of the skills (across
  the fitted models, and of the family efficiencies);
- names proposed from each skill's top-loading benchmarks (:data:`BENCHMARK_THEMES`),
  overridable;
- skill levels over (N, D) for a typical family (population mean efficiency, extra
  covariates fixed, e.g. ``instruct=0``) or a fitted family;
- the compute-optimal (N, D) of each skill along ``C = 6 N D``.

Compute optimum. With ``u = log10 N`` and ``c = log10(C / 6)``, ``log10 D = c - u`` and a
skill is ``k(u) = b1 u + b2 (c - u) + b3 (u - m_N)(c - u - m_D) + const`` where ``b_p`` are
its slopes divided by the covariate scales and ``m_N, m_D`` the centres of the interaction.
It is quadratic in ``u`` with leading coefficient ``-b3``: an interior maximum exists iff
``b3 > 0``, at ``u* = (c - m_D + m_N) / 2 + (b1 - b2) / (2 b3)``. Then
``log10(D*/N*) = m_D - m_N - (b1 - b2) / b3`` does not depend on ``C``: under this model
``N*`` and ``D*`` both grow as ``C^(1/2)`` and a skill's signature is its tokens per
parameter. Draws without an interior maximum (``b3 <= 0``), or whose maximum lies outside
``ratio_bounds`` (default: the range of D/N of the fitted models, so that nothing is
extrapolated beyond the allocations the data saw), take the better end of that range and are
counted per end: the low end means the skill is parameter-hungry beyond the data, the high
end data-hungry. :meth:`SkillAnalysis.iso_flop_slope` gives the same preference as a local,
bound-free number: the change of the skill per decade of D/N at a given D/N.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import linear_sum_assignment

import sloth.data  # noqa: F401  (first: importing sloth.model.design first is circular)
from sloth.data.mapping import FLOPS_PER_PARAM_TOKEN
from sloth.exceptions import DataValidationError
from sloth.model.design import CovariateScaler
from sloth.model.maths import compute_skills
from sloth.posterior import Posterior
from sloth.posterior.fileformat import tree_of
from sloth.skills.rotation import ROTATIONS, PosteriorRotation, rotate_posterior

__all__ = [
    "BENCHMARK_THEMES",
    "SkillAnalysis",
    "analyze_skills",
    "propose_names",
]

#: Theme of each known benchmark, used to propose skill names (case-insensitive).
BENCHMARK_THEMES: dict[str, str] = {
    "GSM8K": "reasoning",
    "MATH": "reasoning",
    "MATH Lvl 5": "reasoning",
    "GPQA": "reasoning",
    "MMLU-PRO": "reasoning",
    "BBH": "reasoning",
    "MUSR": "reasoning",
    "ARC": "knowledge",
    "HellaSwag": "knowledge",
    "Winogrande": "knowledge",
    "XWinograd": "knowledge",
    "MMLU": "knowledge",
    "IFEval": "instruction following",
    "TruthfulQA": "instruction following",
    "HumanEval": "code",
    "MBPP": "code",
}



# ----------------------------------------------------------------------------- naming


def propose_names(
    loading: np.ndarray,
    benchmarks: Sequence[str],
    themes: Mapping[str, str] | None = None,
    *,
    top: int = 3,
) -> list[str]:
    """Names of skills from their top-loading benchmarks.

    Each skill's top benchmarks (at most ``top``, with loading at least half its largest)
    vote for their themes with their loadings; themes are assigned one per skill to maximize
    the total vote (Hungarian algorithm). A skill whose assigned theme got less than half of
    its best theme's vote, or none, is named after its top benchmark.

    Parameters
    ----------
    loading : array, shape (J, d)
        Posterior-mean loadings (positive = the benchmark rises with the skill).
    benchmarks : sequence of str, length J
    themes : mapping of benchmark to theme, optional
        Default :data:`BENCHMARK_THEMES`; matched case-insensitively.
    top : int

    Returns
    -------
    list of str, length d
        Distinct names.
    """
    loading = np.asarray(loading, dtype=float)
    J, d = loading.shape
    if len(benchmarks) != J:
        raise ValueError(f"{len(benchmarks)} benchmark names for {J} rows of loadings")
    lookup = {k.lower(): v for k, v in (BENCHMARK_THEMES if themes is None else themes).items()}
    theme_list = sorted(set(lookup.values()))
    votes = np.zeros((d, len(theme_list)))
    top_bench = []
    for k in range(d):
        order = np.argsort(-loading[:, k], kind="stable")
        top_bench.append(benchmarks[order[0]])
        best = loading[order[0], k]
        for j in order[:top]:
            if loading[j, k] <= 0 or loading[j, k] < 0.5 * best:
                break
            theme = lookup.get(benchmarks[j].lower())
            if theme is not None:
                votes[k, theme_list.index(theme)] += loading[j, k]
    names: list[str] = []
    assigned = dict(zip(*linear_sum_assignment(-votes), strict=True)) if theme_list else {}
    for k in range(d):
        t = assigned.get(k)
        if t is not None and votes[k, t] > 0 and votes[k, t] >= 0.5 * votes[k].max():
            names.append(theme_list[t])
        else:
            names.append(top_bench[k])
    seen: dict[str, int] = {}
    for k, name in enumerate(names):  # a benchmark fallback may repeat a theme's name
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            names[k] = f"{name} ({top_bench[k]})"
    return names


def _check_names(names: Sequence[str], d: int) -> list[str]:
    names = [str(n).strip() for n in names]
    if len(names) != d or any(not n for n in names) or len(set(names)) != d:
        raise ValueError(
            f"names={list(names)!r}: give {d} distinct, non-empty skill names, one per "
            f"skill in the order of the loadings table (e.g. names=['reasoning', ...])"
        )
    return names


# ----------------------------------------------------------------------------- analysis


def _quantiles(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r}: give an interval probability in (0, 1), e.g. 0.9")
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(draws, [a, 1.0 - a], axis=0)
    return lo, hi


@dataclass(frozen=True)
class SkillAnalysis:
    """Rotated, named skills of a fit (create with :func:`analyze_skills`).

    Attributes
    ----------
    rotation : PosteriorRotation
        Per-draw transforms and rotated loadings; ``S`` draws (chains stacked).
    names : list of str, length d
    benchmarks : list of str, length J
    covariates : list of str, length P
    families : list of str, length F
    skill_slope : ndarray, shape (S, P, d)
        Rotated slopes ``B M^T`` on the standardized covariates.
    family_efficiency : ndarray, shape (S, F, d)
        Rotated family efficiencies.
    family_cov : ndarray, shape (S, d, d)
        Rotated population covariance of family efficiencies.
    scaler : CovariateScaler
    extra : dict of str to float
        Values of the extra covariates used for skill levels (raw scale, e.g. instruct=0).
    params, tokens : ndarray, shape (n,)
        Sizes and token counts of the fitted models.
    n_chains : int
        Chains of the posterior (``S = n_chains * draws``).
    anchors : list of str
        Anchor benchmarks of the fit's frame.
    """

    rotation: PosteriorRotation
    names: list[str]
    benchmarks: list[str]
    covariates: list[str]
    families: list[str]
    skill_slope: np.ndarray
    family_efficiency: np.ndarray
    family_cov: np.ndarray
    scaler: CovariateScaler
    extra: dict[str, float]
    params: np.ndarray
    tokens: np.ndarray
    n_chains: int = 1
    anchors: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ basics
    @property
    def n_skills(self) -> int:
        """Number of skills d."""
        return self.skill_slope.shape[-1]

    @property
    def method(self) -> str:
        """Rotation method."""
        return self.rotation.method

    def rename(self, names: Sequence[str]) -> SkillAnalysis:
        """A copy with user-chosen skill names (d distinct strings, in loading order)."""
        return replace(self, names=_check_names(names, self.n_skills))

    def skill_index(self, skill: int | str) -> int:
        """Position (0..d-1) of a skill given by name or position.

        Raises
        ------
        ValueError
            No such skill.
        """
        if isinstance(skill, str):
            if skill not in self.names:
                raise ValueError(f"skill {skill!r} is not one of {self.names}")
            return self.names.index(skill)
        if not 0 <= int(skill) < self.n_skills:
            raise ValueError(f"skill index {skill} is out of range 0..{self.n_skills - 1}")
        return int(skill)

    # ------------------------------------------------------------------ tables
    def loadings_table(self, level: float = 0.9, *, wide: bool = False) -> pd.DataFrame:
        """Rotated loadings with posterior means and equal-tailed intervals.

        Parameters
        ----------
        level : float
            Interval probability.
        wide : bool
            One row per benchmark and one column per skill (posterior means) instead of the
            tidy layout.

        Returns
        -------
        DataFrame
            Tidy: ``benchmark, skill, mean, lower, upper, excludes_zero`` (J * d rows).
        """
        draws = self.rotation.loading
        mean = draws.mean(axis=0)
        if wide:
            return pd.DataFrame(mean, index=pd.Index(self.benchmarks, name="benchmark"),
                                columns=self.names)
        lo, hi = _quantiles(draws, level)
        J, d = mean.shape
        out = pd.DataFrame({
            "benchmark": np.repeat(self.benchmarks, d),
            "skill": np.tile(self.names, J),
            "mean": mean.ravel(),
            "lower": lo.ravel(),
            "upper": hi.ravel(),
        })
        out["excludes_zero"] = (out["lower"] > 0) | (out["upper"] < 0)
        out.attrs["level"] = level
        return out

    def top_benchmarks(self, n: int = 3) -> dict[str, list[str]]:
        """The ``n`` benchmarks with the largest mean loading on each skill."""
        mean = self.rotation.loading.mean(axis=0)
        return {name: [self.benchmarks[j] for j in np.argsort(-mean[:, k], kind="stable")[:n]]
                for k, name in enumerate(self.names)}

    def correlation_draws(self, kind: str = "models") -> np.ndarray:
        """Skill correlation per draw, shape (S, d, d).

        ``kind="models"``: correlation of the rotated skills across the fitted models (for an
        oblique rotation, its factor correlation; identity for varimax). ``"families"``:
        correlation of the family efficiencies in the population (skills net of size and
        tokens).
        """
        if kind == "models":
            return self.rotation.factor_corr
        if kind == "families":
            cov = self.family_cov
            sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
            return cov / (sd[..., :, None] * sd[..., None, :])
        raise ValueError(f"kind={kind!r}: choose 'models' or 'families'")

    def correlation_table(self, kind: str = "models", level: float = 0.9) -> pd.DataFrame:
        """Skill correlations (pairs ``k < l``) with posterior means and intervals.

        Returns
        -------
        DataFrame
            ``skill, other, mean, lower, upper`` (d (d - 1) / 2 rows).
        """
        draws = self.correlation_draws(kind)
        lo, hi = _quantiles(draws, level)
        mean = draws.mean(axis=0)
        rows = [
            {"skill": self.names[k], "other": self.names[m], "mean": mean[k, m],
             "lower": lo[k, m], "upper": hi[k, m]}
            for k in range(self.n_skills) for m in range(k + 1, self.n_skills)
        ]
        out = pd.DataFrame(rows, columns=["skill", "other", "mean", "lower", "upper"])
        out.attrs.update(level=level, kind=kind)
        return out

    def slopes_table(self, level: float = 0.9) -> pd.DataFrame:
        """Rotated skill slopes per standardized covariate: ``covariate, skill, mean, lower,
        upper``."""
        draws = self.skill_slope
        lo, hi = _quantiles(draws, level)
        mean = draws.mean(axis=0)
        P, d = mean.shape
        return pd.DataFrame({
            "covariate": np.repeat(self.covariates, d),
            "skill": np.tile(self.names, P),
            "mean": mean.ravel(), "lower": lo.ravel(), "upper": hi.ravel(),
        })

    # ------------------------------------------------------------------ levels
    def _covariates(self, params: np.ndarray, tokens: np.ndarray,
                    extra: Mapping[str, float] | None) -> np.ndarray:
        values = {**self.extra, **dict(extra or {})}
        unknown = sorted(set(values) - set(self.scaler.names[3:]))
        if unknown:
            raise ValueError(
                f"extra covariates {unknown} are not in the fit; it has "
                f"{list(self.scaler.names[3:])}"
            )
        params = np.asarray(params, dtype=float)
        tokens = np.asarray(tokens, dtype=float)
        if np.any(~np.isfinite(params) | (params <= 0)) or np.any(
                ~np.isfinite(tokens) | (tokens <= 0)):
            raise ValueError("params and tokens must be positive counts (e.g. 7e9, 2e12)")
        params, tokens = np.broadcast_arrays(params, tokens)
        shape = params.shape
        x = self.scaler.transform(
            params.ravel(), tokens.ravel(),
            {k: np.full(params.size, float(v)) for k, v in values.items()},
        )
        return x.reshape(*shape, -1)

    def _efficiency(self, family: str | None) -> np.ndarray:
        """Rotated efficiency per draw, shape (S, d): a fitted family's, or 0 (population)."""
        if family is None:
            return np.zeros((self.skill_slope.shape[0], self.n_skills))
        if family not in self.families:
            raise ValueError(
                f"family {family!r} is not in the fit; pass one of the fitted families or "
                f"family=None for a typical (population-mean) family"
            )
        return self.family_efficiency[:, self.families.index(family)]

    def skill_levels(
        self,
        params: np.ndarray,
        tokens: np.ndarray,
        *,
        family: str | None = None,
        extra: Mapping[str, float] | None = None,
    ) -> np.ndarray:
        """Rotated skill levels per draw at given sizes and token counts.

        Parameters
        ----------
        params, tokens : array, broadcastable to shape (n,) (or any shape ``G``)
            Absolute counts.
        family : str, optional
            A fitted family (its efficiency is added); default: a typical family of the
            population (efficiency 0).
        extra : mapping, optional
            Values of extra covariates (default: those of the analysis, e.g. instruct=0).

        Returns
        -------
        ndarray, shape (S, *G, d)
        """
        x = self._covariates(params, tokens, extra)
        flat = x.reshape(-1, x.shape[-1])
        skills = compute_skills(self._efficiency(family)[:, None, :], self.skill_slope, flat,
                                np.zeros(len(flat), dtype=int))
        return skills.reshape(skills.shape[0], *x.shape[:-1], -1)

    def level_grid(
        self,
        params_range: tuple[float, float] | None = None,
        tokens_range: tuple[float, float] | None = None,
        *,
        n: int = 40,
        family: str | None = None,
        extra: Mapping[str, float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posterior-mean skill levels on a log-spaced (N, D) grid.

        Skills are linear in the parameters, so the posterior mean is computed exactly from
        the mean slopes (no per-draw grid).

        Returns
        -------
        params : ndarray, shape (n,)
        tokens : ndarray, shape (n,)
        levels : ndarray, shape (n, n, d)
            ``levels[i, j]`` at ``tokens[i]``, ``params[j]``.
        """
        p_lo, p_hi = params_range or (self.params.min() / 2, self.params.max() * 2)
        t_lo, t_hi = tokens_range or (self.tokens.min() / 2, self.tokens.max() * 2)
        params = np.geomspace(p_lo, p_hi, n)
        tokens = np.geomspace(t_lo, t_hi, n)
        P, T = np.meshgrid(params, tokens)
        x = self._covariates(P, T, extra)
        flat = x.reshape(-1, x.shape[-1])
        levels = compute_skills(self._efficiency(family).mean(axis=0)[None],
                                self.skill_slope.mean(axis=0), flat,
                                np.zeros(len(flat), dtype=int))
        return params, tokens, levels.reshape(*x.shape[:-1], -1)

    # ------------------------------------------------------------------ compute optimum
    def _quadratic(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per draw and skill: slopes of log N, log D and their centred product on the raw
        log10 scale, each shaped (S, d)."""
        b = self.skill_slope[:, :3, :] / self.scaler.std[:3, None]
        return b[:, 0], b[:, 1], b[:, 2]

    @property
    def data_ratio_range(self) -> tuple[float, float]:
        """Smallest and largest tokens per parameter D/N among the fitted models."""
        ratio = self.tokens / self.params
        return float(ratio.min()), float(ratio.max())

    def _iso_flop_coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """Along an iso-FLOP line, as a function of ``w = log10(D/N)`` (``u = (c - w)/2``),
        a skill is ``a2 w^2 + a1 w + const(C)``; returns ``a2, a1`` shaped (S, d)."""
        b1, b2, b3 = self._quadratic()
        m_n, m_d = self.scaler.log_center
        return -b3 / 4.0, (b2 - b1 + b3 * (m_d - m_n)) / 2.0

    def iso_flop_slope(self, ratio: float = 20.0, level: float = 0.9) -> pd.DataFrame:
        """Change of each skill per decade of tokens per parameter along an iso-FLOP line.

        Positive: at this allocation the skill gains from trading parameters for tokens
        (data-hungry); negative: from the reverse (parameter-hungry). Independent of the
        budget under this model.

        Parameters
        ----------
        ratio : float
            Tokens per parameter D/N where the slope is taken (20: Chinchilla's rule).
        level : float

        Returns
        -------
        DataFrame, d rows
            ``skill, ratio, mean, lower, upper, prob_positive``.
        """
        if not ratio > 0:
            raise ValueError(f"ratio={ratio!r}: give a positive number of tokens per parameter")
        a2, a1 = self._iso_flop_coefficients()
        w = np.log10(ratio)
        slope = 2.0 * a2 * w + a1  # (S, d)
        lo, hi = _quantiles(slope, level)
        out = pd.DataFrame({
            "skill": self.names, "ratio": ratio, "mean": slope.mean(axis=0), "lower": lo,
            "upper": hi, "prob_positive": np.mean(slope > 0, axis=0),
        })
        out.attrs["level"] = level
        return out

    def optimal_draws(
        self,
        compute: float | Sequence[float] | np.ndarray,
        *,
        ratio_bounds: tuple[float, float] | None = None,
    ) -> dict[str, np.ndarray]:
        """Compute-optimal allocation of each skill per draw along ``C = 6 N D``.

        Parameters
        ----------
        compute : float or array, shape (K,)
            Training budgets in FLOPs.
        ratio_bounds : (float, float), optional
            Allowed tokens per parameter ``D/N`` (default: :attr:`data_ratio_range`); where a
            draw has no interior maximum inside them, the better end is taken.

        Returns
        -------
        dict of ndarray
            ``N_opt``, ``D_opt``, ``D_per_N`` shaped (S, K, d) and ``status`` shaped (S, d):
            0 interior maximum, -1 at the low-ratio end (parameter-hungry), +1 at the
            high-ratio end (data-hungry).
        """
        compute = np.atleast_1d(np.asarray(compute, dtype=float))
        lo, hi = (float(v) for v in (ratio_bounds or self.data_ratio_range))
        if not (np.all(compute > 0) and 0 < lo < hi):
            raise ValueError(
                f"compute={compute.tolist()} and ratio_bounds={ratio_bounds}: budgets must be "
                "positive FLOPs and the bounds 0 < low < high tokens per parameter"
            )
        w_lo, w_hi = np.log10(lo), np.log10(hi)
        a2, a1 = self._iso_flop_coefficients()
        interior = a2 < 0
        with np.errstate(divide="ignore", invalid="ignore"):
            w_star = np.where(interior, -a1 / (2.0 * np.where(interior, a2, -1.0)), np.nan)
        inside = interior & (w_star >= w_lo) & (w_star <= w_hi)

        def value(w: float) -> np.ndarray:
            return a2 * w**2 + a1 * w

        end = np.where(value(w_hi) >= value(w_lo), w_hi, w_lo)
        if np.any(interior & ~inside):  # concave with its vertex outside: nearest end
            end = np.where(interior & ~inside, np.clip(w_star, w_lo, w_hi), end)
        w = np.where(inside, w_star, end)
        status = np.where(inside, 0, np.where(w >= w_hi, 1, -1))
        c = np.log10(compute / FLOPS_PER_PARAM_TOKEN)
        u = (c[None, :, None] - w[:, None, :]) / 2.0
        return {
            "N_opt": 10.0**u,
            "D_opt": 10.0 ** (c[None, :, None] - u),
            "D_per_N": np.broadcast_to(10.0 ** w[:, None, :], u.shape).copy(),
            "status": status,
        }

    def compute_optimal(
        self,
        compute: float | Sequence[float] | np.ndarray = (1e22, 1e24),
        *,
        level: float = 0.9,
        ratio_bounds: tuple[float, float] | None = None,
    ) -> pd.DataFrame:
        """Compute-optimal N, D and tokens per parameter of each skill, with intervals.

        Parameters
        ----------
        compute : float or array, shape (K,)
            Budgets in FLOPs.
        level : float
            Interval probability (equal-tailed, over all draws).
        ratio_bounds : (float, float), optional
            See :meth:`optimal_draws` (default: the fitted models' range of D/N).

        Returns
        -------
        DataFrame, K * d rows
            ``skill, compute`` and posterior medians ``N_opt, D_opt, D_per_N`` each with
            ``_lower``/``_upper``; ``interior`` (fraction of draws with an interior maximum
            inside the bounds), ``at_params_end`` and ``at_tokens_end`` (fractions at the low
            and high tokens-per-parameter bounds).
        """
        draws = self.optimal_draws(compute, ratio_bounds=ratio_bounds)
        compute = np.atleast_1d(np.asarray(compute, dtype=float))
        rows = []
        status = draws["status"]
        for k, name in enumerate(self.names):
            for i, c in enumerate(compute):
                row: dict[str, Any] = {"skill": name, "compute": c}
                for q in ("N_opt", "D_opt", "D_per_N"):
                    v = draws[q][:, i, k]
                    lo, hi = _quantiles(v, level)
                    row[q], row[f"{q}_lower"], row[f"{q}_upper"] = np.median(v), lo, hi
                row["interior"] = float(np.mean(status[:, k] == 0))
                row["at_params_end"] = float(np.mean(status[:, k] == -1))
                row["at_tokens_end"] = float(np.mean(status[:, k] == 1))
                rows.append(row)
        out = pd.DataFrame(rows)
        out.attrs.update(level=level,
                         ratio_bounds=tuple(ratio_bounds or self.data_ratio_range))
        return out

    def ratio_comparison(self, skill: int | str, other: int | str, *,
                         ratio: float = 20.0) -> float:
        """Posterior probability that ``skill`` is more data-hungry than ``other``: its
        iso-FLOP slope (:meth:`iso_flop_slope`, per decade of D/N at ``ratio``) is larger,
        i.e. trading parameters for tokens helps it more."""
        a2, a1 = self._iso_flop_coefficients()
        slope = 2.0 * a2 * np.log10(ratio) + a1
        k, m = self.skill_index(skill), self.skill_index(other)
        return float(np.mean(slope[:, k] > slope[:, m]))

    # ------------------------------------------------------------------ export
    def to_datatree(self) -> xr.DataTree:
        """Rotated posterior (``loading``, ``skill_slope``, ``family_efficiency``,
        ``skill_corr``) with ``chain`` and ``draw`` dims, for arviz diagnostics and plots."""
        S = self.skill_slope.shape[0]
        chains = self.n_chains if S % self.n_chains == 0 else 1
        draws = S // chains

        def cd(a: np.ndarray) -> np.ndarray:
            return a.reshape(chains, draws, *a.shape[1:])

        dims = ("chain", "draw")
        ds = xr.Dataset(
            {
                "loading": ((*dims, "benchmark", "skill"), cd(self.rotation.loading)),
                "skill_slope": ((*dims, "covariate", "skill"), cd(self.skill_slope)),
                "family_efficiency": ((*dims, "family", "skill"), cd(self.family_efficiency)),
                "skill_corr": ((*dims, "skill", "skill_other"), cd(self.rotation.factor_corr)),
            },
            coords={"chain": np.arange(chains), "draw": np.arange(draws),
                    "benchmark": self.benchmarks, "skill": self.names,
                    "skill_other": self.names, "covariate": self.covariates,
                    "family": self.families},
        )
        tree = xr.DataTree.from_dict({"posterior": ds})
        tree.attrs["rotation"] = self.method
        return tree

    def convergence(self) -> pd.DataFrame:
        """R-hat and bulk ESS of the rotated, aligned posterior (arviz_stats).

        Returns
        -------
        DataFrame
            One row per variable (``loading``, ``skill_slope``, ``family_efficiency``):
            ``rhat_max``, ``ess_bulk_min`` over its elements (NaN with a single chain or
            constant elements, e.g. anchors that rotate to a constant).
        """
        import warnings

        import arviz_stats

        post = self.to_datatree()
        names = ["loading", "skill_slope", "family_efficiency"]
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            rhat = arviz_stats.rhat(post, var_names=names)
            ess = arviz_stats.ess(post, var_names=names, method="bulk")

        def finite(values: np.ndarray) -> np.ndarray:
            values = np.asarray(values, dtype=float).ravel()
            return values[np.isfinite(values)]

        rows = []
        for v in names:
            r, e = finite(rhat[v].to_numpy()), finite(ess[v].to_numpy())
            rows.append({"variable": v, "rhat_max": float(r.max()) if r.size else np.nan,
                         "ess_bulk_min": float(e.min()) if e.size else np.nan})
        return pd.DataFrame(rows)

    def to_dict(self, compute: Sequence[float] = (1e22, 1e24), level: float = 0.9
                ) -> dict[str, Any]:
        """JSON-friendly summary: names, loadings, correlations, slopes, compute optima."""
        return {
            "rotation": self.method,
            "level": level,
            "names": list(self.names),
            "anchors": list(self.anchors),
            "top_benchmarks": self.top_benchmarks(),
            "loadings": self.loadings_table(level).to_dict(orient="records"),
            "skill_correlation": self.correlation_table("models", level).to_dict(
                orient="records"),
            "family_correlation": self.correlation_table("families", level).to_dict(
                orient="records"),
            "slopes": self.slopes_table(level).to_dict(orient="records"),
            "compute_optimal": self.compute_optimal(compute, level=level).to_dict(
                orient="records"),
            "ratio_bounds": list(self.data_ratio_range),
            "iso_flop_slope": self.iso_flop_slope(level=level).to_dict(orient="records"),
            "rotation_converged": float(np.mean(self.rotation.converged)),
            "convergence": self.convergence().to_dict(orient="records"),
            "min_congruence": float(np.min(self.rotation.congruence)),
        }


# ----------------------------------------------------------------------------- entry


def _tree_of(source: Any) -> xr.DataTree:
    """The tree of a fit (:func:`sloth.posterior.fileformat.tree_of`) with what the skill
    analysis reads."""
    tree = tree_of(source, "analyze_skills")[0]
    for group in ("posterior", "constant_data"):
        if group not in tree.children:
            raise DataValidationError(
                f"the DataTree has no {group!r} group; pass a fit from SlothModel (its "
                f"idata_) or a file written by SlothModel.save"
            )
    if "scaler" not in tree.attrs:
        raise DataValidationError(
            "the DataTree has no 'scaler' attribute; it must come from SlothModel.fit or "
            "SlothModel.save"
        )
    return tree


def analyze_skills(
    source: Any,
    *,
    rotation: str = "oblimin",
    names: Sequence[str] | None = None,
    themes: Mapping[str, str] | None = None,
    extra: Mapping[str, float] | None = None,
    seed: int = 0,
    **rotation_options: Any,
) -> SkillAnalysis:
    """Rotate, align and name the skills of a fit.

    Parameters
    ----------
    source : SlothModel or xarray.DataTree
        A fitted (or loaded) model, or its ``idata_``.
    rotation : {"oblimin", "geomin", "varimax", "quartimax", "none"}
        Rotation per draw; skills are first standardized to unit variance across the fitted
        models. ``"none"`` keeps the fit's anchor frame.
    names : sequence of str, optional
        Skill names overriding the proposed ones (in the order of the rotated skills, which
        is by decreasing sum of squared loadings).
    themes : mapping, optional
        Benchmark -> theme map for proposing names (default :data:`BENCHMARK_THEMES`).
    extra : mapping, optional
        Values of the fit's extra covariates for skill levels (default 0 each, e.g.
        ``instruct=0``: a base model).
    seed : int
        Seed of the rotation's random starts.
    **rotation_options
        Passed to :func:`sloth.skills.rotation.rotate_posterior` (``gamma``, ``delta``,
        ``normalize``, ``n_starts``...).

    Returns
    -------
    SkillAnalysis
    """
    if rotation not in ROTATIONS:
        raise ValueError(
            f"rotation={rotation!r} is unknown; choose one of {sorted(ROTATIONS)}"
        )
    tree = _tree_of(source)
    posterior = Posterior(tree)
    post = tree["posterior"]
    const = tree["constant_data"]
    scaler = posterior.scaler
    p = posterior.draws(("loading", "skill_slope", "family_efficiency", "family_scale",
                         "family_corr"))
    loading, slope, efficiency = p["loading"], p["skill_slope"], p["family_efficiency"]
    n_chains = int(post.sizes["chain"])
    families = posterior.families
    skills = posterior.fitted_skills()
    centred = skills - skills.mean(axis=1, keepdims=True)
    skill_cov = np.einsum("snk,snl->skl", centred, centred) / max(skills.shape[1] - 1, 1)
    result: PosteriorRotation = rotate_posterior(loading, skill_cov, rotation, seed=seed,
                                                 **rotation_options)
    d = loading.shape[-1]
    scale = p["family_scale"]
    corr = p.get("family_corr", np.ones((len(scale), 1, 1)))
    family_cov = result.transform_covariance(scale[:, :, None] * corr * scale[:, None, :])
    benchmarks = posterior.benchmarks
    extra_values = {name: 0.0 for name in scaler.names[3:]}
    unknown = sorted(set(extra or {}) - set(extra_values))
    if unknown:
        raise ValueError(f"extra covariates {unknown} are not in the fit; it has "
                         f"{list(extra_values)}")
    extra_values.update({k: float(v) for k, v in (extra or {}).items()})
    proposed = propose_names(result.loading.mean(axis=0), benchmarks, themes)
    return SkillAnalysis(
        rotation=result,
        names=_check_names(names, d) if names is not None else proposed,
        benchmarks=benchmarks,
        covariates=[str(c) for c in post["covariate"].to_numpy()],
        families=families,
        skill_slope=result.transform_skills(slope),
        family_efficiency=result.transform_skills(efficiency),
        family_cov=family_cov,
        scaler=scaler,
        extra=extra_values,
        params=const["params"].to_numpy().astype(float),
        tokens=const["tokens"].to_numpy().astype(float),
        n_chains=n_chains,
        anchors=json.loads(tree.attrs.get("anchors", "[]")),
    )
