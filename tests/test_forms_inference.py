"""A code competition's inference kernel writes the spec's form as `make predict` does: the packaged run
carries its competition spec (submission_format, positive_class), and predict_from_package goes through the
task's writer, so a Redux-like kernel writes P(dog), not a class name."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forms_support import BROKEN_ID, demo_competition, experiment_config
from podium.config import load_config
from podium.errors import PodiumError
from podium.tasks import get_task


def test_the_inference_kernel_writes_a_probability_submission(tmp_path):
    from podium import tasks
    from podium.kaggle.inference import package_run, predict_from_package
    from tests_support import make_data

    source, truth = demo_competition(tmp_path / "redux-like", ["cat", "dog"], lambda n: {"label": ["0.5"] * n}, 10)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text("slug: redux-like\nlayout: folder\nmetric: log_loss\nsubmission_format: probability\n"
                         "positive_class: cat\n")
    cfg = load_config(experiment_config(tmp_path / "redux.yaml", spec_path, 1),
                      {"data_dir": str(tmp_path / "data"), "runs_dir": str(tmp_path / "runs"), "verbose": 0})
    make_data(cfg.competition, cfg.data_dir, str(source))
    fold_dir = cfg.run_dir / "fold-0"
    fold_dir.mkdir(parents=True)
    tasks.get_task(cfg.task).build_model(cfg, 2).save(fold_dir / "best.keras")  # untrained: the point is the path and the form
    (fold_dir / "metrics.json").write_text(json.dumps({"best_epoch": 1, "epochs_run": 1}))
    package = package_run(cfg, get_task(cfg.task), tmp_path / "package", "tester/redux-run") / cfg.run_id
    out = tmp_path / "submission.csv"
    summary = predict_from_package(package, get_task(cfg.task), cfg.data_root, out, tmp_path / "scratch",
                                   log=lambda line: None)

    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    sample = pd.read_csv(source / "sample_submission.csv", dtype=str)
    assert written["id"].tolist() == sample["id"].tolist() and summary.n_unreadable == 1
    p_cat = written["label"].astype(float).to_numpy()
    assert ((p_cat >= 0) & (p_cat <= 1)).all() and len(np.unique(p_cat)) > 10  # probabilities, not names
    assert float(written.loc[written["id"] == BROKEN_ID, "label"].iloc[0]) == pytest.approx(0.5)  # the prior of cat

    # the kernel reads the sample it finds at run time: a label-form sample there is refused before predicting
    pd.DataFrame({"id": sample["id"], "label": "cat"}).to_csv(cfg.data_root / "sample_submission.csv", index=False)
    with pytest.raises(PodiumError, match="does not look like a submission_format: probability"):
        predict_from_package(package, get_task(cfg.task), cfg.data_root, tmp_path / "again.csv", tmp_path / "scratch2",
                             log=lambda line: None)
    assert not (tmp_path / "again.csv").exists()

    # packaging and offline prediction are handed the task by their entry point: another task is refused
    with pytest.raises(PodiumError, match="trained task=classification, and was given the segmentation task"):
        package_run(cfg, get_task("segmentation"), tmp_path / "package-other", "tester/redux-run")
    with pytest.raises(PodiumError, match="trained task=classification, and was given the segmentation task"):
        predict_from_package(package, get_task("segmentation"), cfg.data_root, tmp_path / "other.csv",
                             tmp_path / "scratch3", log=lambda line: None)
    assert not (tmp_path / "package-other").exists() and not (tmp_path / "other.csv").exists()
