"""A Dogs-vs-Cats-Redux-like competition built from the embedded demo (its cat and dog images; log loss on
P(dog), a `probability` submission): the temperature fitted honestly on the run's OOF rows makes the submitted
probabilities score a lower log loss on held-back test images than the raw ones (issue 20 §4)."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from podium.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "src" / "podium" / "demo"
PETS = ("cat", "dog")


def write_redux_like(out: Path) -> tuple[Path, pd.DataFrame]:
    """(spec path, held-back test truth): train/<cat|dog>/*.jpg, test/<id>.jpg, a sample of 0.5s."""
    source = out / "source"
    source.mkdir(parents=True)
    with zipfile.ZipFile(DEMO / "train.zip") as zf, zipfile.ZipFile(source / "train.zip", "w") as train:
        for name in zf.namelist():
            if name.endswith(".jpg") and name.split("/")[1] in PETS:
                train.writestr(name, zf.read(name))
    truth = pd.read_csv(ROOT / "tests" / "data" / "demo_test_labels.csv", dtype={"id": str})
    truth = truth[truth["label"].isin(PETS)].reset_index(drop=True)
    with zipfile.ZipFile(DEMO / "test.zip") as zf, zipfile.ZipFile(source / "test.zip", "w") as test:
        for image_id in truth["id"]:
            test.writestr(f"test/{image_id}.jpg", zf.read(f"test/{image_id}.jpg"))
    pd.DataFrame({"id": truth["id"], "label": 0.5}).to_csv(source / "sample_submission.csv", index=False)
    spec = out / "redux-like.yaml"
    spec.write_text("slug: redux-like\ntitle: Dogs vs. Cats Redux, from the demo's cats and dogs\nsource: local\n"
                    "layout: folder\narchives: [train.zip, test.zip]\ntrain_dir: train\ntest_dir: test\n"
                    "sample_submission: sample_submission.csv\nsubmission_id_column: id\n"
                    "submission_label_column: label\nsubmission_id: stem\nmetric: log_loss\n"
                    "submission_format: probability\npositive_class: dog\n")
    return spec, truth


@pytest.mark.slow
def test_the_calibrated_submission_beats_the_raw_probabilities_on_held_back_images(tmp_path, capsys):
    spec, truth = write_redux_like(tmp_path)
    runs = tmp_path / "runs"
    assert main(["run", "--config", str(ROOT / "configs" / "demo.yaml"), "--source", str(tmp_path / "source"),
                 f"competition={spec}", f"data_dir={tmp_path / 'data'}", f"runs_dir={runs}",
                 f"submissions_dir={tmp_path / 'subs'}", "verbose=0", "n_folds=3", "folds=[0,1,2]", "epochs=12",
                 "schedule=constant", "lr=0.003", "early_stopping_patience=20", "augment=[]", "seed=1"]) == 0
    out = capsys.readouterr().out
    run_dir = next(runs.iterdir())
    record = json.loads((run_dir / "calibration.json").read_text())
    assert record["metric"] == "log_loss" and set(record["fold_temperatures"]) == {"0", "1", "2"}
    assert "calibrated (temperature" in out

    submission = pd.read_csv(tmp_path / "subs" / "redux-like" / f"{run_dir.name}.csv", dtype={"id": str})
    held = truth.set_index("id").loc[submission["id"], "label"].eq("dog").astype(int).to_numpy()
    ids = pd.read_csv(run_dir / "test_ids.csv", dtype={"id": str})["id"]
    raw = pd.Series(np.load(run_dir / "test_predictions.npy")[:, PETS.index("dog")], index=ids)
    raw_loss = log_loss(held, raw.loc[submission["id"]].to_numpy(), labels=[0, 1])
    calibrated_loss = log_loss(held, submission["label"].to_numpy(dtype=float), labels=[0, 1])
    print(f"\nRedux-like held-back log loss: raw {raw_loss:.4f}, calibrated {calibrated_loss:.4f} "
          f"(T={record['temperature']:.3f}; OOF {record['before']['cv_mean']:.4f} -> {record['after']['cv_mean']:.4f} "
          f"honestly per fold)")
    assert record["after"]["cv_mean"] < record["before"]["cv_mean"]  # honest OOF: each fold with the others' T
    assert calibrated_loss < raw_loss
    # the submitted P(dog) is the raw one scaled by T: nothing else moved it
    expected = 1 / (1 + ((1 - raw) / raw) ** (1 / record["temperature"]))
    np.testing.assert_allclose(submission["label"].to_numpy(dtype=float), expected.loc[submission["id"]], atol=1e-5)

    # the inference package carries the temperature
    from podium.config import load_config
    from podium.tasks import get_task

    cfg = load_config(run_dir / "config.yaml")
    assert [p.name for p in get_task("classification").package_files(cfg, list(PETS))] == ["calibration.json"]
