"""Many boxes of several classes per image (Global Wheat, VinBigData, the Great Barrier Reef): an anchor-free
CenterNet-style head, the competition's mAP or F2, and a PredictionString per image.

What flows between the stages is the model's dense output, (N, S/4, S/4, C + 4) per image: a centre heat map
per class and the distances to the box's four sides. TTA views and folds average those maps after each view
is undone on them (exact for flips, quarter turns and the transpose, whose inverse also swaps the side
distances), as CenterNet averages its flip test; boxes are decoded from the average once, then thresholded
and NMS-ed (podium.scoring.box_postprocess). The score threshold of a metric that counts every box (Global
Wheat, F2) is chosen on the run's out-of-fold maps at `make predict`, saved in postprocess.json and packaged
with an inference kernel. Blends average the maps of runs at one image size (their grids agree).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from podium.lazy import LazyModule
from podium.data import detection_targets
from podium.data.dataset import load_labeled_data, test_rows
from podium.data.index import class_names
from podium.data.targets import check_targets, image_shapes
from podium.errors import PodiumError
from podium.io import write_json
from podium.scoring import box_postprocess as post
from podium.scoring.registry import Metric, resolve_metric
from podium.scoring.run_metric import run_metric
from podium.submission import detections as detection_submission
from podium.tasks.base import OOF_OUTPUTS, FoldScores, PredictSummary, Task

# imported on first use: `import podium.tasks` loads no keras
augment_boxes = LazyModule("podium.training.augment_boxes")
detection_model = LazyModule("podium.models.detection")

POSTPROCESS = "postprocess.json"  # in the run folder: the threshold chosen on its out-of-fold maps
NO_BOX = "none"  # the index label of an image without a box


class Detection(Task):
    name = "detection"
    class_columns = False
    output_kind = "heatmaps"
    score_logged = "val_coco_map"
    metric_name = "COCO mAP"
    own_score = "coco_map"
    saved_outputs_dtype = "float16"  # centre maps: half the disk, ample for ranking peaks
    index_label_words = {NO_BOX: "without boxes"}

    # ---- data -----------------------------------------------------------------------------------
    def index_labels(self, spec, data_root: Path) -> pd.DataFrame:
        """Every train image with its rarest class (folds stratify on it), "none" without a box."""
        return detection_targets.index_labels(spec, data_root)

    def class_names(self, labels: pd.Series) -> list[str]:
        return sorted(str(label) for label in labels.unique() if str(label) != NO_BOX)

    def label_indices(self, labels: pd.Series, classes: list[str]) -> np.ndarray:
        """The stratification label as an int (an image without a box: one past the classes)."""
        lookup = {name: k for k, name in enumerate(classes)}
        return labels.astype(str).map(lambda name: lookup.get(name, len(classes))).to_numpy(dtype=int)

    def class_prior(self, labels: pd.Series, classes: list[str]) -> np.ndarray:
        return np.full(len(classes), 1.0 / max(1, len(classes)), dtype="float32")

    def check_targets(self, spec, data_root, index) -> None:
        check_targets(spec, data_root, index, detection_targets.detection_problems)
        detection_targets.check_classes(spec, data_root, class_names(index, spec, self))

    def load_targets(self, spec, data_root, rows, size, classes, progress=True) -> np.ndarray:
        return detection_targets.load_targets(spec, data_root, rows, classes)

    def pair_augmenter(self, cfg):
        """Moves every box with the pixels."""
        return augment_boxes.MultiBoxAugmenter(cfg.augment, cfg.resolved_image_size, cfg.seed) if cfg.augment \
            else None

    # ---- model ----------------------------------------------------------------------------------
    def build_model(self, cfg, num_classes: int):
        return detection_model.build_detector(cfg, num_classes)

    def compile_arguments(self, cfg, num_classes: int) -> dict:
        return {"loss": detection_model.DetectionLoss(num_classes, cfg.box_weight),
                "metrics": detection_model.detection_metrics(num_classes)}

    def view_inverter(self):
        return detection_model.undo_view

    # ---- scores ---------------------------------------------------------------------------------
    def metric_pair(self, metric, data, positions, outputs):
        """True boxes against the boxes decoded from the maps, at the fold's setting for `metric`."""
        return post.true_boxes(data.targets[positions]), post.fold_settings(metric).apply(decoded(outputs))

    def own_fold_scores(self, data, positions, fold, plain, with_tta) -> FoldScores:
        metric, truth = self.default_metric(), post.true_boxes(data.targets[positions])
        settings = post.fold_settings(metric)
        boxes, boxes_tta = settings.apply(decoded(plain)), settings.apply(decoded(with_tta))
        at_half = post.BoxSettings(0.5)
        oof = pd.DataFrame({"id": data.ids[positions], "fold": fold, "label": data.labels[positions],
                            "n_true": [len(t) for t in truth],
                            "n_pred_at_half": [len(b) for b in at_half.apply(boxes_tta)]})
        extra = {"map_50": resolve_metric("map_at_iou(iou=0.5)")(truth, boxes),
                 "wheat_map_at_half": resolve_metric("wheat_map")(truth, at_half.apply(boxes))}
        return FoldScores(metric(truth, boxes), metric(truth, boxes_tta), extra, oof)

    def oof_score(self, metric, data, oof, fold_dirs):
        """`metric` over every out-of-fold image at once (COCO mAP ranks boxes across images)."""
        truth, boxes, _ = oof_boxes(data, fold_dirs)
        return metric(truth, post.fold_settings(metric).apply(boxes)) if truth else None

    package_file_names = (POSTPROCESS,)

    def package_files(self, cfg, classes):
        run_settings(cfg, self, run_metric(cfg))  # chosen on the run's OOF maps, written beside them
        return [Path(cfg.run_dir) / POSTPROCESS]

    # ---- blends ---------------------------------------------------------------------------------
    def blend_truth(self, oof, classes, metric):
        return None  # the index's boxes by id

    def blend_score(self, metric, values, truth, fit_values, fit_truth, positive=1, k=0):
        return metric(post.true_boxes(truth), post.fold_settings(metric).apply(decoded(values)))

    def blend_files(self, run_dirs, blend_dir, metric, truth, values, folds, classes=()):
        """The blend's own threshold, chosen on its blended OOF maps: postprocess.json, which its writer reads."""
        record = post.settings_record(metric, post.true_boxes(truth), decoded(values), folds, 0.5, 100,
                                      f"{len(truth)} blended out-of-fold maps")
        write_json(Path(blend_dir) / POSTPROCESS, record)
        return {"postprocess": record}

    # ---- submission -----------------------------------------------------------------------------
    def write_submission(self, cfg, spec, classes, prior, predictions, sample, path):
        settings = run_settings(cfg, self, run_metric(cfg, spec))
        boxes = {image_id: rows for image_id, rows in
                 zip(predictions.readable_ids, settings.apply(decoded(predictions.values)))}
        shapes = image_shapes(predictions.rows)
        frame = detection_submission.write_submission(path, boxes, shapes, sample, spec, classes)
        counts = pd.Series([classes[int(c)] for rows in boxes.values() for c in rows[:, 0]]).value_counts()
        return PredictSummary(submission=path, n_rows=len(frame), n_unreadable=predictions.n_unreadable,
                              counts={"images with boxes": sum(len(rows) > 0 for rows in boxes.values()),
                                      **{k: int(v) for k, v in counts.items()}},
                              unreadable_note="an empty row (no boxes)",
                              notes=[f"boxes scored >= {settings.min_score:g}, NMS at IoU {settings.nms_iou:g}, "
                                     f"at most {settings.max_boxes} per image ({POSTPROCESS})"])

    def validate_submission(self, frame, sample, spec, index) -> None:
        detection_submission.validate_submission(frame, sample, spec, class_names(index, spec, self),
                                                 image_shapes(test_rows(index)))

    def rehearsal_problems(self, frame, sample, spec, classes):
        return detection_submission.submission_problems(frame, sample, spec, classes)

    # ---- `make spec` ----------------------------------------------------------------------------
    spec_form_from_sample = False  # the sample holds PredictionStrings
    spec_checks_labels = False

    def spec_classes(self, labels):
        return sorted(set(labels) - {""})


