"""Each submission form from downloaded files to a validated submission, as a user runs it: `make spec` drafts
the spec from the files (the form and metric read off the sample), then `podium run` (data -> folds -> train ->
predict) writes the form, `make submit`'s offline check accepts it, and the file is scored against the demo's
held-back test labels. The competitions are built from the embedded demo's CIFAR-10 JPEGs; one test file is
not an image and still gets a row."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forms_support import BROKEN_ID, demo_competition, experiment_config
from podium.cli.main import main
from podium.config import load_config
from podium.data.competitions import load_competition
from podium.spec import draft_spec, write_draft
from podium.kaggle.submit import resolve_target, validate_file
from podium.scoring.registry import resolve_metric
from podium.tasks import get_task


def _run(tmp_path: Path, source: Path, epochs: int, **spec_fields) -> tuple[pd.DataFrame, Path, list[str], object]:
    """Draft the spec from the files (with `spec_fields` as a user's edits), run everything, and return the
    submission as text, the run folder, the model's classes and the loaded spec."""
    spec_path = tmp_path / "spec.yaml"
    write_draft(draft_spec(source), spec_path)
    if spec_fields:
        text = spec_path.read_text()
        for key, value in spec_fields.items():
            text = "\n".join(f"{key}: {value}" if line.startswith(f"{key}:") else line for line in text.splitlines())
        spec_path.write_text(text + "\n")
    config = experiment_config(tmp_path / f"{source.name}.yaml", spec_path, epochs)
    dirs = {"data_dir": str(tmp_path / "data"), "runs_dir": str(tmp_path / "runs"),
            "submissions_dir": str(tmp_path / "submissions"), "verbose": 0}
    assert main(["run", "--config", str(config), "--source", str(source), *(f"{k}={v}" for k, v in dirs.items())]) == 0
    run_dir = next((tmp_path / "runs").iterdir())
    spec = load_competition(str(spec_path))
    submission = tmp_path / "submissions" / spec.slug / f"{run_dir.name}.csv"
    frame = pd.read_csv(submission, dtype=str, keep_default_na=False)
    target = resolve_target(run_dir.name, load_config(config, dirs))
    validate_file(target, get_task(target.competition.task))  # `make submit`'s offline check
    classes = sorted(spec_classes(source))  # the model's output order: the sorted train labels
    return frame, run_dir, classes, spec


def spec_classes(source: Path) -> set[str]:
    with zipfile.ZipFile(source / "train.zip") as archive:
        return {name.split("/")[1] for name in archive.namelist() if name.count("/") == 2}


def _saved_probabilities(run_dir: Path, ids: list[str]) -> np.ndarray:
    """The run's averaged test softmax rows (what `make predict` saved), in the order of `ids`."""
    rows = pd.read_csv(run_dir / "test_ids.csv", dtype={"id": str}, keep_default_na=False)
    readable = rows[rows["ok"].astype(str).str.lower().isin(("true", "1"))]["id"].tolist()
    values = np.load(run_dir / "test_predictions.npy")
    position = {image_id: k for k, image_id in enumerate(readable)}
    return values[[position[image_id] for image_id in ids]]


@pytest.mark.slow
def test_a_redux_like_competition_writes_p_dog_and_scores_by_log_loss(tmp_path):
    source, truth = demo_competition(tmp_path / "redux-like", ["cat", "dog"], lambda n: {"label": ["0.5"] * n})
    frame, run_dir, classes, spec = _run(tmp_path, source, epochs=4)
    assert (spec.submission_format, spec.positive_class, spec.resolved_metric.name) == ("probability", "dog", "log_loss")
    sample = pd.read_csv(source / "sample_submission.csv", dtype=str)
    assert frame.columns.tolist() == ["id", "label"] and frame["id"].tolist() == sample["id"].tolist()
    p_dog = frame["label"].astype(float).to_numpy()
    assert np.isfinite(p_dog).all() and (p_dog >= 0).all() and (p_dog <= 1).all()
    assert len(np.unique(p_dog)) > 50  # a probability per image, not a hard 0/1 label
    scored = frame[frame["id"] != BROKEN_ID].reset_index(drop=True)
    np.testing.assert_allclose(scored["label"].astype(float), _saved_probabilities(run_dir, scored["id"].tolist())
                               [:, classes.index("dog")], atol=1e-6)  # P(dog), the last class, not P(cat)
    assert float(frame.loc[frame["id"] == BROKEN_ID, "label"].iloc[0]) == pytest.approx(0.5, abs=0.01)  # the prior
    is_dog = scored["id"].map(dict(zip(truth["id"], truth["label"]))).eq("dog").to_numpy(int)
    # the file scores as the model's softmax rows do: binary log loss of P(dog) = two-class log loss
    loss = resolve_metric("log_loss")(is_dog, scored["label"].astype(float))
    softmax = _saved_probabilities(run_dir, scored["id"].tolist())
    assert loss == pytest.approx(resolve_metric("log_loss")(is_dog, softmax[:, ::-1] if classes[0] == "dog" else softmax),
                                 rel=1e-4)
    auc = resolve_metric("roc_auc")(is_dog, scored["label"].astype(float))
    # cat vs dog at 32 px from 200 images is CIFAR-10's hardest pair: the numbers are printed, not asserted
    print(f"redux-like: held-back log loss {loss:.4f} (constant 0.5: {np.log(2):.4f}), AUC {auc:.3f}")


@pytest.mark.slow
def test_a_plant_pathology_like_competition_writes_a_column_per_class_scored_by_columnwise_auc(tmp_path):
    classes = ["airplane", "bird", "frog", "truck"]
    columns = ["truck", "airplane", "frog", "bird"]  # the sample's order, not the model's
    source, truth = demo_competition(tmp_path / "plant-like", classes, lambda n: {c: ["0.25"] * n for c in columns},
                                     train_per_class=100)
    frame, run_dir, model_classes, spec = _run(tmp_path, source, epochs=3, metric="mean_columnwise_auc")
    assert (spec.submission_format, spec.resolved_metric.name) == ("probabilities", "mean_columnwise_auc")
    assert frame.columns.tolist() == ["id", *columns]
    values = frame[columns].astype(float).to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()
    np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-6)
    scored = frame[frame["id"] != BROKEN_ID].reset_index(drop=True)
    saved = _saved_probabilities(run_dir, scored["id"].tolist())
    for name in columns:  # each column is its class's probability, whatever the model's order
        np.testing.assert_allclose(scored[name].astype(float), saved[:, model_classes.index(name)], atol=1e-6)
    label_of = dict(zip(truth["id"], truth["label"]))
    truth_index = scored["id"].map(lambda i: columns.index(label_of[i])).to_numpy()
    auc = resolve_metric("mean_columnwise_auc")(truth_index, scored[columns].astype(float).to_numpy())
    print(f"plant-like: held-back mean column-wise AUC {auc:.3f} (chance 0.5)")
    assert auc > 0.7


