"""Multi-label classification (podium.tasks.multilabel): space-separated label sets, a sigmoid per class,
per-class thresholds chosen out of fold, micro F1, and the generated shapes-multilabel competition from
files to a validated submission that beats predicting the most frequent label set."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.cli.main import main
from podium.data.competitions import load_competition
from podium.config import ExperimentConfig
from podium.errors import PodiumError
from podium.scoring.metrics import micro_f1
from podium.experiments.synthetic import LABEL_SET_CLASSES, make_label_sets
from podium.experiments.synthetic_files import write_label_set_competition
from podium.tasks import get_task
from podium.tasks.multilabel import choose_thresholds, decide, label_strings, multi_hot

ROOT = Path(__file__).resolve().parents[1]
CLASSES = list(LABEL_SET_CLASSES)


def test_label_sets_become_multi_hot_rows_and_back():
    rows = multi_hot(pd.Series(["ellipse triangle", "rectangle", "triangle ellipse rectangle"]), CLASSES)
    np.testing.assert_array_equal(rows, [[1, 0, 1], [0, 1, 0], [1, 1, 1]])
    assert label_strings(rows, CLASSES) == ["ellipse triangle", "rectangle", "ellipse rectangle triangle"]
    with pytest.raises(PodiumError, match="'circle' is not one of"):
        multi_hot(pd.Series(["ellipse circle"]), CLASSES)


def test_micro_f1_pools_every_image_and_class_decision():
    truth = np.array([[1, 0, 1], [0, 1, 0]])
    assert micro_f1(truth, truth) == 1.0
    assert micro_f1(truth, [[1, 1, 1], [1, 1, 1]]) == pytest.approx(2 * 3 / (3 + 6))
    assert micro_f1(truth, [[1, 0, 0], [0, 0, 0]]) == pytest.approx(2 * 1 / (3 + 1))
    with pytest.raises(PodiumError, match="differ in shape"):
        micro_f1(truth, [[1, 0]])


def test_thresholds_are_chosen_per_class_and_an_image_keeps_its_most_probable_label():
    truth = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    probs = np.array([[0.30, 0.1], [0.35, 0.8], [0.10, 0.7], [0.05, 0.2]])  # class 0 is under-confident
    thresholds = choose_thresholds(truth, probs)
    assert 0.1 < thresholds[0] <= 0.3 and 0.2 < thresholds[1] <= 0.7
    assert micro_f1(truth[:3], decide(probs[:3], thresholds)) == 1.0
    np.testing.assert_array_equal(decide(np.array([[0.2, 0.4]]), np.array([0.5, 0.5])), [[False, True]])


def test_generated_label_sets_are_seeded_and_never_empty():
    images, present = make_label_sets(60, 64, seed=3)
    again, present_again = make_label_sets(60, 64, seed=3)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(present, present_again)
    assert images.shape == (60, 64, 64, 3) and present.shape == (60, 3)
    assert present.sum(axis=1).min() >= 1 and (present.mean(axis=0) > 0.3).all()
    assert len({tuple(row) for row in present}) == 7  # every non-empty subset occurs


def test_multilabel_config_checks_monitor_and_class_balancing():
    ExperimentConfig(task="multilabel", monitor="val_f1", tta=["identity", "hflip", "zoom_in"], augment=["flip"])
    with pytest.raises(PodiumError, match="not logged by task=multilabel"):
        ExperimentConfig(task="multilabel", monitor="val_accuracy")
    with pytest.raises(PodiumError, match="classification-only"):
        ExperimentConfig(task="multilabel", monitor="val_f1", class_weight="balanced")


def test_submission_check_names_unknown_and_missing_labels():
    spec = load_competition("shapes-multilabel")
    sample = pd.DataFrame({"ImageId": ["a.png", "b.png"], "labels": ["ellipse", "ellipse"]})
    task = get_task("multilabel")
    task.validate_frame(pd.DataFrame({"ImageId": ["a.png", "b.png"], "labels": ["ellipse triangle", "rectangle"]}),
                        sample, spec, CLASSES)
    bad = pd.DataFrame({"ImageId": ["a.png", "b.png"], "labels": ["ellipse circle", ""]})
    with pytest.raises(PodiumError) as error:
        task.validate_frame(bad, sample, spec, CLASSES)
    assert "'circle'" in str(error.value) and "empty" in str(error.value)


@pytest.mark.slow
def test_multilabel_files_to_a_submission_that_beats_the_most_frequent_label_set(tmp_path, capsys):
    raw = write_label_set_competition(tmp_path / "raw", n_train=400, n_test=60, size=64, seed=7)
    dirs = [f"data_dir={tmp_path / 'data'}", f"runs_dir={tmp_path / 'runs'}",
            f"submissions_dir={tmp_path / 'submissions'}", "verbose=0"]
    assert main(["run", "--config", str(ROOT / "configs" / "shapes-multilabel.yaml"), "--source", str(raw),
                 *dirs]) == 0
    run_dir = next((tmp_path / "runs").iterdir())
    submission = pd.read_csv(tmp_path / "submissions" / "shapes-multilabel" / f"{run_dir.name}.csv", dtype=str,
                             keep_default_na=False)
    sample = pd.read_csv(raw / "sample_submission_labels.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(raw / "answers" / "test_labels.csv", dtype=str, keep_default_na=False)
    assert submission["ImageId"].tolist() == sample["ImageId"].tolist()
    spec = load_competition("shapes-multilabel")
    get_task("multilabel").validate_frame(submission, sample, spec, CLASSES)

    true = multi_hot(truth["labels"], CLASSES)
    f1 = micro_f1(true, multi_hot(submission["labels"], CLASSES))
    train = pd.read_csv(raw / "train_labels.csv", dtype=str)
    most_frequent = Counter(train["labels"]).most_common(1)[0][0]
    baseline = micro_f1(true, multi_hot(pd.Series([most_frequent] * len(true)), CLASSES))
    everything = micro_f1(true, np.ones_like(true))
    thresholds = json.loads((run_dir / "thresholds.json").read_text())["thresholds"]
    print(f"\nmultilabel test micro F1 {f1:.3f}; most frequent set {most_frequent!r} {baseline:.3f}; "
          f"every label {everything:.3f}; thresholds {thresholds}")
    assert sorted(thresholds) == CLASSES
    assert f1 > max(baseline, everything) + 0.05, f"micro F1 {f1:.3f} vs baselines {baseline:.3f}, {everything:.3f}"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["metric"], metrics["direction"]) == ("micro_f1", "max") and "f1_tuned" in metrics["extra"]
