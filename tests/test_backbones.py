"""The registry decides every backbone's input range; these tests hold each entry to keras' own code.

One table (BACKBONES) drives them, as keras' applications_test.py does: each entry's Preprocess
must equal keras.applications.<module>.preprocess_input on a real demo photo, and entries that
claim the keras model rescales itself ("raw") must show the rescaling inside the built model.
"""

from __future__ import annotations

import inspect
import io
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from keras.src.applications import imagenet_utils
from keras.src.utils import file_utils  # keras' downloader; replaced to run weights="imagenet" offline
from PIL import Image

from podium.config import ExperimentConfig
from podium.models import backbones
from podium.models.backbones import BACKBONES, build_backbone
from podium.errors import PodiumError
from podium.models.classifier import build_classifier
from podium.models.layers import MODES, Preprocess

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

REPO = Path(__file__).resolve().parents[1]
DEMO_TRAIN_ZIP = REPO / "src" / "podium" / "demo" / "train.zip"

# Builds run with -m slow: over ~1.5 s each on 2 CPU cores (measured), or a sibling that goes through
# the same keras code as a default-run entry (efficientnet_b0, efficientnetv2_b0).
SLOW_BUILDS = {"resnet50", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
               "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnetv2_b1", "efficientnetv2_b2",
               "efficientnetv2_b3", "efficientnetv2_s"}

# Pooled feature width of each architecture (from the keras models, not from the registry).
FEATURE_WIDTH = {
    "tiny_cnn": 128, "resnet9": 512, "airbench_s": 128, "airbench_m": 192, "airbench_l": 256,
    "resnet50": 2048, "resnet50v2": 2048, "xception": 2048,
    "efficientnet_b0": 1280, "efficientnet_b1": 1280, "efficientnet_b2": 1408, "efficientnet_b3": 1536,
    "efficientnet_b4": 1792, "efficientnet_b5": 2048, "efficientnet_b6": 2304, "efficientnet_b7": 2560,
    "efficientnetv2_b0": 1280, "efficientnetv2_b1": 1280, "efficientnetv2_b2": 1408, "efficientnetv2_b3": 1536,
    "efficientnetv2_s": 1280, "convnext_tiny": 768, "mobilenetv3_large": 960,
}

ENTRIES = [pytest.param(spec, id=name) for name, spec in BACKBONES.items()]
KERAS_ENTRIES = [pytest.param(spec, id=name) for name, spec in BACKBONES.items() if spec.constructor]
BUILDS = [pytest.param(spec, id=name, marks=[pytest.mark.slow] if name in SLOW_BUILDS else [])
          for name, spec in BACKBONES.items()]


def probe_image(size: int = 32) -> np.ndarray:
    """The demo's first training photo as the pipeline delivers it: (1, size, size, 3) float32 0..255."""
    with zipfile.ZipFile(DEMO_TRAIN_ZIP) as zf:
        first = next(name for name in zf.namelist() if not name.endswith("/"))
        image = Image.open(io.BytesIO(zf.read(first))).convert("RGB")
    image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype="float32")[None]


def run(layer_or_model, images: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer_or_model(images, training=False))


def stem_input(model: keras.Model, images: np.ndarray) -> tuple[list[str], np.ndarray]:
    """What the first conv of a keras application sees: its leading Rescaling/Normalization layers applied."""
    leading = []
    for layer in model.layers[1:]:
        if not isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)):
            break
        leading.append(layer)
    x = images
    for layer in leading:
        x = layer(x)
    return [layer.name for layer in leading], keras.ops.convert_to_numpy(x)


def reference_preprocess(spec: backbones.BackboneSpec, images: np.ndarray) -> np.ndarray:
    if not spec.reference_module:
        return images / 255.0  # the tiny CNN: podium's own, no keras counterpart
    module = getattr(keras.applications, spec.reference_module)
    return np.asarray(module.preprocess_input(images.copy()))


# ---- the registry against keras' source of truth ------------------------------------------------
def test_names_lists_the_registry_and_get_rejects_unknown_names():
    assert backbones.names() == list(BACKBONES)
    assert set(FEATURE_WIDTH) == set(BACKBONES), "give every new registry entry its feature width here"
    with pytest.raises(PodiumError) as err:
        backbones.get("efficientnet-b0")
    assert "efficientnet_b0" in str(err.value) and "Expected" in str(err.value)


