"""Training and inference speed on the embedded demo, and memory when streaming a large uncached index.

Three questions, each answered side by side in one process so the ratio is the result (absolute
images/s depend on the machine):

1. podium overhead: steady-state training images/s of `train_and_evaluate` (PyDataset loader,
   checkpoint, CSV log, backup every epoch) vs a bare `model.fit` of the same model on the same
   in-memory uint8 arrays, same batch size, same validation data.
2. TTA cost per view: images/s of `predict_tta` with one view at a time, at 32 and 224 px.
3. Peak RSS (VmHWM) of one epoch streamed from JPEGs without a cache, for a growing synthetic index;
   each N runs in its own subprocess so the high-water mark is that N's alone. It must stay flat.

With augmentation podium runs twice: as configured (`augment_in: auto`, [flip, crop] in the compiled train
step) and with `augment_in=loader` (the recipes on the host, batch by batch: podium before issue 24).

Writes benchmarks/results/training.{json,md} (training-overhead.* with --skip-tta-rss; -jax before the
suffix on JAX), or under --results DIR.

    python benchmarks/bench_training.py [--epochs 4] [--rounds 3] [--rss-sizes 2000 8000 32000]
    python benchmarks/bench_training.py --smoke --results /tmp/x   # seconds: one short round, training only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results")


# ---- 1. podium vs bare model.fit ------------------------------------------------------------------
def epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Wall time of each epoch, validation and the other callbacks' epoch-end work included."""

        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._started)

    return EpochTimer()


def steady(seconds: list[float]) -> float:
    """Median epoch after the first (the first pays tracing/XLA compilation)."""
    return float(np.median(seconds[1:] if len(seconds) > 1 else seconds))


def hand_written_augment(augment: list[str], size: int):
    """The augmentation as a user writes it by hand: the same kind of Keras layers, in a tf.data map."""
    import keras

    layers = {"flip": lambda: keras.layers.RandomFlip("horizontal"),
              "crop": lambda: keras.layers.RandomTranslation(0.125, 0.125, fill_mode="reflect")}
    chain = [layers[name]() for name in augment]
    if not chain:
        return None

    def apply(images):  # not a keras.Sequential: under JAX that is a JAX model, which a tf.data map cannot trace;
        for layer in chain:  # Keras' preprocessing layers alone switch to TensorFlow inside tf.data
            images = layer(images, training=True)
        return images

    return apply


def bare_fit(cfg, x_train, y_train, x_val, y_val, epochs: int, augment: list[str]) -> list[float]:
    """Epoch seconds of a bare model.fit: arrays as they are (no augment), or a tf.data pipeline that
    batches, maps the hand-written augmentation in parallel and prefetches (with augment)."""
    import keras
    import tensorflow as tf

    from podium import tasks
    from podium.training.schedules import make_optimizer

    keras.utils.set_random_seed(cfg.seed)
    task = tasks.get_task(cfg.task)  # a benchmark is an entry point: the task is resolved here
    model = task.build_model(dataclasses.replace(cfg, augment=[]), y_train.shape[1])  # bare: no podium layer
    steps = int(np.ceil(len(x_train) / cfg.batch_size))
    model.compile(optimizer=make_optimizer(cfg, steps), **task.compile_arguments(cfg, y_train.shape[1]))
    timer = epoch_timer()
    layers = hand_written_augment(augment, cfg.resolved_image_size)
    if layers is None:
        model.fit(x_train, y_train, batch_size=cfg.batch_size, epochs=epochs, validation_data=(x_val, y_val),
                  callbacks=[timer], verbose=0)
        return timer.seconds
    train = (tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(x_train), seed=cfg.seed)
             .batch(cfg.batch_size).map(lambda x, y: (layers(x), y), num_parallel_calls=tf.data.AUTOTUNE)
             .prefetch(tf.data.AUTOTUNE))
    model.fit(train, epochs=epochs, validation_data=(x_val, y_val), batch_size=cfg.batch_size, callbacks=[timer],
              verbose=0)
    return timer.seconds


