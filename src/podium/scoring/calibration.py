"""Temperature scaling of class probabilities, fitted on out-of-fold (OOF) rows so the reported CV stays honest.

A network trained with cross-entropy is usually over-confident; log loss punishes that. Temperature scaling
divides each row's log-probabilities by one number T and renormalises (a softmax of log(p) / T): T > 1
softens, T < 1 sharpens, and the argmax, every row's class ranking and so accuracy, F1, top-k and MAP@k
never change. A binary run's P(positive) is scaled the same way on its two columns, which is Platt
scaling of the logit without a bias.

T is fitted by minimising log loss (bounded search on log T). Honestly: fold k's T is fitted on the OTHER
folds' OOF rows and applied to fold k, so the reported "after" CV is what unseen rows get; the T applied
to the test predictions is fitted on every OOF row.

T is applied to the test predictions only where the honest CV improves with it (`applied`; a T that the
other folds' rows fitted and that makes held-out folds worse is recorded, not used).

Where it applies (`applies`): metrics that read the probabilities' values, i.e. log loss (binary P(positive)
or multi-class). Not roc_auc (rank-invariant: T keeps the order of P(positive)), not mean_columnwise_auc
(a ranking metric; T is fitted for log loss and can move a multi-class column's order either way, so it
is not applied blindly), not the label, ranking, label-set or number metrics (T changes no argmax or
ranking). Multi-label sigmoids are not scaled: their thresholds are chosen on OOF instead.

The record (`calibration.json` in the run folder) is written by `make predict` (podium.runners.predict):
by then every fold's OOF rows exist, it is the step that applies T, and the inference package carries the
file (Task.package_files) so an offline kernel applies the same T without any OOF rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.io import write_json
from podium.scoring.forms import from_class_probabilities, positive_index
from podium.scoring.registry import Metric
from podium.task_keys import task_keys

CALIBRATION = "calibration.json"  # in the run folder: T, the per-fold T and the metric before/after on OOF
CALIBRATED_METRICS = ("log_loss",)
T_BOUNDS = (0.05, 20.0)  # the search range of T; a T at a bound is recorded as such
TINY = 1e-15  # probabilities are clipped here before the log (Kaggle's log-loss clip)


def applies(metric: Metric, task: str) -> bool:
    """Temperature scaling changes this metric's score (see the module docstring for the others)."""
    return task_keys(task).calibrated and metric.name in CALIBRATED_METRICS


def scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T) row by row: the same T for every row, the argmax unchanged."""
    logits = np.log(np.clip(np.asarray(probs, dtype="float64"), TINY, 1.0)) / float(temperature)
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def nll(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean -log P(true class) of (n, C) rows (Kaggle's clip): what T is fitted to."""
    picked = np.asarray(probs, dtype="float64")[np.arange(len(labels)), np.asarray(labels, dtype=int)]
    return float(-np.log(np.clip(picked, TINY, 1.0)).mean())


