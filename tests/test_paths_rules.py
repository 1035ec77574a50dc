"""podium.paths: a config value that becomes a folder name is one name; podium deletes only folders it made
(its marker inside), and a killed writer's staging folder only once that process is gone."""

import subprocess
import sys

import pytest

from podium import paths
from podium.errors import PodiumError


def test_a_folder_name_is_one_name_or_refused_naming_its_key():
    assert paths.name_problem("baseline-1.b0") == ""
    for value, why in (("", "empty"), (" a", "space"), ("a/b", "path separator"), ("a..b", "'..'"),
                       (".hidden", "starts with '.'"), ("C:x", "drive letter"), ("a\tb", "control character"),
                       ("x" * 201, "longer than 200 bytes"), (7, "not text")):
        assert why in paths.name_problem(value), value
    with pytest.raises(PodiumError, match="'name' becomes a folder name, and it holds '..'") as caught:
        paths.check_name("up..", "name", "b0")
    assert caught.value.fix == "e.g. name=b0"


def test_a_folder_setting_under_a_file_is_refused(tmp_path):
    (tmp_path / "runs").write_text("a file")
    assert paths.check_folder(tmp_path / "new" / "runs", "runs_dir") == tmp_path / "new" / "runs"
    with pytest.raises(PodiumError, match="lies under .*runs, which is a file"):
        paths.check_folder(tmp_path / "runs" / "deeper", "runs_dir")


def test_only_folders_podium_made_are_deleted(tmp_path):
    made = paths.mark_made(tmp_path / "staging", "a test")
    (made / "half.bin").write_bytes(b"x")
    assert paths.is_made(made) and paths.made_pid(made)[1] > 0
    assert paths.remove_made(made, "a test") and not made.exists()
    assert paths.remove_made(made, "a test") is False  # nothing there
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(PodiumError, match="podium did not make it") as caught:
        paths.remove_made(theirs, "a test")
    assert "notes.txt" in caught.value.received and (theirs / "notes.txt").exists()
    with pytest.raises(PodiumError, match="will not take over"):
        paths.mark_made(theirs, "a test")
    assert paths.mark_made(theirs, "a test", adopt=True) == theirs and paths.is_made(theirs)


def test_stale_staging_folders_of_gone_processes_are_removed_live_ones_kept(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(gone.stdout)
    live = paths.mark_made(tmp_path / ".x.building-live", "a live writer")  # this process: alive
    legacy = tmp_path / f".x.building-{dead_pid}"  # an older podium's name for its staging folder
    legacy.mkdir()
    unmarked = tmp_path / ".x.building-someone"
    unmarked.mkdir()
    assert paths.remove_stale(tmp_path, ".x.building-") == [legacy]
    assert live.exists() and unmarked.exists() and not legacy.exists()
