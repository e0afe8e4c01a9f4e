"""Model comparison (sloth.comparison): PSIS-LOO and leave-one-family-out ELPD of fits of the
same data, on a simulated leaderboard with two true skills (the ``comparison_fits`` fixture
of tests/conftest.py)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import logsumexp

import sloth
from sloth import SlothModel
from sloth.comparison import (
    compare,
    family_log_likelihood,
    fit_elpd,
    khat_counts,
    loo_families,
    loo_observations,
    observations,
)
from sloth.conditioning import new_family_log_likelihood, population_factor
from sloth.exceptions import DataValidationError
from sloth.model import maths
from sloth.posterior.api import Posterior
from tests.conftest import SINGLE_SCORE_FAMILY

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def fits(comparison_fits):
    return comparison_fits[1]


@pytest.fixture(scope="module")
def table(fits):
    return compare(fits)


def test_two_skills_beat_one_beyond_the_standard_error(table):
    assert list(table.index) == ["d2", "d1"]
    assert table.at["d2", "rank_loo"] == 0 and table.at["d2", "elpd_diff_loo"] == 0
    diff, dse = table.at["d1", "elpd_diff_loo"], table.at["d1", "dse_loo"]
    assert diff < -3 * dse < 0, (diff, dse)
    assert table.at["d2", "rank_lofo"] == 0
    assert table.at["d1", "elpd_diff_lofo"] < -2 * table.at["d1", "dse_lofo"]


def test_table_columns_and_khat_counts(table, fits):
    n = fits["d2"].table_.n_scores
    assert (table["n_observations"] == n).all()
    assert (table["n_families"] == 10).all()
    counts = table[["k_good", "k_ok", "k_bad", "k_very_bad"]].sum(axis=1)
    assert (counts == n).all()
    records = table.attrs["families"]
    assert len(records) == 2 * 10
    assert {"fit", "family", "n_models", "n_observations", "khat", "elpd_psis", "elpd",
            "method"} <= set(records[0])
    for name in ("d1", "d2"):
        high = [r["family"] for r in records if r["fit"] == name and r["khat"] > 0.7]
        assert table.attrs["unreliable"][name] == high
        assert table.at[name, "families_khat_high"] == len(high)
    assert sloth.compare is compare


def test_khat_bins_are_half_open_from_above():
    assert khat_counts(np.array([0.2, 0.5, 0.7, 0.71, 1.0, 1.01, -0.1])) == {
        "k_good": 3, "k_ok": 1, "k_bad": 2, "k_very_bad": 1}


def test_family_log_likelihood_sums_each_familys_observations(fits):
    tree = fits["d2"].idata_
    obs = observations(tree)
    grouped = family_log_likelihood(tree)
    pointwise = tree["log_likelihood"]["scores"].to_numpy().astype(np.float64)
    for f in grouped["family"].to_numpy():
        own = (obs["family"] == f).to_numpy()
        np.testing.assert_allclose(grouped.sel(family=f).to_numpy(),
                                   pointwise[:, :, own].sum(axis=-1), rtol=1e-12)
        assert int(grouped["n_observations"].sel(family=f)) == own.sum()
    np.testing.assert_allclose(grouped.sum("family").to_numpy(), pointwise.sum(axis=-1),
                               rtol=1e-10)
    # each observation's family is its model's
    families = dict(zip(fits["d2"].table_.models, fits["d2"].table_.family, strict=True))
    assert (obs["family"] == obs["model"].map(families)).all()


def test_a_family_with_one_score_has_that_scores_k_and_elpd(fits):
    tree = fits["d2"].idata_
    obs = observations(tree)
    (index,) = np.nonzero((obs["family"] == SINGLE_SCORE_FAMILY).to_numpy())
    assert len(index) == 1
    pointwise = loo_observations(tree)
    grouped = loo_families(tree)
    k_family = float(grouped.pareto_k.sel(family=SINGLE_SCORE_FAMILY))
    assert k_family == pytest.approx(float(pointwise.pareto_k[index[0]]), abs=1e-12)
    assert float(grouped.elpd_i.sel(family=SINGLE_SCORE_FAMILY)) == pytest.approx(
        float(pointwise.elpd_i[index[0]]), abs=1e-10)


def test_new_family_likelihood_matches_plain_monte_carlo(fits, comparison_fits):
    """The exact path's integral over a new family's efficiency (importance sampling around
    the conditional mode) against plain Monte Carlo from the population, with the model's
    likelihood (sloth.model.maths, as the NumPyro model states it)."""
    table = comparison_fits[0]
    posterior = Posterior(fits["d2"].idata_)
    frame = table.subset(models=np.asarray(table.family) == SINGLE_SCORE_FAMILY).to_frame()
    covariates, scores = posterior.standardize(frame), posterior.scores_of(frame)
    (j,) = np.nonzero(~np.isnan(scores[0]))
    estimate = new_family_log_likelihood(posterior, covariates, scores, proposals=256)
    S, K, d = posterior.n_draws, 4000, posterior.n_skills
    rng = np.random.default_rng(1)
    alpha = np.einsum("sij,skj->ski", population_factor(posterior),
                      rng.standard_normal((S, K, d)))
    skills = posterior.skills(np.repeat(covariates, K, axis=0), np.arange(K), efficiency=alpha)
    mean = posterior.mean_scores(skills)[:, :, j[0]]
    noise_scale = posterior.draws(("noise_scale",))["noise_scale"][:, j[0], None]
    scale = maths.observation_scale(mean, noise_scale, posterior.inv_items[j[0]])
    noise_df = posterior.noise_df()
    log_p = np.asarray(maths.score_distribution(
        mean, scale, None if noise_df is None else noise_df[:, None]).log_prob(scores[0, j[0]]))
    plain = logsumexp(log_p, axis=1) - np.log(K)
    assert np.median(np.abs(estimate - plain)) < 0.1
    assert logsumexp(estimate) == pytest.approx(logsumexp(plain), abs=0.05)


def test_exact_refit_replaces_a_familys_psis_estimate(fits):
    result = fit_elpd(fits["d2"], name="d2", refit_families=[SINGLE_SCORE_FAMILY])
    fam = result.families.set_index("family")
    row = fam.loc[SINGLE_SCORE_FAMILY]
    assert row["method"] == "refit" and row["refit_seconds"] > 0
    assert np.isfinite(row["elpd"]) and row["elpd"] != row["elpd_psis"]
    assert float(result.lofo.pareto_k.sel(family=SINGLE_SCORE_FAMILY)) == 0.0
    # predicted without its score, the family's score is less likely than in the fit
    assert float(result.lofo.p_loo_i.sel(family=SINGLE_SCORE_FAMILY)) > 0
    assert result.lofo.elpd == pytest.approx(fam["elpd"].sum())
    others = fam.drop(index=SINGLE_SCORE_FAMILY)
    assert (others["method"] == "psis").all()
    assert (others["elpd"] == others["elpd_psis"]).all()
    assert SINGLE_SCORE_FAMILY not in result.high_khat_families()
    with pytest.raises(DataValidationError, match="not families of fit"):
        fit_elpd(fits["d2"], refit_families=["no-such-family"])


@pytest.mark.slow  # two refits, each compiling its programs (about 100 s on 2 shared cores)
def test_exact_refits_on_dask_workers_give_the_values_in_process(fits, cluster):
    fast = {"num_warmup": 50, "num_samples": 50}
    here = fit_elpd(fits["d2"], refit_families=[SINGLE_SCORE_FAMILY], refit_params=fast)
    there = fit_elpd(fits["d2"], refit_families=[SINGLE_SCORE_FAMILY], refit_params=fast,
                     executor=cluster)
    columns = ["family", "khat", "elpd_psis", "elpd", "method", "refit_converged"]
    pd.testing.assert_frame_equal(here.families[columns], there.families[columns],
                                  check_exact=True)
    assert here.families.set_index("family").at[SINGLE_SCORE_FAMILY, "method"] == "refit"
    assert here.lofo.elpd == there.lofo.elpd and here.lofo.se == there.lofo.se


def _with_scores(tree, change):
    out = tree.copy()
    obs = out["observed_data"].to_dataset()
    scores = obs["scores"].to_numpy().copy()
    change(scores)
    out["observed_data"] = xr.DataTree(obs.assign(scores=(obs["scores"].dims, scores)))
    return out


def test_fits_of_different_data_are_refused(fits):
    tree = fits["d1"].idata_
    first = observations(tree).iloc[0]
    row = list(fits["d1"].table_.models).index(first["model"])
    col = list(fits["d1"].table_.benchmarks).index(first["benchmark"])

    def shift(scores):
        scores[row, col] += 0.01

    with pytest.raises(DataValidationError, match=r"'d2' and 'other' were fitted to "
                                                  r"different data.*scores differ.*Fix"):
        compare({"d2": fits["d2"], "other": _with_scores(tree, shift)})
    fewer = tree.copy()
    fewer["log_likelihood"] = xr.DataTree(
        tree["log_likelihood"].to_dataset().isel(observation=slice(1, None)))
    with pytest.raises(DataValidationError, match=r"different data.*only in the first"):
        compare({"d2": fits["d2"], "other": fewer})


def test_observations_in_another_order_are_aligned(fits, table):
    tree = fits["d1"].idata_
    rng = np.random.default_rng(0)
    order = rng.permutation(tree["log_likelihood"].sizes["observation"])
    shuffled = tree.copy()
    ll = tree["log_likelihood"].to_dataset().isel(observation=order)
    shuffled["log_likelihood"] = xr.DataTree(ll.assign_coords(observation=np.arange(len(order))))
    out = compare({"d2": fits["d2"], "d1": shuffled})
    for column in ("elpd_loo", "dse_loo", "elpd_lofo", "dse_lofo"):
        assert out.at["d1", column] == pytest.approx(table.at["d1", column], rel=1e-9)


def test_a_fit_without_log_likelihood_is_a_clear_error(fits, tmp_path):
    path = tmp_path / "d2.nc"
    fits["d2"].save(path)
    light = SlothModel.load(path, log_likelihood=False)
    with pytest.raises(DataValidationError,
                       match=r"'light' has no pointwise log-likelihood.*SlothModel.load"):
        compare({"d1": fits["d1"], "light": light})
    with pytest.raises(DataValidationError, match="at least one fit"):
        compare({})
