"""Test predictions: each trained fold's best checkpoint, each TTA view, averaged; rows in index order.

The submission's order comes from the sample submission later, by id, never from this array's order
or the file system's.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd

from podium import tta
from podium.config import ExperimentConfig
from podium.data.cache import load_cached
from podium.data.dataset import competition_root, test_rows
from podium.data.pipeline import ImageBatches
from podium.errors import PodiumError
from podium.io import atomic_path, write_csv
from podium.models import load_classifier


def trained_folds(cfg: ExperimentConfig) -> list[Path]:
    checkpoints = [cfg.run_dir / f"fold-{k}" / "best.keras" for k in cfg.folds]
    missing = [str(p) for p in checkpoints if not p.is_file()]
    if missing:
        raise PodiumError("Not every fold of this run has a trained checkpoint.",
                          expected=", ".join(str(p) for p in checkpoints), received=f"missing {', '.join(missing)}",
                          fix="run `make train` with the same config first")
    return checkpoints


def predict_test(cfg: ExperimentConfig, index: pd.DataFrame, class_prior: np.ndarray, progress: bool = True
                 ) -> tuple[pd.DataFrame, np.ndarray]:
    """(test rows, probabilities). Undecodable test images get the class prior: Kaggle still wants a row."""
    _, root = competition_root(cfg)
    rows = test_rows(index)
    readable = rows[rows["ok"]].reset_index(drop=True)
    images = load_cached(readable, root, cfg.resolved_image_size, root / "cache", progress=progress)
    batches = ImageBatches(images, batch_size=cfg.batch_size)
    fold_probs = []
    for checkpoint in trained_folds(cfg):
        model = load_classifier(checkpoint, compile=False)
        mean, _ = tta.predict_tta(model, batches, cfg.tta)
        fold_probs.append(mean)
        keras.backend.clear_session()
    probs = np.tile(np.asarray(class_prior, dtype="float32"), (len(rows), 1))
    probs[rows["ok"].to_numpy()] = np.mean(fold_probs, axis=0)
    return rows, probs


def save_test_predictions(run_dir: Path, rows: pd.DataFrame, probs: np.ndarray) -> None:
    with atomic_path(run_dir / "test_probs.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, probs.astype("float32"))
    write_csv(run_dir / "test_ids.csv", rows[["id", "ok"]])
