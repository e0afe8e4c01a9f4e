"""Post-sampling checks (``sloth.checks.report.diagnose``) and ``sloth diagnose``.

Most checks are tested on posterior trees built from known parameters (no sampling): draws
around the truth, then one chain flipped, rotated or moved, a parameter left at its prior,
an anchor replaced by noise. One small NUTS fit, shared by the module, covers the whole path
from ``SlothModel`` and a saved file.
"""

import copy
import json
import warnings
from dataclasses import replace

import jax
import numpy as np
import pytest
from numpyro.infer import Predictive

from sloth.checks import diagnostics
from sloth.checks.convergence import convergence_table, convergence_variables, sampler_summary
from sloth.checks.identification import (
    chain_alignment,
    contraction,
    invariant_quantities,
    prior_variances,
)
from sloth.checks.report import diagnose
from sloth.checks.thresholds import DiagnosticThresholds
from sloth.cli.main import main
from sloth.model import DEFAULT_PRIORS, ModelStructure, skill_model
from sloth.model.design import build_arrays
from sloth.model.simulate import simulate_leaderboard
from sloth.posterior.datatree import build_datatree
from sloth.posterior.fileformat import migrate

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SAMPLING_CHECKS = {"divergences", "tree_depth", "ebfmi", "rhat", "rhat_invariant", "ess",
                   "chain_alignment", "contraction", "slope_efficiency", "benchmark_signal"}


# ----------------------------------------------------------------------------- fake posteriors


@pytest.fixture(scope="module")
def simulated():
    return simulate_leaderboard(n_families=10, n_skills=2, n_benchmarks=6, seed=7)


def _rotation(degrees):
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def fake_tree(simulated, *, anchored=True, chain_transform=None, n_chains=4, n_draws=300,
              loading_sd=None, table=None, seed=0, edit=None, mean_score=True, link=False,
              config=None):
    """A posterior of draws scattered around the simulation's truth.

    ``anchored``: loadings in the frame of anchors MMLU, ARC (rows fixed to the identity),
    else all free. ``chain_transform``: matrix ``T`` (d, d) applied to chain 1 as the change of
    skills ``theta -> T^T theta`` (loadings ``Lambda T``, slopes ``B T``, efficiencies
    ``alpha T``), which leaves every rotation-invariant quantity unchanged when ``T`` is
    orthogonal. ``loading_sd``: {benchmark: sd} of the draws of that benchmark's loadings.
    ``edit(samples)`` changes the draws in place before the tree is built.
    ``mean_score=False`` drops the fitted means (R-hat on them is most of the cost).
    ``link=True`` adds the flexible link's ``link_shape`` and ``link_ceiling``; ``config``
    updates the saved configuration.
    """
    base, truth = simulated
    table = base if table is None else table
    rng = np.random.default_rng(seed)
    names = list(table.benchmarks)
    anchors = [names.index("MMLU"), names.index("ARC")]
    if anchored:
        A = truth.loading[anchors]
        loading, slope, eff = (truth.loading @ np.linalg.inv(A), truth.skill_slope @ A.T,
                               truth.family_efficiency @ A.T)
    else:
        loading, slope, eff = truth.loading, truth.skill_slope, truth.family_efficiency
    C, S = n_chains, n_draws

    def draws(x, sd):
        x = np.asarray(x, dtype=float)
        return x + sd * rng.standard_normal((C, S, *x.shape))

    samples = {
        "skill_slope": draws(slope, 0.05),
        "family_efficiency": draws(eff, 0.08),
        "loading": draws(loading, 0.04),
        "intercept": draws(truth.intercept, 0.04),
        "noise_scale": np.abs(draws(truth.noise_scale, 0.002)),
        "noise_df": draws(4.0, 0.3),
    }
    if link:
        samples["link_shape"] = np.exp(draws(np.zeros(len(names)), 0.05))
        samples["link_ceiling"] = np.clip(draws(np.full(len(names), 0.95), 0.01), 0.0, 1.0)
    for bench, sd in (loading_sd or {}).items():
        j = names.index(bench)
        samples["loading"][:, :, j] = loading[j] + sd * rng.standard_normal((C, S, 2))
    if anchored:
        samples["loading"][:, :, anchors] = np.eye(2)
    if chain_transform is not None:
        T = np.asarray(chain_transform, dtype=float)
        for key in ("loading", "skill_slope", "family_efficiency"):
            samples[key][1] = samples[key][1] @ T
    if edit is not None:
        edit(samples)
    eff_draws = samples["family_efficiency"]
    centred = eff_draws - eff_draws.mean(axis=2, keepdims=True)
    cov = np.einsum("csfk,csfl->cskl", centred, centred) / (eff_draws.shape[2] - 1)
    scale = np.sqrt(np.einsum("cskk->csk", cov))
    corr = cov / (scale[..., :, None] * scale[..., None, :])
    samples["family_scale"] = scale
    samples["family_corr_chol"] = np.linalg.cholesky(corr)
    stats = {
        "diverging": np.zeros((C, S), dtype=bool),
        "n_steps": np.full((C, S), 15),
        "tree_depth": np.full((C, S), 4),
        "acceptance_rate": np.full((C, S), 0.9),
        "energy": rng.standard_normal((C, S)),
        "lp": np.zeros((C, S)),
    }
    arrays = build_arrays(table, truth.scaler, truth.inv_items)
    attrs = {"config": json.dumps({"n_skills": 2, "priors": dict(DEFAULT_PRIORS),
                                   "extra_covariates": [], **(config or {})})}
    if anchored:
        attrs["anchors"] = json.dumps([names[a] for a in anchors])
    tree = build_datatree(samples, stats, np.zeros((C, S, arrays.scores.shape[0])), table,
                          arrays, truth.scaler.names, attrs)
    if not mean_score:
        tree["posterior"] = tree["posterior"].to_dataset().drop_vars("mean_score")
    return tree


