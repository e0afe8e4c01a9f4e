"""Plot helpers return the axes they drew on."""

from __future__ import annotations

import matplotlib.pyplot as plt

from sloth.laws import isoflop_fit, mixture_sweep, validate_runs
from sloth.laws.plotting import (
    plot_compute_optimal,
    plot_isoflop,
    plot_law_fit,
    plot_mixture_sweep,
)


def test_plots_draw_on_given_axes(two_skill_runs, two_skill_fits):
    runs = validate_runs(two_skill_runs[two_skill_runs["skill"] == "code"].drop(
        columns=["skill", "run", "loss_true"]))
    fig, axes = plt.subplots(2, 2)
    assert plot_law_fit(two_skill_fits["code"], runs, ax=axes[0, 0]) is axes[0, 0]
    assert plot_compute_optimal(two_skill_fits, quantity="D_per_N", ax=axes[0, 1]) is axes[0, 1]
    assert len(axes[0, 1].lines) == 2 and axes[0, 1].get_yscale() == "log"
    iso = isoflop_fit(runs, n_boot=10)
    assert plot_isoflop(iso, runs, ax=axes[1, 0]) is axes[1, 0]
    sweep = mixture_sweep(two_skill_fits, 1e21, weights=[0.0, 0.5, 1.0])
    ax = plot_mixture_sweep(sweep, ax=axes[1, 1])
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"pure knowledge", "pure code"}
    plt.close(fig)
    ax = plot_compute_optimal(two_skill_fits["knowledge"])       # new figure when ax=None
    assert ax.figure is not fig
    plt.close(ax.figure)
