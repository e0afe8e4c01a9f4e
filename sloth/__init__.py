"""sloth: Bayesian latent-skill scaling laws for large language models."""

from sloth.exceptions import (
    ConvergenceWarning,
    DataNotFoundError,
    DataValidationError,
    IdentifiabilityError,
    NotFittedError,
    SlothError,
)

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "DataNotFoundError",
    "DataValidationError",
    "IdentifiabilityError",
    "NotFittedError",
    "SlothError",
    "__version__",
]