@pytest.fixture(scope="module")
def clean_report(simulated):
    return diagnose(fake_tree(simulated))


def test_draws_around_the_truth_pass_clean(clean_report):
    assert clean_report.passed
    assert [f.format() for f in clean_report.findings if f.severity != "ok"] == []
    assert {f.check for f in clean_report.sampling} == SAMPLING_CHECKS | {"anchor_signal"}
    assert {f.check for f in clean_report.structural} >= {"design_rank", "benchmarks_per_skill"}


def test_report_is_json_and_text(clean_report):
    data = json.loads(json.dumps(clean_report.to_dict(), allow_nan=False))
    assert data["passed"] is True and data["n_errors"] == 0 and data["failed_checks"] == []
    assert [f["check"] for f in data["sampling"]] == [f.check for f in clean_report.sampling]
    assert data["sampler"]["divergences"] == 0
    text = clean_report.format()
    assert "PASSED" in text and "Structure" in text and "Sampling" in text
    assert "[  ok ] chain_alignment" in text


def test_sign_flipped_chain(simulated):
    """Chain 1 with skill 2 mirrored: an equivalent solution. Raw loadings disagree, the
    invariant quantities do not, and the alignment names the flip."""
    tree = fake_tree(simulated, anchored=False, chain_transform=np.diag([1, -1]),
                     mean_score=False)
    report = diagnose(tree, structural=False,
                      checks=["rhat", "rhat_invariant", "chain_alignment"])
    assert not report.passed
    assert report.severity_of("rhat") == "error"
    assert "identification" in report.by_check("rhat")[0].message
    assert report.severity_of("rhat_invariant") == "ok"
    [align] = report.by_check("chain_alignment")
    assert align.severity == "error" and "chain 1: sign flip of skill_2" in align.message
    flipped = next(c for c in align.details["chains"] if c["chain"] == 1)
    np.testing.assert_allclose(flipped["rotation"], np.diag([1, -1]), atol=0.05)
    assert flipped["aligned_mismatch"] < 1.0 < flipped["mismatch"]


