"""The one experiment config: dataclass defaults < experiment YAML < `key=value` overrides.

Unknown keys and wrong types are errors at construction, naming the key and what would be valid,
so a typo never silently trains the default (nanoGPT's configurator, timm's args.yaml).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from podium import catalog
from podium.data.advice import check_config
from podium.data.competitions import load_competition
from podium.errors import PodiumError
from podium.paths import check_folder, check_name
from podium.io import parse_yaml  # a syntax error names the override, line and column
from podium.io import read_yaml_mapping, write_yaml
from podium.scoring.registry import METRICS, Metric, monitor_direction, resolve_metric
from podium.task_keys import TASK_KEYS, TaskName, task_keys, tasks_where

Schedule = Literal["constant", "piecewise", "plateau", "cosine", "onecycle"]
Optimizer = Literal["adam", "adamw", "sgd"]

# How each key takes part in the run id (config_hash), declared beside the field: `role=` of num(...)/key(...)
TRAINS = "trains"  # changes the trained weights: always in the run id (every key not declaring another role)
ADDED_LATER = "added_later"  # added after runs existed: in the run id only away from its default, so every run
#                              folder made before the key keeps its id (and `make train` still finds and resumes it)
PREDICTS = "predicts"  # read at predict time only: changes the submission, never the trained weights. Out of the
#                        run id (so `make predict ARGS="tta=[...]"` finds the run), and put into the submission's
#                        name when it differs from the run's own (podium.submission.record), so every file is
#                        traceable to what made it
PLUMBING = "plumbing"  # paths, verbosity, worker count: out of the run id
ROLES = (TRAINS, ADDED_LATER, PREDICTS, PLUMBING)


@dataclass(frozen=True)
class Range:
    """The values a numeric key accepts, declared beside the field (`num(...)`), so a new numeric key
    cannot be added without one: `_check_ranges` refuses an undeclared numeric field outright."""

    ge: float | None = None  # value >= ge
    gt: float | None = None  # value > gt
    le: float | None = None  # value <= le
    lt: float | None = None  # value < lt
    zero: str = ""  # 0 is accepted too, and means this (image_size=0: the backbone's default)

    def accepts(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.zero and value == 0:
            return True
        return not ((self.ge is not None and value < self.ge) or (self.gt is not None and value <= self.gt)
                    or (self.le is not None and value > self.le) or (self.lt is not None and value >= self.lt))

    def text(self, key: str) -> str:
        low = f"{_num_text(self.ge)} <= " if self.ge is not None else f"{_num_text(self.gt)} < " \
            if self.gt is not None else ""
        high = f" <= {_num_text(self.le)}" if self.le is not None else f" < {_num_text(self.lt)}" \
            if self.lt is not None else ""
        bounded = f"{low}{key}{high}"
        return f"{key} = 0 ({self.zero}) or {bounded}" if self.zero else bounded

    def outside(self) -> float:
        """One value this range refuses (for the test that walks every numeric key)."""
        if self.gt is not None:  # gt=0 that accepts 0 as a word ("off") still refuses a negative
            return self.gt - 1 if self.zero and self.gt == 0 else self.gt
        if self.ge is not None:
            return self.ge - 1
        return (self.le if self.le is not None else self.lt) + 1


def _num_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def num(default: Any, role: str = TRAINS, **bounds: Any) -> Any:
    """A numeric field (or list of numbers) with its accepted range: `lr: float = num(1e-3, gt=0)`."""
    return key(default, role, range=Range(**bounds))


def key(default: Any, role: str = TRAINS, **metadata: Any) -> Any:
    """A field that declares its part in the run id: `tta: list[str] = key([...], PREDICTS)`."""
    if role not in ROLES:
        raise TypeError(f"unknown role {role!r}: one of {ROLES}")
    metadata = {"role": role, **metadata}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


SEED_MAX = 2**32  # numpy's seeds are 32-bit


@dataclass
class ExperimentConfig:
    """Flat keys (one `key: value` per YAML line), read in sections; each declares its range and its role."""

    # ---- what and where ------------------------------------------------------------------------------
    name: str = "baseline"
    competition: str = "demo"
    data_dir: str = key("data", PLUMBING)
    runs_dir: str = key("runs", PLUMBING)
    submissions_dir: str = key("submissions", PLUMBING)
    seed: int = num(42, ge=0, lt=SEED_MAX)

    # ---- validation split ----------------------------------------------------------------------------
    # val_split > 0 is one stratified holdout (quick runs, searches);
    # val_split = 0 uses stratified k-fold with n_folds, training the folds listed in `folds`
    n_folds: int = num(5, ge=2)
    val_split: float = num(0.0, ge=0, lt=1)
    split_seed: int = num(42, ge=0, lt=SEED_MAX)  # fixed apart from `seed`, so repeating a config over seeds keeps one split
    folds: list[int] = num([0], PREDICTS, ge=0)  # also within range(n_folds) (k-fold) or [0] (holdout)

    # ---- task: a head, a loss and a metric (podium.tasks) --------------------------------------------
    task: TaskName = key("classification", ADDED_LATER)
    # the metric the run is scored, checkpointed and searched by (podium.scoring.registry, docs/metrics.md): ""
    # = the competition spec's; a name, "name(k=5)" or {name: map_at_k, k: 5} overrides it (`resolved_metric`)
    metric: str = key("", ADDED_LATER)
    # segmentation: a U-Net on the backbone, or a small residual U-Net trained from scratch
    decoder: Literal["unet", "residual_unet"] = key("unet", ADDED_LATER)
    unet_filters: int = num(16, ADDED_LATER, ge=1)  # narrowest decoder width (residual_unet: its first level)
    seg_loss: Literal["bce", "dice", "bce_dice", "focal"] = key("bce_dice", ADDED_LATER)
    box_weight: float = num(1.0, ADDED_LATER, gt=0)  # localization: box loss weight next to the class cross-entropy
    regression_loss: Literal["mse", "huber"] = key("mse", ADDED_LATER)  # regression: on standardised targets (huber: delta 1 sd)

    # ---- data pruning (podium prune): start from prune_core samples, add failures, retrain -----------
    prune_core: int = num(11, ADDED_LATER, ge=1)
    prune_threshold: float = num(0.85, ADDED_LATER, gt=0, le=1)  # per-sample score the kept set is trained to; a sample under 0.95 x it is kept
    prune_chunk: int = num(256, ADDED_LATER, ge=1)  # window a scan searches for failures (predicted in growing pieces)
    prune_add: int = num(1, ADDED_LATER, ge=1)  # failures added per round (1: one sample per retraining)
    prune_add_share: float = num(0.0, ADDED_LATER, ge=0, le=1)  # or up to this share of the kept set per round, if more (CPU time at large N)
    prune_max_epochs: int = num(30, ADDED_LATER, ge=1)  # per round, in case the kept set never reaches the threshold

    # ---- model ---------------------------------------------------------------------------------------
    backbone: str = "tiny_cnn"
    weights: str = "none"  # imagenet | none | path to a .weights.h5 / .keras file
    image_size: int = num(0, ge=8, le=4096, zero="the backbone's default size")  # also >= the backbone's min_size
    dropout: float = num(0.2, ge=0, lt=1)
    freeze_backbone: bool = False
    unfreeze_epoch: int = num(0, ge=0)  # with freeze_backbone: train the head alone until this epoch, then everything
    # the first layer of a from-scratch airbench_* backbone: "whiten" sets its 2x2 filters to the whitening of the
    # training images' patches and freezes them (the fast CIFAR-10 trainers' trick; podium.training.whitening)
    stem_init: Literal["default", "whiten"] = key("default", ADDED_LATER)
    unfreeze_lr_factor: float = num(0.1, gt=0)  # the whole network fine-tunes at lr x this factor

    # ---- optimisation --------------------------------------------------------------------------------
    epochs: int = num(10, ge=1)  # with time_budget: the upper bound of the planned epochs
    # minutes a `make train` may take, its folds sharing them (podium.training.time_budget, docs/speed.md): the first
    # steps are timed and the epochs that fit planned, the schedule built for them; 0 = off, train `epochs`
    time_budget: float = num(0.0, ADDED_LATER, gt=0, zero="off: train `epochs`")
    batch_size: int = num(64, ge=1)
    optimizer: Optimizer = "adam"
    lr: float = num(1e-3, gt=0)
    weight_decay: float = num(0.0, ge=0)
    momentum: float = num(0.9, ge=0, lt=1)
    schedule: Schedule = "plateau"
    lr_boundaries: list[float] = num([], ge=0)  # epochs where piecewise steps
    lr_values: list[float] = num([], gt=0)  # len(lr_boundaries) + 1 values
    warmup_epochs: float = num(0.0, ge=0)
    min_lr: float = num(1e-6, ge=0)
    plateau_factor: float = num(0.3, gt=0, lt=1)
    plateau_patience: int = num(2, ge=0)
    early_stopping_patience: int = num(5, ge=0)
    # what picks the checkpoint, stops early and lowers the rate: "metric" = the run's metric, logged per epoch
    # as val_<metric> (`resolved_monitor`); or a logged name (val_loss, val_accuracy, ...). mode auto: the
    # metric's direction when monitoring the metric, min for a *loss, else max (`resolved_mode`)
    monitor: str = "metric"
    mode: Literal["max", "min", "auto"] = "auto"
    label_smoothing: float = num(0.0, ge=0, lt=1)
    # an exponential moving average of the weights (Polyak averaging), updated every step with this momentum:
    # validation, the best checkpoint and predictions use the average; 0 = off
    ema: float = num(0.0, ADDED_LATER, ge=0, lt=1)

    # ---- class imbalance -----------------------------------------------------------------------------
    loss: Literal["crossentropy", "focal"] = "crossentropy"
    focal_gamma: float = num(2.0, ge=0)
    class_weight: Literal["none", "balanced"] = "none"
    oversample_to: int = num(0, ge=0)  # repeat training images of rarer classes up to this many per class
    keep_empty: float = num(1.0, ADDED_LATER, gt=0, le=1)  # segmentation: share of empty-mask images kept for training (validation keeps all)

    # ---- pseudo-labels (classification; podium.runners.pseudo, docs/blend-and-report.md) ---------------------
    # the confident test predictions of the finished run `pseudo_run` (its `make predict` output) join the
    # TRAINING part of every fold with the per-sample weight pseudo_weight; validation parts stay the labelled
    # images. Pick them by pseudo_threshold (max probability >= it) or pseudo_top_share (that share of each
    # predicted class, most confident first): exactly one of the two
    pseudo_run: str = key("", ADDED_LATER)  # a run id in runs_dir ("" = no pseudo-labels)
    pseudo_threshold: float = num(0.0, ADDED_LATER, gt=0, le=1, zero="not used")
    pseudo_top_share: float = num(0.0, ADDED_LATER, gt=0, le=1, zero="not used")
    pseudo_weight: float = num(0.5, ADDED_LATER, gt=0, le=1)  # a labelled image weighs 1

    # ---- augmentation --------------------------------------------------------------------------------
    augment: list[str] = key(["flip"])  # batch recipes (Keras layers)
    cpu_augment: str = "none"  # albumentations recipe, per image on the CPU
    # where the batch recipes run: "model" in the compiled train step (layers inside the model, active only in
    # training: podium.training.augment_layers), "loader" on the host batch by batch; "auto" the step when every
    # recipe can run there (catalog.STEP_AUGMENTS) and the task's targets do not move with the image
    augment_in: Literal["auto", "model", "loader"] = key("auto", ADDED_LATER)

    # ---- inference (read at predict time only) -------------------------------------------------------
    tta: list[str] = key(["identity", "hflip"], PREDICTS)
    # segmentation submissions: a pixel is "object" above mask_threshold (after resizing back to the
    # image's own size); connected objects smaller than min_object_pixels are dropped (speckle costs a
    # false positive at every IoU threshold of the Airbus score)
    mask_threshold: float = num(0.5, PREDICTS, gt=0, lt=1)
    min_object_pixels: int = num(10, PREDICTS, ge=0)
    # detection submissions (podium.scoring.box_postprocess): boxes scored at least box_min_score (0: the
    # threshold chosen on the run's out-of-fold maps for the competition's metric), class-aware NMS at
    # box_nms_iou (0: none), at most max_boxes per image
    box_min_score: float = num(0.0, PREDICTS, gt=0, lt=1, zero="chosen on the run's out-of-fold maps")
    box_nms_iou: float = num(0.5, PREDICTS, gt=0, lt=1, zero="no NMS")
    max_boxes: int = num(100, PREDICTS, ge=1)
    # how a detector's TTA views and folds (and a blend's runs) become one: "mean" averages the undone centre
    # maps (one grid: CenterNet's flip test), "wbf" decodes each and fuses the boxes (weighted boxes fusion at
    # IoU wbf_iou, what Kaggle's detection winners used; runs of other image sizes or backbones blend too)
    box_fusion: Literal["mean", "wbf"] = key("wbf", PREDICTS)
    wbf_iou: float = num(0.55, PREDICTS, gt=0, lt=1)
    # predict with folds whose training did not finish (no fold-<k>/metrics.json, e.g. a killed `make
    # train`): refused unless set; the predict summary and the submission's sidecar then name them
    allow_unfinished: bool = key(False, PREDICTS)
    # true: `tta` is used only where the run measured that it helps (its metrics.json: CV with those views vs
    # without, in the metric's direction); where it lowered the CV, predict with the identity view alone
    tta_auto: bool = key(False, PREDICTS)

    # ---- speed (podium.training.runtime resolves "auto" against the devices present; docs/speed.md) -----------
    # precision auto: bf16 on a TPU, an A100/H100 or a CPU with bf16 instructions (TensorFlow), fp16 on a T4, else float32
    precision: Literal["float32", "mixed_bfloat16", "mixed_float16", "auto"] = key("float32", ADDED_LATER)
    jit_compile: bool | None = key(None, ADDED_LATER)  # XLA; None: Keras' "auto"
    distribute: Literal["auto", "none"] = key("auto", ADDED_LATER)  # auto: data parallel over every device when there are several

    # ---- plumbing ------------------------------------------------------------------------------------
    workers: int = num(1, PLUMBING, ge=1)
    # how decoded pixels are held (podium.data.cache; docs/speed.md): disk = the uint8 memmap cache, memory = in
    # RAM, none = decoded batch by batch (streaming); auto = disk when it fits the free space, else memory, else none
    cache: Literal["auto", "disk", "memory", "none"] = key("auto", PLUMBING)
    verbose: int = num(2, PLUMBING, ge=0, le=2)

    def __post_init__(self) -> None:
        if isinstance(self.metric, Mapping):  # {name: map_at_k, k: 5}: kept as its label, map_at_k(k=5)
            self.metric = resolve_metric(self.metric).label
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name), _hints(type(self))[f.name]))
        self._check_ranges()
        self._check_paths()
        self._check_values()

    def _check_ranges(self) -> None:
        """Every numeric key against the range declared beside it, before anything is built or written."""
        for f in dataclasses.fields(self):
            if not _is_numeric(_hints(type(self))[f.name]):
                continue
            bounds = f.metadata.get("range")
            if bounds is None:  # a programming error, not a user's: every numeric key declares its range
                raise TypeError(f"ExperimentConfig.{f.name} is numeric but declares no range: use num(...)")
            value = getattr(self, f.name)
            for item in value if isinstance(value, list) else [value]:
                if not bounds.accepts(item):
                    shown = f"{f.name}={value}" + (f" (the item {item})" if isinstance(value, list) else "")
                    raise PodiumError(f"Config key '{f.name}' is out of range.", expected=bounds.text(f.name),
                                      received=shown, fix=f"set {f.name} within that range (default: {_default(f)})")

    def _check_paths(self) -> None:
        """Names that become folders are one folder name; folder keys are not files (podium.paths)."""
        check_name(self.name, "name")
        if self.pseudo_run:
            check_name(self.pseudo_run, "pseudo_run", "<run-id from runs/>")
        for key in ("data_dir", "runs_dir", "submissions_dir"):
            check_folder(getattr(self, key), key)

    def _check_values(self) -> None:
        task_keys(self.task)  # an unknown task: the error listing the registered ones (podium.tasks.register)
        for key, choices in catalog.CHOICES.items():  # names only: no keras to validate a config
            value = getattr(self, key)
            for name in value if isinstance(value, list) else [value]:
                _check_choice(key, name, list(choices))
        smallest = catalog.backbone(self.backbone).min_size
        if self.image_size and self.image_size < smallest:
            raise PodiumError(f"Config key 'image_size' is too small for backbone {self.backbone}.",
                              expected=f"image_size >= {smallest}, or 0 for the backbone's default",
                              received=f"image_size={self.image_size}", fix=f"set image_size={smallest} or more")
        valid_folds = [0] if self.val_split else list(range(self.n_folds))
        bad = [k for k in self.folds if k not in valid_folds]
        if bad or not self.folds:
            raise PodiumError("Config key 'folds' names folds that do not exist.",
                              expected=f"a non-empty subset of {valid_folds}", received=str(self.folds),
                              fix="with val_split > 0 use folds=[0]; otherwise folds within range(n_folds)")
        if self.schedule == "piecewise" and len(self.lr_values) != len(self.lr_boundaries) + 1:
            raise PodiumError("A piecewise schedule needs one more value than boundaries.",
                              expected="len(lr_values) == len(lr_boundaries) + 1",
                              received=f"lr_boundaries={self.lr_boundaries}, lr_values={self.lr_values}",
                              fix="e.g. lr_boundaries=[5,8] lr_values=[1e-3,1e-4,1e-5]")
        if self.unfreeze_epoch and not (self.freeze_backbone and 0 < self.unfreeze_epoch < self.epochs):
            raise PodiumError("Config key 'unfreeze_epoch' needs a frozen backbone and a later epoch to train.",
                              expected="freeze_backbone=true and 0 < unfreeze_epoch < epochs",
                              received=f"freeze_backbone={self.freeze_backbone}, unfreeze_epoch="
                                       f"{self.unfreeze_epoch}, epochs={self.epochs}",
                              fix="set freeze_backbone=true, or unfreeze_epoch=0 to keep one phase")
        if self.keep_empty < 1.0 and not TASK_KEYS[self.task].empty_images:
            masks = "|".join(tasks_where("empty_images"))
            raise PodiumError("Config key 'keep_empty' is set for a task without masks.",
                              expected=f"0 < keep_empty <= 1, below 1 only with task={masks}",
                              received=f"keep_empty={self.keep_empty}, task={self.task}",
                              fix=f"e.g. keep_empty=0.2 with task={masks}, or keep_empty=1")
        self._check_pseudo()
        self._check_task()
        self._check_augment_in()

    def _check_pseudo(self) -> None:
        chosen = [k for k in ("pseudo_threshold", "pseudo_top_share") if getattr(self, k)]
        if not self.pseudo_run:
            if chosen or self.pseudo_weight != 0.5:
                raise PodiumError("Pseudo-label settings are given without pseudo_run.",
                                  expected="pseudo_run=<run-id> with pseudo_threshold or pseudo_top_share",
                                  received=f"pseudo_run='', {', '.join(f'{k}={getattr(self, k)}' for k in chosen)}"
                                           f"{', ' if chosen else ''}pseudo_weight={self.pseudo_weight}",
                                  fix="name the finished run whose test predictions to use: pseudo_run=<run-id>")
            return
        if len(chosen) != 1:
            raise PodiumError("Pseudo-labels need one rule to pick confident test images.",
                              expected="exactly one of pseudo_threshold (e.g. 0.9) or pseudo_top_share (e.g. 0.2)",
                              received=f"pseudo_threshold={self.pseudo_threshold}, "
                                       f"pseudo_top_share={self.pseudo_top_share}",
                              fix="set pseudo_threshold=0.9, or pseudo_top_share=0.2 (and the other to 0)")
        if not TASK_KEYS[self.task].pseudo_labels:  # one label, or one label set, per image
            only = "|".join(tasks_where("pseudo_labels"))
            raise PodiumError(f"Pseudo-labels are {only}-only; this config trains {self.task}.",
                              expected=f"task={only} with pseudo_run",
                              received=f"task={self.task}, pseudo_run={self.pseudo_run}",
                              fix="remove pseudo_run: a mask's or a box's confidence is not one probability per "
                                  "image, so podium does not pick pseudo-labels for segmentation or localization")

    def _check_task(self) -> None:
        """What the task allows (podium.task_keys): a monitor it logs; augments and TTA views that move its target
        with the image; class balancing only where a class is one label per image."""
        keys = TASK_KEYS[self.task]
        if self.metric:
            metric = resolve_metric(self.metric)  # an unknown name or parameter: the error naming the valid ones
            _check_metric_task(metric, self.task, "Config key 'metric'")
            self.metric = metric.label
        scorable = [f"val_{name}" for name, entry in METRICS.items() if entry.scores(self.task)]
        names = ["metric"] + [f"{prefix}{name}" for prefix in ("val_", "") for name in keys.logged]
        if not keys.any_monitor and self.monitor not in names + scorable:
            raise PodiumError(f"monitor={self.monitor!r} is not logged by task={self.task}.",
                              expected=f"one of: {', '.join(dict.fromkeys(names + scorable))}",
                              received=repr(self.monitor), fix="set monitor=metric (the run's metric, mode=auto)")
        for key, allowed in (("augment", keys.augments), ("tta", keys.tta_views)):
            bad = [name for name in getattr(self, key) if allowed is not None and name not in allowed]
            if bad:
                raise PodiumError(f"Config key '{key}' holds {bad[0]!r}, which cannot move a {self.task} target.",
                                  expected=f"a subset of: {', '.join(allowed)}", received=str(getattr(self, key)),
                                  fix=f"set {key}=[{','.join(allowed[:2])}]")
        if not keys.class_balancing and (self.cpu_augment != "none" or self.class_weight != "none"
                                         or self.oversample_to):
            only = "|".join(tasks_where("class_balancing"))
            raise PodiumError(f"cpu_augment, class_weight and oversample_to are {only}-only.",
                              expected="cpu_augment=none class_weight=none oversample_to=0",
                              received=f"task={self.task}, cpu_augment={self.cpu_augment}, class_weight="
                                       f"{self.class_weight}, oversample_to={self.oversample_to}",
                              fix=f"reset them, or use task={only}")

    def _check_augment_in(self) -> None:
        if self.augment_in == "model" and self.augment and self.resolved_augment_in != "model":
            movers = TASK_KEYS[self.task].targets_move
            raise PodiumError("Config key augment_in=model, but this augmentation cannot run in the train step.",
                              expected=f"augment a subset of [{', '.join(catalog.STEP_AUGMENTS)}] and a task whose "
                                       "targets do not move with the image (classification, multilabel, regression)",
                              received=f"augment={self.augment}, task={self.task}"
                                       + (" (its targets move with the image)" if movers else ""),
                              fix="set augment_in=auto (the loader runs what the step cannot)")

    # ---- derived values -------------------------------------------------------------------------
    @property
    def resolved_augment_in(self) -> str:
        """Where the batch recipes run: "model" (the train step) or "loader" (the host). auto: the step when every
        recipe can run there and the task's targets stay put (TaskKeys.targets_move: masks, boxes)."""
        if self.augment_in == "loader" or not self.augment:
            return "loader"
        fits = all(name in catalog.STEP_AUGMENTS for name in self.augment) and not TASK_KEYS[self.task].targets_move
        return "model" if fits else "loader"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def resolved_image_size(self) -> int:
        return self.image_size or catalog.backbone(self.backbone).default_size

    @property
    def resolved_metric(self) -> Metric:
        """The config's `metric`, else the competition spec's, else (a spec of another task than the config's,
        e.g. in-memory data) the task's own default (podium.task_keys)."""
        if self.metric:
            return resolve_metric(self.metric)
        spec = load_competition(self.competition)
        if spec.task == self.task:
            return spec.resolved_metric
        return resolve_metric(TASK_KEYS[self.task].default_metric)

    @property
    def metric_logged(self) -> str:
        """Where the metric's per-epoch validation score is in Keras' logs and history.csv: the name fit logs
        it under natively (val_accuracy, val_f1, val_dice, val_box_iou), else val_<metric>, written by
        podium.training.validation's callback."""
        metric = self.resolved_metric
        return TASK_KEYS[self.task].native_logged(metric.name) or metric.logged

    @property
    def resolved_monitor(self) -> str:
        """The logged value the checkpoint, early stopping and the plateau schedule watch. Only monitor=metric
        needs the competition spec."""
        if self.monitor == "metric":
            return self.metric_logged
        if self.monitor.startswith("val_") and self.monitor[4:] in METRICS:  # val_micro_f1: fit logs val_f1
            return TASK_KEYS[self.task].native_logged(self.monitor[4:]) or self.monitor
        return self.monitor

    @property
    def resolved_mode(self) -> str:
        """mode, with auto resolved: the metric's direction when monitoring a metric, min for a loss, else max.
        Only monitor=metric needs the competition spec (a direction does not depend on parameters)."""
        if self.mode != "auto":
            return self.mode
        if self.monitor == "metric":
            return self.resolved_metric.mode
        return monitor_direction(self.monitor)

    def config_hash(self) -> str:
        """Hash of what changes the trained weights (each key's role, declared beside it); paths, verbosity
        and inference-time settings do not, so `make predict ARGS="tta=[...]"` finds the run that `make
        train` wrote. monitor and mode enter resolved ("metric" of an accuracy competition is val_accuracy,
        max): a run made before they resolved keeps its id."""
        payload = {}
        for f in dataclasses.fields(self):
            value, role = getattr(self, f.name), role_of(f)
            if role == TRAINS or (role == ADDED_LATER and value != _default(f)):
                payload[f.name] = value
        payload["monitor"], payload["mode"] = self.resolved_monitor, self.resolved_mode
        return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:8]

    @property
    def run_id(self) -> str:
        return f"{self.name}-{self.config_hash()}"

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.run_id

    @property
    def data_root(self) -> Path:
        return Path(self.data_dir) / load_competition(self.competition).slug


