"""Skills of a fit: rotation per draw, names, level curves, compute optima, ``sloth skills``.

One small NUTS fit of a simulated two-skill leaderboard with known truth is shared by the
module: a "knowledge" skill (ARC, HellaSwag, Winogrande, MMLU) that grows mostly with size
and whose negative size x tokens interaction leaves no interior compute optimum
(parameter-hungry), and a "reasoning" skill (GSM8K, BBH, IFEval, TruthfulQA) with a positive
interaction and so an interior optimum at a known tokens-per-parameter ratio.
"""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from sloth import SlothModel
from sloth.cli.main import main
from sloth.model import observation_scale
from sloth.model.design import build_arrays
from sloth.model.maths import compute_mean_score
from sloth.model.simulate import simulate_leaderboard
from sloth.posterior.datatree import build_datatree
from sloth.skills.analysis import analyze_skills, propose_names
from sloth.skills.rotation import align_columns

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

KNOWLEDGE = ("MMLU", "ARC", "HellaSwag", "Winogrande")
#: True slopes on the standardized (log N, log D, log N x log D): knowledge, reasoning.
SLOPES = np.array([[1.0, 0.8], [0.3, 0.6], [-0.3, 0.4]])


def _simulate(seed: int = 3):
    """A two-skill leaderboard with simple-structure loadings and the slopes above."""
    table, truth = simulate_leaderboard(n_families=30, n_skills=2, n_benchmarks=8, seed=seed,
                                        missing_fraction=0.1)
    rng = np.random.default_rng(seed)
    J = table.n_benchmarks
    loading = np.full((J, 2), 0.1)
    for j, b in enumerate(table.benchmarks):
        k = 0 if b in KNOWLEDGE else 1
        loading[j, k] = 1.3 if b not in ("IFEval", "TruthfulQA") else 0.8
    x = truth.scaler.transform(table.params, table.tokens)
    skills = truth.family_efficiency[table.family_index] + x @ SLOPES
    mean = compute_mean_score(skills, loading, truth.intercept, table.floors)
    scale = observation_scale(mean, 0.015, truth.inv_items)
    scores = np.clip(mean + scale * rng.standard_t(5.0, size=mean.shape), 0.0, 1.0)
    scores[~table.observed] = np.nan
    table = replace(table, scores=scores)
    truth = replace(truth, loading=loading, skill_slope=SLOPES, skills=skills, mean_score=mean)
    return table, truth


def _truth_tree(table, truth):
    """A one-draw 'posterior' holding the true parameters, in the layout of a fit."""
    d = truth.loading.shape[1]
    samples = {
        "skill_slope": truth.skill_slope[None, None],
        "family_efficiency": truth.family_efficiency[None, None],
        "family_scale": np.ones((1, 1, d)),
        "family_corr_chol": np.eye(d)[None, None],
        "loading": truth.loading[None, None],
        "intercept": truth.intercept[None, None],
        "noise_scale": truth.noise_scale[None, None],
    }
    arrays = build_arrays(table, truth.scaler, truth.inv_items)
    attrs = {"scaler": json.dumps(truth.scaler.to_attrs()), "anchors": "[]"}
    return build_datatree(samples, {}, np.zeros((1, 1, len(arrays.scores))), table, arrays,
                          truth.scaler.names, attrs)


@pytest.fixture(scope="module")
def simulated():
    return _simulate()


@pytest.fixture(scope="module")
def fitted(simulated):
    table, _ = simulated
    model = SlothModel(2, num_chains=2, num_warmup=150, num_samples=150, map_starts=1,
                       seed=1, progress_bar=False)
    return model.fit(table)


@pytest.fixture(scope="module")
def analysis(fitted):
    return analyze_skills(fitted, rotation="geomin")


@pytest.fixture(scope="module")
def truth_analysis(simulated):
    return analyze_skills(_truth_tree(*simulated), rotation="geomin")


def _matching(analysis, truth_analysis):
    """Index of the fitted skill matching each true rotated skill, and its sign."""
    perm, signs = align_columns(analysis.rotation.loading.mean(axis=0)[None],
                                truth_analysis.rotation.loading[0])
    return perm[0], signs[0]


