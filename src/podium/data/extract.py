"""Bring a competition's files into data/: the archives kept as received, their contents unpacked safely.

Unpacking goes into a temporary sibling folder that is renamed into place at the end, so a failed or
killed extraction never leaves a half-filled data/<slug>/ that later stages would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import zipfile
from importlib import resources
from pathlib import Path, PurePosixPath

from podium.competitions import CompetitionSpec
from podium.errors import PodiumError

MARKER = ".podium-extracted.json"


def fetch(spec: CompetitionSpec, raw_dir: Path, source_dir: Path | None = None, force: bool = False) -> list[Path]:
    """Copy the competition's files into raw_dir (untouched from then on); return what is there."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    if source_dir is None and spec.source == "embedded":
        source_dir = Path(str(resources.files("podium") / "demo"))
    if source_dir is None and spec.source == "generated":
        from podium.synthetic_files import write_generated

        if force or not all((raw_dir / name).is_file() for name in spec.archives):
            write_generated(spec.slug, raw_dir)  # seeded: the same bytes on every machine
    elif source_dir is None:
        from podium.kaggle_api import download_competition

        download_competition(spec, raw_dir, force=force)
    else:
        _copy_files(Path(source_dir), raw_dir, force)
    missing = [name for name in spec.archives if not (raw_dir / name).is_file() and not _unpacked(raw_dir, name)]
    if missing:
        raise PodiumError(f"Competition '{spec.slug}' is missing files in {raw_dir}.",
                          expected=", ".join(spec.archives), received=", ".join(p.name for p in sorted(raw_dir.iterdir())) or "nothing",
                          fix="check the spec's 'archives' or the folder given with SRC=")
    return sorted(p for p in raw_dir.iterdir() if p.is_file())


def extract(spec: CompetitionSpec, raw_dir: Path, data_root: Path, force: bool = False) -> bool:
    """Unpack raw_dir into data_root; return False when it is already unpacked from the same files.

    A linked folder (an already-unpacked source, see _copy_files) is linked again, not copied."""
    fingerprint = {p.name: _file_digest(p) for p in sorted(raw_dir.iterdir()) if p.is_file()}
    fingerprint.update({f"{p.name}/": str(p.resolve()) for p in sorted(raw_dir.iterdir()) if p.is_symlink()
                        and p.is_dir()})
    marker = data_root / MARKER
    if not force and marker.is_file() and json.loads(marker.read_text()) == fingerprint:
        return False
    _check_free_space(raw_dir, data_root.parent)
    staging = data_root.with_name(f".{data_root.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for path in sorted(raw_dir.iterdir()):
            if path.is_symlink() and path.is_dir():
                (staging / path.name).symlink_to(path.resolve(), target_is_directory=True)
            elif path.suffix.lower() == ".zip":
                safe_unzip(path, staging)
            elif path.is_file():
                shutil.copy2(path, staging / path.name)
        (staging / MARKER).write_text(json.dumps(fingerprint, indent=1))
        if data_root.exists():
            shutil.rmtree(data_root)
        os.replace(staging, data_root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True


def safe_unzip(archive: Path, destination: Path) -> list[Path]:
    """Extract only members that stay inside destination: no absolute paths, no '..', no links."""
    destination = destination.resolve()
    written = []
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise PodiumError(f"{archive} is not a readable zip file.", expected="a zip archive",
                          received=f"{exc}", fix="download it again (make data FORCE=1)") from exc
    with zf:
        for member in zf.infolist():
            _check_member(archive, member, destination)
        for member in zf.infolist():
            written.append(Path(zf.extract(member, destination)))
    return written


def _check_member(archive: Path, member: zipfile.ZipInfo, destination: Path) -> None:
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


def _copy_files(source_dir: Path, raw_dir: Path, force: bool) -> None:
    """Files are copied; folders (a competition already unpacked, as /kaggle/input/<slug> holds it,
    Airbus' 30 GB of JPEGs among them) are linked, read-only and without a copy."""
    if not source_dir.is_dir():
        raise PodiumError(f"Source folder {source_dir} does not exist.",
                          expected="a folder holding the competition's files as Kaggle serves them",
                          received=str(source_dir), fix="pass SRC=<folder with train.zip, test.zip, ...>")
    for path in sorted(source_dir.iterdir()):
        if path.name.startswith((".", "__")):  # hidden files, __MACOSX, __pycache__
            continue
        target = raw_dir / path.name
        if path.is_dir():
            if target.is_symlink() and target.resolve() == path.resolve() and not force:
                continue
            if target.is_symlink() or target.is_file():
                target.unlink()
            elif target.is_dir():
                shutil.rmtree(target)
            target.symlink_to(path.resolve(), target_is_directory=True)
        elif path.is_file() and path.suffix != ".py":
            if force or not target.exists() or target.stat().st_size != path.stat().st_size:
                tmp = target.with_name(f".{target.name}.tmp")
                shutil.copyfile(path, tmp)
                os.replace(tmp, target)


def _unpacked(raw_dir: Path, archive: str) -> bool:
    """Kaggle serves a competition's train.zip unpacked as train/ in a kernel's input: either will do."""
    return archive.lower().endswith(".zip") and (raw_dir / archive[:-4]).is_dir()


def _check_free_space(raw_dir: Path, target_parent: Path) -> None:
    needed = 0
    for archive in raw_dir.glob("*.zip"):
        try:
            with zipfile.ZipFile(archive) as zf:
                needed += sum(m.file_size for m in zf.infolist())
        except zipfile.BadZipFile:
            continue  # safe_unzip reports it with the file name
    target_parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target_parent).free
    if needed * 1.1 > free:
        raise PodiumError("Not enough free disk space to extract the competition.",
                          expected=f"at least {needed * 1.1 / 2**30:.2f} GiB free in {target_parent}",
                          received=f"{free / 2**30:.2f} GiB free", fix="free some space or set data_dir elsewhere")


def _file_digest(path: Path) -> str:
    stat_ = path.stat()
    return hashlib.sha1(f"{stat_.st_size}:{int(stat_.st_mtime)}".encode()).hexdigest()[:16]
