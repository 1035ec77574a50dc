"""The competition's files on disk that the index stands for: the labels CSV, read in one place, and the
images the index lists, checked to be still there.

Below index.py, targets.py and cache.py, which all read them, so none of those needs another.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from podium.data.competitions import CompetitionSpec
from podium.data.extract import MARKER, describe_contents
from podium.data.images import source_file
from podium.errors import PodiumError

_SHOW = 5  # ids shown in a message before "and N more"


def read_labels_table(spec: CompetitionSpec, data_root: Path) -> tuple[Path, pd.DataFrame]:
    """(path, rows) of the spec's labels CSV, every cell as written: ids like "007" and labels like "0"
    survive, and an empty cell (an Airbus image without ships) is "", not NaN."""
    path = Path(data_root) / spec.labels_csv
    if not spec.labels_csv or not path.is_file():
        unpacked = (Path(data_root) / MARKER).is_file()  # `make data` ran: running it again changes nothing
        raise PodiumError(f"The labels CSV of competition '{spec.slug}' does not exist.",
                          expected=f"a file at {path} (the spec's labels_csv)",
                          received=("no labels_csv in the spec" if not spec.labels_csv else "no file")
                          + (f"; the archives unpacked to: {describe_contents(Path(data_root))}" if unpacked else ""),
                          fix="set labels_csv in the competition spec to the CSV listed above (a deleted one comes "
                              "back with `make data FORCE=1`)" if unpacked else
                          f"run `make data COMP={spec.slug}` first, or fix labels_csv in the spec")
    return path, _parse_labels(path)[0]


def labels_table_notes(spec: CompetitionSpec, data_root: Path) -> list[str]:
    """What reading the labels CSV changed (cells trimmed of spaces), for `make data` to say."""
    path = Path(data_root) / spec.labels_csv
    return _parse_labels(path)[1] if spec.labels_csv and path.is_file() else []


SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "'|'"}


def _parse_labels(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The labels CSV as text cells with spaces around them trimmed ("cat " would be a second class); a
    file that is not comma-separated UTF-8 with one cell per header column is a PodiumError naming the line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PodiumError(f"The labels CSV {path} is not UTF-8 text.", expected="a UTF-8 CSV",
                          received=f"byte {exc.object[exc.start]:#x} at offset {exc.start}",
                          fix="save it as UTF-8 (Excel: 'CSV UTF-8 (comma delimited)')") from exc
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise PodiumError(f"The labels CSV {path} is empty.", expected="a header line and one line per image",
                          received="an empty file", fix="copy the file again from the competition's download")
    header = rows[0]
    if len(header) == 1:
        used = [sep for sep in SEPARATORS if sep in header[0]]
        if used:
            raise PodiumError(f"The labels CSV {path} is separated by {SEPARATORS[used[0]]}, not commas.",
                              expected="comma-separated columns (id,label)", received=f"header {header[0]!r}",
                              fix="save it comma-separated (Excel: 'CSV UTF-8 (comma delimited)'), e.g. "
                                  f"python -c \"import pandas as p; p.read_csv('{path.name}', sep='{used[0]}', "
                                  f"dtype=str).to_csv('{path.name}', index=False)\"")
    for line, row in enumerate(rows[1:], 2):
        if row and len(row) != len(header):
            more = len(row) > len(header)
            raise PodiumError(f"Line {line} of the labels CSV {path} has {len(row)} cells; its header has "
                              f"{len(header)}.", expected=f"{len(header)} cells per line ({','.join(header)})",
                              received=f"line {line}: {','.join(row)[:120]!r}",
                              fix="a cell holding commas (several labels) must be quoted: 1,\"cat,dog\" - or "
                                  "separate labels with spaces (1,cat dog), as Kaggle's multi-label CSVs do"
                              if more else "fill the missing cells of that line, or remove it")
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    trimmed = frame.rename(columns=lambda c: str(c).strip()).apply(lambda column: column.str.strip())
    changed = (trimmed.to_numpy() != frame.to_numpy())
    notes = []
    if changed.any():
        row, col = map(int, next(zip(*changed.nonzero())))
        notes.append(f"{path.name}: {int(changed.sum())} cell(s) had spaces around them and were read without "
                     f"(e.g. {frame.iat[row, col]!r} -> {trimmed.iat[row, col]!r} in column "
                     f"{trimmed.columns[col]!r}, line {row + 2}): \"cat \" and \"cat\" are one class")
    return trimmed, notes


def require_files(rows: pd.DataFrame, data_root: Path) -> None:
    """Every file the index rows name is still there; else a PodiumError naming the missing ones.

    Running `make data` again would not help (the index is reused as long as the archives are unchanged):
    FORCE=1 unpacks the archives again, which restores deleted files, and re-indexes what is there."""
    paths = [Path(data_root) / p for p in rows["path"].astype(str)]
    files = {str(p): source_file(p) for p in paths}  # a pixel row's file is its array: checked once, not per row
    present = {f: f.is_file() for f in set(files.values())}
    missing = [str(p) for p in paths if not present[files[str(p)]]]
    if missing:
        raise PodiumError(f"{len(missing)} of {len(paths)} image files listed in the index are gone.",
                          expected="the files `make data` indexed", received=f"missing {first_few(missing)}",
                          fix="restore them, or rebuild from the archives with `make data FORCE=1` (unpacks again, "
                              "which brings back files deleted since, and re-indexes what is there)")


def first_few(items: list) -> str:
    """The first few items of a list for an error message, and how many more there are."""
    shown = ", ".join(repr(str(i)) for i in items[:_SHOW])
    return shown + (f" and {len(items) - _SHOW} more" if len(items) > _SHOW else "")