def test_rotated_and_permuted_chains(simulated):
    rotated = diagnose(fake_tree(simulated, anchored=False, chain_transform=_rotation(40),
                                 mean_score=False),
                       structural=False, checks=["rhat_invariant", "chain_alignment"])
    [align] = rotated.by_check("chain_alignment")
    assert align.severity == "error" and "rotation of the skills (about 40 degrees)" in (
        align.message)
    assert rotated.severity_of("rhat_invariant") == "ok"
    swapped = chain_alignment(fake_tree(simulated, anchored=False,
                                        chain_transform=np.array([[0, 1], [1, 0]])))
    assert "permutation" in swapped["chains"][1]["transform"]


def test_chain_in_another_mode(simulated):
    def move(samples):
        samples["loading"][1, :, 2:] += 0.8  # not a rotation: the fit itself differs

    report = diagnose(fake_tree(simulated, edit=move, mean_score=False), structural=False,
                      checks=["rhat_invariant", "chain_alignment"])
    assert report.severity_of("rhat_invariant") == "error"
    [align] = report.by_check("chain_alignment")
    assert align.severity == "error" and "different modes" in align.message


def test_prior_dominated_loadings_are_flagged(simulated):
    tree = fake_tree(simulated, loading_sd={"HellaSwag": 1.6})
    result = contraction(tree)
    values = result["loading"]["values"]
    assert values["loading[HellaSwag, skill_1]"] < 0.1 < values["loading[GSM8K, skill_1]"]
    report = diagnose(tree, structural=False, checks=["contraction"])
    [finding] = report.by_check("contraction")
    assert finding.severity == "warning"
    assert finding.details["weak"]["loading"] == ["loading[HellaSwag, skill_1]",
                                                  "loading[HellaSwag, skill_2]"]
    # anchor loadings are constants, not parameters
    assert not any("MMLU" in k for k in values)


def test_prior_variances_follow_the_priors():
    var = prior_variances({**DEFAULT_PRIORS, "skill_slope_scale": 2.0}, 3)
    assert var["skill_slope"] == pytest.approx(4.0)
    assert var["family_scale"] == pytest.approx(4.0 * (1 - 2 / np.pi))
    assert var["family_corr"] == pytest.approx(1 / (2 * 2.0 + 3 - 1))
    assert var["noise_df"] == pytest.approx(2 / 0.1**2)


def _prior_draw_variances(n_skills, priors, num_samples=20_000):
    """Per-group variance of one entry under the model's own prior (NumPyro prior draws of
    ``skill_model``, pooled over the entries of each group)."""
    F, J, P, n = 4, 6, 3, 8
    structure = ModelStructure(F, J, P, n_skills, tuple(range(n_skills)), "student_t",
                               priors, centered=False, link="flexible")
    rng = np.random.default_rng(0)
    args = (rng.normal(size=(n, P)), rng.integers(0, F, n), np.repeat(np.arange(n), J),
            np.tile(np.arange(J), n), np.full(J, 0.25), np.full(J, 1e-3), structure)
    draws = {k: np.asarray(v, dtype=float) for k, v in
             Predictive(skill_model, num_samples=num_samples)(jax.random.PRNGKey(0),
                                                              *args).items()}
    corr = np.einsum("sik,sjk->sij", draws["family_corr_chol"], draws["family_corr_chol"])
    upper = np.triu_indices(n_skills, 1)
    sites = {"skill_slope": draws["skill_slope"], "loading": draws["loading_free"],
             "family_efficiency": draws["family_efficiency"],
             "family_corr": corr[:, upper[0], upper[1]],
             **{k: draws[k] for k in ("family_scale", "intercept", "noise_scale", "noise_df",
                                      "link_shape", "link_ceiling")}}
    return {k: float(v.reshape(num_samples, -1).var(axis=0).mean()) for k, v in sites.items()}


