"""Baselines: FLOPs sigmoids and observational scaling, on data simulated from their models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sloth.data.table import ScoreTable
from sloth.evaluation.baselines import (
    BASELINES,
    FlopsSigmoid,
    ObservationalScaling,
    ScorePCA,
    log10_flops,
    make_baseline,
    normal_scale,
)
from sloth.exceptions import DataValidationError, NotFittedError
from sloth.model.simulate import simulate_leaderboard

FLOORS = np.array([0.25, 0.0, 0.5])
SLOPES = np.array([1.2, 0.8, 1.5])
CENTER = 22.0  # log10 FLOPs around which the population intercept sits at 0


def _design(n_families: int, per_family: int, rng: np.random.Generator):
    models, family, params, tokens = [], [], [], []
    for f in range(n_families):
        budget = 10 ** rng.uniform(11.5, 12.5)
        for k, n in enumerate(np.sort(10 ** rng.uniform(8, 10.5, per_family))):
            models.append(f"f{f}-m{k}")
            family.append(f"f{f}")
            params.append(n)
            tokens.append(budget)
    return models, family, np.array(params), np.array(tokens)


def flops_table(noise: float = 0.003, seed: int = 0, n_families: int = 8, per_family: int = 5
                ) -> tuple[ScoreTable, np.ndarray, np.ndarray]:
    """Scores from FlopsSigmoid's own model; returns (table, offsets (F, J), true means)."""
    rng = np.random.default_rng(seed)
    models, family, params, tokens = _design(n_families, per_family, rng)
    offsets = rng.normal(0.0, 0.6, size=(n_families, 3))
    offsets[0] = [1.5, 1.5, 1.5]  # family f0 far from the population
    offsets -= offsets.mean(axis=0)
    fam = np.array([int(f[1:]) for f in family])
    eta = offsets[fam] + SLOPES * (log10_flops(params, tokens)[:, None] - CENTER)
    mean = FLOORS + (1 - FLOORS) / (1 + np.exp(-eta))
    scores = np.clip(mean + noise * rng.standard_normal(mean.shape), 0, 1)
    table = ScoreTable(
        models=tuple(models), family=tuple(family), params=params, tokens=tokens,
        benchmarks=("A", "B", "C"), floors=FLOORS, scores=scores,
    )
    return table, offsets, mean


def _held_out(table: ScoreTable, family: str, k: int) -> tuple[ScoreTable, pd.DataFrame]:
    """Train table keeping the k smallest models of ``family``, and a frame of the rest."""
    frame = table.to_frame()
    fam = frame[frame["family"] == family].sort_values("params")
    held = fam.iloc[k:]
    train = ~frame["model"].isin(held["model"]).to_numpy()
    return table.subset(models=train), held


def _mae(pred: pd.DataFrame, table: ScoreTable, truth: np.ndarray) -> float:
    index = {m: i for i, m in enumerate(table.models)}
    cols = {b: j for j, b in enumerate(table.benchmarks)}
    true = [truth[index[m], cols[b]] for m, b in zip(pred["model"], pred["benchmark"],
                                                     strict=True)]
    return float(np.mean(np.abs(pred["mean"].to_numpy() - np.array(true))))


# ------------------------------------------------------------------------- FlopsSigmoid
def test_flops_sigmoid_recovers_slopes_intercepts_and_means():
    table, offsets, mean = flops_table()
    model = FlopsSigmoid().fit(table)
    np.testing.assert_allclose(model.slope_.to_numpy(), SLOPES, atol=0.05)
    # eta at log10 C = CENTER is the family's offset (the population's is 0)
    at_center = model.family_intercept_.to_numpy() + model.slope_.to_numpy() * CENTER
    np.testing.assert_allclose(at_center, offsets, atol=0.15)
    # intercept differences between families (the part the data pins down) are accurate
    np.testing.assert_allclose(
        model.family_intercept_.to_numpy() - model.population_intercept_.to_numpy(),
        offsets, atol=0.15,
    )
    pred = model.predict(table.to_frame())
    assert list(pred.columns) == ["model", "family", "benchmark", "mean", "median", "q05",
                                  "q95"]
    assert len(pred) == table.n_models * 3
    assert _mae(pred, table, mean) < 0.005
    assert model.residual_scale_.max() < 0.01
    assert model.converged_


