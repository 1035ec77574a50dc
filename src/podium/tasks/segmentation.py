"""A mask per image (Airbus ships): U-Net head, BCE/Dice loss, Dice score; the submission writes
run-length rows, one per object."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from podium.lazy import LazyModule
from podium.data.dataset import test_rows
from podium.data.targets import check_targets, image_shapes, load_masks, mask_labels, mask_problems
from podium.scoring import segmentation as seg_scores
from podium.scoring.segmentation import stepped_iou_per_image
from podium.submission.masks import in_sample_order, mask_rows, validate_mask_submission, write_mask_submission
from podium.tasks.base import FoldScores, PredictSummary, Task, rows_weighted_score
from podium.training.balance import keep_empty

# imported on first use: `import podium.tasks` loads no keras
augment_pairs = LazyModule("podium.training.augment_pairs")
seg_losses = LazyModule("podium.training.seg_losses")
segmentation = LazyModule("podium.models.segmentation")
tta = LazyModule("podium.training.tta")


class Segmentation(Task):
    name = "segmentation"
    shapes_targets = "masks"
    shapes_object_share = 1.0
    class_columns = False
    output_kind = "masks"
    score_logged = "val_dice"
    metric_name = "dice"
    saved_outputs_dtype = "float16"  # half the disk, ample for a 0.5 threshold
    index_label_words = {"object": "with objects", "empty": "without"}  # the index label: has objects

    def index_labels(self, spec, data_root: Path) -> pd.DataFrame:
        """One row per object in the CSV, so the index label is "has objects" (what folds stratify on)."""
        return mask_labels(spec, data_root)

    def check_targets(self, spec, data_root, index) -> None:
        check_targets(spec, data_root, index, mask_problems)

    def load_targets(self, spec, data_root, rows, size, classes, progress=True) -> np.ndarray:
        return load_masks(spec, data_root, rows, size, Path(data_root) / "cache", progress=progress)

    def train_positions(self, cfg, data, positions) -> np.ndarray:
        return keep_empty(positions, data.targets, cfg.keep_empty, cfg.seed)

    def pair_augmenter(self, cfg):
        """Moves the target with the pixels."""
        return augment_pairs.MaskAugmenter(cfg.augment, cfg.resolved_image_size, cfg.seed) if cfg.augment else None

    def build_model(self, cfg, num_classes: int):
        return segmentation.build_segmenter(cfg)

    def compile_arguments(self, cfg, num_classes: int) -> dict:
        return {"loss": seg_losses.make_seg_loss(cfg.seg_loss, cfg.focal_gamma), "metrics": seg_losses.seg_metrics()}

    def view_inverter(self):
        return tta.undo_view

    own_score = "dice"

    def metric_pair(self, metric, data, positions, outputs):
        """Masks against mask probabilities (every segmentation metric reads them)."""
        return data.targets[positions], outputs

    def oof_score(self, metric, data, oof, fold_dirs):
        """Every segmentation metric is a mean over images: the folds' TTA scores weighted by their rows."""
        return rows_weighted_score(fold_dirs)

    def own_fold_scores(self, data, positions, fold, plain, with_tta) -> FoldScores:
        truth = data.targets[positions]
        dice, iou = seg_scores.dice_per_image(truth, plain), seg_scores.iou_per_image(truth, plain)
        oof = pd.DataFrame({"id": data.ids[positions], "fold": fold, "dice": dice, "iou": iou,
                            "dice_tta": seg_scores.dice_per_image(truth, with_tta)})
        extra = {"iou": float(iou.mean()), "airbus_f2": seg_scores.airbus_score(truth, plain),
                 "stepped_iou": float(seg_scores.stepped_iou_per_image(truth, plain).mean())}
        return FoldScores(float(dice.mean()), float(oof["dice_tta"].mean()), extra, oof)

    def per_sample_scores(self, data, positions, predictions) -> np.ndarray:
        return stepped_iou_per_image(data.targets[positions], predictions)

    def pruning_scores(self, data, predictions):
        return {"dice": float(seg_scores.dice_per_image(data.targets, predictions).mean()),
                "iou": float(seg_scores.iou_per_image(data.targets, predictions).mean())}

    def write_submission(self, cfg, spec, classes, prior, predictions, sample, path):
        id_column, rle_column = spec.submission_id_column, spec.submission_label_column
        shapes = image_shapes(predictions.rows)
        rows = mask_rows(predictions.readable_ids, predictions.values, shapes, cfg.mask_threshold,
                         cfg.min_object_pixels, id_column, rle_column)
        frame = in_sample_order(rows, sample, id_column, rle_column)
        write_mask_submission(path, frame, sample, id_column, rle_column, shapes)
        filled = frame[rle_column].astype(str).str.strip() != ""
        return PredictSummary(submission=path, n_rows=len(frame), n_unreadable=predictions.n_unreadable,
                              counts={"images": int(frame[id_column].nunique()),
                                      "images with objects": int(frame.loc[filled, id_column].nunique()),
                                      "objects": int(filled.sum())},
                              unreadable_note="an empty row (no objects)")

    def validate_submission(self, frame, sample, spec, index) -> None:
        validate_mask_submission(frame, sample, spec.submission_id_column, spec.submission_label_column,
                                 image_shapes(test_rows(index)))

    # ---- `make spec` --------------------------------------------------------------------------------------
    spec_form_from_sample = False  # the sample holds run-length masks
    spec_checks_labels = False

    def spec_classes(self, labels):
        return None
