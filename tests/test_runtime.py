"""Speed settings: precision resolved per device and restored after a run, XLA from the config, data
parallel over several devices (XLA's fake CPU devices under JAX), and the JAX backend end to end
without TensorFlow loaded."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from podium.tasks import get_task
from podium.training import runtime
from podium.config import load_config
from podium.errors import PodiumError
from podium.models.classifier import build_classifier
from podium.training.runtime import Accelerator, resolve_precision
from podium.runners.train import train_and_evaluate

HAS_JAX = importlib.util.find_spec("jax") is not None
NO_JAX = "jax is not installed (pip install -e '.[jax]'); the JAX backend path is untested here"


@pytest.mark.parametrize("devices, expected", [
    ([Accelerator("cpu")], "float32"),
    ([Accelerator("cpu", native_bf16=True)], "mixed_bfloat16"),  # AVX512-BF16 / AMX under TensorFlow
    ([Accelerator("gpu", 9.0)], "mixed_bfloat16"),  # H100
    ([Accelerator("gpu", 8.0), Accelerator("gpu", 8.0)], "mixed_bfloat16"),  # 2x A100
    ([Accelerator("gpu", 7.5), Accelerator("gpu", 7.5)], "mixed_float16"),  # Kaggle 2x T4
    ([Accelerator("tpu")] * 8, "mixed_bfloat16"),  # TPU v3-8
])
def test_auto_precision_follows_the_hardware(devices, expected):
    assert resolve_precision("auto", devices) == expected
    assert resolve_precision("float32", devices) == "float32"  # an explicit choice is kept


def test_auto_precision_on_this_cpu_is_bf16_only_where_it_has_bf16_instructions():
    if runtime.accelerators()[0].platform != "cpu":
        pytest.skip("this machine has an accelerator")
    native = runtime.cpu_has_bf16() and keras.backend.backend() == "tensorflow"
    assert resolve_precision("auto") == ("mixed_bfloat16" if native else "float32")


@pytest.mark.parametrize("flags, expected", [
    ("flags\t\t: fpu sse4_2 avx512f avx512_bf16 amx_tile", True),
    ("flags\t\t: fpu sse4_2 amx_bf16 amx_tile", True),
    ("flags\t\t: fpu sse4_2 avx2 avx512f avx512_vnni", False),  # AVX-512 without bf16: emulated
    ("processor\t: 0\nmodel name\t: avx512_bf16 in a name is no flag", False),
    ("", False),
])
def test_cpu_bf16_is_read_from_the_flags_line(flags, expected):
    assert runtime.cpu_has_bf16(flags) is expected


def test_unknown_precision_is_a_podium_error():
    with pytest.raises(PodiumError, match="precision"):
        resolve_precision("bf16")


def test_precision_policy_applies_inside_and_is_restored_even_on_error():
    before = keras.mixed_precision.global_policy().name
    with pytest.raises(RuntimeError):
        with runtime.training_context("mixed_bfloat16") as policy:
            assert policy == keras.mixed_precision.global_policy().name == "mixed_bfloat16"
            raise RuntimeError("a failing run")
    assert keras.mixed_precision.global_policy().name == before


def test_mixed_model_keeps_float32_softmax_and_computes_in_bfloat16():
    cfg = load_config(None, ["backbone=tiny_cnn", "image_size=32", "precision=mixed_bfloat16"])
    with runtime.training_context(cfg.precision):
        model = build_classifier(cfg, 10)
    conv = model.get_layer("backbone").get_layer("block1_conv")
    assert conv.compute_dtype == "bfloat16" and conv.variable_dtype == "float32"
    assert model.get_layer("predictions").compute_dtype == "float32"
    probs = model.predict_on_batch(np.full((2, 32, 32, 3), 128.0, "float32"))
    assert keras.ops.convert_to_numpy(probs).dtype == np.float32
    np.testing.assert_allclose(keras.ops.convert_to_numpy(probs).sum(1), 1.0, atol=1e-3)


class Probe(keras.callbacks.Callback):
    """What the fit actually ran with."""

    def on_train_begin(self, logs=None):
        self.policy = keras.mixed_precision.global_policy().name
        self.jit_compile = self.model.jit_compile
        self.conv_dtype = self.model.get_layer("backbone").get_layer("block1_conv").compute_dtype


def test_train_and_evaluate_uses_precision_and_jit_from_the_config_and_restores_the_policy(tiny, tmp_path):
    probe = Probe()
    cfg = tiny.cfg(tmp_path, "tta=[identity,hflip]", "precision=mixed_bfloat16", "jit_compile=false")
    result = train_and_evaluate(cfg, get_task(cfg.task), 0, extra_callbacks=[probe])
    assert (probe.policy, probe.conv_dtype, probe.jit_compile) == ("mixed_bfloat16", "bfloat16", False)
    assert keras.mixed_precision.global_policy().name == "float32"  # nothing leaks into the next run
    assert 0.0 <= result.val_score <= 1.0 and result.epochs_run == 1


def test_speed_keys_at_their_defaults_keep_existing_run_ids(tmp_path):
    plain = load_config(None, [])
    assert plain.config_hash() == load_config(None, ["precision=float32", "distribute=auto"]).config_hash()
    assert plain.config_hash() != load_config(None, ["precision=mixed_bfloat16"]).config_hash()


def _run_under_jax(code: str, tmp_path, extra_env: dict | None = None) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", **(extra_env or {})}
    script = tmp_path / "under_jax.py"
    script.write_text(textwrap.dedent(code))
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


JAX_TRAIN = """
    import json, sys
    import keras
    from podium.training import runtime
    from podium.config import load_config
    from podium.runners.train import train_and_evaluate
    from podium.tasks import get_task
    from podium.workflow import predict_run

    cfg = load_config(None, {args!r})
    devices = []
    count = keras.callbacks.LambdaCallback(on_train_begin=lambda logs: devices.append(runtime.parallel_devices()))
    result = train_and_evaluate(cfg, get_task(cfg.task), 0, extra_callbacks=[count])
    submission = predict_run(cfg, get_task(cfg.task), progress=False) if {predict} else None
    print(json.dumps({{"backend": keras.backend.backend(), "val_score": result.val_score,
                      "val_score_tta": result.val_score_tta, "epochs": result.epochs_run,
                      "rows": submission.n_rows if submission else 0, "devices": devices[0],
                      "tensorflow_loaded": any(m == "tensorflow" or m.startswith("tensorflow.") for m in sys.modules)}}))
