"""Evaluation of forecasts: protocol files (:mod:`sloth.evaluation.protocol`), the
leave-one-family-out harness (:mod:`sloth.evaluation.harness`), baselines
(:mod:`sloth.evaluation.baselines`) and downstream prediction
(:mod:`sloth.evaluation.downstream`)."""
