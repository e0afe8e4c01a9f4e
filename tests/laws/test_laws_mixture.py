"""Skill mixes: N*(C; w) moves between the pure-skill optima, with intervals."""

from __future__ import annotations

import numpy as np
import pytest

from sloth.exceptions import DataValidationError
from sloth.laws import compare_skills, compute_optimal, mixture_loss, mixture_optimum, mixture_sweep


def test_mixture_loss_is_weighted_sum(two_skill_fits):
    n, d = np.array([1e8, 1e9]), np.array([1e10, 3e10])
    mix = mixture_loss(two_skill_fits, {"knowledge": 3, "code": 1}, n, d)
    want = (0.75 * two_skill_fits["knowledge"].predict(n, d)
            + 0.25 * two_skill_fits["code"].predict(n, d))
    np.testing.assert_allclose(mix, want, rtol=1e-12)
    draws = mixture_loss(two_skill_fits, {"code": 1}, n, d, draws=True)
    assert draws.shape == (len(two_skill_fits["code"].draws), 2)


def test_sweep_moves_between_pure_optima(two_skill_fits):
    sweep = mixture_sweep(two_skill_fits, 1e21, skills=("knowledge", "code"))
    pure = {k: compute_optimal(f, 1e21)["N_opt"].iloc[0] for k, f in two_skill_fits.items()}
    n = sweep["N_opt"].to_numpy()
    assert n[0] == pytest.approx(pure["knowledge"], rel=1e-6)
    assert n[-1] == pytest.approx(pure["code"], rel=1e-6)
    assert np.all(np.diff(n) < 0)                     # monotone from knowledge to code
    assert np.all((n <= pure["knowledge"] * (1 + 1e-6)) & (n >= pure["code"] * (1 - 1e-6)))
    half = sweep[np.isclose(sweep["w"], 0.5)].iloc[0]
    assert half["shift_vs_knowledge_upper"] < 0 < half["shift_vs_code_lower"]
    assert half["shift_vs_knowledge_lower"] <= half["shift_vs_knowledge"] <= \
        half["shift_vs_knowledge_upper"]
    assert sweep["shift_vs_knowledge"].iloc[0] == pytest.approx(0.0, abs=1e-6)


def test_mixture_optimum_many_budgets_and_validation(two_skill_fits):
    table = mixture_optimum(two_skill_fits, {"knowledge": 0.5, "code": 0.5}, [1e20, 1e22])
    assert len(table) == 2 and (table["N_opt_lower"] <= table["N_opt_upper"]).all()
    with pytest.raises(DataValidationError, match="no fit"):
        mixture_optimum(two_skill_fits, {"math": 1.0}, 1e21)
    with pytest.raises(DataValidationError, match=">= 0"):
        mixture_optimum(two_skill_fits, {"code": -1.0, "knowledge": 2.0}, 1e21)


def test_compare_skills(two_skill_fits):
    table = compare_skills(two_skill_fits, [1e21])
    assert list(table["skill"]) == ["knowledge", "code"]
    assert table.set_index("skill").loc["code", "D_per_N"] > \
        table.set_index("skill").loc["knowledge", "D_per_N"]
