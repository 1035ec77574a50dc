"""Speed settings resolved against the machine a run lands on: precision, XLA, several devices, seeding.

One config must train fast on a Kaggle 2xT4, a TPU v3-8, an H100 and a laptop CPU, so the config says
"auto" and this module decides from the devices present: bfloat16 where the hardware has it (TPU,
NVIDIA compute capability >= 8), float16 with loss scaling on older GPUs; on a CPU bfloat16 only where it
has bf16 instructions (AVX512-BF16 or AMX, read from /proc/cpuinfo) and TensorFlow's oneDNN kernels use them,
else float32 (bf16 is emulated there and slower); data parallel over every accelerator when there is more
than one.

Settings are global in Keras (dtype policy, distribution), so `training_context` restores what it found:
a run, a search trial or a test never leaks its policy into the next.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Iterator

import keras
import numpy as np

from podium.errors import PodiumError

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
BF16_MIN_CUDA_CAPABILITY = 8.0  # Ampere and later run bfloat16 natively; a T4 (7.5) does not


@dataclass(frozen=True)
class Accelerator:
    platform: str  # "gpu", "tpu" or "cpu"
    compute_capability: float = 0.0  # NVIDIA only
    native_bf16: bool = False  # a CPU with bf16 instructions, under a backend whose kernels use them


def accelerators() -> list[Accelerator]:
    """The devices the active Keras backend will compute on (CPU only: one Accelerator("cpu"))."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        found = [Accelerator(d.platform, _capability(getattr(d, "compute_capability", 0)))
                 for d in jax.devices() if d.platform in ("gpu", "tpu")]
    elif backend == "tensorflow":
        import tensorflow as tf

        found = [Accelerator("gpu", _capability(tf.config.experimental.get_device_details(d)
                                                .get("compute_capability", 0)))
                 for d in tf.config.list_physical_devices("GPU")]
        found += [Accelerator("tpu") for _ in tf.config.list_logical_devices("TPU")]
    else:
        found = []
    return found or [Accelerator("cpu", native_bf16=backend == "tensorflow" and cpu_has_bf16())]


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # Cooper Lake, Sapphire Rapids and later; Zen 4


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 natively (Linux's /proc/cpuinfo flags; elsewhere: no)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
                cpuinfo = handle.read()
        except OSError:
            return False
    flags = {flag for line in cpuinfo.splitlines() if line.startswith("flags") for flag in line.split()}
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def _capability(value) -> float:
    if isinstance(value, (tuple, list)):
        return float(f"{value[0]}.{value[1]}")
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def resolve_precision(precision: str, devices: list[Accelerator] | None = None) -> str:
    """The Keras dtype policy name for a config's `precision`; "auto" decides from the devices."""
    if precision not in PRECISIONS:
        raise PodiumError(f"Unknown precision {precision!r}.", expected=f"one of: {', '.join(PRECISIONS)}",
                          received=repr(precision), fix="set precision=auto")
    if precision != "auto":
        return precision
    devices = accelerators() if devices is None else devices
    first = devices[0]
    if first.platform == "tpu" or (first.platform == "gpu" and first.compute_capability >= BF16_MIN_CUDA_CAPABILITY):
        return "mixed_bfloat16"
    if first.platform == "gpu":
        return "mixed_float16"  # T4 / P100: tensor cores in fp16; Keras adds loss scaling in compile
    return "mixed_bfloat16" if first.native_bf16 else "float32"


def jit_compile(value: bool | None) -> bool | str:
    """model.compile's jit_compile: the config's bool, or Keras' own "auto" (XLA where it is supported)."""
    return "auto" if value is None else bool(value)


def seed_everything(seed: int) -> None:
    """keras.utils.set_random_seed, without its `import tensorflow` when TF is not the backend."""
    with tensorflow_left_unloaded():
        keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def tensorflow_left_unloaded() -> Iterator[None]:
    """Under JAX, keep Keras from importing an installed TensorFlow it does not need.

    Keras asks "is TF available?" to seed TF and, on every checkpoint save, to test isinstance(x,
    tf.TensorShape); answering imports TF (~4 s, and a second framework's memory on a Kaggle GPU).
    While TF is not loaded no object can be a TF object, so "not available" is the true answer.
    """
    from keras.src.utils import module_utils

    lazy = module_utils.tensorflow
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules or lazy._available is not None:
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = None


def device_count() -> int:
    """Devices a data-parallel step would split a batch over (JAX: all, so XLA's fake host devices
    test the multi-device path on a CPU; TensorFlow: its GPUs)."""
    if keras.backend.backend() == "jax":
        import jax

        return len(jax.devices())
    devices = accelerators()
    return 1 if devices[0].platform == "cpu" else len(devices)


@contextlib.contextmanager
def training_context(precision: str = "float32", distribute: str = "none") -> Iterator[str]:
    """Apply the dtype policy (and data parallelism over >1 accelerator) inside, restore both after.

    Yields the resolved policy name. Under JAX the batch is split across devices by
    keras.distribution.DataParallel; under TensorFlow by a MirroredStrategy scope.
    """
    previous_policy = keras.mixed_precision.global_policy()
    policy = resolve_precision(precision)
    with contextlib.ExitStack() as stack:
        stack.enter_context(tensorflow_left_unloaded())
        keras.mixed_precision.set_global_policy(policy)
        stack.callback(keras.mixed_precision.set_global_policy, previous_policy)
        if distribute == "auto" and device_count() > 1:
            stack.enter_context(_data_parallel())
        yield policy


@contextlib.contextmanager
def _data_parallel() -> Iterator[None]:
    backend = keras.backend.backend()
    if backend == "jax":
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel())
        try:
            yield
        finally:
            keras.distribution.set_distribution(previous)
    elif backend == "tensorflow":
        import tensorflow as tf

        with tf.distribute.MirroredStrategy().scope():
            yield
    else:
        yield


