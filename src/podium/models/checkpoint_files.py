"""Whether a saved Keras file (a .keras zip, an HDF5 weights file) is whole, and the one error that names a
damaged one. Below the backbone registry and the classifier, which both load such files.

A file is judged by its first bytes, not its name: Keras writes HDF5 (.h5, .hdf5, .weights.h5) or a zip
(.keras), and a file renamed from one to the other, or cut short, must be told apart from a file of another
kind altogether (a CSV, a PyTorch checkpoint) given by mistake."""

from __future__ import annotations

import zipfile
from pathlib import Path

from podium.errors import PodiumError
from podium.io import format_size

HDF5 = "hdf5"
ZIP = "zip"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # at offset 0 in every file h5py/Keras writes (no user block)
ZIP_SIGNATURE = b"PK\x03\x04"


def _head(path: Path, count: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(count)
    except OSError:
        return b""


def file_format(path: Path) -> str:
    """HDF5, ZIP, or "" for anything else (an empty file included): read from the first bytes."""
    head = _head(path, len(HDF5_SIGNATURE))
    if head.startswith(HDF5_SIGNATURE):
        return HDF5
    if head.startswith(ZIP_SIGNATURE):
        return ZIP
    return ""


def first_bytes(path: Path, count: int = 16) -> str:
    """The file's first bytes, for a message about a file that is not what its name says."""
    try:
        with open(path, "rb") as handle:
            return repr(handle.read(count))
    except OSError as exc:
        return f"unreadable ({exc})"


def checkpoint_damage(path: Path) -> str:
    """Why a Keras file cannot be read, '' when it looks whole: a save cut short by a full disk or a kill
    leaves a truncated zip (which Keras reports as "File not found") or a truncated HDF5 file. Judged by
    content; a file with a Keras name that is neither HDF5 nor a zip is damaged too (an empty one, say)."""
    path = Path(path)
    kind = file_format(path)
    if kind == HDF5:
        import h5py

        try:
            with h5py.File(path, "r") as handle:
                handle.visit(lambda name: None)  # walks every group: a truncated file fails here
        except (OSError, RuntimeError, ValueError) as exc:
            return f"a truncated or damaged HDF5 file ({exc})"
        return ""
    if kind == ZIP:
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()  # reads every member: checks each CRC
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            return f"a truncated or damaged .keras zip ({exc})"
        return f"member {bad} is corrupt" if bad else ""
    if not path.name.endswith((".h5", ".hdf5", ".keras")):
        return ""
    size = path.stat().st_size if path.is_file() else 0
    if size == 0:
        return "the file is empty (0 bytes): a copy or a save cut short"
    head = _head(path, len(HDF5_SIGNATURE))
    if size < len(HDF5_SIGNATURE) and any(sig.startswith(head) for sig in (HDF5_SIGNATURE, ZIP_SIGNATURE)):
        return f"cut short after {size} bytes, inside the signature Keras' files begin with"
    return f"neither HDF5 nor a zip, the two formats Keras writes: it begins with {first_bytes(path)}"


def damaged_checkpoint(path: Path, problem: str, fix: str = "") -> PodiumError:
    """One wording for every damaged Keras file (best.keras, a training backup, a weights file): which, how
    big, the fix (default: retrain the fold it belongs to)."""
    path = Path(path)
    size = format_size(path.stat().st_size) if path.is_file() else "missing"
    return PodiumError(f"The checkpoint {path} is damaged ({size} on disk): {problem}.",
                       expected="a complete file saved by Keras", received=f"{path} ({size})",
                       fix=fix or f"retrain that fold: delete {path.parent} and run `make train` again (other "
                                  f"folds are kept), or retrain everything with `make train FORCE=1`")
