"""The fast CIFAR-10 trainers' whitened first layer (airbench, Keller Jordan 2024), for a from-scratch net.

The stem is a 2x2 convolution; instead of random filters it starts as the ZCA-like whitening of the
training images' 2x2 patches: each eigenvector of their covariance scaled by 1/sqrt(eigenvalue), with its
negative beside it (so a ReLU/GELU after it keeps both signs). Frozen, it hands the next layers
decorrelated inputs of equal variance from the first step, which is what makes the short schedules work.
Numpy for the statistics; the weights are set through Keras, so it runs on every backend.
"""

from __future__ import annotations

import keras
import numpy as np

from podium import catalog
from podium.errors import PodiumError
from podium.models.classifier import backbone_of

STEM = "stem_conv"  # the airbench backbones' 2x2 stem (podium.models.backbones)
PREPROCESS = "preprocess"  # the model's first layer (podium.models.classifier)
SAMPLE = 5000  # images whose patches estimate the covariance (airbench's own number)
EPS = 5e-4  # added to the eigenvalues before the square root (airbench)


def whiten_stem(model: keras.Model, images_uint8: np.ndarray) -> np.ndarray:
    """Set the backbone's 2x2 stem to the whitening of `images_uint8`'s patches and freeze it (call before
    `compile`). Returns the eigenvalues, largest first: the spread a report or a test can read."""
    stem = _stem_of(model)
    kernel_h, kernel_w, channels, filters = stem.kernel.shape
    pixels = np.asarray(images_uint8[:SAMPLE], dtype="float32")
    inputs = keras.ops.convert_to_numpy(model.get_layer(PREPROCESS)(pixels)).astype("float64")
    patches = patches_of(inputs, kernel_h, kernel_w)
    eigenvalues, filters_found = whitening_filters(patches)
    if 2 * len(eigenvalues) != filters:
        raise PodiumError(f"The stem has {filters} filters; whitening {kernel_h}x{kernel_w}x{channels} patches "
                          f"makes {2 * len(eigenvalues)}.", expected=f"{2 * len(eigenvalues)} filters",
                          received=str(filters), fix="use an airbench_* backbone, or stem_init: default")
    kernel = np.concatenate([filters_found, -filters_found]).T.reshape(kernel_h, kernel_w, channels, filters)
    stem.kernel.assign(kernel.astype("float32"))
    if stem.use_bias:
        stem.bias.assign(np.zeros(filters, dtype="float32"))
    stem.trainable = False
    return eigenvalues


def spread_sample(positions: np.ndarray) -> np.ndarray:
    """At most SAMPLE of the training positions, evenly spread over them in file order (ids sorted by
    folder would otherwise give the first classes only), sorted for the cache's sequential reads."""
    ordered = np.unique(np.asarray(positions))
    return ordered[np.linspace(0, len(ordered) - 1, min(SAMPLE, len(ordered))).astype(int)]


def patches_of(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Every (height, width) patch of (N, S, S, C) images at stride 1, flattened in the kernel's own
    (row, column, channel) order: (N * positions, height * width * C)."""
    n, size_h, size_w, channels = images.shape
    rows, cols = size_h - height + 1, size_w - width + 1
    stacked = np.stack([images[:, dy:dy + rows, dx:dx + cols, :] for dy in range(height) for dx in range(width)],
                       axis=3)  # (N, rows, cols, h*w, C)
    return stacked.reshape(n * rows * cols, height * width * channels)


def whitening_filters(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues largest first, filters (D, D) one per row): eigenvectors of the patches' covariance
    divided by sqrt(eigenvalue + EPS), so each filter's output has unit variance and no two correlate."""
    covariance = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    return eigenvalues, (eigenvectors / np.sqrt(eigenvalues + EPS)).T


def _stem_of(model: keras.Model) -> keras.layers.Conv2D:
    base = backbone_of(model)
    try:
        stem = base.get_layer(STEM)
    except ValueError as exc:
        raise PodiumError(f"stem_init: whiten needs a backbone with a 2x2 stem convolution named {STEM!r}.",
                          expected=f"one of {', '.join(f'airbench_{size}' for size in catalog.AIRBENCH_SIZES)}",
                          received=f"backbone {base.name!r}", fix="use an airbench_* backbone, or stem_init: "
                                                                  "default") from exc
    return stem
