"""Many boxes of several classes per image (Global Wheat, VinBigData, the Great Barrier Reef): an anchor-free
CenterNet-style head, the competition's mAP or F2, and a PredictionString per image.

The model's output is dense, (N, S/4, S/4, C + 4) per image: a centre heat map per class and the distances to
the box's four sides. A TTA view is undone on those maps (exact for flips, quarter turns and the transpose,
whose inverse also swaps the side distances). Then `box_fusion` says how views, folds and blended runs become
one: `wbf` (the default) decodes each one's boxes and fuses them by weighted boxes fusion, so what is saved is
(N, max_boxes, 6) boxes whatever the image size and runs of other sizes blend; `mean` averages the maps
(CenterNet's flip test) and decodes once. Boxes are then thresholded, NMS-ed and capped
(podium.scoring.box_postprocess); the threshold of a metric that counts every box (Global Wheat, F2) is chosen
on the run's out-of-fold outputs at `make predict`, saved in postprocess.json and packaged with an inference
kernel.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from podium.box_fusion import weighted_boxes_fusion
from podium.lazy import LazyModule
from podium.data import detection_targets
from podium.data.dataset import load_labeled_data, test_rows
from podium.data.index import class_names
from podium.data.targets import check_targets, image_shapes
from podium.errors import PodiumError
from podium.figures import new_figure, save_png
from podium.io import write_json
from podium.scoring import box_postprocess as post
from podium.scoring.registry import Metric, resolve_metric
from podium.scoring.run_metric import run_metric
from podium.submission import detections as detection_submission
from podium.tasks.base import (OOF_OUTPUTS, FoldScores, PredictSummary, Task, finished_fold_dirs,
                               read_oof_outputs, train_images_now)

# imported on first use: `import podium.tasks` loads no keras
augment_boxes = LazyModule("podium.training.augment_boxes")
detection_model = LazyModule("podium.models.detection")

POSTPROCESS = "postprocess.json"  # in the run folder: the threshold chosen on its out-of-fold maps


class Detection(Task):
    name = "detection"
    class_columns = False
    output_kind = "detections"
    score_logged = "val_loss"  # fit logs no box metric: the run's metric is val_<metric> (training.validation)
    metric_name = "COCO mAP"
    own_score = "coco_map"
    saved_outputs_dtype = "float32"  # fused boxes' corners and scores (float16 would move a 1024 px box by 0.5 px)
    index_label_words = {detection_targets.NO_BOX: "without boxes", detection_targets.count_bin(0): "without boxes"}

    # ---- data -----------------------------------------------------------------------------------
    def index_label_word(self, label: str) -> str:
        """A box-count bin (one class: "2-3 boxes") as it is, or the rarest class held, in words."""
        if label in self.index_label_words:
            return self.index_label_words[label]
        return f"with {label}" if label.endswith(("box", "boxes")) else f"holding {label} as their rarest class"

    def index_labels(self, spec, data_root: Path) -> pd.DataFrame:
        """Every train image, those the CSV never names too; the label folds stratify on is its box count's bin
        with one class, else the rarest class it holds (podium.data.detection_targets)."""
        return detection_targets.detection_labels(spec, data_root)

    def class_names(self, labels: pd.Series) -> list[str]:
        """None: the index labels are what folds stratify on (box-count bins, rarest classes), not class names.
        Every detection spec names its classes: listed with a class column (check_targets says which are
        found), else its one class (load_competition names it)."""
        return []

    def label_indices(self, labels: pd.Series, classes: list[str]) -> np.ndarray:
        """The rarest class an image holds as its index; 0 for a box-count bin (one class) or no box. Nothing
        trains on it: the boxes are the targets (and part of a fold's data key)."""
        lookup = {name: k for k, name in enumerate(classes)}
        return labels.astype(str).map(lambda name: lookup.get(name, 0)).to_numpy(dtype=int)

    def class_prior(self, labels: pd.Series, classes: list[str]) -> np.ndarray:
        return np.full(len(classes), 1.0 / max(1, len(classes)), dtype="float32")

    def check_targets(self, spec, data_root, index) -> None:
        if spec.class_column and not spec.classes:
            found = detection_targets.detection_class_names(spec, data_root)
            raise PodiumError(f"The detection spec {spec.slug!r} has a class column but lists no classes.",
                              expected="classes: [...] in the spec (their order is the model's outputs, and "
                                       "the class codes a PredictionString writes)",
                              received=f"{len(found)} classes in {spec.labels_csv}'s {spec.class_column!r}",
                              fix=f"add `classes: [{', '.join(found)}]` to the competition spec")
        check_targets(spec, data_root, index, detection_targets.detection_problems)

    def load_targets(self, spec, data_root, rows, size, classes, progress=True, cache="disk") -> np.ndarray:
        return detection_targets.detection_targets(spec, data_root, rows, classes)

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

    def output_merger(self, cfg):
        """box_fusion=wbf: each view's (fold's, run's) boxes decoded and fused; mean: the maps averaged."""
        return functools.partial(fused_boxes, iou=cfg.wbf_iou, max_boxes=cfg.max_boxes) \
            if cfg.box_fusion == "wbf" else None

    # ---- scores ---------------------------------------------------------------------------------
    def metric_pair(self, metric, data, positions, outputs):
        """True boxes against the boxes decoded from the maps, at the fold's setting for `metric`."""
        truth = detection_targets.targets_to_detections(data.targets[positions])
        return truth, post.fold_settings(metric).apply(decoded(outputs))

    def own_fold_scores(self, data, positions, fold, plain, with_tta) -> FoldScores:
        metric, truth = self.default_metric(), detection_targets.targets_to_detections(data.targets[positions])
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

    def run_report(self, data, oof, run_dir, plots, shown: int = 16):
        """Per class: true boxes out of fold and AP at IoU 0.5 (with TTA); true (green) and predicted (red,
        score >= 0.3) boxes on the first validation images (plots/boxes.png, in the HTML report)."""
        fold_dirs = finished_fold_dirs(run_dir)
        truth, boxes, _ = oof_boxes(data, fold_dirs)
        if not truth:
            return {}, None
        ap50 = resolve_metric("map_at_iou(iou=0.5)")
        table = pd.DataFrame([{"class": name, "true boxes": sum(int((t[:, 0] == k).sum()) for t in truth),
                               "AP@0.5": class_ap(ap50, truth, boxes, k)} for k, name in enumerate(data.classes)])
        position_of = {str(image_id): k for k, image_id in enumerate(data.ids)}
        ids = pd.concat([pd.read_parquet(d / "oof.parquet") for d in fold_dirs])["id"].astype(str).tolist()[:shown]
        draw_boxes(np.asarray(data.images[[position_of[i] for i in ids]]), truth[:shown],
                   post.BoxSettings(0.3).apply(boxes[:shown]), data.classes, Path(plots) / "boxes.png")
        return {"ap50_per_class": dict(zip(table["class"], table["AP@0.5"]))}, table

    package_file_names = (POSTPROCESS,)

    def package_files(self, cfg, classes):
        run_settings(cfg, self, run_metric(cfg))  # chosen on the run's OOF maps, written beside them
        return [Path(cfg.run_dir) / POSTPROCESS]

    # ---- blends ---------------------------------------------------------------------------------
    def blend_truth(self, oof, classes, metric):
        return None  # the index's boxes by id

    def blend_score(self, metric, values, truth, fit_values, fit_truth, positive=1, k=0):
        return metric(detection_targets.targets_to_detections(truth), post.fold_settings(metric).apply(decoded(values)))

    def blend_files(self, run_dirs, blend_dir, metric, truth, values, folds, classes=()):
        """The blend's own threshold, chosen on its blended OOF maps: postprocess.json, which its writer reads."""
        record = post.settings_record(metric, detection_targets.targets_to_detections(truth), decoded(values), folds,
                                      0.5, 100,
                                      f"{len(truth)} blended out-of-fold maps")
        write_json(Path(blend_dir) / POSTPROCESS, record)
        return {"postprocess": record}

    # ---- submission -----------------------------------------------------------------------------
    def write_submission(self, cfg, spec, classes, prior, predictions, sample, path):
        settings = run_settings(cfg, self, run_metric(cfg, spec))
        boxes = {image_id: rows for image_id, rows in
                 zip(predictions.readable_ids, settings.apply(decoded(predictions.values)))}
        shapes = image_shapes(predictions.rows)
        frame = detection_submission.detection_frame(sample, spec, classes, boxes, shapes)
        detection_submission.write_detection_submission(path, frame, sample, spec, classes, shapes)
        counts = pd.Series([classes[int(c)] for rows in boxes.values() for c in rows[:, 0]]).value_counts()
        return PredictSummary(submission=path, n_rows=len(frame), n_unreadable=predictions.n_unreadable,
                              counts={"images with boxes": sum(len(rows) > 0 for rows in boxes.values()),
                                      **{k: int(v) for k, v in counts.items()}},
                              unreadable_note="an empty row (no boxes)",
                              notes=[f"boxes scored >= {settings.min_score:g}, NMS at IoU {settings.nms_iou:g}, "
                                     f"at most {settings.max_boxes} per image ({POSTPROCESS})"])

    def validate_submission(self, frame, sample, spec, index) -> None:
        detection_submission.validate_detection_submission(frame, sample, spec, class_names(index, spec, self),
                                                           image_shapes(test_rows(index)))

    def rehearsal_problems(self, frame, sample, spec, classes):
        return detection_submission.rehearsal_problems(frame, sample, spec, classes)

    # ---- `make spec` ----------------------------------------------------------------------------
    spec_form_from_sample = False  # the sample holds PredictionStrings
    spec_checks_labels = False

    def spec_classes(self, labels):
        return sorted(set(labels) - {""})

    def spec_label_problems(self, spec, data_root):
        """Every box that does not read as four numbers, every class outside the spec's (no image sizes)."""
        return detection_targets.detection_problems(spec, data_root, {})


def decoded(values) -> list[np.ndarray]:
    """Per image `[class, score, x1, y1, x2, y2]` rows from (N, h, w, C + 4) maps, in chunks (a memmap of a
    test set need not sit in memory), or from fused boxes (N, K, 6) padded with class -1 (fused_boxes)."""
    if np.ndim(values) == 3:
        return [rows[rows[:, 0] >= 0] for rows in np.asarray(values, dtype=np.float32)]
    out = []
    for start in range(0, len(values), 256):
        out.extend(detection_model.decode(np.asarray(values[start:start + 256], dtype=np.float32)))
    return out


def fused_boxes(parts: list[np.ndarray], weights: list[float] | None, iou: float = 0.55,
                max_boxes: int = 100) -> np.ndarray:
    """Outputs of several views, folds or runs for the same images (maps or fused boxes) as one (N, max_boxes,
    6) array of boxes: per image, each part's boxes fused by WBF with the parts' weights; padding rows -1."""
    per_part = [decoded(part) for part in parts]
    out = np.full((len(per_part[0]), max_boxes, 6), -1.0, np.float32)
    out[..., 1] = 0.0
    for image, rows in enumerate(zip(*per_part)):
        fused = weighted_boxes_fusion(list(rows), weights, iou=iou)[:max_boxes]
        out[image, :len(fused)] = fused
    return out


def oof_boxes(data, fold_dirs: list[Path], images: str | None = None
              ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """(truth, decoded boxes, fold) of the folds' out-of-fold images, from their saved outputs (read checked:
    base.read_oof_outputs; `images` the index's train_images)."""
    oof, outputs = read_oof_outputs(fold_dirs, images)
    position_of = {str(image_id): k for k, image_id in enumerate(data.ids)}
    positions = np.array([position_of[str(i)] for i in oof["id"]], dtype=int)
    truth = detection_targets.targets_to_detections(data.targets[positions]) if len(positions) else []
    return truth, (decoded(outputs) if len(positions) else []), oof["fold"].to_numpy()


def class_ap(metric: Metric, truth: list[np.ndarray], boxes: list[np.ndarray], k: int) -> float | None:
    """`metric` on class k's boxes alone (None where class k has no true box)."""
    mine = [t[t[:, 0] == k] for t in truth]
    if not sum(len(t) for t in mine):
        return None
    return metric(mine, [b[b[:, 0] == k] for b in boxes])


def draw_boxes(images: np.ndarray, truth: list[np.ndarray], boxes: list[np.ndarray], classes: list[str],
               path: Path, columns: int = 8) -> Path:
    """Images with their true boxes (green) and predicted ones (red, dashed, class and score)."""
    from matplotlib.patches import Rectangle

    rows = max(1, -(-len(images) // columns))
    figure = new_figure((2 * columns, 2 * rows), 100)
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    side = images.shape[1]
    for ax, image, true, found in zip(axes.flat, images, truth, boxes):
        ax.imshow(image.astype(np.uint8))
        for rows_, colour, style in ((true[:, 1:], "lime", "-"), (found[:, 2:], "red", "--")):
            for x1, y1, x2, y2 in np.asarray(rows_) * side:
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linestyle=style))
        ax.set_title(f"{len(true)} true, {len(found)} found", fontsize=7)
    return save_png(figure, path, dpi=80, bbox_inches="tight")


def run_settings(cfg, task: Task, metric: Metric) -> post.BoxSettings:
    """The submission's post-processing: box_min_score when the config sets it, else the threshold chosen on
    the finished folds' out-of-fold outputs (recorded in postprocess.json with the honest per-fold figure), else
    the saved file (a packaged run, a blend), else the metric's fold setting."""
    run_dir = Path(cfg.run_dir)
    if cfg.box_min_score:
        return post.BoxSettings(cfg.box_min_score, cfg.box_nms_iou, cfg.max_boxes)
    fold_dirs = finished_fold_dirs(run_dir)
    if fold_dirs:
        record = _chosen_on_oof(cfg, task, metric, fold_dirs)
        return post.BoxSettings(record["min_score"], cfg.box_nms_iou, cfg.max_boxes)
    saved = run_dir / POSTPROCESS
    if saved.is_file():
        record = json.loads(saved.read_text(encoding="utf-8"))
        return post.BoxSettings(record["min_score"], record["nms_iou"], record["max_boxes"])
    return post.fold_settings(metric, cfg.box_nms_iou, cfg.max_boxes)


def _chosen_on_oof(cfg, task: Task, metric: Metric, fold_dirs: list[Path]) -> dict:
    data = load_labeled_data(cfg, task, progress=False)  # the boxes the OOF outputs are scored against
    truth, boxes, folds = oof_boxes(data, fold_dirs, train_images_now(cfg))
    if not truth:
        raise PodiumError(f"Run {cfg.run_id} has no out-of-fold maps to choose a box threshold on.",
                          expected=f"fold-*/{OOF_OUTPUTS} beside oof.parquet", received=f"folds {fold_dirs}",
                          fix="run `make train` again, or set box_min_score=0.3 (any fixed threshold)")
    record = post.settings_record(metric, truth, boxes, folds, cfg.box_nms_iou, cfg.max_boxes,
                                  f"{len(truth)} out-of-fold images")
    write_json(Path(cfg.run_dir) / POSTPROCESS, record)
    return record

