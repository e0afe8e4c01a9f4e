"""sloth: Bayesian latent-skill scaling laws for large language models.

Importing sloth has no side effects: the public names below are imported on first use, so
``import sloth`` (and ``sloth --help``) stays fast, and nothing in the process (environment,
JAX's configuration) changes. :func:`sloth.configure` sets the CPU device count (for
parallel chains) and JAX's persistent compilation cache; the command line calls it, and a
notebook may call it first thing.
"""

import importlib as _importlib

__version__ = "0.1.0"

_LAZY = {
    "configure": "sloth.config",
    "ScoreTable": "sloth.data.table",
    "load_evaluations": "sloth.data.leaderboard",
    "load_leaderboard": "sloth.data.leaderboard",
    "read_evaluations": "sloth.data.validation",
    "register_benchmark": "sloth.data.registry",
    "simulate_leaderboard": "sloth.model.simulate",
    "SlothModel": "sloth.estimator",
    "forecast_datatree": "sloth.forecast",
    "check_structure": "sloth.checks.structure",
    "diagnose": "sloth.checks.diagnostics",
    "check_predictive": "sloth.checks.predictive",
    "compare": "sloth.comparison",
    "analyze_skills": "sloth.skills.analysis",
    "load_protocol": "sloth.evaluation.protocol",
    "ConvergenceWarning": "sloth.exceptions",
    "DataNotFoundError": "sloth.exceptions",
    "DataValidationError": "sloth.exceptions",
    "ExtrapolationWarning": "sloth.exceptions",
    "IdentifiabilityError": "sloth.exceptions",
    "NotFittedError": "sloth.exceptions",
    "SlothError": "sloth.exceptions",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sloth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
