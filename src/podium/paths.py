"""Where podium may write and what it may delete: the one place every stage asks.

- `check_name`: a name that becomes a path (a config's `name`, a blend's or a search's name, a competition
  or kernel slug, a run id given on the command line) is one plain folder name, checked where it is read,
  so no later stage writes outside its folder or hides a run from the report.
- `check_folder`: a folder setting (runs_dir, submissions_dir, data_dir, the report's folder) that is a file
  is named as such, before anything is written into or under it.
- `mark_made` / `remove_made`: podium deletes only folders it made. Every folder it makes to own (staging
  folders, the report folder, a run's backup) holds a marker file; `remove_made` checks it before any rmtree
  and refuses otherwise, so `--out runs` or a folder holding the user's files is never emptied.
- `remove_stale`: a staging folder left by a killed writer (its marker names a process that is gone) is
  removed by the next writer, never one a live process is filling.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Callable

from podium.errors import PodiumError
from podium.io import make_dirs, pid_alive, write_text

MARKER = ".podium-made"  # a folder holding this file was made by podium, which may delete it
NAME_MAX = 200  # bytes: file systems allow 255, and podium adds suffixes (-<hash>, .building-<pid>)
_HOST = socket.gethostname().replace("-", "_") or "host"


# --------------------------------------------------------------------------------------------- names
def name_problem(value: object) -> str:
    """Why `value` cannot be one folder name, or "" when it can."""
    if not isinstance(value, str):
        return f"a {type(value).__name__}, not text"
    if not value.strip():
        return "it is empty"
    if value != value.strip():
        return "it starts or ends with a space"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "it holds a control character"
    if "/" in value or "\\" in value:
        return "it holds a path separator ('/' or '\\')"
    if ".." in value:
        return "it holds '..'"
    if value.startswith("."):
        return "it starts with '.' (a hidden folder, which podium skips)"
    if len(value) >= 2 and value[1] == ":" and value[0].isalpha():
        return "it starts with a drive letter"
    if len(value.encode("utf-8")) > NAME_MAX:
        return f"it is longer than {NAME_MAX} bytes"
    return ""


def check_name(value: object, key: str, example: str = "baseline") -> str:
    """`value` as one folder name, or a PodiumError naming `key`."""
    problem = name_problem(value)
    if problem:
        raise PodiumError(f"'{key}' becomes a folder name, and {problem}.",
                          expected="one folder name: letters, digits, '-', '_' or '.', no '/', '\\' or '..', "
                                   "not empty, no control characters",
                          received=f"{key}={value!r}", fix=f"e.g. {key}={example}")
    return value


# ------------------------------------------------------------------------------------------- folders
def check_folder(path: str | os.PathLike, key: str) -> Path:
    """`path` as a folder podium may create or write into: neither it nor any folder above it is a file."""
    path = Path(path)
    for part in (path, *path.parents):
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                where = "is a file" if part == path else f"lies under {part}, which is a file"
                raise PodiumError(f"'{key}' must be a folder, but {path} {where}.",
                                  expected=f"{key} naming a folder (made if missing)",
                                  received=f"{key}={path}", fix=f"move {part} aside, or set {key} to another folder")
            break
    return path


# ---------------------------------------------------------------------------------- what podium made
def mark_made(folder: str | os.PathLike, what: str, adopt: bool = False) -> Path:
    """Create `folder` (and its parents) and mark it as podium's own; it must not exist unmarked, unless
    `adopt` (a folder inside one podium owns, e.g. a run's training backup)."""
    folder = Path(folder)
    if is_made(folder):
        return folder
    if folder.exists() and not adopt and any(folder.iterdir()):
        raise PodiumError(f"podium will not take over {folder}: it exists and podium did not make it.",
                          expected=f"a new folder for {what}", received=f"{folder} (not made by podium)",
                          fix=f"move {folder} aside, or choose another folder")
    make_dirs(folder)
    write_text(folder / MARKER, json.dumps({"what": what, "host": _HOST, "pid": os.getpid()}) + "\n")
    return folder


def is_made(folder: str | os.PathLike) -> bool:
    folder = Path(folder)
    return folder.is_dir() and not folder.is_symlink() and (folder / MARKER).is_file()


def remove_made(folder: str | os.PathLike, what: str, legacy: Callable[[Path], bool] | None = None) -> bool:
    """Delete `folder` only if podium made it (its marker, or `legacy`: how a folder made before markers
    looks); a folder that is not podium's is refused with a PodiumError. False when there was nothing."""
    folder = Path(folder)
    if folder.is_symlink() or folder.is_file():
        raise PodiumError(f"podium will not delete {folder}: it is a {'link' if folder.is_symlink() else 'file'}, "
                          f"not the folder podium made for {what}.",
                          expected=f"a folder podium made ({MARKER} inside)", received=str(folder),
                          fix=f"move {folder} aside, or choose another path")
    if not folder.exists():
        return False
    if not any(folder.iterdir()):  # an empty folder holds nothing to lose
        folder.rmdir()
        return True
    if not (is_made(folder) or (legacy is not None and legacy(folder))):
        shown = sorted(p.name for p in folder.iterdir())[:5]
        raise PodiumError(f"podium will not delete {folder}: podium did not make it ({what}).",
                          expected=f"a folder podium made ({MARKER} inside), or no folder",
                          received=f"{folder} holding {', '.join(shown) or 'nothing'}",
                          fix=f"choose another folder, or move {folder} aside if it is yours")
    shutil.rmtree(folder)
    return True


def any_folder(folder: Path) -> bool:
    """`legacy` for a staging folder whose reserved name (`.<name>.partial`, ...) is all an older podium left."""
    return folder.is_dir()


def made_pid(folder: str | os.PathLike) -> tuple[str, int] | None:
    """(host, pid) of the process that marked `folder`, or None."""
    try:
        record = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
        return str(record["host"]), int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_stale(parent: str | os.PathLike, prefix: str) -> list[Path]:
    """Delete `parent`'s folders named `prefix`* that podium made in a process of this machine that is gone
    (a killed writer's staging folder); live writers' folders are left alone, and so are unmarked ones,
    except `<prefix><pid>` exactly, the name an older podium gave its staging folder, once that pid is gone."""
    removed = []
    try:
        entries = [p for p in Path(parent).iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for entry in entries:
        owner = made_pid(entry) if is_made(entry) else None
        legacy = entry.name[len(prefix):]
        if owner is None and legacy.isdigit() and entry.is_dir() and not entry.is_symlink():
            owner = (_HOST, int(legacy))
        if owner is None:
            continue
        host, pid = owner
        if host == _HOST and not pid_alive(pid):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
