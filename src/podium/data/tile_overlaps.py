"""Images that show the same piece of a larger scene: satellite tiles cut with an overlap (Airbus' 768 px
tiles share 256 px steps of sea). A whole-image hash misses them, since only part of each tile is
shared, so a leak between folds survives `make dups` unless it looks at parts.

Each image is cut into a grid x grid of blocks and every block is hashed as a whole image is (pHash of a
32 x 32 thumbnail, perceptual_hash.hash_thumbnails). Blocks too flat to hash (open water, cloud) never match.
Two images share a scene when at least `min_blocks` of their blocks match *at one offset*: block (r, c)
of one is block (r + dr, c + dc) of the other for the same (dr, dc) every time. A single chance match
between unrelated blocks does not join two images; a real overlap of two tiles in a 3 x 3 grid shifted
by one block shares six blocks at one offset. Offsets are whole blocks: tiles cut on the same grid
(Airbus' 256 px steps with grid 3) are found, arbitrary shifts are not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from podium.data.hash_search import components, find_pairs
from podium.data.perceptual_hash import HASH_SIDE, gray_thumbnails, hash_thumbnails
from podium.errors import PodiumError

DEFAULT_MIN_BLOCKS = 2


def block_hashes(sources: Sequence[str | Path | bytes], grid: int, workers: int | None = None,
                 progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(phash (N, grid*grid) uint64, usable (N, grid*grid) bool): usable = decoded and not flat."""
    check_grid(grid)
    blocks = grid * grid
    if not len(sources):
        return np.zeros((0, blocks), np.uint64), np.zeros((0, blocks), bool)
    thumbnails, ok = gray_thumbnails(sources, grid * HASH_SIDE, workers, progress, f"hash {grid}x{grid} blocks")
    phash, _, flat = hash_thumbnails(_blocks(thumbnails, grid).reshape(-1, HASH_SIDE, HASH_SIDE))
    usable = (~flat).reshape(-1, blocks) & ok[:, None]
    return phash.reshape(-1, blocks), usable


def _blocks(thumbnails: np.ndarray, grid: int) -> np.ndarray:
    """(N, grid*32, grid*32) -> (N, grid*grid, 32, 32), blocks row by row."""
    n = len(thumbnails)
    return thumbnails.reshape(n, grid, HASH_SIDE, grid, HASH_SIDE).transpose(0, 1, 3, 2, 4).reshape(
        n, grid * grid, HASH_SIDE, HASH_SIDE)


def overlap_pairs(phash: np.ndarray, usable: np.ndarray, grid: int, threshold: int,
                  min_blocks: int = DEFAULT_MIN_BLOCKS) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) image indices of pairs sharing >= min_blocks matching blocks at one offset."""
    check_grid(grid)
    if min_blocks < 1:
        raise PodiumError("min_blocks must be at least 1.", expected=">= 1", received=str(min_blocks),
                          fix="use 2 (the default) unless tiles overlap by a single block")
    blocks = grid * grid
    flat_ids = np.flatnonzero(usable.reshape(-1))
    if len(flat_ids) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    found = find_pairs(phash.reshape(-1)[flat_ids], threshold)
    a, b = flat_ids[found.left], flat_ids[found.right]
    image_a, image_b = a // blocks, b // blocks
    keep = image_a != image_b
    image_a, image_b, block_a, block_b = image_a[keep], image_b[keep], a[keep] % blocks, b[keep] % blocks
    swap = image_a > image_b  # one orientation per pair, so offsets are comparable
    image_a, image_b = np.where(swap, image_b, image_a), np.where(swap, image_a, image_b)
    block_a, block_b = np.where(swap, block_b, block_a), np.where(swap, block_a, block_b)
    d_row = block_a // grid - block_b // grid
    d_col = block_a % grid - block_b % grid
    keys = np.stack([image_a, image_b, d_row, d_col], axis=1)
    if not len(keys):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    unique, counts = np.unique(keys, axis=0, return_counts=True)
    agreed = unique[counts >= min_blocks]
    pairs = np.unique(agreed[:, :2], axis=0)
    return pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)


def overlap_groups(phash: np.ndarray, usable: np.ndarray, grid: int, threshold: int,
                   min_blocks: int = DEFAULT_MIN_BLOCKS) -> np.ndarray:
    """A scene label per image: the smallest index of its connected component of overlapping tiles."""
    left, right = overlap_pairs(phash, usable, grid, threshold, min_blocks)
    return components(len(phash), left, right)


def check_grid(grid: int) -> None:
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or not 2 <= grid <= 8:
        raise PodiumError("The tile grid is out of range.", expected="an integer 2..8 (3 for Airbus' 768 px "
                          "tiles in 256 px steps)", received=repr(grid), fix="pass --tiles 3")