def test_contraction_uses_the_models_prior_variances(simulated):
    """The prior variances of the contraction check are those of the model's prior draws."""
    result = contraction(fake_tree(simulated, link=True))
    monte_carlo = _prior_draw_variances(2, dict(DEFAULT_PRIORS))
    assert set(result) == set(monte_carlo)
    for group, mc in monte_carlo.items():
        assert result[group]["prior_var"] == pytest.approx(mc, rel=0.05), group
    # overrides and the number of skills (the LKJ marginal) are followed too
    priors = {**DEFAULT_PRIORS, "skill_slope_scale": 2.0, "family_scale_scale": 0.7,
              "link_shape_scale": 0.3}
    var = prior_variances(priors, 3)
    for group, mc in _prior_draw_variances(3, priors).items():
        assert var[group] == pytest.approx(mc, rel=0.05), group


def test_tree_depth_is_judged_against_the_fits_own_limit(simulated):
    """Every fake draw has tree depth 4: saturated under max_tree_depth=4, not under 10."""
    report = diagnose(fake_tree(simulated, config={"max_tree_depth": 4}, mean_score=False),
                      structural=False, checks=["tree_depth", "rhat"])
    [finding] = report.by_check("tree_depth")
    assert finding.severity == "warning" and "maximum tree depth 4" in finding.message
    assert finding.details["max_tree_depth"] == 4
    assert report.sampler["max_tree_depth"] == 4 and report.sampler["max_tree_depth_hits"] == 1
    deep = fake_tree(simulated, config={"max_tree_depth": 10}, mean_score=False)
    assert diagnose(deep, structural=False, checks=["tree_depth"]).passed
    assert diagnose(deep, structural=False, checks=["tree_depth"]).severity_of(
        "tree_depth") == "ok"
    assert sampler_summary(deep)["max_tree_depth_hits"] == 0
    # the current format keeps sampler settings apart from the model's: found there too
    current = fake_tree(simulated, config={"max_tree_depth": 4}, mean_score=False)
    current.attrs = migrate(current, 1).attrs
    assert "config" not in current.attrs and "sampler_config" in current.attrs
    assert sampler_summary(current)["max_tree_depth"] == 4


def test_rhat_summary_covers_every_sampled_variable(simulated):
    """Link parameters and any other sampled variable (a family effect, say) count in the
    headline R-hat; the derived skills do not."""
    def stuck_link(samples):
        samples["link_shape"][0] += 0.5  # chain 0 apart on every benchmark's link shape

    tree = fake_tree(simulated, link=True, edit=stuck_link, mean_score=False)
    post = tree["posterior"].to_dataset()
    rng = np.random.default_rng(3)
    post["family_benchmark_scale"] = (("chain", "draw", "benchmark"),
                                      np.abs(rng.normal(0.5, 0.05, (4, 300, post.sizes[
                                          "benchmark"]))))
    tree["posterior"] = post
    covered = convergence_variables(tree["posterior"])
    assert {"link_shape", "link_ceiling", "family_benchmark_scale"} <= set(covered)
    assert "skills" not in covered
    table = convergence_table(tree)
    assert {"link_shape", "link_ceiling", "family_benchmark_scale", "loading"} <= set(table)
    assert "family_corr" not in table or table["family_corr"]["rhat_max"] < 1.05
    summary = sampler_summary(tree, table)
    assert summary["worst_rhat_variable"] == "link_shape" and summary["rhat_max"] > 1.05
    report = diagnose(tree, structural=False, checks=["rhat"])
    assert report.severity_of("rhat") == "error" and "link_shape" in (
        report.by_check("rhat")[0].message)