def podium_vs_bare(data_dir: Path, runs_dir: Path, size: int, epochs: int, augment: list[str], rounds: int,
                   workers: int = 1, repeat: int = 1) -> dict:
    """Alternate podium and bare fits `rounds` times; best-of per side, since other processes on a
    shared machine only ever slow a run down. Like for like: with augmentation the bare side augments too,
    by hand (`bare_fit`); the bare side without augmentation is timed as well, so the augmentation's own
    cost (bare raw / bare augmented) is reported apart from podium's overhead. `repeat` tiles the demo's
    training rows, so an epoch lasts as long as a real one and per-epoch costs (checkpoint, backup, log)
    weigh what they weigh there."""
    from podium.config import load_config
    from podium.data.dataset import load_labeled_data
    from podium.runners.train import train_and_evaluate
    from podium.tasks import get_task

    cfg = load_config(None, [f"data_dir={data_dir}", f"runs_dir={runs_dir}", "val_split=0.2", "folds=[0]",
                             "backbone=tiny_cnn", f"image_size={size}", "batch_size=64", f"epochs={epochs}",
                             "schedule=constant", "verbose=0", f"augment={json.dumps(augment)}",
                             "tta=[identity]", f"early_stopping_patience={epochs + 1}", f"workers={workers}"])
    data = load_labeled_data(cfg, get_task(cfg.task))
    train_pos, val_pos = data.fold_positions(0)
    train_pos = np.tile(train_pos, repeat)
    data.fold_positions = lambda fold: (train_pos, val_pos)  # the tiled rows, for podium's loader too
    x_train = np.asarray(data.images[train_pos]).astype("float32")
    y_train = np.eye(data.num_classes, dtype="float32")[data.labels[train_pos]]
    x_val = np.asarray(data.images[val_pos]).astype("float32")
    y_val = np.eye(data.num_classes, dtype="float32")[data.labels[val_pos]]
    rates: dict[str, list[float]] = {"podium": [], "podium_loader": [], "bare_raw": [], "bare_augmented": []}
    firsts: dict[str, list[float]] = {name: [] for name in rates}
    loader_cfg = dataclasses.replace(cfg, augment_in="loader")
    for _ in range(rounds):
        podium_timer = epoch_timer()
        result = train_and_evaluate(cfg, get_task(cfg.task), 0, data=data, extra_callbacks=[podium_timer],
                                    force=True)
        arms = {"podium": podium_timer.seconds,
                "bare_raw": bare_fit(cfg, x_train, y_train, x_val, y_val, epochs, [])}
        if augment:
            arms["bare_augmented"] = bare_fit(cfg, x_train, y_train, x_val, y_val, epochs, augment)
            loader_timer = epoch_timer()
            train_and_evaluate(loader_cfg, get_task(cfg.task), 0, data=data, extra_callbacks=[loader_timer],
                               force=True)
            arms["podium_loader"] = loader_timer.seconds
        for name, seconds in arms.items():
            rates[name].append(len(train_pos) / steady(seconds))
            firsts[name].append(seconds[0])
    best = {name: max(values) if values else None for name, values in rates.items()}
    like_for_like = best["bare_augmented"] if augment else best["bare_raw"]
    like_rates = rates["bare_augmented"] if augment else rates["bare_raw"]
    per_round = [p / b for p, b in zip(rates["podium"], like_rates)]
    return {"size": size, "augment": augment, "workers": workers, "n_train": len(train_pos), "n_val": len(val_pos),
            "epochs": epochs, "rounds": rounds, "augment_in": cfg.resolved_augment_in,
            "podium_img_s": best["podium"], "bare_fit_img_s": like_for_like,
            "bare_raw_img_s": best["bare_raw"], "podium_vs_bare": best["podium"] / like_for_like,
            "podium_vs_bare_per_round": per_round,
            "podium_loader_img_s": best["podium_loader"],
            "podium_loader_vs_bare": best["podium_loader"] / like_for_like if best["podium_loader"] else None,
            "augment_cost": (best["bare_raw"] / best["bare_augmented"]) if augment else None,
            "img_s_all": rates, "first_epoch_s": {name: min(v) for name, v in firsts.items() if v},
            "podium_val_accuracy": result.val_score}


# ---- 2. TTA cost per view -------------------------------------------------------------------------
def tta_per_view(data_dir: Path, size: int, limit: int, repeats: int) -> dict:
    import keras

    from podium.training import tta
    from podium.config import load_config
    from podium.data.dataset import load_labeled_data
    from podium.data.pipeline import ImageBatches
    from podium.models.classifier import build_classifier
    from podium.tasks import get_task

    cfg = load_config(None, [f"data_dir={data_dir}", "val_split=0.2", "folds=[0]", "backbone=tiny_cnn",
                             f"image_size={size}", "verbose=0"])
    data = load_labeled_data(cfg, get_task(cfg.task))
    keras.utils.set_random_seed(0)
    model = build_classifier(cfg, data.num_classes)
    batches = ImageBatches(data.images, np.arange(min(limit, len(data.images))), batch_size=64)
    tta.predict_tta(model, batches, ["identity"])  # warm-up: tracing
    per_view = {}
    for name in tta.view_names():
        best = 0.0
        for _ in range(repeats):
            started = time.perf_counter()
            tta.predict_tta(model, batches, [name])
            best = max(best, len(batches.positions) / (time.perf_counter() - started))
        per_view[name] = best
    return {"size": size, "images": len(batches.positions), "img_s_per_view": per_view}


