"""Competitions of the submission forms, built from the embedded demo as a user has them after download: a
train.zip of class folders, a test.zip of images named by id (one of them undecodable, as on Kaggle), and a
sample submission in the competition's form. The held-back labels of the chosen test images come back too."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Callable

import pandas as pd

DEMO_DIR = Path(__file__).resolve().parents[1] / "src" / "podium" / "demo"
HELD_BACK = Path(__file__).with_name("data") / "demo_test_labels.csv"
BROKEN_ID = "9999"  # a test file that is not a JPEG: it still needs a row


def demo_competition(folder: Path, classes: list[str], sample_columns: Callable[[int], dict[str, list[str]]],
                     train_per_class: int | None = None) -> tuple[Path, pd.DataFrame]:
    """(the source folder, the held-back truth id,label of its test images) for the demo images of `classes`.
    `sample_columns(n_rows)` gives the sample's columns beyond `id`, placeholders as the competition writes."""
    folder.mkdir(parents=True)
    with zipfile.ZipFile(DEMO_DIR / "train.zip") as source, zipfile.ZipFile(folder / "train.zip", "w") as out:
        for name in classes:
            members = sorted(m for m in source.namelist() if m.startswith(f"train/{name}/") and m.endswith(".jpg"))
            for member in members[:train_per_class]:
                out.writestr(member, source.read(member))
    truth = pd.read_csv(HELD_BACK, dtype=str, keep_default_na=False)
    truth = truth[truth["label"].isin(classes)].reset_index(drop=True)
    with zipfile.ZipFile(DEMO_DIR / "test.zip") as source, zipfile.ZipFile(folder / "test.zip", "w") as out:
        for image_id in truth["id"]:
            out.writestr(f"test/{image_id}.jpg", source.read(f"test/{image_id}.jpg"))
        out.writestr(f"test/{BROKEN_ID}.jpg", b"\xff\xd8 not really a jpeg")
    ids = [*truth["id"], BROKEN_ID]
    pd.DataFrame({"id": ids, **sample_columns(len(ids))}).to_csv(folder / "sample_submission.csv", index=False)
    return folder, truth


def experiment_config(path: Path, spec: Path, epochs: int) -> Path:
    """A tiny run: tiny_cnn at 32 px, fold 0 of 2, no augments, one TTA view."""
    path.write_text(f"name: {path.stem}\ncompetition: {spec}\nbackbone: tiny_cnn\nimage_size: 32\nn_folds: 2\n"
                    f"folds: [0]\nepochs: {epochs}\nbatch_size: 32\noptimizer: adam\nlr: 0.002\naugment: []\n"
                    f"tta: [identity]\n", encoding="utf-8")
    return path
