"""The competition's files on disk that the index stands for: the labels CSV, read in one place, and the
images the index lists, checked to be still there.

Below index.py, targets.py and cache.py, which all read them, so none of those needs another.
"""

from __future__ import annotations

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
    return path, pd.read_csv(path, dtype=str, keep_default_na=False)


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