@pytest.mark.parametrize("spec", KERAS_ENTRIES)
def test_reference_preprocess_input_is_from_the_constructors_own_module(spec):
    reference = getattr(keras.applications, spec.reference_module).preprocess_input
    assert reference.__module__ == _keras_constructor(spec).__module__


@pytest.mark.parametrize("spec", ENTRIES)
def test_preprocess_equals_keras_preprocess_input(spec):
    probe = probe_image()
    np.testing.assert_allclose(run(Preprocess(spec.mode), probe), reference_preprocess(spec, probe), atol=1e-4)


@pytest.mark.parametrize("mode", ["tf", "caffe", "torch"])
def test_every_imagenet_mode_equals_imagenet_utils(mode):
    """Also covers modes no entry uses yet (torch: DenseNet), so adding one is safe."""
    probe = probe_image()
    expected = imagenet_utils.preprocess_input(probe.copy(), mode=mode)
    np.testing.assert_allclose(run(Preprocess(mode), probe), expected, atol=1e-4)


def test_preprocess_rejects_unknown_modes_and_round_trips_its_config():
    with pytest.raises(PodiumError):
        Preprocess("imagenet")
    for mode in MODES:
        assert Preprocess.from_config(Preprocess(mode).get_config()).mode == mode


def test_preprocess_layer_uses_keras_ops_only():
    """Model code must run under KERAS_BACKEND=jax (jax is not installed here, so check the source)."""
    import podium.models.layers

    source = inspect.getsource(podium.models.layers)
    assert "tensorflow" not in source and "tf." not in source


@pytest.mark.parametrize("spec", KERAS_ENTRIES)
def test_sizes_are_keras_own(spec, monkeypatch):
    """default_size/min_size as the keras constructor states them, and keras refuses min_size - 1."""
    with pytest.raises(ValueError):
        _keras_constructor(spec)(include_top=False, weights=None, input_shape=(spec.min_size - 1,) * 2 + (3,))
    if spec.constructor.startswith("MobileNetV3"):
        assert spec.default_size == _mobilenet_v3_trained_size(spec, monkeypatch)
        return
    seen = {}
    real = imagenet_utils.obtain_input_shape

    def capture(*args, **kwargs):
        seen.update(inspect.signature(real).bind(*args, **kwargs).arguments)
        raise _Stop

    monkeypatch.setattr(imagenet_utils, "obtain_input_shape", capture)
    with pytest.raises(_Stop):
        _keras_constructor(spec)(include_top=False, weights=None)
    assert (seen["default_size"], seen["min_size"]) == (spec.default_size, spec.min_size)


class _Stop(Exception):
    pass


def _keras_constructor(spec):
    return getattr(keras.applications, spec.constructor)


def _mobilenet_v3_trained_size(spec, monkeypatch) -> int:
    """MobileNetV3 has no default_size argument; it warns which size its ImageNet weights are for."""
    monkeypatch.setattr(file_utils, "get_file", _raise_stop)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(_Stop):
        warnings.simplefilter("always")
        _keras_constructor(spec)(include_top=False, weights="imagenet", input_shape=(spec.min_size,) * 2 + (3,))
    message = next(str(w.message) for w in caught if "will be loaded" in str(w.message))
    return int(message.split("input shape (")[1].split(",")[0])


def _raise_stop(*args, **kwargs):
    raise _Stop


# ---- building every entry ----------------------------------------------------------------------
@pytest.mark.parametrize("spec", BUILDS)
def test_backbone_builds_at_min_size_and_rescales_inside_when_raw(spec):
    model = build_backbone(spec, spec.min_size, "none")
    probe = probe_image(spec.min_size)
    features = run(model, reference_preprocess(spec, probe) if spec.mode != "raw" else probe)
    assert model.name == backbones.BACKBONE_NAME
    assert model.output_shape == (None, FEATURE_WIDTH[spec.name])
    assert features.shape == (1, FEATURE_WIDTH[spec.name]) and np.isfinite(features).all()
    if spec.mode == "raw":  # keras' preprocess_input is a pass-through: the model itself must rescale
        layers, seen_by_stem = stem_input(model, probe)
        assert layers, f"{spec.name} has no Rescaling/Normalization before its first conv"
        assert np.abs(seen_by_stem).max() <= 3.0, "0..255 pixels reach the stem unscaled"
        assert seen_by_stem.std() > 0.1, "the image reaches the stem flattened"


