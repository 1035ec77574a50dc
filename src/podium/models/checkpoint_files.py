"""Whether a saved Keras file (a .keras zip, an HDF5 weights file) is whole, and the one error that names a
damaged one. Below the backbone registry and the classifier, which both load such files."""

from __future__ import annotations

import zipfile
from pathlib import Path

from podium.errors import PodiumError
from podium.io import format_size


def checkpoint_damage(path: Path) -> str:
    """Why a .keras checkpoint (a zip) cannot be read, '' when it looks whole: a save cut short by a full
    disk or a kill leaves a truncated zip, which Keras reports as "File not found"."""
    if path.suffix == ".h5":
        import h5py

        try:
            with h5py.File(path, "r") as handle:
                handle.visit(lambda name: None)  # walks every group: a truncated file fails here
        except (OSError, RuntimeError, ValueError) as exc:
            return f"not a complete HDF5 file ({exc})"
        return ""
    if path.suffix != ".keras":
        return ""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every member: checks each CRC
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        return f"not a complete .keras zip ({exc})"
    return f"member {bad} is corrupt" if bad else ""


def damaged_checkpoint(path: Path, problem: str, fix: str = "") -> PodiumError:
    """One wording for every damaged Keras file (best.keras, a training backup, a weights file): which, how
    big, the fix (default: retrain the fold it belongs to)."""
    path = Path(path)
    size = format_size(path.stat().st_size) if path.is_file() else "missing"
    return PodiumError(f"The checkpoint {path} is damaged ({size} on disk): {problem}.",
                       expected="a complete file saved by Keras", received=f"{path} ({size})",
                       fix=fix or f"retrain that fold: delete {path.parent} and run `make train` again (other "
                                  f"folds are kept), or retrain everything with `make train FORCE=1`")
