"""A real small or read-only file system for fault tests: a tmpfs mounted by the test (root only).

Disk full and read-only are properties of a file system, so the tests use one: deterministic (tmpfs
counts whole pages per file) and unmounted afterwards. Without root, tests that need it are skipped
with the reason; the errno translation itself is also tested without root (/dev/full, a real OSError).
"""

import contextlib
import os
import subprocess
from pathlib import Path

import pytest


def _mount_works() -> str:
    """'' when this process can mount a tmpfs, else why not."""
    if os.geteuid() != 0:
        return "needs root to mount a small tmpfs (run the fault suite as root, e.g. in a container)"
    probe = Path("/tmp") / f".podium-mount-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "podium-probe", str(probe)],
                              capture_output=True, text=True)
        if done.returncode:
            return f"mount -t tmpfs failed here: {done.stderr.strip()}"
        subprocess.run(["umount", str(probe)], check=True)
        return ""
    finally:
        probe.rmdir()


MOUNT_PROBLEM = _mount_works()
needs_mount = pytest.mark.skipif(bool(MOUNT_PROBLEM), reason=MOUNT_PROBLEM or "ok")


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "1m"):
    """Mount a tmpfs of `size` (mount's syntax: 512k, 4m) at folder for the block."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "podium-fault", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def remount(folder: Path, options: str) -> None:
    """e.g. remount(folder, 'ro') or remount(folder, 'rw,size=32m')."""
    subprocess.run(["mount", "-o", f"remount,{options}", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Write a filler file until the disk is full; delete it to free the space again."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as handle:
        for block in (65536, 4096, 512, 1):
            try:
                while True:
                    handle.write(b"\0" * block)
            except OSError:
                pass
    return filler


def leftovers(folder: Path) -> list[str]:
    """Temp and staging files anywhere under folder: what a failed write must not leave."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.endswith((".tmp", ".partial")) or ".tmp." in p.name)
