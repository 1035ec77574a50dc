"""Pseudo-labels (podium.runners.pseudo): confident test predictions of a finished run join the TRAINING part of
every fold with a weight; validation rows, OOF and CV stay the labelled images. Real demo runs (tiny CNN,
32 px, 1 epoch, fold 0 of a 20% holdout) for the end-to-end checks; the rest on small arrays."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.config import ExperimentConfig, load_config
from podium.errors import PodiumError
from podium.runners.pseudo import select_confident
from podium.tasks import get_task


# ------------------------------------------------------------------------------------ fast: the rules
def test_threshold_picks_every_confident_row_and_top_share_each_class():
    probs = np.array([[0.95, 0.05], [0.6, 0.4], [0.2, 0.8], [0.1, 0.9], [0.3, 0.7], [0.99, 0.01]])
    rows, labels = select_confident(probs, threshold=0.9)
    assert rows.tolist() == [0, 3, 5] and labels.tolist() == [0, 1, 0]
    rows, labels = select_confident(probs, top_share=0.5)  # class 0: rows 0,1,5 -> 2 kept; class 1: 2,3,4 -> 2
    assert rows.tolist() == [0, 2, 3, 5] and labels.tolist() == [0, 1, 1, 0]
    assert select_confident(probs, threshold=0.999)[0].tolist() == []


def test_a_label_set_is_as_confident_as_its_least_confident_class():
    from podium.runners.pseudo import label_set_confidence, select_confident_sets

    thresholds = np.array([0.5, 0.2])
    probs = np.array([[0.98, 0.01],   # both far from their thresholds: confident
                      [0.98, 0.25],   # class 1 just above 0.2: doubtful
                      [0.03, 0.9],    # confident
                      [0.5, 0.02],    # class 0 exactly at its threshold: 0.5
                      [0.1, 0.6]])
    # by hand: class 0 (t=0.5): max(p, 1-p); class 1 (t=0.2): above 0.5+0.5(p-0.2)/0.8, below 0.5+0.5(0.2-p)/0.2
    expected = [min(0.98, 0.5 + 0.5 * 0.19 / 0.2), min(0.98, 0.5 + 0.5 * 0.05 / 0.8), min(0.97, 0.5 + 0.5 * 0.7 / 0.8),
                0.5, min(0.9, 0.5 + 0.5 * 0.4 / 0.8)]
    np.testing.assert_allclose(label_set_confidence(probs, thresholds), expected)
    np.testing.assert_allclose(label_set_confidence(np.array([[0.9, 0.3]]), [0.5, 0.5]), [0.7])  # = max(p, 1 - p)
    rows, sets, confidence = select_confident_sets(probs, thresholds, threshold=0.9)
    assert rows.tolist() == [0, 2] and sets.tolist() == [[1, 0], [0, 1]]
    np.testing.assert_allclose(confidence, np.array(expected)[[0, 2]])
    # top share per predicted label set: {1,0}: rows 0 (0.95) and 3 (0.5); {1,1}: row 1; {0,1}: rows 2 and 4
    rows, sets, _ = select_confident_sets(probs, thresholds, top_share=0.5)
    assert rows.tolist() == [0, 1, 2] and sets.tolist() == [[1, 0], [1, 1], [0, 1]]


def test_pseudo_keys_at_their_defaults_keep_every_run_id():
    plain = ExperimentConfig()
    explicit = load_config(None, ["pseudo_run=", "pseudo_threshold=0", "pseudo_top_share=0", "pseudo_weight=0.5"])
    assert plain.run_id == explicit.run_id
    with_pseudo = load_config(None, ["pseudo_run=demo-1234", "pseudo_threshold=0.9"])
    assert with_pseudo.run_id != plain.run_id  # a pseudo-labelled run never lands in its plain twin's folder


@pytest.mark.parametrize("override, message", [
    (["pseudo_threshold=0.9"], "without pseudo_run"),
    (["pseudo_run=a-1"], "one rule"),
    (["pseudo_run=a-1", "pseudo_threshold=0.9", "pseudo_top_share=0.2"], "one rule"),
    (["pseudo_run=a-1", "pseudo_threshold=1.5"], "out of range"),
    (["pseudo_run=a-1", "pseudo_top_share=0.2", "task=segmentation", "monitor=val_dice", "augment=[flip]",
      "tta=[identity]"], r"classification\|multilabel-only"),
])
def test_pseudo_settings_are_checked_at_config_load(override, message):
    with pytest.raises(PodiumError, match=message) as caught:
        load_config(None, override)
    assert caught.value.fix


# --------------------------------------------------------------------------------- real demo runs
@pytest.fixture(scope="module")
def source_run(tiny, tiny_run, tmp_path_factory):
    """The tiny demo run, copied: the pseudo-labels' source (the tests train students beside it)."""
    return tiny.copy(tiny_run, tmp_path_factory.mktemp("pseudo"))


