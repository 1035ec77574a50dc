"""The labeled training data of one competition, as a training run sees it: pixels (cached, in memory or
streamed: config key `cache`), integer
labels, class names and the saved split, all aligned row by row. The task's labels and targets are asked of
the task object the caller passes in (data/ never imports the tasks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from podium.data.competitions import CompetitionSpec, load_competition
from podium.data.cache import CacheChoice, load_images
from podium.data.folds import labeled_rows, load_or_make_split
from podium.data.index import IndexTask, class_names, load_index
from podium.errors import PodiumError


class DataTask(IndexTask, Protocol):
    """What loading the labeled data asks the run's task: the task object its entry point resolved, passed in."""

    def label_indices(self, labels: pd.Series, classes: list[str]) -> np.ndarray: ...

    def load_targets(self, spec: CompetitionSpec, data_root: Path, rows: pd.DataFrame, size: int,
                     classes: list[str], progress: bool = True, cache: str = "disk") -> np.ndarray | None: ...


@dataclass
class LabeledData:
    spec: CompetitionSpec
    classes: list[str]
    ids: np.ndarray  # (N,) str, sorted
    labels: np.ndarray  # (N,) int index into classes
    folds: np.ndarray  # (N,) int, from the saved split
    images: np.ndarray  # (N, S, S, 3) uint8: a memmap, an array in RAM or a podium.data.stream.StreamedRows
    split_path: Path
    # segmentation: (N,S,S,1) uint8 masks; localization: (N,4) xyxy 0..1; multilabel: (N,C) 0/1 float32
    targets: np.ndarray | None = None
    cache: CacheChoice | None = None  # how the images (and masks) are held, and why; None: arrays passed in

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def fold_positions(self, fold: int) -> tuple[np.ndarray, np.ndarray]:
        """(train, validation) row positions: validation is exactly the rows of `fold`."""
        val = np.flatnonzero(self.folds == fold)
        train = np.flatnonzero(self.folds != fold)
        if len(val) == 0 or len(train) == 0:
            raise PodiumError(f"Fold {fold} leaves nothing to train or validate on.",
                              expected="a fold with rows on both sides", received=f"{len(train)} train, {len(val)} val",
                              fix="check n_folds/val_split against the data size")
        return train, val


def in_memory_data(images: np.ndarray, labels: np.ndarray, folds: np.ndarray, classes: list[str],
                   targets: np.ndarray | None = None, task: str = "classification", slug: str = "synthetic",
                   ids: np.ndarray | None = None) -> LabeledData:
    """Arrays already in memory (synthetic sets, the pruning experiment) as the data train_and_evaluate takes."""
    n = len(images)
    if not (len(labels) == len(folds) == n and (targets is None or len(targets) == n)):
        raise PodiumError("In-memory data arrays differ in length.", expected=f"{n} rows in each",
                          received=f"labels {len(labels)}, folds {len(folds)}, targets "
                                   f"{None if targets is None else len(targets)}", fix="pass aligned arrays")
    ids = np.array([f"{slug}-{i:06d}" for i in range(n)]) if ids is None else np.asarray(ids)
    return LabeledData(spec=CompetitionSpec(slug=slug, task=task), classes=list(classes), ids=ids,
                       labels=np.asarray(labels, dtype=int), folds=np.asarray(folds), images=images,
                       split_path=Path("-"), targets=targets)


def competition_root(cfg) -> tuple[CompetitionSpec, Path]:
    spec = load_competition(cfg.competition)
    return spec, Path(cfg.data_dir) / spec.slug


def require_task(cfg, spec: CompetitionSpec) -> None:
    """The run's head and loss must be the competition's: a classifier cannot write RLE masks."""
    require_spec_task(spec, getattr(cfg, "task", "classification"), "the config trains",
                      f"set task: {spec.task} in the experiment config (see configs/shapes-*.yaml)")


def require_spec_task(spec: CompetitionSpec, task: str, saying: str, fix: str) -> None:
    """One refusal of a task other than the competition's, wherever a stage meets one (a config's data, `make
    data`, `make submit`); `saying` says where the other task came from."""
    if task != spec.task:
        raise PodiumError(f"Competition '{spec.slug}' is a {spec.task} competition, {saying} {task}.",
                          expected=f"task={spec.task}", received=f"task={task}", fix=fix)


def load_labeled_data(cfg, task: DataTask, progress: bool = True) -> LabeledData:
    """The run's data; `task` is the config's task object (its class names, labels and targets)."""
    spec, root = competition_root(cfg)
    require_task(cfg, spec)
    index = load_index(root / "index.parquet")
    rows = labeled_rows(index)
    split, split_path = load_or_make_split(index, root, cfg.n_folds, cfg.val_split, cfg.split_seed,
                                           group_column=spec.group_column)
    folds = rows[["id"]].merge(split, on="id", how="left")["fold"].to_numpy()
    classes = class_names(index, spec, task)
    size = cfg.resolved_image_size
    images, cache = load_images(rows, root, size, root / "cache", getattr(cfg, "cache", "auto"), progress)
    targets = task.load_targets(spec, root, rows, size, classes, progress=progress, cache=cache.mode)
    return LabeledData(spec=spec, classes=classes, ids=rows["id"].to_numpy(),
                       labels=task.label_indices(rows["label"], classes), folds=folds, images=images,
                       split_path=split_path, targets=targets, cache=cache)


def test_rows(index: pd.DataFrame) -> pd.DataFrame:
    rows = index[index["split"] == "test"]
    return rows.sort_values("id", kind="stable").reset_index(drop=True)
