"""The regression head: one linear unit on any registry backbone's pooled features.

It predicts the *standardised* target ((y - mean) / sd, podium.tasks.regression): a linear unit starting near
0 fits a target of any scale (a share in 0..0.5, a score in 1..100) at the same learning rate, and Huber's
delta of 1 means one standard deviation. The output is float32 under mixed precision too.
"""

from __future__ import annotations

import keras

from podium.models import backbones
from podium.models.classifier import pooled_features


def build_regressor(cfg) -> keras.Model:
    inputs, x = pooled_features(cfg)
    outputs = keras.layers.Dense(1, activation=None, dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"podium_regressor_{backbones.get(cfg.backbone).name}")


def regression_loss(name: str) -> keras.losses.Loss:
    """mse, or huber (squared below one standard deviation, linear above: outlying targets pull less)."""
    if name == "huber":
        return keras.losses.Huber(delta=1.0)
    return keras.losses.MeanSquaredError()


def regression_metrics() -> list[keras.metrics.Metric]:
    """Logged per epoch, in standard deviations of the target (the fold scores are in its units)."""
    return [keras.metrics.RootMeanSquaredError(name="rmse"), keras.metrics.MeanAbsoluteError(name="mae")]
