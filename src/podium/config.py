"""The one experiment config: dataclass defaults < experiment YAML < `key=value` overrides.

Unknown keys and wrong types are errors at construction, naming the key and what would be valid,
so a typo never silently trains the default (nanoGPT's configurator, timm's args.yaml).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from podium.errors import PodiumError

Schedule = Literal["constant", "piecewise", "plateau", "cosine", "onecycle"]
Optimizer = Literal["adam", "adamw", "sgd"]
Task = Literal["classification", "segmentation", "localization"]

# Keys added after runs existed: at their default they stay out of the config hash, so every run
# folder made before them keeps its id (and `make train` still finds and resumes it).
HASH_NEUTRAL_AT_DEFAULT = ("task", "decoder", "unet_filters", "seg_loss", "box_weight", "prune_core",
                           "prune_threshold", "prune_chunk", "prune_add", "prune_max_epochs",
                           "precision", "jit_compile", "distribute", "keep_empty")


@dataclass
class ExperimentConfig:
    # what and where
    name: str = "baseline"
    competition: str = "demo"
    data_dir: str = "data"
    runs_dir: str = "runs"
    submissions_dir: str = "submissions"
    seed: int = 42
    # validation split: val_split > 0 is one stratified holdout (quick runs, searches);
    # val_split = 0 uses stratified k-fold with n_folds, training the folds listed in `folds`
    n_folds: int = 5
    val_split: float = 0.0
    split_seed: int = 42  # fixed apart from `seed`, so repeating a config over seeds keeps one split
    folds: list[int] = field(default_factory=lambda: [0])
    # task: a head, a loss and a metric (podium.tasks); segmentation monitors val_dice,
    # localization val_box_iou or val_accuracy
    task: Task = "classification"
    decoder: Literal["unet", "residual_unet"] = "unet"  # segmentation: U-Net on the backbone, or seed 002's
    unet_filters: int = 16  # narrowest decoder width (residual_unet: its first level)
    seg_loss: Literal["bce", "dice", "bce_dice", "focal"] = "bce_dice"
    box_weight: float = 1.0  # localization: box loss weight next to the class cross-entropy
    # data pruning (podium prune, seed 002): start from prune_core samples, add failures, retrain
    prune_core: int = 11
    prune_threshold: float = 0.85  # per-sample score the kept set is trained to; a sample under 0.95 x it is kept
    prune_chunk: int = 256  # samples predicted per scan
    prune_add: int = 1  # failures added per round (1: exactly the seed's loop)
    prune_max_epochs: int = 30  # per round, in case the kept set never reaches the threshold
    # model
    backbone: str = "tiny_cnn"
    weights: str = "none"  # imagenet | none | path to a .weights.h5 / .keras file
    image_size: int = 0  # 0: the backbone's default size
    dropout: float = 0.2
    freeze_backbone: bool = False
    unfreeze_epoch: int = 0  # with freeze_backbone: train the head alone until this epoch, then everything
    unfreeze_lr_factor: float = 0.1  # the whole network fine-tunes at lr x this factor
    # optimisation
    epochs: int = 10
    batch_size: int = 64
    optimizer: Optimizer = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: Schedule = "plateau"
    lr_boundaries: list[float] = field(default_factory=list)  # epochs where piecewise steps
    lr_values: list[float] = field(default_factory=list)  # len(lr_boundaries) + 1 values
    warmup_epochs: float = 0.0
    min_lr: float = 1e-6
    plateau_factor: float = 0.3
    plateau_patience: int = 2
    early_stopping_patience: int = 5
    monitor: str = "val_accuracy"
    mode: Literal["max", "min"] = "max"
    label_smoothing: float = 0.0
    # class imbalance
    loss: Literal["crossentropy", "focal"] = "crossentropy"
    focal_gamma: float = 2.0
    class_weight: Literal["none", "balanced"] = "none"
    oversample_to: int = 0  # repeat training images of rarer classes up to this many per class
    keep_empty: float = 1.0  # segmentation: share of empty-mask images kept for training (validation keeps all)
    # augmentation and inference
    augment: list[str] = field(default_factory=lambda: ["flip"])  # batch recipes (Keras layers)
    cpu_augment: str = "none"  # albumentations recipe, per image on the CPU
    tta: list[str] = field(default_factory=lambda: ["identity", "hflip"])
    # segmentation submissions: a pixel is "object" above mask_threshold (after resizing back to the
    # image's own size); connected objects smaller than min_object_pixels are dropped (speckle costs a
    # false positive at every IoU threshold of the Airbus score)
    mask_threshold: float = 0.5
    min_object_pixels: int = 10
    # speed (podium.runtime resolves "auto" against the devices present; docs/speed.md)
    # precision auto: bf16 on a TPU or an A100/H100, fp16 on a T4, float32 on a CPU
    precision: Literal["float32", "mixed_bfloat16", "mixed_float16", "auto"] = "float32"
    jit_compile: bool | None = None  # XLA; None: Keras' "auto"
    distribute: Literal["auto", "none"] = "auto"  # auto: data parallel over every device when there are several
    # plumbing
    workers: int = 1
    verbose: int = 2

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name), _hints()[f.name]))
        self._check_values()

    def _check_values(self) -> None:
        from podium import augment, backbones, tta

        _check_choice("backbone", self.backbone, backbones.names())
        for name in self.augment:
            _check_choice("augment", name, augment.batch_recipe_names())
        _check_choice("cpu_augment", self.cpu_augment, augment.cpu_recipe_names())
        for name in self.tta:
            _check_choice("tta", name, tta.view_names())
        if not 0.0 <= self.val_split < 1.0:
            raise PodiumError("Config key 'val_split' is out of range.", expected="0 <= val_split < 1 "
                              "(0 means k-fold)", received=str(self.val_split), fix="set val_split=0.2, say")
        if self.n_folds < 2:
            raise PodiumError("Config key 'n_folds' is too small.", expected="n_folds >= 2",
                              received=str(self.n_folds), fix="set n_folds=5, say")
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
        if not 0.0 < self.mask_threshold < 1.0 or self.min_object_pixels < 0:
            raise PodiumError("Config keys 'mask_threshold'/'min_object_pixels' are out of range.",
                              expected="0 < mask_threshold < 1 and min_object_pixels >= 0",
                              received=f"mask_threshold={self.mask_threshold}, min_object_pixels="
                                       f"{self.min_object_pixels}", fix="e.g. mask_threshold=0.5 min_object_pixels=10")
        if not 0.0 < self.keep_empty <= 1.0 or (self.keep_empty < 1.0 and self.task != "segmentation"):
            raise PodiumError("Config key 'keep_empty' is out of range or set for a task without masks.",
                              expected="0 < keep_empty <= 1, below 1 only with task=segmentation",
                              received=f"keep_empty={self.keep_empty}, task={self.task}",
                              fix="e.g. keep_empty=0.2 with task=segmentation, or keep_empty=1")
        self._check_task()
        for key in ("epochs", "batch_size", "workers", "unet_filters", "prune_core", "prune_chunk", "prune_add",
                    "prune_max_epochs"):
            if getattr(self, key) < 1:
                raise PodiumError(f"Config key '{key}' must be positive.", expected=">= 1",
                                  received=str(getattr(self, key)), fix=f"set {key} to 1 or more")

    def _check_task(self) -> None:
        from podium import tasks

        tasks.check_monitor(self.task, self.monitor)
        if self.task == "classification":
            return
        from podium.augment_pairs import BOX_RECIPES, GEOMETRIC_RECIPES

        movable = GEOMETRIC_RECIPES if self.task == "segmentation" else BOX_RECIPES
        for key, allowed in (("augment", movable), ("tta", tasks.TTA_VIEWS[self.task])):
            bad = [name for name in getattr(self, key) if name not in allowed]
            if bad:
                raise PodiumError(f"Config key '{key}' holds {bad[0]!r}, which cannot move a {self.task} target.",
                                  expected=f"a subset of: {', '.join(allowed)}", received=str(getattr(self, key)),
                                  fix=f"set {key}=[{','.join(allowed[:2])}]")
        if self.cpu_augment != "none" or self.class_weight != "none" or self.oversample_to:
            raise PodiumError("cpu_augment, class_weight and oversample_to are classification-only.",
                              expected="cpu_augment=none class_weight=none oversample_to=0",
                              received=f"task={self.task}, cpu_augment={self.cpu_augment}, class_weight="
                                       f"{self.class_weight}, oversample_to={self.oversample_to}",
                              fix="reset them, or use task=classification")

    # ---- derived values -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def resolved_image_size(self) -> int:
        from podium import backbones

        return self.image_size or backbones.get(self.backbone).default_size

    def config_hash(self) -> str:
        """Hash of what changes the trained weights; paths, verbosity and inference-time settings do not,
        so `make predict ARGS="tta=[...]"` finds the run that `make train` wrote."""
        ignored = {"data_dir", "runs_dir", "submissions_dir", "verbose", "workers", "folds", "tta",
                   "mask_threshold", "min_object_pixels"}
        defaults = {f.name: f.default for f in dataclasses.fields(ExperimentConfig)}
        payload = {k: v for k, v in self.to_dict().items() if k not in ignored
                   and not (k in HASH_NEUTRAL_AT_DEFAULT and v == defaults[k])}
        return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:8]

    @property
    def run_id(self) -> str:
        return f"{self.name}-{self.config_hash()}"

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.run_id

    @property
    def data_root(self) -> Path:
        from podium.competitions import load_competition

        return Path(self.data_dir) / load_competition(self.competition).slug


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
    return ExperimentConfig(**values)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`key=value` strings; values parse as YAML so `lr=3e-4`, `augment=[flip,crop]` just work."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise PodiumError("An override is not of the form key=value.", expected="key=value, e.g. epochs=5",
                              received=repr(item), fix="write the override as key=value")
        parsed[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return parsed


def save_config(cfg: ExperimentConfig, path: str | Path) -> Path:
    from podium.io import write_yaml

    return write_yaml(path, cfg.to_dict())


# ---- validation helpers ---------------------------------------------------------------------------
def _read_yaml(path: Path) -> dict[str, Any]:
    from podium.io import read_yaml_mapping

    return read_yaml_mapping(path, "Config file", "EXP=configs/demo.yaml", "write one 'key: value' per line")


def _reject_unknown(values: dict[str, Any], source: str) -> None:
    known = [f.name for f in dataclasses.fields(ExperimentConfig)]
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "see configs/ for examples"
            raise PodiumError(f"Unknown config key '{key}' in {source}.",
                              expected=f"one of: {', '.join(known)}", received=repr(key), fix=hint)


def _check_choice(key: str, value: str, choices: list[str]) -> None:
    if value not in choices:
        raise PodiumError(f"Config key '{key}' has an unknown value.", expected=f"one of: {', '.join(choices)}",
                          received=repr(value), fix=f"pick one of the listed values for {key}")


def _hints() -> dict[str, Any]:
    return typing.get_type_hints(ExperimentConfig)


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
