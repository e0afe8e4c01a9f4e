"""Tests of simulation-based calibration (sloth.evaluation.sbc) and its prior draws
(sloth.model.simulate.simulate_from_prior)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sloth.evaluation.sbc import (
    FORECASTS,
    SbcSettings,
    calibration,
    ecdf_band,
    rank_pit,
    sbc_ranks,
    simulate_once,
)
from sloth.model.simulate import simulate_from_prior

L = 50  # posterior draws per rank in the synthetic checks


def _rows(draw_shift: float = 0.0, draw_scale: float = 1.0, n: int = 300, seed: int = 0
          ) -> pd.DataFrame:
    """SBC rows of a normal model whose 'posterior' draws are N(shift, scale^2) around a
    truth drawn from N(0, 1): exact (calibrated) for shift 0 and scale 1."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=n)
    draws = rng.normal(draw_shift, draw_scale, size=(L, n))
    return pd.DataFrame({"status": "ok", "n_draws": L, "x[a]": sbc_ranks(draws, truth, rng)})


def test_ranks_count_draws_below_and_break_ties_uniformly() -> None:
    rng = np.random.default_rng(0)
    draws = np.array([[0.1, 5.0], [0.2, 5.0], [0.3, 5.0]])
    assert sbc_ranks(draws, np.array([0.25, 9.0]), rng).tolist() == [2, 3]
    # a truth tied with every draw (a score clipped at 1 like its draws) is placed at random
    tied = [int(sbc_ranks(np.ones((3, 1)), np.ones(1), rng)[0]) for _ in range(4000)]
    counts = np.bincount(tied, minlength=4)
    assert len(counts) == 4 and np.all(np.abs(counts / 4000 - 0.25) < 0.03)
    with pytest.raises(ValueError, match="draws must be shaped"):
        sbc_ranks(np.zeros((3, 2)), np.zeros(3), rng)


def test_rank_pit_is_uniform_within_each_rank_and_checks_its_range() -> None:
    rng = np.random.default_rng(1)
    pit = rank_pit(np.array([0, 3, 10]), 10, rng)
    assert np.all((pit > np.array([0, 3, 10]) / 11) & (pit < np.array([1, 4, 11]) / 11))
    with pytest.raises(ValueError, match=r"ranks must lie in 0\.\.n_draws"):
        rank_pit(np.array([11]), 10, rng)


def test_calibrated_ranks_stay_in_the_band_and_pass_the_test() -> None:
    verdict = calibration(_rows())
    row = verdict.iloc[0]
    assert (row["quantity"], row["element"], row["n"]) == ("x", "a", 300)
    assert row["inside_band"] and row["p_value"] > 0.01 and row["calibrated"]
    assert abs(row["central_90"] - 0.9) < 0.06


@pytest.mark.parametrize(("shift", "scale", "sign"), [
    (0.6, 1.0, "low"),    # draws above the truth: the fit overestimates
    (0.0, 0.4, "spread"),  # draws too narrow: overconfident
    (0.0, 2.5, "spread"),  # draws too wide: underconfident
])
def test_miscalibrated_ranks_leave_the_band(shift: float, scale: float, sign: str) -> None:
    row = calibration(_rows(shift, scale)).iloc[0]
    assert not row["inside_band"] and not row["calibrated"] and row["p_value"] < 0.01
    if sign == "low":
        assert row["mean_pit"] < 0.4
    elif scale < 1:
        assert row["central_90"] < 0.75
    else:
        assert row["central_90"] > 0.97


def test_calibration_leaves_out_refused_rows_and_missing_ranks() -> None:
    rows = pd.concat([_rows(n=40), pd.DataFrame({"status": ["refused"] * 5})])
    rows.loc[rows.index[:3], "x[a]"] = np.nan
    assert calibration(rows).iloc[0]["n"] == 37


def test_ecdf_band_rejects_values_outside_the_unit_interval() -> None:
    with pytest.raises(ValueError, match="pit must be a 1-d array"):
        ecdf_band(np.array([0.2, 1.5]))


TINY = SbcSettings(n_families=8, link="logistic", n_draws=10, fit={
    "num_chains": 1, "num_warmup": 30, "num_samples": 40, "max_tree_depth": 5,
    "map_starts": 1})


def test_prior_draw_is_seeded_anchored_and_on_the_fitted_families_scale() -> None:
    # the draw of test_one_simulation_... below (its program is compiled once)
    kwargs = {"n_families": 9, "n_benchmarks": 6, "n_skills": 1, "link": "logistic",
              "held_out_families": 1, "seed": 3}
    table, truth = simulate_from_prior(**kwargs)
    again, _ = simulate_from_prior(**kwargs)
    np.testing.assert_array_equal(table.scores, again.scores)
    assert truth.anchors == ["MMLU"] and truth.sites["loading"][0, 0] == 1.0
    assert "link_shape" not in truth.sites  # the logistic link has no shape to draw
    fitted = np.array([f != table.family[-1] for f in table.family])
    x = truth.scaler.transform(table.params[fitted], table.tokens[fitted])
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-12)  # standardized on them
    floors = np.asarray(table.floors)
    assert np.all((truth.mean_score >= floors) & (truth.mean_score <= 1.0))
    assert table.scores.shape == truth.mean_score.shape == (table.n_models, 6)
    with pytest.raises(ValueError, match=r"held_out_families=9 must be in 0\.\.n_families-1"):
        simulate_from_prior(n_families=9, held_out_families=9)


def test_one_simulation_ranks_every_identified_quantity_in_range() -> None:
    row = simulate_once(3, TINY)
    assert row["status"] == "ok", row["reason"]
    ranks = {k: v for k, v in row.items() if "[" in k}
    # 3 slopes, the 5 free loadings (the anchor's is fixed), the family scale, and each
    # forecast on the 6 benchmarks
    assert sum(k.startswith("skill_slope[") for k in ranks) == 3
    assert sorted(k for k in ranks if k.startswith("loading[")) == [
        f"loading[{b},skill_1]" for b in sorted(
            ["ARC", "HellaSwag", "Winogrande", "TruthfulQA", "GSM8K"])]
    assert "family_scale[skill_1]" in ranks
    assert all(sum(k.startswith(f"{f}[") for k in ranks) == 6 for f in FORECASTS)
    assert row["n_draws"] == 10
    assert all(0 <= r <= 10 for r in ranks.values())
    assert row["k1_method"] in ("importance", "refit")


@pytest.mark.slow
def test_sbc_ranks_stay_within_their_bands() -> None:
    """A small SBC (40 simulations, logistic link, the evaluation sampler): every ranked
    quantity's ECDF within its band. The band is 99.9% per quantity here, as 27 quantities
    are tested at once; the full run and its verdict are benchmarks/sbc.py's."""
    from sloth.inference import ProgramCache

    settings = SbcSettings(link="logistic")
    programs = ProgramCache()
    rows = pd.DataFrame([simulate_once(seed, settings, programs=programs)
                         for seed in range(40)])
    verdict = calibration(rows, prob=0.999)
    assert (rows["status"] == "ok").sum() >= 25
    assert verdict["inside_band"].all(), verdict[~verdict["inside_band"]]
