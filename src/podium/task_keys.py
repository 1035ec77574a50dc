"""The task names, and what a config and a competition spec may set for each task.

Config validation and `load_competition` check these before anything is built. They sit below both, and
below the task objects (podium.tasks), which read them from here (`Task.keys`): config and data/ never
import the task objects, whose methods reach data/, models/ and training/. Everything a task *does*
(heads, losses, targets, scores, submissions) is in its tasks/<name>.py; a new task is a line here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from podium.errors import PodiumError

TaskName = str  # a key of TASK_KEYS: the shipped tasks, and any a caller registers (podium.tasks.register)
TASK_NAMES: tuple[str, ...] = ("classification", "segmentation", "localization", "multilabel", "regression",
                               "detection")  # shipped


@dataclass(frozen=True)
class TaskKeys:
    logged: tuple[str, ...]  # what model.fit logs (monitor may name these, with or without val_)
    any_monitor: bool = False  # any monitor is accepted (the history decides): older configs monitor what they like
    augments: tuple[str, ...] | None = None  # batch augments that move the target with the image; None: any
    # the targets move with the image (masks, boxes): the loader augments both (Task.pair_augmenter), never the step
    targets_move: bool = False
    tta_views: tuple[str, ...] | None = None  # TTA views whose prediction can be undone; None: any
    class_balancing: bool = False  # cpu_augment, class_weight, oversample_to and pseudo-labels apply
    empty_images: bool = False  # images without objects exist, so keep_empty applies
    needs_labels_csv: bool = True  # targets come from the labels CSV (a folder layout has nowhere to keep them)
    # the spec fields naming the labels CSV's columns beside the id, and the sample submission's (`make spec`)
    label_fields: tuple[str, ...] = ("label_column",)
    submission_fields: tuple[str, ...] = ("submission_id_column", "submission_label_column")
    rows_per_image: Literal["one", "objects"] = "one"  # the labels CSV's rows: one per image, or one per object
    # the registry metric (podium.scoring.registry) scoring the task when its competition's metric cannot
    # (a config training another task than its spec's, in-memory data)
    default_metric: str = "accuracy"
    # registry metrics Keras already logs for the task during fit, and under which name (without val_): a
    # run monitoring one of these needs no per-epoch computation of its own (podium.training.validation)
    native_metrics: tuple[tuple[str, str], ...] = ()
    submission_form: str = "label"  # the submission form when the spec sets none (podium.scoring.forms)
    pixel_layout: bool = False  # a competition may store its images as CSV pixel columns beside one label
    # what a pseudo-label is (podium.runners.pseudo): "labels" one class per image, "sets" a label set per
    # image; "": pseudo-labels do not apply
    pseudo_labels: Literal["", "labels", "sets"] = ""
    flip_warning: bool = False  # `make train` warns when flips may change what a symbol image shows (data.advice)
    calibrated: bool = False  # softmax probabilities: temperature scaling applies (podium.scoring.calibration)
    outputs_like: str = ""  # a registered task whose outputs are this one's: its registry metrics score this one
    # many boxes per image: the spec may name a class_column, a box as one list column ("[x, y, w, h]") and the
    # submission's prediction_string; without a class column its one class is named (classes[0], else "object")
    box_lists: bool = False

    def native_logged(self, metric: str) -> str:
        """`val_<name>` under which fit logs registry metric `metric`; "" when it does not."""
        return next((f"val_{logged}" for name, logged in self.native_metrics if name == metric), "")


TASK_KEYS: dict[str, TaskKeys] = {
    "classification": TaskKeys(logged=("loss", "accuracy"), any_monitor=True, class_balancing=True,
                               needs_labels_csv=False, native_metrics=(("accuracy", "accuracy"),),
                               pixel_layout=True, pseudo_labels="labels", calibrated=True,
                               flip_warning=True),
    # a mask rides through every geometric recipe; each TTA view here is undone on the mask (training.tta)
    "segmentation": TaskKeys(targets_move=True, logged=("loss", "dice", "iou"),
                             augments=("flip", "vflip", "rot90", "crop", "rotation", "zoom", "translation"),
                             tta_views=("identity", "hflip", "vflip", "rot90", "rot180", "rot270", "transpose",
                                        "shift_left", "shift_right", "shift_up", "shift_down"),
                             empty_images=True, label_fields=("rle_column",), rows_per_image="objects",
                             default_metric="dice", native_metrics=(("dice", "dice"), ("mean_iou", "iou")),
                             submission_form="rle"),
    # a box survives flips, quarter turns of the square input and a shift exactly (training.augment_pairs); the
    # flips, turns and transpose are undone on it exactly (training.orientation); a clipped shift or zoom is not
    "localization": TaskKeys(targets_move=True, logged=("loss", "accuracy", "box_iou"),
                             augments=("flip", "vflip", "rot90", "crop"),
                             tta_views=("identity", "hflip", "vflip", "rot90", "rot180", "rot270", "transpose"),
                             label_fields=("label_column", "box_columns"),
                             submission_fields=("submission_id_column", "submission_label_column", "box_columns"),
                             default_metric="mean_iou", submission_form="boxes",
                             native_metrics=(("mean_iou", "box_iou"), ("accuracy", "accuracy"))),
    # Keras' F1Score(micro, 0.5) is micro_f1 but for an image with no class above 0.5 (the fold score gives it
    # its most probable class)
    "multilabel": TaskKeys(logged=("loss", "f1"), default_metric="micro_f1", native_metrics=(("micro_f1", "f1"),),
                           pseudo_labels="sets"),
    # a number of the whole image survives every geometric change that keeps the image whole; zoom changes a
    # share, cutmix/mixup/erasing change what a count or share measures. fit logs rmse/mae of the standardised
    # target (podium.tasks.regression): the target's units times a constant, so the same epoch is best
    "regression": TaskKeys(logged=("loss", "rmse", "mae"), augments=("flip", "vflip", "rot90", "crop", "rotation",
                                                                     "translation", "color"),
                           tta_views=("identity", "hflip", "vflip", "rot90", "rot180", "rot270", "transpose",
                                      "shift_left", "shift_right", "shift_up", "shift_down"),
                           label_fields=("label_column",),
                           submission_fields=("submission_id_column", "submission_label_column"),
                           default_metric="rmse", native_metrics=(("rmse", "rmse"), ("mae", "mae")),
                           submission_form="number"),
    # many boxes per image: each box survives flips, quarter turns and a shift exactly (training.augment_boxes),
    # and each orientation view is undone exactly on the centre maps (models.detection.undo_view). fit logs the
    # loss only: the metric (mAP, F2) is computed per epoch from the decoded boxes (training.validation)
    "detection": TaskKeys(targets_move=True, logged=("loss",), augments=("flip", "vflip", "rot90", "crop"),
                          tta_views=("identity", "hflip", "vflip", "rot90", "rot180", "rot270", "transpose"),
                          label_fields=("box_columns",),
                          submission_fields=("submission_id_column", "submission_label_column"),
                          rows_per_image="objects", default_metric="coco_map", submission_form="prediction_string",
                          box_lists=True),
}


def task_keys(name: str) -> TaskKeys:
    """The keys of task `name`; an unknown name is an error listing the known ones."""
    if name not in TASK_KEYS:
        raise PodiumError(f"Unknown task {name!r}.", expected=f"one of: {', '.join(TASK_KEYS)}", received=repr(name),
                          fix="set task= to one of the listed names")
    return TASK_KEYS[name]


def tasks_where(fact: str) -> list[str]:
    """The task names whose keys have `fact` true, for error messages ("classification-only")."""
    return [name for name, keys in TASK_KEYS.items() if getattr(keys, fact)]


def add_task_keys(name: str, keys: TaskKeys) -> None:
    """A new task's keys (podium.tasks.register calls this): config validation and load_competition accept it."""
    TASK_KEYS[name] = keys


def remove_task_keys(name: str) -> None:
    """Undo add_task_keys (a test's own task leaves the registry as it found it)."""
    if name in TASK_NAMES:
        raise PodiumError(f"Task {name!r} ships with podium and cannot be removed.", expected="a registered task",
                          received=repr(name), fix="remove only a task your code registered")
    TASK_KEYS.pop(name, None)
