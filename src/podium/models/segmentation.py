"""Segmentation models: a U-Net decoder over a registry backbone's encoder features, and the plain
residual U-Net of the data-pruning experiment (trained from scratch). Both take raw 0..255 pixels
(Preprocess first) and end in one sigmoid channel, or with several classes (podium.tasks.segmentation) in a
sigmoid per class (classes may overlap) or a softmax over the classes and a background channel (exclusive
classes), the background then dropped so every head outputs (S, S, C) class probabilities.

Encoder features are found, not listed per backbone: for every spatial resolution the backbone
passes through, the *last* layer at that resolution is the skip connection (the layer just before it
downsamples). That works for the tiny CNN and keras.applications alike, so a new registry entry needs
no segmentation table.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from podium.models import backbones
from podium.errors import PodiumError
from podium.models.layers import Preprocess
from podium.models.classifier import set_trainable

DECODERS = ("unet", "residual_unet")
MAX_SKIPS = 5  # strides 1/2 .. 1/32, as deep as common backbones go


def build_segmenter(cfg, classes: int = 1, exclusive: bool = False) -> keras.Model:
    """The config's decoder; output (S, S, classes) probabilities in float32 (exclusive: softmax with a
    background channel, dropped; else a sigmoid per class)."""
    if cfg.decoder == "residual_unet":
        return build_residual_unet(cfg.resolved_image_size, cfg.unet_filters, cfg.dropout, classes, exclusive)
    return build_backbone_unet(cfg, classes, exclusive)


def mask_head(x, classes: int = 1, exclusive: bool = False):
    """The last 1x1 convolution: one sigmoid per class, or a softmax over background + classes whose background
    channel is dropped with built-in layers (a .keras file reloads without custom objects)."""
    if not exclusive:
        return layers.Conv2D(classes, 1, activation="sigmoid", dtype="float32", name="mask")(x)
    size = int(x.shape[1])
    x = layers.Conv2D(classes + 1, 1, activation="softmax", dtype="float32", name="mask_with_background")(x)
    x = layers.Reshape((size * size, classes + 1), dtype="float32", name="mask_pixels")(x)
    x = layers.Permute((2, 1), dtype="float32", name="mask_channels_first")(x)
    x = layers.Cropping1D((1, 0), dtype="float32", name="drop_background")(x)
    x = layers.Permute((2, 1), dtype="float32", name="mask_channels_last")(x)
    return layers.Reshape((size, size, classes), dtype="float32", name="mask")(x)


def encoder_on_input(cfg) -> tuple[keras.KerasTensor, list]:
    """Image input -> the backbone's own preprocessing -> its feature maps, shallow to deep.

    Shared by every dense or box head, so each gets the registry's input range and the frozen-BN rule."""
    spec = backbones.get(cfg.backbone)
    size = cfg.resolved_image_size
    base = backbones.build_backbone(spec, size, cfg.weights)
    pretrained = backbones.is_pretrained(cfg.weights)
    features = encoder_features(base, size)
    set_trainable(features, not cfg.freeze_backbone, keep_batchnorm_frozen=pretrained)

    inputs = keras.Input((size, size, 3), dtype="float32", name="image")
    x = Preprocess(spec.mode, name="preprocess")(inputs)
    maps = features(x, training=False) if pretrained else features(x)
    return inputs, list(maps) if isinstance(maps, (list, tuple)) else [maps]


def build_backbone_unet(cfg, classes: int = 1, exclusive: bool = False) -> keras.Model:
    size = cfg.resolved_image_size
    inputs, skips = encoder_on_input(cfg)
    x = skips[-1]
    for level, skip in enumerate(reversed(skips[:-1])):
        filters = max(cfg.unet_filters, int(skip.shape[-1]) // 2)
        x = _up_block(x, skip, filters, f"decoder{level}")
    while x.shape[1] < size:  # backbones whose first skip is already at 1/2
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"upsample_to_input_{x.shape[1]}")(x)
        x = _conv_bn_relu(x, cfg.unet_filters, f"head_{x.shape[1]}")
    x = layers.Dropout(cfg.dropout, name="head_dropout")(x)
    return keras.Model(inputs, mask_head(x, classes, exclusive), name=f"podium_unet_{cfg.backbone}")


