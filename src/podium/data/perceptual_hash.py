"""Perceptual hashes of images: what makes two re-saved, resized or brightened copies look alike.

Hash (pHash): the 64 lowest-frequency AC coefficients of the 2-D DCT of a 32x32 grayscale thumbnail, each
bit = coefficient > their median. Leaving out the DC term and thresholding at the median makes it blind to
brightness and contrast; low frequencies survive resizing and JPEG. A horizontal flip only negates the odd
horizontal frequencies, so the mirrored image's hash comes from the same coefficients for free.
"""

from __future__ import annotations

import io
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from podium.data.images import ImageDecodeError, decode_image, read_image_bytes, upright
from podium.progress import progress as progress_bar

HASH_BITS = 64
HASH_SIDE = 32  # thumbnail side the DCT runs on
FLAT_STD = 2.0  # gray levels: a thumbnail flatter than this has no structure to hash (blank, one colour)


@dataclass(frozen=True)
class ImageHashes:
    """Perceptual hashes of N images, aligned with the list they were computed from."""

    phash: np.ndarray  # (N,) uint64
    mirrored: np.ndarray  # (N,) uint64: the hash of the horizontally flipped image
    flat: np.ndarray  # (N,) bool: too little structure; matched by content hash only
    ok: np.ndarray  # (N,) bool: decoded; False rows have zero hashes and never match

    def __len__(self) -> int:
        return len(self.phash)

    def take(self, rows) -> "ImageHashes":
        return ImageHashes(self.phash[rows], self.mirrored[rows], self.flat[rows], self.ok[rows])

    @property
    def matchable(self) -> np.ndarray:
        return self.ok & ~self.flat


def gray_thumbnail(source: str | Path | bytes, side: int = HASH_SIDE) -> np.ndarray:
    """(side, side) float32 luminance of an image, upright. JPEGs are decoded at a reduced scale (the DCT
    can skip the detail a 32px thumbnail throws away), which makes hashing 768px photos several times
    faster; anything unusual goes through the project's one full decoder."""
    raw = read_image_bytes(source)
    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.format == "JPEG" and image.mode in ("L", "RGB"):
                image.draft("L", (2 * side, 2 * side))
                image.load()
                gray = upright(image).convert("L")
                return _thumbnail(gray, side)
    except Exception:  # truncated or odd files: the full decoder below names the problem
        pass
    rgb = decode_image(raw, name=None if isinstance(source, bytes) else str(source))
    return _thumbnail(Image.fromarray(rgb).convert("L"), side)


def hash_thumbnails(thumbnails: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(phash, mirrored, flat) of a (N, 32, 32) stack of gray thumbnails, vectorised."""
    stack = np.asarray(thumbnails, dtype=np.float64)
    if stack.ndim != 3 or stack.shape[1:] != (HASH_SIDE, HASH_SIDE):
        raise ValueError(f"hash_thumbnails needs (N, {HASH_SIDE}, {HASH_SIDE}), got {stack.shape}")
    dct = _dct_matrix(HASH_SIDE)
    coefficients = dct @ stack @ dct.T  # [n, vertical frequency, horizontal frequency]
    rows, cols = _LOW_FREQUENCIES
    low = coefficients[:, rows, cols]  # (N, 64)
    mirror_signs = np.where(cols % 2 == 1, -1.0, 1.0)  # flipping x negates odd horizontal frequencies
    flat = stack.reshape(len(stack), -1).std(axis=1) < FLAT_STD
    return _bits_above_median(low), _bits_above_median(low * mirror_signs), flat


def hash_images(sources: Sequence[str | Path | bytes], workers: int | None = None,
                progress: bool = False) -> ImageHashes:
    """Perceptual hashes of image files or bytes. Decoding releases the GIL, so threads scale with cores;
    an undecodable image gets ok=False instead of stopping the other 199,999."""
    thumbnails, ok = gray_thumbnails(sources, HASH_SIDE, workers, progress, "hash")
    phash, mirrored, flat = hash_thumbnails(thumbnails) if len(sources) else (np.zeros(0, np.uint64),) * 2 + (
        np.zeros(0, bool),)
    phash[~ok] = 0
    mirrored[~ok] = 0
    return ImageHashes(phash=phash, mirrored=mirrored, flat=flat & ok, ok=ok)


def gray_thumbnails(sources: Sequence[str | Path | bytes], side: int, workers: int | None = None,
                    progress: bool = False, description: str = "hash") -> tuple[np.ndarray, np.ndarray]:
    """((N, side, side) float32 gray thumbnails, (N,) ok) in threads; an undecodable image is ok=False."""
    workers = workers or os.cpu_count() or 1
    thumbnails = np.zeros((len(sources), side, side), dtype=np.float32)
    ok = np.zeros(len(sources), dtype=bool)

    def one(position: int) -> None:
        try:
            thumbnails[position] = gray_thumbnail(sources[position], side)
            ok[position] = True
        except ImageDecodeError:
            pass

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in progress_bar(pool.map(one, range(len(sources))), total=len(sources), desc=description,
                              unit="img", enabled=progress):
            pass
    return thumbnails, ok


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance between uint64 hashes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64))).astype(np.int64)


def _thumbnail(gray: Image.Image, side: int) -> np.ndarray:
    return np.asarray(gray.resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32)


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix: coefficients = C @ X @ C.T."""
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    matrix[0] /= math.sqrt(2.0)
    return matrix


def _low_frequencies(count: int = HASH_BITS) -> tuple[np.ndarray, np.ndarray]:
    """The `count` lowest 2-D frequencies without DC, by total frequency, ties by how diagonal."""
    cells = [(u, v) for u in range(HASH_SIDE) for v in range(HASH_SIDE) if 0 < u + v <= 12]
    cells.sort(key=lambda cell: (cell[0] + cell[1], abs(cell[0] - cell[1]), cell[0]))
    chosen = cells[:count]
    return np.array([u for u, _ in chosen]), np.array([v for _, v in chosen])


_LOW_FREQUENCIES = _low_frequencies()
_BIT_WEIGHTS = np.left_shift(np.uint64(1), np.arange(HASH_BITS, dtype=np.uint64))


def _bits_above_median(values: np.ndarray) -> np.ndarray:
    bits = values > np.median(values, axis=1, keepdims=True)
    return (bits.astype(np.uint64) * _BIT_WEIGHTS).sum(axis=1, dtype=np.uint64)
