"""How good is the near-duplicate detector, measured rather than assumed: plant transformed copies of real
images among real images, run the same search `make dups` runs, and count what it finds.

Why a background of real images: a detector is only as precise as its worst unrelated pair, and that
depends on the data (32px CIFAR skies look alike; so does open sea). Real datasets also hold real
duplicates of their own (CIFAR does), so a copy matching an image its source already matches is a correct
match, not a false one: precision counts only matches the source itself does not have.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from podium.data.hash_search import DEFAULT_THRESHOLD, components, find_pairs
from podium.data.perceptual_hash import hash_images
from podium.data.images import decode_image
from podium.errors import PodiumError

CORE_TRANSFORMS = ("resize", "recompress", "brightness")  # the target: recall >= 0.98 at precision >= 0.99
TRANSFORMS = CORE_TRANSFORMS + ("crop", "shift", "flip")
SCAN_THRESHOLDS = tuple(range(0, 17, 2))


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _resize(image: np.ndarray, rng: np.random.Generator) -> bytes:
    """Stored at another resolution: 0.5x .. 2x, lossless so only the resize is tested."""
    factor = float(rng.choice([0.5, 0.75, 1.5, 2.0]))
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return _png(np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC)))


def _recompress(image: np.ndarray, rng: np.random.Generator) -> bytes:
    """Re-saved as JPEG at quality 30..70 (a forum upload, a thumbnailer)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=int(rng.choice([30, 50, 70])))
    return buffer.getvalue()


def _brightness(image: np.ndarray, rng: np.random.Generator) -> bytes:
    """Brighter or darker by 20-30% (clipped at white, as an editor does)."""
    factor = float(rng.choice([0.7, 0.8, 1.2, 1.3]))
    return _png(np.clip(image.astype(np.float32) * factor, 0, 255).astype(np.uint8))


def _crop(image: np.ndarray, rng: np.random.Generator) -> bytes:
    """5-10% of width and height cut off, split at random between the two sides."""
    height, width = image.shape[:2]
    cut_x, cut_y = (max(1, round(side * rng.uniform(0.05, 0.10))) for side in (width, height))
    left, top = int(rng.integers(0, cut_x + 1)), int(rng.integers(0, cut_y + 1))
    return _png(image[top:height - (cut_y - top), left:width - (cut_x - left)])


def _shift(image: np.ndarray, rng: np.random.Generator) -> bytes:
    """Moved by 3-8% of the size in x and y, the edge pixels repeated into the gap."""
    height, width = image.shape[:2]
    dx, dy = (max(1, round(side * rng.uniform(0.03, 0.08))) * int(rng.choice([-1, 1])) for side in (width, height))
    padded = np.pad(image, ((abs(dy), abs(dy)), (abs(dx), abs(dx)), (0, 0)), mode="edge")
    top, left = abs(dy) - dy, abs(dx) - dx
    return _png(padded[top:top + height, left:left + width])


def _flip(image: np.ndarray, rng: np.random.Generator) -> bytes:
    """The mirror image: found only with mirrored matching (`dups --mirrored`)."""
    return _png(np.ascontiguousarray(image[:, ::-1]))


PLANTERS: dict[str, Callable[[np.ndarray, np.random.Generator], bytes]] = {
    "resize": _resize, "recompress": _recompress, "brightness": _brightness, "crop": _crop, "shift": _shift,
    "flip": _flip,
}


def plant_copy(image: np.ndarray, transform: str, rng: np.random.Generator) -> bytes:
    """A transformed copy of an RGB uint8 image, as the bytes of an image file."""
    if transform not in PLANTERS:
        raise PodiumError(f"Unknown duplicate transform {transform!r}.", expected=", ".join(PLANTERS),
                          received=repr(transform), fix="pick one of the listed transforms")
    return PLANTERS[transform](image, rng)


