"""The whitened stem (podium.training.whitening): filters that decorrelate the training images' patches."""

import keras
import numpy as np
import pandas as pd
import pytest

from podium.config import load_config
from podium.errors import PodiumError
from podium.models.classifier import backbone_of
from podium.runners.train import train_and_evaluate
from podium.tasks import get_task
from podium.training import whitening


def _stem_outputs(model, images_uint8):
    pixels = keras.ops.convert_to_numpy(model.get_layer(whitening.PREPROCESS)(images_uint8.astype("float32")))
    return keras.ops.convert_to_numpy(backbone_of(model).get_layer(whitening.STEM)(pixels))


def test_patches_follow_the_kernel_layout_keras_convolves_with():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(3, 9, 7, 3)).astype("float32")
    conv = keras.layers.Conv2D(5, 2, use_bias=False)
    out = keras.ops.convert_to_numpy(conv(images))
    by_patches = whitening.patches_of(images.astype("float64"), 2, 2) @ conv.kernel.numpy().reshape(12, 5)
    np.testing.assert_allclose(by_patches, out.reshape(-1, 5), atol=1e-5)


def test_whitening_filters_make_the_patch_covariance_the_identity():
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(12, 12))
    patches = rng.normal(size=(20000, 12)) @ mixing  # strongly correlated columns
    eigenvalues, filters = whitening.whitening_filters(patches)
    assert np.all(np.diff(eigenvalues) <= 0)
    whitened = patches @ filters.T
    covariance = whitened.T @ whitened / len(whitened)
    expected = np.diag(eigenvalues / (eigenvalues + whitening.EPS))
    np.testing.assert_allclose(covariance, expected, atol=1e-6)


def test_the_stem_of_an_airbench_net_whitens_the_demo_images_and_is_frozen(tiny, tmp_path):
    from podium.data.dataset import load_labeled_data

    cfg = tiny.cfg(tmp_path, "backbone=airbench_s", "stem_init=whiten")
    data = load_labeled_data(cfg, get_task(cfg.task), progress=False)
    model = get_task(cfg.task).build_model(cfg, data.num_classes)
    sample = np.asarray(data.images[whitening.spread_sample(np.arange(len(data.images)))])
    eigenvalues = whitening.whiten_stem(model, sample)
    stem = backbone_of(model).get_layer(whitening.STEM)
    assert not stem.trainable and all(w.path != stem.kernel.path for w in model.trainable_weights)
    out = _stem_outputs(model, sample).reshape(-1, 24).astype("float64")
    halves = out[:, :12], out[:, 12:]
    np.testing.assert_allclose(halves[0], -halves[1], atol=1e-5)  # each filter with its negative
    covariance = halves[0].T @ halves[0] / len(out)
    # unit variance in every direction the images vary in (an eigenvalue well above EPS), none overlapping
    np.testing.assert_allclose(np.diag(covariance), eigenvalues / (eigenvalues + whitening.EPS), atol=2e-3)
    assert (eigenvalues > 10 * whitening.EPS).sum() >= 3
    assert np.abs(covariance - np.diag(np.diag(covariance))).max() < 1e-3


def test_a_run_with_stem_init_whiten_trains_with_the_stem_unchanged(tiny, tmp_path):
    cfg = tiny.cfg(tmp_path, "backbone=airbench_s", "stem_init=whiten", "epochs=2", "tta=[identity]")
    result = train_and_evaluate(cfg, get_task(cfg.task), 0)
    assert len(pd.read_csv(result.fold_dir / "history.csv")) == 2
    saved = keras.models.load_model(result.fold_dir / "best.keras")
    stem = backbone_of(saved).get_layer(whitening.STEM)
    kernel = stem.kernel.numpy().reshape(12, 24)
    np.testing.assert_allclose(kernel[:, :12], -kernel[:, 12:])  # still the whitening pairs: never trained
    assert not stem.trainable


def test_stem_init_whiten_refuses_a_backbone_without_the_2x2_stem(tmp_path):
    cfg = load_config(None, ["backbone=tiny_cnn", "image_size=32", "stem_init=whiten"])
    model = get_task(cfg.task).build_model(cfg, 3)
    with pytest.raises(PodiumError, match="2x2 stem") as caught:
        whitening.whiten_stem(model, np.zeros((4, 32, 32, 3), np.uint8))
    assert "airbench_s" in caught.value.expected and "stem_init: default" in caught.value.fix
