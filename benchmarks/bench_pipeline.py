"""Input pipeline throughput on the embedded demo at 224 px: decoding JPEGs every epoch vs the uint8 cache.

Both go through the same ImageBatches loader, side by side in one process; the ratio is the result
(absolute images/s depend on the machine). Writes benchmarks/results/pipeline.{json,md}.

    python benchmarks/bench_pipeline.py [--size 224] [--repeats 3] [--data-dir DIR] [--results DIR] [--smoke]

--smoke: 32 px, one pass, the demo unpacked under --results (the test suite's check that the script runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from podium.data.cache import load_cached
from podium.data.folds import labeled_rows
from podium.data.images import load_resized
from podium.data.pipeline import ImageBatches
from podium.io import write_json, write_text
from podium.tasks import get_task
from podium.workflow import prepare_data

RESULTS = Path(__file__).with_name("results")
SMOKE = {"size": 32, "repeats": 1}


class DecodeEveryTime:
    """Array-like over image files: indexing decodes and resizes, as a loader without a cache does."""

    def __init__(self, paths: list[Path], size: int, workers: int):
        self.paths, self.size = paths, size
        self.pool = ThreadPoolExecutor(workers)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, rows):
        return np.stack(list(self.pool.map(lambda r: load_resized(self.paths[r], self.size), np.atleast_1d(rows))))


def images_per_second(batches: ImageBatches, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        started, count = time.perf_counter(), 0
        for i in range(len(batches)):
            count += len(batches[i][0])
        best = max(best, count / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None, help="where to unpack the demo (default: a temp folder)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the result files go")
    parser.add_argument("--smoke", action="store_true", help="tiny and quick: checks that the script runs")
    args = parser.parse_args()
    if args.smoke:  # explicit arguments still win over the smoke sizes
        parser.set_defaults(**SMOKE, data_dir=str(args.results / "data"))
        args = parser.parse_args()
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="podium-bench-"))
    summary = prepare_data("demo", get_task("classification"), str(data_dir))
    import pandas as pd

    rows = labeled_rows(pd.read_parquet(summary.root / "index.parquet"))
    labels = np.zeros(len(rows), dtype=int)
    paths = [summary.root / p for p in rows["path"]]

    started = time.perf_counter()
    cached = load_cached(rows, summary.root, args.size, summary.root / "cache", progress=False)
    build_seconds = time.perf_counter() - started
    results = {"size": args.size, "images": len(rows), "batch_size": 64, "cache_build_seconds": build_seconds,
               "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}
    for workers in (1, 2):
        uncached = ImageBatches(DecodeEveryTime(paths, args.size, workers), labels=labels, num_classes=10)
        results[f"uncached_{workers}w_img_s"] = images_per_second(uncached, args.repeats)
    results["cached_img_s"] = images_per_second(ImageBatches(cached, labels=labels, num_classes=10), args.repeats)
    for workers in (1, 2):
        results[f"cached_vs_uncached_{workers}w"] = results["cached_img_s"] / results[f"uncached_{workers}w_img_s"]
    write_json(args.results / "pipeline.json", results)
    table = "\n".join([
        f"# Input pipeline, demo ({len(rows)} JPEGs, 32 px sources) at {args.size} px, batch 64",
        "", f"machine: {results['machine']}; best of {args.repeats} passes; one process, side by side", "",
        "| loader | images/s | ratio to cached |", "|---|---:|---:|",
        f"| decode + resize every epoch, 1 thread | {results['uncached_1w_img_s']:.0f} | "
        f"{1 / results['cached_vs_uncached_1w']:.3f} |",
        f"| decode + resize every epoch, 2 threads | {results['uncached_2w_img_s']:.0f} | "
        f"{1 / results['cached_vs_uncached_2w']:.3f} |",
        f"| uint8 memmap cache | {results['cached_img_s']:.0f} | 1 |",
        "", f"cache built once in {build_seconds:.1f} s", ""])
    write_text(args.results / "pipeline.md", table)
    print(table)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
