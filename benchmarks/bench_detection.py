"""What the detection head costs: training and prediction images/s of the detector (podium.models.detection)
against the classifier (podium.models.classifier) on the same backbone, image size and batch, on this machine.

Side by side in one process, arms alternating `rounds` times, each arm's best round kept (other processes on
a shared machine only ever slow a run down); the ratio is the result, absolute images/s depend on the machine.
Training: the steady epoch (median after the first) of a plain `model.fit` on in-memory arrays, the
classifier with cross-entropy on one-hot rows, the detector with DetectionLoss on padded box rows. Prediction:
`predict_on_batch` over the same images after a warm-up; the detector's numpy decode (peaks, top-k, boxes) is
timed on its own.

Writes benchmarks/results/detection.{json,md}.

    python benchmarks/bench_detection.py [--size 256] [--batch 16] [--images 64] [--epochs 4] [--rounds 3]
        [--results DIR] [--smoke]

--smoke: 32 px, 8 images, batch 4, 2 epochs, one round (the test suite's check that the script runs).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_training import epoch_timer, steady  # noqa: E402

RESULTS = Path(__file__).with_name("results")
CLASSES, BOXES_PER_IMAGE = 2, 8
SMOKE = {"size": 32, "batch": 4, "images": 8, "epochs": 2, "rounds": 1}


def arrays(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random pixels, one-hot class rows and padded box rows (half the images with BOXES_PER_IMAGE boxes, the
    other half with fewer): the speed does not depend on what the pixels show."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (n, size, size, 3)).astype(np.float32)
    labels = np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, n)]
    corners = np.sort(rng.uniform(0, 1, (n, BOXES_PER_IMAGE, 2, 2)), axis=2)  # (x1 < x2), (y1 < y2)
    boxes = np.concatenate([corners[..., 0, :], corners[..., 1, :],
                            rng.integers(0, CLASSES, (n, BOXES_PER_IMAGE, 1))], axis=-1)[..., [0, 2, 1, 3, 4]]
    boxes = boxes.astype(np.float32)
    boxes[n // 2:, BOXES_PER_IMAGE // 2:] = -1  # padding rows
    return images, labels, boxes


def arms(cfg) -> dict:
    """name -> (model, loss); compiled by measure()."""
    from podium.models.classifier import build_classifier
    from podium.models.detection import DetectionLoss, build_detector

    return {"classifier": (build_classifier(cfg, CLASSES), "categorical_crossentropy"),
            "detector": (build_detector(cfg, CLASSES), DetectionLoss(CLASSES))}


def measure(cfg, images, labels, boxes, epochs: int, rounds: int) -> dict:
    import keras

    keras.utils.set_random_seed(0)
    models = arms(cfg)
    for model, loss in models.values():
        model.compile(keras.optimizers.Adam(1e-3), loss=loss)
    targets = {"classifier": labels, "detector": boxes}
    train_s: dict[str, list[float]] = {name: [] for name in models}
    predict_s: dict[str, list[float]] = {name: [] for name in models}
    first_epoch_s: dict[str, float] = {}
    for _ in range(rounds):
        for name, (model, _) in models.items():
            timer = epoch_timer()
            model.fit(images, targets[name], batch_size=cfg.batch_size, epochs=epochs, verbose=0,
                      callbacks=[timer], shuffle=False)
            first_epoch_s.setdefault(name, timer.seconds[0])
            train_s[name].append(steady(timer.seconds))
            predict_s[name].append(predict_seconds(model, images, cfg.batch_size))
    n = len(images)
    result = {name: {"train_img_s": n / min(train_s[name]), "predict_img_s": n / min(predict_s[name]),
                     "train_epoch_s_all": train_s[name], "predict_s_all": predict_s[name],
                     "first_epoch_s": first_epoch_s[name], "params": int(models[name][0].count_params())}
              for name in models}
    result["decode_img_s"] = decode_images_per_second(models["detector"][0], images[:cfg.batch_size])
    return result


def predict_seconds(model, images: np.ndarray, batch: int) -> float:
    """Seconds to predict every image batch by batch, after one warm-up batch."""
    model.predict_on_batch(images[:batch])
    started = time.perf_counter()
    for start in range(0, len(images), batch):
        model.predict_on_batch(images[start:start + batch])
    return time.perf_counter() - started


def decode_images_per_second(model, images: np.ndarray, repeat: int = 20) -> float:
    import keras

    from podium.models.detection import decode

    maps = np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(images)))
    started = time.perf_counter()
    for _ in range(repeat):
        decode(maps)
    return repeat * len(images) / (time.perf_counter() - started)


def markdown(result: dict) -> str:
    cls, det = result["classifier"], result["detector"]
    lines = ["# Detection head: speed against the classifier", "",
             f"machine: {platform.machine()}, {os.cpu_count()} cores; keras backend {result['backend']}; "
             f"load average at the start {result['load']}", "",
             f"{result['backbone']} @ {result['size']} px, batch {result['batch']}, {result['images']} in-memory "
             f"images, {CLASSES} classes, up to {BOXES_PER_IMAGE} boxes an image; plain model.fit, steady epoch "
             f"(median after the first), best of {result['rounds']} alternating rounds; prediction "
             "predict_on_batch after a warm-up. The ratio is the result; absolute images/s depend on the machine.",
             "",
             "| model | params | train img/s | predict img/s | first epoch s |",
             "|---|---:|---:|---:|---:|"]
    for name, arm in (("classifier", cls), ("detector", det)):
        lines.append(f"| {name} | {arm['params']:,} | {arm['train_img_s']:.1f} | {arm['predict_img_s']:.1f} | "
                     f"{arm['first_epoch_s']:.1f} |")
    lines += ["", f"detector / classifier: training {det['train_img_s'] / cls['train_img_s']:.2f}, prediction "
              f"{det['predict_img_s'] / cls['predict_img_s']:.2f} (images/s; below 1 = the detector is slower). "
              f"Decoding the maps to boxes (numpy): {result['decode_img_s']:.0f} images/s."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="tiny_cnn")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--suffix", default="", help="appended to the result files' names (e.g. -jax)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the result files go")
    parser.add_argument("--smoke", action="store_true", help="tiny and quick: checks that the script runs")
    args = parser.parse_args()
    if args.smoke:  # explicit arguments still win over the smoke sizes
        parser.set_defaults(**SMOKE)
        args = parser.parse_args()

    import keras

    from podium.config import load_config
    from podium.io import write_json, write_text

    cfg = load_config(None, [f"backbone={args.backbone}", f"image_size={args.size}", f"batch_size={args.batch}",
                             "weights=none"])
    images, labels, boxes = arrays(args.images, args.size)
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    started = time.perf_counter()
    result = measure(cfg, images, labels, boxes, args.epochs, args.rounds)
    result.update(backend=keras.backend.backend(), backbone=args.backbone, size=args.size, batch=args.batch,
                  images=args.images, rounds=args.rounds, epochs=args.epochs, load=load,
                  seconds=time.perf_counter() - started)
    write_json(args.results / f"detection{args.suffix}.json", result)
    text = markdown(result)
    write_text(args.results / f"detection{args.suffix}.md", text)
    print(text)


if __name__ == "__main__":
    main()
