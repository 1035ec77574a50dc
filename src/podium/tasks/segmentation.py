"""A mask per image (Airbus ships): U-Net head, BCE/Dice loss, Dice score; the submission writes
run-length rows, one per object.

With several classes (a spec with `class_masks` and `classes`: Severstal, Understanding Clouds; docs/tasks.md)
the same task reads one row per image–class pair into (N, S, S, C) masks, trains C output channels (a sigmoid
per class, or a softmax with a background channel for exclusive classes, its background dropped), scores the mean
Dice over image–class pairs, and at `make predict` chooses each class's threshold and minimum component size on
the run's OOF outputs (postprocess.json, which the inference package carries); the submission holds one row per
pair of the sample, in its order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from podium.lazy import LazyModule
from podium.data.class_masks import (EMPTY, class_mask_labels, class_mask_problems, load_class_masks, pairs,
                                     rows_from_masks, spec_columns)
from podium.data.competitions import load_competition
from podium.data.dataset import load_labeled_data, test_rows
from podium.data.targets import OBJECT, check_targets, image_shapes, load_masks, mask_labels, mask_problems
from podium.io import atomic_path, write_json
from podium.scoring import segmentation as seg_scores
from podium.scoring.class_postprocess import choose_postprocess, masks_at_size
from podium.scoring.segmentation import dice_per_pair, stepped_iou_per_image
from podium.submission.masks import (class_mask_submission_problems, in_sample_order, mask_rows,
                                     validate_class_mask_submission, validate_mask_submission, write_mask_submission)
from podium.tasks.base import (FoldScores, PredictSummary, Task, finished_fold_dirs, read_oof_outputs,
                               rows_weighted_score, train_images_now)
from podium.training.balance import keep_empty

# imported on first use: `import podium.tasks` loads no keras
augment_pairs = LazyModule("podium.training.augment_pairs")
seg_losses = LazyModule("podium.training.seg_losses")
segmentation = LazyModule("podium.models.segmentation")
tta = LazyModule("podium.training.tta")

POSTPROCESS = "postprocess.json"  # in the run folder: per-class thresholds and minimum sizes chosen on OOF


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
        """One row per object in the CSV, so the index label is "has objects" (what folds stratify on); with
        several classes, the rarest class the image holds, or "empty"."""
        if spec.class_masks:
            return class_mask_labels(spec, data_root)
        return mask_labels(spec, data_root)

    def check_targets(self, spec, data_root, index) -> None:
        check_targets(spec, data_root, index, class_mask_problems if spec.class_masks else mask_problems)

    def load_targets(self, spec, data_root, rows, size, classes, progress=True, cache="disk") -> np.ndarray:
        if spec.class_masks:
            return load_class_masks(spec, data_root, rows, size, Path(data_root) / "cache", progress, cache)
        return load_masks(spec, data_root, rows, size, Path(data_root) / "cache", progress, cache)

    def class_names(self, labels: pd.Series) -> list[str]:
        """The index labels, EMPTY and OBJECT, with one mask per image; with several classes the spec lists them,
        and an image holding none (EMPTY) names no class."""
        names = super().class_names(labels)
        return names if set(names) <= {EMPTY, OBJECT} else [name for name in names if name != EMPTY]

    def label_indices(self, labels: pd.Series, classes: list[str]) -> np.ndarray:
        """With several classes an image holding none counts with the first class (the data key reads it)."""
        if EMPTY in classes:
            return super().label_indices(labels, classes)
        return labels.map({EMPTY: 0, **{name: k for k, name in enumerate(classes)}}).to_numpy(dtype=int)

    def train_positions(self, cfg, data, positions) -> np.ndarray:
        return keep_empty(positions, data.targets, cfg.keep_empty, cfg.seed)

    def pair_augmenter(self, cfg):
        """Moves the target with the pixels."""
        return augment_pairs.MaskAugmenter(cfg.augment, cfg.resolved_image_size, cfg.seed) if cfg.augment else None

    def build_model(self, cfg, num_classes: int):
        spec = load_competition(cfg.competition)
        if spec.class_masks:
            return segmentation.build_segmenter(cfg, len(spec.classes), spec.class_masks == "exclusive")
        return segmentation.build_segmenter(cfg)

    def compile_arguments(self, cfg, num_classes: int) -> dict:
        spec = load_competition(cfg.competition)
        if spec.class_masks:
            return {"loss": seg_losses.make_class_mask_loss(cfg.seg_loss, cfg.focal_gamma,
                                                            spec.class_masks == "exclusive"),
                    "metrics": seg_losses.class_mask_metrics()}
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
        if getattr(data.spec, "class_masks", ""):
            return class_fold_scores(data, positions, fold, plain, with_tta)
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

    package_file_names = (POSTPROCESS,)  # several classes: the thresholds and minimum sizes chosen on OOF

    def package_files(self, cfg, classes):
        spec = load_competition(cfg.competition)
        if not spec.class_masks:
            return []
        run_postprocess(cfg, spec, self)  # chosen on the run's OOF rows, written beside them
        return [Path(cfg.run_dir) / POSTPROCESS]

    def blend_files(self, run_dirs, blend_dir, metric, truth, values, folds, classes=()):
        """Several classes: the blend's own thresholds and minimum sizes, chosen on its blended OOF rows."""
        if EMPTY in classes or not len(classes):
            return {}
        record = postprocess_record(values, truth, folds, list(classes), f"{len(truth)} blended out-of-fold rows")
        write_json(Path(blend_dir) / POSTPROCESS, record)
        return {"postprocess": record}

    def write_submission(self, cfg, spec, classes, prior, predictions, sample, path):
        if spec.class_masks:
            return write_class_submission(cfg, spec, predictions, sample, path, run_postprocess(cfg, spec, self))
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
        if spec.class_masks:
            validate_class_mask_submission(frame, sample, spec.classes, image_shapes(test_rows(index)),
                                           spec.class_masks == "exclusive", spec.submission_id_column,
                                           spec.submission_label_column, spec.submission_class_column)
            return
        validate_mask_submission(frame, sample, spec.submission_id_column, spec.submission_label_column,
                                 image_shapes(test_rows(index)))

    def rehearsal_problems(self, frame, sample, spec, classes):
        """Several classes: every pair of the sample once, known classes, run-length strings well formed (the
        image sizes are not at hand offline)."""
        if not spec.class_masks:
            return super().rehearsal_problems(frame, sample, spec, classes)
        return class_mask_submission_problems(frame, sample, spec.classes, {}, spec.class_masks == "exclusive",
                                              spec.submission_id_column, spec.submission_label_column,
                                              spec.submission_class_column)

    # ---- `make spec` --------------------------------------------------------------------------------------
    spec_form_from_sample = False  # the sample holds run-length masks
    spec_checks_labels = False

    def spec_classes(self, labels):
        return None

    def spec_label_problems(self, spec, data_root):
        """Several classes: every id that joins no image and known class (no image sizes to read masks at)."""
        return class_mask_problems(spec, data_root, {}) if spec.class_masks else []

    def spec_sample_images(self, spec, sample):
        """Several classes: the image of each image–class pair."""
        if not spec.class_masks:
            return super().spec_sample_images(spec, sample)
        return [image for image, _ in pairs(sample, spec.classes, **spec_columns(spec, submission=True))]