def test_rotated_loadings_match_the_truth_up_to_sign_and_permutation(analysis,
                                                                     truth_analysis):
    perm, signs = _matching(analysis, truth_analysis)
    est = analysis.rotation.loading.mean(axis=0)[:, perm] * signs
    true = truth_analysis.rotation.loading[0]
    congruence = np.sum(est * true, axis=0) / (np.linalg.norm(est, axis=0)
                                               * np.linalg.norm(true, axis=0))
    assert np.all(congruence > 0.97), congruence
    # skill signs are oriented so that loadings are mostly positive
    assert np.all(signs == 1)
    # simple structure recovered: each benchmark loads mainly on its true skill
    table = analysis.loadings_table(wide=True)
    for b in analysis.benchmarks:
        main_skill = table.loc[b].abs().idxmax()
        expected = truth_analysis.names[0 if b in KNOWLEDGE else 1]
        assert analysis.names.index(main_skill) == perm[truth_analysis.names.index(expected)]


def test_names_follow_the_top_loading_benchmarks_and_can_be_overridden(analysis, fitted):
    assert sorted(analysis.names) == ["knowledge", "reasoning"]
    k = analysis.names.index("knowledge")
    assert set(analysis.top_benchmarks(3)["knowledge"]) <= set(KNOWLEDGE)
    assert analysis.loadings_table(wide=True).loc["HellaSwag"].idxmax() == "knowledge"
    renamed = analysis.rename(["a", "b"])
    assert renamed.names == ["a", "b"]
    assert renamed.loadings_table()["skill"].unique().tolist() == ["a", "b"]
    again = analyze_skills(fitted, rotation="geomin", names=["x", "y"])
    assert again.names == ["x", "y"]
    np.testing.assert_allclose(again.rotation.loading, analysis.rotation.loading)
    with pytest.raises(ValueError, match="distinct"):
        analysis.rename(["same", "same"])
    with pytest.raises(ValueError, match="2 distinct"):
        analysis.rename(["only-one"])
    assert k in (0, 1)


def test_propose_names_falls_back_to_the_top_benchmark():
    loading = np.array([[0.9, 0.0], [0.8, 0.1], [0.0, 1.0], [0.1, 0.7]])
    assert propose_names(loading, ["GSM8K", "MATH", "MyQA", "OtherQA"]) == ["reasoning", "MyQA"]
    # two skills led by the same theme: the weaker one is named after its top benchmark
    both = np.array([[1.0, 0.0], [0.0, 0.9], [0.1, 0.1]])
    assert propose_names(both, ["GSM8K", "GPQA", "ARC"]) == ["reasoning", "GPQA"]


def test_rotation_leaves_fitted_linear_predictors_unchanged(fitted, analysis):
    # eta = theta Lambda^T + b is what every link maps to a mean: if it is unchanged, so
    # are the fitted means, whatever the link
    post = fitted.idata_["posterior"]
    stack = {k: post[k].to_numpy().reshape(-1, *post[k].shape[2:])
             for k in ("skills", "loading")}
    rotated = analysis.rotation.transform_skills(stack["skills"])
    before = np.einsum("snd,sjd->snj", stack["skills"], stack["loading"])
    after = np.einsum("snd,sjd->snj", rotated, analysis.rotation.loading)
    np.testing.assert_allclose(after, before, atol=1e-9)
    # the rotated skills have unit variance across the fitted models, in every draw
    np.testing.assert_allclose(rotated.var(axis=1, ddof=1), 1.0, atol=1e-8)


def test_draws_are_aligned_across_chains(fitted, analysis):
    rot = analysis.rotation
    assert rot.converged.mean() > 0.95
    assert np.quantile(rot.congruence, 0.01) > 0.9
    chains = rot.loading.reshape(2, -1, *rot.loading.shape[1:]).mean(axis=1)
    assert np.abs(chains[0] - chains[1]).max() < 0.15
    conv = analysis.convergence().set_index("variable")
    assert conv.loc["loading", "rhat_max"] < 1.1 and conv.loc["loading", "ess_bulk_min"] > 30
    tree = analysis.to_datatree()
    assert tree["posterior"]["loading"].dims == ("chain", "draw", "benchmark", "skill")
    assert list(tree["posterior"]["skill"].values) == analysis.names


