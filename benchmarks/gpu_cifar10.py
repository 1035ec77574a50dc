"""CIFAR-10 (JPEG package) on one GPU: time to 91% / 93% held-out, podium vs bare `model.fit`, submission.

Run by benchmarks/gpu_cifar10.sh on the device machine (KERAS_BACKEND=jax, no TensorFlow installed);
on a CPU, `--quick` checks the plumbing on a slice of the data in a minute or two:

    python benchmarks/gpu_cifar10.py --package DIR_OR_TAR_XZ --out OUT [--configs a.yaml b.yaml] [--quick]
    python benchmarks/gpu_cifar10.py --smoke --results OUT [--package ...]   # seconds: the test suite's check

--package: the compact .tar.xz, the folder it unpacks to (train/<class>/*.jpg, test/*.jpg, sample_submission.csv)
or the Kaggle layout (train.zip, test.zip, sample_submission.csv). --smoke: configs/cifar10-fast.yaml with
tiny_cnn, 1 epoch, 8 images a class (of the package given, or of one generated under OUT when there is none),
1 bare epoch.

Time to X% is the training wall time (from the start of fit, XLA compilation included, and also
reported without the first epoch) at the first epoch whose held-out accuracy (no TTA) reaches X.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np

TARGETS = (0.91, 0.93)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
QUICK = ["epochs=1", "warmup_epochs=0", "batch_size=64", "lr=0.05", "workers=1"]
SMOKE = [*QUICK, "backbone=tiny_cnn", "batch_size=16", "val_split=0.2", "jit_compile=false"]


def enable_compilation_cache(folder: Path) -> None:
    """XLA compiles the train step once per shape/schedule; a persistent cache makes repeats cheap."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def package_to_source(package: Path, work: Path, limit: int = 0) -> Path:
    """The compact .tar.xz (folders) -> the train.zip/test.zip/sample_submission.csv `make data` takes.

    `limit` > 0 keeps that many training images per class and 500 test images (CPU plumbing check).
    """
    source = work / "source"
    if (source / "train.zip").is_file():
        return source
    unpacked = work / "unpacked"
    if (package / "train.zip").is_file():  # already the Kaggle layout
        if not limit:
            return package
        for archive in ("train.zip", "test.zip"):
            with zipfile.ZipFile(package / archive) as zf:
                zf.extractall(unpacked)
        shutil.copyfile(package / "sample_submission.csv", unpacked / "sample_submission.csv")
    elif package.is_dir():
        unpacked = package
    else:
        with tarfile.open(package) as tar:
            tar.extractall(unpacked, filter="data")
    source.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        files = sorted((unpacked / split).rglob("*.jpg"))
        if limit and split == "train":
            by_class: dict[str, list[Path]] = {}
            for f in files:
                by_class.setdefault(f.parent.name, []).append(f)
            files = [f for kept in by_class.values() for f in kept[:limit]]
        kept_test = None
        if limit and split == "test":
            files = files[:500]
            kept_test = {f.stem for f in files}
        with zipfile.ZipFile(source / f"{split}.zip", "w", zipfile.ZIP_STORED) as zf:
            for f in files:
                zf.write(f, f.relative_to(unpacked).as_posix())
        if kept_test is not None:
            import pandas as pd

            sample = pd.read_csv(unpacked / "sample_submission.csv")
            sample[sample["id"].astype(str).isin(kept_test)].to_csv(source / "sample_submission.csv", index=False)
    if not (source / "sample_submission.csv").is_file():
        shutil.copyfile(unpacked / "sample_submission.csv", source / "sample_submission.csv")
    return source


