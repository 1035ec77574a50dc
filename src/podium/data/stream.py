"""Rows made on demand: a read-only array-like that decodes only the rows a batch asks for (`cache: none`).

A StreamedRows stands where the uint8 cache's memmap stands (podium.data.cache): it has its shape and dtype
and answers `rows[positions]` (an int, a slice, a list or an array of ints, in any order) with the same bytes,
because it calls the very function that fills the cache, row by row, in a thread pool. Augmentation, TTA and
the loader's order guarantees therefore hold as they do on the cache, and memory stays one batch whatever N
is. Threads, not tf.data: PIL's decode and resize release the GIL, the pixels stay byte-identical to the
cache's (tf.image's JPEG decode and resize are other pixels), and the same path serves the JAX backend.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from podium.errors import PodiumError

RowMaker = Callable[[int], np.ndarray]


class StreamedRows:
    """(N, *row_shape) uint8 rows, each made by `item(position)` when read; nothing is kept between reads.

    `positions` maps this array's rows to item's positions (a subset: `take`), `workers` threads decode a read.
    """

    def __init__(self, shape: tuple[int, ...], item: RowMaker, workers: int | None = None,
                 positions: np.ndarray | None = None, dtype=np.uint8):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.item = item
        self.workers = max(1, int(workers or os.cpu_count() or 1))
        self.positions = np.arange(self.shape[0]) if positions is None else np.asarray(positions, dtype=np.int64)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __getitem__(self, key):
        rows, single = self._rows(key)
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)

        def fill(k: int) -> None:
            out[k] = self.item(int(self.positions[rows[k]]))

        if len(rows) <= 1 or self.workers == 1:
            for k in range(len(rows)):
                fill(k)
        else:
            list(self._executor().map(fill, range(len(rows))))  # list(): the first error raises here
        return out[0] if single else out

    def __array__(self, dtype=None, copy=None):
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def take(self, positions) -> "StreamedRows":
        """The rows at `positions` as another StreamedRows (nothing decoded)."""
        rows, _ = self._rows(np.asarray(positions, dtype=np.int64))
        return StreamedRows((len(rows), *self.shape[1:]), self.item, self.workers, self.positions[rows], self.dtype)

    def _rows(self, key) -> tuple[np.ndarray, bool]:
        """(row numbers, whether one row was asked for) of an int, slice, list or int array key."""
        if isinstance(key, tuple):
            raise PodiumError("A streamed image array is indexed by rows only.", expected="rows[positions]",
                              received=f"an index of {len(key)} axes", fix="index the rows, then the decoded array")
        n = self.shape[0]
        if isinstance(key, slice):
            return np.arange(n)[key], False
        if isinstance(key, (int, np.integer)):
            return self._checked(np.array([int(key)]), n), True
        rows = np.asarray(key)
        if rows.dtype == bool:
            if rows.shape != (n,):
                raise IndexError(f"boolean index of shape {rows.shape} for {n} rows")
            return np.flatnonzero(rows), False
        if rows.size and not np.issubdtype(rows.dtype, np.integer):
            raise IndexError(f"rows must be integers, got {rows.dtype}")
        return self._checked(rows.astype(np.int64).reshape(-1), n), False

    @staticmethod
    def _checked(rows: np.ndarray, n: int) -> np.ndarray:
        if rows.size and (rows.min() < -n or rows.max() >= n):
            raise IndexError(f"row {int(rows.max() if rows.max() >= n else rows.min())} is out of range for {n} rows")
        return np.where(rows < 0, rows + n, rows)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="podium-stream")
            return self._pool

    def __getstate__(self) -> dict:  # a copy (a subprocess, deepcopy) starts its own pool
        state = dict(self.__dict__)
        state["_pool"], state["_lock"] = None, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def take(images, positions) -> "StreamedRows | np.ndarray":
    """Rows `positions` of an image array: still streamed when `images` is, else read into memory (a subset of
    a cache: the pseudo-labelled test images)."""
    if isinstance(images, StreamedRows):
        return images.take(positions)
    return np.asarray(images[np.asarray(positions, dtype=np.int64)])
