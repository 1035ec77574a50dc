"""Batches for Keras from the uint8 cache.

Augmentation is a constructor argument that validation and test loaders are simply never given, so
"validation is not augmented" holds by construction rather than by a flag someone can forget. A
PyDataset needs no TensorFlow, so the same loader serves the JAX backend.
"""

from __future__ import annotations

import math
from typing import Callable

import keras
import numpy as np

BatchAugment = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
ImageAugment = Callable[[np.ndarray], np.ndarray]


class ImageBatches(keras.utils.PyDataset):
    """(x, y) batches of float32 0..255 pixels and one-hot labels, or x alone when labels is None.

    `targets` replaces the one-hot labels with rows of any shape (masks, class+box rows); the batch
    augmenter then receives (x, targets) and must move them together (podium.training.augment_pairs).
    `sample_weights` (one per row of `images`) makes the batches (x, y, weight): pseudo-labelled test
    images weigh less than labelled ones (podium.runners.pseudo). Keras takes the same triple on every backend.
    """

    def __init__(self, images: np.ndarray, positions: np.ndarray | None = None, labels: np.ndarray | None = None,
                 num_classes: int = 0, batch_size: int = 64, shuffle: bool = False, seed: int = 0,
                 batch_augment: BatchAugment | None = None, image_augment: ImageAugment | None = None,
                 workers: int = 1, targets: np.ndarray | None = None, sample_weights: np.ndarray | None = None):
        super().__init__(workers=workers, use_multiprocessing=False)
        self.images = images
        self.positions = np.arange(len(images)) if positions is None else np.asarray(positions)
        self.labels = labels
        self.targets = targets
        self.sample_weights = sample_weights
        self.num_classes = num_classes
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.batch_augment = batch_augment
        self.image_augment = image_augment
        self._rng = np.random.default_rng(seed)
        self.order = self._rng.permutation(self.positions) if shuffle else self.positions

    def __len__(self) -> int:
        return math.ceil(len(self.positions) / self.batch_size)

    def __getitem__(self, i: int):
        rows = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        pixels = self.images[np.sort(rows)] if self.shuffle else self.images[rows]  # memmap reads in order
        if self.shuffle:
            pixels = pixels[np.argsort(np.argsort(rows))]
        if self.image_augment is not None:
            pixels = np.stack([self.image_augment(image) for image in pixels])
        x = pixels.astype("float32")
        if self.labels is None and self.targets is None:
            return (x,)
        if self.targets is not None:
            y = np.asarray(self.targets[rows], dtype="float32")
        else:
            y = keras.utils.to_categorical(self.labels[rows], self.num_classes).astype("float32")
        if self.batch_augment is not None:
            x, y = self.batch_augment(x, y)
            x, y = keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y)
        if self.sample_weights is not None:
            return x, y, np.asarray(self.sample_weights[rows], dtype="float32")
        return x, y

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.order = self._rng.permutation(self.positions)

    @property
    def augmented(self) -> bool:
        return self.batch_augment is not None or self.image_augment is not None