def test_correlations_are_valid_and_varimax_skills_are_uncorrelated(fitted, analysis):
    corr = analysis.correlation_draws("models")
    np.testing.assert_allclose(np.diagonal(corr, axis1=1, axis2=2), 1.0, atol=1e-9)
    table = analysis.correlation_table("families")
    assert len(table) == 1 and -1 <= table["lower"][0] <= table["upper"][0] <= 1
    varimax = analyze_skills(fitted, rotation="varimax")
    np.testing.assert_allclose(varimax.correlation_draws("models"),
                               np.broadcast_to(np.eye(2), corr.shape), atol=1e-8)
    none = analyze_skills(fitted, rotation="none")
    np.testing.assert_allclose(none.rotation.loading,
                               fitted.idata_["posterior"]["loading"].to_numpy().reshape(
                                   -1, len(fitted.benchmarks_), 2))


def test_skill_levels_grow_with_size_and_use_the_family(analysis, fitted):
    sizes = np.geomspace(1e8, 1e11, 5)
    levels = analysis.skill_levels(sizes, 1e12)
    assert levels.shape == (analysis.rotation.loading.shape[0], 5, 2)
    k = analysis.names.index("knowledge")
    assert np.all(np.diff(levels[..., k].mean(axis=0)) > 0)
    family = fitted.families_[0]
    with_family = analysis.skill_levels(sizes, 1e12, family=family)
    shift = analysis.family_efficiency[:, 0][:, None, :]
    np.testing.assert_allclose(with_family - levels, np.broadcast_to(shift, levels.shape))
    params, tokens, grid = analysis.level_grid(n=7)
    assert grid.shape == (7, 7, 2)
    np.testing.assert_allclose(grid[3, 2], analysis.skill_levels(params[2], tokens[3])
                               .mean(axis=0), atol=1e-9)
    with pytest.raises(ValueError, match="not in the fit"):
        analysis.skill_levels(sizes, 1e12, family="no-such-family")


def test_compute_optimum_is_the_maximum_along_the_iso_flop_line(analysis):
    compute = 1e23
    draws = analysis.optimal_draws(compute, ratio_bounds=(1.0, 1e5))
    ratios = np.geomspace(1.0, 1e5, 2001)
    n = np.sqrt(compute / (6.0 * ratios))
    levels = analysis.skill_levels(n, compute / (6.0 * n))  # (S, 2001, d)
    best = ratios[np.argmax(levels, axis=1)]  # (S, d)
    np.testing.assert_allclose(np.log10(draws["D_per_N"][:, 0]), np.log10(best), atol=0.01)
    np.testing.assert_allclose(6 * draws["N_opt"] * draws["D_opt"], compute, rtol=1e-9)


def test_compute_optimal_tokens_per_parameter_recover_the_truth(analysis, truth_analysis):
    perm, _ = _matching(analysis, truth_analysis)
    fit = analysis.compute_optimal((1e22, 1e24), level=0.9)
    true = truth_analysis.compute_optimal((1e22, 1e24))
    r_true = truth_analysis.names.index("reasoning")
    k_true = truth_analysis.names.index("knowledge")
    assert true.loc[true["skill"] == "reasoning", "interior"].iloc[0] == 1.0
    assert true.loc[true["skill"] == "knowledge", "at_params_end"].iloc[0] == 1.0
    reasoning = fit[fit["skill"] == analysis.names[perm[r_true]]]
    knowledge = fit[fit["skill"] == analysis.names[perm[k_true]]]
    target = true.loc[true["skill"] == "reasoning", "D_per_N"].iloc[0]
    assert 100 < target < 1000
    for row in reasoning.itertuples():
        assert row.D_per_N_lower <= target <= row.D_per_N_upper
        assert row.interior > 0.7
    # the ratio does not depend on the budget; N* grows as C^(1/2)
    np.testing.assert_allclose(reasoning["D_per_N"].iloc[0], reasoning["D_per_N"].iloc[1])
    np.testing.assert_allclose(reasoning["N_opt"].iloc[1] / reasoning["N_opt"].iloc[0], 10.0)
    assert knowledge["at_params_end"].iloc[0] > 0.8
    assert analysis.ratio_comparison(analysis.names[perm[r_true]],
                                     analysis.names[perm[k_true]]) > 0.95
    slope = analysis.iso_flop_slope(20.0).set_index("skill")["prob_positive"]
    assert slope[analysis.names[perm[k_true]]] < 0.05


