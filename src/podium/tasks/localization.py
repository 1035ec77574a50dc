"""One class and one box per image: class probabilities then the box in one output, cross-entropy +
smooth-L1 + GIoU, box IoU; the submission writes a class and a pixel box per image."""

from __future__ import annotations

import numpy as np
import pandas as pd

from podium.lazy import LazyModule
from podium.data.dataset import test_rows
from podium.data.index import class_names
from podium.data.targets import box_problems, check_targets, image_shapes, load_boxes
from podium.scoring.metrics import accuracy
from podium.boxes import box_iou
from podium.submission import boxes as box_submission
from podium.tasks.base import FoldScores, PredictSummary, Task, rows_weighted_score

# imported on first use: `import podium.tasks` loads no keras
augment_pairs = LazyModule("podium.training.augment_pairs")
localization = LazyModule("podium.models.localization")


class Localization(Task):
    name = "localization"
    shapes_label, shapes_classes, shapes_targets, shapes_object_share = "bright", ("dark", "bright"), "boxes", 1.0
    class_columns = False
    score_logged = "val_box_iou"
    metric_name = "box IoU"
    output_kind = "boxes"

    def blend_truth(self, oof, classes, metric):
        """The class indices for a label metric (the class part scored); else the boxes of the index."""
        if metric is not None and metric.reads == "labels" and "label" in oof:
            return oof["label"].to_numpy(dtype="int64")
        return None

    def blend_score(self, metric, values, truth, fit_values, fit_truth, positive=1, k=0):
        """The box part (the last four outputs) against the boxes, or the class part's argmax."""
        return metric(truth, values[:, -4:]) if metric.reads == "boxes" else metric(truth, values[:, :-4].argmax(1))

    def check_targets(self, spec, data_root, index) -> None:
        check_targets(spec, data_root, index, box_problems)

    def load_targets(self, spec, data_root, rows, size, classes, progress=True, cache="disk") -> np.ndarray:
        return load_boxes(spec, data_root, rows)

    def batch_targets(self, cfg, data) -> np.ndarray:
        return localization.targets(data.labels, super().batch_targets(cfg, data), data.num_classes)

    def pair_augmenter(self, cfg):
        """Moves the target with the pixels."""
        return augment_pairs.BoxAugmenter(cfg.augment, cfg.resolved_image_size, cfg.seed) if cfg.augment else None

    def build_model(self, cfg, num_classes: int):
        return localization.build_localizer(cfg, num_classes)

    def compile_arguments(self, cfg, num_classes: int) -> dict:
        return {"loss": localization.ClassAndBoxLoss(num_classes, cfg.box_weight), "metrics": localization.localization_metrics(num_classes)}

    def view_inverter(self):
        return localization.unflip_predictions

    own_score = "box_iou"

    def metric_pair(self, metric, data, positions, outputs):
        """The box part against the true boxes (mean_iou), or the class part's argmax (accuracy)."""
        c = data.num_classes
        if metric.reads == "boxes":
            return data.targets[positions], np.asarray(outputs)[:, c:]
        return data.labels[positions], np.asarray(outputs)[:, :c].argmax(1)

    def oof_score(self, metric, data, oof, fold_dirs):
        """Box IoU and accuracy are means over images: the folds' TTA scores weighted by their rows."""
        return rows_weighted_score(fold_dirs)

    def own_fold_scores(self, data, positions, fold, plain, with_tta) -> FoldScores:
        c = data.num_classes
        truth = data.targets[positions]
        iou, iou_tta = box_iou(truth, plain[:, c:]), box_iou(truth, with_tta[:, c:])
        predicted = plain[:, :c].argmax(1)
        oof = pd.DataFrame({"id": data.ids[positions], "label": data.labels[positions], "fold": fold,
                            "pred": predicted, "iou": iou, "iou_tta": iou_tta})
        for k, name in enumerate(("x1", "y1", "x2", "y2")):
            oof[f"box_{name}"] = with_tta[:, c + k].astype("float32")
        extra = {"accuracy": accuracy(data.labels[positions], predicted)}
        return FoldScores(float(iou.mean()), float(iou_tta.mean()), extra, oof)

    def per_sample_scores(self, data, positions, predictions) -> np.ndarray:
        c = data.num_classes
        right = predictions[:, :c].argmax(1) == data.labels[positions]
        return box_iou(data.targets[positions], predictions[:, c:]) * right

    def run_report(self, data, oof, run_dir, plots, shown: int = 16):
        """True (green) and predicted (red) boxes on the first validation images, with their IoU."""
        position_of = {image_id: k for k, image_id in enumerate(data.ids)}
        head = oof.head(shown)
        positions = np.array([position_of[i] for i in head["id"]])
        predicted = head[["box_x1", "box_y1", "box_x2", "box_y2"]].to_numpy()
        localization.plot_boxes(np.asarray(data.images[positions]), data.targets[positions], predicted, plots / "boxes.png")
        return {}, None

    def write_submission(self, cfg, spec, classes, prior, predictions, sample, path):
        c = len(classes)
        predicted = {image_id: (classes[int(row[:c].argmax())], row[c:])
                     for image_id, row in zip(predictions.readable_ids, np.asarray(predictions.values))}
        shapes = image_shapes(predictions.rows)
        frame = box_submission.box_frame(sample, spec, predicted, shapes)
        box_submission.write_box_submission(path, frame, sample, spec, classes, shapes)
        counts = frame[spec.submission_label_column].value_counts()
        return PredictSummary(submission=path, n_rows=len(frame), n_unreadable=predictions.n_unreadable,
                              counts={k: int(v) for k, v in counts.items()},
                              unreadable_note="the sample submission's placeholder row")

    def validate_submission(self, frame, sample, spec, index) -> None:
        box_submission.validate_box_submission(frame, sample, spec, class_names(index, spec, self),
                                image_shapes(test_rows(index)))

    # ---- `make spec` --------------------------------------------------------------------------------------
    spec_form_from_sample = False  # the sample holds a class and a box
    spec_checks_labels = False

    def spec_classes(self, labels):
        return sorted(set(labels))
