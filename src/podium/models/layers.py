"""The first layer of every podium model: the backbone's own input preprocessing.

Models take raw float 0..255 pixels and this layer maps them to what the backbone's weights were
trained on, so the choice lives in the registry and is saved inside the `.keras` file: no user code,
training script or predict script can pick the wrong range. keras.ops only (runs under JAX).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from podium.errors import PodiumError

MODES = ("raw", "tf", "caffe", "torch", "unit")

# The constants keras.applications.imagenet_utils.preprocess_input uses, so the results match it.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
_TORCH_STD_RGB = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="podium")
class Preprocess(keras.layers.Layer):
    """0..255 RGB (channels last) -> the range one backbone family expects.

    raw: unchanged, the keras model rescales itself; tf: -1..1; caffe: BGR minus the ImageNet mean;
    torch: /255 then ImageNet mean/std; unit: /255.
    """

    def __init__(self, mode: str, **kwargs: Any):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise PodiumError(f"Unknown preprocessing mode {mode!r}.", expected=f"one of {', '.join(MODES)}",
                              received=repr(mode), fix="use the mode from podium.models.backbones.get(name).mode")
        self.mode = mode

    def call(self, images):
        x = ops.cast(images, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "unit":
            return x / 255.0
        if self.mode == "caffe":
            return ops.flip(x, axis=-1) - self._constant(_CAFFE_MEAN_BGR)
        if self.mode == "torch":
            return (x / 255.0 - self._constant(_TORCH_MEAN_RGB)) / self._constant(_TORCH_STD_RGB)
        return x

    def _constant(self, values: tuple[float, ...]):
        return ops.convert_to_tensor(values, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}