def parallel_devices() -> int:
    """How many devices the active keras.distribution splits each batch over (1: none)."""
    if keras.backend.backend() != "jax" or keras.distribution.distribution() is None:
        return 1
    return len(keras.distribution.distribution().device_mesh.devices.flatten())


def device_batches(batches):
    """`batches` as fit should see them: under data parallelism each batch padded to a multiple of the
    device count (JAX refuses to split 63 images over 2 devices), the padding weighted 0 so losses and
    metrics are those of the real rows. Unchanged on one device."""
    devices = parallel_devices()
    return batches if devices == 1 else _PaddedBatches(batches, devices)


@contextlib.contextmanager
def single_device() -> Iterator[None]:
    """Predict with no distribution: row-exact outputs for any batch size (prediction is cheap)."""
    if keras.backend.backend() != "jax" or keras.distribution.distribution() is None:
        yield
        return
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def _padded(array: np.ndarray, rows: int) -> np.ndarray:
    return array if rows == 0 else np.concatenate([array, np.repeat(array[:1], rows, axis=0)], axis=0)


class _PaddedBatches(keras.utils.PyDataset):
    """(x, y, sample_weight) batches whose length is a multiple of `devices`; padding rows weigh 0."""

    def __init__(self, batches, devices: int):
        super().__init__(workers=getattr(batches, "workers", 1), use_multiprocessing=False)
        self.batches, self.devices = batches, devices

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        batch = self.batches[i]
        x, y = batch[:2]
        missing = -len(x) % self.devices
        given = np.asarray(batch[2], "float32") if len(batch) > 2 else np.ones(len(x), "float32")  # pseudo-labels
        weights = np.concatenate([given, np.zeros(missing, "float32")])
        return _padded(x, missing), _padded(y, missing), weights

    def on_epoch_end(self) -> None:
        self.batches.on_epoch_end()
