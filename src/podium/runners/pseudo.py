"""Pseudo-labels (classification, multi-label): confident test predictions of a finished run join the
training part of every fold with a per-sample weight.

Confidence. Classification: a row's max probability (pseudo_threshold: at least that; pseudo_top_share: that
share of each predicted class, most confident first). Multi-label: each class is decided at its per-class
threshold t (the source run's thresholds.json, chosen for the competition's metric on its OOF rows), and
its confidence is how far its probability p lies from t, scaled so that p = t is 0.5 and p = 0 or 1 is 1:
0.5 + 0.5 (p - t) / (1 - t) above t, 0.5 + 0.5 (t - p) / t below (at t = 0.5 this is max(p, 1 - p), a
binary classifier's max probability). A test image's label set is as confident as its least confident
class: every class must be far from its threshold, since one doubtful class makes the whole set doubtful.
pseudo_threshold and pseudo_top_share read that number (top share: per predicted label set).

What keeps the CV honest: test images only ever join a TRAINING part; the validation rows (and so the
OOF predictions and the CV) stay exactly the labelled images of the split. A test image in the same
duplicate group (index `group`, `make dups`) as a validation image of fold k is left out of fold k's
training, so a near-copy of a validation image never trains with its predicted label. What stays
slightly optimistic: the source run's test predictions average its folds' models, and the fold-j model
(j != k) learned from fold k's validation images; distilling it into fold k leaks a little of those
labels. A source run trained with folds=[k] alone predicts with a model that never saw fold k, the
strict comparison for that fold; `source_folds` is recorded so the report says which case it was.

Sources: a run predicted by `make predict` (runs/<id>/test_predictions.npy + test_ids.csv +
test_predictions.json, every fold used finished) or a blend (`make blend`: the same files; its runs'
prediction records are checked instead).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from podium import artefacts
from podium.config import load_config
from podium.task_keys import task_keys
from podium.data.cache import load_images
from podium.data.dataset import test_rows
from podium.data.stream import take
from podium.errors import PodiumError
from podium.scoring.forms import label_sets


def select_confident(probs: np.ndarray, threshold: float = 0.0, top_share: float = 0.0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(row positions, predicted class) of the confident rows of (N, C) probabilities, by confidence order.

    threshold: every row whose max probability >= threshold. top_share: per predicted class, that share
    of its rows (rounded, most confident first), so a class the model predicts rarely still gets some."""
    probs = np.asarray(probs, dtype="float64")
    predicted, confidence = probs.argmax(1), probs.max(1)
    if threshold:
        chosen = np.flatnonzero(confidence >= threshold)
    else:
        chosen = []
        for c in np.unique(predicted):
            rows = np.flatnonzero(predicted == c)
            keep = int(top_share * len(rows) + 0.5)
            chosen.extend(rows[np.argsort(-confidence[rows], kind="stable")[:keep]])
        chosen = np.asarray(sorted(chosen), dtype=int)
    return chosen, predicted[chosen]


