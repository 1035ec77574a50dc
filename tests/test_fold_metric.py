"""Each task's outputs scored in the run's metric (Task.metric_pair, Task.fold_scores), against scikit-learn
or hand-computed values; the task's own number stays in `extra`."""

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import fbeta_score, log_loss, roc_auc_score

from podium.data.competitions import CompetitionSpec
from podium.data.dataset import in_memory_data
from podium.scoring.registry import resolve_metric
from podium.tasks import get_task

RNG = np.random.default_rng(0)


def _probs(n, c):
    raw = RNG.random((n, c)) + 0.05
    return raw / raw.sum(1, keepdims=True)


def _classification(n, classes, positive_class=""):
    labels = RNG.integers(0, len(classes), n)
    data = in_memory_data(np.zeros((n, 4, 4, 3), "uint8"), labels, np.zeros(n, int), classes)
    return dataclasses.replace(data, spec=CompetitionSpec(slug="t", positive_class=positive_class))


def test_binary_roc_auc_reads_the_positive_class_probability():
    data = _classification(60, ["cat", "dog"])
    positions = np.arange(60)
    plain, tta = _probs(60, 2), _probs(60, 2)
    scores = get_task("classification").fold_scores(data, positions, 0, plain, tta, resolve_metric("roc_auc"))
    assert scores.plain == pytest.approx(roc_auc_score(data.labels == 1, plain[:, 1]))  # dog: the last class
    assert scores.with_tta == pytest.approx(roc_auc_score(data.labels == 1, tta[:, 1]))
    assert scores.extra["accuracy"] == pytest.approx(np.mean(plain.argmax(1) == data.labels))
    cat = dataclasses.replace(data, spec=CompetitionSpec(slug="t", positive_class="cat"))
    assert get_task("classification").score(resolve_metric("roc_auc"), cat, positions, plain) == \
        pytest.approx(roc_auc_score(data.labels == 0, plain[:, 0]))


def test_multiclass_log_loss_and_map_at_k():
    data = _classification(50, ["a", "b", "c", "d"])
    positions = np.arange(10, 50)
    probs = _probs(40, 4)
    task = get_task("classification")
    assert task.score(resolve_metric("log_loss"), data, positions, probs) == \
        pytest.approx(log_loss(data.labels[positions], probs, labels=range(4)))
    ranked = np.argsort(-probs, axis=1)[:, :2]
    truth = data.labels[positions]
    hand = np.mean([1.0 if r[0] == t else 0.5 if r[1] == t else 0.0 for r, t in zip(ranked, truth)])
    assert task.score(resolve_metric("map_at_k(k=2)"), data, positions, probs) == pytest.approx(hand)


def test_the_tasks_default_metric_keeps_its_own_numbers():
    data = _classification(30, ["a", "b", "c"])
    plain = _probs(30, 3)
    task = get_task("classification")
    own = task.fold_scores(data, np.arange(30), 0, plain, plain)
    same = task.fold_scores(data, np.arange(30), 0, plain, plain, resolve_metric("accuracy"))
    assert own.plain == same.plain and own.extra == same.extra == {}


def test_multilabel_fbeta_averaged_per_sample():
    n, c = 40, 3
    truth = (RNG.random((n, c)) > 0.5).astype("float32")
    truth[truth.sum(1) == 0, 0] = 1
    data = in_memory_data(np.zeros((n, 4, 4, 3), "uint8"), truth.argmax(1), np.zeros(n, int), ["x", "y", "z"],
                          targets=truth, task="multilabel")
    probs = RNG.random((n, c))
    scores = get_task("multilabel").fold_scores(data, np.arange(n), 0, probs, probs,
                                                resolve_metric({"name": "fbeta", "beta": 2}))
    chosen = probs >= 0.5
    chosen[~chosen.any(1), probs[~chosen.any(1)].argmax(1)] = True  # a row is never empty
    assert scores.plain == pytest.approx(fbeta_score(truth, chosen, beta=2, average="samples", zero_division=0))
    assert "micro_f1" in scores.extra


def test_localization_scored_by_accuracy_keeps_box_iou():
    n, c = 20, 2
    boxes = np.tile([[0.1, 0.1, 0.6, 0.6]], (n, 1)).astype("float32")
    labels = RNG.integers(0, c, n)
    data = in_memory_data(np.zeros((n, 4, 4, 3), "uint8"), labels, np.zeros(n, int), ["p", "q"], targets=boxes,
                          task="localization")
    outputs = np.concatenate([_probs(n, c), boxes], axis=1)
    scores = get_task("localization").fold_scores(data, np.arange(n), 0, outputs, outputs,
                                                  resolve_metric("accuracy"))
    assert scores.plain == pytest.approx(np.mean(outputs[:, :c].argmax(1) == labels))
    assert scores.extra["box_iou"] == pytest.approx(1.0)
