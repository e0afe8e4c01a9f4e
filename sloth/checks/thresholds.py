"""Limits of the post-sampling checks (:func:`sloth.checks.report.diagnose`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DiagnosticThresholds"]


@dataclass(frozen=True)
class DiagnosticThresholds:
    """Limits of the post-sampling checks of :func:`sloth.checks.report.diagnose`.

    Parameters
    ----------
    rhat_warn, rhat_error : float, default 1.01, 1.05
        Worst R-hat above which a check warns / fails.
    ess_per_chain_warn, ess_per_chain_error : float, default 100, 10
        Lowest bulk or tail ESS, per chain, below which a check warns / fails.
    divergence_error_fraction : float, default 0.01
        Any divergence warns; a larger fraction of divergent draws fails.
    tree_depth_warn : float, default 0.05
        Fraction of draws at the fit's maximum tree depth above which a check warns.
    bfmi_warn : float, default 0.3
        Lowest per-chain E-BFMI below which a check warns.
    chain_mismatch : float, default 1.0
        Two chains disagree when their mean loadings differ by more than this many posterior
        standard deviations (all chains pooled; root mean square over the free loadings).
    min_contraction : float, default 0.1
        Parameters whose posterior variance is above ``1 - min_contraction`` of their prior
        variance are barely moved by the data.
    slope_efficiency_r2 : float, default 0.9
        Share of a slope's posterior variance explained by the family efficiencies above
        which the two are not told apart (warning).
    min_signal : float, default 0.2
        Squared correlation of fitted means and observed scores below which a benchmark loads
        on nothing (an error for an anchor, a warning otherwise).
    """

    rhat_warn: float = 1.01
    rhat_error: float = 1.05
    ess_per_chain_warn: float = 100.0
    ess_per_chain_error: float = 10.0
    divergence_error_fraction: float = 0.01
    tree_depth_warn: float = 0.05
    bfmi_warn: float = 0.3
    chain_mismatch: float = 1.0
    min_contraction: float = 0.1
    slope_efficiency_r2: float = 0.9
    min_signal: float = 0.2
