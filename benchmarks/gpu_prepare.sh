#!/usr/bin/env bash
# Run HERE (a machine with PyPI), once, before benchmarks/gpu_cifar10.sh: fills .gpu/ (git-ignored via
# .git/info/exclude) with the CIFAR-10 package and the wheels the GPU image lacks, so that one device call
# with carry [".gpu"] has everything (the GPU machine has JAX but no keras and no network).
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE=${PACKAGE:-../shared/data/cifar10/cifar10-compact.tar.xz}
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
