"""What every task object answers: the one place where classification, segmentation, localization and
multi-label classification differ, so training, prediction, checkpoints, TTA and the search stay one.

A task imports keras (its heads, losses and pair augmenters) only inside the methods that use it, so
`import podium.tasks` loads no keras. What a config may set for a task (monitor, augments,
TTA views, class balancing) is in podium/task_keys.py, which config validation reads without the task objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from podium import artefacts
from podium.lazy import LazyModule
from podium.data.dataset import competition_root
from podium.data.index import load_index
from podium.errors import PodiumError
from podium.io import atomic_path
from podium.scoring.registry import Metric, resolve_metric
from podium.submission.validate import column_problems
from podium.task_keys import TASK_KEYS, TaskKeys

# imported on first use: `import podium.tasks` loads no keras
augment = LazyModule("podium.training.augment")

OOF_OUTPUTS = "oof_outputs.npy"  # beside oof.parquet: a fold's raw TTA outputs, row for row (what a blend averages)


@dataclass(frozen=True)
class FoldScores:
    plain: float  # the task's validation score without TTA
    with_tta: float
    extra: dict  # further numbers worth a look (e.g. Airbus F2, accuracy), no TTA
    oof: pd.DataFrame  # one row per validation image


@dataclass
class TestPredictions:
    """What a task's submission writer reads: made by `make predict` (podium.runners.predict) and by a blend."""

    rows: pd.DataFrame  # every test image of the index, sorted by id
    readable: np.ndarray  # (len(rows),) bool: decoded, so predicted
    values: np.ndarray  # (readable.sum(), ...) the model's outputs at its input size, averaged over folds and views
    cache: str = ""  # how the test images were held, and why (podium.data.cache.choose_cache); "": not decoded here

    @property
    def readable_ids(self) -> list[str]:
        """The ids `values` rows belong to, in order."""
        return self.rows.loc[self.readable, "id"].astype(str).tolist()

    @property
    def n_unreadable(self) -> int:
        return int((~self.readable).sum())


@dataclass
class PredictSummary:
    """What a written submission holds: the task's writer fills the counts, `make predict` the folds, notes and
    record."""

    submission: Path
    n_rows: int
    n_unreadable: int
    counts: dict[str, int]  # what was predicted: rows per class, or images/objects for masks
    unreadable_note: str = ""  # what an undecodable test image got instead of a prediction
    folds_used: list[str] = field(default_factory=list)  # "fold 0 (best epoch 7 of 10)", one per fold
    notes: list[str] = field(default_factory=list)  # what was not checked, and why
    record: Path | None = None  # the submission's sidecar (podium.submission.record)
    scored: str = ""  # the run's CV in its metric ("" when the run has no metrics.json yet)


def normalised_rows(probs: np.ndarray) -> np.ndarray:
    """Rows divided by their sums (a weighted mean of softmax rows already sums to one; ranks do not)."""
    probs = np.clip(np.asarray(probs, dtype="float64"), 0, None)
    return probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-7, None)


def rows_weighted_score(fold_dirs: list[Path]) -> float | None:
    """The mean over every out-of-fold image of a per-image score (Dice, IoU, box IoU, accuracy), from the
    folds' metrics.json: their TTA scores weighted by their validation rows."""
    records = [json.loads((Path(d) / "metrics.json").read_text(encoding="utf-8")) for d in fold_dirs]
    rows = sum(r["n_val"] for r in records)
    return sum(r["val_score_tta"] * r["n_val"] for r in records) / rows if rows else None


def finished_fold_dirs(run_dir: Path) -> list[Path]:
    """The run folder's folds whose training ended (metrics.json) with their out-of-fold outputs saved."""
    return [p.parent for p in sorted(Path(run_dir).glob("fold-*/oof.parquet"))
            if (p.parent / "metrics.json").is_file() and (p.parent / OOF_OUTPUTS).is_file()]


def train_images_now(cfg) -> str:
    """The fingerprint of the index's readable train images now: what a run's OOF files must be made from."""
    return artefacts.train_images(load_index(competition_root(cfg)[1] / "index.parquet"))