# ---- 3. peak RSS streaming without a cache --------------------------------------------------------
def rss_child(n: int, size: int, data_dir: Path) -> dict:
    """One epoch of ImageBatches over n rows that decode their JPEG on every access; VmHWM after."""
    import pandas as pd

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_pipeline import DecodeEveryTime

    from podium.data.folds import labeled_rows
    from podium.data.pipeline import ImageBatches

    root = data_dir / "demo"
    rows = labeled_rows(pd.read_parquet(root / "index.parquet"))
    files = [root / p for p in rows["path"]]
    paths = [files[i % len(files)] for i in range(n)]  # a synthetic index: n rows over the demo's files
    labels = np.arange(n) % 10
    batches = ImageBatches(DecodeEveryTime(paths, size, 2), labels=labels, num_classes=10, batch_size=64,
                           shuffle=True)
    started, seen = time.perf_counter(), 0
    for i in range(len(batches)):
        seen += len(batches[i][0])
    return {"n": n, "seen": seen, "seconds": time.perf_counter() - started, "vm_hwm_mib": vm_hwm_mib()}


def vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss(sizes: list[int], size: int, data_dir: Path) -> list[dict]:
    rows = []
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--rss-child", str(n), "--size-rss", str(size),
                              "--data-dir", str(data_dir)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


# ---- report ---------------------------------------------------------------------------------------
def markdown(results: dict) -> str:
    title = "Training, TTA and streaming memory" if "tta" in results else "Training overhead"
    lines = [f"# {title} on the demo", "",
             f"machine: {results['machine']}; keras backend {results['backend']}; one process, side by side", "",
             "## podium `train_and_evaluate` vs bare `model.fit`, like for like (tiny_cnn, batch 64)", "",
             "steady-state epoch (median after the first), validation included in both; podium also "
             "checkpoints, logs CSV and backs up every epoch. Like for like: with augmentation the bare side "
             "augments too, written by hand (RandomFlip + RandomTranslation in a parallel tf.data map, "
             "prefetched); *augment cost* is bare raw arrays / bare augmented, the augmentation's own price. "
             f"Demo training rows tiled x{results['repeat']} so an epoch is as long as a real one; "
             f"podium and bare alternate, best of {results['podium_vs_bare'][0]['rounds']} rounds each; *per round* is "
             "each round's podium / bare, the spread. *podium, loader aug* is podium with `augment_in=loader` (the "
             "recipes on the host, batch by batch, as before issue 24), timed in the same rounds", "",
             "| size | augment | podium augments in | workers | podium img/s | bare img/s (same augment) | podium / bare "
             "| per round | podium, loader aug / bare | bare raw img/s | augment cost | first epoch podium / bare (s) |",
             "|---:|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|"]
    for r in results["podium_vs_bare"]:
        cost = f"{r['augment_cost']:.2f}x" if r["augment_cost"] else "-"
        bare_first = r["first_epoch_s"].get("bare_augmented", r["first_epoch_s"]["bare_raw"])
        spread = ", ".join(f"{v:.2f}" for v in r["podium_vs_bare_per_round"])
        loader = f"{r['podium_loader_vs_bare']:.2f}" if r["podium_loader_vs_bare"] else "-"
        where = r["augment_in"] if r["augment"] else "-"
        lines.append(f"| {r['size']} | {','.join(r['augment']) or 'none'} | {where} | {r['workers']} | "
                     f"{r['podium_img_s']:.0f} | {r['bare_fit_img_s']:.0f} | {r['podium_vs_bare']:.2f} | {spread} | "
                     f"{loader} | {r['bare_raw_img_s']:.0f} | {cost} | "
                     f"{r['first_epoch_s']['podium']:.1f} / {bare_first:.1f} |")
    if "tta" not in results:
        return "\n".join(lines + [""])
    views = list(results["tta"][0]["img_s_per_view"])
    lines += ["", "## TTA: images/s per view (`predict_tta` with that view alone, tiny_cnn, batch 64)", "",
              "| size | images | " + " | ".join(views) + " |", "|---:|---:|" + "---:|" * len(views)]
    for r in results["tta"]:
        lines.append(f"| {r['size']} | {r['images']} | "
                     + " | ".join(f"{r['img_s_per_view'][v]:.0f}" for v in views) + " |")
    lines += ["", "A config's TTA costs the sum of its views' times: k views ~ k x one view.", "",
              f"## Peak RSS streaming one epoch without a cache ({results['rss_size']} px, batch 64, "
              "JPEGs decoded on every access, one subprocess per N)", "",
              "| index rows N | peak RSS (VmHWM) MiB | seconds | images/s |", "|---:|---:|---:|---:|"]
    for r in results["peak_rss"]:
        lines.append(f"| {r['n']} | {r['vm_hwm_mib']:.0f} | {r['seconds']:.1f} | {r['seen'] / r['seconds']:.0f} |")
    growth = results["peak_rss"][-1]["vm_hwm_mib"] - results["peak_rss"][0]["vm_hwm_mib"]
    lines += ["", f"growth from the smallest to the largest N: {growth:+.0f} MiB "
                  f"({results['peak_rss'][-1]['n'] / results['peak_rss'][0]['n']:.0f}x the rows)", ""]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="alternating podium/bare repeats (best-of)")
    parser.add_argument("--repeat", type=int, default=8, help="tile the demo's training rows this many times")
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="podium loader threads to time")
    parser.add_argument("--skip-tta-rss", action="store_true", help="time training only")
    parser.add_argument("--augmented-only", action="store_true", help="time the [flip, crop] runs only")
    parser.add_argument("--extra-size", type=int, default=64, help="second training size (0: skip)")
    parser.add_argument("--tta-limit", type=int, default=512, help="images per TTA measurement")
    parser.add_argument("--rss-sizes", type=int, nargs="+", default=[2000, 8000, 32000])
    parser.add_argument("--size-rss", type=int, default=224)
    parser.add_argument("--data-dir", default=None, help="where to unpack the demo (default: a temp folder)")
    parser.add_argument("--smoke", action="store_true", help="seconds: 2 epochs, one round, [flip, crop] only")
    parser.add_argument("--results", default=str(RESULTS), help="folder for the results (and, given, the demo "
                                                                 "data and runs)")
    parser.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.rounds, args.repeat, args.workers = 2, 1, 1, [1]
        args.skip_tta_rss, args.augmented_only, args.extra_size = True, True, 0
    return args