def test_flops_sigmoid_family_intercept_k1_versus_k0():
    table, offsets, mean = flops_table()
    train1, held = _held_out(table, "f0", k=1)
    train0, _ = _held_out(table, "f0", k=0)
    m1, m0 = FlopsSigmoid().fit(train1), FlopsSigmoid().fit(train0)
    assert "f0" in m1.families_ and "f0" not in m0.families_
    p1, p0 = m1.predict(held), m0.predict(held)
    # k=1: the family's intercept comes from its smallest model (offset recovered)
    np.testing.assert_allclose(
        m1.family_intercept_.loc["f0"] - m1.population_intercept_, offsets[0], atol=0.3
    )
    assert _mae(p1, table, mean) < 0.03
    # k=0: the population mean intercept, exactly
    lc = log10_flops(held["params"].to_numpy(), held["tokens"].to_numpy())
    eta = m0.population_intercept_.to_numpy() + lc[:, None] * m0.slope_.to_numpy()
    expected = FLOORS + (1 - FLOORS) / (1 + np.exp(-eta))
    np.testing.assert_allclose(p0["mean"].to_numpy(), expected.reshape(-1), rtol=1e-10)
    assert _mae(p0, table, mean) > 2 * _mae(p1, table, mean)
    # unseen family: wider intervals than a seen one
    assert (p0["q95"] - p0["q05"]).mean() > (p1["q95"] - p1["q05"]).mean()


def test_flops_sigmoid_shared_intercept_ignores_family():
    table, _, _ = flops_table()
    model = FlopsSigmoid(family_intercepts=False).fit(table)
    assert model.families_ == ["<shared>"]
    assert model.name == "per_benchmark_flops_sigmoid_shared"
    frame = pd.DataFrame({"model": ["x", "y"], "family": ["f1", "new"],
                          "params": [1e9, 1e9], "tokens": [1e12, 1e12]})
    pred = model.predict(frame)
    np.testing.assert_allclose(pred["mean"].to_numpy()[:3], pred["mean"].to_numpy()[3:])


def test_flops_sigmoid_intervals_cover_noisy_held_out_scores():
    table, _, _ = flops_table(noise=0.02, n_families=12, seed=3)
    inside = []
    for f in ("f1", "f2", "f3", "f4", "f5"):
        train, held = _held_out(table, f, k=1)
        pred = FlopsSigmoid().fit(train).predict(held)
        obs = held.melt(id_vars=["model"], value_vars=["A", "B", "C"], var_name="benchmark",
                        value_name="observed")
        merged = pred.merge(obs, on=["model", "benchmark"])
        assert (merged["q05"] <= merged["mean"]).all() and (merged["mean"] <= merged["q95"]).all()
        assert merged[["q05", "q95"]].stack().between(0, 1).all()
        inside.extend(((merged["observed"] >= merged["q05"])
                       & (merged["observed"] <= merged["q95"])).tolist())
    assert 0.7 <= np.mean(inside) <= 1.0


def test_normal_scale_reproduces_the_baselines_own_interval():
    """The evaluation reads a baseline's normal predictive off its 90% interval
    (``normal_scale``): that normal gives back the interval where it is not clipped."""
    from scipy.stats import norm

    table, _, _ = flops_table(noise=0.02, n_families=8, seed=5)
    train, held = _held_out(table, "f1", k=1)
    pred = FlopsSigmoid().fit(train).predict(held)
    scale = normal_scale(pred["q05"].to_numpy(), pred["q95"].to_numpy())
    inside = (pred["q05"] > 0) & (pred["q95"] < 1)
    assert inside.any()
    mean = pred["mean"].to_numpy()
    for q, column in ((0.05, "q05"), (0.95, "q95")):
        np.testing.assert_allclose((mean + norm.ppf(q) * scale)[inside],
                                   pred[column].to_numpy()[inside], atol=1e-9)
    assert normal_scale(np.array([1.0]), np.array([1.0]))[0] == 1e-6  # a point: the floor


def test_flops_sigmoid_is_deterministic_and_handles_missing_cells():
    table, _ = simulate_leaderboard(n_families=10, n_benchmarks=5, missing_fraction=0.2,
                                    seed=4)
    a = FlopsSigmoid().fit(table).predict(table.to_frame())
    b = FlopsSigmoid().fit(table).predict(table)
    pd.testing.assert_frame_equal(a, b)
    assert np.isfinite(a[["mean", "q05", "q95"]].to_numpy()).all()


# ------------------------------------------------------------------ ObservationalScaling
def pcs_table(noise: float = 0.002, seed: int = 1, n_families: int = 10, per_family: int = 5
              ) -> tuple[ScoreTable, np.ndarray]:
    """Scores linear in 2 latent components that are linear in log FLOPs per family."""
    rng = np.random.default_rng(seed)
    models, family, params, tokens = _design(n_families, per_family, rng)
    fam = np.array([int(f[1:]) for f in family])
    lc = log10_flops(params, tokens) - CENTER
    intercepts = rng.normal(0, 0.5, size=(n_families, 2))
    intercepts[0] = [1.0, -1.0]
    comps = intercepts[fam] + lc[:, None] * np.array([0.6, 0.2])
    loadings = rng.uniform(0.02, 0.08, size=(6, 2))
    mean = 0.55 + comps @ loadings.T
    scores = mean + noise * rng.standard_normal(mean.shape)
    table = ScoreTable(
        models=tuple(models), family=tuple(family), params=params, tokens=tokens,
        benchmarks=tuple("ABCDEF"), floors=np.zeros(6), scores=scores,
    )
    return table, mean