@pytest.mark.slow
def test_pseudo_labels_join_training_only_and_are_reported(source_run, tiny, tmp_path):
    from podium.data.dataset import load_labeled_data
    from podium.runners.train import fold_pseudo_labels, make_loaders
    from podium.workflow import train_run

    base = Path(source_run.runs_dir).parent
    plain_cfg = tiny.cfg(base, "name=student")
    pseudo_cfg = tiny.cfg(base, "name=student", f"pseudo_run={source_run.run_id}", "pseudo_top_share=0.3",
                      "pseudo_weight=0.5")
    plain = train_run(plain_cfg, get_task(plain_cfg.task), progress=False)  # first, so the pseudo run's report compares against it
    with_pseudo = train_run(pseudo_cfg, get_task(pseudo_cfg.task), progress=False)

    # validation: exactly the labelled images of the split, in both runs
    oof_plain = pd.read_parquet(plain_cfg.run_dir / "fold-0" / "oof.parquet")
    oof_pseudo = pd.read_parquet(pseudo_cfg.run_dir / "fold-0" / "oof.parquet")
    assert sorted(oof_plain["id"]) == sorted(oof_pseudo["id"])
    data = load_labeled_data(pseudo_cfg, get_task(pseudo_cfg.task), progress=False)
    train_pos, val_pos = data.fold_positions(0)
    assert sorted(oof_pseudo["id"]) == sorted(data.ids[val_pos])
    test_ids = set(pd.read_csv(source_run.run_dir / "test_ids.csv", dtype={"id": str})["id"])
    assert not test_ids & set(oof_pseudo["id"])

    # reported: from which run, how many per class, per fold; the training part grew by that count
    metrics = json.loads((pseudo_cfg.run_dir / "metrics.json").read_text())
    record = metrics["pseudo_labels"]
    fold = metrics["folds"][0]
    added = record["per_fold"]["0"]["total"]
    assert record["run"] == source_run.run_id and added > 0
    assert sum(record["per_class"].values()) == record["total"] >= added
    assert sum(record["per_fold"]["0"]["per_class"].values()) == added
    assert fold["n_pseudo"] == added and fold["n_train"] == plain.folds[0].n_train and fold["n_val"] == len(val_pos)
    assert record["without"]["run_id"] == plain_cfg.run_id
    assert record["without"]["cv_tta_mean"] == pytest.approx(plain.cv_tta_mean)
    summary = (pseudo_cfg.run_dir / "summary.txt").read_text()
    assert f"pseudo-labels: {record['total']} test images from run {source_run.run_id}" in summary
    assert "CV (TTA) without them" in summary
    assert json.loads((pseudo_cfg.run_dir / "data.json").read_text())["pseudo_run"] == source_run.run_id
    from podium.reports.html import build_report

    page = build_report(source_run.runs_dir, tmp_path / "no-submissions", out=tmp_path / "report").page.read_text()
    assert f"pseudo-labels: {record['total']} test images from run {source_run.run_id}" in page

    # the loaders: pseudo rows only in training, weighted; validation rows unchanged
    pseudo, _ = fold_pseudo_labels(pseudo_cfg, data, val_pos)
    train, val = make_loaders(pseudo_cfg, get_task(pseudo_cfg.task), data, train_pos, val_pos, pseudo=pseudo)
    plain_train, plain_val = make_loaders(plain_cfg, get_task(plain_cfg.task), data, train_pos, val_pos)
    assert len(train.positions) == len(plain_train.positions) + added
    assert np.array_equal(val.positions, plain_val.positions) and len(val[0]) == 2  # no weights in validation
    weights = train.sample_weights[train.positions]
    assert (weights == 1).sum() == len(train_pos) and (weights == 0.5).sum() == added
    x, y, w = train[0]
    assert len(x) == len(y) == len(w) and set(np.unique(w)) <= {0.5, 1.0}


