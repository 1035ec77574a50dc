import keras
import pytest

from podium.config import load_config
from podium.training.schedules import learning_rate, make_optimizer


def _at(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_constant_and_plateau_are_plain_floats():
    for name in ("constant", "plateau"):
        assert learning_rate(load_config(None, [f"schedule={name}", "lr=0.01"]), 10) == 0.01


def test_piecewise_steps_at_epoch_boundaries():
    cfg = load_config(None, ["schedule=piecewise", "lr_boundaries=[2,4]", "lr_values=[0.1,0.01,0.001]"])
    schedule = learning_rate(cfg, steps_per_epoch=10)
    assert _at(schedule, 0) == pytest.approx(0.1)
    assert _at(schedule, 25) == pytest.approx(0.01)
    assert _at(schedule, 45) == pytest.approx(0.001)


def test_cosine_warms_up_then_decays_to_min_lr():
    cfg = load_config(None, ["schedule=cosine", "lr=0.1", "warmup_epochs=1", "epochs=5", "min_lr=0.001"])
    schedule = learning_rate(cfg, steps_per_epoch=10)
    assert _at(schedule, 0) == pytest.approx(0.0)
    assert _at(schedule, 10) == pytest.approx(0.1)
    assert _at(schedule, 5) == pytest.approx(0.05)
    assert _at(schedule, 50) == pytest.approx(0.001, rel=1e-3)


def test_optimizers_follow_the_config():
    assert isinstance(make_optimizer(load_config(None, ["optimizer=sgd"]), 10), keras.optimizers.SGD)
    assert isinstance(make_optimizer(load_config(None, ["optimizer=adamw"]), 10), keras.optimizers.AdamW)
