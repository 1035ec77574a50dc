"""What a source folder holds, seen as `make data` would leave it, without unpacking anything.

Zips count as unpacked in place, folders as linked under their own name, other files as copied: every file
gets the path it will have under data/<slug>/, and is read from the file itself or from its zip member.
Zip listings and a sample of member bytes are enough to draft and check a spec.
"""

from __future__ import annotations

import io
import os
import statistics
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from podium.errors import PodiumError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SAMPLED_IMAGES = 48  # decoded for size and channels: spread over train and test
LABEL_NAMES = ("label", "labels", "class", "category", "target", "y", "breed", "species", "expected", "diagnosis")
GRAY_MODES = ("1", "L", "I", "I;16", "F", "LA")
SHOW = 5  # how many examples a message names before saying "and N more"


@dataclass(frozen=True)
class SourceFile:
    rel: str  # path under data/<slug>/ once `make data` has run
    entry: str  # the top-level name in the source folder it comes from: train.zip, train/, labels.csv
    origin: Path  # the file itself, or the zip that holds it
    member: str = ""  # the zip member name

    def read(self) -> bytes:
        if not self.member:
            return self.origin.read_bytes()
        with zipfile.ZipFile(self.origin) as archive:
            return archive.read(self.member)

    @property
    def is_image(self) -> bool:
        return PurePosixPath(self.rel).suffix.lower() in IMAGE_EXTENSIONS


