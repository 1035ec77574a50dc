#!/usr/bin/env bash
# CIFAR-10 to 91% / 93% on one NVIDIA GPU with KERAS_BACKEND=jax (TensorFlow is never imported), on your
# own GPU machine, from a clone of this repository:
#   pip install -c requirements.lock -e '.[all,jax-cuda]'      # once (docs/install.md, "On an NVIDIA GPU")
#   PACKAGE=/path/to/cifar10-compact.tar.xz bash benchmarks/gpu_cifar10.sh
# PACKAGE: CIFAR-10 as JPEGs, train/<class>/*.jpg, test/*.jpg and sample_submission.csv (id,label), as a
# .tar.xz or the folder it unpacks to. A GPU machine without network: run benchmarks/gpu_prepare.sh on
# a machine with PyPI, copy the clone with its .gpu/ folder over, then run this (WHEELS and PACKAGE
# default to .gpu/). Writes $OUT/gpu_cifar10.json, $OUT/log.txt and each config's submission CSV.
# Arguments go to gpu_cifar10.py: `--smoke` (tiny_cnn, 8 images a class, 1 epoch; a generated package when
# PACKAGE is not there) checks the machine and the plumbing in a minute; tests/test_benchmarks.py runs it on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}
PACKAGE=${PACKAGE:-.gpu/cifar10-compact.tar.xz}
WHEELS=${WHEELS:-.gpu/wheels}
PY=${PY:-python3}
DEPS=/tmp/podium-deps
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
if [ -d "$WHEELS" ]; then  # offline: keras from the copied wheels; everything else is the machine's own
  "$PY" -m pip install --quiet --no-index --find-links "$WHEELS" --target "$DEPS" --no-deps keras==3.15.1 namex optree \
    || { mkdir -p "$DEPS"; for wheel in "$WHEELS"/*.whl; do "$PY" -m zipfile -e "$wheel" "$DEPS"; done; }  # a wheel is a zip
fi
export PYTHONPATH="$PWD/src:$DEPS${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax NO_ALBUMENTATIONS_UPDATE=1
"$PY" -c "import jax, keras, importlib.util as u; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__, \
'backend', keras.backend.backend(), 'tensorflow installed:', u.find_spec('tensorflow') is not None)"
"$PY" benchmarks/gpu_cifar10.py --package "$PACKAGE" --out "$OUT" "$@" 2>&1 | tee "$OUT/log.txt"
