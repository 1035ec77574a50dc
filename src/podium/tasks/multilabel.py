"""Several labels per image, space-separated in the labels CSV ("ellipse triangle"): a sigmoid per
class, binary cross-entropy, and the micro-averaged F1 (every image x class decision pooled).

A class is predicted above its own threshold, chosen on the run's out-of-fold predictions for the
competition's label-set metric (fbeta with its beta and averaging, micro_f1 by default: `choose_thresholds`).
The fold score reports F1 at 0.5, which is honest; `f1_tuned` is F1 at thresholds chosen on the same fold,
an upper bound; thresholds.json records the metric at 0.5, at the tuned thresholds and honestly per fold
(each fold at thresholds chosen on the other folds). An image with no class above its threshold gets its most
probable one: every training image has at least one label. The submission writes the labels space-separated, in
class order, or (submission_format: probabilities, e.g. mean_columnwise_auc) each class's probability in the
sample's class column.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from podium.lazy import LazyModule
from podium.data.index import class_names
from podium.errors import PodiumError
from podium.io import atomic_path, write_json
from podium.scoring.forms import from_label_probabilities
from podium.scoring.metrics import micro_f1
from podium.scoring.registry import Metric, fbeta, resolve_metric
from podium.scoring.run_metric import run_metric
from podium.submission.validate import (probability_columns, refuse_problems, submission_frame, submission_problems,
                                        validate_class_submission)
from podium.tasks.base import FoldScores, PredictSummary, Task

# imported on first use: `import podium.tasks` loads no keras
classifier = LazyModule("podium.models.classifier")

THRESHOLDS = "thresholds.json"  # in the run folder: per-class thresholds chosen on its out-of-fold predictions
CANDIDATES = np.round(np.arange(0.05, 0.951, 0.05), 2)


def split_labels(value: str) -> list[str]:
    return str(value).split()


def multi_hot(label_sets: pd.Series, classes: list[str]) -> np.ndarray:
    """(N, C) float32 0/1 rows from space-separated label strings; a label outside `classes` is an error."""
    lookup = {name: k for k, name in enumerate(classes)}
    out = np.zeros((len(label_sets), len(classes)), np.float32)
    for row, value in enumerate(label_sets):
        unknown = [name for name in split_labels(value) if name not in lookup]
        if unknown:
            raise PodiumError(f"Label {unknown[0]!r} is not one of the competition's classes.",
                              expected=f"space-separated labels among: {', '.join(classes)}",
                              received=repr(value), fix="fix the labels CSV, or the spec's classes")
        out[row, [lookup[name] for name in split_labels(value)]] = 1.0
    return out


def label_strings(chosen: np.ndarray, classes: list[str]) -> list[str]:
    return [" ".join(name for name, on in zip(classes, row) if on) for row in np.asarray(chosen, bool)]


def decide(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """0/1 per class: above its threshold, or the most probable class where none is."""
    chosen = np.asarray(probs) >= np.asarray(thresholds)[None, :]
    empty = ~chosen.any(axis=1)
    chosen[empty, np.asarray(probs)[empty].argmax(axis=1)] = True
    return chosen


def choose_thresholds(truth: np.ndarray, probs: np.ndarray, metric: Metric | None = None) -> np.ndarray:
    """Per-class thresholds for the competition's label-set metric (fbeta with its beta and averaging;
    micro_f1 by default). Each class starts at the candidate with the best F-beta of that class alone (ties:
    the one nearest 0.5); coordinate search then moves one class at a time while the whole metric improves
    (up to three passes): samples and micro averaging pool the classes, and an image never left without a
    label (label_sets) couples them under every averaging.
    A metric that reads probabilities needs no thresholds: 0.5 each."""
    metric = metric or resolve_metric("micro_f1")
    truth, probs = np.asarray(truth), np.asarray(probs, dtype=float)
    best = np.full(truth.shape[1], 0.5)
    if metric.reads != "label_sets":
        return best
    beta = float(metric.kwargs.get("beta", 1.0))
    near_half = lambda options: min(options, key=lambda t: abs(t - 0.5))  # noqa: E731
    for k in range(truth.shape[1]):
        scores = [fbeta(truth[:, k:k + 1], probs[:, k:k + 1] >= t, beta=beta, average="micro") for t in CANDIDATES]
        best[k] = near_half([t for t, s in zip(CANDIDATES, scores) if s == max(scores)])

    def whole(thresholds: np.ndarray) -> float:
        return metric(*from_label_probabilities(metric, truth, probs, thresholds))

    current = whole(best)
    for _ in range(3):
        moved = False
        for k in range(truth.shape[1]):
            trials = {}
            for t in CANDIDATES:
                trial = best.copy()
                trial[k] = t
                trials[float(t)] = whole(trial)
            top = max(trials.values())
            if top > current + 1e-12:
                best[k], current, moved = near_half([t for t, s in trials.items() if s == top]), top, True
        if not moved:
            break
    return best


def honest_threshold_scores(truth: np.ndarray, probs: np.ndarray, folds: np.ndarray, metric: Metric
                            ) -> dict[str, float]:
    """Fold k scored at thresholds chosen on the OTHER folds' OOF rows: what unseen images get."""
    folds = np.asarray(folds)
    scores = {}
    for k in sorted(int(f) for f in np.unique(folds)):
        held = folds == k
        chosen = choose_thresholds(truth[~held], probs[~held], metric) if (~held).any() else \
            np.full(truth.shape[1], 0.5)
        scores[str(k)] = metric(*from_label_probabilities(metric, truth[held], probs[held], chosen))
    return scores