@pytest.mark.slow
def test_pseudo_runs_that_cannot_be_used_are_refused(source_run, tiny):
    from podium.data.index import class_names, load_index
    from podium.runners.pseudo import check_source
    from podium.workflow import train_run

    runs = Path(source_run.runs_dir)
    with pytest.raises(PodiumError, match="does not exist") as caught:
        train_run(tiny.cfg(runs.parent, "name=x", "pseudo_run=nope-0000", "pseudo_threshold=0.9"),
                  get_task("classification"), progress=False)
    assert "runs/" in caught.value.fix
    root = source_run.data_root
    index = load_index(root / "index.parquet")
    classes = class_names(index, _spec(), get_task("classification"))

    def refused(run_id, setup, match):
        shutil.copytree(source_run.run_dir, runs / run_id, ignore=shutil.ignore_patterns("fold-*", ".podium.lock"))
        setup(runs / run_id)
        cfg = dataclasses.replace(source_run, name="student", pseudo_run=run_id, pseudo_threshold=0.9)
        with pytest.raises(PodiumError, match=match):
            check_source(cfg, classes, index)

    def foreign(run_dir):
        saved = load_config(run_dir / "config.yaml")
        (run_dir / "config.yaml").write_text((run_dir / "config.yaml").read_text().replace(
            f"competition: {saved.competition}", "competition: cifar10"))

    def unpredicted(run_dir):
        (run_dir / "test_predictions.npy").unlink()

    def unfinished(run_dir):
        record = json.loads((run_dir / "test_predictions.json").read_text())
        record["folds_used"][0]["finished"] = False
        (run_dir / "test_predictions.json").write_text(json.dumps(record))

    refused("foreign-0001", foreign, "another competition")
    refused("unpredicted-0002", unpredicted, "no saved test predictions")
    refused("unfinished-0003", unfinished, "did not finish")


def _spec():
    from podium.data.competitions import load_competition

    return load_competition("demo")


WEIGHTED_LOSS = """
import json
import keras
import numpy as np
from podium.data.pipeline import ImageBatches

images = np.random.default_rng(0).integers(0, 255, (8, 8, 8, 3), dtype=np.uint8)
labels = np.array([0, 1] * 4)
model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                          keras.layers.Dense(2, activation="softmax")])
model.compile(loss="categorical_crossentropy")


def loss(weights):
    batches = ImageBatches(images, np.arange(8), labels, 2, batch_size=8, sample_weights=weights)
    return float(model.evaluate(batches, verbose=0))


print(json.dumps({"backend": keras.backend.backend(), "ones": loss(np.ones(8)), "zeros": loss(np.zeros(8)),
                  "half": loss(np.full(8, 0.5))}))
"""


@pytest.mark.parametrize("backend", ["default", "jax"])
def test_sample_weights_reach_the_loss_on_every_backend(backend, tmp_path):
    """The (x, y, weight) batches of ImageBatches weigh the loss under TensorFlow and JAX alike."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    if backend == "jax":
        env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    script = tmp_path / "weighted.py"
    script.write_text(WEIGHTED_LOSS)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert backend == "default" or result["backend"] == "jax"
    assert result["ones"] > 0 and result["zeros"] == 0
    assert result["half"] == pytest.approx(result["ones"] / 2, rel=1e-4)