def label_set_confidence(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(N,) the least confident class of each row: per class 0.5 at its threshold, 1 at p = 0 or p = 1."""
    probs = np.asarray(probs, dtype="float64")
    t = np.clip(np.broadcast_to(np.asarray(thresholds, dtype="float64"), probs.shape[1:])[None, :], 1e-6, 1 - 1e-6)
    above = 0.5 + 0.5 * (probs - t) / (1 - t)
    below = 0.5 + 0.5 * (t - probs) / t
    return np.where(probs >= t, above, below).min(axis=1)


def select_confident_sets(probs: np.ndarray, thresholds: np.ndarray, threshold: float = 0.0,
                          top_share: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row positions, (M, C) 0/1 label sets, confidence) of the confident rows of (N, C) sigmoid outputs.

    A row's label set is its classes at or above their thresholds (its most probable class where none is);
    threshold: every row whose least confident class (label_set_confidence) >= threshold; top_share: per
    predicted label set, that share of its rows, most confident first."""
    probs = np.asarray(probs, dtype="float64")
    sets = label_sets(probs, thresholds)
    confidence = label_set_confidence(probs, thresholds)
    if threshold:
        chosen = np.flatnonzero(confidence >= threshold)
    else:
        keys = np.array(["".join(map(str, row)) for row in sets])
        chosen = []
        for key in np.unique(keys):
            rows = np.flatnonzero(keys == key)
            keep = int(top_share * len(rows) + 0.5)
            chosen.extend(rows[np.argsort(-confidence[rows], kind="stable")[:keep]])
        chosen = np.asarray(sorted(chosen), dtype=int)
    return chosen, sets[chosen], confidence[chosen]


@dataclass
class PseudoLabels:
    """The chosen test images of one source run, as every fold of the training run may use them."""

    source_run: str
    rule: str  # "max probability >= 0.9" | "top 20% of each predicted class" | the label-set rules
    weight: float
    ids: np.ndarray  # (M,) str test ids
    labels: np.ndarray  # (M,) int class index (the model's output order); multi-label: (M, C) 0/1 label sets
    confidence: np.ndarray  # (M,) the max probability; multi-label: the least confident class's confidence
    groups: np.ndarray  # (M,) str duplicate group of each test image
    images: np.ndarray  # (M, S, S, 3) uint8 test pixels at the run's image size (streamed with cache: none)
    classes: list[str]
    source_folds: list[int]
    cache: str = ""  # how the test images are held, and why (podium.data.cache.choose_cache)

    def fold_rows(self, val_groups: set[str]) -> np.ndarray:
        """Positions of the pseudo-labels fold k may train on: none sharing a group with its validation part."""
        return np.flatnonzero(~np.isin(self.groups, list(val_groups))) if val_groups else np.arange(len(self.ids))

    def subset(self, rows: np.ndarray) -> "PseudoLabels":
        return dataclasses.replace(self, ids=self.ids[rows], labels=self.labels[rows],
                                   confidence=self.confidence[rows], groups=self.groups[rows],
                                   images=take(self.images, rows))

    @property
    def label_sets(self) -> bool:
        return self.labels.ndim == 2

    def per_class(self, rows: np.ndarray | None = None) -> dict[str, int]:
        """Images per class (multi-label: images whose set holds the class)."""
        labels = self.labels if rows is None else self.labels[rows]
        counts = labels.reshape(-1, len(self.classes)).sum(axis=0) if self.label_sets else \
            np.bincount(labels, minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, counts)}

    def digest(self) -> str:
        payload = json.dumps([self.source_run, [str(i) for i in self.ids], np.asarray(self.labels).tolist(),
                              self.weight])
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def record(self) -> dict:
        """What metrics.json and the report say: from which run, by which rule, how many per class."""
        return {"run": self.source_run, "rule": self.rule, "weight": self.weight, "total": int(len(self.ids)),
                "per_class": self.per_class(), "source_folds": self.source_folds, "digest": self.digest(),
                "cache": self.cache}


