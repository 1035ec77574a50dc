"""build_classifier: raw pixels in, the backbone's own preprocessing first, BatchNorm rules kept.

The BatchNorm tests train on real demo photos and look at the moving statistics themselves: a
pretrained backbone must keep them (frozen or unfrozen, before and after a .keras reload), a
from-scratch backbone must learn them.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from podium.models import backbones
from podium.config import ExperimentConfig
from podium.errors import PodiumError
from podium.models.layers import Preprocess
from podium.models.classifier import (backbone_of, build_classifier, has_pretrained_backbone, load_classifier,
                           set_backbone_trainable)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

DEMO_TRAIN_ZIP = Path(__file__).resolve().parents[1] / "src" / "podium" / "demo" / "train.zip"
NUM_CLASSES = 10


@pytest.fixture(scope="module")
def demo_batch() -> tuple[np.ndarray, np.ndarray]:
    """64 demo photos (float32 0..255, 32 px) and one-hot labels from their folder names."""
    with zipfile.ZipFile(DEMO_TRAIN_ZIP) as zf:
        files = [name for name in zf.namelist() if name.endswith(".jpg")][::30][:64]
        images = [np.asarray(Image.open(io.BytesIO(zf.read(name))).convert("RGB").resize((32, 32)))
                  for name in files]
    classes = sorted({name.split("/")[1] for name in files})
    labels = np.array([classes.index(name.split("/")[1]) for name in files])
    return np.stack(images).astype("float32"), keras.utils.to_categorical(labels, NUM_CLASSES)


@pytest.fixture(scope="module")
def tiny_weights_file(tmp_path_factory) -> Path:
    """A tiny_cnn weights file, so a model built from it counts as pretrained."""
    path = tmp_path_factory.mktemp("weights") / "tiny_cnn.weights.h5"
    keras.utils.set_random_seed(1)
    backbones.build_backbone("tiny_cnn", 32, "none").save_weights(path)
    return path


def tiny_config(**overrides) -> ExperimentConfig:
    return ExperimentConfig(**{"backbone": "tiny_cnn", "weights": "none", "dropout": 0.2, **overrides})


def predict(model: keras.Model, images: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(images, training=False))


def snapshot(model: keras.Model) -> dict[str, np.ndarray]:
    bn = backbone_of(model).get_layer("block1_bn")
    return {"bn_moving_mean": keras.ops.convert_to_numpy(bn.moving_mean).copy(),
            "bn_moving_variance": keras.ops.convert_to_numpy(bn.moving_variance).copy(),
            "conv_kernel": keras.ops.convert_to_numpy(backbone_of(model).get_layer("block2_conv").kernel).copy(),
            "head_kernel": keras.ops.convert_to_numpy(model.get_layer("predictions").kernel).copy()}


def train_a_little(model: keras.Model, batch: tuple[np.ndarray, np.ndarray]) -> None:
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    model.fit(*batch, batch_size=16, epochs=1, verbose=0)


def changed(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> set[str]:
    return {key for key in before if not np.allclose(before[key], after[key], rtol=0, atol=1e-7)}


# ---- layout -------------------------------------------------------------------------------------
def test_classifier_takes_raw_pixels_and_preprocesses_first(demo_batch):
    model = build_classifier(tiny_config(), NUM_CLASSES)
    assert model.input_shape == (None, 32, 32, 3)
    # after the input: the config's flip, in the train step only (identity here), then the preprocessing
    assert [layer.name for layer in model.layers[1:3]] == ["train_augment", "preprocess"]
    first = model.layers[2]
    assert isinstance(first, Preprocess) and first.mode == backbones.get("tiny_cnn").mode
    assert model.layers[3] is backbone_of(model)
    probs = predict(model, demo_batch[0])
    assert probs.shape == (64, NUM_CLASSES)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", ["resnet50v2", "efficientnet_b0"])
def test_classifier_preprocess_layer_follows_the_registry(name):
    model = build_classifier(ExperimentConfig(backbone=name, weights="none", image_size=32), NUM_CLASSES)
    assert model.get_layer("preprocess").mode == backbones.get(name).mode


def test_head_stays_float32_under_mixed_precision(demo_batch):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_classifier(tiny_config(), NUM_CLASSES)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("predictions").dtype_policy.compute_dtype == "float32"
    assert keras.backend.standardize_dtype(model(demo_batch[0][:2]).dtype) == "float32"


def test_fewer_than_two_classes_is_a_podium_error():
    with pytest.raises(PodiumError):
        build_classifier(tiny_config(), 1)


def test_set_backbone_trainable_needs_a_podium_model():
    inputs = keras.Input((4,))
    foreign = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(PodiumError):
        set_backbone_trainable(foreign, True)


# ---- saving -------------------------------------------------------------------------------------
def test_classifier_reloads_from_keras_file_with_same_predictions(demo_batch, tmp_path):
    model = build_classifier(tiny_config(), NUM_CLASSES)
    train_a_little(model, demo_batch)  # non-trivial BN statistics and head
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = load_classifier(path)
    assert reloaded.get_layer("preprocess").mode == "unit"
    np.testing.assert_allclose(predict(reloaded, demo_batch[0]), predict(model, demo_batch[0]), atol=1e-6)
    with pytest.raises(PodiumError):
        load_classifier(tmp_path / "missing.keras")


def test_backbone_weights_can_come_from_a_podium_checkpoint(demo_batch, tmp_path):
    model = build_classifier(tiny_config(), NUM_CLASSES)
    train_a_little(model, demo_batch)
    path = tmp_path / "best.keras"
    model.save(path)
    base = backbones.build_backbone("tiny_cnn", 32, str(path))
    for saved, loaded in zip(backbone_of(model).get_weights(), base.get_weights()):
        np.testing.assert_array_equal(saved, loaded)


# ---- BatchNorm and trainability -----------------------------------------------------------------
def test_frozen_pretrained_backbone_keeps_everything_but_the_head(demo_batch, tiny_weights_file):
    model = build_classifier(tiny_config(weights=str(tiny_weights_file), freeze_backbone=True), NUM_CLASSES)
    before = snapshot(model)
    train_a_little(model, demo_batch)
    assert changed(before, snapshot(model)) == {"head_kernel"}


def test_unfrozen_pretrained_backbone_trains_but_keeps_batchnorm_statistics(demo_batch, tiny_weights_file):
    """`base(x, training=False)` alone does not do this in Keras 3 (fit passes training=True down)."""
    model = build_classifier(tiny_config(weights=str(tiny_weights_file), freeze_backbone=True), NUM_CLASSES)
    set_backbone_trainable(model, True)
    before = snapshot(model)
    train_a_little(model, demo_batch)
    assert changed(before, snapshot(model)) == {"conv_kernel", "head_kernel"}


def test_from_scratch_backbone_learns_batchnorm_statistics(demo_batch):
    model = build_classifier(tiny_config(), NUM_CLASSES)
    assert not has_pretrained_backbone(model)
    before = snapshot(model)
    train_a_little(model, demo_batch)
    everything = {"bn_moving_mean", "bn_moving_variance", "conv_kernel", "head_kernel"}
    assert changed(before, snapshot(model)) == everything


def test_reloaded_pretrained_classifier_still_keeps_batchnorm_statistics(demo_batch, tiny_weights_file, tmp_path):
    model = build_classifier(tiny_config(weights=str(tiny_weights_file), freeze_backbone=True), NUM_CLASSES)
    model.save(tmp_path / "stage1.keras")
    reloaded = load_classifier(tmp_path / "stage1.keras")
    assert has_pretrained_backbone(reloaded)
    set_backbone_trainable(reloaded, True)
    before = snapshot(reloaded)
    train_a_little(reloaded, demo_batch)
    assert changed(before, snapshot(reloaded)) == {"conv_kernel", "head_kernel"}
