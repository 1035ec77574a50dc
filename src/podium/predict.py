"""Test predictions of any task: each trained fold's best checkpoint, each TTA view, averaged; rows in
index order.

The submission's order comes from the sample submission later, by id, never from this array's order
or the file system's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from podium import tasks, tta
from podium.config import ExperimentConfig
from podium.data.cache import load_cached
from podium.data.dataset import competition_root, test_rows
from podium.data.pipeline import ImageBatches
from podium.errors import PodiumError
from podium.io import atomic_path, write_csv
from podium.models import load_classifier

CHUNK = 2048  # test images per predict call: bounds memory for masks, keeps batches full


def trained_folds(cfg: ExperimentConfig) -> list[Path]:
    checkpoints = [cfg.run_dir / f"fold-{k}" / "best.keras" for k in cfg.folds]
    missing = [str(p) for p in checkpoints if not p.is_file()]
    if missing:
        raise PodiumError("Not every fold of this run has a trained checkpoint.",
                          expected=", ".join(str(p) for p in checkpoints), received=f"missing {', '.join(missing)}",
                          fix="run `make train` with the same config first")
    return checkpoints


@dataclass
class TestPredictions:
    rows: pd.DataFrame  # every test image of the index, sorted by id
    readable: np.ndarray  # (len(rows),) bool: decoded, so predicted
    values: np.ndarray  # (readable.sum(), ...) the model's outputs at its input size, averaged over folds and views

    @property
    def readable_ids(self) -> list[str]:
        """The ids `values` rows belong to, in order."""
        return self.rows.loc[self.readable, "id"].astype(str).tolist()

    @property
    def n_unreadable(self) -> int:
        return int((~self.readable).sum())


def predict_test(cfg: ExperimentConfig, index: pd.DataFrame, progress: bool = True) -> TestPredictions:
    """Every fold's best checkpoint x every TTA view on the readable test images, averaged.

    Views are mapped back to the image's frame first (un-flipped masks and boxes). The average is
    accumulated chunk by chunk into runs/<run-id>/test_predictions.npy, so Airbus-sized sets of masks
    never sit in memory at once; undecodable images are left to the task's submission writer.
    """
    _, root = competition_root(cfg)
    rows = test_rows(index)
    readable = rows["ok"].to_numpy(dtype=bool)
    if not readable.any():
        raise PodiumError("No test image could be decoded.", expected="readable test images",
                          received=f"{len(rows)} test rows, all ok=False", fix="check `make data`'s report")
    images = load_cached(rows[readable].reset_index(drop=True), root, cfg.resolved_image_size, root / "cache",
                         progress=progress)
    checkpoints = trained_folds(cfg)
    invert = tasks.view_inverter(cfg.task)
    path = cfg.run_dir / "test_predictions.npy"
    with atomic_path(path) as tmp:
        total = None
        for checkpoint in checkpoints:
            model = load_classifier(checkpoint, compile=False)
            for start in range(0, len(images), CHUNK):
                positions = np.arange(start, min(start + CHUNK, len(images)))
                batches = ImageBatches(images, positions, batch_size=cfg.batch_size)
                mean, _ = tta.predict_tta(model, batches, cfg.tta, invert)
                if total is None:
                    total = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                                      shape=(len(images), *mean.shape[1:]))
                total[positions] += mean / len(checkpoints)
            keras.backend.clear_session()
        total.flush()
        del total
    write_csv(cfg.run_dir / "test_ids.csv", rows[["id", "ok"]])
    return TestPredictions(rows=rows, readable=readable, values=np.load(path, mmap_mode="r"))
