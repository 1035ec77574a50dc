"""A folder podium may not write (read-only mount, another user's folder): one PodiumError naming the file,
the folder and the fix, from every writer (cache, folds, make data) and through the CLI without a traceback;
reading what is already there still works. And written files follow the user's umask like any tool's."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from podium.cli.main import main
from podium.data.cache import load_cached
from podium.data.index import load_index
from podium.errors import PodiumError
from podium.io import atomic_path, write_csv, write_fault, write_text
from tests_support import make_data
from small_disk import needs_mount, remount, small_disk

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def readonly_data(tmp_path):
    """`make data COMP=demo` done, then the data folder remounted read-only (as a read-only bind mount)."""
    data = tmp_path / "data"
    with small_disk(data, "32m"):
        make_data("demo", str(data))
        remount(data, "ro")
        yield data


@needs_mount
def test_the_cache_in_a_read_only_data_folder_is_a_clear_error(readonly_data):
    root = readonly_data / "demo"
    rows = load_index(root / "index.parquet")
    rows = rows[(rows["split"] == "train") & rows["ok"]].head(50)
    with pytest.raises(PodiumError) as caught:
        load_cached(rows, root, 32, root / "cache", progress=False)
    text = str(caught.value)
    assert "read-only file system" in text and str(root) in text
    assert "remount it read-write" in text and "data_dir" in text


@needs_mount
def test_make_folds_force_in_a_read_only_data_folder_ends_in_one_line_not_a_traceback(readonly_data, tmp_path,
                                                                                      capsys):
    code = main(["folds", "--force", f"data_dir={readonly_data}", f"runs_dir={tmp_path / 'runs'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: Cannot write") and "read-only file system" in err and "Traceback" not in err


@needs_mount
def test_make_data_reads_a_read_only_folder_and_refuses_only_to_rewrite_it(readonly_data):
    summary = make_data("demo", str(readonly_data))  # nothing to write: a correct result
    assert summary.n_train == 2000 and not summary.extracted
    with pytest.raises(PodiumError, match="read-only file system"):
        make_data("demo", str(readonly_data), force=True)


def test_a_folder_of_another_user_is_named_with_the_fix(tmp_path):
    """EACCES, for real: as root, the write runs in a child process as `nobody`; otherwise as this user."""
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        base.chmod(0o755)
        locked = base / "locked"
        locked.mkdir(mode=0o555)
        locked.chmod(0o555)
        script = ("import sys; sys.path.insert(0, sys.argv[2])\n"
                  "from podium.errors import PodiumError\nfrom podium.io import write_text\n"
                  "try:\n    write_text(sys.argv[1], 'x')\nexcept PodiumError as exc:\n    print(exc)\n")
        as_nobody = []
        if os.geteuid() == 0:  # root writes anywhere: drop to `nobody` (setpriv keeps the python reachable)
            if not shutil.which("setpriv"):
                pytest.skip("running as root without setpriv: cannot write as another user")
            as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        done = subprocess.run([*as_nobody, sys.executable, "-c", script, str(locked / "notes.txt"), str(SRC)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert f"Cannot write {locked / 'notes.txt'}: the folder {locked} is not writable by this user" in done.stdout
        assert "chmod u+w" in done.stdout
    finally:
        (base / "locked").chmod(0o755)
        for path in sorted(base.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        base.rmdir()


def test_a_read_error_is_not_reported_as_a_write_fault(tmp_path):
    assert write_fault(PermissionError(13, "Permission denied", "/etc/shadow-like"), tmp_path / "out.csv") is None


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        written = [write_text(tmp_path / "a.txt", "x"), write_csv(tmp_path / "b.csv", pd.DataFrame({"a": [1]}))]
        with atomic_path(tmp_path / "c.bin") as tmp:
            tmp.write_bytes(b"\0")
        written.append(tmp_path / "c.bin")
    finally:
        os.umask(old)
    assert [oct(stat.S_IMODE(p.stat().st_mode)) for p in written] == [oct(mode)] * 3


def test_a_private_file_keeps_the_mode_asked_for(tmp_path):
    old = os.umask(0o002)
    try:
        with atomic_path(tmp_path / "secret.json", mode=0o600) as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "secret.json").stat().st_mode) == 0o600