def main() -> None:
    args = parse_args()
    if args.rss_child:
        print(json.dumps(rss_child(args.rss_child, args.size_rss, Path(args.data_dir))))
        return

    import keras

    from podium.io import write_json, write_text
    from podium.tasks import get_task
    from podium.workflow import prepare_data

    results_dir = Path(args.results)
    own_folder = results_dir.resolve() != RESULTS.resolve()  # --results given: the data and runs go there too
    work = results_dir / "training-work" if own_folder else Path(tempfile.mkdtemp(prefix="podium-bench-"))
    data_dir = Path(args.data_dir) if args.data_dir else work / "data"
    prepare_data("demo", get_task("classification"), str(data_dir))
    runs_dir = work / "runs"
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                     "backend": keras.backend.backend()}
    sizes = [32] + ([args.extra_size] if args.extra_size else [])
    runs = [(32, ["flip", "crop"])] if args.augmented_only else \
        [(32, []), (32, ["flip", "crop"])] + [(size, []) for size in sizes[1:]]
    results["repeat"] = args.repeat
    results["podium_vs_bare"] = [podium_vs_bare(data_dir, runs_dir, size, args.epochs, augment, args.rounds,
                                                workers, args.repeat)
                                 for size, augment in runs for workers in args.workers]
    if not args.skip_tta_rss:
        results["tta"] = [tta_per_view(data_dir, size, args.tta_limit, repeats=3) for size in (32, 224)]
        results["rss_size"] = args.size_rss
        results["peak_rss"] = peak_rss(args.rss_sizes, args.size_rss, data_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    suffix = ("" if results["backend"] == "tensorflow" else f"-{results['backend']}") + \
        ("-overhead" if args.skip_tta_rss else "")
    write_json(results_dir / f"training{suffix}.json", results)
    table = markdown(results)
    write_text(results_dir / f"training{suffix}.md", table)
    print(table)


if __name__ == "__main__":
    main()
