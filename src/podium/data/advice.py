"""Warnings about an experiment config that does not fit its data, printed at folds, train and run.

Each one is a mistake users are seen making in Kaggle notebooks, cheap to see from the config, the competition
spec and the index: mirrored digits, tiny images blown up to the backbone's size, a holdout too small to
tell two runs apart, a class 300 times rarer than another, the same TTA view averaged with itself. A
warning never stops a run: the data may be the exception. The one refusal is a spec that says flips change
the meaning (`flip_invariant: false`): then a flip or quarter-turn augment, or a flipped or turned TTA view, is an
error at config load.
"""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd

from podium.catalog import backbone
from podium.data.competitions import load_competition
from podium.data.index import load_index
from podium.errors import PodiumError
from podium.task_keys import TASK_KEYS

# batch recipes and TTA views that mirror or turn the image (podium.training.orientation): a mirrored or turned
# '2', 'b' or '6' is another symbol or none, so flip_invariant: false refuses every one of them
FLIP_AUGMENTS = ("flip", "vflip", "rot90")
FLIP_VIEWS = ("hflip", "vflip", "rot90", "rot180", "rot270", "transpose")
SMALL_SIDE = 64  # px: digits and letters datasets (MNIST 28, SVHN 32, EMNIST 28) are this small
UPSCALE_WARN = 2.0  # image_size / native side at which upscaling is worth a word
NOISE_WARN = 0.05  # 1/sqrt(validation images) above which the holdout cannot separate runs
IMBALANCE_WARN = 10.0  # largest / smallest class


def looks_like_symbols(classes: list[str]) -> bool:
    """Class names that are single digits or letters (0-9, a-z): a mirrored '2' or 'b' is not itself."""
    names = [str(c) for c in classes]
    return len(names) >= 2 and all(len(n) == 1 and n.isalnum() for n in names)


def flip_settings(cfg) -> list[str]:
    """The config's settings that mirror or turn an image: augment recipes and TTA views."""
    return [f"augment {n}" for n in cfg.augment if n in FLIP_AUGMENTS] + \
        [f"tta {n}" for n in cfg.tta if n in FLIP_VIEWS]


def refuse_flips(cfg, spec) -> None:
    """A spec that says mirroring changes the meaning makes a flip in the config an error, naming the fix."""
    used = flip_settings(cfg)
    if spec.flip_invariant is False and used:
        augment = [n for n in cfg.augment if n not in FLIP_AUGMENTS]
        tta = [n for n in cfg.tta if n not in FLIP_VIEWS] or ["identity"]
        raise PodiumError(f"Competition '{spec.slug}' says a mirrored image changes its meaning "
                          f"(flip_invariant: false), and the config mirrors or turns images.",
                          expected="no flip or quarter-turn augment and no flipped or turned TTA view", received=", ".join(used),
                          fix=f"set augment=[{','.join(augment)}] tta=[{','.join(tta)}] (ARGS or the experiment "
                              f"YAML), or flip_invariant: true in the spec if flips are fine after all")


def check_config(cfg) -> None:
    """refuse_flips for a loaded config; a spec that cannot be loaded is left to the stage that needs it."""
    try:
        spec = load_competition(cfg.competition)
    except PodiumError:
        return
    refuse_flips(cfg, spec)


def config_warnings(cfg, spec, index: pd.DataFrame) -> list[str]:
    """Sentences, each with its fix, about what in `cfg` does not suit this competition's data."""
    train = index[(index["split"] == "train") & index["ok"].astype(bool)]
    if train.empty:
        return []
    classes = sorted(str(c) for c in train["label"].unique())
    warnings = []
    for check in (_flip_warning, _upscale_warning, _holdout_warning, _imbalance_warning, _tta_warning):
        message = check(cfg, spec, train, classes)
        if message:
            warnings.append(message)
    return warnings


def index_warnings(cfg) -> list[str]:
    """config_warnings for a config whose `make data` has run; [] when there is no index yet (the stage
    that needs it says so)."""
    from pathlib import Path

    try:
        spec = load_competition(cfg.competition)
        index = load_index(Path(cfg.data_dir) / spec.slug / "index.parquet")
    except PodiumError:
        return []
    return config_warnings(cfg, spec, index)


