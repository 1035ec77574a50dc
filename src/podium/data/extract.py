"""Bring a competition's files into data/: the archives kept as received, their contents unpacked safely.

Unpacking goes into a temporary sibling folder that is renamed into place at the end, so a failed or
killed extraction never leaves a half-filled data/<slug>/ that later stages would trust. Member names
written on Windows (`train\\bird\\1.jpg`) are split at the backslash like any path, under the same
safety checks; a zip inside the archive (Kaggle's whole-competition download holds train.zip, test.zip)
is unpacked one level. Write faults (disk full, read-only folder) end as PodiumError via podium.io.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Mapping

from podium.data.competitions import CompetitionSpec
from podium.data.sources import LOCAL, Source, file_identity, pick_source, unpacked
from podium.errors import PodiumError
from podium.paths import MARKER as MADE, check_folder, is_made, mark_made, remove_made
from podium.io import check_free_space, guarded_write, make_dirs

MARKER = ".podium-extracted.json"
_SHOW = 12  # entries listed when a folder the spec names is not in the archive


def fetch(spec: CompetitionSpec, raw_dir: Path, source_dir: Path | None = None, force: bool = False,
          sources: Mapping[str, Source] = LOCAL) -> list[Path]:
    """Bring the competition's files into raw_dir (untouched from then on) from the source podium.data.sources
    picks: source_dir, else the spec's `source:` among `sources` (the entry point hands down the ones data/
    cannot make: Kaggle's download, the generated shapes); return what is there."""
    make_dirs(raw_dir)
    pick_source(spec, raw_dir, source_dir, force, sources).fetch(spec, raw_dir, force)
    missing = [name for name in spec.archives if not (raw_dir / name).is_file() and not unpacked(raw_dir, name)]
    if missing:
        raise PodiumError(f"Competition '{spec.slug}' is missing files in {raw_dir}.",
                          expected=", ".join(spec.archives), received=", ".join(p.name for p in sorted(raw_dir.iterdir())) or "nothing",
                          fix="check the spec's 'archives' or the folder given with SRC=")
    return sorted(p for p in raw_dir.iterdir() if p.is_file() and not p.name.startswith("."))


def extract(spec: CompetitionSpec, raw_dir: Path, data_root: Path, force: bool = False) -> bool:
    """Unpack raw_dir into data_root; return False when it is already unpacked from the same files.

    A linked folder (an already-unpacked source, see podium.data.sources.FolderSource) is linked again, not copied."""
    sources = [p for p in sorted(raw_dir.iterdir()) if not p.name.startswith(".")]
    fingerprint = {p.name: file_identity(p) for p in sources if p.is_file()}
    fingerprint.update({f"{p.name}/": str(p.resolve()) for p in sources if p.is_symlink() and p.is_dir()})
    marker = data_root / MARKER
    if not force and marker.is_file() and _read_marker(marker) == fingerprint:
        return False
    check_folder(data_root.parent, "data_dir")
    needed = _unpacked_size(raw_dir)
    check_free_space(data_root.parent, needed * 1.1, "unpacking the competition",
                     "free some space, or set data_dir to a larger disk")
    staging = data_root.with_name(f".{data_root.name}.partial")
    try:
        with guarded_write(data_root, needed):  # named as the user knows it, not as the staging folder
            remove_made(staging, "unpacking", legacy=_is_dir)  # what a killed run left (its name is podium's)
            mark_made(staging, "unpacking the competition")
            for path in sources:
                if path.is_symlink() and path.is_dir():
                    (staging / path.name).symlink_to(path.resolve(), target_is_directory=True)
                elif path.suffix.lower() == ".zip":
                    _unzip_nested(safe_unzip(path, staging), path)
                elif path.is_file():
                    shutil.copy2(path, staging / path.name)
            (staging / MARKER).write_text(json.dumps(fingerprint, indent=1))
            remove_made(data_root, "the unpacked competition", legacy=lambda p: (p / MARKER).is_file())
            os.replace(staging, data_root)
    finally:
        if is_made(staging):
            remove_made(staging, "unpacking")
    return True


def _is_dir(folder: Path) -> bool:
    return folder.is_dir()