class Multilabel(Task):
    name = "multilabel"
    shapes_object_share = 1.0
    score_logged = "val_f1"
    metric_name = "micro F1"
    saved_outputs_dtype = None  # its probabilities are oof.parquet's prob_<class> columns

    def class_names(self, labels: pd.Series) -> list[str]:
        return sorted({name for value in labels for name in split_labels(value)})

    def label_indices(self, labels: pd.Series, classes: list[str]) -> np.ndarray:
        """The first label in class order: what folds' data key and per-class counts read."""
        return multi_hot(labels, classes).argmax(axis=1)

    def class_prior(self, labels: pd.Series, classes: list[str]) -> np.ndarray:
        return multi_hot(labels, classes).mean(axis=0)

    def load_targets(self, spec, data_root, rows, size, classes, progress=True, cache="disk") -> np.ndarray:
        return multi_hot(rows["label"], classes)

    def build_model(self, cfg, num_classes: int):
        return classifier.build_classifier(cfg, num_classes, activation="sigmoid")

    def compile_arguments(self, cfg, num_classes: int) -> dict:
        import keras

        return {"loss": keras.losses.BinaryCrossentropy(label_smoothing=cfg.label_smoothing),
                "metrics": [keras.metrics.F1Score(average="micro", threshold=0.5, name="f1")]}

    own_score = "micro_f1"

    def metric_pair(self, metric, data, positions, outputs):
        """A sigmoid per class in the metric's form: label sets above 0.5 (the most probable class where
        none is), or the probability rows."""
        return from_label_probabilities(metric, data.targets[positions], outputs, 0.5)

    def own_fold_scores(self, data, positions, fold, plain, with_tta) -> FoldScores:
        truth = data.targets[positions]
        half = np.full(data.num_classes, 0.5)
        tuned = choose_thresholds(truth, with_tta)
        oof = pd.DataFrame({"id": data.ids[positions], "fold": fold,
                            "label": label_strings(truth, data.classes),
                            "pred": label_strings(decide(plain, half), data.classes),
                            "pred_tta": label_strings(decide(with_tta, half), data.classes)})
        for k, name in enumerate(data.classes):
            oof[f"prob_{name}"] = with_tta[:, k].astype("float32")
        extra = {"f1_tuned": micro_f1(truth, decide(with_tta, tuned)),
                 "exact_match": float((decide(plain, half) == truth.astype(bool)).all(axis=1).mean())}
        return FoldScores(micro_f1(truth, decide(plain, half)), micro_f1(truth, decide(with_tta, half)), extra, oof)

    def blend_truth(self, oof, classes, metric):
        return multi_hot(oof["label"], classes)

    def blend_score(self, metric, values, truth, fit_values, fit_truth, positive=1, k=0):
        """Each label's binary log loss (a label-set metric's proxy), or label sets at thresholds chosen on
        the fit rows."""
        if metric.name == "log_loss":
            return float(np.mean([metric(truth[:, c], np.clip(values[:, c], 0, 1)) for c in range(truth.shape[1])]))
        if metric.reads == "label_sets":
            chosen = choose_thresholds(fit_truth if fit_truth is not None else truth,
                                       fit_values if fit_values is not None else values, metric)
            return metric(*from_label_probabilities(metric, truth, values, chosen))
        return metric(*from_label_probabilities(metric, truth, values))

    def blend_files(self, run_dirs, blend_dir, metric, truth, values, folds, classes=()):
        """The blend's own thresholds, chosen on its blended OOF rows: thresholds.json, which its writer reads."""
        thresholds = choose_thresholds(truth, values, metric)
        record = threshold_record(list(classes), thresholds, metric, truth, values, folds,
                                  f"{len(truth)} blended out-of-fold predictions")
        write_json(Path(blend_dir) / THRESHOLDS, record)
        return {"thresholds": record}

    package_file_names = (THRESHOLDS,)

    def package_files(self, cfg, classes):
        run_thresholds(cfg.run_dir, classes, run_metric(cfg))  # chosen on the run's OOF rows, written beside them
        return [Path(cfg.run_dir) / THRESHOLDS]

    def write_submission(self, cfg, spec, classes, prior, predictions, sample, path):
        thresholds = run_thresholds(cfg.run_dir, classes, run_metric(cfg, spec))
        probs = np.tile(prior, (len(predictions.rows), 1))  # an undecodable image: the class frequencies
        probs[predictions.readable] = predictions.values
        labels = label_strings(decide(probs, thresholds), classes)
        id_column, label_column = spec.submission_id_column, spec.submission_label_column
        if spec.resolved_submission_format == "probabilities":  # a column per class: the sigmoids as they are
            frame = probability_columns(sample, predictions.rows["id"].tolist(), probs, classes, id_column,
                                        normalise=False)
        else:
            frame = submission_frame(sample, dict(zip(predictions.rows["id"], labels)), id_column, label_column)
        self.validate_frame(frame, sample, spec, classes)
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
        kept = predictions.rows["id"].astype(str).isin(set(sample[id_column])).to_numpy()  # rows the sample scores
        counts = pd.Series([name for value, keep in zip(labels, kept) if keep
                            for name in split_labels(value)]).value_counts()
        return PredictSummary(submission=path, n_rows=len(frame), n_unreadable=predictions.n_unreadable,
                              counts={k: int(v) for k, v in counts.items()},
                              unreadable_note="the classes frequent in training")

    def validate_submission(self, frame, sample, spec, index) -> None:
        self.validate_frame(frame, sample, spec, class_names(index, spec, self))

    @staticmethod
    def validate_frame(frame, sample, spec, classes) -> None:
        """The classification checks (columns, ids, order, known labels), each label of a cell checked; a
        probabilities submission: a column per class of numbers in 0..1."""
        if spec.resolved_submission_format == "probabilities":
            validate_class_submission(frame, sample, spec, classes)
            return
        label_column = spec.submission_label_column
        checked = frame.copy()
        if list(frame.columns).count(label_column) == 1:
            checked[label_column] = [next((name for name in split_labels(v) if name not in classes),
                                          (split_labels(v) or [""])[0]) for v in frame[label_column].astype(str)]
        refuse_problems(submission_problems(checked, sample, spec.submission_id_column, label_column, classes),
                        "The submission does not match the sample submission",
                        expected=f"columns {list(sample.columns)}; the sample's {len(sample)} ids, each once, in "
                                 f"the sample's order; every {label_column!r} space-separated classes among "
                                 f"{', '.join(classes)}",
                        fix="build it with podium.submission.validate.submission_frame(sample, labels_by_id, ...)")

    # ---- `make spec` --------------------------------------------------------------------------------------
    spec_label_sets = True
    spec_checks_labels = False

    def spec_classes(self, labels):
        return None


