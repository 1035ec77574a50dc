"""A task defined here, in the test, joins podium with one registration line and runs `podium run`
(data -> folds -> train -> predict) to a validated submission, touching no module outside podium.tasks and
its registry (docs/tasks.md "Adding a task").

The toy task, "brightness", is two-class classification of generated 16 px images, dark or bright, with
its own class order (dark first, not sorted) and its own name in the reports: enough to see that every
stage asks the registered object, never a task name it knows."""

import dataclasses
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from podium import tasks
from podium.cli.main import main
from podium.task_keys import TASK_KEYS
from podium.tasks.classification import Classification
from podium.tasks import get_task

SIZE = 16


class Brightness(Classification):
    """Dark or bright: classification's head, loss, scores and writer, its own name and class order."""

    name = "brightness"
    metric_name = "brightness accuracy"

    def class_names(self, labels: pd.Series) -> list[str]:
        return ["dark", "bright"]  # the model's output order, whatever the labels' sort order


@pytest.fixture
def brightness():
    """The toy task, registered for one test and removed after it (the registry is as the test found it)."""
    keys = dataclasses.replace(TASK_KEYS["classification"], needs_labels_csv=True, outputs_like="classification")
    task = tasks.register(Brightness(), keys)
    yield task
    tasks.unregister(task.name)
    assert "brightness" not in tasks.TASKS and "brightness" not in TASK_KEYS


def _png(value: int, rng: np.random.Generator) -> bytes:
    pixels = np.clip(value + rng.integers(-20, 21, (SIZE, SIZE, 3)), 0, 255).astype("uint8")
    buffer = BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _competition(raw: Path, n_train: int = 60, n_test: int = 20) -> pd.DataFrame:
    """train.zip / test.zip of dark (~40) and bright (~215) PNGs, the labels CSV and the sample; returns the
    test answers."""
    rng = np.random.default_rng(0)
    raw.mkdir(parents=True)
    answers = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = {f"{split}-{k:03d}.png": ("bright" if k % 2 else "dark") for k in range(n)}
        with zipfile.ZipFile(raw / f"{split}.zip", "w") as archive:
            for image_id, label in labels.items():
                archive.writestr(f"{split}/{image_id}", _png(215 if label == "bright" else 40, rng))
        answers[split] = pd.DataFrame({"ImageId": list(labels), "level": list(labels.values())})
    answers["train"].to_csv(raw / "train_levels.csv", index=False)
    answers["test"].assign(level="dark").to_csv(raw / "sample_submission.csv", index=False)
    return answers["test"]


def _spec(path: Path) -> Path:
    path.write_text("slug: toy-brightness\ntitle: dark or bright\ntask: brightness\nsource: kaggle\nlayout: csv\n"
                    "archives: [train.zip, test.zip, train_levels.csv, sample_submission.csv]\ntrain_dir: train\n"
                    "labels_csv: train_levels.csv\nid_column: ImageId\nlabel_column: level\ntest_dir: test\n"
                    "sample_submission: sample_submission.csv\nsubmission_id_column: ImageId\n"
                    "submission_label_column: level\nsubmission_id: filename\nmetric: accuracy\n")
    return path


def test_a_task_registered_in_the_test_runs_from_files_to_a_validated_submission(tmp_path, brightness, capsys):
    from podium.config import load_config
    from podium.kaggle.submit import resolve_target, validate_file

    truth = _competition(tmp_path / "raw")
    spec = _spec(tmp_path / "toy-brightness.yaml")
    dirs = [f"data_dir={tmp_path / 'data'}", f"runs_dir={tmp_path / 'runs'}",
            f"submissions_dir={tmp_path / 'submissions'}"]
    overrides = [f"competition={spec}", "task=brightness", "name=toy", "backbone=tiny_cnn", f"image_size={SIZE}",
                 "n_folds=2", "folds=[0]", "epochs=2", "batch_size=16", "lr=0.01", "augment=[]",
                 "tta=[identity]", "verbose=0", *dirs]
    config = tmp_path / "toy.yaml"
    config.write_text("\n".join(o.replace("=", ": ", 1) for o in overrides) + "\n")
    assert main(["run", "--config", str(config), "--source", str(tmp_path / "raw")]) == 0
    out = capsys.readouterr().out
    assert "submission:" in out

    cfg = load_config(config)
    assert cfg.task == "brightness"
    run_dir = next((tmp_path / "runs").iterdir())
    assert (run_dir / "fold-0" / "best.keras").is_file()
    oof = pd.read_parquet(run_dir / "fold-0" / "oof.parquet")
    assert [c for c in oof.columns if c.startswith("prob_")] == ["prob_dark", "prob_bright"]  # the task's order
    submission = pd.read_csv(tmp_path / "submissions" / "toy-brightness" / f"{run_dir.name}.csv")
    assert submission["ImageId"].tolist() == truth["ImageId"].tolist()
    assert (submission["level"] == truth["level"]).mean() >= 0.9  # dark and bright: easy after two epochs
    target = resolve_target(run_dir.name, cfg)
    validate_file(target, get_task(target.competition.task))  # `make submit`'s offline check, by the registered task


def test_registering_refuses_a_shipped_name_and_unregistering_a_shipped_task():
    from podium.errors import PodiumError

    with pytest.raises(PodiumError, match="Cannot register"):
        tasks.register(Classification(), TASK_KEYS["classification"])
    with pytest.raises(PodiumError, match="ships with podium"):
        tasks.unregister("classification")
    assert "classification" in tasks.TASKS
