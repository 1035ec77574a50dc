"""TensorFlow's start-up lines are held to TF_CPP_MIN_LOG_LEVEL where `podium` starts, and nothing else is
hidden (issue 21, first contact): a real `podium config` in a subprocess, and a stand-in `tensorflow`
package that writes what TF writes (and a real error) to file descriptor 2 while it is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from podium.cli.quiet import ABSL_PREAMBLE, filter_startup_lines

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
ONEDNN = ("I0000 00:00:1796603556.399661    8074 port.cc:153] oneDNN custom operations are on. You may see "
          "slightly different numerical results. To turn them off, set the environment variable "
          "`TF_ENABLE_ONEDNN_OPTS=0`.")
GUARD = ("I0000 00:00:1796603372.500521    4554 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to "
         "use available CPU instructions in performance-critical operations.\n"
         "To enable the following instructions: AVX2 AVX512F, in other operations, rebuild TensorFlow.")
WARNING = "W0000 00:00:1796603372.6    4554 gpu_device.cc:2344] Cannot dlopen some GPU libraries."
ERROR = "E0000 00:00:1758131045.203198 3722035 cuda_dnn.cc:8579] Unable to register cuDNN factory"
OLD_STYLE = "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not find cuda"
PYTHON_WARNING = "/site-packages/tensorflow/x.py:3: DeprecationWarning: something real"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=str(SRC), **extra)
    return env


def test_podium_config_prints_no_tensorflow_start_up_lines():
    """`podium config` imports keras, hence TensorFlow: its stderr is empty, its stdout the config."""
    result = subprocess.run([sys.executable, "-m", "podium.cli.main", "config", "--config", "configs/demo.yaml"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, env=_env())
    assert result.returncode == 0, result.stderr
    assert "run_id: demo-" in result.stdout
    for noise in ("oneDNN", "absl::InitializeLog", "cpu_feature_guard", "port.cc"):
        assert noise not in result.stderr, f"{noise!r} still printed:\n{result.stderr}"


def test_the_level_is_applied_to_log_lines_only():
    text = "\n".join([ABSL_PREAMBLE, ONEDNN, GUARD, WARNING, ERROR, OLD_STYLE, PYTHON_WARNING, "plain line"]) + "\n"
    at_two = filter_startup_lines(text, 2)
    assert at_two == f"{ERROR}\n{PYTHON_WARNING}\nplain line\n"
    at_one = filter_startup_lines(text, 1)
    assert WARNING in at_one and ERROR in at_one and "oneDNN" not in at_one and "To enable" not in at_one
    assert filter_startup_lines(text, 0) == text
    assert ERROR not in filter_startup_lines(text, 3) and PYTHON_WARNING in filter_startup_lines(text, 3)


def _fake_tensorflow(folder: Path, fails: bool = False) -> Path:
    """A `tensorflow` package that writes TF's start-up lines and a real error straight to fd 2, as C++ does."""
    package = folder / "tensorflow"
    package.mkdir(parents=True)
    lines = "\n".join([ABSL_PREAMBLE, ONEDNN, ERROR, ABSL_PREAMBLE, ONEDNN]) + "\n"
    body = f"import os\nos.write(2, {lines.encode()!r})\n"
    if fails:
        body += "raise ImportError('libtensorflow_framework.so.2: cannot open shared object file')\n"
    (package / "__init__.py").write_text(body)
    return folder


def _import_with_quiet(fake: Path, **env: str) -> subprocess.CompletedProcess:
    code = ("from podium.cli.quiet import quiet_tensorflow_startup\nquiet_tensorflow_startup()\n"
            "import tensorflow\nprint('imported', flush=True)\n")
    environment = _env(**env)
    environment["PYTHONPATH"] = f"{fake}{os.pathsep}{SRC}"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=environment)


def test_the_first_import_keeps_errors_and_drops_infos(tmp_path):
    result = _import_with_quiet(_fake_tensorflow(tmp_path))
    assert result.returncode == 0 and result.stdout == "imported\n"
    assert result.stderr == f"{ERROR}\n"


def test_an_explicit_level_zero_keeps_every_line(tmp_path):
    result = _import_with_quiet(_fake_tensorflow(tmp_path), TF_CPP_MIN_LOG_LEVEL="0")
    assert result.stderr.count("oneDNN") == 2 and result.stderr.count(ABSL_PREAMBLE) == 2 and ERROR in result.stderr


def test_a_failed_import_shows_its_error_and_traceback(tmp_path):
    result = _import_with_quiet(_fake_tensorflow(tmp_path, fails=True))
    assert result.returncode != 0 and "imported" not in result.stdout
    assert ERROR in result.stderr and "cannot open shared object file" in result.stderr
    assert "Traceback" in result.stderr and "oneDNN" not in result.stderr