def encoder_features(base: keras.Model, image_size: int) -> keras.Model:
    """The backbone re-wired to output its skip features, finest first, deepest last; named "backbone"
    so freezing and unfreezing (models.set_backbone_trainable) find it as they do in a classifier."""
    last_at: dict[int, keras.KerasTensor] = {}
    for layer in base.layers:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue  # layers used more than once have no single output
        if len(shape) == 4 and shape[1] is not None and shape[1] > 1:
            last_at[int(shape[1])] = layer.output
    # image_size / 2^k only: padding layers before a strided conv (MobileNet, ResNet) sit at odd sizes
    resolutions = sorted((r for r in last_at if image_size % r == 0 and (image_size // r) & (image_size // r - 1) == 0),
                         reverse=True)[:MAX_SKIPS + 1]
    if len(resolutions) < 2:
        raise PodiumError(f"Backbone {base.name} exposes too few resolutions for a U-Net.",
                          expected="feature maps at two or more resolutions", received=str(resolutions),
                          fix="use a larger image_size or another backbone")
    outputs = [last_at[r] for r in resolutions]
    return keras.Model(base.input, outputs, name=backbones.BACKBONE_NAME)


def build_residual_unet(image_size: int, start_filters: int = 16, dropout: float = 0.5, classes: int = 1,
                        exclusive: bool = False) -> keras.Model:
    """The data-pruning experiment's U-Net with residual blocks, depth reduced so the bottleneck stays >= 4 pixels."""
    depth = max(1, min(4, int(math.log2(image_size)) - 2))
    if image_size % (2 ** depth):
        raise PodiumError("The residual U-Net needs an image size divisible by its pooling.",
                          expected=f"image_size divisible by {2 ** depth}", received=str(image_size),
                          fix="pick a power of two, e.g. 64 or 128")
    inputs = keras.Input((image_size, image_size, 3), dtype="float32", name="image")
    x = Preprocess("unit", name="preprocess")(inputs)
    skips = []
    for level in range(depth):
        filters = start_filters * 2 ** level
        x = _residual_stage(x, filters, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
        x = layers.Dropout(dropout / 2 if level == 0 else dropout, name=f"down{level}_dropout")(x)
    x = _residual_stage(x, start_filters * 2 ** depth, "middle")
    for level in reversed(range(depth)):
        filters = start_filters * 2 ** level
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name=f"up{level}_deconv")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([x, skips[level]])
        x = layers.Dropout(dropout, name=f"up{level}_dropout")(x)
        x = _residual_stage(x, filters, f"up{level}")
    x = layers.Dropout(dropout / 2, name="head_dropout")(x)
    return keras.Model(inputs, mask_head(x, classes, exclusive), name="podium_residual_unet")


def _residual_stage(x, filters: int, name: str):
    """Conv, two residual blocks, ReLU: one level of the residual U-Net's encoder or decoder."""
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv")(x)
    for block in range(2):
        x = _residual_block(x, filters, f"{name}_res{block}")
    return layers.ReLU(name=f"{name}_relu")(x)


def _residual_block(block_input, filters: int, name: str):
    x = layers.ReLU(name=f"{name}_relu")(block_input)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    x = _conv_bn_relu(x, filters, f"{name}_a")
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_b_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_b_bn")(x)
    return layers.Add(name=f"{name}_add")([x, block_input])


def _up_block(x, skip, filters: int, name: str):
    factor = int(skip.shape[1]) // int(x.shape[1])
    if factor > 1:
        x = layers.UpSampling2D(factor, interpolation="bilinear", name=f"{name}_upsample")(x)
    x = layers.Concatenate(name=f"{name}_concat")([x, skip])
    x = _conv_bn_relu(x, filters, f"{name}_a")
    return _conv_bn_relu(x, filters, f"{name}_b")


def _conv_bn_relu(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)
