"""Loss scaling laws: Chinchilla and Farseer fits, compute-optimal allocation, skill mixes.

Fit a law robustly (Huber on log loss, multi-start L-BFGS, bootstrap intervals) with
:func:`fit_law` or with NUTS with :func:`fit_law_bayes`; get ``N*(C)``, ``D*(C)`` and
``D*/N*`` with :func:`compute_optimal` or by IsoFLOP parabolas with :func:`isoflop_fit`;
fit one law per skill with :func:`fit_per_skill` and see how a validation mix moves the
optimum with :func:`mixture_optimum` and :func:`mixture_sweep`.
"""

from sloth.laws.bayes import fit_law_bayes, law_model
from sloth.laws.fit import LawFit, fit_law, fit_per_skill, load_fits, save_fits
from sloth.laws.forms import (
    CHINCHILLA,
    FARSEER,
    LawForm,
    available_laws,
    chinchilla_to_farseer,
    farseer_from_paper,
    get_law,
    grid_product,
    register_law,
)
from sloth.laws.mixture import compare_skills, mixture_loss, mixture_optimum, mixture_sweep
from sloth.laws.optimal import (
    IsoFlopResult,
    compute_optimal,
    group_by_budget,
    isoflop_fit,
    optimal_allocation,
)
from sloth.laws.runs import (
    load_chinchilla_runs,
    read_runs_csv,
    split_by_compute,
    validate_runs,
)
from sloth.laws.simulate import (
    TWO_SKILLS,
    chinchilla_theta,
    isoflop_design,
    simulate_runs,
    simulate_two_skill_runs,
)

__all__ = [
    "CHINCHILLA",
    "FARSEER",
    "TWO_SKILLS",
    "IsoFlopResult",
    "LawFit",
    "LawForm",
    "available_laws",
    "chinchilla_theta",
    "chinchilla_to_farseer",
    "compare_skills",
    "compute_optimal",
    "farseer_from_paper",
    "fit_law",
    "fit_law_bayes",
    "fit_per_skill",
    "get_law",
    "grid_product",
    "group_by_budget",
    "isoflop_design",
    "isoflop_fit",
    "law_model",
    "load_chinchilla_runs",
    "load_fits",
    "mixture_loss",
    "mixture_optimum",
    "mixture_sweep",
    "optimal_allocation",
    "read_runs_csv",
    "register_law",
    "save_fits",
    "simulate_runs",
    "simulate_two_skill_runs",
    "split_by_compute",
    "validate_runs",
]
