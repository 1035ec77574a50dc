"""One run folder, one writer: an exclusive, non-blocking lock on `<run_dir>/.podium.lock`.

Two `make train` of one config once shared a folder: one finished with another's history, the other died
in HDF5. The lock is an `fcntl.flock` on an open file, so the kernel drops it when the holder dies
(kill -9 included): a lock is never stale, and nothing ever has to delete it. The holder writes its
pid, host, start time and command into the file, so the second process can say who holds the run.
Re-entrant within one process (make train holds the run; each fold takes it again). `exclusive_lock` is
the same flock for any one-writer resource (kaggle/submit.py: one writer per submission), not re-entrant.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

from podium.errors import PodiumError

LOCK_NAME = ".podium.lock"
_held: dict[Path, tuple[int, int]] = {}  # resolved lock path -> (unused, depth), this process's own


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike, action: str = "train") -> Iterator[Path]:
    """Hold the run folder's lock for the block (creating the folder), or raise PodiumError naming the holder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = (run_dir / LOCK_NAME).resolve()
    if path in _held:
        fd, depth = _held[path]
        _held[path] = (fd, depth + 1)
        try:
            yield path
        finally:
            fd, depth = _held[path]
            _held[path] = (fd, depth - 1)
        return
    fix = ("wait for that process to end (or stop it); a run of another config (e.g. another `name`) gets its "
           "own folder")
    with exclusive_lock(path, subject=f"Run folder {run_dir}", action=action,
                        received=f"a second `{action}` of the same run",
                        expected="one process writing a run folder at a time", fix=fix):
        _held[path] = (-1, 1)
        try:
            yield path
        finally:
            _held.pop(path, None)


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, *, subject: str, action: str, fix: str, received: str = "",
                   expected: str = "") -> Iterator[Path]:
    """Hold an exclusive, non-blocking flock on `path` (its folder created) for the block, or raise a
    PodiumError saying "<subject> is in use by another podium process (<holder>)". Not re-entrant: a second
    holder in the same process is refused too (threads included), since each open() is its own lock."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe(os.read(fd, 4096))
        os.close(fd)
        raise PodiumError(f"{subject} is in use by another podium process ({holder}).",
                          expected=expected or f"one `{action}` at a time",
                          received=received or f"a second `{action}` at the same time", fix=fix) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "action": action,
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                                 "command": " ".join(sys.argv)[:300]}).encode())
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # while still held: the next holder never reads a finished process's details
        os.close(fd)  # releases the flock


def _describe(raw: bytes) -> str:
    try:
        info = json.loads(raw.decode())
    except ValueError:
        return "details not written yet"
    return (f"pid {info.get('pid')} on {info.get('host')}, `{info.get('action')}` since {info.get('started')}: "
            f"{info.get('command', '')}")
