"""`layout: pixels` at Digit Recognizer's size, measured: a 42,000-row train CSV (label + 784 pixel columns)
and a 28,000-row test CSV generated here (seeded, MNIST-like: 80% zeros), through the CSV conversion (time,
and the memory it allocates in a second, traced run: numpy and pandas report their buffers to tracemalloc), `make data`
(conversion + index), the 32 px cache and `make dups`. Writes benchmarks/results/pixels.{json,md}.

    python benchmarks/bench_pixels.py [--rows 42000 --test-rows 28000] [--results DIR] [--smoke]

--smoke: 300 + 100 rows (the test suite's check that the script runs).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from podium.data.cache import load_cached
from podium.data.duplicates import run_dups
from podium.data.index import load_index
from podium.data.pixels import convert_pixel_csv
from podium.data.competitions import load_competition
from podium.io import write_json, write_text
from podium.tasks import get_task
from podium.workflow import prepare_data

RESULTS = Path(__file__).with_name("results")
SMOKE = {"rows": 300, "test_rows": 100}


def write_csvs(folder: Path, rows: int, test_rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    columns = [f"pixel{k}" for k in range(784)]
    folder.mkdir(parents=True)
    for name, count, labelled in (("train.csv", rows, True), ("test.csv", test_rows, False)):
        with open(folder / name, "w") as handle:
            for start in range(0, count, 5000):
                values = rng.integers(0, 256, (min(5000, count - start), 784))
                values[rng.random(values.shape) < 0.8] = 0
                frame = pd.DataFrame(values, columns=columns)
                if labelled:
                    frame.insert(0, "label", rng.integers(0, 10, len(frame)))
                frame.to_csv(handle, index=False, header=start == 0)
    pd.DataFrame({"ImageId": range(1, test_rows + 1), "Label": 0}).to_csv(folder / "sample_submission.csv", index=False)
    (folder.parent / "digits.yaml").write_text(
        "slug: digits\nlayout: pixels\narchives: [train.csv, test.csv, sample_submission.csv]\nlabels_csv: train.csv\n"
        "test_csv: test.csv\nsubmission_id_column: ImageId\nsubmission_label_column: Label\nflip_invariant: false\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=42000)
    parser.add_argument("--test-rows", type=int, default=28000)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the result files go")
    parser.add_argument("--smoke", action="store_true", help="tiny and quick: checks that the script runs")
    args = parser.parse_args()
    if args.smoke:  # explicit arguments still win over the smoke sizes
        parser.set_defaults(**SMOKE)
        args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_csvs(tmp / "digits", args.rows, args.test_rows)
        csv_mb = (tmp / "digits" / "train.csv").stat().st_size / 2**20
        started = time.perf_counter()
        convert_pixel_csv(tmp / "digits" / "train.csv", tmp / "probe" / "train.npy", label_column="label", id_column="id")
        convert_s = time.perf_counter() - started
        tracemalloc.start()  # a second conversion, traced (tracing slows it several times: not timed)
        convert_pixel_csv(tmp / "digits" / "train.csv", tmp / "probe" / "train.npy", label_column="label", id_column="id")
        convert_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        started = time.perf_counter()
        spec = str(tmp / "digits.yaml")  # a benchmark is an entry point: the task is resolved here
        summary = prepare_data(spec, get_task(load_competition(spec).task), str(tmp / "data"),
                               source_dir=str(tmp / "digits"))
        data_s = time.perf_counter() - started
        index = load_index(summary.root / "index.parquet")
        train = index[index["split"] == "train"].reset_index(drop=True)
        started = time.perf_counter()
        load_cached(train, summary.root, 32, tmp / "cache", progress=False)
        cache_s = time.perf_counter() - started
        started = time.perf_counter()
        run_dups(summary.root)
        dups_s = time.perf_counter() - started
        images = sum(1 for p in summary.root.rglob("*") if p.suffix in (".png", ".jpg"))
    result = {"train_rows": args.rows, "test_rows": args.test_rows, "train_csv_mb": round(csv_mb, 1),
              "convert_train_s": round(convert_s, 2), "convert_train_peak_mb": round(convert_peak, 1),
              "array_mb": round(args.rows * 784 / 2**20, 1), "make_data_s": round(data_s, 2),
              "cache_32px_train_s": round(cache_s, 2), "dups_s": round(dups_s, 2), "image_files_written": images,
              "cpus": os.cpu_count(), "load_average": [round(v, 1) for v in os.getloadavg()],
              "python": platform.python_version()}
    write_json(args.results / "pixels.json", result)
    lines = ["# `layout: pixels` at Digit Recognizer's size", "",
             f"Machine: {result['cpus']} CPUs (load average {result['load_average']} at the end: shared, so times are "
             f"indicative). Produced by `benchmarks/bench_pixels.py`.", "",
             "| stage | rows | seconds | note |", "|---|---:|---:|---|",
             f"| train CSV -> uint8 array | {args.rows:,} | {convert_s:.1f} | {csv_mb:.0f} MB CSV; peak allocated "
             f"{convert_peak:.0f} MB besides the {result['array_mb']:.0f} MB array, written through a memory map of "
             f"the output file (the whole CSV as int64 would be {args.rows * 785 * 8 / 2**20:.0f} MB) |",
             f"| make data (both CSVs + index) | {args.rows + args.test_rows:,} | {data_s:.1f} | "
             f"{images} image files written |",
             f"| cache, train at 32 px | {args.rows:,} | {cache_s:.1f} | |",
             f"| make dups (hash + group) | {args.rows + args.test_rows:,} | {dups_s:.1f} | |", ""]
    write_text(args.results / "pixels.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
