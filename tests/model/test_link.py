"""The flexible link: recovered from data simulated with known asymmetries and ceilings."""

from dataclasses import replace

import numpy as np
import pytest

from sloth import SlothModel
from sloth.model import link_mean
from sloth.model.simulate import simulate_leaderboard

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TRUE_SHAPE = np.array([0.5, 1.0, 2.5, 0.7, 1.8, 1.0, 3.0, 0.5])
TRUE_CEILING = np.array([1.0, 0.7, 1.0, 1.0, 0.95, 0.8, 1.0, 1.0])


@pytest.fixture(scope="module")
def flexible():
    table, truth = simulate_leaderboard(n_families=30, n_benchmarks=8, n_skills=2, seed=21,
                                        missing_fraction=0.0, models_per_family=(3, 6))
    eta = truth.skills @ truth.loading.T + truth.intercept
    mean = link_mean(eta, table.floors, TRUE_SHAPE, TRUE_CEILING)
    rng = np.random.default_rng(0)
    scores = np.clip(mean + 0.01 * rng.standard_t(5, size=mean.shape), 0, 1)
    table = replace(table, scores=scores)
    model = SlothModel(2, link="flexible", num_chains=2, num_warmup=300, num_samples=300,
                       map_starts=1, progress_bar=False, seed=1).fit(table)
    return model, mean


def test_flexible_link_recovers_means_shapes_and_ceilings(flexible):
    model, mean = flexible
    post = model.idata_["posterior"]
    fitted = post["mean_score"].mean(("chain", "draw")).to_numpy()
    assert np.abs(fitted - mean).mean() < 0.01
    shape = post["link_shape"].mean(("chain", "draw")).to_numpy()
    # the asymmetries are ordered as the truth's (rank correlation)
    ranks = np.argsort(np.argsort(shape)), np.argsort(np.argsort(TRUE_SHAPE))
    assert np.corrcoef(*ranks)[0, 1] > 0.6
    ceiling = post["link_ceiling"].mean(("chain", "draw")).to_numpy()
    assert ceiling[1] < 0.85 and ceiling[5] < 0.9  # saturating below a perfect score
    assert ceiling[[0, 2, 3]].min() > 0.85


def test_flexible_link_survives_save_and_load(flexible, tmp_path):
    model, _ = flexible
    model.save(tmp_path / "fit.nc")
    loaded = SlothModel.load(tmp_path / "fit.nc")
    assert loaded.link == "flexible" and loaded.structure_.link == "flexible"
    frame = model.table_.to_frame().iloc[:5]
    np.testing.assert_allclose(loaded.predict(frame, kind="mean")["mean"],
                               model.predict(frame, kind="mean")["mean"], rtol=1e-10)
