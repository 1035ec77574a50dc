"""The classifier: raw 0..255 pixels -> the backbone's own preprocessing -> backbone -> softmax head.

Preprocessing is the model's first layer and is saved with it, so a checkpoint predicts correctly
wherever it is loaded. A pretrained backbone always runs its BatchNorm layers in inference mode,
even after unfreezing: updating ImageNet statistics from small fine-tuning batches wrecks the
features (the Keras transfer-learning guide's rule). In Keras 3 the guide's `base(x, training=False)`
alone does not do it: `fit` calls the model with training=True and that overrides the recorded
False for every nested layer (keras-team/keras#20285). So the BatchNorm layers of a pretrained
backbone are also kept `trainable=False`, which Keras 3 BatchNormalization reads as "inference mode";
the recorded training=False stays as the mark of a pretrained backbone, and survives a .keras reload.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from podium.models import backbones
from podium.errors import PodiumError
from podium.models.checkpoint_files import checkpoint_damage, damaged_checkpoint
from podium.models.layers import Preprocess
from podium.training.augment_layers import TrainAugment  # also registers it: a .keras file may hold it

if TYPE_CHECKING:
    import keras

TRAIN_AUGMENT = "train_augment"  # the name of the in-model augmentation layer, when there is one


class ModelConfig(Protocol):
    """The part of ExperimentConfig a model needs."""

    backbone: str
    weights: str
    dropout: float
    freeze_backbone: bool
    augment: list[str]
    seed: int

    @property
    def resolved_image_size(self) -> int: ...

    @property
    def resolved_augment_in(self) -> str: ...


def build_classifier(cfg: ModelConfig, num_classes: int, activation: str = "softmax") -> keras.Model:
    """softmax: one class per image; sigmoid: any subset of them (multi-label)."""
    import keras

    if num_classes < 2:
        raise PodiumError("A classifier needs at least two classes.", expected="num_classes >= 2",
                          received=str(num_classes), fix="check the competition's label column")
    inputs, x = pooled_features(cfg)
    outputs = keras.layers.Dense(num_classes, activation=activation, dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"podium_{backbones.get(cfg.backbone).name}")


def pooled_features(cfg: ModelConfig) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """(image input, the backbone's pooled features after the head's dropout): what every one-vector head
    (softmax, sigmoid, a regression's linear unit) sits on."""
    import keras

    spec = backbones.get(cfg.backbone)
    size = cfg.resolved_image_size
    base = backbones.build_backbone(spec, size, cfg.weights)
    pretrained = backbones.is_pretrained(cfg.weights)
    set_trainable(base, not cfg.freeze_backbone, keep_batchnorm_frozen=pretrained)

    inputs = keras.Input((size, size, 3), dtype="float32", name="image")
    x = train_augment(cfg)(inputs)
    x = Preprocess(spec.mode, name="preprocess")(x)
    x = base(x, training=False) if pretrained else base(x)  # a from-scratch base trains its BN
    return inputs, keras.layers.Dropout(cfg.dropout, name="head_dropout")(x)


def train_augment(cfg: ModelConfig):
    """The batch recipes as the model's first layer when they run in the train step (config augment_in),
    active only in training; the identity function when the loader runs them."""
    if cfg.resolved_augment_in != "model":
        return lambda inputs: inputs
    return TrainAugment(cfg.augment, cfg.resolved_image_size, cfg.seed, name=TRAIN_AUGMENT)


def backbone_of(model: keras.Model) -> keras.Model:
    try:
        return model.get_layer(backbones.BACKBONE_NAME)
    except ValueError as exc:
        raise PodiumError(f"Model {model.name!r} has no sub-model named {backbones.BACKBONE_NAME!r}.",
                          expected="a model made by podium.models.classifier.build_classifier",
                          received=", ".join(layer.name for layer in model.layers),
                          fix="build the model with build_classifier") from exc


def set_backbone_trainable(model: keras.Model, trainable: bool) -> None:
    """Freeze or unfreeze the backbone, e.g. head-only warm-up, then fine-tuning.

    Takes effect at the next `model.compile()`; BatchNorm of a pretrained backbone stays in
    inference mode either way (see module docstring).
    """
    set_trainable(backbone_of(model), trainable, keep_batchnorm_frozen=has_pretrained_backbone(model))


def has_pretrained_backbone(model: keras.Model) -> bool:
    """build_classifier calls a pretrained backbone with training=False; the saved graph keeps that."""
    for layer_config in model.get_config()["layers"]:
        if layer_config["name"] == backbones.BACKBONE_NAME:
            return any(node.get("kwargs", {}).get("training") is False
                       for node in layer_config.get("inbound_nodes", []))
    backbone_of(model)  # raises the explanatory PodiumError
    return False


def set_trainable(base: keras.Model, trainable: bool, keep_batchnorm_frozen: bool) -> None:
    import keras

    base.trainable = trainable  # recursive in Keras 3
    if keep_batchnorm_frozen:
        for layer in _all_layers(base):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False


def _all_layers(model: keras.Model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):  # nested blocks, e.g. ConvNeXt's Sequential stem
            yield from _all_layers(layer)


def load_classifier(path: str | Path, compile: bool = True) -> keras.Model:
    """Load a podium `.keras` checkpoint; importing this module registers the Preprocess layer it needs."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise PodiumError(f"Model file {path} does not exist.", expected="a .keras file saved by podium",
                          received=str(path), fix="train first (make train), or fix the path")
    problem = checkpoint_damage(path)
    if not problem:
        try:
            return keras.saving.load_model(path, compile=compile)
        except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:  # a readable zip with a bad inside
            problem = f"{type(exc).__name__}: {exc}"
    raise damaged_checkpoint(path, problem)