def tiny_package(folder: Path, per_class: int = 8, test: int = 20, seed: int = 0) -> Path:
    """The compact package's folder layout with a few 32 px JPEGs (a colour per class, noise on top)."""
    from PIL import Image

    rng = np.random.default_rng(seed)

    def jpeg(path: Path, colour: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(colour + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path, quality=90)

    colours = rng.uniform(0, 255, (len(CLASSES), 3))
    for k, name in enumerate(CLASSES):
        for i in range(per_class):
            jpeg(folder / "train" / name / f"{k * per_class + i}.jpg", colours[k])
    for i in range(1, test + 1):
        jpeg(folder / "test" / f"{i}.jpg", colours[i % len(CLASSES)])
    (folder / "sample_submission.csv").write_text("id,label\n" + "".join(f"{i},{CLASSES[0]}\n"
                                                                         for i in range(1, test + 1)))
    return folder


def accuracy_clock():
    import keras

    class AccuracyClock(keras.callbacks.Callback):
        """Per epoch: seconds since fit began, epoch seconds, held-out accuracy."""

        def __init__(self):
            super().__init__()
            self.rows: list[dict] = []

        def on_train_begin(self, logs=None):
            self.started = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            self.rows.append({"epoch": epoch + 1, "elapsed_s": now - self.started,
                              "epoch_s": now - self.epoch_started,
                              "val_accuracy": float((logs or {}).get("val_accuracy", float("nan")))})

    return AccuracyClock()


def time_to(rows: list[dict], target: float) -> dict:
    hit = next((r for r in rows if r["val_accuracy"] >= target), None)
    if hit is None:
        return {"reached": False}
    first = rows[0]["epoch_s"]
    return {"reached": True, "epoch": hit["epoch"], "seconds": hit["elapsed_s"],
            "seconds_without_first_epoch": hit["elapsed_s"] - first}


def bare_fit_img_s(cfg, data, epochs: int) -> dict:
    """The same model, optimizer and batch on the same uint8 pixels held in memory, plain model.fit."""
    import keras

    from podium.training import runtime
    from podium import tasks
    from podium.training.schedules import make_optimizer

    train_pos, val_pos = data.fold_positions(cfg.folds[0])
    x = np.asarray(data.images[train_pos])
    y = keras.utils.to_categorical(data.labels[train_pos], data.num_classes)
    clock = accuracy_clock()
    with runtime.training_context(cfg.precision, cfg.distribute):
        task = tasks.get_task(cfg.task)
        model = task.build_model(dataclasses.replace(cfg, augment=[]), data.num_classes)  # no in-step augment
        steps = int(np.ceil(len(x) / cfg.batch_size))
        model.compile(optimizer=make_optimizer(cfg, steps), jit_compile=runtime.jit_compile(cfg.jit_compile),
                      **task.compile_arguments(cfg, data.num_classes))
        model.fit(x, y, batch_size=cfg.batch_size, epochs=epochs, callbacks=[clock], verbose=0)
    steady = float(np.median([r["epoch_s"] for r in clock.rows[1:]])) if len(clock.rows) > 1 else clock.rows[0]["epoch_s"]
    return {"epochs": epochs, "first_epoch_s": clock.rows[0]["epoch_s"], "steady_epoch_s": steady,
            "img_s": len(x) / steady, "note": "no augmentation, no validation: the ceiling"}


def run_config(config: Path, data_dir: Path, runs_dir: Path, out: Path, overrides: list[str], bare_epochs: int
               ) -> dict:
    from podium.config import load_config
    from podium.data.dataset import load_labeled_data
    from podium.tasks import get_task
    from podium.runners.train import train_and_evaluate
    from podium.workflow import predict_run

    cfg = load_config(config, [f"data_dir={data_dir}", f"runs_dir={runs_dir}", *overrides])
    data = load_labeled_data(cfg, get_task(cfg.task))  # builds the uint8 cache once (not part of training time)
    clock = accuracy_clock()
    started = time.perf_counter()
    result = train_and_evaluate(cfg, get_task(cfg.task), cfg.folds[0], data=data, extra_callbacks=[clock], force=True)
    total = time.perf_counter() - started
    steady = float(np.median([r["epoch_s"] for r in clock.rows[1:]])) if len(clock.rows) > 1 else clock.rows[0]["epoch_s"]
    submission = predict_run(cfg, get_task(cfg.task), progress=False)
    shutil.copyfile(submission.submission, out / f"{cfg.name}-submission.csv")
    report = {"config": str(config), "run_id": cfg.run_id, "epochs": result.epochs_run, "n_train": result.n_train,
              "n_heldout": result.n_val, "heldout_accuracy": result.val_score,
              "heldout_accuracy_tta": result.val_score_tta, "best_epoch": result.best_epoch,
              "train_seconds_total": sum(r["epoch_s"] for r in clock.rows), "first_epoch_s": clock.rows[0]["epoch_s"],
              "steady_epoch_s": steady, "podium_img_s": result.n_train / steady,
              "call_seconds": total, "per_epoch": clock.rows,
              **{f"time_to_{int(t * 100)}": time_to(clock.rows, t) for t in TARGETS},
              "submission_rows": submission.n_rows}
    if bare_epochs:
        report["bare_fit"] = bare_fit_img_s(cfg, data, bare_epochs)
        report["podium_vs_bare"] = report["podium_img_s"] / report["bare_fit"]["img_s"]
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--package", help="cifar10-compact.tar.xz, the folder it unpacks to, or the Kaggle layout "
                        "(required unless --smoke)")
    parser.add_argument("--out", "--results", default=os.environ.get("OUT", "gpu-out"))
    parser.add_argument("--work", default="/tmp/podium-cifar10")
    parser.add_argument("--configs", nargs="+", default=["configs/cifar10-fast-short.yaml", "configs/cifar10-fast.yaml"])
    parser.add_argument("--bare-epochs", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="CPU plumbing check: 100 images/class, 1 epoch")
    parser.add_argument("--smoke", action="store_true", help="seconds on a CPU: tiny_cnn, 8 images a class, 1 epoch")
    args = parser.parse_args()
    if args.smoke:  # explicit arguments still win
        parser.set_defaults(work=str(Path(args.out) / "work"), configs=["configs/cifar10-fast.yaml"], bare_epochs=1)
        args = parser.parse_args()
    elif not args.package:
        parser.error("--package is required (or --smoke)")
    import keras

    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    enable_compilation_cache(work / "xla-cache")
    from podium.tasks import get_task
    from podium.workflow import prepare_data

    started = time.perf_counter()
    package = Path(args.package or work / "package")
    if args.smoke and not package.exists():  # a smoke needs no data: generated, and said
        print(f"--smoke: no package at {package}; a tiny generated one instead", flush=True)
        package = tiny_package(work / "package")
    source = package_to_source(package, work, limit=8 if args.smoke else 100 if args.quick else 0)
    summary = prepare_data("cifar10", get_task("classification"), str(work / "data"), source_dir=str(source))
    prepare_s = time.perf_counter() - started
    overrides = [*SMOKE, f"submissions_dir={work / 'submissions'}"] if args.smoke else QUICK if args.quick else []
    results = {"backend": keras.backend.backend(), "python": sys.version.split()[0], "keras": keras.__version__,
               "machine": platform.node(), "gpu": _gpu_name(), "prepare_data_s": prepare_s,
               "n_train": summary.n_train, "n_test": summary.n_test,
               "tensorflow_installed": _importable("tensorflow"), "runs": []}
    for config in args.configs:
        report = run_config(Path(config), work / "data", work / "runs", out, overrides,
                            0 if args.quick and not args.smoke else args.bare_epochs)
        report["tensorflow_loaded"] = "tensorflow" in sys.modules
        results["runs"].append(report)
        (out / "gpu_cifar10.json").write_text(json.dumps(results, indent=1))
        print(json.dumps({k: v for k, v in report.items() if k != "per_epoch"}, indent=1), flush=True)
    print(summary_table(results))