def role_of(f: dataclasses.Field) -> str:
    """A field's part in the run id; a key that declares none changes the trained weights."""
    return f.metadata.get("role", TRAINS)


def keys_with_role(role: str) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(ExperimentConfig) if role_of(f) == role)


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


PLUMBING_KEYS = keys_with_role(PLUMBING)  # differ between machines and runs by design (podium.reports.html)
PREDICTION_KEYS = keys_with_role(PREDICTS)  # name a submission made with other settings (podium.submission.record)
# The settings an inference kernel takes from the config it is rendered from (podium.kaggle.kernels) over its
# package's: the predict-time keys except those the package already fixed (package_run keeps only the folds
# used, refuses unfinished ones unless allowed, and writes the measured views with tta_auto off), plus
# batch_size, which trains (so it is the packaged run's) and is the batch the kernel predicts in.
FIXED_IN_PACKAGE = ("folds", "allow_unfinished", "tta_auto")
INFERENCE_KEYS = tuple(k for k in PREDICTION_KEYS if k not in FIXED_IN_PACKAGE) + ("batch_size",)


def load_config(path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None
                ) -> ExperimentConfig:
    """Resolve one config with the stated precedence: defaults < YAML file < overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_read_yaml(Path(path)))
    if isinstance(overrides, dict):
        values.update(overrides)
    else:
        values.update(parse_overrides(overrides or []))
    _reject_unknown(values, source=str(path) if path else "overrides")
    cfg = ExperimentConfig(**values)
    check_config(cfg)  # a spec with flip_invariant: false refuses flips in every stage, search and kernel too
    return cfg


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`key=value` strings; values parse as YAML so `lr=3e-4`, `augment=[flip,crop]` just work."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise PodiumError("An override is not of the form key=value.", expected="key=value, e.g. epochs=5",
                              received=repr(item), fix="write the override as key=value")
        parsed[key.strip()] = parse_yaml(raw, f"Override {item!r}") if raw.strip() else ""
    return parsed


def save_config(cfg: ExperimentConfig, path: str | Path) -> Path:
    return write_yaml(path, cfg.to_dict())


# ---- validation helpers ---------------------------------------------------------------------------
def _read_yaml(path: Path) -> dict[str, Any]:
    return read_yaml_mapping(path, "Config file", "EXP=configs/demo.yaml", "write one 'key: value' per line")


def _reject_unknown(values: dict[str, Any], source: str) -> None:
    known = [f.name for f in dataclasses.fields(ExperimentConfig)]
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "see configs/ for examples"
            raise PodiumError(f"Unknown config key '{key}' in {source}.",
                              expected=f"one of: {', '.join(known)}", received=repr(key), fix=hint)


def _check_metric_task(metric: Metric, task: str, where: str) -> None:
    if not metric.spec.scores(task):
        fits = [name for name, entry in METRICS.items() if entry.scores(task)]
        raise PodiumError(f"{where}: metric {metric.label} cannot score task {task}.",
                          expected=f"a metric of {task}: {', '.join(fits)}", received=f"metric={metric.label}",
                          fix=f"set metric= one of those, or leave it empty for the competition's metric")


def _check_choice(key: str, value: str, choices: list[str]) -> None:
    if value not in choices:
        raise PodiumError(f"Config key '{key}' has an unknown value.", expected=f"one of: {', '.join(choices)}",
                          received=repr(value), fix=f"pick one of the listed values for {key}")


def _is_numeric(hint: Any) -> bool:
    """int/float keys and lists of them (bool is not a number here)."""
    if typing.get_origin(hint) is list:
        hint = typing.get_args(hint)[0]
    return hint in (int, float)


@functools.lru_cache(maxsize=None)
def _hints(cls: type = None) -> dict[str, Any]:
    return typing.get_type_hints(cls or ExperimentConfig)


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check `value` against the annotation; widen int->float only. Raise naming the key."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = list(typing.get_args(hint))
        _check_choice(key, value, choices)
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(key, value, args[0])
    if origin is list:
        (item_type,) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            value = [value]  # `augment=flip` means a list of one
        return [_coerce(key, v, item_type) for v in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads `1e-3` as a string
        except ValueError:
            pass
    if hint is bool and not isinstance(value, bool) or not isinstance(value, hint) \
            or (hint is int and isinstance(value, bool)):
        raise PodiumError(f"Config key '{key}' has the wrong type.", expected=hint.__name__,
                          received=f"{value!r} ({type(value).__name__})",
                          fix=f"set {key} to a {hint.__name__}")
    return value