@pytest.mark.slow
def test_a_top_3_competition_writes_three_ranked_classes_scored_by_map_at_3(tmp_path):
    classes = ["airplane", "automobile", "bird", "frog", "ship"]
    source, truth = demo_competition(tmp_path / "top3-like", classes, lambda n: {"label": ["airplane bird ship"] * n})
    frame, run_dir, model_classes, spec = _run(tmp_path, source, epochs=6)
    assert (spec.submission_format, spec.resolved_top_k, spec.resolved_metric.label) == ("top_k", 3, "map_at_k(k=3)")
    ranked = [cell.split() for cell in frame["label"]]
    assert all(len(row) == 3 and len(set(row)) == 3 and set(row) <= set(classes) for row in ranked)
    scored = frame[frame["id"] != BROKEN_ID].reset_index(drop=True)
    saved = _saved_probabilities(run_dir, scored["id"].tolist())
    best_first = np.argsort(-saved, axis=1, kind="stable")[:, :3]
    assert [cell.split() for cell in scored["label"]] == [[model_classes[k] for k in row] for row in best_first]
    label_of = dict(zip(truth["id"], truth["label"]))
    truth_index = scored["id"].map(lambda i: classes.index(label_of[i])).to_numpy()
    predicted = np.array([[classes.index(name) for name in cell.split()] for cell in scored["label"]])
    score = resolve_metric("map_at_k(k=3)")(truth_index, predicted)
    chance = (1 + 1 / 2 + 1 / 3) / len(classes)
    print(f"top-3: held-back MAP@3 {score:.3f} (random ranking {chance:.3f})")
    assert score > chance + 0.1
