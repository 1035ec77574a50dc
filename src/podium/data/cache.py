"""Decoded, resized uint8 pixels on disk, built once and memory-mapped by every later epoch and run; or,
when they do not fit the disk (config key `cache`), held in RAM or decoded batch by batch (podium.data.stream).

Decoding JPEGs every epoch makes a CPU-only machine decode-bound; a flat uint8 file is read at disk
speed and shared by the OS page cache across processes. The file name carries a fingerprint of the
rows (ids, file hashes, size, CACHE_VERSION), so a changed dataset or decoder never reuses a stale cache.
Every mode reads its pixels through image_reader, so the bytes do not depend on the mode (choose_cache says
which one a run gets, and why).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from podium.data.images import ImageDecodeError, check_image_size, load_resized, read_image_bytes
from podium.data.source_files import require_files
from podium.data.stream import StreamedRows
from podium.errors import PodiumError
from podium.io import atomic_path, check_free_space, format_size, free_space, preallocate, write_json
from podium.progress import progress as progress_bar

CACHE_VERSION = 1  # bump when decoding or resizing changes the pixels
_REQUIRED = ("id", "split", "path", "hash", "ok")
_SHOW = 5
MODES = ("disk", "memory", "none")  # what `cache: auto` resolves to
DISK_MARGIN = 1.05  # a cache is written only with 5% more free than it takes (as before `cache` existed)
MEMORY_SHARE = 0.5  # auto holds pixels in RAM only when they take at most half of what is available
_MODE_WORDS = {"disk": "disk (memmap cache)", "memory": "memory (decoded into RAM)", "none": "none (streaming)"}


@dataclass(frozen=True)
class CacheChoice:
    """How a set of pixels is held, and why: what `make train` / `make predict` say about `cache`."""

    mode: str  # disk | memory | none
    reason: str  # "none (streaming): the 26.00 GiB cache would not fit the 18.00 GiB free in data/x/cache, ..."
    needed: int  # bytes of the decoded pixels


def choose_cache(requested: str, needed: int, where: Path, free_disk: int, available_ram: int,
                 built: bool = False) -> CacheChoice:
    """The one decision of how pixels are held (train, predict and pseudo-labels all ask here).

    auto: disk when the cache is built already or fits the free space with DISK_MARGIN (what every run did
    before the key existed), else memory when it takes at most MEMORY_SHARE of the available RAM, else
    streaming. An explicit `memory` that does not fit the available RAM is refused here, before any decode.
    """
    size, free, ram = format_size(needed), format_size(free_disk), format_size(available_ram)
    if requested not in ("auto", *MODES):
        raise PodiumError(f"Unknown cache mode {requested!r}.", expected="auto | disk | memory | none",
                          received=repr(requested), fix="set cache: auto, disk, memory or none")
    if requested == "memory" and needed * DISK_MARGIN > available_ram:
        raise PodiumError(f"The {size} of decoded pixels would not fit in memory (cache: memory).",
                          expected=f"at least {format_size(needed * DISK_MARGIN)} of available RAM",
                          received=f"{ram} available", fix="set cache: none (streaming) or cache: auto, or lower "
                                                           "image_size")
    if requested != "auto":
        return CacheChoice(requested, f"{_MODE_WORDS[requested]}: set by the config (cache: {requested}); "
                                      f"the pixels take {size}", needed)
    if built:
        return CacheChoice("disk", f"{_MODE_WORDS['disk']}: the {size} cache in {where} is built already", needed)
    if needed * DISK_MARGIN <= free_disk:
        return CacheChoice("disk", f"{_MODE_WORDS['disk']}: the {size} cache fits the {free} free in {where}", needed)
    missing = f"the {size} cache would not fit the {free} free in {where}"
    if needed <= available_ram * MEMORY_SHARE:
        return CacheChoice("memory", f"{_MODE_WORDS['memory']}: {missing}; it fits in half the {ram} of "
                                     "available RAM", needed)
    return CacheChoice("none", f"{_MODE_WORDS['none']}: {missing}, nor in half the {ram} of available RAM; "
                               "each batch's images are decoded when read", needed)


def available_memory() -> int:
    """Bytes of RAM the kernel could give without swapping (MemAvailable; free pages where /proc is absent)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def load_cached(rows: pd.DataFrame, data_root: Path, size: int, cache_dir: Path,
                progress: bool = True) -> np.ndarray:
    """Read-only (len(rows), size, size, 3) uint8 memmap of `rows`' images in the order given.

    The first call decodes and writes the cache; later calls with the same rows only open it.
    No rows gives an empty read-only array (a memmap cannot be empty).
    """
    return load_images(rows, data_root, size, cache_dir, "disk", progress)[0]


