"""Build the embedded demo competition from the JPEG CIFAR-10 package (a labeled train.zip).

The demo's test part is taken from labeled train images, so its labels exist; they are written
only to tests/data/demo_test_labels.csv (the tests score the demo submission), never into the demo.

    python tools/make_demo.py ../shared/data/cifar10/train.zip
"""

from __future__ import annotations

import csv
import random
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

TRAIN_PER_CLASS, TEST_PER_CLASS, SEED = 200, 50, 2026
ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "src" / "podium" / "demo"
LABELS = ROOT / "tests" / "data" / "demo_test_labels.csv"


def main(source_zip: str) -> None:
    rng = random.Random(SEED)
    by_class: dict[str, list[str]] = defaultdict(list)
    with zipfile.ZipFile(source_zip) as src:
        for name in sorted(src.namelist()):
            parts = name.split("/")
            if len(parts) == 3 and parts[2].endswith(".jpg"):
                by_class[parts[1]].append(name)
        train, test = [], []
        for label in sorted(by_class):
            picked = rng.sample(by_class[label], TRAIN_PER_CLASS + TEST_PER_CLASS)
            train += [(name, label) for name in sorted(picked[:TRAIN_PER_CLASS])]
            test += [(name, label) for name in picked[TRAIN_PER_CLASS:]]
        rng.shuffle(test)  # Kaggle test ids carry no class order
        DEMO.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(DEMO / "train.zip", "w", zipfile.ZIP_STORED) as out:
            for name, _ in train:
                out.writestr(zipfile.ZipInfo(name, (2019, 3, 31, 6, 35, 0)), src.read(name))
        with zipfile.ZipFile(DEMO / "test.zip", "w", zipfile.ZIP_STORED) as out:
            for i, (name, _) in enumerate(test, start=1):
                out.writestr(zipfile.ZipInfo(f"test/{i}.jpg", (2019, 3, 31, 6, 35, 0)), src.read(name))
    with open(DEMO / "sample_submission.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label"])
        w.writerows([i, "airplane"] for i in range(1, len(test) + 1))
    LABELS.parent.mkdir(parents=True, exist_ok=True)
    with open(LABELS, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label"])
        w.writerows([i, label] for i, (_, label) in enumerate(test, start=1))


if __name__ == "__main__":
    main(sys.argv[1])
