"""Backbones built from the registry (podium.catalog.BACKBONES): which keras constructor, which input range.

The registry itself (names, sizes, preprocessing modes) lives in podium.catalog so config validation needs
no keras; `names()`, `get()`, `BACKBONES` and `BackboneSpec` are the same objects, re-exported for the
model code. Every from-scratch entry there has its builder here (_FROM_SCRATCH; tests/test_catalog.py).
"""

from __future__ import annotations

import inspect
import json
import math
import warnings
import zipfile
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podium.lazy import LazyModule
from podium.catalog import BACKBONES, BackboneSpec  # noqa: F401 (re-exported)
from podium.catalog import backbone as get, backbone_names as names  # noqa: F401 (re-exported)
from podium.errors import PodiumError
from podium.models.checkpoint_files import ZIP, file_format
from podium.models.weights_files import WeightsMismatch, load_weights_file

# imported on first use: names() and get() load no keras (config validation)
layers = LazyModule("podium.models.layers")

if TYPE_CHECKING:
    import keras

BACKBONE_NAME = "backbone"  # the sub-model's name inside a classifier; set_backbone_trainable finds it by it
WEIGHT_FILE_SUFFIXES = (".weights.h5", ".h5", ".hdf5", ".keras")

# keras' EfficientNet (V1) ImageNet weights store the std, not the variance, in their Normalization
# layer, and keras makes up for it with an extra Rescaling only when weights == "imagenet"
# (tensorflow/tensorflow#49930). Values from keras/src/applications/efficientnet.py.
_EFFICIENTNET_IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)

# the widths of podium.catalog.AIRBENCH_SIZES; airbench94 itself: 64-256-256
_AIRBENCH_WIDTHS = {"s": (32, 64, 128), "m": (48, 96, 192), "l": (64, 128, 256)}


def __getattr__(attr: str) -> Any:
    """`from podium.models.backbones import Preprocess` works, without importing keras for `names()`."""
    if attr == "Preprocess":
        return layers.Preprocess
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


# ---- building ------------------------------------------------------------------------------------
def build_backbone(spec: BackboneSpec | str, image_size: int, weights: str = "none") -> keras.Model:
    """Feature extractor: (S, S, 3) backbone-ready input -> pooled features (no classification top).

    weights: "imagenet" (keras' own download), "none" (random init) or a local file (.weights.h5,
    legacy .h5, or a .keras model whose weights are copied), e.g. a Kaggle dataset on an offline kernel;
    the file is read by its content whatever its name says (podium.models.weights_files).
    """
    spec = get(spec) if isinstance(spec, str) else spec
    _check_size(spec, image_size)
    source = _weights_source(spec, weights)
    if not spec.has_pretrained_weights:
        model = _FROM_SCRATCH[spec.name](image_size)
    else:
        model = _keras_application(spec, image_size, "imagenet" if source == "imagenet" else None)
    if isinstance(source, Path):
        _load_weights_file(model, spec, source)
        model = _restore_efficientnet_imagenet_rescaling(model, spec)
    model.name = BACKBONE_NAME
    return model


def is_pretrained(weights: str) -> bool:
    """Anything but "none" starts from trained weights, whose BatchNorm statistics must be kept."""
    return weights.strip().lower() != "none"


def _check_size(spec: BackboneSpec, image_size: int) -> None:
    if image_size < spec.min_size:
        raise PodiumError(f"Image size {image_size} is too small for backbone {spec.name}.",
                          expected=f"image_size >= {spec.min_size} (trained at {spec.default_size})",
                          received=str(image_size),
                          fix=f"set image_size={spec.default_size}, or 0 for the backbone's default")