def load_images(rows: pd.DataFrame, data_root: Path, size: int, cache_dir: Path, cache: str = "auto",
                progress: bool = True, free_disk: int | None = None, available_ram: int | None = None
                ) -> tuple[np.ndarray | StreamedRows, CacheChoice]:
    """(the (len(rows), size, size, 3) uint8 pixels of `rows` in their order, how they are held and why).

    `cache` is the config's key: disk (the memmap above), memory (decoded into RAM, nothing written), none
    (a StreamedRows decoding each batch's rows) or auto (choose_cache). The bytes are the same in every mode.
    `free_disk` / `available_ram` replace the measured figures (tests pass numbers in).
    """
    check_image_size(size)
    _check_rows(rows)
    shape = (len(rows), size, size, 3)
    if not len(rows):
        empty = np.empty(shape, dtype=np.uint8)
        empty.flags.writeable = False
        return empty, CacheChoice("memory", "no rows: nothing to cache", 0)
    fingerprint = cache_fingerprint(rows, size)
    data_path = Path(cache_dir) / f"{_split_name(rows)}-{size}-{fingerprint}.u8"
    meta = _full_meta(shape, {"fingerprint": fingerprint, "size": size, "cache_version": CACHE_VERSION})
    choice = choose_cache(cache, int(np.prod(shape)), Path(cache_dir),
                          free_space(cache_dir) if free_disk is None else free_disk,
                          available_memory() if available_ram is None else available_ram,
                          built=_is_complete(data_path, data_path.with_suffix(".json"), meta))

    def check_files() -> None:
        require_files(rows, data_root)

    images = cached_uint8(data_path, shape, meta, image_reader(rows, data_root, size), progress,
                          f"{'cache' if choice.mode == 'disk' else choice.mode} {size}px", before_build=check_files,
                          mode=choice.mode)
    return images, choice


def image_reader(rows: pd.DataFrame, data_root: Path, size: int) -> Callable[[int], np.ndarray]:
    """position -> the (size, size, 3) uint8 pixels of rows' image there: the one decoder of every cache mode,
    refusing a file whose bytes changed since the index was built."""
    paths = [Path(data_root) / p for p in rows["path"].astype(str)]
    hashes = rows["hash"].astype(str).tolist()

    def pixels(position: int) -> np.ndarray:
        return load_resized(_read_verified(paths[position], hashes[position]), size, name=str(paths[position]))

    return pixels


def cached_uint8(data_path: Path, shape: tuple[int, ...], meta: dict, item: Callable[[int], np.ndarray],
                 progress: bool = True, description: str = "cache",
                 before_build: Callable[[], None] | None = None, mode: str = "disk") -> np.ndarray | StreamedRows:
    """Read-only uint8 memmap at data_path, filled once with item(position) per row (in threads).

    `meta` must name everything that decides the bytes (a fingerprint); a file whose sidecar differs is
    rebuilt. `before_build` checks the inputs first (all of them at once, not the first bad one mid-way).
    `mode` memory fills an array in RAM instead, none returns a StreamedRows of `item` (nothing written either
    way). Used for images here and for segmentation masks (podium.data.targets, podium.data.class_masks).
    """
    if mode not in MODES:
        raise PodiumError("Pixels are held by a resolved cache mode.", expected=" | ".join(MODES),
                          received=repr(mode), fix="pass choose_cache(...).mode")
    if mode != "disk":
        if before_build is not None:
            before_build()
        if mode == "none":
            return StreamedRows(shape, item)
        pixels = np.empty(shape, dtype=np.uint8)
        _fill(pixels, item, progress, description)
        pixels.flags.writeable = False
        return pixels
    meta = _full_meta(shape, meta)
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


def _full_meta(shape: tuple[int, ...], meta: dict) -> dict:
    return {"shape": list(shape), "ids": shape[0], **meta}


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
    check_free_space(data_path.parent, needed * DISK_MARGIN, "the image cache",
                     "free some space, set data_dir on a larger disk, lower image_size, or set cache: none "
                     "(streaming) or cache: memory in the config")
    with atomic_path(data_path) as tmp:
        preallocate(tmp, needed, data_path)  # a full disk is an error here, not a SIGBUS mid-write
        pixels = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=shape)
        _fill(pixels, item, progress, description)
        pixels.flush()
        del pixels


def _fill(pixels: np.ndarray, item: Callable[[int], np.ndarray], progress: bool, description: str) -> None:
    """pixels[position] = item(position) for every row, in threads (each writes its own row: no lock)."""

    def fill(position: int) -> None:
        pixels[position] = item(position)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = [pool.submit(fill, position) for position in range(len(pixels))]
        try:
            for future in progress_bar(as_completed(futures), total=len(futures), desc=description,
                                       unit="img", enabled=progress):
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


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