def read_oof_outputs(fold_dirs: list[Path], images: str | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The folds' oof.parquet rows and their saved outputs row for row, in fold order, each read through
    podium.artefacts: a damaged file, NaN, or (given `images`, the index's train_images) one made from other
    images is refused with the command that remakes it. What post-processing chosen out of fold reads."""
    frames, outputs = [], []
    for fold_dir in map(Path, fold_dirs):
        remake = f"make train FORCE=1 with the run's config ({fold_dir.parent / 'config.yaml'})"
        for name, into in (("oof.parquet", frames), (OOF_OUTPUTS, outputs)):
            into.append(artefacts.read(fold_dir / name, what=f"{fold_dir.name}'s {name}", remake=remake,
                                       images=images, legacy_ok=True).values)
    if not frames:
        return pd.DataFrame({"id": [], "fold": []}), np.zeros((0,), np.float32)
    return pd.concat(frames, ignore_index=True), np.concatenate([np.asarray(o) for o in outputs])


class Task:
    """The defaults are mostly classification's (the blend, rehearsal and pruning hooks default to the plainest
    reading: values scored as they are, columns checked against the sample); a task overrides what it does
    differently. A new one joins with `podium.tasks.register(task, keys)`."""

    name: str = ""
    score_logged: str = ""  # the logged metric that tracks the fold score (what a search's pruner watches)
    metric_name: str = ""  # the fold score's name in reports
    saved_outputs_dtype: str | None = "float32"  # oof_outputs.npy's dtype; None: oof.parquet holds them already
    compile_on_load: bool = False  # best.keras reloads compiled (its loss needs no custom objects)
    index_label_words: dict[str, str] | None = None  # how `make data` names the index labels; None: classes
    output_kind: str = "probabilities"  # what its saved predictions hold (podium.artefacts kinds)
    class_columns: bool = True  # its outputs are one column per class (probabilities), as many as the classes

    @property
    def keys(self) -> TaskKeys:
        """What a config and a competition spec may set for this task: checked by config validation and
        load_competition, which never import the task objects (podium.task_keys)."""
        return TASK_KEYS[self.name]

    # ---- data -----------------------------------------------------------------------------------
    def index_label_word(self, label: str) -> str:
        """How `make data` names an index label that is not a class (index_label_words, else the label)."""
        return (self.index_label_words or {}).get(label, label)

    def index_labels(self, spec, data_root: Path) -> pd.DataFrame | None:
        """(id, label) rows of a csv layout for the index; None: the labels CSV's label column as written."""
        return None

    def check_targets(self, spec, data_root: Path, index: pd.DataFrame) -> None:
        """At `make data`: every target row fits its image, so a bad row fails there, not mid-training."""

    def class_names(self, labels: pd.Series) -> list[str]:
        """The model's output order from the train images' index labels (when the spec fixes none)."""
        return sorted(str(label) for label in labels.unique())

    def label_indices(self, labels: pd.Series, classes: list[str]) -> np.ndarray:
        """One int per image (what folds, the data key and per-class reports read)."""
        lookup = {name: k for k, name in enumerate(classes)}
        return labels.map(lookup).to_numpy(dtype=int)

    def class_prior(self, labels: pd.Series, classes: list[str]) -> np.ndarray:
        """Training frequency per class from the index labels: what an undecodable test image gets."""
        return labels.value_counts(normalize=True).reindex(classes).fillna(0).to_numpy(dtype="float32")

    def load_targets(self, spec, data_root: Path, rows: pd.DataFrame, size: int, classes: list[str],
                     progress: bool = True, cache: str = "disk") -> np.ndarray | None:
        """Per-image targets beside the int labels (masks, boxes, label sets); None: the labels are all.
        `cache`: how the images are held (disk | memory | none, podium.data.cache); masks are held the same way."""
        return None

    def train_positions(self, cfg, data, positions: np.ndarray) -> np.ndarray:
        """The training rows a fold fits on (segmentation may drop empty images)."""
        return positions

    def batch_targets(self, cfg, data) -> np.ndarray | None:
        """What ImageBatches yields as y; None: classification's one-hot labels."""
        if data.targets is None:
            raise PodiumError(f"task={self.name} needs per-image targets, and the data has none.",
                              expected="masks (N,S,S,1) for segmentation, boxes (N,4) for localization, "
                                       "0/1 rows (N,C) for multilabel",
                              received="LabeledData.targets=None",
                              fix="build the data with podium.data.dataset.in_memory_data(..., targets=...)")
        return data.targets

    def pair_augmenter(self, cfg):
        """The batch augmenter of (images, targets); None: none configured. This default leaves the
        targets as they are (image-level labels), as classification's augments do (mixup mixes them).
        None too when the recipes run in the train step instead (config augment_in; the model holds them)."""
        if cfg.resolved_augment_in == "model":
            return None
        return augment.make_batch_augmenter(cfg.augment, cfg.resolved_image_size, cfg.seed)

    # ---- model ----------------------------------------------------------------------------------
    def build_model(self, cfg, num_classes: int):
        raise NotImplementedError

    def compile_arguments(self, cfg, num_classes: int) -> dict:
        """loss and metrics for model.compile (the optimizer is the schedules module's business)."""
        raise NotImplementedError

    def view_inverter(self) -> Callable[[str, np.ndarray], np.ndarray] | None:
        """How a prediction made on a TTA view is mapped back to the original image's frame; None: as is."""
        return None

    def output_merger(self, cfg) -> Callable[[list[np.ndarray], list[float] | None], np.ndarray] | None:
        """How the outputs several TTA views, folds or blended runs made for the same images become one, given
        as (parts, weights or None); None: their (weighted) mean. A detector may fuse boxes instead (WBF)."""
        return None

    # ---- scores ---------------------------------------------------------------------------------
    own_score: str = ""  # the key under which a fold's own task number stays in `extra` when another metric scores

    def default_metric(self) -> Metric:
        """The registry metric that scores the task when nothing names another (podium.task_keys)."""
        return resolve_metric(self.keys.default_metric)

    def metric_pair(self, metric: Metric, data, positions: np.ndarray, outputs: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(truth, predicted) of rows `positions` in the form `metric` reads (podium.scoring.forms), from the
        model's outputs for those rows: what an epoch's validation score, a fold's score and the OOF CV share."""
        raise NotImplementedError

    def score(self, metric: Metric, data, positions: np.ndarray, outputs: np.ndarray) -> float:
        return metric(*self.metric_pair(metric, data, positions, outputs))

    def fold_scores(self, data, positions: np.ndarray, fold: int, plain: np.ndarray,
                    with_tta: np.ndarray, metric: Metric | None = None) -> FoldScores:
        """The fold's score in `metric` (None: the task's default), with and without TTA; the task's own
        number stays in `extra` under `own_score` when another metric scores the fold."""
        own = self.own_fold_scores(data, positions, fold, plain, with_tta)
        if metric is None or metric.label == self.default_metric().label:
            return own
        extra = {self.own_score: own.plain, **own.extra}
        return FoldScores(self.score(metric, data, positions, plain), self.score(metric, data, positions, with_tta),
                          extra, own.oof)

    def own_fold_scores(self, data, positions: np.ndarray, fold: int, plain: np.ndarray,
                        with_tta: np.ndarray) -> FoldScores:
        """The task's own numbers and its out-of-fold table (oof.parquet)."""
        raise NotImplementedError

    def oof_score(self, metric: Metric, data, oof: pd.DataFrame, fold_dirs: list[Path]) -> float | None:
        """`metric` over every out-of-fold row at once (the TTA outputs), or None where the outputs are not
        at hand; the run's CV (podium.workflow)."""
        columns = [f"prob_{name}" for name in data.classes]
        if not set(columns) <= set(oof.columns):
            return None
        position_of = {str(image_id): k for k, image_id in enumerate(data.ids)}
        positions = np.array([position_of[str(i)] for i in oof["id"]])
        return self.score(metric, data, positions, oof[columns].to_numpy(dtype=float))

    def per_sample_scores(self, data, positions: np.ndarray, predictions: np.ndarray) -> np.ndarray:
        """One number per sample in 0..1 (what data pruning keeps training to)."""
        raise PodiumError(f"Task {self.name} has no per-sample score.", expected="classification, segmentation "
                          "or localization", received=self.name, fix="prune with one of those tasks")

    # the data-pruning experiment on generated shapes (podium.experiments.pruning): the ShapeSet field that is
    # the label, its class names, the field holding the targets (None: the label is all) and the share of
    # images with an ellipse
    shapes_label: str = "has_object"
    shapes_classes: tuple[str, ...] = ("none", "ellipse")
    shapes_targets: str | None = None
    shapes_object_share: float = 0.5

    def pruning_scores(self, data, predictions: np.ndarray) -> dict:
        """The task's usual numbers beside the per-sample score in the pruning experiment's report."""
        return {}

    def save_oof_outputs(self, fold_dir, with_tta: np.ndarray) -> None:
        """The fold's raw TTA outputs in oof.parquet's row order, unless oof.parquet holds them already."""
        if self.saved_outputs_dtype is None:
            return
        with atomic_path(Path(fold_dir) / OOF_OUTPUTS) as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.asarray(with_tta, dtype=self.saved_outputs_dtype))

    def run_report(self, data, oof: pd.DataFrame, run_dir: Path, plots: Path) -> tuple[dict, pd.DataFrame | None]:
        """Task-specific files of `make train`'s run report: (numbers for metrics.json, per-class table)."""
        return {}, None

    package_file_names: tuple[str, ...] = ()  # run-folder files writing a submission reads (see package_files)

    def package_files(self, cfg, classes: list[str]) -> list[Path]:
        """The run folder's `package_file_names`, made when missing: an inference kernel's package carries
        them into the run folder it predicts from, so the kernel predicts as `make predict` does."""
        return []

    # ---- blends (podium.blend) ------------------------------------------------------------------
    def blend_oof(self, oof: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
        """(values a blend averages, truth it scores them against), row for row with oof.parquet, where the
        task reads both from that file alone; None: the blend reads prob_<class> columns or oof_outputs.npy."""
        return None

    def blend_truth(self, oof: pd.DataFrame, classes: list[str], metric: Metric | None) -> np.ndarray | None:
        """What a blend scores the OOF rows against, where oof.parquet holds it: the class indices when the
        averaged values are its prob_<class> columns; None: the index's targets by id (masks, boxes)."""
        return oof["label"].to_numpy(dtype="int64") if self.saved_outputs_dtype is None else None

    def blend_positive(self, spec, classes: list[str]) -> int:
        """The class a `probability` metric reads from blended class probabilities."""
        return 1

    def blend_score(self, metric, values: np.ndarray, truth: np.ndarray, fit_values: np.ndarray | None,
                    fit_truth: np.ndarray | None, positive: int = 1, k: int = 0) -> float:
        """The metric on blended values in the task's form, anything it needs fitted (cut points, thresholds)
        fitted on the fit rows only; this default scores the values as they are (masks)."""
        return metric(truth, values)

    def blend_files(self, run_dirs: list[Path], blend_dir: Path, metric, truth: np.ndarray, values: np.ndarray,
                    folds: np.ndarray, classes: list[str] = ()) -> dict:
        """The run-folder files this task's writer reads, made in a blend's folder from its runs' folders and
        its blended OOF rows (final weights); returns what the blend's metrics.json records of them."""
        return {}

    # ---- submission -----------------------------------------------------------------------------
    def write_submission(self, cfg, spec, classes: list[str], prior: np.ndarray, predictions: TestPredictions,
                         sample: pd.DataFrame, path: Path) -> PredictSummary:
        """The validated submission file from test predictions, and what it holds."""
        raise NotImplementedError

    def validate_submission(self, frame: pd.DataFrame, sample: pd.DataFrame, spec, index: pd.DataFrame) -> None:
        """The same check `make predict` ran, against the sample: what `make submit` re-runs offline."""
        raise NotImplementedError

    labels_per_image: bool = False  # the submission's label column holds one class per image (an accuracy reads it)

    def rehearsal_problems(self, frame: pd.DataFrame, sample: pd.DataFrame, spec, classes: list[str]) -> list[str]:
        """What is wrong with a kernel's submission.csv, read without the index (the offline rehearsal):
        this default checks the columns and rows against the sample only."""
        return column_problems(frame, sample)

    # ---- `make spec` (podium.spec): what drafting and checking a competition spec ask of the task ----------
    spec_form_from_sample: bool = True  # the sample's one prediction column says submission_format (label, top_k...)
    spec_label_sets: bool = False  # the labels CSV's label column holds space-separated label sets
    spec_checks_labels: bool = True  # every labels CSV row needs a label, each among the spec's classes

    def spec_classes(self, labels: pd.Series) -> list[str] | None:
        """The classes `make spec` finds in the labels CSV's label column; None: it holds no class names to list
        (run-lengths, label sets, numbers)."""
        return sorted(set(labels) - {""})

    def spec_label_problems(self, spec, data_root: Path) -> list[str]:
        """What is wrong with the labels CSV's rows as the task's own reader reads them, for `make spec`'s check
        (data_root holds the CSV alone: no image sizes to check against); []: its columns say all."""
        return []

    def spec_sample_images(self, spec, sample: pd.DataFrame) -> list[str]:
        """The test image each row of the sample submission names (`make spec` matches them to the files)."""
        return sample[spec.submission_id_column].astype(str).tolist()