# ---- several classes -------------------------------------------------------------------------------------

def class_fold_scores(data, positions, fold, plain, with_tta) -> FoldScores:
    """Mean Dice over image–class pairs, with and without TTA; the OOF table per image with each class's Dice."""
    truth = data.targets[positions]
    pairs_plain, pairs_tta = dice_per_pair(truth, plain), dice_per_pair(truth, with_tta)
    oof = pd.DataFrame({"id": data.ids[positions], "fold": fold, "dice": pairs_plain.mean(axis=1),
                        "dice_tta": pairs_tta.mean(axis=1)})
    present = truth.reshape(len(truth), -1, truth.shape[-1]).max(axis=1) > 0
    extra = {}
    for k, name in enumerate(data.classes):
        oof[f"dice_{name}"], oof[f"has_{name}"] = pairs_tta[:, k], present[:, k]
        extra[f"dice_{name}"] = float(pairs_plain[:, k].mean())
    return FoldScores(float(pairs_plain.mean()), float(pairs_tta.mean()), extra, oof)


def postprocess_record(probabilities, truth, folds, classes: list[str], source: str) -> dict:
    """Per-class thresholds and minimum sizes chosen on OOF rows (scoring.class_postprocess), as saved: each fold's
    honest score uses values chosen on the other folds; a run of one fold splits its rows in two halves instead."""
    folds = np.asarray(folds)
    split = "folds"
    if len(np.unique(folds)) < 2:
        folds, split = np.arange(len(folds)) % 2, "two halves of the one fold's rows (alternate rows)"
    chosen = choose_postprocess(np.asarray(probabilities, dtype=np.float32), np.asarray(truth), folds)
    return {"classes": list(classes), **chosen.to_dict(), "honest_split": split, "source": source,
            "by_class": {name: {"threshold": t, "min_size": m}
                         for name, t, m in zip(classes, chosen.thresholds, chosen.min_sizes)}}