@dataclass
class SourceView:
    source: Path
    files: list[SourceFile]
    entries: dict[str, str]  # top-level name -> "zip" | "folder" | "file"
    problems: list[str] = field(default_factory=list)  # unreadable zips, nested zips

    def images(self, under_dir: str = "", extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[SourceFile]:
        exts = {e.lower() for e in extensions}
        return [f for f in self.files if under(f.rel, under_dir) and PurePosixPath(f.rel).suffix.lower() in exts]

    def find(self, rel: str) -> SourceFile | None:
        rel = clean(rel)
        return next((f for f in self.files if f.rel == rel), None)

    def csvs(self) -> list[SourceFile]:
        return [f for f in self.files if f.rel.lower().endswith(".csv")]


def scan_source(source: str | os.PathLike) -> SourceView:
    """Every file of the source folder under the path it will have in data/<slug>/ (nothing unpacked)."""
    source = Path(source)
    if not source.is_dir():
        raise PodiumError(f"Source folder {source} does not exist.",
                          expected="a folder holding the competition's files as downloaded (zips, CSVs, folders)",
                          received=str(source), fix="pass SRC=<folder with train.zip, test.zip, ...>")
    view = SourceView(source, [], {}, [])
    for path in sorted(source.iterdir()):
        if path.name.startswith((".", "__")) or path.suffix == ".py":  # as _copy_files skips them
            continue
        if path.is_dir():
            view.entries[path.name] = "folder"
            view.files += _folder_files(path)
        elif path.suffix.lower() == ".zip":
            view.entries[path.name] = "zip"
            _add_zip(view, path)
        elif path.is_file():
            view.entries[path.name] = "file"
            view.files.append(SourceFile(path.name, path.name, path))
    return view


def _folder_files(path: Path) -> list[SourceFile]:
    """A top-level folder's files, as linked under its own name."""
    files = []
    for directory, subdirs, names in os.walk(path, followlinks=True):
        subdirs[:] = sorted(d for d in subdirs if not _ignored(d))
        for name in sorted(names):
            if not _ignored(name):
                full = Path(directory, name)
                files.append(SourceFile(f"{path.name}/{full.relative_to(path).as_posix()}", path.name, full))
    return files


def _add_zip(view: SourceView, path: Path) -> None:
    """A zip's members, as unpacked in place; an unreadable zip or a zip inside it is a problem."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
    except zipfile.BadZipFile as exc:
        view.problems.append(f"{path.name} is not a readable zip ({exc}); download it again")
        return
    for member in members:
        rel = clean(member.filename)
        if any(_ignored(part) for part in PurePosixPath(rel).parts):
            continue
        view.files.append(SourceFile(rel, path.name, path, member.filename))
        if rel.lower().endswith(".zip"):
            view.problems.append(f"{path.name} holds another zip ({rel}): unpack the outer zip into SRC "
                                 f"and draft again")


def clean(rel: str) -> str:
    return PurePosixPath(rel.replace("\\", "/").lstrip("/")).as_posix().removeprefix("./")


def _ignored(name: str) -> bool:
    return name.startswith(".") or name in ("__MACOSX", "Thumbs.db", "desktop.ini")


def under(rel: str, folder: str) -> bool:
    """rel lies below folder ("" and "." are the root, which holds everything)."""
    return not folder or folder == "." or rel.startswith(folder.rstrip("/") + "/")


def parent(rel: str) -> str:
    folder = PurePosixPath(rel).parent.as_posix()
    return "" if folder == "." else folder


def ancestors(rel: str) -> list[str]:
    """"" (the root) and every folder above rel."""
    parts = PurePosixPath(rel).parts[:-1]
    return [""] + ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]


def read_csv(file: SourceFile) -> pd.DataFrame:
    """Every cell as written (ids like "007" survive, empty cells are ""), as the index reads them."""
    try:
        return pd.read_csv(io.BytesIO(file.read()), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PodiumError(f"{file.rel} is not a readable CSV.", expected="a UTF-8 CSV with a header",
                          received=str(exc).strip()[:200], fix="download it again") from None


def few(items: list[str]) -> str:
    """The first SHOW items, and how many more there are."""
    shown = ", ".join(str(i) for i in items[:SHOW])
    return shown + (f" and {len(items) - SHOW} more" if len(items) > SHOW else "")


def is_sample_name(rel: str) -> bool:
    """A file named like a sample submission."""
    return "sample" in rel.lower() or "submission" in rel.lower()


# ---- image size and channels --------------------------------------------------------------------------
def image_facts(train: list[SourceFile], test: list[SourceFile]) -> dict[str, Any]:
    """Size and channels of a spread of train and test images (decoded from their bytes), with advice for
    small ones: what the drafted spec's header says about the images."""
    picked = _spread(train, SAMPLED_IMAGES * 3 // 4) + _spread(test, SAMPLED_IMAGES // 4)
    sizes, modes, unreadable = _decode_sizes(picked)
    if not sizes:
        return {"summary": f"none of {len(picked)} sampled images could be read", "sampled": len(picked)}
    widths, heights = [w for w, _ in sizes], [h for _, h in sizes]
    width, height = int(statistics.median(widths)), int(statistics.median(heights))
    gray = sum(n for m, n in modes.items() if m in GRAY_MODES)
    channels = "grayscale" if gray == len(sizes) else "colour" if gray == 0 else f"mixed ({gray} grayscale)"
    size_text = f"all {width}x{height} px" if len(set(sizes)) == 1 else (
        f"{min(widths)}..{max(widths)} x {min(heights)}..{max(heights)} px (median {width}x{height})")
    summary = (f"{len(sizes)} sampled: {size_text}, {channels} (modes {dict(modes)})"
               + (f", {unreadable} unreadable" if unreadable else ""))
    facts = {"summary": summary, "width": width, "height": height, "channels": channels, "modes": dict(modes),
             "sampled": len(picked), "unreadable": unreadable}
    side = max(width, height)
    if side < 32:
        facts["advice"] = (f"small images ({width}x{height}): set image_size: {max(8, side)} in the experiment config "
                           f"with a from-scratch backbone (tiny_cnn, resnet9); their default 32 upscales "
                           f"{32 / side:.1f}x")
    return facts


def _decode_sizes(picked: list[SourceFile]) -> tuple[list[tuple[int, int]], Counter, int]:
    """(sizes, modes, unreadable count) of the picked images; a big zip's directory is read once, not per image."""
    from PIL import Image

    sizes, modes, unreadable = [], Counter(), 0
    archives: dict[Path, zipfile.ZipFile] = {}
    try:
        for f in picked:
            try:
                if f.member:
                    archive = archives.get(f.origin) or archives.setdefault(f.origin, zipfile.ZipFile(f.origin))
                    data = archive.read(f.member)
                else:
                    data = f.read()
                with Image.open(io.BytesIO(data)) as image:
                    sizes.append(image.size)
                    modes[image.mode] += 1
            except Exception:  # noqa: BLE001 - an undecodable file is only counted here; `make data` names it
                unreadable += 1
    finally:
        for archive in archives.values():
            archive.close()
    return sizes, modes, unreadable


def _spread(files: list[SourceFile], count: int) -> list[SourceFile]:
    if len(files) <= count:
        return list(files)
    step = len(files) / count
    return [files[int(k * step)] for k in range(count)]
