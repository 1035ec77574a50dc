"""Overlapping-tile detection (`make dups ARGS="--tiles 3"`) on Airbus-shaped tiles of real photos.

Each scene is a 4 x 4 mosaic of CIFAR-10 photos upscaled to 256 px cells (1024 px); four 768 px tiles
are cut from it at (0,0), (0,256), (256,0), (256,256), as Airbus' tiles overlap in 256 px steps, and
saved as JPEG (quality 90). Scenes never share a photo, so the truth is known: a scene's four tiles
belong together, tiles of different scenes do not.

    python benchmarks/bench_tiles.py [--cifar <folder with the CIFAR-10 JPEG package: train.zip, test.zip>] [--scenes N]
        [--results DIR] [--smoke]

--smoke: 2 scenes of the embedded demo (the test suite's check that the script runs).

Writes benchmarks/results/tiles.{json,md}: per detector (whole-image pHash; blocks with min_blocks 1
and 2), the share of scenes whose four tiles end in one group, wrong merges, and hashing speed.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from podium.data.hash_search import DEFAULT_THRESHOLD, components, find_pairs  # noqa: E402
from podium.data.perceptual_hash import hash_images  # noqa: E402
from podium.data.tile_overlaps import block_hashes, overlap_pairs  # noqa: E402
from podium.io import write_json, write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DEMO_TRAIN = ROOT / "src" / "podium" / "demo" / "train.zip"
CELL, TILE = 256, 768
OFFSETS = [(0, 0), (0, CELL), (CELL, 0), (CELL, CELL)]
SMOKE = {"scenes": 2}


def photos(archive: Path, count: int) -> list[np.ndarray]:
    with zipfile.ZipFile(archive) as zf:
        names = sorted(n for n in zf.namelist() if n.lower().endswith(".jpg"))
        order = np.random.default_rng(0).permutation(len(names))[:count]
        return [np.asarray(Image.open(io.BytesIO(zf.read(names[k]))).convert("RGB")) for k in order]


def write_tiles(cells: list[np.ndarray], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for scene in range(len(cells) // 16):
        big = [np.asarray(Image.fromarray(c).resize((CELL, CELL), Image.Resampling.BICUBIC))
               for c in cells[16 * scene:16 * scene + 16]]
        mosaic = np.vstack([np.hstack(big[row * 4:row * 4 + 4]) for row in range(4)])
        for k, (row, col) in enumerate(OFFSETS):
            path = out / f"scene{scene:05d}-tile{k}.jpg"
            Image.fromarray(mosaic[row:row + TILE, col:col + TILE]).save(path, quality=90)
            paths.append(path)
    return paths


def score(groups: np.ndarray, tiles_per_scene: int = 4) -> dict:
    scene = np.arange(len(groups)) // tiles_per_scene
    together = [len(set(groups[scene == s])) == 1 for s in range(scene.max() + 1)]
    scenes_per_group = {g: len(set(scene[groups == g])) for g in set(groups.tolist())}
    return {"scenes_found_whole": float(np.mean(together)),
            "groups_mixing_scenes": int(sum(v > 1 for v in scenes_per_group.values())),
            "largest_group": int(np.bincount(groups).max())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cifar", help="folder of the CIFAR-10 package (train.zip); default: the embedded demo")
    parser.add_argument("--scenes", type=int, default=0, help="default: as many as the photos allow, at most 3000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the result files go")
    parser.add_argument("--smoke", action="store_true", help="tiny and quick: checks that the script runs")
    args = parser.parse_args()
    if args.smoke:  # explicit arguments still win over the smoke sizes
        parser.set_defaults(**SMOKE)
        args = parser.parse_args()
    archive = Path(args.cifar) / "train.zip" if args.cifar else DEMO_TRAIN
    with zipfile.ZipFile(archive) as zf:
        available = sum(n.lower().endswith(".jpg") for n in zf.namelist())
    scenes = args.scenes or min(available // 16, 3000)
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                     "images": str(archive), "scenes": scenes, "tiles": 4 * scenes, "tile_px": TILE, "grid": 3,
                     "threshold": DEFAULT_THRESHOLD, "workers": args.workers}
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_tiles(photos(archive, 16 * scenes), Path(tmp) / "tiles")
        started = time.perf_counter()
        whole = hash_images(paths, workers=args.workers)
        whole_seconds = time.perf_counter() - started
        found = find_pairs(whole.phash[whole.matchable], DEFAULT_THRESHOLD)
        rows = np.flatnonzero(whole.matchable)
        detectors = {"whole-image pHash (make dups)": {
            **score(components(len(paths), rows[found.left], rows[found.right])),
            "images_per_s": len(paths) / whole_seconds}}
        started = time.perf_counter()
        phash, usable = block_hashes(paths, grid=3, workers=args.workers)
        block_seconds = time.perf_counter() - started
        for min_blocks in (1, 2):
            started = time.perf_counter()
            left, right = overlap_pairs(phash, usable, 3, DEFAULT_THRESHOLD, min_blocks)
            detectors[f"3x3 blocks, min_blocks {min_blocks} (--tiles 3)"] = {
                **score(components(len(paths), left, right)), "images_per_s": len(paths) / block_seconds,
                "pairing_seconds": time.perf_counter() - started}
        results["usable_blocks"] = float(usable.mean())
    results["detectors"] = detectors
    write_json(args.results / "tiles.json", results)
    lines = ["# Overlapping tiles (Airbus-shaped), `benchmarks/bench_tiles.py`", "",
             f"{scenes} scenes x 4 tiles of {TILE} px (JPEG q90) cut in 256 px steps from 4 x 4 mosaics of "
             f"CIFAR-10 photos upscaled to 256 px (`{archive.parent.name}/{archive.name}`); threshold "
             f"{DEFAULT_THRESHOLD}; {args.workers} hashing threads on {os.cpu_count()} CPUs. "
             f"{100 * results['usable_blocks']:.1f}% of blocks had enough structure to hash.", "",
             "| detector | scenes whose 4 tiles share one group | groups mixing scenes | largest group | hashing img/s |",
             "|---|---:|---:|---:|---:|"]
    for name, d in detectors.items():
        lines.append(f"| {name} | {100 * d['scenes_found_whole']:.1f}% | {d['groups_mixing_scenes']} | "
                     f"{d['largest_group']} | {d['images_per_s']:.0f} |")
    write_text(args.results / "tiles.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
