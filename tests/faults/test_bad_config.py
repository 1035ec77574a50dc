"""Fault class "bad config": every numeric key out of its range is refused at config load, naming the key,
with Expected/Received/Fix, before any folder exists (lr=-1 once trained and reported a CV score;
dropout=1.5 once ended in a Keras traceback)."""

import dataclasses
import math
import typing

import pytest

from podium.cli.main import main
from podium.config import ExperimentConfig, Range, load_config
from podium.errors import PodiumError


def _numeric_fields():
    hints = typing.get_type_hints(ExperimentConfig)
    for f in dataclasses.fields(ExperimentConfig):
        hint = hints[f.name]
        item = typing.get_args(hint)[0] if typing.get_origin(hint) is list else hint
        if item in (int, float):
            yield f, hint, item


NUMERIC = list(_numeric_fields())


def test_every_numeric_key_declares_a_range_that_its_default_meets():
    assert len(NUMERIC) >= 30  # the walk below really walks the config
    for f, _, _ in NUMERIC:
        bounds = f.metadata.get("range")
        assert isinstance(bounds, Range), f"{f.name} declares no range: use num(default, ...)"
    ExperimentConfig()  # and every default is inside its own range


@pytest.mark.parametrize("name", [f.name for f, _, _ in NUMERIC])
def test_an_out_of_range_value_is_refused_naming_the_key(name):
    f, hint, item = next(x for x in NUMERIC if x[0].name == name)
    bad = f.metadata["range"].outside()
    bad = int(bad) if item is int else float(bad)
    value = [bad] if typing.get_origin(hint) is list else bad
    with pytest.raises(PodiumError) as err:
        load_config(None, {name: value})
    message = str(err.value)
    assert f"'{name}'" in message and "Expected:" in message and "Received:" in message and "Fix:" in message


@pytest.mark.parametrize("override", ["lr=.nan", "lr=.inf", "weight_decay=-.inf", "dropout=.nan"])
def test_non_finite_numbers_are_refused(override):
    with pytest.raises(PodiumError, match="out of range"):
        load_config(None, [override])


def test_an_undeclared_numeric_key_cannot_slip_in():
    """A developer adding `foo: float = 1.0` without num(...) gets an error at the first config."""

    @dataclasses.dataclass
    class Grown(ExperimentConfig):
        foo: float = 1.0

    with pytest.raises(TypeError, match="foo"):
        Grown()


@pytest.mark.parametrize("override, key", [("lr=-1", "lr"), ("dropout=1.5", "dropout"), ("epochs=0", "epochs"),
                                           ("batch_size=0", "batch_size"), ("label_smoothing=1", "label_smoothing"),
                                           ("val_split=1", "val_split"), ("n_folds=1", "n_folds"),
                                           ("image_size=16 backbone=efficientnet_b0", "image_size")])
def test_cli_train_refuses_before_any_folder_exists(capsys, tmp_path, override, key):
    code = main(["train", f"data_dir={tmp_path / 'data'}", f"runs_dir={tmp_path / 'runs'}", *override.split()])
    err = capsys.readouterr().err
    assert code == 2 and f"'{key}'" in err and "Fix:" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no runs/, no data/, nothing


def test_the_ranges_read_as_a_user_would_write_them():
    fields = {f.name: f.metadata["range"] for f, _, _ in NUMERIC}
    assert fields["lr"].text("lr") == "0 < lr"
    assert fields["dropout"].text("dropout") == "0 <= dropout < 1"
    assert "0 (the backbone's default size)" in fields["image_size"].text("image_size")
    assert not fields["lr"].accepts(math.nan) and fields["lr"].accepts(1e-9)


@pytest.mark.parametrize("unfreeze_epoch", [1, 5, 6, 9])
def test_a_config_that_loads_also_builds_its_training_phases(unfreeze_epoch):
    """unfreeze_epoch >= epochs/2 passed the config and then failed its own check when the fine-tune phase
    was derived (a misleading 'needs a later epoch' at the start of training)."""
    from podium.runners.train import training_phases

    cfg = load_config(None, ["freeze_backbone=true", f"unfreeze_epoch={unfreeze_epoch}", "epochs=10"])
    phases = training_phases(cfg)
    assert [(a, b) for a, b, _ in phases] == [(0, unfreeze_epoch), (unfreeze_epoch, 10)]
    assert phases[1][2].lr == pytest.approx(cfg.lr * cfg.unfreeze_lr_factor)
