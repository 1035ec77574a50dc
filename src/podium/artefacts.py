"""What one stage hands another carries what it was made from; every reader checks it through one function.

A blend, a pseudo-label teacher and an inference package read files that other stages wrote: a fold's
oof.parquet / oof_outputs.npy, a run's test_predictions.npy + test_ids.csv, a blend's outputs. Read as truth,
a truncated file crashed the reader, NaN became class 0 in a "validated" submission, predictions of test
images since replaced were blended or taught as pseudo-labels, and a rank blend was read as probabilities.

So each such file gets a record beside it, `<file>.made.json` (`stamp`): its own sha256 (and its companions',
e.g. test_ids.csv), the fingerprint of the images it was made from (sha256 of the sorted ids and content
hashes of the index rows used: `images_fingerprint`), the inputs it read with their sha256 (a fold's
metrics.json, another run's predictions), the folds used and whether each finished, the kind of values
(KINDS), and the command that remakes it. `read` is the one reader: the file exists and is whole (its sha
matches, it loads), holds no NaN or inf, was made from the images the index holds now, from inputs that
have not changed since, of finished folds (unfinished ones only where the caller allows them, and then
said in a note), and of a kind the reader can use. Every refusal is a PodiumError naming the file and the
command that remakes it. A file an older podium wrote without a record is read with a note where the
caller allows it (`legacy_ok`), else refused with that command.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.io import file_sha256, write_json

SUFFIX = ".made.json"
KINDS = ("probabilities", "ranks", "masks", "boxes", "numbers", "detections")  # detections: a detector's maps or fused boxes
CHUNK_ROWS = 256  # rows checked for NaN at a time (masks need not sit in memory at once)


def record_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def images_fingerprint(rows: pd.DataFrame) -> str:
    """Short sha256 of the rows' (id, image content hash) pairs, sorted by id: which pixels the values are of."""
    ordered = rows.sort_values("id", kind="stable")
    payload = json.dumps([ordered["id"].astype(str).tolist(), ordered["hash"].astype(str).tolist()])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def test_images(index: pd.DataFrame) -> str:
    """The fingerprint of the index's test images (what test predictions are of)."""
    return images_fingerprint(index[index["split"] == "test"])


def train_images(index: pd.DataFrame) -> str:
    """The fingerprint of the index's readable training images (what OOF predictions are of)."""
    return images_fingerprint(index[(index["split"] == "train") & index["ok"].astype(bool)])


def _where(path: Path, base: Path) -> str:
    """An input's path as recorded: relative to the artefact's folder when below its parent (a copied run
    folder still finds its own files), else as given."""
    path = Path(path)
    for root, prefix in ((base, ""), (base.parent, "../")):
        try:
            return prefix + str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            continue
    return str(path)


def stamp(path: str | Path, *, kind: str, images: str | None, remake: str, made_by: str,
          inputs: list[str | Path] = (), folds: list[dict] | None = None, companions: list[str | Path] = (),
          extra: dict | None = None) -> Path:
    """Write `<path>.made.json`: what `path` is, what it was made from, and how to remake it.

    `folds`: [{"fold": k, "finished": bool, ...}] (each fold used and whether its training ended);
    `companions`: files made with it and read with it (test_ids.csv), their sha256 checked by `read` too;
    `images` None: made from images handed in memory, with no index to fingerprint them by."""
    path = Path(path)
    if kind not in KINDS:
        raise ValueError(f"unknown artefact kind {kind!r}")
    base = path.parent
    folds = [dict(f) for f in (folds or [])]
    record = {
        "artefact": path.name, "sha256": file_sha256(path), "bytes": path.stat().st_size, "kind": kind,
        "images": images, "made_by": made_by, "remake": remake,
        "inputs": {_where(Path(p), base): file_sha256(p) for p in inputs if Path(p).is_file()},
        "companions": {Path(p).name: file_sha256(p) for p in companions},
        "folds": folds, "finished": all(bool(f.get("finished")) for f in folds),
        "written": time.strftime("%Y-%m-%d %H:%M:%S %z"), **(extra or {}),
    }
    return write_json(record_path(path), record)


