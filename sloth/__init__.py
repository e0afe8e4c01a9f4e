"""sloth: Bayesian latent-skill scaling laws for large language models.

On import, sloth asks XLA for at least four CPU devices (unless ``XLA_FLAGS`` already sets a
device count) so that NUTS chains run in parallel; this only takes effect if JAX has not
started computing yet, so import sloth before running JAX code. The public names below are
imported on first use, so ``import sloth`` (and ``sloth --help``) stays fast.
"""

import importlib as _importlib
import os as _os

if "xla_force_host_platform_device_count" not in _os.environ.get("XLA_FLAGS", ""):
    _os.environ["XLA_FLAGS"] = (
        _os.environ.get("XLA_FLAGS", "")
        + f" --xla_force_host_platform_device_count={max(4, _os.cpu_count() or 1)}"
    ).strip()

__version__ = "0.1.0"

_LAZY = {
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
    "analyze_skills": "sloth.skills.analysis",
    "load_protocol": "sloth.evaluation.protocol",
    "ConvergenceWarning": "sloth.exceptions",
    "DataNotFoundError": "sloth.exceptions",
    "DataValidationError": "sloth.exceptions",
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
