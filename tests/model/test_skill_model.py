"""Structural identities of the model: loadings, anchors, covariates, reparametrization."""

import numpy as np
import pytest

from sloth.inference import benchmark_information, choose_anchors, to_anchored
from sloth.model import ModelStructure, assemble_loadings, default_priors
from sloth.model.design import CovariateScaler
from sloth.model.maths import compute_mean_score, compute_skills
from sloth.model.simulate import simulate_leaderboard


def _structure(anchors=None, d=3, J=8, F=5, P=3):
    return ModelStructure(F, J, P, d, anchors, "student_t", default_priors())


def test_assemble_loadings_puts_identity_on_anchors():
    s = _structure(anchors=(5, 1, 6))
    free = np.arange(15.0).reshape(5, 3) + 1
    loading = np.asarray(assemble_loadings(s, free))
    np.testing.assert_array_equal(loading[[5, 1, 6]], np.eye(3))
    np.testing.assert_array_equal(loading[s.free_rows], free)
    assert list(s.free_rows) == [0, 2, 3, 4, 7]


def test_anchor_count_must_match_skills():
    with pytest.raises(ValueError, match="one per skill"):
        _structure(anchors=(0, 1))


def test_unknown_prior_is_rejected_with_allowed_names():
    with pytest.raises(ValueError, match="loading_scale"):
        default_priors({"loadings_scale": 1.0})


def test_to_anchored_preserves_every_mean_score():
    rng = np.random.default_rng(3)
    F, J, P, d, n = 6, 9, 3, 3, 20
    values = {
        "skill_slope": rng.normal(size=(P, d)),
        "family_offset": rng.normal(size=(F, d)),
        "loading_free": rng.normal(size=(J, d)),
        "intercept": rng.normal(size=J),
        "noise_scale": np.full(J, 0.02),
    }
    x = rng.normal(size=(n, P))
    fam = rng.integers(0, F, n)
    floors = rng.uniform(0, 0.4, J)
    before = compute_mean_score(
        compute_skills(values["family_offset"], values["skill_slope"], x, fam),
        values["loading_free"], values["intercept"], floors,
    )
    anchors = (4, 0, 7)
    base = _structure(None, d, J, F, P)
    out = to_anchored(values, anchors, base)
    loading = np.asarray(assemble_loadings(_structure(anchors, d, J, F, P), out["loading_free"]))
    efficiency = out["family_offset"] @ (out["family_scale"][:, None] * out["family_corr_chol"]).T
    np.testing.assert_allclose(efficiency, out["family_efficiency"], atol=1e-10)
    after = compute_mean_score(
        compute_skills(efficiency, out["skill_slope"], x, fam), loading, out["intercept"], floors
    )
    np.testing.assert_allclose(after, before, atol=1e-10)
    np.testing.assert_allclose(np.diag(out["family_corr_chol"] @ out["family_corr_chol"].T), 1.0)


def test_choose_anchors_picks_separated_informative_benchmarks():
    loading = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [0.7, 0.7], [3.0, 0.1]])
    assert choose_anchors(loading)[0] == 4
    # down-weighting the large but uninformative row moves the first anchor
    info = np.array([1.0, 1.0, 1.0, 1.0, 0.01])
    anchors = choose_anchors(loading, info)
    assert 4 not in anchors and set(anchors) <= {0, 1, 2, 3}
    assert {0, 2} == set(anchors) or {1, 2} == set(anchors)


def test_benchmark_information_penalizes_unobserved_and_noisy_benchmarks():
    table, truth = simulate_leaderboard(n_families=10, n_skills=2, seed=2)
    from sloth.model.design import build_arrays

    arrays = build_arrays(table, truth.scaler, truth.inv_items)
    values = {
        "skill_slope": truth.skill_slope, "family_offset": truth.family_efficiency,
        "loading_free": truth.loading, "intercept": truth.intercept,
        "noise_scale": truth.noise_scale.copy(),
    }
    base = benchmark_information(values, arrays)
    values["noise_scale"][3] = 0.5
    noisy = benchmark_information(values, arrays)
    assert noisy[3] < base[3] / 5
    np.testing.assert_allclose(np.delete(noisy, 3), np.delete(base, 3))


def test_covariate_scaler_standardizes_and_round_trips():
    rng = np.random.default_rng(0)
    params, tokens = 10 ** rng.uniform(8, 11, 50), 10 ** rng.uniform(11, 13, 50)
    scaler = CovariateScaler.fit(params, tokens)
    x = scaler.transform(params, tokens)
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-12)
    again = CovariateScaler.from_attrs(scaler.to_attrs())
    np.testing.assert_allclose(again.transform(params[:3], tokens[:3]), x[:3])
    # the centred interaction spans the raw product together with the main effects
    ln, ld = np.log10(params), np.log10(tokens)
    design = np.column_stack([np.ones(50), x])
    coef, *_ = np.linalg.lstsq(design, ln * ld, rcond=None)
    assert np.allclose(design @ coef, ln * ld)


