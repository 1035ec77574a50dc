import numpy as np
import pytest

from podium.training.balance import class_weights, effective_counts, oversample
from podium.config import ExperimentConfig
from podium.data.dataset import load_labeled_data
from podium.runners.train import make_loaders, train_and_evaluate
from podium.tasks import get_task

# a Journey-to-Springfield-like imbalance: 1,000 images next to 3
LABELS = np.repeat([0, 1, 2], [1000, 40, 3])


def test_balanced_weights_equalise_what_each_class_contributes():
    weights = class_weights(LABELS, 3, "balanced")
    contributions = effective_counts(LABELS, 3, weights)
    np.testing.assert_allclose(contributions, contributions[0])
    assert weights[2] > weights[1] > weights[0]
    assert class_weights(LABELS, 3, "none") is None
    np.testing.assert_array_equal(effective_counts(LABELS, 3, None), [1000, 40, 3])


def test_oversampling_lifts_rare_classes_to_the_floor_only():
    positions = np.arange(len(LABELS))
    lifted = oversample(positions, LABELS, 100, seed=0)
    np.testing.assert_array_equal(np.bincount(LABELS[lifted]), [1000, 100, 100])
    assert set(lifted) == set(positions)  # copies of real rows, nothing invented
    np.testing.assert_array_equal(lifted, oversample(positions, LABELS, 100, seed=0))
    assert oversample(positions, LABELS, 0, seed=0) is positions


def test_oversampling_touches_training_rows_only(tiny, tmp_path):
    cfg = tiny.cfg(tmp_path, "oversample_to=300")
    data = load_labeled_data(cfg, get_task(cfg.task), progress=False)
    train_pos, val_pos = data.fold_positions(0)
    train, val = make_loaders(cfg, get_task(cfg.task), data, train_pos, val_pos)
    assert np.bincount(data.labels[train.positions]).min() == 300  # 160 per class in training -> 300
    np.testing.assert_array_equal(val.positions, val_pos)


@pytest.mark.parametrize("extra", [["loss=focal", "focal_gamma=2.0"], ["class_weight=balanced"]])
def test_focal_loss_and_class_weights_train(tiny, tmp_path, extra):
    cfg = tiny.cfg(tmp_path, *extra)
    result = train_and_evaluate(cfg, get_task(cfg.task), 0)
    assert result.epochs_run == 1 and 0.0 <= result.val_score <= 1.0


def test_keep_empty_keeps_every_object_image_and_a_seeded_share_of_the_empty_ones():
    from podium.training.balance import keep_empty

    masks = np.zeros((40, 8, 8, 1), np.uint8)
    masks[::4, 2, 3] = 1  # every 4th image has an object: 10 with, 30 without
    positions = np.arange(5, 40)  # a fold's training part: 8 with objects, 27 empty
    kept = keep_empty(positions, masks, 0.25, seed=1)
    with_object = positions[positions % 4 == 0]
    assert set(with_object) <= set(kept) and set(kept) <= set(positions)
    assert len(kept) == 8 + 7 and len(with_object) == 8 and (np.diff(kept) > 0).all()  # 7 = round(27 / 4)
    np.testing.assert_array_equal(kept, keep_empty(positions, masks, 0.25, seed=1))  # deterministic
    assert not np.array_equal(kept, keep_empty(positions, masks, 0.25, seed=2))
    np.testing.assert_array_equal(keep_empty(positions, masks, 1.0, seed=1), positions)


def test_keep_empty_is_for_segmentation_and_leaves_validation_whole(tmp_path):
    from podium.data.dataset import in_memory_data
    from podium.errors import PodiumError
    from podium.experiments.synthetic import make_shapes
    from podium.runners.train import train_and_evaluate

    with pytest.raises(PodiumError, match="keep_empty"):
        ExperimentConfig(keep_empty=0.5)  # classification has no masks
    assert ExperimentConfig(keep_empty=1.0).config_hash() == ExperimentConfig().config_hash()
    shapes = make_shapes(60, 32, seed=4, object_probability=0.5)
    folds = np.where(np.arange(60) % 5 == 0, 0, 1)
    data = in_memory_data(shapes.images, shapes.has_object, folds, ["none", "ellipse"], targets=shapes.masks,
                          task="segmentation")
    cfg = ExperimentConfig(task="segmentation", monitor="val_dice", image_size=32, unet_filters=4, epochs=1,
                           val_split=0.2, keep_empty=0.5, runs_dir=str(tmp_path), verbose=0, augment=[])
    result = train_and_evaluate(cfg, get_task(cfg.task), 0, data=data)
    train = folds == 1
    objects, empties = int((shapes.has_object[train] == 1).sum()), int((shapes.has_object[train] == 0).sum())
    assert result.n_train == objects + round(0.5 * empties) and result.n_val == int((folds == 0).sum())
