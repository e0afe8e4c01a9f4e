"""Compute-optimal allocation: closed form vs numeric, intervals, IsoFLOP parabolas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sloth.exceptions import DataValidationError
from sloth.laws import (
    CHINCHILLA,
    FARSEER,
    TWO_SKILLS,
    LawFit,
    chinchilla_theta,
    compute_optimal,
    group_by_budget,
    isoflop_fit,
    optimal_allocation,
)

from .conftest import FARSEER_TRUTH


def test_closed_form_equals_numeric_optimum():
    rng = np.random.default_rng(0)
    thetas = np.column_stack([rng.uniform(-0.5, 1.0, 40), rng.uniform(3, 8, 40),
                              rng.uniform(4, 10, 40), rng.uniform(0.2, 0.6, 40),
                              rng.uniform(0.2, 0.6, 40)])
    compute = np.array([1e19, 1e21, 1e24])
    n_c, d_c, l_c = optimal_allocation(CHINCHILLA, thetas, compute, method="closed")
    n_n, d_n, l_n = optimal_allocation(CHINCHILLA, thetas, compute, method="numeric")
    # the numeric search spans tokens per parameter e^-24..e^24 (span=12); beyond: nan
    inside = np.abs(np.log(d_c / n_c)) < 23.5
    outside = np.abs(np.log(d_c / n_c)) > 24.5
    assert inside.sum() > 100 and outside.any()
    np.testing.assert_allclose(n_n[inside], n_c[inside], rtol=1e-5)
    np.testing.assert_allclose(d_n[inside], d_c[inside], rtol=1e-5)
    np.testing.assert_allclose(l_n[inside], l_c[inside], rtol=1e-10)
    assert np.isnan(n_n[outside]).all()
    np.testing.assert_allclose(6 * n_c * d_c, np.broadcast_to(compute, n_c.shape), rtol=1e-12)


def test_numeric_optimum_is_a_minimum_for_farseer():
    theta = np.array([-0.91, -0.13, 0.03, -0.89, 0.155, 0.09, 0.795, -0.086, -0.096])
    compute = np.array([1e20, 1e22])
    n, _, loss = optimal_allocation(FARSEER, theta, compute)
    for k, c in enumerate(compute):
        for factor in (0.9, 1.1):
            n2 = n[0, k] * factor
            assert FARSEER.predict(theta, [n2], [c / (6 * n2)])[0] > loss[0, k]


def test_no_interior_optimum_is_nan():
    theta = chinchilla_theta({"E": 1.0, "A": 100.0, "B": 100.0, "alpha": 0.3, "beta": 0.3})
    theta[3] = -0.1           # loss grows with N: no interior optimum
    n, _, _ = optimal_allocation(CHINCHILLA, theta, [1e21])
    assert np.isnan(n).all()
    n, _, _ = optimal_allocation(CHINCHILLA, theta, [1e21], method="numeric")
    assert np.isnan(n).all()


def test_compute_optimal_table_and_recovery(two_skill_fits):
    for skill, fit in two_skill_fits.items():
        table = compute_optimal(fit, [1e20, 1e21])
        assert list(table["compute"]) == [1e20, 1e21]
        for q in ("N_opt", "D_opt", "D_per_N"):
            assert (table[f"{q}_lower"] <= table[q]).all()
            assert (table[q] <= table[f"{q}_upper"]).all()
        true_n, _, _ = optimal_allocation(CHINCHILLA, chinchilla_theta(TWO_SKILLS[skill]), [1e21])
        row = table.iloc[1]
        assert row["N_opt_lower"] * 0.9 <= true_n[0, 0] <= row["N_opt_upper"] * 1.1
        assert row["N_opt"] == pytest.approx(true_n[0, 0], rel=0.15)
    tpp = {k: compute_optimal(f, 1e21)["D_per_N"].iloc[0] for k, f in two_skill_fits.items()}
    assert tpp["code"] > 4 * tpp["knowledge"]          # data-hungry vs parameter-hungry


def test_compute_optimal_warns_without_draws():
    fit = LawFit(law="chinchilla", theta=chinchilla_theta(TWO_SKILLS["code"]))
    table = compute_optimal(fit, 1e22)
    assert "N_opt_lower" not in table
    with pytest.raises(DataValidationError, match="positive"):
        compute_optimal(fit, -1.0)


def test_group_by_budget():
    c = np.array([1e19, 1.05e19, 3e19, 3.1e19, 2e20, 1e21])
    ids = group_by_budget(c, tolerance=0.05)
    assert ids[0] == ids[1] != ids[2] == ids[3]
    assert len(set(ids.tolist())) == 4
    ids = group_by_budget(c, budgets=[1e19, 3e19], tolerance=0.05)
    assert ids.tolist() == [0, 0, 1, 1, -1, -1]


def test_isoflop_recovers_exponent_and_agrees_with_approach_3(two_skill_runs, two_skill_fits):
    for skill, truth in TWO_SKILLS.items():
        runs = two_skill_runs[two_skill_runs["skill"] == skill].drop(columns="skill")
        result = isoflop_fit(runs, n_boot=100)
        a_true = truth["beta"] / (truth["alpha"] + truth["beta"])
        ex = result.exponents()
        assert ex.loc["a", "lower"] - 0.02 <= a_true <= ex.loc["a", "upper"] + 0.02
        assert result.groups["used"].sum() == 7
        iso = result.predict(1e21)["N_opt"].iloc[0]
        law = compute_optimal(two_skill_fits[skill], 1e21)["N_opt"].iloc[0]
        assert iso == pytest.approx(law, rel=0.2)


def test_isoflop_needs_two_budgets():
    runs = pd.DataFrame({"N": [1e8, 2e8, 4e8, 8e8, 1.6e9], "C": [1e19] * 5,
                         "loss": [3.0, 2.9, 2.85, 2.9, 3.0]})
    with pytest.raises(DataValidationError, match="only 1 compute budget"):
        isoflop_fit(runs)


def test_farseer_allocation_has_intervals_and_recovers_truth(farseer_fit):
    row = compute_optimal(farseer_fit, [1e21]).iloc[0]
    assert row["N_opt_lower"] <= row["N_opt"] <= row["N_opt_upper"]
    true_n, _, _ = optimal_allocation(FARSEER, FARSEER_TRUTH, [1e21])
    assert row["N_opt"] == pytest.approx(true_n[0, 0], rel=0.25)
