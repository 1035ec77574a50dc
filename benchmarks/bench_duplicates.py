"""Near-duplicate detection, measured: (a) hashing throughput, (b) grouping time at 50,000 and 200,000
hashes against linear (4x) and quadratic (16x) growth, (c) detector precision/recall per transform with
copies planted among real images. Writes benchmarks/results/duplicates.{json,md}.

    python benchmarks/bench_duplicates.py                      # the embedded demo (2,000 images)
    python benchmarks/bench_duplicates.py --cifar /path/to/cifar10 --per-transform 1000
    python benchmarks/bench_duplicates.py --smoke --results DIR   # 300 demo images, seconds: the test suite's check
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from podium.data.dup_quality import measure_detector
from podium.data.hash_search import DEFAULT_THRESHOLD, find_groups, find_pairs, plan
from podium.data.perceptual_hash import hash_images
from podium.io import write_json, write_text

RESULTS = Path(__file__).with_name("results")
DEMO_TRAIN = Path(__file__).resolve().parents[1] / "src" / "podium" / "demo" / "train.zip"
SMOKE = {"per_transform": 5, "images": 300, "large": 10, "group_sizes": [2_000, 8_000]}


def unpack_jpegs(archive: Path, into: Path, limit: int = 0) -> list[Path]:
    with zipfile.ZipFile(archive) as zf:
        names = sorted(n for n in zf.namelist() if n.lower().endswith(".jpg"))[:limit or None]
        zf.extractall(into, members=names)
    return [into / n for n in names]


def throughput(paths: list, workers: int, repeats: int = 2) -> float:
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        hash_images(paths, workers=workers)
        best = max(best, len(paths) / (time.perf_counter() - started))
    return best


def large_jpegs(paths: list[Path], into: Path, count: int, side: int = 768) -> list[Path]:
    """Airbus-sized files (768px JPEG, quality 90) made from real images: how hashing scales with pixels."""
    into.mkdir(parents=True, exist_ok=True)
    out = []
    for k, path in enumerate(paths[:count]):
        target = into / f"{k}.jpg"
        Image.open(path).convert("RGB").resize((side, side), Image.Resampling.BICUBIC).save(target, quality=90)
        out.append(target)
    return out


def synthetic_hashes(n: int, planted: int, threshold: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n random 64-bit hashes; the last `planted` are copies of earlier ones with 1..threshold bits flipped."""
    hashes = rng.integers(0, 2 ** 63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    hashes |= rng.integers(0, 2, n).astype(np.uint64)
    sources = rng.choice(n - planted, planted, replace=False)
    for k, source in enumerate(sources):
        bits = rng.choice(64, int(rng.integers(1, threshold + 1)), replace=False)
        hashes[n - planted + k] = hashes[source] ^ np.uint64(sum(1 << int(b) for b in bits))
    return hashes, sources


def grouping(threshold: int, rng: np.random.Generator, sizes=(50_000, 200_000)) -> list[dict]:
    rows = []
    for n in sizes:
        hashes, sources = synthetic_hashes(n, n // 100, threshold, rng)
        started = time.perf_counter()
        labels = find_groups(hashes, threshold)
        seconds = time.perf_counter() - started
        planted_found = float(np.mean(labels[sources] == labels[n - len(sources):]))
        rows.append({"hashes": n, "threshold": threshold, "plan": list(plan(n, threshold)), "seconds": seconds,
                     "planted_pairs": len(sources), "planted_found": planted_found})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cifar", help="folder of the CIFAR-10 package (train.zip); default: the embedded demo")
    parser.add_argument("--per-transform", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD)
    parser.add_argument("--images", type=int, default=0, help="the first N images of the archive (default: all)")
    parser.add_argument("--large", type=int, default=300, help="768 px JPEGs made for the throughput row")
    parser.add_argument("--group-sizes", type=int, nargs="+", default=[50_000, 200_000],
                        help="synthetic hashes to group (the last against the first: growth)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the result files go")
    parser.add_argument("--smoke", action="store_true", help="tiny and quick: checks that the script runs")
    args = parser.parse_args()
    if args.smoke:  # explicit arguments still win over the smoke sizes
        parser.set_defaults(**SMOKE)
        args = parser.parse_args()
    rng = np.random.default_rng(0)
    archive = Path(args.cifar) / "train.zip" if args.cifar else DEMO_TRAIN
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "processor": platform.processor() or platform.machine()},
                     "workers": args.workers, "threshold": args.threshold, "images": str(archive)}
    with tempfile.TemporaryDirectory() as tmp:
        paths = unpack_jpegs(archive, Path(tmp) / "images", args.images)
        small = paths[: min(len(paths), 10_000)]
        big = large_jpegs(paths, Path(tmp) / "large", args.large)
        results["throughput"] = [
            {"images": f"{len(small)} x 32px JPEG", "images_per_s": throughput(small, args.workers)},
            {"images": f"{len(big)} x 768px JPEG", "images_per_s": throughput(big, args.workers)},
        ]
        print(results["throughput"], flush=True)
        results["grouping"] = grouping(args.threshold, rng, args.group_sizes)
        print(results["grouping"], flush=True)
        started = time.perf_counter()
        real = hash_images(paths, workers=args.workers)
        results["real_hashes"] = {"images": len(paths), "hash_seconds": time.perf_counter() - started}
        started = time.perf_counter()
        found = find_pairs(real.phash[real.matchable], args.threshold)
        results["real_hashes"].update(group_seconds=time.perf_counter() - started, pairs=len(found))
        quality = {}
        for mirrored in (False, True):
            report = measure_detector(paths, args.threshold, args.per_transform, mirrored=mirrored,
                                      workers=args.workers)
            quality["mirrored" if mirrored else "plain"] = report
            print(report.markdown(), flush=True)
    results["quality"] = {name: {"table": r.table.to_dict(orient="records"), "scan": r.scan.to_dict(orient="records"),
                                 "background": r.background, "background_pairs": r.background_pairs,
                                 "per_transform": r.per_transform, "meets_target": r.meets_target()}
                          for name, r in quality.items()}
    write_json(args.results / "duplicates.json", results)
    write_text(args.results / "duplicates.md", markdown(results, quality))
    print(markdown(results, quality))


