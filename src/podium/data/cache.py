"""Decoded, resized uint8 pixels on disk, built once and memory-mapped by every later epoch and run.

Decoding JPEGs every epoch makes a CPU-only machine decode-bound; a flat uint8 file is read at disk
speed and shared by the OS page cache across processes. The file name carries a fingerprint of the
rows (ids, file hashes, size, CACHE_VERSION), so a changed dataset or decoder never reuses a stale cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from podium.data.images import ImageDecodeError, check_image_size, load_resized, read_image_bytes
from podium.data.source_files import require_files
from podium.errors import PodiumError
from podium.io import atomic_path, check_free_space, preallocate, write_json
from podium.progress import progress as progress_bar

CACHE_VERSION = 1  # bump when decoding or resizing changes the pixels
_REQUIRED = ("id", "split", "path", "hash", "ok")
_SHOW = 5


def load_cached(rows: pd.DataFrame, data_root: Path, size: int, cache_dir: Path,
                progress: bool = True) -> np.ndarray:
    """Read-only (len(rows), size, size, 3) uint8 memmap of `rows`' images in the order given.

    The first call decodes and writes the cache; later calls with the same rows only open it.
    No rows gives an empty read-only array (a memmap cannot be empty).
    """
    check_image_size(size)
    _check_rows(rows)
    shape = (len(rows), size, size, 3)
    if not len(rows):
        empty = np.empty(shape, dtype=np.uint8)
        empty.flags.writeable = False
        return empty
    fingerprint = cache_fingerprint(rows, size)
    data_path = Path(cache_dir) / f"{_split_name(rows)}-{size}-{fingerprint}.u8"
    paths = [Path(data_root) / p for p in rows["path"].astype(str)]
    hashes = rows["hash"].astype(str).tolist()

    def pixels(position: int) -> np.ndarray:
        return load_resized(_read_verified(paths[position], hashes[position]), size, name=str(paths[position]))

    def check_files() -> None:
        require_files(rows, data_root)

    return cached_uint8(data_path, shape, {"fingerprint": fingerprint, "size": size,
                                           "cache_version": CACHE_VERSION}, pixels, progress, f"cache {size}px",
                        before_build=check_files)


def cached_uint8(data_path: Path, shape: tuple[int, ...], meta: dict, item: Callable[[int], np.ndarray],
                 progress: bool = True, description: str = "cache",
                 before_build: Callable[[], None] | None = None) -> np.ndarray:
    """Read-only uint8 memmap at data_path, filled once with item(position) per row (in threads).

    `meta` must name everything that decides the bytes (a fingerprint); a file whose sidecar differs is
    rebuilt. `before_build` checks the inputs first (all of them at once, not the first bad one mid-way).
    Used for images here and for segmentation masks (podium.data.targets).
    """
    meta = {"shape": list(shape), "ids": shape[0], **meta}
    sidecar = data_path.with_suffix(".json")
    if not _is_complete(data_path, sidecar, meta):
        if before_build is not None:
            before_build()
        _build(shape, data_path, item, progress, description)
        write_json(sidecar, meta)
    return np.memmap(data_path, dtype=np.uint8, mode="r", shape=shape)


def cache_fingerprint(rows: pd.DataFrame, size: int) -> str:
    """Short sha1 of what determines the pixels and their order: ids, file hashes, size, decoder version."""
    payload = json.dumps([CACHE_VERSION, int(size), rows["split"].astype(str).tolist(),
                          rows["id"].astype(str).tolist(), rows["hash"].astype(str).tolist()])
    return hashlib.sha1(payload.encode()).hexdigest()[:12]


# ---- checks ---------------------------------------------------------------------------------------
def _check_rows(rows: pd.DataFrame) -> None:
    missing = [column for column in _REQUIRED if column not in rows.columns]
    if missing:
        raise PodiumError("The rows to cache are not index rows.", expected=f"columns {list(_REQUIRED)}",
                          received=f"columns {list(rows.columns)}", fix="pass rows of load_index(...)")
    unreadable = rows.loc[~rows["ok"].astype(bool), "id"].astype(str).tolist()
    if unreadable:
        shown = ", ".join(repr(i) for i in unreadable[:_SHOW])
        raise PodiumError(f"{len(unreadable)} rows to cache are images that could not be decoded (ok=False).",
                          expected="only rows with ok=True", received=f"ok=False ids {shown}",
                          fix="filter them out first, e.g. rows[rows['ok']]; their reasons are in the "
                              "index's error column")


def _split_name(rows: pd.DataFrame) -> str:
    splits = rows["split"].astype(str).unique()
    return str(splits[0]) if len(splits) == 1 else "mixed"


def _is_complete(data_path: Path, sidecar: Path, meta: dict) -> bool:
    """A cache counts only with a matching sidecar (written last) and the exact byte size."""
    if not (data_path.is_file() and sidecar.is_file()):
        return False
    try:
        written = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return written == meta and data_path.stat().st_size == int(np.prod(meta["shape"]))


# ---- building -------------------------------------------------------------------------------------
def _build(shape: tuple[int, ...], data_path: Path, item: Callable[[int], np.ndarray], progress: bool,
           description: str) -> None:
    """Fill a temp file and rename it into place: a killed build leaves no cache that a later call trusts."""
    needed = int(np.prod(shape))
    check_free_space(data_path.parent, needed * 1.05, "the image cache",
                     "free some space, lower image_size, or set data_dir on a larger disk")
    with atomic_path(data_path) as tmp:
        preallocate(tmp, needed, data_path)  # a full disk is an error here, not a SIGBUS mid-write
        pixels = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=shape)

        def fill(position: int) -> None:  # each thread writes its own slice; no lock needed
            pixels[position] = item(position)

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            futures = [pool.submit(fill, position) for position in range(shape[0])]
            try:
                for future in progress_bar(as_completed(futures), total=len(futures), desc=description,
                                           unit="img", enabled=progress):
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        pixels.flush()
        del pixels


def _read_verified(path: Path, expected_hash: str) -> bytes:
    """The file's bytes (a pixel array's row: its PGM/PPM bytes), refused if they changed since indexing
    (the fingerprint would lie about them)."""
    try:
        data = read_image_bytes(path)
    except ImageDecodeError as exc:
        raise PodiumError(f"Cannot read {path} to cache it.", expected="the file the index lists",
                          received=exc.reason,
                          fix="restore it, or rebuild from the archives with `make data FORCE=1`") from exc
    if hashlib.sha1(data).hexdigest() != expected_hash:
        raise PodiumError(f"{path} changed since the index was built.", expected=f"sha1 {expected_hash}",
                          received=f"sha1 {hashlib.sha1(data).hexdigest()}",
                          fix="rebuild the index: `make data FORCE=1`")
    return data
