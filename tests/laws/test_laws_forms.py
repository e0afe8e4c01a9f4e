"""Law forms: registry, Farseer's parametrization, the multi-start solver, the batched
optimizer."""

from __future__ import annotations

import numpy as np
import pytest

from sloth.exceptions import DataValidationError
from sloth.laws import (
    CHINCHILLA,
    FARSEER,
    LawForm,
    available_laws,
    chinchilla_theta,
    chinchilla_to_farseer,
    farseer_from_paper,
    fit_law,
    get_law,
    grid_product,
    register_law,
)
from sloth.laws.solver import MultiStart, box_bounds, multistart
from sloth.optim import batched_lbfgs, padded_call

PAPER = {"a1": 0.2, "b1": -1.1, "alpha": 0.15, "a2": -0.3, "b2": 0.4, "beta": -0.2,
         "a3": 0.5, "b3": 0.2, "gamma": -0.3}


def test_registry_lists_and_rejects():
    assert {"chinchilla", "farseer"} <= set(available_laws())
    assert get_law("Chinchilla") is CHINCHILLA
    with pytest.raises(DataValidationError, match=r"unknown law 'kaplan'.*chinchilla"):
        get_law("kaplan")
    with pytest.raises(ValueError, match="already registered"):
        register_law(CHINCHILLA)


def test_chinchilla_predict_matches_formula():
    p = {"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35, "beta": 0.37}
    n, d = np.array([1e8, 3e9]), np.array([2e9, 1e11])
    want = p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]
    np.testing.assert_allclose(CHINCHILLA.predict(chinchilla_theta(p), n, d), want, rtol=1e-12)
    assert CHINCHILLA.natural_names() == ("E", "A", "B", "alpha", "beta")


def test_farseer_matches_paper_formula_and_roundtrips():
    theta = farseer_from_paper(PAPER)
    n, d = np.array([5e7, 1e9, 3e10]), np.array([1e9, 2e10, 5e11])
    nn, dd = n / 1e9, d / 1e10
    want = (np.exp(PAPER["a3"] * nn ** PAPER["gamma"] + PAPER["b3"])
            + np.exp(PAPER["a2"] * nn ** PAPER["beta"] + PAPER["b2"])
            * dd ** (-np.exp(PAPER["a1"] * nn ** PAPER["alpha"] + PAPER["b1"])))
    np.testing.assert_allclose(FARSEER.predict(theta, n, d), want, rtol=1e-10)
    back = FARSEER.natural(theta)
    for k, v in PAPER.items():
        assert back[k] == pytest.approx(v, rel=1e-12)


def test_farseer_box_cox_is_smooth_through_zero_exponent():
    base = farseer_from_paper(PAPER)
    n, d = np.geomspace(1e7, 1e11, 7), np.geomspace(1e9, 1e12, 7)
    at_zero, near_zero = base.copy(), base.copy()
    at_zero[[2, 5, 8]] = 0.0
    near_zero[[2, 5, 8]] = 1e-7
    np.testing.assert_allclose(FARSEER.predict(at_zero, n, d), FARSEER.predict(near_zero, n, d),
                               rtol=1e-6)
    assert np.all(np.isfinite(FARSEER.predict(at_zero, n, d)))


def test_chinchilla_to_farseer_matches_near_reference_scale():
    theta_c = chinchilla_theta({"E": 1.8, "A": 480.0, "B": 2000.0, "alpha": 0.35,
                                "beta": 0.37})
    theta_f = chinchilla_to_farseer(theta_c)
    n = np.geomspace(3e8, 3e9, 5)          # within half a decade of N0 = 1e9
    d = np.geomspace(1e9, 1e12, 5)
    np.testing.assert_allclose(FARSEER.predict(theta_f, n, d), CHINCHILLA.predict(theta_c, n, d),
                               rtol=2e-3)