def test_dividing_by_255_before_efficientnet_is_not_what_keras_expects():
    """The users' 12%-instead-of-98% bug: EfficientNet rescales inside, so /255 outside shrinks the image
    to a near-constant at the stem."""
    probe = probe_image()
    expected = keras.applications.efficientnet.preprocess_input(probe.copy())
    assert not np.allclose(probe / 255.0, expected, atol=1e-2)
    np.testing.assert_allclose(run(Preprocess(backbones.get("efficientnet_b0").mode), probe), expected)
    model = build_backbone("efficientnet_b0", 32, "none")
    _, right = stem_input(model, probe)
    _, divided = stem_input(model, probe / 255.0)
    assert right.std() > 100 * divided.std()


def test_image_size_below_the_minimum_is_a_podium_error():
    with pytest.raises(PodiumError) as err:
        build_backbone("xception", 64, "none")
    assert "71" in str(err.value) and "xception" in str(err.value)
    with pytest.raises(PodiumError):
        build_backbone("tiny_cnn", backbones.get("tiny_cnn").min_size - 1, "none")


def test_names_and_get_do_not_import_keras():
    code = ("import sys, podium.models.backbones as b; b.names(); b.get('resnet50'); "
            "assert 'keras' not in sys.modules, 'keras imported'")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr


