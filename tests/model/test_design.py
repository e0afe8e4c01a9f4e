"""The extrapolation figures of the covariate design: ratios to the fitted range, the
covariate distance and its threshold."""

import numpy as np
import pytest

from sloth.data.mapping import training_compute
from sloth.model.design import (
    EXTRAPOLATION_COLUMNS,
    RANGE_FOLD_LIMIT,
    DesignRange,
    range_ratio,
)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    # tokens grow with size, as in the leaderboard (about 20 to 200 tokens per parameter)
    params = 10 ** rng.uniform(8, 11, 60)
    tokens = params * 10 ** rng.uniform(1.3, 2.3, 60)
    return params, tokens, DesignRange.fit(params, tokens)


def test_ratios_are_folds_outside_the_range():
    np.testing.assert_allclose(range_ratio([0.5, 1, 3, 10, 40], 1.0, 10.0),
                               [0.5, 1, 1, 1, 4])
    np.testing.assert_allclose(training_compute([7e9], [2e12]), [6 * 7e9 * 2e12])


def test_distance_is_the_hat_value_in_other_units_and_ignores_the_standardization(fitted):
    params, tokens, design = fitted
    n = len(params)
    ln, ld = np.log10(params), np.log10(tokens)
    raw = np.column_stack([ln, ld, ln * ld])  # the uncentred product: an affine map away
    X = np.column_stack([np.ones(n), raw])
    hat = np.einsum("ni,ij,nj->n", X, np.linalg.inv(X.T @ X), X)
    distance = design.distance(params, tokens)
    np.testing.assert_allclose(hat, 1 / n + distance**2 / (n - 1), rtol=1e-8)
    assert design.max_distance == pytest.approx(distance.max())


def test_fitted_models_are_inside_and_far_or_unseen_ones_are_not(fitted):
    params, tokens, design = fitted
    inside = design.figures(params, tokens)
    assert list(inside) == list(EXTRAPOLATION_COLUMNS)
    assert not inside["extrapolating"].any()
    np.testing.assert_array_equal(inside["compute_ratio"], 1.0)
    # 20x the largest size; 1/5 of the smallest token count; a small model on the most
    # tokens (each within its own range, the combination unseen); the middle of the data
    new_params = np.array([20 * params.max(), np.median(params), params.min() * 1.01,
                           np.sqrt(params.min() * params.max())])
    new_tokens = np.array([np.median(tokens), tokens.min() / 5, tokens.max() * 0.99,
                           np.sqrt(tokens.min() * tokens.max())])
    out = design.figures(new_params, new_tokens)
    assert out["params_ratio"][0] == pytest.approx(20.0)
    assert out["tokens_ratio"][1] == pytest.approx(0.2)
    assert out["params_ratio"][2] == out["tokens_ratio"][2] == 1.0
    assert out["covariate_distance"][2] > design.max_distance
    assert list(out["extrapolating"]) == [True, True, True, False]
    message = design.describe(["big", "few-tokens", "odd", "middle"], out)
    assert message.startswith("3 of 4 models lie beyond the fitted data")
    assert "big (params 20x the fit's largest" in message and "middle" not in message
    assert f"{RANGE_FOLD_LIMIT:g}x outside" in message
    assert design.describe(["a"], design.figures(params[:1], tokens[:1])) is None


def test_a_fit_of_one_model_or_bad_shapes():
    design = DesignRange.fit([1e9], [1e12])
    out = design.figures([1e9, 4e9], [1e12, 1e12])
    assert list(out["extrapolating"]) == [False, True]
    with pytest.raises(ValueError, match="params and tokens"):
        DesignRange.fit([1e9, 2e9], [1e12])
