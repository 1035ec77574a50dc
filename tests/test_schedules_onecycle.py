"""One-cycle: up from lr/25 to lr over the first 30% (or warmup_epochs), then down to min_lr."""

import keras
import numpy as np
import pytest

from podium.config import load_config
from podium.training.schedules import learning_rate, make_optimizer


def one_cycle_cfg(**values):
    overrides = {"lr": 0.1, "min_lr": 0.0001, "epochs": 10, "warmup_epochs": 0.0, "schedule": "onecycle", **values}
    return load_config(None, overrides)


def curve(schedule, steps):
    return np.array([float(keras.ops.convert_to_numpy(schedule(step))) for step in range(steps + 1)])


def test_one_cycle_rises_for_30_percent_then_anneals_to_min_lr():
    lrs = curve(learning_rate(one_cycle_cfg(), steps_per_epoch=10), 100)
    assert lrs[0] == pytest.approx(0.1 / 25)
    assert int(np.argmax(lrs)) == 30 and lrs.max() == pytest.approx(0.1)
    assert np.all(np.diff(lrs[:31]) > 0) and np.all(np.diff(lrs[30:]) <= 1e-9)
    assert lrs[100] == pytest.approx(0.0001, rel=1e-3)
    assert lrs[65] == pytest.approx((0.1 + 0.0001) / 2, rel=0.02)  # cosine: half way down at the middle


def test_one_cycle_peak_follows_warmup_epochs_and_drives_the_optimizer():
    cfg = one_cycle_cfg(warmup_epochs=2.0)
    lrs = curve(learning_rate(cfg, steps_per_epoch=10), 100)
    assert int(np.argmax(lrs)) == 20
    optimizer = make_optimizer(cfg, steps_per_epoch=10)
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.1 / 25)
