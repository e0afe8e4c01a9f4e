"""One set of defaults: SlothModel, ``sloth fit``, ``sloth evaluate`` and the harness agree."""

import inspect

from sloth import SlothModel, defaults
from sloth.cli.fit import default_fit_args
from sloth.cli.main import build_parser
from sloth.evaluation.harness import sloth_forecaster

SIGNATURE = inspect.signature(SlothModel).parameters


def test_the_estimator_the_fit_command_and_evaluate_share_link_skills_and_conditioning():
    assert SIGNATURE["link"].default == defaults.LINK == "flexible"
    assert SIGNATURE["n_skills"].default == defaults.N_SKILLS == "auto"
    fit = default_fit_args()
    assert (fit.link, fit.skills) == (defaults.LINK, defaults.N_SKILLS)
    evaluate = build_parser().parse_args(["evaluate", "--splits", "s.json", "--out", "p.csv"])
    assert (evaluate.link, evaluate.skills) == (defaults.LINK, defaults.N_SKILLS)
    assert evaluate.conditioning == defaults.CONDITIONING
    assert inspect.signature(sloth_forecaster).parameters["conditioning"].default == (
        defaults.CONDITIONING)
    sampler = {"num_chains": evaluate.chains, "num_warmup": evaluate.warmup,
               "num_samples": evaluate.samples, "max_samples": evaluate.max_samples,
               "max_tree_depth": evaluate.max_tree_depth}
    assert sampler == defaults.EVALUATION_SAMPLER
    # the fit command's sampler is the estimator's
    assert (fit.chains, fit.warmup, fit.samples, fit.max_samples) == tuple(
        SIGNATURE[k].default for k in ("num_chains", "num_warmup", "num_samples", "max_samples"))
    assert {k: SIGNATURE[k].default for k in defaults.FIT_SAMPLER} == defaults.FIT_SAMPLER