"""


def _jax_args(tiny, tmp_path, batch: int) -> list[str]:
    """The tiny demo run, two epochs with augmentation and TTA, `batch` images a step."""
    return tiny.args(tmp_path, "epochs=2", f"batch_size={batch}", "augment=[flip,crop]", "tta=[identity,hflip]")


@pytest.mark.skipif(not HAS_JAX, reason=NO_JAX)
def test_jax_backend_trains_and_predicts_with_tta_without_loading_tensorflow(tiny, tmp_path):
    out = _run_under_jax(JAX_TRAIN.format(args=_jax_args(tiny, tmp_path, 64), predict=True), tmp_path)
    assert out["backend"] == "jax" and out["epochs"] == 2
    assert out["val_score"] > 0.15  # 10 classes: 2 epochs beat chance (0.1) on the demo
    assert out["rows"] > 0 and out["devices"] == 1
    assert out["tensorflow_loaded"] is False


@pytest.mark.slow
@pytest.mark.skipif(not HAS_JAX, reason=NO_JAX)
def test_jax_data_parallel_over_two_devices_with_a_batch_that_does_not_divide(tiny, tmp_path):
    """63 per batch over 2 devices: padded with zero-weight rows for fit, predicted on one device."""
    out = _run_under_jax(JAX_TRAIN.format(args=_jax_args(tiny, tmp_path, 63), predict=False),
                         tmp_path, {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert out["devices"] == 2 and out["epochs"] == 2 and out["val_score"] > 0.15


HIDE_TENSORFLOW = """
    import json, os, sys
    os.environ.pop("KERAS_BACKEND", None)

    class NoTensorFlow:  # the GPU image: jax installed, tensorflow not
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "tensorflow":
                raise ModuleNotFoundError("No module named 'tensorflow'")
            return None

    sys.meta_path.insert(0, NoTensorFlow())
    import podium.runners.train  # noqa: F401  (imports keras)
    import keras
    print(json.dumps({"backend": keras.backend.backend()}))
"""


@pytest.mark.skipif(not HAS_JAX, reason=NO_JAX)
def test_jax_is_chosen_automatically_when_tensorflow_is_absent(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    script = tmp_path / "no_tf.py"
    script.write_text(textwrap.dedent(HIDE_TENSORFLOW))
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["backend"] == "jax"


JAX_SEGMENTATION = """
    import json, sys
    import keras
    from podium.config import load_config
    from podium.tasks import get_task
    from podium.workflow import make_split, predict_run, prepare_data, train_run

    cfg = load_config("{config}", ["data_dir={data}", "runs_dir={runs}", "submissions_dir={subs}", "image_size=32",
                                   "epochs=6", "unet_filters=8", "verbose=0"])
    prepare_data(cfg.competition, get_task(cfg.task), cfg.data_dir)
    make_split(cfg)
    summary = train_run(cfg, get_task(cfg.task), progress=False)
    submission = predict_run(cfg, get_task(cfg.task), progress=False)
    print(json.dumps({{"backend": keras.backend.backend(), "dice": summary.cv_mean, "rows": submission.n_rows,
                      "images": submission.counts["images"],
                      "tensorflow_loaded": any(m == "tensorflow" or m.startswith("tensorflow.") for m in sys.modules)}}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not HAS_JAX, reason=NO_JAX)
def test_jax_backend_runs_segmentation_from_files_to_rle_rows_without_tensorflow(tmp_path):
    config = Path(__file__).resolve().parents[1] / "configs" / "shapes-segmentation.yaml"
    out = _run_under_jax(JAX_SEGMENTATION.format(config=config, data=tmp_path / "data", runs=tmp_path / "runs",
                                                 subs=tmp_path / "subs"), tmp_path)
    assert out["backend"] == "jax" and out["tensorflow_loaded"] is False
    # predicting nothing scores Dice 0.2 here (the share of empty images); measured 0.68 after 6 epochs
    assert out["images"] == 100 and out["rows"] >= 100 and out["dice"] > 0.4
