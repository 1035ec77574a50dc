#!/usr/bin/env bash
# Only for a GPU machine without network. Run it HERE (a machine with PyPI), once, in the clone:
#   PACKAGE=/path/to/cifar10-compact.tar.xz bash benchmarks/gpu_prepare.sh
# It fills .gpu/ (git-ignored via .git/info/exclude) with the CIFAR-10 package and the wheels such a GPU image
# typically lacks (keras, namex, optree; it has JAX). Copy the clone, .gpu/ included, to the GPU machine and
# run benchmarks/gpu_cifar10.sh there: it installs keras from .gpu/wheels and reads .gpu/cifar10-compact.tar.xz.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE=${PACKAGE:?set PACKAGE to the CIFAR-10 JPEG package (.tar.xz: train/<class>/*.jpg, test/*.jpg, sample_submission.csv)}
PIP=${PIP:-.venv/bin/pip}
mkdir -p .gpu/wheels
mkdir -p .git/info; grep -qx "/.gpu/" .git/info/exclude 2>/dev/null || echo "/.gpu/" >> .git/info/exclude
cp "$PACKAGE" .gpu/cifar10-compact.tar.xz
# keras and the two dependencies the image does not have, for its Python 3.12 (numpy, h5py, rich, ml-dtypes,
# absl-py, pandas, pyarrow, pillow, pyyaml, tqdm, scikit-learn, matplotlib are there)
"$PIP" download --quiet --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --no-deps -d .gpu/wheels \
    keras==3.15.1 namex==0.1.0 optree==0.20.0
du -sh .gpu
