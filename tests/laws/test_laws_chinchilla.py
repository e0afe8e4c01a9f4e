"""Acceptance on the real Chinchilla runs (skipped when the reference data is absent)."""

from __future__ import annotations

import pytest

from sloth.laws import compute_optimal, fit_law

#: 95% intervals of Besiroglu et al. (2024), "Chinchilla scaling: a replication attempt".
REPLICATION = {"E": (1.769, 1.871), "A": (285.0, 744.0), "B": (1042.0, 5810.0),
               "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}


@pytest.fixture(scope="module")
def chinchilla_fit(chinchilla_runs):
    return fit_law(chinchilla_runs, "chinchilla", max_starts=64, n_boot=60)


def test_huber_fit_inside_replication_intervals(chinchilla_fit):
    for name, (lo, hi) in REPLICATION.items():
        assert lo <= chinchilla_fit.params[name] <= hi, (name, chinchilla_fit.params)
    # the replication's point estimates, closely
    assert chinchilla_fit.params["E"] == pytest.approx(1.817, abs=0.01)
    assert chinchilla_fit.params["alpha"] == pytest.approx(0.348, abs=0.005)
    assert chinchilla_fit.params["beta"] == pytest.approx(0.366, abs=0.005)


def test_tokens_per_parameter_at_1e21(chinchilla_fit):
    row = compute_optimal(chinchilla_fit, 1e21).iloc[0]
    assert 15 <= row["D_per_N"] <= 30
    assert row["D_per_N_lower"] <= row["D_per_N"] <= row["D_per_N_upper"]
