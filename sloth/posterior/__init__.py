"""A fit's posterior: the labelled ArviZ ``xarray.DataTree``, its file format, and the public
posterior API that forecasting, evaluation and plots use (:class:`Posterior`)."""

from sloth.posterior.api import QUANTILES, Posterior

__all__ = ["QUANTILES", "Posterior"]
