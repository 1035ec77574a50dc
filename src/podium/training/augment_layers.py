"""The batch augmentation layers written with whole-batch keras.ops, and `TrainAugment`: the chain of them
inside the model, so that they run in the compiled train step instead of on the host, batch by batch.

Every layer here draws per image (a flip, a crop offset, an orientation) and moves pixels only, with one
`where`/`pad`/`take` over the whole batch: no per-image Python, no tf.data layer. That is what makes them free
inside a jitted step; keras.layers.RandomFlip/RandomCrop inside a JAX model made an epoch 80x slower
(docs/speed.md). `TrainAugment` is active only when the model is called with training=True (model.fit), and
is the identity otherwise, so validation, TTA, predict and a reloaded checkpoint see the pixels as they are.
It is registered serialisable, so a `.keras` file holding it loads wherever podium's Preprocess does.

Which chains may go in the step (`STEP_RECIPES`, config key `augment_in`) is podium.config's rule: recipes
that mix labels (mixup, cutmix) or tasks whose targets move with the image stay in the loader.
"""

from __future__ import annotations

from typing import Callable, Sequence

import keras
from keras import ops

from podium.training import orientation

FLOAT = "float32"  # layers pinned to float32: a global mixed_bfloat16 policy would round 0..255 pixels
VFLIP_CHOICES = ("identity", "vflip")  # upside down half the time
ROT90_CHOICES = ("identity", "rot90", "rot180", "rot270")  # a quarter turn, uniform over the four


def crop_pad(image_size: int) -> int:
    return max(1, round(image_size / 8))  # 4 px at 32 px, the CIFAR convention


def gather_rows(images, starts, length: int):
    """Rows starts[b] .. starts[b]+length of each image, as one flat row gather.

    take on a (B*H, W*C) matrix is ~5x faster on CPU than take_along_axis with broadcast indices.
    """
    batch, height, width, channels = ops.shape(images)
    flat_rows = ops.arange(batch, dtype="int32")[:, None] * height + ops.cast(starts, "int32")[:, None] \
        + ops.arange(length, dtype="int32")[None, :]
    picked = ops.take(ops.reshape(images, (batch * height, width * channels)), ops.reshape(flat_rows, (-1,)),
                      axis=0)
    return ops.reshape(picked, (batch, length, width, channels))


class SeededLayer(keras.layers.Layer):
    """A shape-keeping layer that draws from its own seeded generator (its seed in its config)."""

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="podium")
class TranslateCrop(SeededLayer):
    """CIFAR-style random crop: reflect-pad by `pad`, crop back to S at an independent offset per image.

    Written with keras.ops (reflect pad + two row gathers) because keras.layers.RandomCrop shares one
    offset across the batch and resizes at inference.
    """

    def __init__(self, pad: int, seed: int | None = None, **kwargs):
        super().__init__(seed, **kwargs)
        self.pad = int(pad)

    def call(self, images, training=True):
        if not training or self.pad == 0:
            return images
        batch, height, width, channels = ops.shape(images)
        pad = self.pad
        padded = ops.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="reflect")
        offsets = keras.random.randint((batch, 2), 0, 2 * pad + 1, seed=self.seed_generator)
        rows_first = gather_rows(padded, offsets[:, 0], height)  # (B, S, S+2p, C)
        cols_first = gather_rows(ops.transpose(rows_first, (0, 2, 1, 3)), offsets[:, 1], width)
        return ops.transpose(cols_first, (0, 2, 1, 3))

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


@keras.saving.register_keras_serializable(package="podium")
class RandomOrientation(SeededLayer):
    """Each image in one of `choices` (podium.training.orientation), drawn per image: vertical flips and
    quarter turns for top-down images. Three `where`s over the whole batch, no per-image work."""

    def __init__(self, choices: Sequence[str], seed: int | None = None, **kwargs):
        super().__init__(seed, **kwargs)
        self.choices = list(choices)

    def call(self, images, training=True):
        if not training:
            return images
        flags = orientation.random_flags(ops.shape(images)[0], self.choices, self.seed_generator)
        return orientation.orient_where(images, *flags)

    def get_config(self):
        return {**super().get_config(), "choices": self.choices}


@keras.saving.register_keras_serializable(package="podium")
class HorizontalFlip(SeededLayer):
    """Each image mirrored left-right with probability 1/2, drawn per image: one `where` over the batch.

    Not keras.layers.RandomFlip, which inside a model on JAX made an epoch 80x slower (docs/speed.md)."""

    def call(self, images, training=True):
        if not training:
            return images
        flip = keras.random.uniform((ops.shape(images)[0],), seed=self.seed_generator) < 0.5
        return ops.where(flip[:, None, None, None], ops.flip(images, axis=2), images)


# the recipes a train step can run: (image_size, seed) -> a fresh layer; the same names as the loader's
STEP_RECIPES: dict[str, Callable[[int, int], keras.layers.Layer]] = {
    "flip": lambda size, seed: HorizontalFlip(seed=seed, dtype=FLOAT),
    "vflip": lambda size, seed: RandomOrientation(VFLIP_CHOICES, seed=seed, dtype=FLOAT),
    "rot90": lambda size, seed: RandomOrientation(ROT90_CHOICES, seed=seed, dtype=FLOAT),
    "crop": lambda size, seed: TranslateCrop(crop_pad(size), seed=seed, dtype=FLOAT),
}


def derive_seed(seed: int, position: int) -> int:
    """Distinct seed per chain position: two identical layers in a chain must not draw the same numbers."""
    return int(seed) * 1009 + position


@keras.saving.register_keras_serializable(package="podium")
class TrainAugment(keras.layers.Layer):
    """The config's batch recipes as the model's layer after its input: applied in order when the model is
    called with training=True, the identity otherwise (the default, so a bare `model(x)` predicts)."""

    def __init__(self, names: Sequence[str], image_size: int, seed: int = 0, **kwargs):
        kwargs.setdefault("dtype", FLOAT)
        super().__init__(**kwargs)
        self.names, self.image_size, self.seed = list(names), int(image_size), int(seed)
        self.steps = [STEP_RECIPES[name](self.image_size, derive_seed(self.seed, i))
                      for i, name in enumerate(self.names)]

    def build(self, input_shape):
        for layer in self.steps:
            layer.build(input_shape)
        self.built = True

    def call(self, images, training=False):
        if not training:
            return images
        for layer in self.steps:
            images = layer(images, training=True)
        return images

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "names": self.names, "image_size": self.image_size, "seed": self.seed}
