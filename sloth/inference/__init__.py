"""Posterior inference for the skill model.

- :mod:`sloth.inference.programs`: padded model arguments and :class:`ProgramCache`, the
  compiled programs that fits of the same padded sizes share;
- :mod:`sloth.inference.map`: MAP fits (:func:`find_map`);
- :mod:`sloth.inference.anchors`: anchors chosen from the data and the exact map onto the
  anchored parametrization;
- :mod:`sloth.inference.nuts`: NUTS whitened at the MAP and by a pilot run (:func:`run_nuts`);
- :mod:`sloth.inference.pipeline`: the fit pipeline that :meth:`sloth.SlothModel.fit` calls
  (:func:`fit_posterior`).
"""

from sloth.inference.anchors import benchmark_information, choose_anchors, to_anchored
from sloth.inference.map import MapResult, find_map
from sloth.inference.nuts import (
    NUTS_CHUNK,
    ExtensionRule,
    SamplerResult,
    finite_difference_hessian,
    laplace_whitening,
    run_nuts,
    sample_stats,
)
from sloth.inference.pipeline import PosteriorFit, SamplerSettings, fit_posterior
from sloth.inference.programs import (
    PAD_MULTIPLES,
    ProgramCache,
    flat_potential,
    model_kwargs,
    pad_arrays,
)

__all__ = [
    "NUTS_CHUNK",
    "PAD_MULTIPLES",
    "ExtensionRule",
    "MapResult",
    "PosteriorFit",
    "ProgramCache",
    "SamplerResult",
    "SamplerSettings",
    "benchmark_information",
    "choose_anchors",
    "find_map",
    "finite_difference_hessian",
    "fit_posterior",
    "flat_potential",
    "laplace_whitening",
    "model_kwargs",
    "pad_arrays",
    "run_nuts",
    "sample_stats",
    "to_anchored",
]
