"""Shared fixtures of the loss-law tests: simulated two-skill runs, their fits, real runs."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

import numpy as np

from sloth.laws import (
    fit_law,
    fit_per_skill,
    isoflop_design,
    simulate_runs,
    simulate_two_skill_runs,
)

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
CHINCHILLA_CSV = SHARED_DATA / "chinchilla-epoch" / "svg_extracted_data.csv"

#: Small, fast fit settings shared by the tests (the Chinchilla grid has 4500 starts).
FAST = {"max_starts": 48, "n_boot": 60}
#: A Farseer law close to the one fitted to the Chinchilla runs (internal parameters).
FARSEER_TRUTH = np.array([-0.91, -0.13, 0.03, -0.89, 0.155, 0.09, 0.795, -0.086, -0.096])


@pytest.fixture(scope="session")
def two_skill_runs():
    """Runs of the parameter-hungry / data-hungry two-skill simulation (63 runs per skill)."""
    return simulate_two_skill_runs(seed=1)


@pytest.fixture(scope="session")
def two_skill_fits(two_skill_runs):
    """Robust Chinchilla fits with bootstrap draws, one per simulated skill."""
    return fit_per_skill(two_skill_runs, "chinchilla", **FAST)


@pytest.fixture(scope="session")
def farseer_runs():
    """Runs simulated from FARSEER_TRUTH on a 7 x 7 IsoFLOP grid (1e18 to 1e21 FLOPs)."""
    design = isoflop_design(n_sizes=7)
    return simulate_runs({"x": FARSEER_TRUTH}, law="farseer", design=design, noise=0.002,
                         seed=3).drop(columns="skill")


@pytest.fixture(scope="session")
def farseer_fit(farseer_runs):
    """Robust Farseer fit of farseer_runs with a few bootstrap draws."""
    return fit_law(farseer_runs, "farseer", n_boot=20, max_starts=24)


@pytest.fixture
def shared_data(monkeypatch: pytest.MonkeyPatch) -> Path:
    """``SLOTH_DATA_DIR`` pointed at the reference data; skip when it is absent."""
    if not CHINCHILLA_CSV.is_file():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    monkeypatch.setenv("SLOTH_DATA_DIR", str(SHARED_DATA))
    return SHARED_DATA


@pytest.fixture(scope="session")
def chinchilla_runs():
    """The 240 Chinchilla runs (5 highest-loss dropped), read through SLOTH_DATA_DIR."""
    if not CHINCHILLA_CSV.is_file():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    from sloth.laws import load_chinchilla_runs

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLOTH_DATA_DIR", str(SHARED_DATA))
        return load_chinchilla_runs(download=False)