def decoded(maps) -> list[np.ndarray]:
    """Per image `[class, score, x1, y1, x2, y2]` rows from (N, h, w, C + 4) maps, in chunks (a memmap of a
    test set need not sit in memory)."""
    out = []
    for start in range(0, len(maps), 256):
        out.extend(detection_model.decode(np.asarray(maps[start:start + 256], dtype=np.float32)))
    return out


def oof_boxes(data, fold_dirs: list[Path]) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """(truth, decoded boxes, fold) of every finished fold's out-of-fold images, from its saved maps."""
    position_of = {str(image_id): k for k, image_id in enumerate(data.ids)}
    truth, boxes, folds = [], [], []
    for fold_dir in fold_dirs:
        oof, maps_path = pd.read_parquet(Path(fold_dir) / "oof.parquet"), Path(fold_dir) / OOF_OUTPUTS
        if not maps_path.is_file():
            continue
        positions = np.array([position_of[str(i)] for i in oof["id"]])
        truth += post.true_boxes(data.targets[positions])
        boxes += decoded(np.load(maps_path, mmap_mode="r"))
        folds += oof["fold"].tolist()
    return truth, boxes, np.asarray(folds)


def run_settings(cfg, task: Task, metric: Metric) -> post.BoxSettings:
    """The submission's post-processing: box_min_score when the config sets it, else the threshold chosen on
    the run's out-of-fold maps (recorded in postprocess.json with the honest per-fold figure), else the saved
    file of a packaged run, else the metric's fold setting."""
    run_dir = Path(cfg.run_dir)
    if cfg.box_min_score:
        return post.BoxSettings(cfg.box_min_score, cfg.box_nms_iou, cfg.max_boxes)
    fold_dirs = [p.parent for p in sorted(run_dir.glob("fold-*/metrics.json"))]
    if fold_dirs:
        record = _chosen_on_oof(cfg, task, metric, fold_dirs)
        return post.BoxSettings(record["min_score"], cfg.box_nms_iou, cfg.max_boxes)
    saved = run_dir / POSTPROCESS
    if saved.is_file():
        record = json.loads(saved.read_text(encoding="utf-8"))
        return post.BoxSettings(record["min_score"], record["nms_iou"], record["max_boxes"])
    return post.fold_settings(metric, cfg.box_nms_iou, cfg.max_boxes)


def _chosen_on_oof(cfg, task: Task, metric: Metric, fold_dirs: list[Path]) -> dict:
    data = load_labeled_data(cfg, task, progress=False)  # the boxes the OOF maps are scored against
    truth, boxes, folds = oof_boxes(data, fold_dirs)
    if not truth:
        raise PodiumError(f"Run {cfg.run_id} has no out-of-fold maps to choose a box threshold on.",
                          expected=f"fold-*/{OOF_OUTPUTS} beside oof.parquet", received=f"folds {fold_dirs}",
                          fix="run `make train` again, or set box_min_score=0.3 (any fixed threshold)")
    record = post.settings_record(metric, truth, boxes, folds, cfg.box_nms_iou, cfg.max_boxes,
                                  f"{len(truth)} out-of-fold images")
    write_json(Path(cfg.run_dir) / POSTPROCESS, record)
    return record

