"""Evaluation of forecasts: protocol files (:mod:`sloth.evaluation.protocol`), the
leave-one-family-out harness (:mod:`sloth.evaluation.harness`), baselines
(:mod:`sloth.evaluation.baselines`), downstream prediction
(:mod:`sloth.evaluation.downstream`) and simulation-based calibration of the fit and its
forecasts (:mod:`sloth.evaluation.sbc`)."""
