"""Near-duplicate images: perceptual hashes, groups found without comparing all pairs, and what the groups
mean for the split (a group never spans folds) and for the test set (train<->test copies).

Why: a validation score is honest only when no validation image has a copy in training. Copies are rarely
byte-identical: the same photo re-saved, resized, brightened, or the same piece of sea on two satellite
tiles. The content hash (sha1, already in the index) catches byte copies; the perceptual hash here catches
re-saved, resized and brightened copies; overlapping tiles need their blocks compared (tile_overlaps.py,
`dups --tiles`).

Hash (pHash): the 64 lowest-frequency AC coefficients of the 2-D DCT of a 32x32 grayscale thumbnail, each
bit = coefficient > their median. Leaving out the DC term and thresholding at the median makes it blind to
brightness and contrast; low frequencies survive resizing and JPEG. A horizontal flip only negates the odd
horizontal frequencies, so the mirrored image's hash comes from the same coefficients for free.

Search (multi-index hashing): cut the 64 bits into s chunks. Two hashes within Hamming distance t differ by
at most floor(t / s) bits in at least one chunk (pigeonhole), so probing each chunk's buckets within that
radius finds every pair, and only bucket-mates are ever compared. With s = t + 1 chunks a pair shares one
chunk exactly; `_plan` picks s from the data size so buckets stay small at 200,000 images. Candidates are
verified by their full distance, so the result equals brute force, which tests check.
"""

from __future__ import annotations

import io
import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from podium.data.images import ImageDecodeError, decode_image
from podium.errors import PodiumError
from podium.progress import progress as progress_bar

HASH_BITS = 64
HASH_SIDE = 32  # thumbnail side the DCT runs on
DEFAULT_THRESHOLD = 8  # max Hamming distance of a near-duplicate pair: measured, see docs/data-quality.md
FLAT_STD = 2.0  # gray levels: a thumbnail flatter than this has no structure to hash (blank, one colour)
MAX_THRESHOLD = 24  # above this, unrelated images start to match (random pairs sit near 32)
_PAIR_BLOCK = 4_000_000  # candidate pairs verified at once: bounds memory on skewed buckets
_PROBE_COST = 3.0  # one bucket probe (dense table read) in units of one verified candidate, measured


# ---- hashing --------------------------------------------------------------------------------------
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
    raw = source if isinstance(source, bytes) else _read(source)
    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.format == "JPEG" and image.mode in ("L", "RGB"):
                image.draft("L", (2 * side, 2 * side))
                image.load()
                gray = _upright(image).convert("L")
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


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ImageDecodeError(str(path), f"unreadable file ({exc.strerror or exc})") from exc


def _upright(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF: no known orientation, the pixels are still fine
        return image


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


# ---- pairs within a distance, without comparing all pairs ----------------------------------------
@dataclass(frozen=True)
class Pairs:
    """Index pairs (left < right) within the threshold and their Hamming distance."""

    left: np.ndarray
    right: np.ndarray
    distance: np.ndarray

    def __len__(self) -> int:
        return len(self.left)


def find_pairs(hashes: np.ndarray, threshold: int = DEFAULT_THRESHOLD, mirrored: np.ndarray | None = None
               ) -> Pairs:
    """Every pair i < j with hamming(h_i, h_j) <= threshold, found by multi-index hashing. With `mirrored`
    (each image's flipped hash), a mirror-image copy counts too: distance = min over both orientations."""
    check_threshold(threshold)
    both, n = _with_mirrored(hashes, mirrored)
    distinct, inverse = np.unique(both, return_inverse=True)
    found = _expand_all(_distinct_pairs(distinct, threshold), inverse)
    return _fold_mirrored(found, n)


def find_groups(hashes: np.ndarray, threshold: int = DEFAULT_THRESHOLD, mirrored: np.ndarray | None = None
                ) -> np.ndarray:
    """A group label per hash: the smallest index in its connected component of near-duplicate pairs.
    Deterministic, and equal for every member, so it is also a stable group id. Identical hashes are
    joined as a chain, not all pairs, so ten thousand identical images cost ten thousand edges."""
    check_threshold(threshold)
    both, n = _with_mirrored(hashes, mirrored)
    distinct, inverse = np.unique(both, return_inverse=True)
    near = _distinct_pairs(distinct, threshold)
    first = _first_position(inverse)
    chain_left, chain_right = _same_value_chain(inverse)
    left = np.concatenate([first[near.left], chain_left]) % n
    right = np.concatenate([first[near.right], chain_right]) % n
    return components(n, left, right)


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components (what union-find computes) labelled by their smallest member index."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 0:
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    smallest = np.full(component.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, component, np.arange(n))
    return smallest[component]


def check_threshold(threshold: int) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) \
            or not 0 <= threshold <= MAX_THRESHOLD:
        raise PodiumError("The near-duplicate threshold is out of range.",
                          expected=f"an integer Hamming distance 0..{MAX_THRESHOLD} (default {DEFAULT_THRESHOLD})",
                          received=repr(threshold),
                          fix="pass --threshold N; 0 finds only identical hashes, higher finds looser copies")