@pytest.mark.parametrize("k", [0.3, 1.0, 2.5])
def test_centred_richards_link_keeps_midpoint_and_slope(k):
    from sloth.model import link_mean

    eta = np.linspace(-8, 8, 401)
    shape = np.full_like(eta, k)
    m = link_mean(eta, 0.25, shape, np.full_like(eta, 0.9))
    assert np.all(np.diff(m) > 0)  # monotone
    assert m.min() > 0.25 and m.max() < 0.25 + 0.75 * 0.9  # floor and ceiling
    mid = link_mean(np.array([-1e-5, 0.0, 1e-5]), 0.0, np.full(3, k))
    assert mid[1] == pytest.approx(0.5)
    assert (mid[2] - mid[0]) / 2e-5 == pytest.approx(0.25, rel=1e-4)
    # the asymmetry: k > 1 saturates faster above the midpoint than it rises below it
    upper = link_mean(np.array([2.0]), 0.0, np.array([k]))[0] - 0.5
    lower = 0.5 - link_mean(np.array([-2.0]), 0.0, np.array([k]))[0]
    if k == 1.0:
        assert lower == pytest.approx(upper, abs=1e-12)
    else:
        assert np.sign(lower - upper) == np.sign(k - 1.0)


@pytest.mark.parametrize("k", [None, 0.4, 1.0, 2.5])
def test_ceiling_moves_the_top_of_the_link_and_leaves_its_low_end(k):
    from sloth.model import link_mean

    eta = np.linspace(-14.0, -9.0, 11)
    shape = None if k is None else np.full_like(eta, k)
    low = link_mean(eta, 0.2, shape)
    for h in (0.5, 0.8, 0.97):
        ceiling = np.full_like(eta, h)
        # far below the ceiling the curve does not depend on it (no ridge with the intercept)
        np.testing.assert_allclose(link_mean(eta, 0.2, shape, ceiling) - 0.2, low - 0.2,
                                   rtol=2e-3)
        # the ceiling still bounds the curve from above, and the top reaches it
        top = link_mean(np.array([60.0]), 0.2, None if k is None else np.array([k]),
                        np.array([h]))[0]
        assert top == pytest.approx(0.2 + 0.8 * h, rel=1e-6)
    # a curve with a ceiling is the curve h * r_k of a moved intercept (same family of curves)
    eta = np.linspace(-6.0, 6.0, 49)
    h, kk = 0.85, 1.6
    a_k = 1.0 / (2 * kk * (1 - 2 ** (-1 / kk)))
    shift = np.log(h) / (kk * a_k)
    plain = link_mean(eta - shift, 0.0, np.full_like(eta, kk))
    np.testing.assert_allclose(link_mean(eta, 0.0, np.full_like(eta, kk), np.full_like(eta, h)),
                               h * plain, rtol=1e-10)


def test_link_reduces_to_logistic_and_agrees_between_numpy_and_jax():
    import jax.numpy as jnp

    from sloth.model import link_mean

    eta = np.linspace(-6, 6, 25)
    logistic = 0.1 + 0.9 / (1 + np.exp(-eta))
    np.testing.assert_allclose(link_mean(eta, 0.1), logistic, rtol=1e-12)
    np.testing.assert_allclose(link_mean(eta, 0.1, np.ones(25), np.ones(25)), logistic,
                               rtol=1e-12)
    k, h = np.full(25, 1.7), np.full(25, 0.8)
    np.testing.assert_allclose(np.asarray(link_mean(jnp.asarray(eta), 0.1, jnp.asarray(k),
                                                    jnp.asarray(h))),
                               link_mean(eta, 0.1, k, h), rtol=1e-5)


def test_unknown_link_is_rejected():
    with pytest.raises(ValueError, match="link="):
        ModelStructure(5, 8, 3, 2, None, "student_t", default_priors(), link="probit")


def test_model_traces_after_arviz_imported_numpyro_first():
    """arviz_base imports numpyro through lazy_loader; after that, numpyro.factor fails
    (numpyro.distributions lacks its ``distribution`` attribute). The model must not depend
    on the import order of its users."""
    import subprocess
    import sys

    code = (
        "import arviz_stats\n"
        "from sloth.model.simulate import simulate_leaderboard\n"
        "from sloth import SlothModel\n"
        "table, _ = simulate_leaderboard(n_families=8, n_skills=1, n_benchmarks=5, seed=1)\n"
        "SlothModel(1, num_chains=1, num_warmup=10, num_samples=10, map_starts=1,\n"
        "           family_benchmark_effects=False, progress_bar=False).fit(table)\n"
        "print('fitted')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fitted" in proc.stdout