def fit_temperature(labels: np.ndarray, probs: np.ndarray) -> float:
    """The T in T_BOUNDS minimising the log loss of scale(probs, T) against the class indices `labels`."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels, dtype=int)
    if len(labels) == 0:
        raise PodiumError("A temperature needs out-of-fold rows to be fitted on.", expected="at least one row",
                          received="none", fix="train the run's folds first (make train)")
    logp = np.log(np.clip(np.asarray(probs, dtype="float64"), TINY, 1.0))
    low, high = np.log(T_BOUNDS[0]), np.log(T_BOUNDS[1])
    result = minimize_scalar(lambda log_t: nll(labels, scale(np.exp(logp), np.exp(log_t))), bounds=(low, high),
                             method="bounded", options={"xatol": 1e-5})
    return float(np.exp(result.x))


def fold_temperatures(labels: np.ndarray, probs: np.ndarray, folds: np.ndarray) -> dict[int, float]:
    """Fold k -> T fitted on every other fold's rows (never on fold k's own)."""
    folds = np.asarray(folds)
    fold_ids = sorted(int(f) for f in np.unique(folds))
    if len(fold_ids) < 2:
        raise PodiumError("Honest temperature scaling needs at least two folds.",
                          expected="OOF rows of two or more folds", received=f"fold(s) {fold_ids}",
                          fix="train more folds (folds=[0, 1, ...]); one holdout fold has no other rows to fit on")
    return {k: fit_temperature(labels[folds != k], probs[folds != k]) for k in fold_ids}


@dataclass
class Calibration:
    """What calibration.json holds: the T applied to test predictions and the metric before/after on OOF."""

    metric: str  # the metric's label
    direction: str
    temperature: float  # fitted on every OOF row: applied to the test predictions
    fold_temperatures: dict[str, float]  # fold k's T, fitted on the other folds
    before: dict  # {"cv_mean", "cv_std", "folds": {k: score}} uncalibrated OOF in the metric
    after: dict  # the same with each fold scaled by its own honest T
    in_sample_after: float  # every OOF row scaled by the all-rows T (optimistic, for comparison)
    rows: int
    note: str = ""
    method: str = "temperature scaling: softmax(log p / T), T fitted on log loss of the other folds' OOF rows"
    classes: list[str] = field(default_factory=list)
    applied: bool = True  # the honest CV improved: T is applied to the test predictions; else they stay raw

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """The test probabilities scaled by T, or as they are where the honest CV said T does not help."""
        probs = np.asarray(probs)
        return scale(probs, self.temperature).astype("float32") if self.applied else probs.astype("float32")

    def summary(self) -> str:
        change = f"OOF {self.metric} {self.before['cv_mean']:.4f} -> {self.after['cv_mean']:.4f} (each fold with T " \
                 f"fitted on the other folds)"
        if not self.applied:
            return f"not calibrated: temperature T={self.temperature:.3f} would make {change}, no better"
        return f"calibrated (temperature T={self.temperature:.3f}): {change}"

    def to_dict(self) -> dict:
        return asdict(self)


def calibrate(metric: Metric, labels: np.ndarray, probs: np.ndarray, folds: np.ndarray, classes: list[str],
              positive: int = 1) -> Calibration:
    """Honest per-fold T, the final all-rows T, and the metric before and after, fold by fold."""
    labels, probs, folds = np.asarray(labels, dtype=int), np.asarray(probs, dtype="float64"), np.asarray(folds)
    per_fold = fold_temperatures(labels, probs, folds)
    final = fit_temperature(labels, probs)

    def score(rows: np.ndarray, values: np.ndarray) -> float:
        return metric(*from_class_probabilities(metric, labels[rows], values, positive=positive))

    before, after = {}, {}
    for k, t in per_fold.items():
        rows = folds == k
        before[str(k)] = score(rows, probs[rows])
        after[str(k)] = score(rows, scale(probs[rows], t))
    every = np.ones(len(labels), bool)
    note = "T at a bound of its search range" if min(abs(np.log(final) - np.log(b)) for b in T_BOUNDS) < 1e-3 else ""
    before_cv, after_cv = _cv(before), _cv(after)
    return Calibration(metric=metric.label, direction=metric.direction, temperature=final,
                       fold_temperatures={str(k): t for k, t in per_fold.items()},
                       before=before_cv, after=after_cv, in_sample_after=score(every, scale(probs, final)),
                       rows=len(labels), note=note, classes=list(classes),
                       applied=metric.better(after_cv["cv_mean"], before_cv["cv_mean"]))


def _cv(scores: dict[str, float]) -> dict:
    values = list(scores.values())
    return {"cv_mean": float(np.mean(values)), "cv_std": float(np.std(values)), "folds": scores}


def run_calibration(run_dir: str | Path, metric: Metric, task: str, classes: list[str],
                    positive_class: str = "") -> Calibration | None:
    """The run's calibration: fitted on every finished fold's oof.parquet and written to calibration.json;
    a run folder without OOF rows (a packaged inference kernel, a blend) reads the saved file; None where
    temperature scaling does not apply to the metric (or nothing was ever fitted)."""
    if not applies(metric, task):
        return None
    classes = [str(c) for c in classes]
    positive = positive_index(positive_class, classes) if len(classes) == 2 or positive_class else 1
    run_dir = Path(run_dir)
    parts = [pd.read_parquet(p) for p in sorted(run_dir.glob("fold-*/oof.parquet"))
             if (p.parent / "metrics.json").is_file()]
    if not parts:
        return load_calibration(run_dir, classes)
    oof = pd.concat(parts, ignore_index=True)
    if oof["fold"].nunique() < 2:
        return None  # one holdout fold: no other rows to fit its T on honestly (docs/blend-and-report.md)
    return save_calibration(run_dir, calibrate(metric, oof["label"].to_numpy(dtype=int),
                                               oof[[f"prob_{c}" for c in classes]].to_numpy(dtype="float64"),
                                               oof["fold"].to_numpy(), classes, positive))


def save_calibration(run_dir: str | Path, calibration: Calibration) -> Calibration:
    write_json(Path(run_dir) / CALIBRATION, calibration.to_dict())
    return calibration


def load_calibration(run_dir: str | Path, classes: list[str]) -> Calibration | None:
    path = Path(run_dir) / CALIBRATION
    if not path.is_file():
        return None
    saved = Calibration(**json.loads(path.read_text(encoding="utf-8")))
    if saved.classes and saved.classes != list(classes):
        raise PodiumError(f"{path} was fitted for other classes.", expected=", ".join(classes),
                          received=", ".join(saved.classes), fix="make predict the run again (it refits T)")
    return saved