def _weights_source(spec: BackboneSpec, weights: str) -> str | Path | None:
    """"imagenet", None (random init) or an existing local file; anything else is the user's to fix."""
    choice = weights.strip()
    if choice.lower() == "none":
        return None
    if choice.lower() == "imagenet":
        if not spec.has_pretrained_weights:
            raise PodiumError(f"Backbone {spec.name} has no ImageNet weights.", expected="weights=none",
                              received="weights=imagenet", fix="set weights=none, or pick a keras backbone")
        return "imagenet"
    path = Path(choice).expanduser()
    if not path.name.endswith(WEIGHT_FILE_SUFFIXES) and not (path.is_file() and file_format(path)):
        raise PodiumError(f"Weights {choice!r} are neither a keyword nor a weights file.",
                          expected=f"imagenet, none, or a path ending in {', '.join(WEIGHT_FILE_SUFFIXES)}",
                          received=repr(choice), fix="set weights=imagenet, weights=none or weights=<file>")
    if not path.is_file():
        raise PodiumError(f"Weights file {path} does not exist.",
                          expected=f"an existing file with {spec.name} weights (include_top=False)",
                          received=str(path), fix="fix the path, or set weights=imagenet / weights=none")
    return path


def _tiny_cnn(image_size: int) -> keras.Model:
    """Three conv blocks: fast enough on a laptop CPU to test the whole pipeline in seconds."""
    import keras
    from keras import layers

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = inputs
    for block, filters in enumerate((32, 64, 128), start=1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{block}_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"block{block}_bn")(x)  # few steps per epoch on small data
        x = layers.ReLU(name=f"block{block}_relu")(x)
        x = layers.MaxPooling2D(2, padding="same", name=f"block{block}_pool")(x)
    outputs = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, outputs, name="tiny_cnn")


def _resnet9(image_size: int) -> keras.Model:
    """The CIFAR-10 speed-run ResNet-9 (Page's DAWNBench net, 64-128-256-512): from scratch, it reaches
    ~90% in a few epochs, which a keras.applications ResNet at 32 px does not (docs/speed.md)."""
    import keras
    from keras import layers

    def conv_bn(x, filters: int, name: str, pool: bool = False):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
        if pool:
            x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    def residual(x, filters: int, name: str):
        shortcut = x
        x = conv_bn(x, filters, f"{name}a")
        x = conv_bn(x, filters, f"{name}b")
        return layers.Add(name=f"{name}_add")([shortcut, x])

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = conv_bn(inputs, 64, "prep")
    x = conv_bn(x, 128, "layer1", pool=True)
    x = residual(x, 128, "res1")
    x = conv_bn(x, 256, "layer2", pool=True)
    x = conv_bn(x, 512, "layer3", pool=True)
    x = residual(x, 512, "res3")
    outputs = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, outputs, name="resnet9")


def _airbench(widths: tuple[int, int, int], image_size: int) -> keras.Model:
    """The airbench CIFAR-10 speed-run net, narrowed: a 2x2 stem, then per width conv -> pool -> BN -> GELU
    -> conv -> BN -> GELU. At 32 px it gives the most accuracy per CPU second of the nets measured in
    docs/speed.md (the CPU recipe, configs/cifar10-cpu.yaml)."""
    import keras
    from keras import layers

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Conv2D(24, 2, name="stem_conv")(inputs)
    x = layers.Activation("gelu", name="stem_gelu")(x)
    for group, width in enumerate(widths, start=1):
        for step in ("a", "b"):
            name = f"group{group}{step}"
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
            if step == "a":
                x = layers.MaxPooling2D(2, padding="same", name=f"{name}_pool")(x)
            x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
            x = layers.Activation("gelu", name=f"{name}_gelu")(x)
    outputs = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, outputs, name=f"airbench_{'_'.join(map(str, widths))}")


_FROM_SCRATCH = {"tiny_cnn": _tiny_cnn, "resnet9": _resnet9,
                 **{f"airbench_{size}": partial(_airbench, widths) for size, widths in _AIRBENCH_WIDTHS.items()}}