def summary_table(results: dict) -> str:
    lines = [f"backend {results['backend']}, gpu {results['gpu']}", "",
             "| config | epochs | held-out acc (TTA) | time to 91% | time to 93% | steady epoch s | podium img/s | "
             "bare fit img/s | podium/bare |", "|---|---:|---|---|---|---:|---:|---:|---:|"]
    for r in results["runs"]:
        def hit(t):
            v = r[f"time_to_{t}"]
            return f"{v['seconds']:.1f} s (ep {v['epoch']}; {v['seconds_without_first_epoch']:.1f} s w/o 1st)" \
                if v["reached"] else "not reached"
        bare = r.get("bare_fit", {}).get("img_s", float("nan"))
        lines.append(f"| {Path(r['config']).stem} | {r['epochs']} | {r['heldout_accuracy']:.4f} "
                     f"({r['heldout_accuracy_tta']:.4f}) | {hit(91)} | {hit(93)} | {r['steady_epoch_s']:.2f} | "
                     f"{r['podium_img_s']:.0f} | {bare:.0f} | {r.get('podium_vs_bare', float('nan')):.2f} |")
    return "\n".join(lines)


def _gpu_name() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=20).stdout.strip() or "none"
    except (OSError, subprocess.SubprocessError):
        return "none"


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


if __name__ == "__main__":
    main()
