"""podium.training.augment_layers: the batch recipes inside the model's train step (config augment_in).

The in-step chain must do what the loader's recipe does, in distribution (a per-image left-right flip half the
time, a reflect-padded crop at a per-image offset within the pad), be the identity outside training (validation,
TTA, predict and a reloaded checkpoint see the pixels as they are), survive a .keras round trip wherever podium
loads one, and leave the backbone where unfreezing looks for it. Which chains go in the step is config's rule.
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from podium import catalog
from podium.config import ExperimentConfig, load_config
from podium.data.dataset import load_labeled_data
from podium.errors import PodiumError
from podium.models.classifier import TRAIN_AUGMENT, backbone_of, build_classifier, load_classifier, \
    set_backbone_trainable
from podium.models.layers import Preprocess
from podium.runners.train import make_loaders, train_and_evaluate
from podium.tasks import get_task
from podium.training.augment import BatchAugmenter, make_batch_augmenter
from podium.training.augment_layers import STEP_RECIPES, HorizontalFlip, TrainAugment, crop_pad
from tests_support import run_under_jax

DEMO_TRAIN_ZIP = Path(__file__).resolve().parents[1] / "src" / "podium" / "demo" / "train.zip"
SIZE = 32
HAS_JAX = importlib.util.find_spec("jax") is not None


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """64 demo photos, float32 0..255 at 32 px (real, left-right asymmetric images)."""
    with zipfile.ZipFile(DEMO_TRAIN_ZIP) as zf:
        names = [name for name in zf.namelist() if name.endswith(".jpg")][::30][:64]
        images = [np.asarray(Image.open(io.BytesIO(zf.read(n))).convert("RGB").resize((SIZE, SIZE))) for n in names]
    return np.stack(images).astype("float32")


def candidates(image: np.ndarray, pad: int) -> dict[tuple[bool, int, int], np.ndarray]:
    """Every image the [flip, crop] chain may make of `image`: (flipped, row offset, column offset) -> pixels."""
    out = {}
    for flipped in (False, True):
        source = image[:, ::-1] if flipped else image
        padded = np.pad(source, [(pad, pad), (pad, pad), (0, 0)], mode="reflect")
        for r in range(2 * pad + 1):
            for c in range(2 * pad + 1):
                out[(flipped, r, c)] = padded[r:r + SIZE, c:c + SIZE]
    return out


def explain(inputs: np.ndarray, outputs: np.ndarray, pad: int) -> list[tuple[bool, int, int]]:
    """For each output, the (flip, offsets) that made it from its input; fails when none did."""
    found = []
    for image, out in zip(inputs, outputs):
        keys = [key for key, pixels in candidates(image, pad).items() if np.allclose(pixels, out, atol=1e-3)]
        assert keys, "an output is no flip+crop of its input"
        found.append(keys[0])
    return found


def tiled(photos: np.ndarray, times: int = 8) -> np.ndarray:
    return np.tile(photos, (times, 1, 1, 1))  # 512 images: enough draws for the frequencies below


def step_output(photos: np.ndarray, seed: int = 0) -> np.ndarray:
    layer = TrainAugment(["flip", "crop"], SIZE, seed=seed)
    return keras.ops.convert_to_numpy(layer(photos, training=True))


# ---- the recipes' semantics, in the step as in the loader -----------------------------------------------
def test_in_step_flip_and_crop_match_the_loader_recipe_in_distribution(photos):
    images, pad = tiled(photos), crop_pad(SIZE)
    step = explain(images, step_output(images), pad)
    loader, _ = make_batch_augmenter(["flip", "crop"], SIZE, seed=0)(images, np.eye(2, dtype="float32")[
        np.arange(len(images)) % 2])
    host = explain(images, loader, pad)
    for drawn in (step, host):
        flips = np.mean([key[0] for key in drawn])
        assert 0.4 < flips < 0.6  # per image, half the time (512 draws: +-4.5 standard deviations)
        offsets = {key[1] for key in drawn} | {key[2] for key in drawn}
        assert offsets == set(range(2 * pad + 1))  # every offset within the pad, per image, and none beyond
    assert len({key for key in step}) > 20  # images of one batch draw their own flip and offsets


def test_in_step_flip_is_per_image_and_a_where_not_keras_randomflip(photos):
    layer = HorizontalFlip(seed=3)
    out = keras.ops.convert_to_numpy(layer(photos, training=True))
    flipped = [np.array_equal(o, p[:, ::-1]) for o, p in zip(out, photos)]
    kept = [np.array_equal(o, p) for o, p in zip(out, photos)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_the_step_chain_is_the_identity_outside_training(photos):
    layer = TrainAugment(["flip", "crop", "vflip", "rot90"], SIZE, seed=1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(photos)), photos)  # default: not training
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(photos, training=False)), photos)
    model = build_classifier(ExperimentConfig(backbone="tiny_cnn", weights="none", image_size=SIZE,
                                              augment=["flip", "crop"]), 3)
    plain = build_classifier(ExperimentConfig(backbone="tiny_cnn", weights="none", image_size=SIZE,
                                              augment=["flip", "crop"], augment_in="loader"), 3)
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(photos, verbose=0), plain.predict(photos, verbose=0), atol=1e-6)


def test_the_step_chain_is_seeded(photos):
    np.testing.assert_array_equal(step_output(photos, seed=5), step_output(photos, seed=5))
    assert not np.array_equal(step_output(photos, seed=5), step_output(photos, seed=6))


def test_step_recipes_are_the_catalogs_and_the_loaders_names():
    assert tuple(STEP_RECIPES) == catalog.STEP_AUGMENTS
    assert set(catalog.STEP_AUGMENTS) <= set(catalog.BATCH_AUGMENTS)


# ---- the rule: where the chain runs ---------------------------------------------------------------------
@pytest.mark.parametrize("task, augment, augment_in, where", [
    ("classification", ["flip", "crop"], "auto", "model"),
    ("classification", ["flip", "crop", "mixup"], "auto", "loader"),  # mixup mixes the labels
    ("classification", ["flip", "color"], "auto", "loader"),  # a Keras image layer: the loader's
    ("classification", ["flip", "crop"], "loader", "loader"),
    ("classification", [], "model", "loader"),  # nothing to run anywhere
    ("multilabel", ["flip", "vflip", "rot90"], "auto", "model"),
    ("regression", ["crop"], "model", "model"),
    ("segmentation", ["flip", "crop"], "auto", "loader"),  # the mask moves with the image
    ("localization", ["flip"], "auto", "loader"),
    ("detection", ["flip"], "auto", "loader"),
])
def test_the_rule_choosing_loader_or_step(task, augment, augment_in, where):
    cfg = ExperimentConfig(task=task, backbone="tiny_cnn", augment=augment, augment_in=augment_in)
    assert cfg.resolved_augment_in == where
    pair = get_task(task).pair_augmenter(cfg)
    assert (pair is None) == (where == "model" or not augment)


@pytest.mark.parametrize("task, augment", [("classification", ["flip", "mixup"]), ("segmentation", ["flip"])])
def test_augment_in_model_refuses_what_the_step_cannot_run(task, augment):
    with pytest.raises(PodiumError, match="augment_in=model"):
        ExperimentConfig(task=task, backbone="tiny_cnn", augment=augment, augment_in="model")


def test_the_loader_gets_no_augmenter_when_the_step_augments(tiny, tmp_path):
    for where, expected in (("auto", type(None)), ("loader", BatchAugmenter)):
        cfg = tiny.cfg(tmp_path, "augment=[flip,crop]", f"augment_in={where}")
        data = load_labeled_data(cfg, get_task(cfg.task), progress=False)
        train, val = make_loaders(cfg, get_task(cfg.task), data, *data.fold_positions(0))
        assert isinstance(train.batch_augment, expected) and val.batch_augment is None


# ---- the model and its checkpoint -------------------------------------------------------------------------
def test_checkpoint_round_trip_keeps_the_layer_and_unfreezing_finds_the_backbone(photos, tmp_path):
    cfg = ExperimentConfig(backbone="tiny_cnn", weights="none", image_size=SIZE, augment=["flip", "crop"], seed=4)
    model = build_classifier(cfg, 3)
    assert [layer.name for layer in model.layers[1:3]] == [TRAIN_AUGMENT, "preprocess"]
    assert isinstance(model.layers[2], Preprocess)
    model.save(tmp_path / "best.keras")
    loaded = load_classifier(tmp_path / "best.keras", compile=False)
    layer = loaded.get_layer(TRAIN_AUGMENT)
    assert isinstance(layer, TrainAugment) and (layer.names, layer.image_size, layer.seed) == (["flip", "crop"], 32, 4)
    np.testing.assert_allclose(loaded.predict(photos, verbose=0), model.predict(photos, verbose=0), atol=1e-6)
    set_backbone_trainable(loaded, True)
    assert backbone_of(loaded).trainable and backbone_of(loaded) is loaded.get_layer("backbone")
    # the checkpoint as a weights= file of a new run: its backbone's weights are taken
    again = build_classifier(ExperimentConfig(backbone="tiny_cnn", weights=str(tmp_path / "best.keras"),
                                              image_size=SIZE, augment=[]), 3)
    for mine, theirs in zip(backbone_of(again).weights, backbone_of(model).weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))


def test_a_demo_run_trains_with_flip_and_crop_in_the_step(tiny, tmp_path):
    cfg = tiny.cfg(tmp_path, "augment=[flip,crop]", "epochs=2", "tta=[identity,hflip]")
    assert cfg.resolved_augment_in == "model"
    result = train_and_evaluate(cfg, get_task(cfg.task), 0)
    assert result.epochs_run == 2 and 0.0 <= result.val_score <= 1.0
    best = load_classifier(result.fold_dir / "best.keras")
    assert isinstance(best.get_layer(TRAIN_AUGMENT), TrainAugment)


JAX_STEP = """
    import json
    import numpy as np, keras
    from podium.config import ExperimentConfig
    from podium.models.classifier import build_classifier, load_classifier

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (96, 32, 32, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 96)]
    model = build_classifier(ExperimentConfig(backbone="tiny_cnn", weights="none", image_size=32,
                                              augment=["flip", "crop"]), 3)
    model.compile("adam", "categorical_crossentropy", jit_compile=True)
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    model.save({path!r})
    loaded = load_classifier({path!r})
    layer = loaded.get_layer("train_augment")
    print(json.dumps({{"backend": keras.backend.backend(),
                      "same": bool(np.allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), atol=1e-6)),
                      "identity": bool(np.array_equal(keras.ops.convert_to_numpy(layer(x)), x)),
                      "moved": not bool(np.array_equal(keras.ops.convert_to_numpy(layer(x, training=True)), x))}}))
"""


@pytest.mark.skipif(not HAS_JAX, reason="jax is not installed: the JAX backend path is untested here")
def test_the_step_chain_trains_saves_and_loads_under_jax(tmp_path):
    out = run_under_jax(JAX_STEP.format(path=str(tmp_path / "best.keras")), tmp_path / "under_jax.py")
    assert out == {"backend": "jax", "same": True, "identity": True, "moved": True}