@pytest.mark.parametrize("standardize", [False, True])
def test_observational_scaling_recovers_held_out_models(standardize):
    table, mean = pcs_table()
    train, held = _held_out(table, "f0", k=1)
    model = ObservationalScaling(2, standardize=standardize).fit(train)
    assert model.name == "pca_observational_d2"
    assert model.pca_.explained_variance_ratio_.sum() > 0.99
    assert _mae(model.predict(held), table, mean) < 0.01


def test_observational_scaling_family_intercepts_k1_versus_k0():
    table, mean = pcs_table()
    train1, held = _held_out(table, "f0", k=1)
    train0, _ = _held_out(table, "f0", k=0)
    m1, m0 = ObservationalScaling(2).fit(train1), ObservationalScaling(2).fit(train0)
    assert "f0" in m1.family_intercept_.index and "f0" not in m0.family_intercept_.index
    p0 = m0.predict(held)
    lc = log10_flops(held["params"].to_numpy(), held["tokens"].to_numpy())
    comps = m0.population_intercept_ + lc[:, None] * m0.slope_
    expected = np.clip(m0.pca_.inverse_transform(comps), 0, 1)
    np.testing.assert_allclose(p0["mean"].to_numpy(), expected.reshape(-1), rtol=1e-10)
    assert _mae(p0, table, mean) > 3 * _mae(m1.predict(held), table, mean)


def test_score_pca_projects_rows_with_missing_cells():
    table, _ = pcs_table(noise=0.0)
    pca = ScorePCA(2).fit(table.scores)
    full = pca.transform(table.scores[:3])
    partial = table.scores[:3].copy()
    partial[:, [1, 4]] = np.nan
    np.testing.assert_allclose(pca.transform(partial), full, atol=1e-8)
    partial[0, :5] = np.nan  # one observed cell < 2 components
    assert np.isnan(pca.transform(partial)[0]).all()


def test_observational_scaling_on_simulated_leaderboard_with_missing_cells():
    table, _ = simulate_leaderboard(n_families=15, n_benchmarks=6, missing_fraction=0.1,
                                    seed=2)
    pred = ObservationalScaling(3).fit(table).predict(table.to_frame())
    assert len(pred) == table.n_models * 6
    assert np.isfinite(pred[["mean", "q05", "q95"]].to_numpy()).all()
    floors = dict(zip(table.benchmarks, table.floors, strict=True))
    assert (pred["mean"] >= pred["benchmark"].map(floors) - 1e-12).all()
    assert (pred["q05"] <= pred["mean"]).all() and (pred["mean"] <= pred["q95"]).all()


# ------------------------------------------------------------------------ registry, errors
def test_make_baseline_covers_reference_method_names():
    assert set(BASELINES) == {
        "per_benchmark_flops_sigmoid_family_intercept", "per_benchmark_flops_sigmoid_shared",
        "pca_observational_d2", "pca_observational_d3",
    }
    for name in BASELINES:
        assert make_baseline(name).name == name
    with pytest.raises(ValueError, match=r"unknown baseline 'ruan'.*pca_observational_d3"):
        make_baseline("ruan")


@pytest.mark.parametrize("cls", [FlopsSigmoid, ObservationalScaling])
def test_bad_inputs_name_the_input_and_the_fix(cls):
    table, _, _ = flops_table()
    with pytest.raises(NotFittedError, match="call fit"):
        cls().predict(table.to_frame())
    with pytest.raises(TypeError, match=r"expects a ScoreTable.*load_evaluations"):
        cls().fit(table.to_frame())
    model = cls(family_intercepts=True) if cls is FlopsSigmoid else cls(2)
    model.fit(table)
    with pytest.raises(DataValidationError, match=r"frame lacks columns \['tokens'\]"):
        model.predict(table.to_frame().drop(columns="tokens"))
    bad = table.to_frame()
    bad.loc[0, "params"] = -1.0
    with pytest.raises(DataValidationError, match=r"'params' must hold positive counts.*f0-m0"):
        model.predict(bad)
    with pytest.raises(ValueError, match="ridge must be positive"):
        cls(ridge=0.0).fit(table)


def test_fit_errors_on_empty_benchmark_and_too_many_components():
    table, _, _ = flops_table()
    scores = table.scores.copy()
    scores[:, 1] = np.nan
    empty = ScoreTable(table.models, table.family, table.params, table.tokens,
                       table.benchmarks, table.floors, scores)
    with pytest.raises(DataValidationError,
                       match=r"benchmarks \['B'\] have no observed.*subset"):
        FlopsSigmoid().fit(empty)
    with pytest.raises(ValueError, match=r"n_components=5 must be an integer in 1\.\.3"):
        ObservationalScaling(5).fit(table)