def _native_side(train: pd.DataFrame) -> tuple[int, int]:
    return int(train["width"].median()), int(train["height"].median())


def _flip_warning(cfg, spec, train, classes) -> str:
    used = flip_settings(cfg)
    if not used or spec.flip_invariant is not None or not TASK_KEYS[cfg.task].flip_warning:
        return ""
    width, height = _native_side(train)
    if not looks_like_symbols(classes) or max(width, height) > SMALL_SIDE:
        return ""
    shown = ", ".join(classes[:10]) + (" ..." if len(classes) > 10 else "")
    return (f"the classes are single characters ({shown}) on small {width}x{height} images: if these are digits or "
            f"letters, a mirrored image is another symbol or none, and the config mirrors them ({', '.join(used)}). "
            f"Fix: augment=[crop] tta=[identity] and flip_invariant: false in the spec (flips then refused); "
            f"flip_invariant: true there if mirrors keep the class")


def _upscale_warning(cfg, spec, train, classes) -> str:
    width, height = _native_side(train)
    side = max(width, height)
    size = cfg.resolved_image_size
    if not side or size / side < UPSCALE_WARN:
        return ""
    factor = size / side
    smallest = backbone(cfg.backbone).min_size
    if cfg.weights.strip().lower() == "none":
        suggest = max(side, smallest)
        why = (f"a model trained from scratch learns nothing from interpolated pixels and pays {factor ** 2:.0f}x "
               f"the compute. Fix: image_size={suggest}" + (f" (the smallest {cfg.backbone} takes)"
                                                              if suggest > side else " (the native size)"))
    else:
        why = (f"pretrained weights often do better on enlarged images (they learned at their own size), at "
               f"{factor ** 2:.0f}x the compute. Compare image_size={max(side, smallest)} or a middle size with "
               f"{size} over seeds before keeping it")
    return f"train images are {width}x{height} px (median), image_size {size} upscales them {factor:.1f}x: {why}"


def _holdout_warning(cfg, spec, train, classes) -> str:
    n = len(train)
    per_fold = n * cfg.val_split if cfg.val_split else n / cfg.n_folds
    scored = int(per_fold * (1 if cfg.val_split else len(cfg.folds)))
    if scored <= 0 or 1 / math.sqrt(scored) <= NOISE_WARN:
        return ""
    noise = 100 / math.sqrt(scored)
    where = f"val_split={cfg.val_split:g}" if cfg.val_split else f"{len(cfg.folds)} of {cfg.n_folds} folds"
    fix = ("val_split=0.2 or more while comparing settings (val_split=0 with more folds for the final model)"
           if cfg.val_split else "train more folds (folds=[0,1,2,3,4]) to score on every image")
    return (f"the validation score rests on {scored} images ({where}): runs that differ by less than about "
            f"{noise:.0f} points (1/sqrt({scored})) are within noise. Fix: {fix}")


def _imbalance_warning(cfg, spec, train, classes) -> str:
    if (not TASK_KEYS[cfg.task].class_balancing or cfg.class_weight != "none" or cfg.oversample_to
            or cfg.loss != "crossentropy"):
        return ""
    counts = Counter(str(label) for label in train["label"])
    (big, most), (small, fewest) = counts.most_common(1)[0], min(counts.items(), key=lambda kv: (kv[1], kv[0]))
    if len(counts) < 2 or most / fewest < IMBALANCE_WARN:
        return ""
    return (f"class '{big}' has {most} images and '{small}' {fewest} ({most / fewest:.0f}:1): plain cross-entropy "
            f"learns to ignore rare classes. Fix: class_weight=balanced, oversample_to={min(most, 500)} or "
            f"loss=focal; judge by per_class.md, not accuracy alone")


def _tta_warning(cfg, spec, train, classes) -> str:
    repeated = sorted(name for name, n in Counter(cfg.tta).items() if n > 1)
    if not repeated:
        return ""
    return (f"TTA view(s) {', '.join(repeated)} appear more than once: averaging a view with itself changes "
            f"nothing but the weight. Fix: tta=[{','.join(dict.fromkeys(cfg.tta))}]")
