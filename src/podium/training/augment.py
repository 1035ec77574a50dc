"""Named augmentation recipes: batch recipes (Keras 3 layers, whole batch on the accelerator) and CPU
recipes (albumentations, one uint8 image at a time); a preview grid to see what a recipe does.

Batch recipes use `keras`/`keras.ops` only, so they run unchanged under KERAS_BACKEND=jax. Batches are
float32 0..255 (B,S,S,3) with one-hot float32 labels (B,C); recipes that mix images (mixup, cutmix) mix
the labels with the same weights, which is why the augmenter takes and returns both.

Keras layer semantics worth knowing (Keras 3.15, read from its source):
- `RandomCrop` crops every image of a batch at the *same* location, and outside training it *resizes*
  (centre crop + resize) instead of cropping; it cannot do the CIFAR pad-and-crop. "crop" is therefore
  `TranslateCrop` (podium.training.augment_layers): reflect-pad by ~S/8 and crop back to S at a per-image offset.
- `RandomFlip` defaults to horizontal *and* vertical; "flip" asks for horizontal only. "vflip" and "rot90"
  (top-down images) are `RandomOrientation` (augment_layers), whole-batch keras.ops, not Keras' layers.

This module is the loader's side (BatchAugmenter, on the host, batch by batch). When config key `augment_in`
puts the chain in the train step instead, the model holds augment_layers.TrainAugment and the loader gets none.
- `MixUp`/`CutMix` mix labels only when called with a dict {"images", "labels"}; called on images alone
  they silently leave the labels unmixed. They also write the result into the dict they are given.
- `RandomSaturation` is a no-op at factor 0.5 (not 0), and a single float f samples in [0, f]: 0.2 would
  mostly *desaturate*. `RandomErasing`'s default factor=1.0 samples the erase probability in [0, 1],
  i.e. ~50% on average. `RandAugment` picks its ops once per *batch*, not per image.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
from keras import ops

from podium import catalog
from podium.errors import PodiumError
from podium.extras import require
from podium.figures import new_figure, save_png
from podium.training.augment_layers import FLOAT, STEP_RECIPES, derive_seed

VALUE_RANGE = (0, 255)
ORIGINAL = "original"  # preview-grid row name for the untouched images


# ---- batch recipes ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchRecipe:
    build: Callable[[int, int], keras.layers.Layer]  # (image_size, seed) -> a fresh layer
    mixes_labels: bool = False


BATCH_RECIPES: dict[str, BatchRecipe] = {
    "flip": BatchRecipe(lambda size, seed: keras.layers.RandomFlip("horizontal", seed=seed, dtype=FLOAT)),
    # the same layers the train step runs (augment_layers.STEP_RECIPES); "flip" stays Keras' own on the host
    "vflip": BatchRecipe(STEP_RECIPES["vflip"]),
    "rot90": BatchRecipe(STEP_RECIPES["rot90"]),
    "crop": BatchRecipe(STEP_RECIPES["crop"]),
    "rotation": BatchRecipe(lambda size, seed: keras.layers.RandomRotation(
        factor=15 / 360, fill_mode="reflect", seed=seed, dtype=FLOAT)),  # factor is a fraction of 2*pi
    "zoom": BatchRecipe(lambda size, seed: keras.layers.RandomZoom(
        height_factor=(-0.15, 0.15), fill_mode="reflect", seed=seed, dtype=FLOAT)),
    "translation": BatchRecipe(lambda size, seed: keras.layers.RandomTranslation(
        height_factor=0.125, width_factor=0.125, fill_mode="reflect", seed=seed, dtype=FLOAT)),
    "color": BatchRecipe(lambda size, seed: keras.layers.RandomColorJitter(
        value_range=VALUE_RANGE, brightness_factor=0.2, contrast_factor=0.2,
        saturation_factor=(0.3, 0.7), hue_factor=0.05, seed=seed, dtype=FLOAT)),
    "randaugment": BatchRecipe(lambda size, seed: keras.layers.RandAugment(
        value_range=VALUE_RANGE, num_ops=2, factor=0.5, seed=seed, dtype=FLOAT)),
    "mixup": BatchRecipe(lambda size, seed: keras.layers.MixUp(alpha=0.2, seed=seed, dtype=FLOAT),
                         mixes_labels=True),
    "cutmix": BatchRecipe(lambda size, seed: keras.layers.CutMix(factor=1.0, seed=seed, dtype=FLOAT),
                          mixes_labels=True),
    "erasing": BatchRecipe(lambda size, seed: keras.layers.RandomErasing(
        factor=(0.5, 0.5), scale=(0.02, 0.2), value_range=VALUE_RANGE, seed=seed, dtype=FLOAT)),
}


def batch_recipe_names() -> list[str]:
    return list(catalog.BATCH_AUGMENTS)  # BATCH_RECIPES' keys (tests/test_catalog.py)


class BatchAugmenter:
    """A chain of batch layers applied in order with training=True; returns numpy float32 0..255.

    Numpy out because the consumer is a PyDataset whose batches Keras moves to the device itself.
    """

    def __init__(self, names: Sequence[str], image_size: int, seed: int):
        self.names = list(names)
        self.image_size = image_size
        self.steps = [(BATCH_RECIPES[name], BATCH_RECIPES[name].build(image_size, derive_seed(seed, i)))
                      for i, name in enumerate(self.names)]

    def __repr__(self) -> str:
        return f"BatchAugmenter({self.names}, image_size={self.image_size})"

    def __call__(self, images, labels=None):
        self._check_batch(images, labels)
        images = ops.convert_to_tensor(images, dtype=FLOAT)
        labels = None if labels is None else ops.convert_to_tensor(labels, dtype=FLOAT)
        for recipe, layer in self.steps:
            if recipe.mixes_labels:
                mixed = layer({"images": images, "labels": labels}, training=True)
                images, labels = mixed["images"], mixed["labels"]
            else:
                images = layer(images, training=True)
        images = ops.clip(ops.cast(images, FLOAT), *VALUE_RANGE)  # interpolation/noise can overshoot
        labels = None if labels is None else ops.convert_to_numpy(ops.cast(labels, FLOAT))
        return ops.convert_to_numpy(images), labels

    def _check_batch(self, images, labels) -> None:
        shape = tuple(images.shape)
        size = self.image_size
        if len(shape) != 4 or shape[1:] != (size, size, 3):
            raise PodiumError("A batch given to the batch augmenter has the wrong shape.",
                              expected=f"(batch, {size}, {size}, 3) float32 pixels 0..255",
                              received=str(shape), fix="build the augmenter with the batches' image_size")
        needs_labels = [n for n, (recipe, _) in zip(self.names, self.steps) if recipe.mixes_labels]
        if needs_labels and labels is None:
            raise PodiumError(f"Recipes {needs_labels} mix labels, but no labels were given.",
                              expected="augmenter(images, one_hot_labels)", received="labels=None",
                              fix="pass the batch's one-hot labels")
        if labels is not None and (len(labels.shape) != 2 or labels.shape[0] != shape[0]):
            raise PodiumError("Labels given to the batch augmenter are not one-hot rows per image.",
                              expected=f"({shape[0]}, num_classes) float32", received=str(tuple(labels.shape)),
                              fix="one-hot encode the labels before augmenting")


def make_batch_augmenter(names: Sequence[str], image_size: int, seed: int) -> BatchAugmenter | None:
    """None for no recipes, so callers can skip the augmentation step (and its host<->device copies)."""
    _check_names(list(names), batch_recipe_names(), "batch augmentation recipe", "augment")
    if not names:
        return None
    return BatchAugmenter(names, image_size, seed)


# ---- CPU recipes (albumentations) ---------------------------------------------------------------
def _light() -> list:
    A = require("albumentations")
    import cv2

    return [A.HorizontalFlip(p=0.5),
            A.Affine(translate_percent=(-0.0625, 0.0625), scale=(0.9, 1.1), rotate=(-10, 10),
                     border_mode=cv2.BORDER_REFLECT_101, p=0.5)]


def _colour_and_dropout(strength: float) -> list:
    A = require("albumentations")

    return [A.RandomBrightnessContrast(brightness_limit=0.2 * strength, contrast_limit=0.2 * strength, p=0.5),
            A.HueSaturationValue(hue_shift_limit=10 * strength, sat_shift_limit=20 * strength,
                                 val_shift_limit=10 * strength, p=0.5),
            A.CoarseDropout(num_holes_range=(1, round(strength)), hole_height_range=(0.1, 0.25),
                            hole_width_range=(0.1, 0.25), fill=0, p=0.5)]


def _medium() -> list:
    return _light() + _colour_and_dropout(1.0)


def _heavy() -> list:
    A = require("albumentations")
    import cv2

    return [A.HorizontalFlip(p=0.5),
            A.Affine(translate_percent=(-0.1, 0.1), scale=(0.75, 1.25), rotate=(-25, 25), shear=(-8, 8),
                     border_mode=cv2.BORDER_REFLECT_101, p=0.8),
            *_colour_and_dropout(1.5),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 5)),
                     A.GaussNoise(std_range=(0.02, 0.08))], p=0.5)]


CPU_RECIPES: dict[str, Callable[[], list] | None] = {
    "none": None, "light": _light, "medium": _medium, "heavy": _heavy,
}


def cpu_recipe_names() -> list[str]:
    return list(catalog.CPU_AUGMENTS)  # CPU_RECIPES' keys (tests/test_catalog.py)


class CpuAugmenter:
    """One albumentations Compose, seeded, applied to one uint8 HxWx3 image; size is kept."""

    def __init__(self, name: str, image_size: int, seed: int):
        A = require("albumentations")

        self.name, self.image_size = name, image_size
        self.compose = A.Compose(CPU_RECIPES[name](), seed=int(seed))

    def __repr__(self) -> str:
        return f"CpuAugmenter({self.name!r}, image_size={self.image_size})"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        size = self.image_size
        if image.dtype != np.uint8 or image.shape != (size, size, 3):
            raise PodiumError("An image given to the CPU augmenter has the wrong shape or type.",
                              expected=f"uint8 array ({size}, {size}, 3)",
                              received=f"{image.dtype} {tuple(image.shape)}",
                              fix="augment the cached uint8 images, before float conversion")
        return self.compose(image=image)["image"]


def make_cpu_augmenter(name: str, image_size: int, seed: int) -> CpuAugmenter | None:
    """None for "none", so the pipeline skips the per-image Python loop entirely."""
    _check_names([name], cpu_recipe_names(), "CPU augmentation recipe", "cpu_augment")
    if CPU_RECIPES[name] is None:
        return None
    return CpuAugmenter(name, image_size, seed)


# ---- cost and preview ---------------------------------------------------------------------------
def augmentation_cost(recipes: str | Sequence[str], images_uint8: np.ndarray, *, seed: int = 0,
                      repeats: int = 3) -> float:
    """Images per second of a recipe on this batch, after one untimed warm-up call (tracing, building).

    A str names one batch or CPU recipe; a list is a batch chain. math.inf for a recipe that does nothing.
    """
    images_uint8 = _check_preview_images(images_uint8)
    names = [recipes] if isinstance(recipes, str) else list(recipes)
    if len(names) == 1 and names[0] in CPU_RECIPES:
        return _cpu_cost(names[0], images_uint8, seed, repeats)
    _check_names(names, batch_recipe_names(), "batch augmentation recipe", "augment")
    augmenter = make_batch_augmenter(names, images_uint8.shape[1], seed)
    if augmenter is None:
        return math.inf
    images, labels = images_uint8.astype(FLOAT), _dummy_one_hot(len(images_uint8))
    augmenter(images, labels)
    start = time.perf_counter()
    for _ in range(repeats):
        augmenter(images, labels)
    return len(images) * repeats / (time.perf_counter() - start)


def _cpu_cost(name: str, images_uint8: np.ndarray, seed: int, repeats: int) -> float:
    augmenter = make_cpu_augmenter(name, images_uint8.shape[1], seed)
    if augmenter is None:
        return math.inf
    augmenter(images_uint8[0])
    start = time.perf_counter()
    for _ in range(repeats):
        for image in images_uint8:
            augmenter(image)
    return len(images_uint8) * repeats / (time.perf_counter() - start)


def preview_grid(images_uint8: np.ndarray, recipes: Sequence[str], out_path: str | Path,
                 seed: int = 0) -> Path:
    """A PNG to eyeball a recipe before paying for a training run: one row per recipe, one column per image."""
    images_uint8 = _check_preview_images(images_uint8)
    rows = [ORIGINAL] + [name for name in recipes if name != ORIGINAL]
    _check_names(rows, [ORIGINAL] + batch_recipe_names() + cpu_recipe_names(), "augmentation recipe", "recipes")
    grid = [_augment_for_preview(name, images_uint8, seed) for name in rows]
    n_rows, n_cols = len(rows), len(images_uint8)
    figure = new_figure((1.0 * n_cols + 1.0, 1.0 * n_rows), 100)
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
    for r, (name, images) in enumerate(zip(rows, grid)):
        for c in range(n_cols):
            axis = axes[r][c]
            axis.imshow(images[c], interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
        axes[r][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    figure.tight_layout()
    return save_png(figure, out_path)


def _augment_for_preview(name: str, images_uint8: np.ndarray, seed: int) -> np.ndarray:
    if name == ORIGINAL or (name in CPU_RECIPES and CPU_RECIPES[name] is None):
        return images_uint8
    if name in CPU_RECIPES:
        augmenter = make_cpu_augmenter(name, images_uint8.shape[1], seed)
        return np.stack([augmenter(image) for image in images_uint8])
    augmenter = make_batch_augmenter([name], images_uint8.shape[1], seed)
    images, _ = augmenter(images_uint8.astype(FLOAT), _dummy_one_hot(len(images_uint8)))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def _dummy_one_hot(batch: int) -> np.ndarray:
    """Labels for timing/previewing mixing recipes, which refuse to run without them."""
    return np.eye(max(batch, 2), dtype=FLOAT)[np.arange(batch)]


def _check_preview_images(images_uint8: np.ndarray) -> np.ndarray:
    images_uint8 = np.asarray(images_uint8)
    shape = images_uint8.shape
    if images_uint8.dtype != np.uint8 or len(shape) != 4 or shape[0] == 0 or shape[1] != shape[2] \
            or shape[3] != 3:
        raise PodiumError("Images to preview or time are not a batch of square uint8 RGB images.",
                          expected="uint8 array (batch >= 1, S, S, 3)",
                          received=f"{images_uint8.dtype} {shape}", fix="pass a slice of the uint8 cache")
    return images_uint8


def _check_names(names: list[str], valid: list[str], what: str, key: str) -> None:
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise PodiumError(f"Unknown {what} {unknown[0]!r}.", expected=f"one of: {', '.join(valid)}",
                          received=repr(unknown[0]), fix=f"pick {key} names from the expected list")
