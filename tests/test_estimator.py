"""SlothModel: parameter recovery on simulated leaderboards, persistence, determinism, errors."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from sloth import NotFittedError, SlothModel
from sloth.exceptions import ConvergenceWarning, DataValidationError, IdentifiabilityError
from sloth.model.simulate import simulate_leaderboard

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def simulated():
    return simulate_leaderboard(n_families=30, n_skills=2, seed=11, missing_fraction=0.15)


@pytest.fixture(scope="module")
def fitted(simulated):
    table, _ = simulated
    model = SlothModel(2, num_chains=2, num_warmup=300, num_samples=300, max_samples=None,
                       seed=5, progress_bar=False)
    return model.fit(table)


def test_posterior_is_labelled_with_dims_and_coords(fitted, simulated):
    table, _ = simulated
    tree = fitted.idata_
    for group in ("posterior", "log_likelihood", "sample_stats", "observed_data",
                  "constant_data"):
        assert group in tree.children
    post = tree["posterior"]
    assert post["loading"].dims == ("chain", "draw", "benchmark", "skill")
    assert post["mean_score"].dims == ("chain", "draw", "model", "benchmark")
    assert post["family_efficiency"].dims == ("chain", "draw", "family", "skill")
    assert list(post["model"].values) == list(table.models)
    assert list(post["family"].values) == list(table.families)
    assert tree["log_likelihood"]["scores"].sizes["observation"] == table.n_scores
    assert int(tree["sample_stats"]["diverging"].sum()) == 0


def test_mean_scores_are_recovered_with_calibrated_intervals(fitted, simulated):
    _, truth = simulated
    draws = fitted.idata_["posterior"]["mean_score"].to_numpy().reshape(-1, *truth.mean_score.shape)
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
    coverage = np.mean((truth.mean_score >= lo) & (truth.mean_score <= hi))
    assert 0.80 <= coverage <= 0.98, coverage
    assert np.abs(draws.mean(axis=0) - truth.mean_score).mean() < 0.015


def test_loadings_are_recovered_in_the_anchor_frame(fitted, simulated):
    _, truth = simulated
    anchors = [fitted.benchmarks_.index(a) for a in fitted.anchors_]
    # The model is identified up to Lambda -> Lambda A^-1 with A the anchors' block:
    # compare with the true loadings expressed in the same frame.
    expected = truth.loading @ np.linalg.inv(truth.loading[anchors])
    post = fitted.idata_["posterior"]["loading"].to_numpy().reshape(-1, *expected.shape)
    free = [j for j in range(expected.shape[0]) if j not in anchors]
    est = post.mean(axis=0)[free]
    assert np.corrcoef(est.ravel(), expected[free].ravel())[0, 1] > 0.9
    lo, hi = np.quantile(post[:, free], [0.02, 0.98], axis=0)
    assert np.mean((expected[free] >= lo) & (expected[free] <= hi)) >= 0.75


def test_sampler_converges_on_simulated_data(fitted):
    s = fitted.summary()["sampler"]
    assert s["divergences"] == 0
    assert s["rhat_max"] < 1.05
    assert s["ess_bulk_min"] > 50


def test_save_load_predict_is_identical(fitted, simulated, tmp_path):
    table, _ = simulated
    path = tmp_path / "fit.nc"
    fitted.save(path)
    loaded = SlothModel.load(path)
    assert loaded.anchors_ == fitted.anchors_
    assert loaded.get_config() == fitted.get_config()
    frame = table.to_frame().iloc[:7]
    pd.testing.assert_frame_equal(loaded.predict(frame), fitted.predict(frame))
    pd.testing.assert_frame_equal(
        loaded.predict(frame, kind="mean"), fitted.predict(frame, kind="mean")
    )
    assert json.loads(loaded.idata_.attrs["model_config"])["n_skills"] == 2


def test_predict_returns_tidy_frame_with_ordered_quantiles(fitted, simulated):
    table, truth = simulated
    frame = table.to_frame().iloc[:5]
    out = fitted.predict(frame)
    assert list(out.columns) == ["model", "family", "benchmark", "mean", "median", "q05", "q95",
                                 "params_ratio", "tokens_ratio", "compute_ratio",
                                 "covariate_distance", "extrapolating"]
    assert len(out) == 5 * table.n_benchmarks
    assert (out["q05"] <= out["median"]).all() and (out["median"] <= out["q95"]).all()
    assert out[["q05", "q95"]].stack().between(0, 1).all()
    means = fitted.predict(frame, kind="mean")
    # intervals of a score include noise, so they are wider than those of the mean
    assert ((out["q95"] - out["q05"]) >= (means["q95"] - means["q05"]) - 1e-9).mean() > 0.95
    np.testing.assert_allclose(
        means["mean"].to_numpy().reshape(5, -1), truth.mean_score[:5], atol=0.06
    )


def test_predict_rejects_unknown_family_and_missing_columns(fitted, simulated):
    table, _ = simulated
    frame = table.to_frame().iloc[:2].copy()
    frame.loc[:, "family"] = "brand-new"
    with pytest.raises(DataValidationError, match="brand-new"):
        fitted.predict(frame)
    with pytest.raises(DataValidationError, match="tokens"):
        fitted.predict(table.to_frame().drop(columns="tokens"))


def test_predict_refuses_sizes_in_billions_unless_told(fitted, simulated):
    """Counts are checked against the fit's models: sizes in billions are named, with the
    keyword that declares them, and accepted once declared."""
    table, _ = simulated
    frame = table.to_frame().iloc[:3].copy()
    expected = fitted.predict(frame, kind="mean")
    frame["params"] = frame["params"] / 1e9
    with pytest.raises(DataValidationError, match=r"params.*params_unit"):
        fitted.predict(frame)
    same = fitted.predict(frame, kind="mean", params_unit=1e9)
    np.testing.assert_allclose(same["mean"], expected["mean"])


def test_same_seed_same_posterior_and_other_seed_differs():
    table, _ = simulate_leaderboard(n_families=8, n_skills=1, n_benchmarks=6, seed=4)
    kwargs = dict(num_chains=2, num_warmup=60, num_samples=40, map_starts=2, progress_bar=False)
    a = SlothModel(1, seed=3, **kwargs).fit(table).idata_["posterior"]
    b = SlothModel(1, seed=3, **kwargs).fit(table).idata_["posterior"]
    c = SlothModel(1, seed=4, **kwargs).fit(table).idata_["posterior"]
    np.testing.assert_array_equal(a["loading"].to_numpy(), b["loading"].to_numpy())
    np.testing.assert_array_equal(a["mean_score"].to_numpy(), b["mean_score"].to_numpy())
    assert not np.array_equal(a["mean_score"].to_numpy(), c["mean_score"].to_numpy())


def test_unfitted_model_raises():
    with pytest.raises(NotFittedError, match="fit"):
        SlothModel().predict(pd.DataFrame())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_skills": 5}, "n_skills"),
        ({"noise": "cauchy"}, "noise"),
        ({"num_samples": 0}, "num_samples"),
        ({"n_skills": 2, "anchors": ["MMLU"]}, "anchors"),
    ],
)
def test_invalid_options_are_named(kwargs, message):
    table, _ = simulate_leaderboard(n_families=4, n_skills=1, n_benchmarks=6, seed=0)
    with pytest.raises(ValueError, match=message):
        SlothModel(**kwargs).fit(table)


def test_too_many_skills_for_benchmarks():
    table, _ = simulate_leaderboard(n_families=4, n_skills=1, n_benchmarks=3, seed=0)
    with pytest.raises(IdentifiabilityError, match="n_skills"):
        SlothModel(3).fit(table)


def test_short_chains_raise_a_convergence_warning_kept_in_the_file(tmp_path):
    table, _ = simulate_leaderboard(n_families=8, n_skills=1, n_benchmarks=6, seed=4)
    model = SlothModel(num_chains=2, num_warmup=8, num_samples=12, map_starts=1,
                       progress_bar=False)  # n_skills="auto": 2 on six benchmarks
    with pytest.warns(ConvergenceWarning, match=r"did not converge cleanly.*ess:"):
        model.fit(table)
    failed = {f.check for f in [*model.convergence_.errors, *model.convergence_.warnings]}
    assert {"rhat", "ess"} <= failed
    assert model.convergence_.sampler["num_draws"] == 48
    assert model.n_skills == "auto" and model.n_skills_ == 2 and len(model.anchors_) == 2
    assert model.summary()["convergence_warnings"]
    path = tmp_path / "short.nc"
    model.save(path)
    loaded = SlothModel.load(path)
    assert loaded.convergence_.to_dict() == model.convergence_.to_dict()


def test_a_converged_fit_warns_nothing():
    table, _ = simulate_leaderboard(n_families=10, n_skills=1, n_benchmarks=6, seed=2)
    model = SlothModel(1, link="logistic", num_chains=2, num_warmup=400, num_samples=600,
                       progress_bar=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(table)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)], \
        model.convergence_.format()
    assert model.convergence_.passed and not model.convergence_.warnings
    checks = {f.check for f in model.convergence_.sampling}
    assert checks == {"divergences", "tree_depth", "ebfmi", "rhat", "ess"}
    # the tree depth is judged against the fit's own limit, not NumPyro's default
    depth = next(f for f in model.convergence_.sampling if f.check == "tree_depth")
    assert depth.details["max_tree_depth"] == model.max_tree_depth