def test_analyze_skills_reads_a_posterior_file_as_the_fit_itself(fitted, analysis, tmp_path):
    path = tmp_path / "fit.nc"
    fitted.save(path)
    from_file = analyze_skills(path, rotation="geomin")
    pd.testing.assert_frame_equal(from_file.loadings_table(), analysis.loadings_table(),
                                  rtol=1e-5)
    with pytest.raises(FileNotFoundError, match="no posterior file"):
        analyze_skills(tmp_path / "missing.nc")


def test_analyze_skills_rejects_bad_input(fitted):
    with pytest.raises(ValueError, match="rotation"):
        analyze_skills(fitted, rotation="promax")
    with pytest.raises(TypeError, match="analyze_skills expects a fitted SlothModel"):
        analyze_skills(pd.DataFrame())
    with pytest.raises(ValueError, match="extra covariates"):
        analyze_skills(fitted, extra={"instruct": 1.0})


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("skills") / "fit.nc"
    fitted.save(path)
    return path


def test_cli_prints_json_and_tables(saved, capsys):
    assert main(["skills", str(saved), "--json", "--names", "k1,k2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["names"] == ["k1", "k2"] and out["rotation"] == "geomin"
    assert {r["compute"] for r in out["compute_optimal"]} == {1e22, 1e24}
    assert len(out["loadings"]) == 8 * 2
    assert main(["skills", str(saved), "--rotation", "varimax", "--compute", "1e23"]) == 0
    text = capsys.readouterr().out
    assert "varimax" in text and "1e+23" in text and "tokens per parameter" in text


def test_cli_bad_input_exits_2(saved, tmp_path, capsys):
    assert main(["skills", str(tmp_path / "missing.nc")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["skills", str(saved), "--names", "a,b,c"]) == 2
    assert "--names" in capsys.readouterr().err
    assert main(["skills", str(saved), "--rotation", "promax"]) == 2
    assert main(["skills", str(saved), "--compute", "-5"]) == 2
    not_nc = tmp_path / "bad.nc"
    not_nc.write_text("not a posterior")
    assert main(["skills", str(not_nc)]) == 2


def test_cli_figures_are_written_whole(saved, tmp_path, capsys, monkeypatch):
    """``--figures`` writes every figure as a PNG; a write that fails part-way leaves the
    earlier file of that name as it was and no partial file beside it."""
    import matplotlib.figure

    out = tmp_path / "figures"
    assert main(["skills", str(saved), "--figures", str(out)]) == 0
    capsys.readouterr()
    names = sorted(p.name for p in out.iterdir())
    assert names == ["levels_1.png", "levels_2.png", "loadings.png", "trace.png"]
    for path in out.iterdir():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path.name
    before = (out / "trace.png").read_bytes()

    real = matplotlib.figure.Figure.savefig

    def half_written(self, fname, *args, **kwargs):
        if self.get_suptitle():  # the trace figure: write a few bytes, then fail
            with open(fname, "wb") as handle:
                handle.write(b"\x89PNG")
            raise OSError("disk full")
        return real(self, fname, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", half_written)
    assert main(["skills", str(saved), "--figures", str(out)]) != 0
    assert "disk full" in capsys.readouterr().err
    assert (out / "trace.png").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == names
