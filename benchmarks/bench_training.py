"""Training and inference speed on the embedded demo, and memory when streaming a large uncached index.

Three questions, each answered side by side in one process so the ratio is the result (absolute
images/s depend on the machine):

1. podium overhead: steady-state training images/s of `train_and_evaluate` (PyDataset loader,
   checkpoint, CSV log, backup every epoch) vs a bare `model.fit` of the same model on the same
   in-memory uint8 arrays, same batch size, same validation data.
2. TTA cost per view: images/s of `predict_tta` with one view at a time, at 32 and 224 px.
3. Peak RSS (VmHWM) of one epoch streamed from JPEGs without a cache, for a growing synthetic index;
   each N runs in its own subprocess so the high-water mark is that N's alone. It must stay flat.

Writes benchmarks/results/training.{json,md}.

    python benchmarks/bench_training.py [--epochs 4] [--rounds 3] [--rss-sizes 2000 8000 32000]
"""

from __future__ import annotations

import argparse
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


def podium_vs_bare(data_dir: Path, runs_dir: Path, size: int, epochs: int, augment: list[str], rounds: int) -> dict:
    """Alternate podium and bare fits `rounds` times; best-of per side, since other processes on a
    shared machine only ever slow a run down."""
    import keras

    from podium import tasks
    from podium.config import load_config
    from podium.data.dataset import load_labeled_data
    from podium.training.schedules import make_optimizer
    from podium.training.train import train_and_evaluate

    cfg = load_config(None, [f"data_dir={data_dir}", f"runs_dir={runs_dir}", "val_split=0.2", "folds=[0]",
                             "backbone=tiny_cnn", f"image_size={size}", "batch_size=64", f"epochs={epochs}",
                             "schedule=constant", "verbose=0", f"augment={json.dumps(augment)}",
                             "tta=[identity]", f"early_stopping_patience={epochs + 1}"])
    data = load_labeled_data(cfg, tasks.get_task(cfg.task))
    train_pos, val_pos = data.fold_positions(0)
    x_train = np.asarray(data.images[train_pos]).astype("float32")
    y_train = keras.utils.to_categorical(data.labels[train_pos], data.num_classes)
    x_val = np.asarray(data.images[val_pos]).astype("float32")
    y_val = keras.utils.to_categorical(data.labels[val_pos], data.num_classes)
    podium_rates, bare_rates, firsts = [], [], {"podium": [], "bare": []}
    for _ in range(rounds):
        podium_timer = epoch_timer()
        result = train_and_evaluate(cfg, 0, data=data, extra_callbacks=[podium_timer], force=True)
        podium_rates.append(len(train_pos) / steady(podium_timer.seconds))
        firsts["podium"].append(podium_timer.seconds[0])

        keras.utils.set_random_seed(cfg.seed)
        model = tasks.build_model(cfg, data.num_classes)
        steps = int(np.ceil(len(train_pos) / cfg.batch_size))
        model.compile(optimizer=make_optimizer(cfg, steps), **tasks.compile_arguments(cfg, data.num_classes))
        bare_timer = epoch_timer()
        model.fit(x_train, y_train, batch_size=cfg.batch_size, epochs=epochs, validation_data=(x_val, y_val),
                  callbacks=[bare_timer], verbose=0)
        bare_rates.append(len(train_pos) / steady(bare_timer.seconds))
        firsts["bare"].append(bare_timer.seconds[0])
    return {"size": size, "augment": augment, "n_train": len(train_pos), "n_val": len(val_pos), "epochs": epochs,
            "rounds": rounds, "podium_img_s": max(podium_rates), "bare_fit_img_s": max(bare_rates),
            "podium_vs_bare": max(podium_rates) / max(bare_rates), "podium_img_s_all": podium_rates,
            "bare_fit_img_s_all": bare_rates, "podium_first_epoch_s": min(firsts["podium"]),
            "bare_first_epoch_s": min(firsts["bare"]), "podium_val_accuracy": result.val_score}


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
    lines = ["# Training, TTA and streaming memory on the demo", "",
             f"machine: {results['machine']}; keras backend {results['backend']}; one process, side by side", "",
             "## podium `train_and_evaluate` vs bare `model.fit` (tiny_cnn, batch 64, same arrays)", "",
             "steady-state epoch (median after the first), validation included in both; podium also "
             "checkpoints, logs CSV and backs up every epoch; podium and bare alternate, best of "
             f"{results['podium_vs_bare'][0]['rounds']} rounds each", "",
             "| size | augment | podium img/s | bare fit img/s | podium / bare | first epoch podium / bare (s) |",
             "|---:|---|---:|---:|---:|---|"]
    for r in results["podium_vs_bare"]:
        lines.append(f"| {r['size']} | {','.join(r['augment']) or 'none'} | {r['podium_img_s']:.0f} | "
                     f"{r['bare_fit_img_s']:.0f} | {r['podium_vs_bare']:.2f} | "
                     f"{r['podium_first_epoch_s']:.1f} / {r['bare_first_epoch_s']:.1f} |")
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="alternating podium/bare repeats (best-of)")
    parser.add_argument("--extra-size", type=int, default=64, help="second training size (0: skip)")
    parser.add_argument("--tta-limit", type=int, default=512, help="images per TTA measurement")
    parser.add_argument("--rss-sizes", type=int, nargs="+", default=[2000, 8000, 32000])
    parser.add_argument("--size-rss", type=int, default=224)
    parser.add_argument("--data-dir", default=None, help="where to unpack the demo (default: a temp folder)")
    parser.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        print(json.dumps(rss_child(args.rss_child, args.size_rss, Path(args.data_dir))))
        return

    import keras

    from podium.io import write_json, write_text
    from podium.workflow import prepare_data

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="podium-bench-"))
    prepare_data("demo", str(data_dir))
    runs_dir = Path(tempfile.mkdtemp(prefix="podium-bench-runs-"))
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                     "backend": keras.backend.backend()}
    sizes = [32] + ([args.extra_size] if args.extra_size else [])
    runs = [(32, []), (32, ["flip", "crop"])] + [(size, []) for size in sizes[1:]]
    results["podium_vs_bare"] = [podium_vs_bare(data_dir, runs_dir, size, args.epochs, augment, args.rounds)
                                 for size, augment in runs]
    results["tta"] = [tta_per_view(data_dir, size, args.tta_limit, repeats=3) for size in (32, 224)]
    results["rss_size"] = args.size_rss
    results["peak_rss"] = peak_rss(args.rss_sizes, args.size_rss, data_dir)
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if results["backend"] == "tensorflow" else f"-{results['backend']}"
    write_json(RESULTS / f"training{suffix}.json", results)
    table = markdown(results)
    write_text(RESULTS / f"training{suffix}.md", table)
    print(table)


if __name__ == "__main__":
    main()
