"""Data pruning on generated shapes: keeps fewer samples than it sees and trains the kept set to its threshold."""

import numpy as np
import pytest

from podium.tasks import get_task
from podium.config import ExperimentConfig
from podium.errors import PodiumError
from podium.experiments.pruning import (per_sample_scores, run_shapes_experiment, scan_window, select_samples,
                                       shapes_data)
from podium.experiments.synthetic import make_shapes


def _cfg(tmp_path, **overrides):
    values = dict(image_size=32, epochs=4, batch_size=16, lr=3e-3, val_split=0.2, runs_dir=str(tmp_path), verbose=0,
                  dropout=0.0, schedule="constant", augment=[], prune_core=8, prune_chunk=64, prune_add=4,
                  prune_max_epochs=10)
    values.update(overrides)
    return ExperimentConfig(**values)


def test_per_sample_score_is_right_class_for_classification():
    data = shapes_data(make_shapes(4, 32, seed=0, object_probability=0.5), get_task("classification"), fold=1)
    one_hot_right = np.eye(2)[data.labels]
    np.testing.assert_array_equal(per_sample_scores(get_task("classification"), data, np.arange(4), one_hot_right), 1)
    np.testing.assert_array_equal(per_sample_scores(get_task("classification"), data, np.arange(4), 1 - one_hot_right), 0)


def test_classification_pruning_keeps_fewer_than_it_sees_and_reaches_its_threshold(tmp_path):
    cfg = _cfg(tmp_path, prune_threshold=0.9)
    data = shapes_data(make_shapes(160, 32, seed=11, object_probability=0.5), get_task("classification"), fold=1)
    rounds = []
    selection = select_samples(cfg, get_task(cfg.task), data, progress=rounds.append)
    assert selection.n_seen == 160
    assert cfg.prune_core <= len(selection.kept) < 160
    assert len(set(selection.kept.tolist())) == len(selection.kept)  # nothing added twice
    assert selection.reached_threshold and selection.kept_score >= 0.9
    assert len(rounds) == selection.rounds - 1


def test_a_share_of_the_kept_set_per_round_means_fewer_rounds_than_samples_added(tmp_path):
    cfg = _cfg(tmp_path, prune_threshold=0.9, prune_add=1, prune_add_share=0.5, prune_chunk=160)
    data = shapes_data(make_shapes(160, 32, seed=11, object_probability=0.5), get_task("classification"), fold=1)
    selection = select_samples(cfg, get_task(cfg.task), data)
    assert len(set(selection.kept.tolist())) == len(selection.kept)
    assert selection.rounds - 1 < len(selection.kept) - cfg.prune_core  # some round added more than one


def _whole_window(scores, cursor, window, fail_below, want):
    """The original scan: score the window at once, take its first `want` failures."""
    chunk = scores[cursor:cursor + window]
    failing = np.flatnonzero(chunk < fail_below)[:want]
    return cursor + failing, (int(failing[-1]) + 1 if len(failing) else len(chunk))


@pytest.mark.parametrize("want", [1, 3])
def test_scanning_in_growing_pieces_finds_what_one_prediction_of_the_window_finds(want):
    rng = np.random.default_rng(0)
    scores = np.where(rng.random(500) < 0.03, 0.2, 1.0)  # failures 3% of the time, as late in a selection
    positions = np.arange(500)
    for cursor in (0, 7, 230, 480):
        for first_piece in (1, 16, 1024):
            asked = []

            def scores_of(chunk):
                asked.append(len(chunk))
                return scores[chunk]

            found, scanned, predicted = scan_window(scores_of, positions, cursor, 128, 0.5, want, first_piece)
            expected, expected_scanned = _whole_window(scores, cursor, 128, 0.5, want)
            np.testing.assert_array_equal(found, expected)
            assert scanned == expected_scanned and predicted == sum(asked) <= min(128, 500 - cursor)


def test_a_scan_predicts_little_past_an_early_failure():
    scores = np.ones(1000)
    scores[20] = 0.0
    asked = []
    found, scanned, predicted = scan_window(lambda chunk: asked.append(len(chunk)) or scores[chunk], np.arange(1000),
                                            10, 1024, 0.5, 1, 16)
    assert found.tolist() == [20] and scanned == 11 and predicted == 16 and asked == [16]


def test_pruning_needs_more_than_its_core(tmp_path):
    data = shapes_data(make_shapes(8, 32, seed=0), get_task("classification"), fold=1)
    with pytest.raises(PodiumError):
        select_samples(_cfg(tmp_path), get_task("classification"), data)


@pytest.mark.slow
def test_segmentation_experiment_reports_every_arm_on_a_fresh_set(tmp_path):
    cfg = _cfg(tmp_path, task="segmentation", monitor="val_dice", unet_filters=8, prune_threshold=0.5, epochs=3)
    report = run_shapes_experiment(cfg, get_task(cfg.task), n=120, n_val=24, n_test=40, out_dir=tmp_path / "prune")
    assert report.n_kept < report.n_seen == 120
    assert report.reached_threshold
    assert set(report.scores) == {"selection", "all", "kept", "kept_same_steps", "random_same_steps"}
    assert report.epochs["selection"] == report.selection_epochs and report.n_predicted >= 120 - cfg.prune_core
    assert report.steps["selection"] >= report.selection_epochs  # at least one batch an epoch
    assert report.steps["all"] == 3 * -(-120 // 16) and report.steps["kept"] == 3 * -(-report.n_kept // 16)
    assert {"per_sample", "dice", "iou"} <= set(report.score_kept) == set(report.score_all)
    # fewer samples get proportionally more epochs in the same-steps arms: as many steps as all N
    assert report.epochs["kept_same_steps"] == report.epochs["random_same_steps"] == -(-3 * 120 // report.n_kept)
    assert (tmp_path / "prune" / "report.json").is_file()
    assert "kept, same epochs" in report.text() and "all N" in report.text()