def test_a_new_form_is_a_few_lines_and_fits():
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    def log_loss(p, x_n, x_d, xp):
        e, a, alpha = p
        return xp.logaddexp(e, a - alpha * x_n)

    def prior():
        return jnp.stack([numpyro.sample(k, dist.Normal(0.0, s))
                          for k, s in (("e", 1.0), ("a", 5.0), ("alpha", 1.0))])

    form = register_law(LawForm(
        name="test-n-only", param_names=("e", "a", "alpha"), log_loss=log_loss,
        natural=lambda t: {"E": np.exp(t[..., 0]), "A": np.exp(t[..., 1]), "alpha": t[..., 2]},
        start_grid=lambda x_n, x_d, y: grid_product([-1, 0, 1], [0, 5, 10], [0.2, 0.5, 1]),
        prior=prior,
        prior_sites=lambda t: dict(zip(("e", "a", "alpha"), map(float, t), strict=True)),
    ), overwrite=True)
    rng = np.random.default_rng(0)
    n = np.geomspace(1e7, 1e10, 30)
    loss = (2.0 + 300.0 / n ** 0.3) * np.exp(0.002 * rng.standard_normal(30))
    import pandas as pd

    fit = fit_law(pd.DataFrame({"N": n, "D": 20 * n, "loss": loss}), "test-n-only", n_boot=0)
    assert fit.form is form
    assert fit.params["alpha"] == pytest.approx(0.3, abs=0.03)
    assert fit.params["E"] == pytest.approx(2.0, rel=0.03)


def _rosenbrock(x, rows):
    a, b = x[:, 0], x[:, 1]
    f = (1 - a) ** 2 + 100 * (b - a * a) ** 2
    g = np.stack([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)], axis=1)
    return f, g


def test_batched_lbfgs_solves_many_rosenbrocks_and_respects_bounds():
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-2, 2, size=(37, 2))
    res = batched_lbfgs(_rosenbrock, x0, maxiter=2000)
    assert res.converged.all()
    np.testing.assert_allclose(res.x, 1.0, atol=1e-4)
    bounded = batched_lbfgs(_rosenbrock, x0, lower=np.array([-2.0, -2.0]),
                            upper=np.array([0.5, 2.0]), maxiter=2000)
    assert np.all(bounded.x[:, 0] <= 0.5 + 1e-12)
    # constrained optimum of Rosenbrock with a <= 0.5 is (0.5, 0.25)
    np.testing.assert_allclose(np.median(bounded.x, axis=0), [0.5, 0.25], atol=1e-3)


def test_padded_call_pads_to_a_power_of_two_and_trims():
    seen = []

    def fg(x, rows):
        seen.append(len(rows))
        return _rosenbrock(x, rows)

    x = np.random.default_rng(1).uniform(-1, 1, size=(11, 2))
    f, g = padded_call(fg, x, np.arange(11))
    assert seen == [16] and f.shape == (11,) and g.shape == (11, 2)
    np.testing.assert_allclose(f, _rosenbrock(x, np.arange(11))[0])


def test_multistart_solves_a_law_from_its_grid():
    """The solver shared by the forms and the fits recovers a Chinchilla law from clean runs."""
    truth = chinchilla_theta({"E": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28})
    n, d = np.meshgrid(np.geomspace(1e8, 1e10, 6), np.geomspace(1e9, 1e11, 6))
    x_n, x_d = CHINCHILLA.inputs(n.ravel(), d.ravel())
    y = np.log(CHINCHILLA.predict(truth, n.ravel(), d.ravel()))
    res = multistart(CHINCHILLA, CHINCHILLA.start_grid(x_n, x_d, y), x_n, x_d, y,
                     max_starts=64)
    assert isinstance(res, MultiStart) and res.n_grid > res.n_starts == 64
    assert res.fun < 1e-6 and res.n_best >= 1
    np.testing.assert_allclose(CHINCHILLA.predict(res.theta, n.ravel(), d.ravel()),
                               np.exp(y), rtol=1e-5)
    lower, upper = box_bounds(CHINCHILLA)
    assert lower.shape == upper.shape == (CHINCHILLA.n_params,)