def markdown(results: dict, quality: dict) -> str:
    lines = ["# Near-duplicate detection benchmark", "",
             f"Machine: {results['machine']['cpus']} CPUs, {results['workers']} hashing threads; images from "
             f"`{Path(results['images']).parent.name}/{Path(results['images']).name}`. Threshold "
             f"{results['threshold']} bits of 64. Produced by `benchmarks/bench_duplicates.py`.", "",
             "## (a) Hashing throughput", "", "| images | images/s |", "|---|---:|"]
    lines += [f"| {row['images']} | {row['images_per_s']:.0f} |" for row in results["throughput"]]
    real = results["real_hashes"]
    lines += ["", f"All {real['images']} images: hashed in {real['hash_seconds']:.1f} s, pairs within the threshold "
              f"found in {real['group_seconds']:.2f} s ({real['pairs']} pairs: the set's own near-duplicates).", "",
              "## (b) Grouping time, synthetic hashes with 1% planted near-duplicate pairs", "",
              "| hashes | plan (chunks, radius) | seconds | planted pairs found |", "|---:|---|---:|---:|"]
    grouping = results["grouping"]
    lines += [f"| {row['hashes']:,} | {tuple(row['plan'])} | {row['seconds']:.2f} | {row['planted_found']:.3f} |"
              for row in grouping]
    ratio = grouping[-1]["seconds"] / grouping[0]["seconds"]
    growth = grouping[-1]["hashes"] / grouping[0]["hashes"]
    lines += ["", f"{growth:g}x the hashes took {ratio:.1f}x the time (linear would be {growth:g}x, all-pairs "
              f"{growth ** 2:g}x).", "",
              "## (c) Detector quality: transformed copies planted among real images", ""]
    for name, report in quality.items():
        lines += [f"### {name} matching", "", report.markdown(), "By threshold (recall / precision):", "",
                  report.scan_markdown()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
