"""A task is a head, a loss, a metric and a way to undo TTA views: classification, segmentation and
localization differ only here, so train_and_evaluate, the registry, checkpoints and TTA stay one.

Each task says which metric names it logs (what `monitor` may name), what a batch's target is, how
the fold's predictions become the one validation score, and what goes into oof.parquet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from podium.errors import PodiumError

TASK_NAMES = ("classification", "segmentation", "localization")
LOGGED = {"classification": ("loss", "accuracy"), "segmentation": ("loss", "dice", "iou"),
          "localization": ("loss", "accuracy", "box_iou")}
# the logged metric that tracks the fold score (what a search's pruner watches per epoch)
SCORE_LOGGED = {"classification": "val_accuracy", "segmentation": "val_dice", "localization": "val_box_iou"}
TTA_VIEWS = {"segmentation": ("identity", "hflip", "shift_left", "shift_right", "shift_up", "shift_down"),
             "localization": ("identity", "hflip")}


@dataclass(frozen=True)
class FoldScores:
    plain: float  # the task's validation score without TTA
    with_tta: float
    extra: dict  # further numbers worth a look (e.g. Airbus F2, accuracy), no TTA
    oof: pd.DataFrame  # one row per validation image


def logged_metric_names(task: str) -> tuple[str, ...]:
    return LOGGED[task]


def check_monitor(task: str, monitor: str) -> None:
    """Classification keeps accepting any name (history decides); the new tasks know theirs up front."""
    if task == "classification":
        return
    names = [f"{prefix}{name}" for prefix in ("val_", "") for name in LOGGED[task]]
    if monitor not in names:
        raise PodiumError(f"monitor={monitor!r} is not logged by task={task}.", expected=f"one of: {', '.join(names)}",
                          received=repr(monitor), fix=f"set monitor=val_{LOGGED[task][1]} (mode=max)")


def build_model(cfg, num_classes: int):
    if cfg.task == "segmentation":
        from podium.segmentation import build_segmenter

        return build_segmenter(cfg)
    if cfg.task == "localization":
        from podium.localization import build_localizer

        return build_localizer(cfg, num_classes)
    from podium.models import build_classifier

    return build_classifier(cfg, num_classes)


def compile_arguments(cfg, num_classes: int) -> dict:
    """loss and metrics for model.compile (the optimizer is the schedules module's business)."""
    if cfg.task == "segmentation":
        from podium.seg_losses import make_seg_loss, seg_metrics

        return {"loss": make_seg_loss(cfg.seg_loss, cfg.focal_gamma), "metrics": seg_metrics()}
    if cfg.task == "localization":
        from podium.localization import ClassAndBoxLoss, localization_metrics

        return {"loss": ClassAndBoxLoss(num_classes, cfg.box_weight), "metrics": localization_metrics(num_classes)}
    from podium.train import make_loss

    return {"loss": make_loss(cfg), "metrics": ["accuracy"]}


def batch_targets(cfg, data) -> np.ndarray | None:
    """What ImageBatches yields as y; None: classification's one-hot labels."""
    if cfg.task == "classification":
        return None
    if data.targets is None:
        raise PodiumError(f"task={cfg.task} needs per-image targets, and the data has none.",
                          expected="masks (N,S,S,1) for segmentation, boxes (N,4) for localization",
                          received="LabeledData.targets=None",
                          fix="build the data with podium.data.dataset.in_memory_data(..., targets=...)")
    if cfg.task == "localization":
        from podium.localization import targets

        return targets(data.labels, data.targets, data.num_classes)
    return data.targets


def view_inverter(task: str) -> Callable[[str, np.ndarray], np.ndarray] | None:
    """How a prediction made on a TTA view is mapped back to the original image's frame."""
    if task == "segmentation":
        from podium.tta import undo_view

        return undo_view
    if task == "localization":
        from podium.localization import unflip_predictions

        return unflip_predictions
    return None


OOF_OUTPUTS = "oof_outputs.npy"  # beside oof.parquet: a fold's raw TTA outputs, row for row (what a blend averages)


def save_oof_outputs(task: str, fold_dir, with_tta: np.ndarray) -> None:
    """Localization's class probabilities + box, segmentation's mask probabilities (float16: half the disk,
    ample for a 0.5 threshold), in oof.parquet's row order; classification's are its prob_<class> columns."""
    if task == "classification":
        return
    from pathlib import Path

    from podium.io import atomic_path

    with atomic_path(Path(fold_dir) / OOF_OUTPUTS) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.asarray(with_tta, dtype="float16" if task == "segmentation" else "float32"))


def fold_scores(task: str, data, positions: np.ndarray, fold: int, plain: np.ndarray,
                with_tta: np.ndarray) -> FoldScores:
    if task == "segmentation":
        from podium import seg_scores

        truth = data.targets[positions]
        dice, iou = seg_scores.dice_per_image(truth, plain), seg_scores.iou_per_image(truth, plain)
        oof = pd.DataFrame({"id": data.ids[positions], "fold": fold, "dice": dice, "iou": iou,
                            "dice_tta": seg_scores.dice_per_image(truth, with_tta)})
        extra = {"iou": float(iou.mean()), "airbus_f2": seg_scores.airbus_score(truth, plain),
                 "stepped_iou": float(seg_scores.stepped_iou_per_image(truth, plain).mean())}
        return FoldScores(float(dice.mean()), float(oof["dice_tta"].mean()), extra, oof)
    if task == "localization":
        from podium.localization import box_iou

        c = data.num_classes
        truth = data.targets[positions]
        iou, iou_tta = box_iou(truth, plain[:, c:]), box_iou(truth, with_tta[:, c:])
        predicted = plain[:, :c].argmax(1)
        oof = pd.DataFrame({"id": data.ids[positions], "label": data.labels[positions], "fold": fold,
                            "pred": predicted, "iou": iou, "iou_tta": iou_tta})
        for k, name in enumerate(("x1", "y1", "x2", "y2")):
            oof[f"box_{name}"] = with_tta[:, c + k].astype("float32")
        extra = {"accuracy": float((predicted == data.labels[positions]).mean())}
        return FoldScores(float(iou.mean()), float(iou_tta.mean()), extra, oof)
    if task == "classification":
        labels = data.labels[positions]
        oof = pd.DataFrame({"id": data.ids[positions], "label": labels, "fold": fold,
                            "pred": plain.argmax(1), "pred_tta": with_tta.argmax(1)})
        for k, name in enumerate(data.classes):
            oof[f"prob_{name}"] = with_tta[:, k].astype("float32")
        return FoldScores(float((oof["pred"] == labels).mean()), float((oof["pred_tta"] == labels).mean()),
                          {}, oof)
    raise PodiumError(f"No fold scores for task {task!r}.", expected="classification, segmentation or "
                      "localization", received=repr(task), fix="set task= to one of those")