def _keras_application(spec: BackboneSpec, image_size: int, weights: str | None) -> keras.Model:
    import keras

    constructor = getattr(keras.applications, spec.constructor)
    kwargs: dict[str, Any] = dict(include_top=False, weights=weights, input_shape=(image_size, image_size, 3),
                                  pooling="avg")
    if "include_preprocessing" in inspect.signature(constructor).parameters:
        kwargs["include_preprocessing"] = True  # mode "raw" relies on it; never on keras' default
    if weights != "imagenet":
        return constructor(**kwargs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MobileNetV3: "weights for 224 will be loaded" at other sizes
            return constructor(**kwargs)
    except Exception as exc:  # keras' get_file raises a bare Exception when offline
        raise PodiumError(f"Could not fetch the ImageNet weights for {spec.name}.",
                          expected="network access to keras' weight storage, or the file in ~/.keras/models",
                          received=_first_line(exc),
                          fix="on an offline machine (e.g. a Kaggle kernel) attach the weights file and set "
                              "weights=<path to it>") from exc


def _load_weights_file(model: keras.Model, spec: BackboneSpec, path: Path) -> None:
    """By content (podium.models.weights_files): a damaged or foreign file is named as such there; weights of
    another network are "does not fit", naming the layer and, for a podium model, the backbone it holds."""
    try:
        load_weights_file(model, path)
    except WeightsMismatch as exc:
        made_by = f"keras.applications.{spec.constructor}" if spec.constructor else f"podium's {spec.name}"
        held = backbone_in_saved_model(path)
        fix = (f"set backbone={held} (the backbone the file was trained with), or use a file made for {spec.name}"
               if held and held != spec.name else
               f"use the file made for {spec.name}, or set backbone= to the one the file was made for")
        raise PodiumError(f"Weights file {path} does not fit backbone {spec.name}: {exc}.",
                          expected=f"weights saved from a {spec.name} backbone ({made_by}, include_top=False; "
                                   "any input size), e.g. build_backbone(...).save_weights('x.weights.h5'), or "
                                   f"a podium run's fold-<k>/best.keras trained with backbone={spec.name}",
                          received=(f"a podium model on backbone {held}: " if held else "") + str(exc),
                          fix=fix) from exc


def backbone_in_saved_model(path: Path) -> str:
    """The registry backbone a podium .keras file was built on, read from its name (podium_<backbone>,
    podium_unet_<backbone>, ...) in the zip's config.json without loading it; "" when it does not say."""
    if file_format(Path(path)) != ZIP:
        return ""
    try:
        with zipfile.ZipFile(path) as archive:
            name = str(json.loads(archive.read("config.json"))["config"]["name"])
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile):
        return ""
    if not name.startswith("podium_"):
        return ""
    matches = [backbone for backbone in BACKBONES if name.endswith(f"_{backbone}")]
    return max(matches, key=len, default="")


def _restore_efficientnet_imagenet_rescaling(model: keras.Model, spec: BackboneSpec) -> keras.Model:
    """A file of EfficientNet (V1) ImageNet weights needs the Rescaling keras adds only for "imagenet".

    Built with weights=None the graph lacks it, and every input reaches the stem at about half the
    scale the weights were trained on, silently. Files whose Normalization holds the ImageNet std
    (keras' own notop files, or any model fine-tuned from them) get the layer back where keras puts it.
    """
    if spec.reference_module != "efficientnet":
        return model
    import keras
    import numpy as np

    norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    variance = np.asarray(keras.ops.convert_to_numpy(norm.adapt_variance))
    if not np.allclose(variance, _EFFICIENTNET_IMAGENET_STDDEV_RGB, atol=1e-4):
        return model  # trained from scratch: keras' graph has no extra Rescaling either

    def call_with_rescaling(layer, *args, **kwargs):
        outputs = layer(*args, **kwargs)
        if layer is norm:
            scale = [1.0 / math.sqrt(std) for std in _EFFICIENTNET_IMAGENET_STDDEV_RGB]
            outputs = keras.layers.Rescaling(scale, name="imagenet_stddev_rescaling")(outputs)
        return outputs

    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call_with_rescaling)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
