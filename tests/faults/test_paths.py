"""Classes 1 and 7 of issue 21: podium deletes only what it made, writes only under the folders it is given,
and a folder setting that is a file is one clear error.

The mechanism (podium.paths): every name that becomes a path is checked where it is read (`check_name`);
every folder podium makes to own carries a marker, checked before any delete (`mark_made`/`remove_made`);
a killed writer's staging folder is swept by marker and dead pid (`remove_stale`); folder settings that are
files are refused (`check_folder`).
"""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from podium.blend import load_blend_spec
from podium.cli.main import main
from podium.config import load_config
from podium.data.competitions import load_competition
from podium.errors import PodiumError
from podium.kaggle.kernels import load_kernel_spec
from podium.kaggle.submit import run_config
from podium.paths import MARKER, check_name, mark_made, remove_made, remove_stale
from podium.reports.html import build_report
from podium.search.study import load_space
from test_html_report import _run

BAD_NAMES = ["", "   ", "a/b", "../up", "..", "/abs/path", "a\\b", "tab\there", "new\nline", "nul\x00",
             ".hidden", "C:evil", " lead", "trail ", "x" * 300, "dots..dots"]
GOOD_NAMES = ["baseline", "b0-effnet_2", "run.v2", "effnet-b0-1a2b3c4d", "Ünïcode"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_a_name_that_is_not_one_folder_name_is_refused_naming_the_key(bad):
    with pytest.raises(PodiumError, match="'blend name' becomes a folder name") as caught:
        check_name(bad, "blend name")
    assert "Fix:" in str(caught.value)


@pytest.mark.parametrize("good", GOOD_NAMES)
def test_plain_names_pass(good):
    assert check_name(good, "name") == good


@pytest.mark.parametrize("bad", ["../outside", "a/b", "", ".hidden", "x\ty"])
def test_a_config_name_that_would_leave_runs_is_refused_before_any_folder(tmp_path, bad):
    with pytest.raises(PodiumError, match="'name' becomes a folder name"):
        load_config(None, {"name": bad, "runs_dir": str(tmp_path / "runs")})
    assert not (tmp_path / "runs").exists() and not (tmp_path / "outside").exists()


def test_a_pseudo_run_that_is_a_path_is_refused():
    with pytest.raises(PodiumError, match="'pseudo_run' becomes a folder name"):
        load_config(None, {"pseudo_run": "../../elsewhere", "pseudo_threshold": 0.9})


@pytest.mark.parametrize("key", ["runs_dir", "submissions_dir", "data_dir"])
def test_a_folder_key_that_is_a_file_is_a_clear_error(tmp_path, key):
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(PodiumError, match=f"'{key}' must be a folder"):
        load_config(None, {key: str(tmp_path / "taken")})
    with pytest.raises(PodiumError, match="lies under .*taken, which is a file"):
        load_config(None, {key: str(tmp_path / "taken" / "below")})


def test_blend_run_ids_and_names_are_checked_where_they_are_read(tmp_path):
    with pytest.raises(PodiumError, match="'runs' becomes a folder name"):
        load_blend_spec(runs=["a-1", "../../b-2"])
    spec = tmp_path / "blend.yaml"
    spec.write_text("runs: [a-1, b-2]\nname: ../up\n")
    with pytest.raises(PodiumError, match="folder name"):
        load_blend_spec(spec)


def test_search_kernel_competition_and_submit_names_are_checked(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("name: ../../escape\nparams:\n  lr: [0.001, 0.01]\n")
    with pytest.raises(PodiumError, match="name \\(search space"):
        load_space(space)
    kernel = tmp_path / "kernel.yaml"
    kernel.write_text("slug: ../../escape\n")
    with pytest.raises(PodiumError, match="slug \\(kernel spec\\)"):
        load_kernel_spec(kernel)
    competition = tmp_path / "comp.yaml"
    competition.write_text("slug: ../escape\n")
    with pytest.raises(PodiumError, match="slug \\(competition spec"):
        load_competition(str(competition))
    with pytest.raises(PodiumError, match="'RUN' becomes a folder name"):
        run_config("../../etc", runs_dir=str(tmp_path))


def test_the_cli_refuses_a_run_name_with_a_slash_without_a_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["folds", "name=team/run1"]) == 2
    err = capsys.readouterr().err
    assert "'name' becomes a folder name" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------------------------------- deleting only ours
def test_remove_made_deletes_a_marked_folder_and_refuses_anything_else(tmp_path):
    ours = mark_made(tmp_path / "ours", "a test")
    (ours / "file").write_text("x")
    assert remove_made(ours, "a test") and not ours.exists()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("years of work")
    with pytest.raises(PodiumError, match="podium did not make it"):
        remove_made(theirs, "a test")
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-link").symlink_to(theirs)
    for path in (tmp_path / "a-file", tmp_path / "a-link"):
        with pytest.raises(PodiumError, match="will not delete"):
            remove_made(path, "a test")
    assert (theirs / "thesis.tex").read_text() == "years of work" and (tmp_path / "a-file").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert remove_made(empty, "a test") and not empty.exists()  # nothing in it to lose
    with pytest.raises(PodiumError, match="will not take over"):
        mark_made(theirs, "a test")


@pytest.fixture
def runs_dir(tmp_path):
    runs = tmp_path / "runs"
    _run(runs, "one", 0.6, 1)
    return runs


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("where", ["runs", "parent", "holding-files", "submissions"])
def test_report_out_never_deletes_what_it_did_not_make(tmp_path, runs_dir, where):
    subs = tmp_path / "submissions"
    subs.mkdir()
    (subs / "log.csv").write_text("time,cv\n")
    out = {"runs": runs_dir, "parent": tmp_path, "submissions": subs, "holding-files": tmp_path / "mine"}[where]
    if where == "holding-files":
        out.mkdir()
        (out / "notes.md").write_text("mine")
    before = {p: _files(p) for p in (runs_dir, subs, tmp_path)}
    with pytest.raises(PodiumError):
        build_report(runs_dir, subs, out)
    assert {p: _files(p) for p in (runs_dir, subs, tmp_path)} == before


def test_report_out_may_be_new_empty_or_its_own_previous_report(tmp_path, runs_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (tmp_path / "new" / "deeper", empty, tmp_path / "new" / "deeper"):  # the last: replaces its own
        built = build_report(runs_dir, tmp_path / "submissions", out)
        assert built.page.is_file() and (out / MARKER).is_file()
    old = tmp_path / "old-report"  # as an older podium left it: no marker
    old.mkdir()
    (old / "index.html").write_text("<!DOCTYPE html><html><head><title>podium report</title></head></html>")
    (old / "img").mkdir()
    assert build_report(runs_dir, tmp_path / "submissions", old).page.is_file()


def test_a_killed_report_leaves_no_staging_folder_for_good(tmp_path, runs_dir):
    """A real kill -9 of a process holding a marked staging folder; the next report sweeps it. A live
    writer's staging folder and a folder podium did not mark are left alone."""
    staging = runs_dir / f".report.building-killed"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from podium.paths import mark_made
        mark_made({str(staging)!r}, "the report being built")
        (__import__("pathlib").Path({str(staging)!r}) / "big.png").write_bytes(b"x" * 100000)
        print("ready", flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert child.stdout.readline().strip() == "ready"
    live = mark_made(runs_dir / f".report.building-{os.getpid()}-live", "the report being built")
    unmarked = runs_dir / ".report.building-users"
    unmarked.mkdir()
    (unmarked / "keep.txt").write_text("not podium's")
    assert remove_stale(runs_dir, ".report.building-") == []  # the writer is alive: nothing is taken from it
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    older = runs_dir / f".report.building-{child.pid}"  # as an older podium named it, unmarked
    older.mkdir()
    (older / "index.html").write_text("half")
    build_report(runs_dir, tmp_path / "submissions")
    assert not staging.exists() and not older.exists()
    assert live.is_dir() and (unmarked / "keep.txt").read_text() == "not podium's"


def test_make_data_does_not_replace_a_data_folder_podium_did_not_unpack(tmp_path):
    from tests_support import make_data

    mine = tmp_path / "data" / "demo"
    mine.mkdir(parents=True)
    (mine / "my-labels.csv").write_text("id,label\n")
    with pytest.raises(PodiumError, match="podium did not make it"):
        make_data("demo", str(tmp_path / "data"))
    assert (mine / "my-labels.csv").read_text() == "id,label\n"
    (tmp_path / "data-file").write_text("x")
    with pytest.raises(PodiumError, match="'data_dir' must be a folder"):
        make_data("demo", str(tmp_path / "data-file"))
