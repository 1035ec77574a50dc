"""Data pruning on generated shapes: keeps fewer samples than it sees and trains the kept set to its threshold."""

import numpy as np
import pytest

from podium.config import ExperimentConfig
from podium.errors import PodiumError
from podium.experiments.pruning import per_sample_scores, run_shapes_experiment, select_samples, shapes_data
from podium.experiments.synthetic import make_shapes


def _cfg(tmp_path, **overrides):
    values = dict(image_size=32, epochs=4, batch_size=16, lr=3e-3, val_split=0.2, runs_dir=str(tmp_path), verbose=0,
                  dropout=0.0, schedule="constant", augment=[], prune_core=8, prune_chunk=64, prune_add=4,
                  prune_max_epochs=10)
    values.update(overrides)
    return ExperimentConfig(**values)


def test_per_sample_score_is_right_class_for_classification():
    data = shapes_data(make_shapes(4, 32, seed=0, object_probability=0.5), "classification", fold=1)
    one_hot_right = np.eye(2)[data.labels]
    np.testing.assert_array_equal(per_sample_scores("classification", data, np.arange(4), one_hot_right), 1)
    np.testing.assert_array_equal(per_sample_scores("classification", data, np.arange(4), 1 - one_hot_right), 0)


def test_classification_pruning_keeps_fewer_than_it_sees_and_reaches_its_threshold(tmp_path):
    cfg = _cfg(tmp_path, prune_threshold=0.9)
    data = shapes_data(make_shapes(160, 32, seed=11, object_probability=0.5), "classification", fold=1)
    rounds = []
    selection = select_samples(cfg, data, progress=rounds.append)
    assert selection.n_seen == 160
    assert cfg.prune_core <= len(selection.kept) < 160
    assert len(set(selection.kept.tolist())) == len(selection.kept)  # nothing added twice
    assert selection.reached_threshold and selection.kept_score >= 0.9
    assert len(rounds) == selection.rounds - 1


def test_pruning_needs_more_than_its_core(tmp_path):
    data = shapes_data(make_shapes(8, 32, seed=0), "classification", fold=1)
    with pytest.raises(PodiumError):
        select_samples(_cfg(tmp_path), data)


@pytest.mark.slow
def test_segmentation_experiment_reports_every_arm_on_a_fresh_set(tmp_path):
    cfg = _cfg(tmp_path, task="segmentation", monitor="val_dice", unet_filters=8, prune_threshold=0.5, epochs=3)
    report = run_shapes_experiment(cfg, n=120, n_val=24, n_test=40, out_dir=tmp_path / "prune")
    assert report.n_kept < report.n_seen == 120
    assert report.reached_threshold
    assert set(report.scores) == {"all", "kept", "kept_same_steps", "random_same_steps"}
    assert {"per_sample", "dice", "iou"} <= set(report.score_kept) == set(report.score_all)
    # fewer samples get proportionally more epochs in the same-steps arms: as many steps as all N
    assert report.epochs["kept_same_steps"] == report.epochs["random_same_steps"] == -(-3 * 120 // report.n_kept)
    assert (tmp_path / "prune" / "report.json").is_file()
    assert "kept, same epochs" in report.text() and "all N" in report.text()
