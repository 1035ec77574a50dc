"""podium.data.source_files: the labels CSV read as written (text cells, trimmed, "007" kept), a CSV that is
not comma-separated UTF-8 refused naming the line, and index rows whose files are gone named."""

import dataclasses

import pandas as pd
import pytest

from podium.data import source_files
from podium.data.competitions import load_competition
from podium.errors import PodiumError

SPEC = dataclasses.replace(load_competition("demo"), layout="csv", labels_csv="labels.csv")


def test_cells_are_read_as_text_and_trimmed_with_a_note(tmp_path):
    (tmp_path / "labels.csv").write_text("id,label\n007,cat \n010,\n")
    path, rows = source_files.read_labels_table(SPEC, tmp_path)
    assert path == tmp_path / "labels.csv"
    assert rows["id"].tolist() == ["007", "010"] and rows["label"].tolist() == ["cat", ""]
    notes = source_files.labels_table_notes(SPEC, tmp_path)
    assert len(notes) == 1 and "'cat ' -> 'cat'" in notes[0] and "line 2" in notes[0]


def test_a_csv_podium_cannot_read_is_refused_naming_why(tmp_path):
    for text, why in (("id;label\n1;cat\n", "separated by semicolons"), ("id,label\n1,cat,dog\n", "Line 2"),
                      ("", "is empty")):
        (tmp_path / "labels.csv").write_text(text)
        with pytest.raises(PodiumError, match=why):
            source_files.read_labels_table(SPEC, tmp_path)
    (tmp_path / "labels.csv").write_bytes(b"id,label\n1,caf\xe9\n")
    with pytest.raises(PodiumError, match="not UTF-8"):
        source_files.read_labels_table(SPEC, tmp_path)
    (tmp_path / "labels.csv").unlink()
    with pytest.raises(PodiumError, match="labels CSV of competition 'demo' does not exist") as caught:
        source_files.read_labels_table(SPEC, tmp_path)
    assert "make data COMP=demo" in caught.value.fix


def test_index_rows_whose_files_are_gone_are_named(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    source_files.require_files(pd.DataFrame({"path": ["a.jpg"]}), tmp_path)
    with pytest.raises(PodiumError, match="1 of 2 image files") as caught:
        source_files.require_files(pd.DataFrame({"path": ["a.jpg", "b.jpg"]}), tmp_path)
    assert "b.jpg" in caught.value.received and "FORCE=1" in caught.value.fix
    assert source_files.first_few(list(range(7))) == "'0', '1', '2', '3', '4' and 2 more"
