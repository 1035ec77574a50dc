"""The training loader alone (podium.data.pipeline.ImageBatches, no model) at 32 px, batch 512: can it feed a GPU?

A bare Keras ResNet-9 consumes ~98,000 img/s on one H100 (../shared/MEASURED.md, docs/speed.md): a batch of
512 every ~5.2 ms. The loader is timed over a uint8 cache on disk (a memmap, as podium's cache is) of
generated images, one epoch at a time, single-threaded, in three arms side by side in one process:

- `none`: no augmentation (the ceiling: a shuffled read and the float conversion);
- `loader [flip, crop]`: `augment_in=loader`, the recipes on the host batch by batch (podium before issue 24);
- `step [flip, crop]`: `augment_in=auto`, what the loader does when the recipes run in the train step (the
  task's pair_augmenter gives it none), and, apart, what the step's augmentation layer costs compiled on this
  machine's CPU (augment_layers.TrainAugment in a jitted predict over the same batches); on a GPU that cost
  is measured with the model (benchmarks/gpu_cifar10.sh).

Best of --rounds epochs per arm (other processes on a shared machine only ever slow a run down), arms
alternating. Writes benchmarks/results/loader.{json,md}, or under --results DIR.

    python benchmarks/bench_loader.py [--rows 8192] [--rounds 3]
    python benchmarks/bench_loader.py --smoke --results /tmp/x
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results")
H100_RESNET9_IMG_S = 98_000  # bare Keras ResNet-9, bf16, batch 512, JAX, one H100 (MEASURED.md)
SIZE, BATCH, RECIPES = 32, 512, ["flip", "crop"]


def generated_cache(folder: Path, rows: int, seed: int = 0) -> np.ndarray:
    """A uint8 (rows, 32, 32, 3) cache on disk, read back as a memmap: smooth random images (content does
    not change the cost of a flip or a crop, a memmap read does)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (rows, 8, 8, 3), dtype=np.uint8)
    images = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "images.npy", images)
    return np.load(folder / "images.npy", mmap_mode="r")


def loader(images: np.ndarray, augment_in: str):
    """The training loader podium's classification task builds for this config (its own pair_augmenter)."""
    from podium.config import ExperimentConfig
    from podium.data.pipeline import ImageBatches
    from podium.tasks import get_task

    cfg = ExperimentConfig(backbone="tiny_cnn", image_size=SIZE, batch_size=BATCH, augment=RECIPES,
                           augment_in=augment_in) if augment_in else \
        ExperimentConfig(backbone="tiny_cnn", image_size=SIZE, batch_size=BATCH, augment=[])
    labels = np.arange(len(images)) % 10
    return ImageBatches(images, labels=labels, num_classes=10, batch_size=BATCH, shuffle=True, seed=0,
                        batch_augment=get_task("classification").pair_augmenter(cfg)), cfg.resolved_augment_in


def epoch_img_s(batches) -> float:
    started, seen = time.perf_counter(), 0
    for i in range(len(batches)):
        seen += len(batches[i][0])
    batches.on_epoch_end()
    return seen / (time.perf_counter() - started)


def compiled_step_augment(images: np.ndarray):
    """TrainAugment(flip, crop) called with training=True inside a compiled predict: the in-step work alone."""
    import keras

    from podium.training.augment_layers import TrainAugment

    inputs = keras.Input((SIZE, SIZE, 3), dtype="float32")
    model = keras.Model(inputs, TrainAugment(RECIPES, SIZE, seed=0)(inputs, training=True))
    batches = [np.asarray(images[i:i + BATCH], dtype="float32") for i in range(0, len(images), BATCH)]
    model.predict_on_batch(batches[0])  # tracing / compilation

    def one_epoch() -> float:
        started = time.perf_counter()
        for batch in batches:
            model.predict_on_batch(batch)
        return sum(len(b) for b in batches) / (time.perf_counter() - started)

    return one_epoch


def measure(images: np.ndarray, rounds: int) -> dict:
    arms = {"none": loader(images, ""), "loader [flip, crop]": loader(images, "loader"),
            "step [flip, crop]": loader(images, "auto")}
    rates: dict[str, list[float]] = {name: [] for name in [*arms, "in-step augmentation, CPU compiled"]}
    for batches, _ in arms.values():
        batches[0]  # warm-up: the augmenter's first call builds its layers
    step_augment = compiled_step_augment(images)
    for _ in range(rounds):
        for name, (batches, _) in arms.items():
            rates[name].append(epoch_img_s(batches))
        rates["in-step augmentation, CPU compiled"].append(step_augment())
    where = {name: resolved for name, (_, resolved) in arms.items()}
    return {"rates": rates, "best": {name: max(v) for name, v in rates.items()}, "augment_in": where}


def markdown(results: dict) -> str:
    best, need = results["best"], results["gpu_need_img_s"]
    ms = {name: BATCH / rate * 1000 for name, rate in best.items()}
    lines = ["# The training loader alone: can it feed a GPU?", "",
             f"machine: {results['machine']}; keras backend {results['backend']}; {results['rows']} generated "
             f"32 px images in a uint8 memmap, batch {BATCH}, one thread, best of {results['rounds']} epochs per "
             "arm, arms alternating; the need: a bare Keras ResNet-9 on one H100 consumes "
             f"{need:,} img/s ({BATCH / need * 1000:.1f} ms a batch)", "",
             "| arm | loader's batch augmenter | img/s | ms / batch of 512 | x the H100 need | all rounds |",
             "|---|---|---:|---:|---:|---|"]
    for name, rate in best.items():
        augmenter = results["augment_in"].get(name, "-")
        text = {"loader": "BatchAugmenter (host)", "model": "none (in the train step)"}.get(augmenter, augmenter)
        text = "none" if name == "none" else text
        rounds = ", ".join(f"{v:,.0f}" for v in results["rates"][name])
        lines.append(f"| {name} | {text} | {rate:,.0f} | {ms[name]:.2f} | {rate / need:.2f} | {rounds} |")
    lines += ["", "*in-step augmentation, CPU compiled*: `TrainAugment([flip, crop])` alone on this CPU, in a "
              "compiled predict with training=True, over the same batches held in memory; on a GPU it runs inside "
              "the model's step (on an H100 the same whole-batch keras.ops cost nothing measurable: 0.51 s an epoch "
              "with and without, MEASURED.md).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=8192, help="generated 32 px images in the cache")
    parser.add_argument("--rounds", type=int, default=3, help="epochs per arm, best-of")
    parser.add_argument("--smoke", action="store_true", help="seconds: 1,024 rows, one round")
    parser.add_argument("--results", default=str(RESULTS), help="folder for loader.{json,md} (and the cache, "
                                                                 "removed after)")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.rounds = 1024, 1
    import keras

    from podium.io import write_json, write_text

    results_dir = Path(args.results)
    work = results_dir / "loader-work"
    try:
        images = generated_cache(work, args.rows)
        results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                   "backend": keras.backend.backend(), "rows": args.rows, "rounds": args.rounds, "batch": BATCH,
                   "size": SIZE, "gpu_need_img_s": H100_RESNET9_IMG_S, **measure(images, args.rounds)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_json(results_dir / "loader.json", results)
    table = markdown(results)
    write_text(results_dir / "loader.md", table)
    print(table)


if __name__ == "__main__":
    main()
