"""The loader (ImageBatches, batch 64, shuffled, no model) over the uint8 cache vs streaming (`cache: none`),
at 64, 224 and 384 px; and the peak RSS of one streamed epoch as N grows (a subprocess per case, VmHWM).

Two sources: the embedded demo's JPEGs (32 px files: decoding is nearly free, so streaming pays mostly
the resize) and the same images saved as 512 px JPEGs (what a competition's photos cost to decode).
Positions are tiled over the decoded rows to make an epoch long enough. Side by side in one process: the
ratio is the result, absolute images/s depend on the machine and its load. Writes <results>/stream.{json,md}.

    python benchmarks/bench_stream.py [--smoke] [--results DIR] [--sizes 64 224 384]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from bench_pipeline import images_per_second  # this folder: the loader timed as bench_pipeline times it
from podium.data.cache import load_images
from podium.data.folds import labeled_rows
from podium.data.pipeline import ImageBatches
from podium.io import format_size, write_json, write_text
from podium.tasks import get_task
from podium.workflow import prepare_data

RESULTS = Path(__file__).with_name("results")


def demo_rows(data_dir: Path, count: int) -> tuple[Path, pd.DataFrame]:
    """(data_root, the first `count` readable demo train rows), `make data` run into data_dir once."""
    root = data_dir / "demo"
    if not (root / "index.parquet").is_file():
        prepare_data("demo", get_task("classification"), str(data_dir))
    rows = labeled_rows(pd.read_parquet(root / "index.parquet"))
    return root, rows.head(count).reset_index(drop=True)


def large_rows(root: Path, rows: pd.DataFrame, out: Path, side: int) -> tuple[Path, pd.DataFrame]:
    """The same images written as side x side JPEGs (quality 90), with the index columns the cache reads."""
    paths, hashes = [], []
    for k, path in enumerate(rows["path"]):
        target = out / f"{k:05d}.jpg"
        if not target.is_file():
            out.mkdir(parents=True, exist_ok=True)
            with Image.open(root / path) as image:
                image.convert("RGB").resize((side, side), Image.BICUBIC).save(target, quality=90)
        paths.append(target.name)
        hashes.append(hashlib.sha1(target.read_bytes()).hexdigest())
    large = rows.assign(path=paths, hash=hashes, split="large")
    return out, large


def epoch_img_s(images, positions: np.ndarray, repeats: int) -> float:
    """Best images/s of `repeats` shuffled passes over `positions` (what a training epoch reads)."""
    loader = ImageBatches(images, positions, np.zeros(int(positions.max()) + 1, int), 10, batch_size=64,
                          shuffle=True, seed=0)
    return images_per_second(loader, repeats)


def throughput(root: Path, rows: pd.DataFrame, size: int, cache_dir: Path, epoch: dict, repeats: int) -> dict:
    started = time.perf_counter()
    cached, _ = load_images(rows, root, size, cache_dir, "disk", progress=False)
    build = time.perf_counter() - started
    streamed, _ = load_images(rows, root, size, cache_dir, "none", progress=False)
    n = len(rows)
    result = {"size": size, "rows": n, "cache_build_s": build, "cache_build_img_s": n / build,
              "cache_bytes": int(cached.nbytes),
              "cached_img_s": epoch_img_s(cached, np.resize(np.arange(n), epoch["cached"]), repeats),
              "streamed_img_s": epoch_img_s(streamed, np.resize(np.arange(n), epoch["streamed"]), repeats)}
    result["streamed_vs_cached"] = result["streamed_img_s"] / result["cached_img_s"]
    return result


# ---- peak RSS of one epoch, a fresh process per case -----------------------------------------------------
def _status(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss_child(data_dir: Path, unique: int, size: int, n: int, mode: str) -> None:
    """One shuffled epoch over n positions; prints {rss_before, hwm_after} as JSON. `memory` holds n decoded
    rows (tiled from the unique ones: the RSS of `cache: memory` at N = n) for contrast."""
    before = _status("VmRSS")  # after the imports, before any pixels
    root, rows = demo_rows(data_dir, unique)
    images, _ = load_images(rows, root, size, data_dir / "unused", "none" if mode == "none" else "memory", False)
    positions = np.resize(np.arange(len(rows)), n)
    if mode == "memory":
        images, positions = images[positions], np.arange(n)
    epoch_img_s(images, positions, 1)
    print(json.dumps({"rss_before": before, "hwm_after": _status("VmHWM")}))


def peak_rss(data_dir: Path, unique: int, size: int, n: int, mode: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--rss-child", str(data_dir), str(unique), str(size), str(n),
                          mode], check=True, capture_output=True, text=True, env={**os.environ})
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    return {"mode": mode, "size": size, "n": n, **measured}


# ---- the report ------------------------------------------------------------------------------------------
def report(results: dict) -> str:
    lines = [f"# Streaming (`cache: none`) vs the uint8 cache: the loader alone, batch 64, shuffled", "",
             f"machine: {results['machine']}, 1-minute load average {results['load_average_before']:.1f} before, "
             f"{results['load_average_after']:.1f} after (other work shared the cores); best of {results['repeats']} "
             "passes, side by side in one process; "
             f"{'SMOKE run (tiny inputs): not a measurement' if results['smoke'] else 'python benchmarks/bench_stream.py'}",
             "", "| source | px | cache build img/s (once) | cached epoch img/s | streamed epoch img/s | "
                 "streamed / cached |", "|---|---:|---:|---:|---:|---:|"]
    for r in results["throughput"]:
        lines.append(f"| {r['source']} ({r['rows']} files) | {r['size']} | {r['cache_build_img_s']:.0f} | "
                     f"{r['cached_img_s']:.0f} | {r['streamed_img_s']:.0f} | {r['streamed_vs_cached']:.3f} |")
    lines += ["", f"Peak RSS of one shuffled epoch at {results['rss_size']} px, a fresh process per case "
                  "(VmHWM; beside it VmRSS after the imports, before any pixels are read or held):", "",
              "| held as | N rows | RSS before | peak RSS | peak - before |", "|---|---:|---:|---:|---:|"]
    for r in results["rss"]:
        lines.append(f"| {'streamed (cache: none)' if r['mode'] == 'none' else 'memory (cache: memory)'} | "
                     f"{r['n']} | {format_size(r['rss_before'])} | {format_size(r['hwm_after'])} | "
                     f"{format_size(r['hwm_after'] - r['rss_before'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, a few seconds")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where stream.{json,md} (and data) go")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224, 384])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rss-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        data_dir, unique, size, n, mode = args.rss_child
        rss_child(Path(data_dir), int(unique), int(size), int(n), mode)
        return
    smoke = args.smoke
    sizes = [32] if smoke else args.sizes
    unique, large_side = (48, 96) if smoke else (512, 512)
    epoch = {"cached": 256, "streamed": 128} if smoke else {"cached": 8192, "streamed": 1024}
    args.results.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".bench-stream-", dir=args.results))  # data made here, removed after
    try:
        root, rows = demo_rows(work / "data", unique)
        sources = {"demo JPEGs, 32 px": (root, rows),
                   f"{large_side} px JPEGs": large_rows(root, rows.head(unique // 2), work / "large", large_side)}
        results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                   "smoke": smoke, "repeats": 1 if smoke else args.repeats, "epoch_rows": epoch, "throughput": [],
                   "rss": [], "rss_size": 32 if smoke else 224, "load_average_before": os.getloadavg()[0]}
        for name, (source_root, source_rows) in sources.items():
            for size in sizes:
                measured = throughput(source_root, source_rows, size, work / "cache", epoch, results["repeats"])
                results["throughput"].append({"source": name, **measured})
                print(json.dumps(results["throughput"][-1]), flush=True)
        for mode in (("none",) if smoke else ("none", "memory")):
            for n in ([64] if smoke else [1024, 4096, 16384]):
                results["rss"].append(peak_rss(work / "data", unique, results["rss_size"], n, mode))
                print(json.dumps(results["rss"][-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_average_after"] = os.getloadavg()[0]
    write_json(args.results / "stream.json", results)
    write_text(args.results / "stream.md", report(results))
    print(report(results))


if __name__ == "__main__":
    main()