def safe_unzip(archive: Path, destination: Path) -> list[Path]:
    """Extract only members that stay inside destination: no absolute paths, no '..', no links.
    A backslash in a member name is a folder separator (zips written by Windows tools)."""
    destination = destination.resolve()
    written = []
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise PodiumError(f"{archive} is not a readable zip file.", expected="a zip archive",
                          received=f"{exc}", fix="download it again (make data FORCE=1)") from exc
    with zf:
        members = [(member, _check_member(archive, member, destination)) for member in zf.infolist()]
        for member, relative in members:
            if not relative.parts:
                continue
            target = destination.joinpath(*relative.parts)
            if member.is_dir() or member.filename.endswith("\\"):
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(member) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink, 2**20)
            except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
                raise PodiumError(f"{archive} is damaged: member {member.filename!r} cannot be read.",
                                  expected="a complete zip archive", received=str(exc),
                                  fix="download it again (make data FORCE=1)") from exc
            written.append(target)
    return written


def _check_member(archive: Path, member: zipfile.ZipInfo, destination: Path) -> PurePosixPath:
    """The member's path relative to destination, or a PodiumError when it would leave it."""
    name = member.filename
    pure = PurePosixPath(name.replace("\\", "/"))
    mode = member.external_attr >> 16
    problem = ""
    if pure.is_absolute() or (len(name) > 1 and name[1] == ":"):
        problem = "an absolute path"
    elif ".." in pure.parts:
        problem = "a '..' path component"
    elif stat.S_ISLNK(mode):
        problem = "a symbolic link"
    elif not (destination / pure).resolve().is_relative_to(destination):
        problem = "a path outside the destination"
    if problem:
        raise PodiumError(f"Refusing to extract {archive.name}: member {name!r} is {problem}.",
                          expected="archive members with relative paths inside the archive",
                          received=name, fix="the archive is unsafe; get it from the competition page again")
    return PurePosixPath(*[part for part in pure.parts if part not in ("", ".")])


def _unzip_nested(written: list[Path], outer: Path) -> None:
    """A zip among an archive's members is unpacked where it lies, then dropped (one level only: a zip
    inside that one stays a file, and the missing-folder message names it)."""
    for inner in [p for p in written if p.suffix.lower() == ".zip"]:
        try:
            safe_unzip(inner, inner.parent)
        except PodiumError as exc:
            raise PodiumError(f"{outer.name} holds {inner.name}, which cannot be unpacked.",
                              expected="a readable, safe zip inside the archive", received=exc.what,
                              fix=exc.fix) from exc
        inner.unlink()


def describe_contents(folder: Path, limit: int = _SHOW) -> str:
    """The top-level entries of an unpacked competition, as a person would list them: folders with a
    slash and what they hold, zips named as zips."""
    ours = (MARKER, MADE)  # podium's own markers are not what the archives held
    entries = [p for p in sorted(folder.iterdir()) if p.name not in ours] if folder.is_dir() else []
    shown = []
    for path in entries[:limit]:
        if path.is_dir():
            children = list(path.iterdir())
            folders = sum(1 for c in children if c.is_dir())
            shown.append(f"{path.name}/ ({folders} folders, {len(children) - folders} files)")
        else:
            shown.append(path.name + (" (a zip inside the archive)" if path.suffix.lower() == ".zip" else ""))
    if len(entries) > limit:
        shown.append(f"and {len(entries) - limit} more")
    return ", ".join(shown) or "nothing"


def find_folders(root: Path, name: str, depth: int = 3) -> list[str]:
    """Folders under root (up to `depth` levels) whose name is the last part of `name`: where the spec's
    train_dir probably is."""
    target = PurePosixPath(name).name.lower()
    found = []
    for directory, subdirs, _ in os.walk(root):
        level = len(Path(directory).relative_to(root).parts)
        if level >= depth:
            subdirs[:] = []
        for sub in sorted(subdirs):
            if sub.lower() == target:
                found.append(Path(directory, sub).relative_to(root).as_posix())
    return sorted(found)[:_SHOW]


def _read_marker(marker: Path) -> dict | None:
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None


def _unpacked_size(raw_dir: Path) -> int:
    needed = 0
    for archive in raw_dir.glob("*.zip"):
        try:
            with zipfile.ZipFile(archive) as zf:
                needed += sum(m.file_size for m in zf.infolist())
        except zipfile.BadZipFile:
            continue  # safe_unzip reports it with the file name
    return needed

