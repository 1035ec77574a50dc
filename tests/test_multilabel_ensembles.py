"""Multi-label runs blended and pseudo-labelled (issue 20 §8; both were refused before): two tiny runs of the
generated shapes-multilabel competition (tiny CNN, 32 px, 2 epochs, folds 0 and 1), trained and predicted."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.tasks import get_task
from podium.cli.main import main
from podium.experiments.synthetic import LABEL_SET_CLASSES
from podium.experiments.synthetic_files import write_label_set_competition
from podium.scoring.forms import from_label_probabilities, label_sets
from podium.scoring.registry import resolve_metric
from podium.tasks.multilabel import choose_thresholds, multi_hot

ROOT = Path(__file__).resolve().parents[1]
CLASSES = list(LABEL_SET_CLASSES)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("multilabel-ensembles")
    raw = write_label_set_competition(base / "raw", n_train=120, n_test=24, size=32, seed=3)
    dirs = [f"data_dir={base / 'data'}", f"runs_dir={base / 'runs'}", f"submissions_dir={base / 'subs'}",
            "verbose=0", "image_size=32", "epochs=2", "folds=[0,1]", "n_folds=2", "tta=[identity]",
            "early_stopping_patience=5"]
    for seed in (1, 2):
        assert main(["run", "--config", str(ROOT / "configs" / "shapes-multilabel.yaml"), "--source", str(raw),
                     *dirs, f"seed={seed}"]) == 0
    return base, raw, dirs, sorted(p.name for p in (base / "runs").iterdir())


@pytest.mark.slow
def test_two_multilabel_runs_blend_with_honest_thresholds(two_runs, capsys):
    from podium.kaggle.submit import resolve_target, validate_file

    base, raw, _, (first, second) = two_runs
    runs_dir = base / "runs"
    record = json.loads((runs_dir / first / "thresholds.json").read_text())
    assert record["metric"] == "micro_f1" and set(record["honest"]["folds"]) == {"0", "1"}
    capsys.readouterr()
    assert main(["blend", "--runs", first, second, "--name", "ml", "--runs-dir", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    blend_dir = next(runs_dir.glob("blend-ml-*"))
    metrics = json.loads((blend_dir / "metrics.json").read_text())
    assert metrics["metric"] == "micro_f1" and metrics["direction"] == "max"
    assert "log_loss" in metrics["fitted_on"] and "proxy" in metrics["fitted_on"]
    assert "metric: micro_f1" in out and f"{metrics['cv_mean']:.4f}" in out
    weights = np.array(list(metrics["weights"].values()))
    assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0)

    # the honest CV, recomputed: fold k blended with its weights, thresholded at thresholds chosen on fold j
    oof = {run: pd.concat([pd.read_parquet(runs_dir / run / f"fold-{k}" / "oof.parquet") for k in (0, 1)])
           .sort_values("id", kind="stable").reset_index(drop=True) for run in (first, second)}
    truth = multi_hot(oof[first]["label"], CLASSES)
    folds = oof[first]["fold"].to_numpy()
    probs = np.stack([oof[run][[f"prob_{c}" for c in CLASSES]].to_numpy(dtype="float64") for run in (first, second)])
    metric = resolve_metric("micro_f1")
    for fold in metrics["folds"]:
        held = folds == fold["fold"]
        w = np.asarray(fold["weights"])
        blended = np.tensordot(w, probs, axes=1)
        chosen = choose_thresholds(truth[~held], blended[~held], metric)
        assert fold["score"] == pytest.approx(metric(*from_label_probabilities(metric, truth[held], blended[held],
                                                                               chosen)))
    # the blend's thresholds, chosen on every blended OOF row, are what its submission used
    saved = json.loads((blend_dir / "thresholds.json").read_text())
    final = choose_thresholds(truth, np.tensordot(weights, probs, axes=1), metric)
    np.testing.assert_allclose([saved["thresholds"][c] for c in CLASSES], final)
    assert saved["honest"]["cv_mean"] is not None and saved["tuned_in_sample"] >= saved["honest"]["cv_mean"] - 1e-9
    target = resolve_target(run_id=blend_dir.name, runs_dir=str(runs_dir))
    validate_file(target, get_task(target.competition.task))
    submission = pd.read_csv(target.file, dtype=str, keep_default_na=False)
    test = np.load(blend_dir / "test_predictions.npy")
    expected = [" ".join(c for c, on in zip(CLASSES, row) if on)
                for row in from_label_probabilities(metric, np.zeros_like(test, int), test, final)[1]]
    ids = pd.read_csv(blend_dir / "test_ids.csv", dtype=str)["id"]
    assert submission.set_index("ImageId").loc[ids, "labels"].tolist() == expected


@pytest.mark.slow
def test_multilabel_pseudo_labels_train_with_their_label_sets(two_runs):
    from podium.config import load_config
    from podium.data.dataset import load_labeled_data
    from podium.runners.pseudo import label_set_confidence
    from podium.runners.train import fold_pseudo_labels, make_loaders
    from podium.workflow import train_run

    base, _, dirs, (source, _) = two_runs
    runs_dir = base / "runs"
    cfg = load_config(ROOT / "configs" / "shapes-multilabel.yaml",
                      [*dirs, "seed=5", "epochs=1", f"pseudo_run={source}", "pseudo_top_share=0.5"])
    train_run(cfg, get_task(cfg.task), progress=False)
    record = json.loads((cfg.run_dir / "metrics.json").read_text())["pseudo_labels"]
    assert record["run"] == source and "label set" in record["rule"] and record["total"] > 0
    assert set(record["per_class"]) == set(CLASSES)

    data = load_labeled_data(cfg, get_task(cfg.task), progress=False)
    train_pos, val_pos = data.fold_positions(0)
    pseudo, _ = fold_pseudo_labels(cfg, data, val_pos)
    test = np.load(runs_dir / source / "test_predictions.npy")
    ids = pd.read_csv(runs_dir / source / "test_ids.csv", dtype=str)
    position = {i: k for k, i in enumerate(ids.loc[ids["ok"].str.lower() == "true", "id"])}
    thresholds = np.array([json.loads((runs_dir / source / "thresholds.json").read_text())["thresholds"][c]
                           for c in CLASSES])
    rows = [position[i] for i in pseudo.ids]
    np.testing.assert_array_equal(pseudo.labels, label_sets(test[rows], thresholds))  # the decided label sets
    np.testing.assert_allclose(pseudo.confidence, label_set_confidence(test[rows], thresholds), rtol=1e-6)
    assert record["per_fold"]["0"]["total"] == len(pseudo.ids)
    train, val = make_loaders(cfg, get_task(cfg.task), data, train_pos, val_pos, pseudo=pseudo)
    n = len(data.images)
    assert len(train.positions) == len(train_pos) + len(pseudo.ids) and np.array_equal(val.positions, val_pos)
    np.testing.assert_array_equal(train.targets[n:], pseudo.labels)  # pseudo rows train on their label sets
    assert (train.sample_weights[n:] == cfg.pseudo_weight).all() and (train.sample_weights[:n] == 1).all()
    x, y, w = train[0]
    assert y.shape[1] == len(CLASSES) and len(w) == len(x)
