"""Simulated training runs with known scaling laws per skill.

The design mimics the studies of Roberts et al. (2025): one set of training runs on an
IsoFLOP grid (several model sizes at each compute budget), each evaluated on one validation
set per skill, so that every run yields one loss per skill. Losses follow a Chinchilla (or
any registered) law per skill with multiplicative log-normal noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from sloth.data.mapping import FLOPS_PER_PARAM_TOKEN, training_compute
from sloth.laws.forms import LawForm, get_law

__all__ = [
    "TWO_SKILLS",
    "chinchilla_theta",
    "isoflop_design",
    "simulate_runs",
    "simulate_two_skill_runs",
]

#: Two skills with Chinchilla laws: ``knowledge`` is parameter-hungry (``beta > alpha``,
#: ``N* ~ C^0.56``, about 10 tokens per parameter at 1e21 FLOPs) and ``code`` is
#: data-hungry (``alpha > beta``, ``N* ~ C^0.44``, about 100 tokens per parameter at 1e21).
TWO_SKILLS: dict[str, dict[str, float]] = {
    "knowledge": {"E": 1.7, "A": 400.0, "B": 4500.0, "alpha": 0.30, "beta": 0.38},
    "code": {"E": 0.8, "A": 300.0, "B": 280.0, "alpha": 0.38, "beta": 0.30},
}


def chinchilla_theta(params: Mapping[str, float]) -> np.ndarray:
    """Internal Chinchilla parameters ``(log E, log A, log B, alpha, beta)``, shape (5,)."""
    return np.array([np.log(params["E"]), np.log(params["A"]), np.log(params["B"]),
                     params["alpha"], params["beta"]], dtype=float)


def isoflop_design(budgets: Sequence[float] | np.ndarray = (1e18, 3e18, 1e19, 3e19, 1e20,
                                                             3e20, 1e21),
                   *, n_sizes: int = 9,
                   tokens_per_param: tuple[float, float] = (2.0, 500.0)) -> pd.DataFrame:
    """An IsoFLOP grid of runs: ``n_sizes`` model sizes per budget.

    Sizes are log-spaced so that tokens per parameter ``D / N`` spans ``tokens_per_param``
    at every budget (``N = sqrt(C / (6 r))``).

    Returns
    -------
    DataFrame, len(budgets) * n_sizes rows
        ``run`` (id), ``N``, ``D``, ``C``.
    """
    budgets = np.asarray(budgets, dtype=float)
    ratios = np.geomspace(tokens_per_param[1], tokens_per_param[0], n_sizes)
    c = np.repeat(budgets, n_sizes)
    r = np.tile(ratios, len(budgets))
    n = np.sqrt(c / (FLOPS_PER_PARAM_TOKEN * r))
    d = c / (FLOPS_PER_PARAM_TOKEN * n)
    return pd.DataFrame({"run": np.arange(len(c)), "N": n, "D": d, "C": c})


def simulate_runs(truth: Mapping[str, np.ndarray | Mapping[str, float]], *,
                  law: str | LawForm = "chinchilla", design: pd.DataFrame | None = None,
                  noise: float = 0.005, seed: int = 0) -> pd.DataFrame:
    """Losses of the same runs on several skills' validation sets.

    Parameters
    ----------
    truth : mapping of str to ndarray (P,) or dict
        Per skill, the law's internal parameters, or for Chinchilla a dict with
        ``E, A, B, alpha, beta``.
    law : str or LawForm
        Form of every skill's law.
    design : DataFrame, optional
        Runs with ``N`` and ``D`` (default :func:`isoflop_design`).
    noise : float
        Standard deviation of the log-loss noise (0.005: about 0.5%).
    seed : int

    Returns
    -------
    DataFrame, n_runs * n_skills rows
        ``run``, ``skill``, ``N``, ``D``, ``C``, ``loss`` and ``loss_true``.
    """
    form = get_law(law)
    design = isoflop_design() if design is None else design.copy()
    if "run" not in design:
        design.insert(0, "run", np.arange(len(design)))
    if "C" not in design:
        design["C"] = training_compute(design["N"], design["D"])
    rng = np.random.default_rng(seed)
    parts = []
    for skill, params in truth.items():
        theta = chinchilla_theta(params) if isinstance(params, Mapping) else np.asarray(params)
        true = form.predict(theta, design["N"].to_numpy(), design["D"].to_numpy())
        part = design[["run", "N", "D", "C"]].copy()
        part.insert(1, "skill", skill)
        part["loss_true"] = true
        part["loss"] = true * np.exp(noise * rng.standard_normal(len(part)))
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def simulate_two_skill_runs(*, noise: float = 0.005, seed: int = 0,
                            design: pd.DataFrame | None = None) -> pd.DataFrame:
    """Runs of :data:`TWO_SKILLS` (parameter-hungry ``knowledge``, data-hungry ``code``).

    See :func:`simulate_runs` for the columns.
    """
    return simulate_runs(TWO_SKILLS, design=design, noise=noise, seed=seed)