def check_source(cfg, classes: list[str], index: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, list[int]]:
    """(readable test rows, their probabilities, source folds) of `cfg.pseudo_run`, checked: same competition
    and task, finished folds only, predicted on the index's test images now, one column per class."""
    run_id = cfg.pseudo_run
    run_dir = Path(cfg.runs_dir) / run_id
    fix_predict = f"train and predict it first: make train + make predict with its config ({run_dir / 'config.yaml'})"
    if not (run_dir / "config.yaml").is_file():
        raise PodiumError(f"The pseudo-label run '{run_id}' does not exist.", expected=str(run_dir / "config.yaml"),
                          received="no such file", fix="set pseudo_run to a run id from runs/ (make train writes it)")
    source = load_config(run_dir / "config.yaml")
    if source.competition != cfg.competition or source.task != cfg.task:
        raise PodiumError(f"The pseudo-label run '{run_id}' is of another competition or task.",
                          expected=f"competition={cfg.competition}, task={cfg.task}",
                          received=f"competition={source.competition}, task={source.task}",
                          fix=f"name a run of this competition's {cfg.task} task as pseudo_run")
    values_path, ids_path = run_dir / "test_predictions.npy", run_dir / "test_ids.csv"
    if not values_path.is_file() or not ids_path.is_file():
        raise PodiumError(f"The pseudo-label run '{run_id}' has no saved test predictions.",
                          expected=f"{values_path} and {ids_path} (written by make predict)", received="missing",
                          fix=fix_predict)
    source_folds = _check_finished(run_dir, Path(cfg.runs_dir), fix_predict)
    saved = pd.read_csv(ids_path, dtype={"id": str}, keep_default_na=False)
    rows = test_rows(index).reset_index(drop=True)
    if saved["id"].astype(str).tolist() != rows["id"].astype(str).tolist():
        raise PodiumError(f"The pseudo-label run '{run_id}' predicted other test images than the index's now.",
                          expected=f"the {len(rows)} test ids of the index", received=f"{len(saved)} ids, not the same",
                          fix=f"make predict the run '{run_id}' again on the current data")
    if task_keys(cfg.task).pseudo_labels == "sets":  # a label set per image (multilabel)
        source_thresholds(run_dir, classes)  # refused here, before any fold trains
    readable = rows[rows["ok"].to_numpy(dtype=bool)].reset_index(drop=True)
    remake = "make blend again with the same runs, method and name" if (run_dir / "blend.yaml").is_file() else \
        f"make predict with run {run_id}'s config ({run_dir / 'config.yaml'})"
    probs = artefacts.read(values_path, what=f"the pseudo-label run {run_id}'s test predictions", remake=remake,
                           kinds=("probabilities",), images=artefacts.test_images(index), mmap=True).values
    if probs.ndim != 2 or probs.shape != (len(readable), len(classes)):
        raise PodiumError(f"The pseudo-label run '{run_id}' saved test predictions of another shape.",
                          expected=f"({len(readable)}, {len(classes)}): readable test images x classes",
                          received=str(probs.shape), fix=f"make predict the run '{run_id}' again")
    return readable, probs, source_folds


def load_pseudo_labels(cfg, classes: list[str], index: pd.DataFrame, data_root: Path) -> PseudoLabels:
    """The confident test predictions of `cfg.pseudo_run` with their pixels at the run's image size."""
    readable, probs, source_folds = check_source(cfg, classes, index)
    if task_keys(cfg.task).pseudo_labels == "sets":  # a label set per image (multilabel)
        thresholds = source_thresholds(Path(cfg.runs_dir) / cfg.pseudo_run, classes)
        chosen, labels, confidence = select_confident_sets(probs, thresholds, cfg.pseudo_threshold,
                                                           cfg.pseudo_top_share)
        labels = np.asarray(labels, dtype=int)
        rule = f"every class's confidence >= {cfg.pseudo_threshold:g}" if cfg.pseudo_threshold else \
            f"top {cfg.pseudo_top_share:.0%} of each predicted label set"
        rule += f" (0.5 at its threshold, 1 at 0 or 1; thresholds {', '.join(f'{t:g}' for t in thresholds)})"
    else:
        chosen, labels = select_confident(probs, cfg.pseudo_threshold, cfg.pseudo_top_share)
        labels, confidence = np.asarray(labels, dtype=int), np.asarray(probs.max(1))[chosen]
        rule = f"max probability >= {cfg.pseudo_threshold:g}" if cfg.pseudo_threshold else \
            f"top {cfg.pseudo_top_share:.0%} of each predicted class"
    picked = readable.iloc[chosen].reset_index(drop=True)
    images, cache = load_images(readable, data_root, cfg.resolved_image_size, data_root / "cache", cfg.cache,
                                progress=False)
    return PseudoLabels(source_run=cfg.pseudo_run, rule=rule, weight=cfg.pseudo_weight, ids=picked["id"].to_numpy(dtype=str),
                        labels=labels, confidence=confidence,
                        groups=picked["group"].astype(str).to_numpy(), images=take(images, chosen),
                        classes=list(classes), source_folds=source_folds, cache=cache.reason)