# ---- weights -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tiny_cnn", "mobilenetv3_large"])
def test_weights_from_a_local_file_are_loaded_exactly(name, tmp_path):
    original = build_backbone(name, 32, "none")
    path = tmp_path / f"{name}.weights.h5"
    original.save_weights(path)
    loaded = build_backbone(name, 32, str(path))  # random init differs: equal weights mean loaded ones
    probe = probe_image()
    assert len(loaded.get_weights()) == len(original.get_weights())
    for saved, restored in zip(original.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(saved, restored)
    inputs = run(Preprocess(backbones.get(name).mode), probe)
    np.testing.assert_allclose(run(loaded, inputs), run(original, inputs), atol=1e-6)
    larger = build_backbone(name, 48, str(path))  # the weights do not depend on the input size
    np.testing.assert_array_equal(larger.get_weights()[0], original.get_weights()[0])


def test_missing_weights_file_is_a_podium_error(tmp_path):
    missing = tmp_path / "nowhere.weights.h5"
    with pytest.raises(PodiumError) as err:
        build_backbone("mobilenetv3_large", 32, str(missing))
    assert str(missing) in str(err.value) and "Fix:" in str(err.value)


@pytest.mark.parametrize("weights", ["imagnet", "random", "weights.bin"])
def test_unrecognised_weights_value_is_a_podium_error(weights):
    with pytest.raises(PodiumError) as err:
        build_backbone("tiny_cnn", 32, weights)
    assert "imagenet, none" in str(err.value)


def test_tiny_cnn_has_no_imagenet_weights():
    with pytest.raises(PodiumError):
        build_backbone("tiny_cnn", 32, "imagenet")


def test_weights_of_another_architecture_are_a_podium_error(tmp_path):
    path = tmp_path / "tiny.weights.h5"
    build_backbone("tiny_cnn", 32, "none").save_weights(path)
    with pytest.raises(PodiumError) as err:
        build_backbone("mobilenetv3_large", 32, str(path))
    message = str(err.value)
    assert "mobilenetv3_large" in message and "MobileNetV3Large" in message and "does not fit" in message


def test_imagenet_weights_use_keras_download_and_its_rescaling(efficientnet_b0_imagenet_file, monkeypatch):
    """weights="imagenet" is keras' own path: its get_file is asked (here answered from a local file)."""
    path = efficientnet_b0_imagenet_file
    requested = []
    monkeypatch.setattr(file_utils, "get_file", lambda fname, *a, **k: requested.append(fname) or str(path))
    model = build_backbone("efficientnet_b0", 32, "imagenet")
    assert requested == ["efficientnetb0_notop.h5"]
    probe = probe_image()
    _, seen_by_stem = stem_input(model, probe)
    imagenet_normalized = imagenet_utils.preprocess_input(probe.copy(), mode="torch")
    np.testing.assert_allclose(seen_by_stem, imagenet_normalized, atol=1e-4)


def test_offline_imagenet_download_is_a_podium_error(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(PodiumError) as err:
        build_backbone("mobilenetv3_large", 32, "imagenet")
    assert "weights=<path" in str(err.value) and "URL fetch failure" in str(err.value)


def test_efficientnet_imagenet_weights_from_a_file_match_keras_imagenet_model(efficientnet_b0_imagenet_file,
                                                                             monkeypatch):
    """keras adds EfficientNet's std Rescaling only for weights="imagenet" (tensorflow#49930); the same
    weights from a file (offline Kaggle kernels) must give the very same model, not inputs at half scale."""
    path = efficientnet_b0_imagenet_file
    monkeypatch.setattr(file_utils, "get_file", lambda *a, **k: str(path))
    keras_imagenet = keras.applications.EfficientNetB0(include_top=False, weights="imagenet",
                                                        input_shape=(32, 32, 3), pooling="avg")
    from_file = build_backbone("efficientnet_b0", 32, str(path))
    probe = probe_image()
    np.testing.assert_allclose(run(from_file, probe), run(keras_imagenet, probe), atol=1e-6)
    _, seen_by_stem = stem_input(from_file, probe)
    imagenet_normalized = imagenet_utils.preprocess_input(probe.copy(), mode="torch")
    np.testing.assert_allclose(seen_by_stem, imagenet_normalized, atol=1e-4)
    plain = keras.applications.EfficientNetB0(include_top=False, weights=str(path), input_shape=(32, 32, 3))
    _, plain_stem = stem_input(plain, probe)
    assert seen_by_stem.std() > 2 * plain_stem.std()  # what keras gives for weights=<file>: half the contrast


def test_efficientnet_trained_from_scratch_file_gets_no_extra_rescaling(tmp_path):
    path = tmp_path / "scratch.weights.h5"
    build_backbone("efficientnet_b0", 32, "none").save_weights(path)
    layers, seen_by_stem = stem_input(build_backbone("efficientnet_b0", 32, str(path)), probe_image())
    assert len(layers) == 2
    np.testing.assert_allclose(seen_by_stem, probe_image() / 255.0, atol=1e-5)


@pytest.fixture(scope="module")
def efficientnet_b0_imagenet_file(tmp_path_factory) -> Path:
    """A stand-in for keras' efficientnetb0_notop.h5: its Normalization holds the ImageNet mean and,
    as keras' file does, the std where the variance belongs."""
    model = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 3))
    norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    norm.adapt_mean.assign([0.485, 0.456, 0.406])
    norm.adapt_variance.assign([0.229, 0.224, 0.225])
    path = tmp_path_factory.mktemp("weights") / "efficientnetb0_imagenet_like.weights.h5"
    model.save_weights(path)
    return path


def test_a_podium_checkpoint_of_another_backbone_says_which_one_it_holds(tmp_path):
    """weights=runs/<id>/fold-0/best.keras of a resnet9 run, fine-tuned as tiny_cnn: the error names resnet9."""
    path = tmp_path / "best.keras"
    build_classifier(ExperimentConfig(backbone="resnet9", image_size=32), 5).save(path)
    assert backbones.backbone_in_saved_model(path) == "resnet9"
    with pytest.raises(PodiumError) as err:
        build_backbone("tiny_cnn", 32, str(path))
    message = str(err.value)
    assert "does not fit backbone tiny_cnn" in message and "podium model on backbone resnet9" in message
    assert "set backbone=resnet9" in message


def test_the_backbone_of_a_saved_model_is_read_only_from_podium_names(tmp_path):
    bare = tmp_path / "bare.keras"
    build_backbone("tiny_cnn", 32, "none").save(bare)  # the sub-model alone: named "backbone", no registry name
    assert backbones.backbone_in_saved_model(bare) == ""
    assert backbones.backbone_in_saved_model(tmp_path / "missing.keras") == ""
    weights = tmp_path / "tiny.weights.h5"
    build_backbone("tiny_cnn", 32, "none").save_weights(weights)
    assert backbones.backbone_in_saved_model(weights) == ""
