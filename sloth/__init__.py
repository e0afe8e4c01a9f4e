"""sloth: Bayesian latent-skill scaling laws for large language models.

On import, sloth asks XLA for at least four CPU devices (unless ``XLA_FLAGS`` already sets a
device count) so that NUTS chains run in parallel; this only takes effect if JAX has not
started computing yet, so import sloth before running JAX code.
"""

import os as _os

if "xla_force_host_platform_device_count" not in _os.environ.get("XLA_FLAGS", ""):
    _os.environ["XLA_FLAGS"] = (
        _os.environ.get("XLA_FLAGS", "")
        + f" --xla_force_host_platform_device_count={max(4, _os.cpu_count() or 1)}"
    ).strip()

__version__ = "0.1.0"

from sloth.data import (
    ScoreTable,
    load_evaluations,
    load_leaderboard,
    read_evaluations,
    register_benchmark,
)
from sloth.data.simulate import simulate_leaderboard
from sloth.estimator import SlothModel
from sloth.exceptions import (
    ConvergenceWarning,
    DataNotFoundError,
    DataValidationError,
    IdentifiabilityError,
    NotFittedError,
    SlothError,
)

__all__ = [
    "ConvergenceWarning",
    "DataNotFoundError",
    "DataValidationError",
    "IdentifiabilityError",
    "NotFittedError",
    "ScoreTable",
    "SlothError",
    "SlothModel",
    "__version__",
    "load_evaluations",
    "load_leaderboard",
    "read_evaluations",
    "register_benchmark",
    "simulate_leaderboard",
]
