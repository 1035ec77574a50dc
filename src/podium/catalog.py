"""The names a config may choose among (augmentation recipes, TTA views, backbones), without keras.

Config validation, the config reference and the data advice need only the names and a backbone's sizes;
reading them from the keras modules that build the recipes cost every `podium config` a keras import
(about 4 s). Here they are plain data: podium.training.augment, podium.training.tta and
podium.models.backbones build their registries under exactly these names (tests/test_catalog.py holds
them to it), so a name is added here first and its builder beside it there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from podium.errors import PodiumError

# batch recipes: Keras layers on the whole batch (podium.training.augment.BATCH_RECIPES)
BATCH_AUGMENTS = ("flip", "vflip", "rot90", "crop", "rotation", "zoom", "translation", "color", "randaugment",
                  "mixup", "cutmix", "erasing")
# batch recipes a compiled train step can run (podium.training.augment_layers.STEP_RECIPES): whole-batch keras.ops
# that move pixels alone; config key augment_in puts a chain of them in the model
STEP_AUGMENTS = ("flip", "vflip", "rot90", "crop")
# CPU recipes: albumentations, one image at a time (podium.training.augment.CPU_RECIPES); "none" = off
CPU_AUGMENTS = ("none", "light", "medium", "heavy")
# test-time views (podium.training.tta.VIEWS)
TTA_VIEWS = ("identity", "hflip", "vflip", "rot90", "rot180", "rot270", "transpose", "shift_left", "shift_right",
             "shift_up", "shift_down", "zoom_in", "zoom_out")

Mode = Literal["raw", "tf", "caffe", "torch", "unit"]


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone. `mode` is what Preprocess does to 0..255 pixels before the keras model sees them:
    raw (the keras model rescales itself), tf (-1..1), caffe (BGR, ImageNet mean), torch (ImageNet
    mean/std), unit (/255, tiny CNN). `default_size`: the resolution the weights were trained at;
    `min_size`: the smallest input keras accepts.

    The registry, never the user, decides the preprocessing: feeding a backbone the wrong input range is
    the most expensive silent mistake in transfer learning (EfficientNet fed /255 pixels trains to a
    fraction of its accuracy without any error). Every `mode` was read off the keras source
    (keras/src/applications/*.py) and is checked against keras' own `preprocess_input` in
    tests/test_backbones.py."""

    name: str
    constructor: str  # attribute of keras.applications; "" for the from-scratch nets (tiny_cnn, resnet9)
    reference_module: str  # keras.applications.<module>.preprocess_input is the ground truth
    mode: Mode
    default_size: int
    min_size: int = 32

    @property
    def has_pretrained_weights(self) -> bool:
        return bool(self.constructor)


def _efficientnets() -> list[BackboneSpec]:
    sizes = (224, 240, 260, 300, 380, 456, 528, 600)  # B0..B7, as in keras' EfficientNetB<i>()
    return [BackboneSpec(f"efficientnet_b{i}", f"EfficientNetB{i}", "efficientnet", "raw", size)
            for i, size in enumerate(sizes)]


def _efficientnets_v2() -> list[BackboneSpec]:
    sizes = {"b0": 224, "b1": 240, "b2": 260, "b3": 300, "s": 384}  # keras' EfficientNetV2*()
    return [BackboneSpec(f"efficientnetv2_{v}", f"EfficientNetV2{v.upper()}", "efficientnet_v2", "raw", size)
            for v, size in sizes.items()]


AIRBENCH_SIZES = ("s", "m", "l")  # their widths: podium.models.backbones

BACKBONES: dict[str, BackboneSpec] = {spec.name: spec for spec in [
    BackboneSpec("tiny_cnn", "", "", "unit", default_size=32, min_size=8),
    BackboneSpec("resnet9", "", "", "unit", default_size=32, min_size=8),
    *(BackboneSpec(f"airbench_{size}", "", "", "unit", default_size=32, min_size=8) for size in AIRBENCH_SIZES),
    BackboneSpec("resnet50", "ResNet50", "resnet50", "caffe", 224),
    BackboneSpec("resnet50v2", "ResNet50V2", "resnet_v2", "tf", 224),
    BackboneSpec("xception", "Xception", "xception", "tf", 299, min_size=71),
    *_efficientnets(),
    *_efficientnets_v2(),
    BackboneSpec("convnext_tiny", "ConvNeXtTiny", "convnext", "raw", 224),
    BackboneSpec("mobilenetv3_large", "MobileNetV3Large", "mobilenet_v3", "raw", 224),
]}

# config key -> the names its value (or each item of it) must be one of
CHOICES: dict[str, tuple[str, ...]] = {"backbone": tuple(BACKBONES), "augment": BATCH_AUGMENTS,
                                       "cpu_augment": CPU_AUGMENTS, "tta": TTA_VIEWS}


def backbone_names() -> list[str]:
    return list(BACKBONES)


def backbone(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise PodiumError(f"Unknown backbone {name!r}.", expected=f"one of: {', '.join(backbone_names())}",
                          received=repr(name), fix="set backbone= to one of the listed names")
    return BACKBONES[name]
