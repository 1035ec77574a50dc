import numpy as np
import pytest

from podium.balance import class_weights, effective_counts, oversample
from podium.config import load_config
from podium.data.dataset import load_labeled_data
from podium.train import make_loaders, train_and_evaluate

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


def test_oversampling_touches_training_rows_only(demo_data, tmp_path):
    cfg = load_config(None, [f"data_dir={demo_data}", f"runs_dir={tmp_path}", "val_split=0.2", "image_size=32",
                             "oversample_to=300"])
    data = load_labeled_data(cfg, progress=False)
    train_pos, val_pos = data.fold_positions(0)
    train, val = make_loaders(cfg, data, train_pos, val_pos)
    assert np.bincount(data.labels[train.positions]).min() == 300  # 160 per class in training -> 300
    np.testing.assert_array_equal(val.positions, val_pos)


@pytest.mark.parametrize("extra", [["loss=focal", "focal_gamma=2.0"], ["class_weight=balanced"]])
def test_focal_loss_and_class_weights_train(demo_data, tmp_path, extra):
    cfg = load_config(None, [f"data_dir={demo_data}", f"runs_dir={tmp_path}", "val_split=0.2", "image_size=32",
                             "epochs=1", "verbose=0", "tta=[identity]", *extra])
    result = train_and_evaluate(cfg, 0)
    assert result.epochs_run == 1 and 0.0 <= result.val_score <= 1.0