def read_record(path: str | Path) -> dict | None:
    """The record beside `path`, or None when there is none (an older podium); a damaged one is refused."""
    made = record_path(path)
    if not made.is_file():
        return None
    try:
        record = json.loads(made.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        record = exc
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
        raise PodiumError(f"The record of {path} ({made}) is damaged: what made the file cannot be checked.",
                          expected="the JSON record podium writes beside the file", received=str(record)[:120],
                          fix="remake the file with the command that made it (its record is rewritten with it)")
    return record


@dataclass
class Artefact:
    """A checked artefact: its values (array or table), its record, and what the caller should print."""

    path: Path
    values: np.ndarray | pd.DataFrame
    record: dict | None
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str | None:
        return None if self.record is None else self.record.get("kind")

    @property
    def unfinished(self) -> list[int]:
        return [] if self.record is None else [int(f["fold"]) for f in self.record.get("folds", [])
                                               if not f.get("finished")]


def read(path: str | Path, *, what: str, remake: str, kinds: tuple[str, ...] = (), images: str | None = None,
         allow_unfinished: bool = False, legacy_ok: bool = False, mmap: bool = False) -> Artefact:
    """The one reader of a hand-over artefact (.npy, .parquet or .csv), checked as the module docstring says.

    `what` names it in messages ("run r1's test predictions"); `remake` is the command that remakes it;
    `kinds` the kinds the caller can use (empty: any); `images` the fingerprint of the images the caller
    means (test_images / train_images of the index now; None: not checked)."""
    path = Path(path)

    def refuse(problem: str, expected: str, received: str, fix: str | None = None) -> PodiumError:
        return PodiumError(f"{what[:1].upper()}{what[1:]} ({path}) {problem}", expected=expected, received=received,
                           fix=fix or remake)  # `remake` as it stands when refused: the record's once read

    if not path.is_file():
        raise refuse("does not exist.", f"{path.name}, written by `{remake}`", "no such file")
    record = read_record(path)
    if record is not None and record.get("remake"):
        remake = str(record["remake"])  # the command recorded by what made it
    notes: list[str] = []
    if record is None:
        if not legacy_ok:
            raise refuse("has no record of what made it (written by an older podium, or copied without "
                         f"{record_path(path).name}).", f"{record_path(path).name} beside it", "none", remake)
        notes.append(f"{what} ({path}) has no record of what made it (an older podium): checked for damage "
                     "and NaN only")
    else:
        _check_bytes(path, record, refuse)
    values = _load(path, refuse, mmap)
    _check_finite(values, refuse)
    if record is not None:
        notes += _check_made_for(path, values, record, refuse, what=what, remake=remake, kinds=kinds, images=images,
                                 allow_unfinished=allow_unfinished)
    return Artefact(path, values, record, notes)


def _check_made_for(path: Path, values, record: dict, refuse, *, what: str, remake: str, kinds: tuple[str, ...],
                    images: str | None, allow_unfinished: bool) -> list[str]:
    """What the record says it was made from and as: the images the caller means, inputs unchanged since, a
    kind the caller reads, finished folds (unless allowed); returns the notes worth printing."""
    notes: list[str] = []
    if images is not None and record.get("images") is None:
        notes.append(f"{what} ({path}) was made from images not in an index: not checked against it")
    elif images is not None and record.get("images") != images:
        raise refuse("was made from other images than the index holds now (images changed since, e.g. "
                     "`make data FORCE=1` with new files).", f"images {images} (the index now)",
                     f"images {record.get('images')} (when it was made)",
                     f"{remake} (on the current images)")
    _check_inputs(path, record, refuse)
    if kinds and record.get("kind") not in kinds:
        raise refuse(f"holds {record.get('kind')}, which cannot be read as {' or '.join(kinds)}.",
                     " or ".join(kinds), str(record.get("kind")),
                     f"use an artefact of {' or '.join(kinds)} (e.g. a blend with method=weights or mean, "
                     "not rank)")
    unfinished = Artefact(path, values, record).unfinished
    if unfinished and not allow_unfinished:
        raise refuse(f"was made with fold(s) {unfinished} whose training did not finish (allow_unfinished).",
                     "predictions of finished folds only", f"unfinished fold(s) {unfinished}",
                     f"finish the training (`make train`), then `{remake}` without allow_unfinished")
    if unfinished:
        notes.append(f"UNFINISHED: {what} uses fold(s) {unfinished} whose training did not finish "
                     "(allow_unfinished=true)")
    return notes


def _check_bytes(path: Path, record: dict, refuse) -> None:
    """The file and its companions are the bytes recorded when they were made (a truncated or edited one is not)."""
    if file_sha256(path) != record["sha256"]:
        raise refuse("is not the file that was made: it changed since (truncated, edited or copied over).",
                     f"{record.get('bytes')} bytes, sha256 {record['sha256'][:12]}",
                     f"{path.stat().st_size} bytes, sha256 {file_sha256(path)[:12]}")
    for name, sha in (record.get("companions") or {}).items():
        other = path.parent / name
        if not other.is_file() or file_sha256(other) != sha:
            raise refuse(f"was made with {other}, which changed or is gone since.",
                         f"{name} with sha256 {sha[:12]}", "missing" if not other.is_file() else "other content")


def _check_inputs(path: Path, record: dict, refuse) -> None:
    """Inputs still present must hold what they held when the artefact was made (a retrained fold, a run
    predicted again since a blend): gone ones are not checked (a moved data folder)."""
    for name, sha in (record.get("inputs") or {}).items():
        source = path.parent / name if not Path(name).is_absolute() else Path(name)
        if source.is_file() and file_sha256(source) != sha:
            raise refuse(f"was made from {source}, which changed since (retrained or remade after it).",
                         f"{name} as it was (sha256 {sha[:12]})", "other content now")


def _load(path: Path, refuse, mmap: bool):
    try:
        if path.suffix == ".npy":
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path, dtype={"id": str}, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - any decoder's error on a damaged file is the same finding
        raise refuse("is damaged: it cannot be read (truncated or overwritten?).",
                     f"a whole {path.suffix} file", f"{type(exc).__name__}: {str(exc)[:160]}") from None
    raise ValueError(f"no reader for {path.suffix} files")


def _check_finite(values, refuse) -> None:
    """NaN or inf anywhere in the numbers is refused: argmax reads NaN as class 0, a mean spreads it."""
    if isinstance(values, pd.DataFrame):
        numeric = values.select_dtypes("number")
        bad = int((~np.isfinite(numeric.to_numpy(dtype="float64"))).any(axis=1).sum()) if numeric.size else 0
        total = len(values)
    else:
        rows = values.reshape(len(values), -1) if values.ndim else values.reshape(1, 1)
        bad = 0
        if np.issubdtype(rows.dtype, np.floating):
            for start in range(0, len(rows), CHUNK_ROWS):
                bad += int((~np.isfinite(rows[start:start + CHUNK_ROWS])).any(axis=1).sum())
        total = len(rows)
    if bad:
        raise refuse(f"holds NaN or infinite values in {bad} of {total} rows.", "finite numbers in every row",
                     f"{bad} rows with NaN/inf (a diverged model or a damaged file)")