def run_postprocess(cfg, spec, task) -> dict:
    """The run's per-class post-processing: chosen on every finished fold's OOF outputs and written to
    postprocess.json; read from that file in a folder without them (an inference package, a blend); 0.5 and
    no minimum size when there is neither."""
    run_dir = Path(cfg.run_dir)
    folds = finished_fold_dirs(run_dir)
    if not folds:
        if (run_dir / POSTPROCESS).is_file():
            return json.loads((run_dir / POSTPROCESS).read_text(encoding="utf-8"))
        return {"classes": list(spec.classes), "thresholds": [0.5] * len(spec.classes),
                "min_sizes": [0] * len(spec.classes), "source": "defaults: no out-of-fold outputs"}
    oof, probabilities = read_oof_outputs(folds, train_images_now(cfg))
    data = load_labeled_data(cfg, task, progress=False)
    position = {str(i): k for k, i in enumerate(data.ids)}
    truth = np.asarray(data.targets[[position[str(i)] for i in oof["id"]]])
    record = postprocess_record(probabilities, truth, oof["fold"].to_numpy(), list(spec.classes),
                                f"{len(oof)} out-of-fold predictions")
    write_json(run_dir / POSTPROCESS, record)
    return record


def write_class_submission(cfg, spec, predictions, sample, path, chosen: dict) -> PredictSummary:
    """One row per image–class pair of the sample, its mask at the image's own size (empty for an undecodable
    image), validated before anything is written."""
    shapes, exclusive = image_shapes(predictions.rows), spec.class_masks == "exclusive"
    classes = list(spec.classes)
    masks = {str(i): np.zeros((1, 1, len(classes)), np.uint8) for i in predictions.rows["id"]}
    for image_id, probabilities in zip(predictions.readable_ids, predictions.values):
        masks[image_id] = masks_at_size(probabilities, *shapes[image_id], chosen["thresholds"], chosen["min_sizes"],
                                        exclusive)
    columns = spec_columns(spec, submission=True)
    frame = rows_from_masks(sample, masks, classes, rle_column=spec.submission_label_column, **columns)
    validate_class_mask_submission(frame, sample, classes, shapes, exclusive, spec.submission_id_column,
                                   spec.submission_label_column, spec.submission_class_column)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    filled = frame[spec.submission_label_column].astype(str).str.strip() != ""
    counts = {"pairs": len(frame), "pairs with a mask": int(filled.sum())}
    for k, name in enumerate(classes):
        counts[f"images with class {name}"] = int(sum(m[..., k].any() for m in masks.values()))
    return PredictSummary(submission=path, n_rows=len(frame), n_unreadable=predictions.n_unreadable, counts=counts,
                          unreadable_note="empty masks (no class)", notes=[postprocess_note(chosen)])


def postprocess_note(chosen: dict) -> str:
    """What the submission's masks were cut at, and what that scored out of fold."""
    values = ", ".join(f"{name}: > {t:g}, >= {m} px" for name, t, m in zip(chosen["classes"], chosen["thresholds"],
                                                                          chosen["min_sizes"]))
    scored = (f"; honest OOF mean Dice over pairs {chosen['honest_score']:.4f} (0.5, no minimum: "
              f"{chosen['plain_score']:.4f})" if "honest_score" in chosen else "")
    return f"per-class post-processing ({chosen.get('source', '')}): {values}{scored}"