def source_thresholds(run_dir: Path, classes: list[str]) -> np.ndarray:
    """The multi-label source run's per-class thresholds: the thresholds.json its `make predict` (or its
    blend) wrote, chosen for the competition's metric on its OOF rows (podium.tasks.multilabel)."""
    path = run_dir / "thresholds.json"
    if not path.is_file():
        raise PodiumError(f"The pseudo-label run '{run_dir.name}' has no per-class thresholds.",
                          expected=f"{path} (written by make predict of a multi-label run)", received="missing",
                          fix=f"make predict the run '{run_dir.name}' again")
    chosen = json.loads(path.read_text(encoding="utf-8")).get("thresholds", {})
    missing = [name for name in classes if name not in chosen]
    if missing:
        raise PodiumError(f"{path} has no threshold for some classes.", expected=", ".join(classes),
                          received=f"missing {', '.join(missing)}", fix=f"make predict the run '{run_dir.name}' again")
    return np.array([float(chosen[name]) for name in classes])


def _check_finished(run_dir: Path, runs_dir: Path, fix: str) -> list[int]:
    """Every fold the saved predictions used finished training; a blend: those of each of its runs."""
    import yaml

    blend = run_dir / "blend.yaml"
    sources = [run_dir] if not blend.is_file() else \
        [runs_dir / str(r) for r in (yaml.safe_load(blend.read_text(encoding="utf-8")) or {}).get("runs", [])]
    folds: list[int] = []
    for source in sources:
        record = source / "test_predictions.json"
        if not record.is_file():
            raise PodiumError(f"The pseudo-label run '{source.name}' has no record of its prediction settings.",
                              expected=str(record), received="missing (predicted by an older podium?)", fix=fix)
        used = json.loads(record.read_text(encoding="utf-8")).get("folds_used", [])
        unfinished = [u.get("fold") for u in used if not u.get("finished", False)]
        if unfinished or not used:
            raise PodiumError(f"The pseudo-label run '{source.name}' predicted with folds whose training did not "
                              "finish.", expected="test predictions of finished folds only",
                              received=f"unfinished fold(s) {unfinished}" if used else "no folds recorded",
                              fix="finish its training (make train), then make predict without allow_unfinished")
        folds += [int(u["fold"]) for u in used]
    return sorted(set(folds))


class StackedImages:
    """Labelled images then pseudo-labelled test images, indexed as one (N + M, S, S, 3) array without
    copying the labelled cache (ImageBatches reads rows by integer positions)."""

    def __init__(self, first: np.ndarray, second: np.ndarray):
        self.first, self.second = first, second
        self.shape = (len(first) + len(second), *first.shape[1:])
        self.dtype = first.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows):
        rows = np.asarray(rows)
        n = len(self.first)
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        low = rows < n
        out[low] = self.first[rows[low]]
        out[~low] = self.second[rows[~low] - n]
        return out


def run_summary(cfg, fold_records: dict[int, dict]) -> dict:
    """metrics.json's `pseudo_labels`: the source, the rule, how many per class, per fold; and the CV of the
    same config without pseudo-labels when that run exists (train it to compare: see the docs)."""
    first = next(iter(fold_records.values()))
    summary = {key: first[key] for key in ("run", "rule", "weight", "total", "per_class", "source_folds")}
    summary["per_fold"] = {str(k): {"total": r["fold_total"], "per_class": r["fold_per_class"],
                                    "left_out_near_duplicates": r["left_out_near_duplicates"]}
                           for k, r in fold_records.items()}
    plain = without_pseudo(cfg)
    metrics = plain.run_dir / "metrics.json"
    summary["without"] = {"run_id": plain.run_id, "trained": metrics.is_file()}
    if metrics.is_file():
        values = json.loads(metrics.read_text(encoding="utf-8"))
        summary["without"].update({k: values.get(k) for k in ("cv_mean", "cv_std", "cv_tta_mean", "cv_tta_std")})
    return summary


def without_pseudo(cfg):
    """The same config without pseudo-labels: the run to compare the CV against."""
    return dataclasses.replace(cfg, pseudo_run="", pseudo_threshold=0.0, pseudo_top_share=0.0, pseudo_weight=0.5)
