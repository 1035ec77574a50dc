"""Where `make data` gets a competition's files from, behind one interface: a Source fills data/raw/<slug>.

The sources below the data stage live here: a local folder (`make data SRC=<folder>`, a Kaggle kernel's
/kaggle/input/<slug>), the embedded demo, and the files a folder copy left before. The others are made
higher up and handed down by the entry point, by the spec's `source:` name: Kaggle's download
(podium.kaggle.source) and the generated shapes (podium.experiments.synthetic_files), so data/ imports
neither the Kaggle client nor the generators.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Mapping, Protocol

from podium.data.competitions import CompetitionSpec
from podium.errors import PodiumError
from podium.io import atomic_path, guarded_write, remove_stale_temps, write_json
from podium.paths import remove_made

HASHED_UP_TO = 64 * 2**20  # files this small are compared by content too, not only size and mtime


class Source(Protocol):
    """`name`: the spec's `source:` value it serves; `remote`: fetching asks another machine, so files a
    folder copy left in raw_dir before stand in for it (later stages ask no one)."""

    name: str
    remote: bool

    def fetch(self, spec: CompetitionSpec, raw_dir: Path, force: bool = False) -> None:
        """Bring the competition's files into raw_dir (an existing folder); force: fetch them again."""


@dataclass(frozen=True)
class FolderSource:
    """A folder holding the files as Kaggle serves them: files copied when their content differs, folders
    (a competition already unpacked, as /kaggle/input/<slug> holds it, Airbus' 30 GB of JPEGs among them)
    linked, read-only and without a copy. Which folder is recorded beside raw_dir."""

    folder: Path
    name: str = "folder"
    remote: bool = False

    def fetch(self, spec: CompetitionSpec, raw_dir: Path, force: bool = False) -> None:
        _copy_files(Path(self.folder), raw_dir, force)
        _record_source(raw_dir, spec, Path(self.folder))


@dataclass(frozen=True)
class KeptFiles:
    """raw_dir was filled from a local folder and still holds every archive the spec names: kept as is."""

    name: str = "kept"
    remote: bool = False

    def fetch(self, spec: CompetitionSpec, raw_dir: Path, force: bool = False) -> None:
        return None


EMBEDDED = FolderSource(Path(str(resources.files("podium") / "demo")), name="embedded")
LOCAL: dict[str, Source] = {"embedded": EMBEDDED}  # what data/ fetches without being handed a source


def pick_source(spec: CompetitionSpec, raw_dir: Path, folder: Path | None = None, force: bool = False,
                sources: Mapping[str, Source] = LOCAL) -> Source:
    """SRC= first; then, for a competition fetched from another machine, the files a folder copy left (unless
    force); else the source the spec names, which the entry point must have handed down."""
    if folder is not None:
        return FolderSource(Path(folder))
    source = sources.get(spec.source)
    if (source is None or source.remote) and not force and copied_from_folder(raw_dir, spec):
        return KeptFiles()
    if source is None:
        raise PodiumError(f"Competition '{spec.slug}' comes from source '{spec.source}', which this command "
                          "cannot fetch.", expected=f"a folder of its files, or one of: {', '.join(sources)}",
                          received=f"source: {spec.source}",
                          fix=f"run `make data COMP={spec.slug}` (or pass SRC=<folder with its files>) first")
    return source


def unpacked(raw_dir: Path, archive: str) -> bool:
    """Kaggle serves a competition's train.zip unpacked as train/ in a kernel's input: either will do."""
    return archive.lower().endswith(".zip") and (raw_dir / archive[:-4]).is_dir()


def copied_from_folder(raw_dir: Path, spec: CompetitionSpec) -> bool:
    """raw_dir was filled from a local folder and still holds every archive the spec names."""
    return _source_record(raw_dir).is_file() and all(
        (raw_dir / name).is_file() or unpacked(raw_dir, name) for name in spec.archives)


def _source_record(raw_dir: Path) -> Path:
    """Beside raw_dir, like the Kaggle download's manifest: which folder `make data SRC=` copied from."""
    return raw_dir.parent / f"{raw_dir.name}.source.json"


def _record_source(raw_dir: Path, spec: CompetitionSpec, source_dir: Path) -> None:
    """Written only when it changes: a read-only data folder that already holds the copy is still readable."""
    record = {"competition": spec.slug, "source": str(source_dir.resolve())}
    path = _source_record(raw_dir)
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")) == record:
            return
    write_json(path, record)


def _copy_files(source_dir: Path, raw_dir: Path, force: bool) -> None:
    """Files are copied (when their content differs); folders are linked (FolderSource)."""
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
            with guarded_write(target):
                if target.is_symlink() or target.is_file():
                    target.unlink()
                elif target.is_dir():
                    remove_made(target, f"a copy of {path}")  # podium links folders: a real one is not podium's
                target.symlink_to(path.resolve(), target_is_directory=True)
        elif path.is_file() and path.suffix != ".py":
            remove_stale_temps(target)
            with contextlib.suppress(OSError):  # older podium's fixed temp name; cleaning never blocks a read
                target.with_name(f".{target.name}.tmp").unlink(missing_ok=True)
            if force or not target.is_file() or target.is_symlink() or not same_content(path, target):
                with atomic_path(target) as tmp:
                    shutil.copyfile(path, tmp)
                    shutil.copystat(path, tmp)  # the source's mtime: the next comparison is cheap


def same_content(a: Path, b: Path) -> bool:
    """Equal size and mtime (ns), and equal bytes too for files up to HASHED_UP_TO: a file edited in place
    keeps its size, and a copy tool can keep its mtime."""
    return file_identity(a) == file_identity(b)


def file_identity(path: Path) -> str:
    """size:mtime_ns, plus the sha1 for files up to HASHED_UP_TO (big archives: size and mtime only)."""
    info = path.stat()
    identity = f"{info.st_size}:{info.st_mtime_ns}"
    if info.st_size <= HASHED_UP_TO:
        digest = hashlib.sha1()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
        identity += f":{digest.hexdigest()}"
    return identity
