"""Robust least-squares fits of loss scaling laws, with bootstrap intervals.

The estimator of Hoffmann et al. (2022, approach 3) as corrected by Besiroglu et al. (2024):
minimize ``sum_i Huber_delta(log L_hat(N_i, D_i) - log L_i)`` (``delta = 1e-3``) over the
law's parameters with L-BFGS from every point of a grid of starts, keep the best optimum.
Here the objective is divided by ``delta`` (same minimizer, unit-scale values), all starts
are stepped together (:func:`sloth.laws.solver.multistart` on
:func:`sloth.optim.batched_lbfgs`), and the best few distinct optima are polished by a
second, tighter L-BFGS pass (all in float64). Bootstrap intervals refit the law on runs
resampled with replacement, each refit started from the best few optima of the full-data
fit.

How Farseer is made to converge reliably
----------------------------------------
Farseer's 9 parameters enter through nested exponentials, so raw-unit fits overflow and a
plain grid over 9 dimensions is both huge and mostly infeasible. The fit (1) works in
rescaled units ``n = N / 1e9``, ``d = D / 1e10``, where every parameter is of order one;
(2) starts from a continuation: Chinchilla is fitted first (5 parameters, well posed) and
mapped exactly, to first order, onto Farseer (:func:`sloth.laws.forms.chinchilla_to_farseer`);
(3) writes each of Farseer's three N-dependent log-terms ``a n^p + b`` in Box-Cox form
``f0 + c (n^p - 1) / p`` (smooth through ``p = 0``, where the raw form runs off to
``a -> +-inf``, ``b -> -+inf``: the Chinchilla runs favour that limit); (4) runs multi-start
L-BFGS from a grid of perturbations of the slope and curvature of each term around the
Chinchilla point, with box bounds on the exponents and clipped exponentials; (5) adds a
small ridge on the three curvatures (``regularize=True``; without it, fits on few runs can
end at the exponent bounds with starts split between optima); (6) uses the Huber loss on
log loss; and (7) reports how many starts reach the best optimum
(``diagnostics["n_best"]`` of ``diagnostics["n_starts"]``). Farseer's paper parameters
``a_k = c_k / p_k`` and ``b_k = f0_k - a_k`` are weakly identified when ``p_k`` is near 0
(wide intervals); its predictions and compute-optimal allocations are not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sloth.exceptions import DataValidationError
from sloth.laws.forms import LawForm, get_law
from sloth.laws.runs import validate_runs
from sloth.laws.solver import BEST_RTOL, box_bounds, make_objective, multistart
from sloth.optim import batched_lbfgs

__all__ = [
    "FORMAT",
    "LawFit",
    "fit_law",
    "fit_per_skill",
    "load_fits",
    "save_fits",
]

#: ``format`` tag of saved fit files.
FORMAT = "sloth.laws.fits"
_VERSION = 1


# ------------------------------------------------------------------------ bootstrap


def _bootstrap(form: LawForm, starts: np.ndarray, x_n, x_d, y, *, n_boot: int,
               rng: np.random.Generator, delta: float,
               pen_weight: float = 1.0) -> tuple[np.ndarray, dict[str, Any]]:
    n = len(y)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
    k = len(starts)
    weights = np.repeat(counts, k, axis=0)                       # (B K, n)
    x0 = np.tile(starts, (n_boot, 1))                            # (B K, P)
    lower, upper = box_bounds(form)
    fg = make_objective(form, x_n, x_d, y, weights, delta, pen_weight)
    res = batched_lbfgs(fg, x0, lower, upper, maxiter=1000)
    f = res.fun.reshape(n_boot, k)
    x = res.x.reshape(n_boot, k, -1)
    best = np.argmin(f, axis=1)
    draws = x[np.arange(n_boot), best]
    ok = np.isfinite(f[np.arange(n_boot), best])
    info = {"n_boot": int(n_boot), "n_failed": int((~ok).sum()),
            "starts_per_resample": int(k),
            "share_best_from_full_fit_optimum": float(np.mean(best == 0))}
    return draws[ok], info


# ----------------------------------------------------------------------------- results


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, (list, tuple)):
        return [_jsonable(u) for u in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(u) for k, u in v.items()}
    if isinstance(v, (np.floating, float)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


@dataclass
class LawFit:
    """A fitted loss scaling law.

    Attributes
    ----------
    law : str
        Registry name of the form (see :func:`sloth.laws.get_law`).
    theta : ndarray, shape (P,)
        Point estimate in the form's internal parametrization (robust fit: the best
        optimum; Bayesian fit: the posterior median, per parameter).
    draws : ndarray, shape (S, P) or None
        Bootstrap refits (``method="huber"``) or posterior draws (``method="nuts"``).
    method : str
        ``"huber"`` or ``"nuts"``.
    n_runs : int
        Runs fitted.
    skill : str or None
        Skill or domain the runs belong to.
    law_form : LawForm, optional
        The form itself, for forms not in the registry (not saved; a loaded fit looks its
        law up by name).
    settings : dict
        Options of the fit (delta, grid size, seeds, priors...).
    diagnostics : dict
        Optimizer or sampler diagnostics (starts reaching the best optimum, R-hat...).
    """

    law: str
    theta: np.ndarray
    draws: np.ndarray | None = None
    method: str = "huber"
    n_runs: int = 0
    skill: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    law_form: LawForm | None = field(default=None, repr=False, compare=False)

    @property
    def form(self) -> LawForm:
        """The law's form (the one fitted, else the registered one of that name)."""
        return self.law_form if self.law_form is not None else get_law(self.law)

    @property
    def params(self) -> dict[str, float]:
        """Reported parameters of the point estimate (e.g. ``E, A, B, alpha, beta``)."""
        return {k: float(v) for k, v in self.form.natural(self.theta).items()}

    @property
    def draw_kind(self) -> str:
        return "posterior" if self.method == "nuts" else "bootstrap"

    def param_draws(self) -> pd.DataFrame:
        """Reported parameters of every draw, shape (S, n_natural)."""
        if self.draws is None or len(self.draws) == 0:
            raise ValueError("this fit has no bootstrap or posterior draws; refit with "
                             "n_boot > 0 or with fit_law_bayes")
        return pd.DataFrame(self.form.natural(self.draws))

    def param_table(self, level: float = 0.95, *, internal: bool = False) -> pd.DataFrame:
        """Point estimates with equal-tailed intervals from the draws.

        Parameters
        ----------
        level : float
            Interval level.
        internal : bool
            Report the internal parameters ``theta`` instead of the reported ones.

        Returns
        -------
        DataFrame
            Index: parameter names; columns ``estimate``, ``lower``, ``upper``. A reported
            parameter whose interval is unbounded (the form's ``unbounded`` hook, e.g.
            Farseer's ``a_k = c_k / p_k`` when the interval of ``p_k`` contains 0) gets
            ``-inf, inf``.
        """
        form = self.form
        has_draws = self.draws is not None and len(self.draws) > 0
        q = [(1 - level) / 2, (1 + level) / 2]
        if internal:
            table = pd.Series(self.theta, index=list(form.param_names), name="estimate").to_frame()
            draws = pd.DataFrame(self.draws, columns=list(form.param_names)) if has_draws else None
        else:
            table = pd.Series(self.params, name="estimate").to_frame()
            draws = self.param_draws() if has_draws else None
        if draws is None:
            table["lower"] = np.nan
            table["upper"] = np.nan
            return table
        bounds = draws.quantile(q)
        table["lower"] = bounds.iloc[0]
        table["upper"] = bounds.iloc[1]
        if not internal and form.unbounded is not None:
            for name in form.unbounded(self.draws, level):
                table.loc[name, ["lower", "upper"]] = [-np.inf, np.inf]
        return table

    def predict(self, n: Sequence[float] | np.ndarray, d: Sequence[float] | np.ndarray, *,
                draws: bool = False) -> np.ndarray:
        """Predicted loss at ``(N, D)``.

        Parameters
        ----------
        n, d : array-like, shape (m,)
        draws : bool
            Return one prediction per draw.

        Returns
        -------
        ndarray, shape (m,), or (S, m) when ``draws``
        """
        n = np.atleast_1d(np.asarray(n, dtype=float))
        d = np.atleast_1d(np.asarray(d, dtype=float))
        if draws:
            if self.draws is None:
                raise ValueError("this fit has no draws")
            return self.form.predict(self.draws, n, d)
        return self.form.predict(self.theta, n, d)

    def summary(self, level: float = 0.95) -> str:
        """A readable summary of the fit."""
        form = self.form
        lines = [f"{self.law} law ({self.form.description})",
                 f"method: {self.method}; runs: {self.n_runs}"
                 + (f"; skill: {self.skill}" if self.skill is not None else "")]
        table = self.param_table(level)
        width = max(len(k) for k in table.index)
        lines.append(f"{'':{width}}  {'estimate':>12}  {int(level * 100)}% interval "
                     f"({self.draw_kind})")
        for name, row in table.iterrows():
            lines.append(f"{name:>{width}}  {row['estimate']:12.5g}  "
                         f"[{row['lower']:.5g}, {row['upper']:.5g}]")
        if form.unbounded is not None:
            inner = self.param_table(level, internal=True)
            lines.append(f"internal parameters (N0 = {form.n_scale:g}, D0 = {form.d_scale:g}):")
            width = max(len(k) for k in inner.index)
            for name, row in inner.iterrows():
                lines.append(f"{name:>{width}}  {row['estimate']:12.5g}  "
                             f"[{row['lower']:.5g}, {row['upper']:.5g}]")
        diag = self.diagnostics
        if "n_starts" in diag:
            lines.append(f"starts reaching the best optimum: {diag['n_best']} of "
                         f"{diag['n_starts']} (grid of {diag['n_grid']})")
        if "max_rhat" in diag:
            lines.append(f"max R-hat {diag['max_rhat']:.3f}, min ESS {diag['min_ess']:.0f}, "
                         f"divergences {diag['divergences']}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (see :func:`save_fits`)."""
        form = self.form
        table = self.param_table()
        return _jsonable({
            "law": self.law,
            "method": self.method,
            "skill": self.skill,
            "n_runs": self.n_runs,
            "param_names": list(form.param_names),
            "scales": {"N0": form.n_scale, "D0": form.d_scale},
            "theta": self.theta,
            "params": {k: {"estimate": r["estimate"], "lower": r["lower"],
                           "upper": r["upper"]} for k, r in table.iterrows()},
            "internal_params": {k: {"estimate": r["estimate"], "lower": r["lower"],
                                    "upper": r["upper"]}
                                for k, r in self.param_table(internal=True).iterrows()},
            "draw_kind": self.draw_kind,
            "draws": self.draws,
            "settings": self.settings,
            "diagnostics": self.diagnostics,
        })

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LawFit:
        form = get_law(data["law"])
        if list(data.get("param_names", form.param_names)) != list(form.param_names):
            raise DataValidationError(
                f"saved fit of {data['law']!r} has parameters {data.get('param_names')}, but "
                f"this sloth's form has {list(form.param_names)}; refit with this version")
        draws = data.get("draws")
        return cls(law=form.name, theta=np.asarray(data["theta"], dtype=float),
                   draws=None if draws is None else np.asarray(draws, dtype=float),
                   method=data.get("method", "huber"), n_runs=int(data.get("n_runs", 0)),
                   skill=data.get("skill"), settings=dict(data.get("settings", {})),
                   diagnostics=dict(data.get("diagnostics", {})))

    def save(self, path: str | PathLike[str]) -> Path:
        """Write this fit to a JSON file (see :func:`save_fits`)."""
        return save_fits([self], path)

    @classmethod
    def load(cls, path: str | PathLike[str]) -> LawFit:
        """Read a file holding exactly one fit."""
        fits = load_fits(path)
        if len(fits) != 1:
            raise DataValidationError(
                f"{str(path)!r} holds {len(fits)} fits ({', '.join(fits)}); use load_fits")
        return next(iter(fits.values()))


def save_fits(fits: Sequence[LawFit] | Mapping[str, LawFit], path: str | PathLike[str]) -> Path:
    """Write fits to a JSON file: ``{"format", "version", "fits": [fit.to_dict(), ...]}``.

    Everything is plain JSON (no pickle): law name, internal and reported parameters with
    intervals, the bootstrap or posterior draws, the settings and diagnostics.
    """
    items = list(fits.values()) if isinstance(fits, Mapping) else list(fits)
    path = Path(path)
    payload = {"format": FORMAT, "version": _VERSION, "fits": [f.to_dict() for f in items]}
    path.write_text(json.dumps(payload, indent=1, allow_nan=False))
    return path


def load_fits(path: str | PathLike[str]) -> dict[str, LawFit]:
    """Read fits written by :func:`save_fits`, keyed by skill (or law name without skill)."""
    path = Path(path)
    if not path.is_file():
        from sloth.exceptions import DataNotFoundError

        raise DataNotFoundError(f"fit file {str(path)!r} does not exist; write one with "
                                "'sloth laws fit RUNS.csv --out FILE'")
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataValidationError(f"{str(path)!r} is not JSON ({err}); give a file written "
                                  "by 'sloth laws fit --out'") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataValidationError(f"{str(path)!r} is not a sloth laws fit file (no "
                                  f"'format': {FORMAT!r}); write one with 'sloth laws fit'")
    out: dict[str, LawFit] = {}
    for item in payload["fits"]:
        fit = LawFit.from_dict(item)
        out[fit.skill if fit.skill is not None else fit.law] = fit
    return out


# ----------------------------------------------------------------------------- fitting


def fit_law(runs: pd.DataFrame, law: str | LawForm = "chinchilla", *, delta: float = 1e-3,
            n_boot: int = 200, max_starts: int | None = 512, starts: np.ndarray | None = None,
            boot_starts: int = 3, level: float = 0.95, seed: int = 0,
            skill: str | None = None, regularize: bool = True) -> LawFit:
    """Robust least-squares fit of a loss law, with bootstrap intervals.

    Parameters
    ----------
    runs : DataFrame, n rows
        Runs with ``N``, ``D`` (or ``C``) and ``loss`` (see :func:`validate_runs`).
    law : str or LawForm
        ``"chinchilla"``, ``"farseer"`` or another registered form.
    delta : float
        Huber threshold on log-loss residuals (1e-3 as in Hoffmann et al.).
    n_boot : int
        Bootstrap resamples (0: none).
    max_starts : int or None
        Run L-BFGS from the ``max_starts`` grid points of lowest initial objective (``None``:
        from every grid point; the Chinchilla grid has 4500).
    starts : ndarray, shape (S, P), optional
        Starting points replacing the form's grid.
    boot_starts : int
        Starts per bootstrap refit: the full-data optimum and the next best distinct optima.
    level : float
        Interval level stored in the summary (intervals can be recomputed at any level).
    seed : int
        Seed of the bootstrap.
    skill : str, optional
        Skill label stored in the fit.
    regularize : bool
        Add the form's penalty to the objective (Farseer: a ridge of weight
        ``FARSEER_RIDGE = 0.1`` on its three curvature exponents; Chinchilla has none).

    Returns
    -------
    LawFit
        ``method="huber"``; ``diagnostics`` holds ``n_grid``, ``n_starts`` (starts run),
        ``n_best`` (starts within a relative 1e-6 of the best objective), ``objective``.
    """
    form = get_law(law)
    pen_weight = 1.0 if regularize else 0.0
    runs = validate_runs(runs, min_runs=form.n_params + 1)
    x_n, x_d = form.inputs(runs["N"].to_numpy(), runs["D"].to_numpy())
    y = np.log(runs["loss"].to_numpy())
    grid = form.start_grid(x_n, x_d, y) if starts is None else np.atleast_2d(starts)
    if grid.shape[1] != form.n_params:
        raise DataValidationError(f"starts have {grid.shape[1]} columns; the {form.name} law "
                                  f"has {form.n_params} parameters {form.param_names}")
    ms = multistart(form, grid, x_n, x_d, y, delta=delta, max_starts=max_starts,
                    pen_weight=pen_weight)
    diagnostics: dict[str, Any] = {"objective": ms.fun, "n_grid": ms.n_grid,
                                   "n_starts": ms.n_starts, "n_best": ms.n_best,
                                   "best_rtol": BEST_RTOL}
    draws = None
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        draws, info = _bootstrap(form, ms.distinct[:boot_starts], x_n, x_d, y,
                                 n_boot=n_boot, rng=rng, delta=delta, pen_weight=pen_weight)
        diagnostics["bootstrap"] = info
    settings = {"delta": delta, "n_boot": n_boot, "max_starts": max_starts,
                "boot_starts": boot_starts, "level": level, "seed": seed,
                "regularize": bool(regularize and form.penalty is not None),
                "objective": "sum Huber_delta(log pred - log loss) / delta"}
    return LawFit(law=form.name, theta=ms.theta, draws=draws, method="huber",
                  n_runs=len(runs), skill=skill, settings=settings, diagnostics=diagnostics,
                  law_form=form)


def fit_per_skill(runs: pd.DataFrame, law: str | LawForm = "chinchilla", *,
                  skill_column: str = "skill", seed: int = 0,
                  **kwargs: Any) -> dict[str, LawFit]:
    """Fit one law per skill or data domain.

    Parameters
    ----------
    runs : DataFrame
        Runs with a skill column.
    skill_column : str
        Column naming the skill of each run.
    **kwargs
        Passed to :func:`fit_law`.

    Returns
    -------
    dict of str to LawFit
        One fit per skill, in order of first appearance.
    """
    form = get_law(law)
    checked = validate_runs(runs, skill_column=skill_column, min_runs=form.n_params + 1)
    fits = {}
    for i, (name, part) in enumerate(checked.groupby("skill", sort=False)):
        fits[str(name)] = fit_law(part.drop(columns="skill"), form, seed=seed + 1000 * i,
                                  skill=str(name), **kwargs)
    return fits
