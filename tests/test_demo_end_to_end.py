"""The whole job on the embedded demo, as `make demo` runs it, scored against the held-back labels."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from podium.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
HELD_BACK = Path(__file__).with_name("data") / "demo_test_labels.csv"


@pytest.mark.slow
def test_make_demo_job_beats_chance_and_writes_everything(tmp_path, capsys):
    dirs = [f"data_dir={tmp_path / 'data'}", f"runs_dir={tmp_path / 'runs'}",
            f"submissions_dir={tmp_path / 'submissions'}", "verbose=0"]
    assert main(["run", "--config", str(ROOT / "configs" / "demo.yaml"), *dirs]) == 0
    out = capsys.readouterr().out
    run_dir = next((tmp_path / "runs").iterdir())
    submission = tmp_path / "submissions" / "demo" / f"{run_dir.name}.csv"
    assert str(submission) in out and "TTA" in out

    predicted = pd.read_csv(submission, dtype=str)
    truth = pd.read_csv(HELD_BACK, dtype=str)
    sample = pd.read_csv(ROOT / "src/podium/demo/sample_submission.csv", dtype=str)
    assert predicted["id"].tolist() == sample["id"].tolist()  # the sample's order, not the disk's
    accuracy = (predicted.merge(truth, on="id", suffixes=("", "_true")).eval("label == label_true")).mean()
    assert accuracy > 0.35, f"demo test accuracy {accuracy:.3f} is too close to chance (0.10)"

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(metrics["folds"]) == 2
    for fold in metrics["folds"]:
        assert 0.3 < fold["val_score"] <= 1 and 0.3 < fold["val_score_tta"] <= 1
    for name in ("confusion.png", "class_distribution.png", "history-fold-0.png", "history-fold-1.png"):
        assert (run_dir / "plots" / name).stat().st_size > 1000
    assert (run_dir / "config.yaml").is_file() and (run_dir / "per_class.csv").is_file()

    # a broken sample submission (duplicate ids) stops `predict` and writes nothing new
    data_root = tmp_path / "data" / "demo"
    broken = pd.concat([sample, sample.head(3)])
    broken.to_csv(data_root / "sample_submission.csv", index=False)
    submission.unlink()
    assert main(["predict", "--config", str(ROOT / "configs" / "demo.yaml"), *dirs]) == 2
    assert "duplicate" in capsys.readouterr().err.lower()
    assert not submission.exists()