@dataclass
class QualityReport:
    """Precision and recall per transform at the chosen threshold, and the scan over thresholds."""

    threshold: int
    mirrored: bool
    background: int  # real images the copies hide among
    per_transform: int
    table: pd.DataFrame  # transform, planted, found, false_matches, recall, precision (at `threshold`)
    scan: pd.DataFrame  # the same for every threshold in SCAN_THRESHOLDS
    background_pairs: int  # near-duplicate pairs among the real images themselves (their own duplicates)
    seconds_hashing: float = 0.0
    extra: dict = field(default_factory=dict)

    def meets_target(self) -> bool:
        core = self.table[self.table["transform"].isin(CORE_TRANSFORMS)]
        return bool(((core["recall"] >= 0.98) & (core["precision"] >= 0.99)).all())

    def markdown(self) -> str:
        lines = [f"threshold {self.threshold} bits (of 64), mirrored matching {'on' if self.mirrored else 'off'}, "
                 f"{self.per_transform} copies per transform among {self.background} real images "
                 f"({self.background_pairs} near-duplicate pairs among those real images themselves)", "",
                 "| transform | planted | found | false matches | recall | precision |",
                 "|---|---:|---:|---:|---:|---:|"]
        for row in self.table.itertuples():
            lines.append(f"| {row.transform} | {row.planted} | {row.found} | {row.false_matches} | "
                         f"{row.recall:.3f} | {row.precision:.3f} |")
        return "\n".join(lines) + "\n"

    def scan_markdown(self) -> str:
        recall = self.scan.pivot(index="threshold", columns="transform", values="recall")
        precision = self.scan.pivot(index="threshold", columns="transform", values="precision")
        largest = self.scan.groupby("threshold")["largest_background_group"].first()
        names = [t for t in TRANSFORMS if t in recall.columns]
        lines = ["| threshold | " + " | ".join(f"{t} R / P" for t in names) + " | largest background group |",
                 "|---:|" + "|".join("---:" for _ in names) + "|---:|"]
        for threshold in recall.index:
            cells = [f"{recall.loc[threshold, t]:.3f} / {precision.loc[threshold, t]:.3f}" for t in names]
            lines.append(f"| {threshold} | " + " | ".join(cells) + f" | {largest.loc[threshold]} |")
        lines.append("\nPrecision is only meaningful while background groups stay small: once the real images' "
                     "own duplicate chains merge into giant groups, almost any match looks consistent.")
        return "\n".join(lines) + "\n"


def measure_detector(sources: Sequence[str | Path | bytes], threshold: int = DEFAULT_THRESHOLD,
                     per_transform: int = 100, transforms: Sequence[str] = TRANSFORMS, mirrored: bool = False,
                     seed: int = 0, workers: int | None = None, progress: bool = False) -> QualityReport:
    """Plant `per_transform` copies per transform (each of a different real image) among `sources`,
    search at the largest scanned threshold once, and score every threshold from the same pairs."""
    import time

    rng = np.random.default_rng(seed)
    n = len(sources)
    if per_transform * len(transforms) > n or per_transform < 1:
        raise PodiumError("Too few real images to plant that many copies.",
                          expected=f"at least per_transform x transforms = {per_transform * len(transforms)} images",
                          received=f"{n} images", fix="lower per_transform or use a bigger image set")
    chosen = rng.choice(n, size=per_transform * len(transforms), replace=False)
    source_of = np.sort(chosen.reshape(len(transforms), per_transform), axis=1).reshape(-1)
    kind = np.repeat(np.arange(len(transforms)), per_transform)
    copies = [plant_copy(decode_image(sources[s]), transforms[k], rng) for s, k in zip(source_of, kind)]
    started = time.perf_counter()
    hashes = hash_images(list(sources) + copies, workers=workers, progress=progress)
    seconds = time.perf_counter() - started
    widest = max(max(SCAN_THRESHOLDS), threshold)
    pairs = find_pairs(hashes.phash, widest, hashes.mirrored if mirrored else None)
    usable = hashes.matchable[pairs.left] & hashes.matchable[pairs.right]
    left, right, distance = pairs.left[usable], pairs.right[usable], pairs.distance[usable]
    scan = pd.concat([_score(n, source_of, kind, transforms, left, right, distance, t)
                      for t in sorted(set(SCAN_THRESHOLDS) | {threshold})], ignore_index=True)
    background = (left < n) & (right < n) & (distance <= threshold)
    return QualityReport(threshold=threshold, mirrored=mirrored, background=n, per_transform=per_transform,
                         table=scan[scan["threshold"] == threshold].drop(columns=["threshold", "largest_background_group"])
        .reset_index(drop=True),
                         scan=scan, background_pairs=int(background.sum()), seconds_hashing=seconds)


def _score(n: int, source_of: np.ndarray, kind: np.ndarray, transforms: Sequence[str], left: np.ndarray,
           right: np.ndarray, distance: np.ndarray, threshold: int) -> pd.DataFrame:
    """Recall: copies whose own source is matched. A match is correct when both sides show the same real
    image as far as the background itself knows (its own duplicate groups at this threshold)."""
    keep = distance <= threshold
    left, right = left[keep], right[keep]
    among_real = (left < n) & (right < n)
    identity = components(n, left[among_real], right[among_real])
    largest_background_group = int(np.bincount(identity).max()) if n else 0
    identity = np.concatenate([identity, identity[source_of]])  # a copy shows its source's image
    copy_kind = np.concatenate([np.full(n, -1), kind])
    correct = identity[left] == identity[right]
    direct = set(zip(left.tolist(), right.tolist()))
    rows = []
    for k, name in enumerate(transforms):
        members = np.flatnonzero(copy_kind == k)
        found = sum((int(source_of[c - n]), int(c)) in direct for c in members)
        involved = (copy_kind[left] == k) | (copy_kind[right] == k)
        matches, false_matches = int(involved.sum()), int((involved & ~correct).sum())
        rows.append({"threshold": threshold, "transform": name, "planted": len(members), "found": found,
                     "false_matches": false_matches, "recall": found / len(members),
                     "precision": (matches - false_matches) / matches if matches else 1.0,
                     "largest_background_group": largest_background_group})
    return pd.DataFrame(rows)
