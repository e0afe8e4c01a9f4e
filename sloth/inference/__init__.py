"""Posterior inference for the skill model: padding and compiled programs, MAP and anchors,
NUTS, and the fit pipeline that :meth:`sloth.SlothModel.fit` calls."""
