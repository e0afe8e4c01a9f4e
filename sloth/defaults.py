"""sloth's defaults, stated once: the model every entry point fits unless told otherwise.

:class:`sloth.SlothModel`, ``sloth fit``, ``sloth forecast`` (its cached default fit) and
``sloth evaluate`` read the model's settings from here, so that a user who runs ``sloth fit``
then ``sloth forecast`` gets the model that ``sloth evaluate`` measures
(``benchmarks/RESULTS.md`` says which settings produced each table). This module imports
nothing, so the command line reads it without loading JAX.

The settings follow the measurements of ``benchmarks/RESULTS.md`` §3: the flexible link's
forecasts of held-out families are the more accurate and the better calibrated, the number of
skills follows :func:`sloth.checks.structure.auto_skills`, and a held-out family is
conditioned on its observed models by importance weights over one fit's posterior
(:mod:`sloth.conditioning`), with a refit where the weights degenerate.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CONDITIONING", "EVALUATION_SAMPLER", "FIT_SAMPLER", "LINK", "N_SKILLS"]

#: Link from the linear predictor to the mean score (see :func:`sloth.model.link_mean`).
LINK: Final = "flexible"

#: Number of skills: ``"auto"`` is :func:`sloth.checks.structure.auto_skills` of the data.
N_SKILLS: Final = "auto"

#: How ``sloth evaluate`` gives a held-out family its observed models: ``"forecast"``
#: conditions one fit without them (exact importance weights, refit above the Pareto k-hat
#: limit); ``"refit"`` puts them in the fit.
CONDITIONING: Final = "forecast"

#: NUTS settings of :class:`sloth.SlothModel` (its signature's defaults) and ``sloth fit``:
#: 1,000 draws per chain, more (up to four times as many) while the chains have not mixed.
FIT_SAMPLER: Final = {"num_chains": 4, "num_warmup": 500, "num_samples": 1000,
                      "max_samples": "auto"}

#: NUTS settings of each fit of an evaluation sweep (``sloth evaluate``, the harness): many
#: fits, each shorter than :class:`sloth.SlothModel`'s default of 4 chains x 1,000 draws.
EVALUATION_SAMPLER: Final = {"num_chains": 2, "num_warmup": 300, "num_samples": 500,
                             "max_samples": "auto", "max_tree_depth": 8}
