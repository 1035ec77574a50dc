#!/usr/bin/env bash
# CIFAR-10 to 91% / 93% on one GPU with KERAS_BACKEND=jax and no TensorFlow, in ONE device call:
#   here, once:   bash benchmarks/gpu_prepare.sh
#   device tool:  run(command="bash benchmarks/gpu_cifar10.sh", carry=[".gpu"], timeout_s=600)
# Writes $OUT/gpu_cifar10.json, $OUT/log.txt and each config's submission CSV.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}
PACKAGE=${PACKAGE:-.gpu/cifar10-compact.tar.xz}
WHEELS=${WHEELS:-.gpu/wheels}
PY=${PY:-python3}
DEPS=/tmp/podium-deps
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
# podium from the source tree, keras from the carried wheels; everything else is the image's own
"$PY" -m pip install --quiet --no-index --find-links "$WHEELS" --target "$DEPS" --no-deps keras==3.15.1 namex optree \
  || { mkdir -p "$DEPS"; for wheel in "$WHEELS"/*.whl; do "$PY" -m zipfile -e "$wheel" "$DEPS"; done; }  # a wheel is a zip
export PYTHONPATH="$PWD/src:$DEPS${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax NO_ALBUMENTATIONS_UPDATE=1
"$PY" -c "import jax, keras, importlib.util as u; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__, \
'backend', keras.backend.backend(), 'tensorflow installed:', u.find_spec('tensorflow') is not None)"
"$PY" benchmarks/gpu_cifar10.py --package "$PACKAGE" --out "$OUT" "$@" 2>&1 | tee "$OUT/log.txt"