def test_fixed_anchor_loadings_raise_no_runtime_warning(simulated):
    """Anchor loadings fixed at 1 and 0 and a unit correlation diagonal are constants: the
    0/0 of their R-hat and ESS is silenced where it arises."""
    tree = fake_tree(simulated, link=True)
    assert (tree["posterior"]["loading"].sel(benchmark="MMLU").std(("chain", "draw")) == 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        report = diagnose(tree)
        sampler_summary(tree)
    assert report.passed, report.format()


def test_diagnostics_module_re_exports_the_public_names():
    for name in diagnostics.__all__:
        assert getattr(diagnostics, name) is not None
    assert diagnostics.diagnose is diagnose and diagnostics.sampler_summary is sampler_summary


def test_slope_traded_against_efficiencies(simulated):
    table, _ = simulated
    x = build_arrays(table, simulated[1].scaler, simulated[1].inv_items).covariates
    fam = table.family_index
    x_fam = np.array([x[fam == f, 1].mean() for f in range(fam.max() + 1)])

    def trade(samples):
        shift = 0.6 * np.random.default_rng(1).standard_normal(samples["skill_slope"].shape[:2])
        samples["skill_slope"][:, :, 1, 0] = 0.3 + shift  # log_tokens on skill_1
        samples["family_efficiency"][:, :, :, 0] -= shift[..., None] * x_fam

    report = diagnose(fake_tree(simulated, edit=trade), structural=False,
                      checks=["slope_efficiency"])
    [finding] = report.by_check("slope_efficiency")
    assert finding.severity == "warning"
    assert finding.details["undetermined"] == ["skill_slope[log_tokens, skill_1]"]
    assert finding.details["slopes"]["skill_slope[log_tokens, skill_1]"]["r2"] > 0.9


def test_anchor_that_loads_on_nothing(simulated):
    table, _ = simulated
    j = table.benchmarks.index("ARC")
    scores = table.scores.copy()
    rng = np.random.default_rng(0)
    scores[:, j] = np.where(np.isnan(scores[:, j]), np.nan,
                            0.45 + rng.normal(0, 0.02, len(scores)))
    report = diagnose(fake_tree(simulated, table=replace(table, scores=scores)),
                      checks=["anchor_signal", "benchmark_signal"])
    [finding] = report.by_check("anchor_signal")
    assert finding.severity == "error" and "'ARC'" in finding.message
    assert report.severity_of("anchors") == "error"  # the structural check agrees
    assert "anchor_signal" in report.to_dict()["failed_checks"]


def test_divergences_and_low_bfmi(simulated):
    tree = fake_tree(simulated)
    stats = tree["sample_stats"].to_dataset()
    diverging = np.zeros(stats["diverging"].shape, dtype=bool)
    diverging[0, :2] = True
    stats["diverging"] = (("chain", "draw"), diverging)
    stats["energy"] = (("chain", "draw"),
                       np.cumsum(np.random.default_rng(0).standard_normal(diverging.shape), 1))
    tree["sample_stats"] = stats
    report = diagnose(tree, structural=False, checks=["divergences", "ebfmi"])
    assert report.structural == []
    assert [f.check for f in report.sampling] == ["divergences", "ebfmi"]
    assert report.severity_of("divergences") == "warning"  # 2 of 600 draws
    assert report.severity_of("ebfmi") == "warning"
    strict = diagnose(tree, structural=False, checks=["divergences"],
                      thresholds=DiagnosticThresholds(divergence_error_fraction=0.001))
    assert strict.severity_of("divergences") == "error" and not strict.passed


def test_invariant_quantities_do_not_see_rotations(simulated):
    a = invariant_quantities(fake_tree(simulated, anchored=False))
    b = invariant_quantities(fake_tree(simulated, anchored=False, chain_transform=_rotation(70)))
    for name in ("loading_covariance", "communality", "covariate_effect", "mean_score"):
        np.testing.assert_allclose(a[name].to_numpy(), b[name].to_numpy(), rtol=1e-6,
                                   atol=1e-8)
    np.testing.assert_allclose(a["communality"].to_numpy(),
                               np.diagonal(a["loading_covariance"].to_numpy(), 0, 2, 3))


def test_diagnose_rejects_what_is_not_a_fit(simulated):
    with pytest.raises(TypeError, match="SlothModel"):
        diagnose(42)
    with pytest.raises(ValueError, match="rhatt"):
        diagnose(fake_tree(simulated, n_draws=10), checks=["rhatt"])


# ----------------------------------------------------------------------------- a real fit


@pytest.fixture(scope="module")
def fitted():
    from sloth import SlothModel

    table, _ = simulate_leaderboard(n_families=12, n_skills=1, n_benchmarks=6, seed=5)
    model = SlothModel(1, num_chains=2, num_warmup=200, num_samples=200, map_starts=1, seed=0,
                       progress_bar=False)
    return model.fit(table)


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("diagnose") / "fit.nc"
    fitted.save(path)
    return path


def test_small_fit_passes(fitted):
    with warnings.catch_warnings():  # anchor loadings fixed at 1 and 0: no 0/0 warnings
        warnings.simplefilter("error", RuntimeWarning)
        report = diagnose(fitted)
    assert report.passed, report.format()
    assert report.severity_of("divergences") == "ok"
    assert report.severity_of("chain_alignment") == "ok"
    assert report.by_check("anchor_signal")[0].details["r2"][fitted.anchors_[0]] > 0.5
    # the summary of the existing sampler check is reported unchanged
    assert report.sampler == sampler_summary(fitted.idata_)


def test_cli_diagnose_text_and_json(saved, capsys):
    assert main(["diagnose", str(saved)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Diagnostics of {saved}: PASSED")
    assert "rhat_invariant" in out and "anchors" in out
    assert main(["diagnose", str(saved), "--json", "--strict"]) == 0
    data = json.loads(capsys.readouterr().out)  # stdout holds exactly one JSON object
    assert data["passed"] is True and data["source"] == str(saved)
    assert {f["check"] for f in data["sampling"]} >= SAMPLING_CHECKS


def test_cli_strict_fails_on_a_failed_check(fitted, tmp_path, capsys):
    bad = copy.copy(fitted)
    bad.idata_ = fitted.idata_.copy()
    stats = bad.idata_["sample_stats"].to_dataset()
    stats["diverging"] = stats["diverging"] | True
    bad.idata_["sample_stats"] = stats
    path = tmp_path / "bad.nc"
    bad.save(path)
    assert main(["diagnose", str(path)]) == 0  # reported, not enforced
    assert "FAILED" in capsys.readouterr().out
    assert main(["diagnose", str(path), "--strict", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["failed_checks"] == ["divergences"]


def test_cli_bad_input_exits_2(tmp_path, capsys):
    assert main(["diagnose", str(tmp_path / "missing.nc")]) == 2
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "junk.nc"
    junk.write_text("not a posterior")
    assert main(["diagnose", str(junk)]) == 2
    err = capsys.readouterr().err
    assert "junk.nc" in err and "sloth fit --out" in err and "Traceback" not in err


def test_diagnose_a_file_or_a_bare_tree(fitted, saved):
    from_file = diagnose(saved, checks=["divergences"])
    assert from_file.source == str(saved)
    assert [f.check for f in from_file.sampling] == ["divergences"]
    from_tree = diagnose(fitted.idata_, checks=["contraction"])
    # the data are rebuilt from the tree for the structural checks, with the fit's anchors
    assert from_tree.source == "<DataTree>"
    [anchors] = from_tree.by_check("anchors")
    assert anchors.details["anchors"] == fitted.anchors_
    assert [f.to_dict() for f in from_tree.structural] == [
        f.to_dict() for f in from_file.structural]


def test_sampler_summary_of_a_fit_with_no_rhat_or_ess_says_nan(simulated):
    """A fit too short for R-hat and ESS (an empty convergence table) is summarized with
    nan figures and no worst variable, not an error."""
    tree = fake_tree(simulated, link=True)
    summary = sampler_summary(tree, {})
    assert np.isnan(summary["rhat_max"]) and np.isnan(summary["ess_bulk_min"])
    assert summary["worst_rhat_variable"] is None and summary["lowest_ess_variable"] is None
    assert summary["divergences"] == int(tree["sample_stats"]["diverging"].sum())


def test_diagnose_a_fit_of_auto_skills(comparison_fits):
    # SlothModel's default n_skills="auto" is kept as such in the file's settings; the
    # structural checks take the number the fit sampled (they used to fail on int("auto"))
    tree = comparison_fits[1]["d2"].idata_.copy()
    config = json.loads(tree.attrs["model_config"])
    config["n_skills"] = "auto"
    tree.attrs["model_config"] = json.dumps(config)
    report = diagnose(tree, checks=["divergences"])
    [ledermann] = report.by_check("benchmarks_per_skill")
    assert ledermann.details["n_skills"] == 2