def plan(n: int, threshold: int) -> tuple[int, int]:
    """(chunks, radius per chunk) with the least expected work for n hashes: chunks long enough that
    buckets stay small, radius small enough that probing each bucket's neighbours stays cheap."""
    best: tuple[float, int, int] | None = None
    for chunks in range(1, min(threshold + 1, HASH_BITS // 4) + 1):
        bits = HASH_BITS // chunks  # the shortest chunk decides bucket size
        radius = threshold // chunks
        probes = sum(math.comb(bits + (HASH_BITS % chunks > 0), k) for k in range(radius + 1))
        candidates = chunks * n * probes * n / 2.0 ** bits
        cost = chunks * n * probes * _PROBE_COST + candidates
        if best is None or cost < best[0]:
            best = (cost, chunks, radius)
    return best[1], best[2]


def _with_mirrored(hashes: np.ndarray, mirrored: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Hashes, then (when given) the mirrored hashes as n more entries: index k and k + n are one image."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    if mirrored is None:
        return hashes, len(hashes)
    mirrored = np.ascontiguousarray(mirrored, dtype=np.uint64)
    if mirrored.shape != hashes.shape:
        raise ValueError(f"mirrored hashes {mirrored.shape} do not match hashes {hashes.shape}")
    return np.concatenate([hashes, mirrored]), len(hashes)


def _fold_mirrored(found: Pairs, n: int) -> Pairs:
    left, right = found.left % n, found.right % n
    keep = left != right  # an image and its own mirror are not a pair
    left, right = np.minimum(left[keep], right[keep]), np.maximum(left[keep], right[keep])
    return _unique_pairs(left, right, found.distance[keep], n)


def _distinct_pairs(distinct: np.ndarray, threshold: int) -> Pairs:
    """Pairs among distinct hash values within the threshold: one multi-index pass per chunk."""
    chunks, radius = plan(len(distinct), threshold)
    lefts, rights = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for offset, width in _chunk_layout(chunks):
        left, right = _chunk_pairs(distinct, offset, width, radius, threshold)
        lefts.append(left)
        rights.append(right)
    left, right = np.concatenate(lefts), np.concatenate(rights)
    return _unique_pairs(left, right, hamming(distinct[left], distinct[right]), len(distinct))


def _expand_all(pairs: Pairs, inverse: np.ndarray) -> Pairs:
    """Distinct-value pairs -> every pair of positions: across each value pair, and within each value."""
    n = len(inverse)
    order = np.argsort(inverse, kind="stable")
    sizes = np.bincount(inverse, minlength=int(inverse.max()) + 1 if n else 0)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    a, b = pairs.left, pairs.right
    across = _cross(order, starts[a], sizes[a], starts[b], sizes[b])
    repeated = np.flatnonzero(sizes > 1)
    within = _cross(order, starts[repeated], sizes[repeated], starts[repeated], sizes[repeated])
    left = np.concatenate([across[0], within[0]])
    right = np.concatenate([across[1], within[1]])
    distance = np.concatenate([np.repeat(pairs.distance, sizes[a] * sizes[b]), np.zeros(len(within[0]), np.int64)])
    keep = left != right
    left, right, distance = left[keep], right[keep], distance[keep]
    return _unique_pairs(np.minimum(left, right), np.maximum(left, right), distance, n)


def _cross(order: np.ndarray, start_a: np.ndarray, size_a: np.ndarray, start_b: np.ndarray,
           size_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (position of value a, position of value b) for each listed value pair."""
    reps = (size_a * size_b).astype(np.int64)
    total = int(reps.sum())
    pair = np.repeat(np.arange(len(reps)), reps)
    within = np.arange(total) - np.repeat(np.cumsum(reps) - reps, reps)
    i, j = within // size_b[pair], within % size_b[pair]
    return order[start_a[pair] + i].astype(np.int64), order[start_b[pair] + j].astype(np.int64)


def _first_position(inverse: np.ndarray) -> np.ndarray:
    """For each distinct value, the smallest position holding it."""
    first = np.full(int(inverse.max()) + 1 if len(inverse) else 0, len(inverse), dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(len(inverse)))
    return first


def _same_value_chain(inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions sharing one value joined as a chain (a-b, b-c): connected, and linear in size."""
    order = np.argsort(inverse, kind="stable")
    same = inverse[order][1:] == inverse[order][:-1]
    return order[:-1][same].astype(np.int64), order[1:][same].astype(np.int64)


def _chunk_layout(chunks: int) -> list[tuple[int, int]]:
    widths = [HASH_BITS // chunks + (1 if k < HASH_BITS % chunks else 0) for k in range(chunks)]
    offsets = np.cumsum([0] + widths[:-1])
    return [(int(o), w) for o, w in zip(offsets, widths)]


def _chunk_pairs(hashes: np.ndarray, offset: int, width: int, radius: int, threshold: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs i < j whose chunk differs by <= radius bits and whose full distance is <= threshold."""
    keys = (hashes >> np.uint64(offset)) & np.uint64((1 << width) - 1)
    buckets = _Buckets(keys, width)
    lefts, rights = [], []
    for mask in _masks(width, radius):
        start, count = buckets.lookup(keys ^ mask)
        for queries in _blocks(count):
            left, right = _expand(queries, start[queries], count[queries], buckets.order)
            keep = left < right  # each pair is met from both ends; keep one
            left, right = left[keep], right[keep]
            close = hamming(hashes[left], hashes[right]) <= threshold
            lefts.append(left[close])
            rights.append(right[close])
    if not lefts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(lefts), np.concatenate(rights)


class _Buckets:
    """Positions sorted by chunk value, and where each value's run starts. Short chunks get a dense
    table (one array read per probe); long ones (few chunks, tiny thresholds) a binary search."""

    DENSE_BITS = 24

    def __init__(self, keys: np.ndarray, width: int):
        self.order = np.argsort(keys, kind="stable")
        self.dense = width <= self.DENSE_BITS
        if self.dense:
            self.count = np.bincount(keys.astype(np.int64), minlength=1 << width).astype(np.int32)
            self.start = (np.cumsum(self.count, dtype=np.int64) - self.count).astype(np.int64)
        else:
            self.sorted_keys = keys[self.order]

    def lookup(self, probe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.dense:
            index = probe.astype(np.int64)
            return self.start[index], self.count[index].astype(np.int64)
        start = np.searchsorted(self.sorted_keys, probe, side="left")
        return start, np.searchsorted(self.sorted_keys, probe, side="right") - start


def _masks(width: int, radius: int) -> np.ndarray:
    masks = [0]
    for flipped in range(1, radius + 1):
        masks += [sum(1 << bit for bit in bits) for bits in itertools.combinations(range(width), flipped)]
    return np.array(masks, dtype=np.uint64)


def _blocks(count: np.ndarray) -> list[np.ndarray]:
    """Query positions with matches, cut so each block expands to at most ~_PAIR_BLOCK candidates."""
    queries = np.flatnonzero(count)
    if len(queries) == 0:
        return []
    totals = np.cumsum(count[queries])
    cuts = np.searchsorted(totals, np.arange(_PAIR_BLOCK, totals[-1], _PAIR_BLOCK), side="right")
    return [block for block in np.split(queries, np.unique(cuts)) if len(block)]


def _expand(queries: np.ndarray, start: np.ndarray, count: np.ndarray, order: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Every (query, bucket member) pair of a block, without a Python loop."""
    total = int(count.sum())
    left = np.repeat(queries, count)
    within = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    right = order[np.repeat(start, count) + within]
    return left.astype(np.int64), right.astype(np.int64)


def _unique_pairs(left: np.ndarray, right: np.ndarray, distance: np.ndarray, n: int) -> Pairs:
    """Drop repeats (one pair found in several chunks or orientations), keeping the smallest distance."""
    left, right, distance = (np.asarray(a, dtype=np.int64) for a in (left, right, distance))
    key = left * n + right
    order = np.lexsort((distance, key))
    key, distance = key[order], distance[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, distance = key[first], distance[first]
    return Pairs(key // n, key % n, distance)


# ---- the index: hashes cached per file, groups written into the `group` column ---------------------
HASH_COLUMNS = ["path", "hash", "phash", "mirrored", "flat", "ok"]


def base_group(index: pd.DataFrame) -> pd.Series:
    """The group before any near-duplicate search, as build_index writes it: the content hash (byte copies
    share it), or 'unreadable:<path>' for a file that could not even be read. A singleton keeps this id, so
    an index without near-duplicates is unchanged by `dups` and its saved splits stay valid."""
    return index["hash"].where(index["hash"].astype(bool), "unreadable:" + index["path"])


def load_or_hash(index: pd.DataFrame, data_root: Path, cache_path: Path, force: bool = False,
                 workers: int | None = None, progress: bool = False) -> ImageHashes:
    """Hashes aligned with the index rows, computed once per (path, content hash) and cached, so a second
    `make dups` with another threshold takes seconds, not another pass over 200,000 files."""
    from podium.io import write_parquet

    cached = _read_hash_cache(cache_path) if not force else None
    key = index["path"] + "\0" + index["hash"]
    known = pd.Series(dtype=object) if cached is None else pd.Series(
        range(len(cached)), index=cached["path"] + "\0" + cached["hash"])
    known = known[~known.index.duplicated()]
    position = key.map(known)
    todo = np.flatnonzero(position.isna().to_numpy() & index["ok"].to_numpy())
    fresh = hash_images([Path(data_root) / p for p in index["path"].iloc[todo]], workers, progress)
    phash = np.zeros(len(index), np.uint64)
    mirrored, flat, ok = np.zeros(len(index), np.uint64), np.zeros(len(index), bool), np.zeros(len(index), bool)
    hit = np.flatnonzero(position.notna().to_numpy())
    if len(hit):
        rows = position.iloc[hit].astype(int).to_numpy()
        phash[hit], mirrored[hit] = cached["phash"].to_numpy()[rows], cached["mirrored"].to_numpy()[rows]
        flat[hit], ok[hit] = cached["flat"].to_numpy()[rows], cached["ok"].to_numpy()[rows]
    phash[todo], mirrored[todo], flat[todo], ok[todo] = fresh.phash, fresh.mirrored, fresh.flat, fresh.ok
    hashes = ImageHashes(phash, mirrored, flat, ok)
    if len(todo) or cached is None:
        current = pd.DataFrame({"path": index["path"].to_numpy(), "hash": index["hash"].to_numpy(),
                                "phash": phash, "mirrored": mirrored, "flat": flat, "ok": ok})
        kept = [] if cached is None else [cached[~(cached["path"] + "\0" + cached["hash"]).isin(set(key))]]
        write_parquet(cache_path, pd.concat([current, *kept], ignore_index=True))  # other rows stay cached
    return hashes


def _read_hash_cache(path: Path) -> pd.DataFrame | None:
    path = Path(path)
    if not path.is_file():
        return None
    frame = pd.read_parquet(path)
    return frame if list(frame.columns) == HASH_COLUMNS else None  # another version's cache: rebuild


def group_labels(index: pd.DataFrame, hashes: ImageHashes, threshold: int = DEFAULT_THRESHOLD,
                 mirrored: bool = False, extra_pairs: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Row position of each row's group representative: byte copies (same content hash), perceptual
    near-duplicates (matchable rows within `threshold`) and `extra_pairs` of rows (overlapping tiles)
    joined transitively."""
    check_threshold(threshold)
    n = len(index)
    base = base_group(index).to_numpy()
    _, same_bytes = np.unique(base, return_inverse=True)
    chain_left, chain_right = _same_value_chain(same_bytes)
    rows = np.flatnonzero(hashes.matchable)
    local = find_groups(hashes.phash[rows], threshold, hashes.mirrored[rows] if mirrored else None)
    extra_left, extra_right = extra_pairs if extra_pairs is not None else (np.zeros(0, np.int64),) * 2
    return components(n, np.concatenate([chain_left, rows, extra_left]),
                      np.concatenate([chain_right, rows[local], extra_right]))


def assign_groups(index: pd.DataFrame, hashes: ImageHashes, threshold: int = DEFAULT_THRESHOLD,
                  mirrored: bool = False, extra_pairs: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """The index with `group` = one id per connected component: the smallest base id (content hash) among
    its members. Deterministic, independent of row order, and a singleton keeps its old id."""
    labels = group_labels(index, hashes, threshold, mirrored, extra_pairs)
    base = base_group(index)
    group_id = base.groupby(labels).transform("min")
    out = index.copy()
    out["group"] = group_id.to_numpy()
    return out


@dataclass(frozen=True)
class GroupSummary:
    """What `dups` found, in numbers a user can check."""

    images: int
    hashed: int
    flat: int  # too little structure to hash: grouped by content hash only
    exact_groups: int  # groups of byte-identical files
    exact_images: int
    groups: int  # groups with more than one image, after near-duplicate search
    grouped_images: int
    largest_group: int
    cross_split_groups: int  # holding both train and test images
    label_conflicts: int  # groups whose train images carry different labels
    changed: bool  # the partition differs from the index's previous one: splits must be rebuilt

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def summarize_groups(before: pd.DataFrame, after: pd.DataFrame, hashes: ImageHashes) -> GroupSummary:
    base = base_group(after)
    exact_sizes = base.value_counts()
    sizes = after["group"].value_counts()
    multi = sizes[sizes > 1].index
    in_multi = after[after["group"].isin(multi)]
    splits = in_multi.groupby("group")["split"].nunique()
    train = in_multi[in_multi["split"] == "train"]
    labels = train.groupby("group")["label"].nunique()
    return GroupSummary(
        images=len(after), hashed=int(hashes.ok.sum()), flat=int(hashes.flat.sum()),
        exact_groups=int((exact_sizes > 1).sum()), exact_images=int(exact_sizes[exact_sizes > 1].sum()),
        groups=len(multi), grouped_images=len(in_multi), largest_group=int(sizes.max()) if len(sizes) else 0,
        cross_split_groups=int((splits > 1).sum()), label_conflicts=int((labels > 1).sum()),
        changed=not same_partition(before["group"], after["group"]))


def same_partition(a: pd.Series, b: pd.Series) -> bool:
    """True when two group columns put the same rows together, whatever the ids are called."""
    codes_a = pd.factorize(a.to_numpy())[0]
    codes_b = pd.factorize(b.to_numpy())[0]
    return bool(np.array_equal(codes_a, codes_b))


def train_test_matches(index: pd.DataFrame, hashes: ImageHashes) -> pd.DataFrame:
    """Test images in a group with labeled train images: one row per (test, train) pair, closest first.
    Where they are copies, the test answer is in the training data: know it before trusting a score."""
    columns = ["test_id", "train_id", "train_label", "distance", "exact", "group"]
    ok = index["ok"].to_numpy()
    frame = index.assign(_phash=hashes.phash, _mirrored=hashes.mirrored, _row=np.arange(len(index)))
    test = frame[(frame["split"] == "test")]
    train = frame[(frame["split"] == "train") & ok]
    pairs = test.merge(train, on="group", suffixes=("_test", "_train"))
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    distance = np.minimum(hamming(pairs["_phash_test"].to_numpy(np.uint64), pairs["_phash_train"].to_numpy(np.uint64)),
                          hamming(pairs["_mirrored_test"].to_numpy(np.uint64), pairs["_phash_train"].to_numpy(np.uint64)))
    out = pd.DataFrame({"test_id": pairs["id_test"], "train_id": pairs["id_train"],
                        "train_label": pairs["label_train"], "distance": distance,
                        "exact": (pairs["hash_test"] == pairs["hash_train"]).to_numpy(), "group": pairs["group"]})
    return out.sort_values(["test_id", "distance", "train_id"], kind="stable").reset_index(drop=True)


def pseudo_labels(matches: pd.DataFrame) -> pd.DataFrame:
    """A suggested label for each test image whose train duplicates all agree on one label; conflicting
    ones get none (the copies disagree, so the label is not known)."""
    columns = ["test_id", "label", "train_matches", "closest_distance", "exact"]
    if matches.empty:
        return pd.DataFrame(columns=columns)
    per_test = matches.groupby("test_id", sort=True).agg(
        labels=("train_label", "nunique"), label=("train_label", "first"), train_matches=("train_id", "size"),
        closest_distance=("distance", "min"), exact=("exact", "any"))
    agreed = per_test[per_test["labels"] == 1].reset_index()
    return agreed[columns].reset_index(drop=True)


# ---- the `dups` stage --------------------------------------------------------------------------------
@dataclass
class DupsResult:
    index_path: Path
    summary: GroupSummary
    threshold: int
    mirrored: bool
    tiles: int  # grid of the overlapping-tile search; 0: off
    tile_pairs: int  # image pairs found sharing a piece of scene
    train_test_path: Path  # test images with a train copy, one row per pair
    pseudo_labels_path: Path  # a suggested label per test image whose train copies agree
    test_with_train_copies: int
    pseudo_labeled: int
    stale_splits: list[Path]  # saved splits made with the old groups: rebuild them
    seconds: float


def duplicates_dir(data_root: Path) -> Path:
    return Path(data_root) / "duplicates"


def run_dups(data_root: Path, threshold: int = DEFAULT_THRESHOLD, mirrored: bool = False, force: bool = False,
             workers: int | None = None, progress: bool = False, tiles: int = 0,
             tile_min_blocks: int = 2) -> DupsResult:
    """make dups: hash every image (cached), group byte copies and near-duplicates, write the groups into
    the index atomically, and report train<->test copies. Folds made afterwards keep each group together.

    tiles > 0 also joins images that share a piece of one scene (data/tile_overlaps.py, grid `tiles`)."""
    import time

    from podium.data.index import load_index, require_files, save_index
    from podium.io import write_csv, write_json

    started = time.perf_counter()
    check_threshold(threshold)
    data_root = Path(data_root)
    index_path = data_root / "index.parquet"
    before = load_index(index_path)
    require_files(before, data_root)  # a file deleted since `make data`: named, with the fix that works
    out_dir = duplicates_dir(data_root)
    hashes = load_or_hash(before, data_root, out_dir / "hashes.parquet", force=force, workers=workers,
                          progress=progress)
    extra = None
    if tiles:
        from podium.data.tile_overlaps import block_hashes, check_grid, overlap_pairs

        check_grid(tiles)
        rows = np.flatnonzero(before["ok"].to_numpy())
        phash, usable = block_hashes([data_root / p for p in before["path"].iloc[rows]], tiles, workers, progress)
        left, right = overlap_pairs(phash, usable, tiles, threshold, tile_min_blocks)
        extra = (rows[left], rows[right])
    after = assign_groups(before, hashes, threshold, mirrored, extra)
    summary = summarize_groups(before, after, hashes)
    matches = train_test_matches(after, hashes)
    suggestions = pseudo_labels(matches)
    save_index(after, index_path)
    train_test_path = write_csv(out_dir / "train_test.csv", matches)
    pseudo_path = write_csv(out_dir / "pseudo_labels.csv", suggestions)
    tile_pairs = 0 if extra is None else len(extra[0])
    write_json(out_dir / "summary.json", {"threshold": threshold, "mirrored": mirrored, "tiles": tiles,
                                          "tile_min_blocks": tile_min_blocks, "tile_pairs": tile_pairs,
                                          **summary.to_dict(),
                                          "test_with_train_copies": int(matches["test_id"].nunique()),
                                          "pseudo_labeled": len(suggestions)})
    stale = sorted((data_root / "splits").glob("*.csv")) if summary.changed else []
    return DupsResult(index_path=index_path, summary=summary, threshold=threshold, mirrored=mirrored,
                      tiles=tiles, tile_pairs=tile_pairs, train_test_path=train_test_path, pseudo_labels_path=pseudo_path,
                      test_with_train_copies=int(matches["test_id"].nunique()), pseudo_labeled=len(suggestions),
                      stale_splits=stale, seconds=time.perf_counter() - started)


def dups_settings(data_root: Path) -> tuple[int, bool]:
    """(threshold, mirrored) of the last `make dups`, so audit and EDA judge with the same eyes."""
    import json

    path = duplicates_dir(data_root) / "summary.json"
    if not path.is_file():
        return DEFAULT_THRESHOLD, False
    saved = json.loads(path.read_text(encoding="utf-8"))
    return int(saved.get("threshold", DEFAULT_THRESHOLD)), bool(saved.get("mirrored", False))


def dups_tiles(data_root: Path) -> tuple[int, int]:
    """(tiles, tile_min_blocks) of the last `make dups`: audit checks overlapping tiles when dups grouped them."""
    import json

    path = duplicates_dir(data_root) / "summary.json"
    if not path.is_file():
        return 0, 2
    saved = json.loads(path.read_text(encoding="utf-8"))
    return int(saved.get("tiles", 0)), int(saved.get("tile_min_blocks", 2))
