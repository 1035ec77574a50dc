"""One run folder, one writer: an exclusive, non-blocking lock on `<run_dir>/.podium.lock`.

Two `make train` of one config once shared a folder: one finished with another's history, the other died
in HDF5. The lock is an `fcntl.flock` on an open file, so the kernel drops it when the holder dies
(kill -9 included): a lock is never stale, and nothing ever has to delete it. The holder writes its
pid, host, start time and command into the file, so the second process can say who holds the run.
Re-entrant within one process (make train holds the run; each fold takes it again).
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
_held: dict[Path, tuple[int, int]] = {}  # resolved lock path -> (fd, depth), this process's own


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
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe(os.read(fd, 4096))
        os.close(fd)
        raise PodiumError(f"Run folder {run_dir} is in use by another podium process ({holder}).",
                          expected="one process writing a run folder at a time",
                          received=f"a second `{action}` of the same run", fix="wait for that process to end "
                          "(or stop it); a run of another config (e.g. another `name`) gets its own folder") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "action": action,
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                                 "command": " ".join(sys.argv)[:300]}).encode())
        _held[path] = (fd, 1)
        yield path
    finally:
        _held.pop(path, None)
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
