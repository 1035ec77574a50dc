"""Training images/s of podium's from-scratch nets on this machine: the input to picking a CPU recipe.

A bare `model.fit` (registry backbone + softmax head, SGD, batch 256, 32 px, random pixels in memory) per
net x XLA x precision, alternating over `--rounds` and keeping each case's best (other processes only slow
a case down). Run once per backend (KERAS_BACKEND=jax for JAX); rows are appended to
benchmarks/results/cpu-nets.md.

    python benchmarks/cpu_nets.py [--nets tiny_cnn airbench_s ...] [--jit 0 1] [--precision float32 mixed_bfloat16]
        [--results DIR] [--smoke]

--smoke: tiny_cnn, batch 16, 2 steps, one round (the test suite's check that the script runs).
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results")
SMOKE = {"nets": ["tiny_cnn"], "batch": 16, "steps": 2, "rounds": 1}


def images_per_second(net: str, jit: bool, precision: str, batch: int, steps: int) -> float:
    import keras

    from podium.models.backbones import build_backbone

    keras.mixed_precision.set_global_policy(precision)
    try:
        inputs = keras.Input((32, 32, 3))
        outputs = keras.layers.Dense(10, activation="softmax", dtype="float32")(build_backbone(net, 32)(inputs))
        model = keras.Model(inputs, outputs)
        model.compile(keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True), "categorical_crossentropy",
                      jit_compile=jit)
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (batch * steps, 32, 32, 3)).astype("float32")
        y = np.eye(10, dtype="float32")[rng.integers(0, 10, batch * steps)]
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # tracing / compilation
        started = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=2, verbose=0)
        return 2 * len(x) / (time.perf_counter() - started)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nets", nargs="+", default=["tiny_cnn", "airbench_s", "airbench_m", "airbench_l", "resnet9"])
    parser.add_argument("--jit", nargs="+", type=int, default=[0])
    parser.add_argument("--precision", nargs="+", default=["float32"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where cpu-nets.md is (appended to)")
    parser.add_argument("--smoke", action="store_true", help="tiny and quick: checks that the script runs")
    args = parser.parse_args()
    if args.smoke:  # explicit arguments still win over the smoke sizes
        parser.set_defaults(**SMOKE)
        args = parser.parse_args()

    import keras

    cases = list(itertools.product(args.nets, args.jit, args.precision))
    best = {case: 0.0 for case in cases}
    for _ in range(args.rounds):
        for case in cases:
            best[case] = max(best[case], images_per_second(*case, batch=args.batch, steps=args.steps))
    out = args.results / "cpu-nets.md"
    args.results.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        out.write_text("# Training images/s of the from-scratch nets on a CPU (benchmarks/cpu_nets.py)\n\n"
                       "bare model.fit, batch 256, 32 px, best of the rounds; compare rows of one date only\n\n"
                       "| date | cores | backend | net | XLA | precision | train img/s |\n"
                       "|---|---:|---|---|---|---|---:|\n")
    rows = [f"| {time.strftime('%Y-%m-%d')} | {os.cpu_count()} | {keras.backend.backend()} | {net} | "
            f"{'on' if jit else 'off'} | {precision} | {best[(net, jit, precision)]:.0f} |"
            for net, jit, precision in cases]
    with out.open("a") as handle:
        handle.write("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
