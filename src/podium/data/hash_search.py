"""Pairs of 64-bit hashes within a Hamming distance, and their groups, without comparing all pairs.

Search (multi-index hashing): cut the 64 bits into s chunks. Two hashes within Hamming distance t differ by
at most floor(t / s) bits in at least one chunk (pigeonhole), so probing each chunk's buckets within that
radius finds every pair, and only bucket-mates are ever compared. With s = t + 1 chunks a pair shares one
chunk exactly; `plan` picks s from the data size so buckets stay small at 200,000 images. Candidates are
verified by their full distance, so the result equals brute force, which tests check.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from podium.data.perceptual_hash import HASH_BITS, hamming
from podium.errors import PodiumError

DEFAULT_THRESHOLD = 8  # max Hamming distance of a near-duplicate pair: measured, see docs/data-quality.md
MAX_THRESHOLD = 24  # above this, unrelated images start to match (random pairs sit near 32)
_PAIR_BLOCK = 4_000_000  # candidate pairs verified at once: bounds memory on skewed buckets
_PROBE_COST = 3.0  # one bucket probe (dense table read) in units of one verified candidate, measured


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
    chain_left, chain_right = same_value_chain(inverse)
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


def same_value_chain(inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