def run_thresholds(run_dir: Path, classes: list[str], metric: Metric | None = None) -> np.ndarray:
    """Per-class thresholds chosen for `metric` (default micro_f1) on every finished fold's oof.parquet,
    recorded in thresholds.json with the metric at 0.5, at the tuned thresholds (in-sample) and the honest
    per-fold figure (each fold at thresholds chosen on the other folds); 0.5 each when the run folder has no
    out-of-fold predictions and no saved file (a packaged inference kernel carries the file)."""
    metric = metric or resolve_metric("micro_f1")
    run_dir = Path(run_dir)
    parts = [pd.read_parquet(p) for p in sorted(run_dir.glob("fold-*/oof.parquet"))
             if (p.parent / "metrics.json").is_file()]
    if not parts:
        saved = run_dir / THRESHOLDS
        if saved.is_file():
            chosen = json.loads(saved.read_text(encoding="utf-8"))["thresholds"]
            return np.array([chosen[name] for name in classes], dtype=float)
        return np.full(len(classes), 0.5)
    oof = pd.concat(parts, ignore_index=True)
    truth, probs = multi_hot(oof["label"], classes), oof[[f"prob_{name}" for name in classes]].to_numpy()
    thresholds = choose_thresholds(truth, probs, metric)
    write_json(run_dir / THRESHOLDS, threshold_record(classes, thresholds, metric, truth, probs, oof["fold"].to_numpy(),
                                                      f"{len(oof)} out-of-fold predictions"))
    return thresholds


def threshold_record(classes: list[str], thresholds: np.ndarray, metric: Metric, truth: np.ndarray,
                     probs: np.ndarray, folds: np.ndarray, chosen_on: str) -> dict:
    """What thresholds.json says: the thresholds, for which metric, and that metric at 0.5, tuned and honest."""
    record = {"thresholds": {name: float(t) for name, t in zip(classes, thresholds)}, "metric": metric.label,
              "chosen_on": chosen_on}
    if metric.reads == "label_sets":
        score = lambda t: metric(*from_label_probabilities(metric, truth, probs, t))  # noqa: E731
        honest = honest_threshold_scores(truth, probs, folds, metric) if len(np.unique(folds)) > 1 else {}
        record.update({"at_half": score(np.full(len(classes), 0.5)), "tuned_in_sample": score(thresholds),
                       "honest": {"cv_mean": float(np.mean(list(honest.values()))) if honest else None,
                                  "folds": honest,
                                  "how": "each fold at thresholds chosen on the other folds' OOF rows"}})
    return record
