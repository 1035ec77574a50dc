"""podium.models.regression: one linear float32 unit on a backbone's pooled features (under mixed precision
too), MSE or Huber (delta one standard deviation) on the standardised target, RMSE/MAE logged."""

import keras
import numpy as np
import pytest

from podium.config import load_config
from podium.models import regression

TINY = ["task=regression", "backbone=tiny_cnn", "image_size=32", "weights=none"]


def _predict(model, n=3):
    images = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3)).astype("float32")
    return np.asarray(model.predict(images, verbose=0))


def test_the_regressor_predicts_one_float32_number_per_image():
    model = regression.build_regressor(load_config(None, TINY))
    assert model.output_shape == (None, 1) and "tiny_cnn" in model.name
    out = _predict(model)
    assert out.shape == (3, 1) and out.dtype == np.float32 and np.isfinite(out).all()
    assert model.get_layer("predictions").activation is keras.activations.linear


def test_the_output_stays_float32_under_mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = regression.build_regressor(load_config(None, TINY))
        assert model.get_layer("head_dropout").compute_dtype == "float16"  # the policy is in force
        assert model.get_layer("predictions").compute_dtype == "float32"
        assert _predict(model).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_huber_pulls_less_than_mse_beyond_one_standard_deviation():
    truth, near, far = np.zeros((1, 1)), np.full((1, 1), 0.5), np.full((1, 1), 3.0)
    mse, huber = regression.regression_loss("mse"), regression.regression_loss("huber")
    assert float(mse(truth, far)) == pytest.approx(9.0)
    assert float(huber(truth, far)) == pytest.approx(3.0 - 0.5)  # linear above delta=1
    assert float(huber(truth, near)) == pytest.approx(0.5 * 0.25)  # squared below
    assert isinstance(regression.regression_loss("anything else"), keras.losses.MeanSquaredError)
    assert [m.name for m in regression.regression_metrics()] == ["rmse", "mae"]
