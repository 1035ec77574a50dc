"""A copy of the embedded demo with transformed copies of some of its images planted in it: the input the
duplicate and audit tests search. Real JPEGs, real transforms (podium.data.dup_quality.plant_copy)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from podium.data.competitions import load_competition
from podium.data.dup_quality import plant_copy
from podium.data.images import decode_image
from podium.data.index import build_index, save_index
from podium.tasks import get_task

TRANSFORMS = ("resize", "recompress", "brightness")


def planted_demo(demo_root: Path, into: Path, copies: int = 30, test_copies: int = 3, seed: int = 0
                 ) -> tuple[Path, list[tuple[str, str]], list[tuple[str, str, str]]]:
    """(data_root, [(source id, copy id)] in train, [(source id, test copy id, label)]), indexed."""
    root = Path(into) / "demo"
    shutil.copytree(demo_root, root)
    rng = np.random.default_rng(seed)
    sources = sorted((root / "train").glob("*/*.jpg"))
    chosen = rng.choice(len(sources), copies + test_copies, replace=False)
    train_pairs, test_pairs = [], []
    for k, position in enumerate(chosen):
        source = sources[position]
        data = plant_copy(decode_image(source), TRANSFORMS[k % len(TRANSFORMS)], rng)
        suffix = ".jpg" if data[:2] == b"\xff\xd8" else ".png"
        source_id = f"{source.parent.name}/{source.stem}"
        if k < copies:
            target = source.with_name(f"{source.stem}_copy{suffix}")
            train_pairs.append((source_id, f"{source.parent.name}/{target.stem}"))
        else:
            target = root / "test" / f"copy{k}{suffix}"
            test_pairs.append((source_id, target.stem, source.parent.name))
        target.write_bytes(data)
    save_index(build_index(load_competition("demo"), root, get_task("classification")), root / "index.parquet")
    return root, train_pairs, test_pairs
