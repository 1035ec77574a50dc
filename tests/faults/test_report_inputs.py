"""Class 3 of issue 21: hand-edited or malformed files never crash `make report`.

Each case writes one damaged file into a runs/ made by the tiny-run helpers of test_html_report.py; the
report is built, the damaged run (or table) is left out, and the page names the file in its "Left out"
section. Also: no ± for a one-fold holdout, and no tracking claim where nothing varies.
"""

import html
import json

import pytest

from podium.cli.main import main
from podium.errors import PodiumError
from podium.reports.html import build_report
from test_html_report import _blend, _log, _run


@pytest.fixture
def runs(tmp_path):
    runs_dir = tmp_path / "runs"
    good = _run(runs_dir, "good", 0.6, 1)
    bad = _run(runs_dir, "bad", 0.5, 2)
    return runs_dir, good, bad


def _page(runs_dir, subs=None) -> str:
    built = build_report(runs_dir, subs or runs_dir.parent / "submissions")
    return html.unescape(built.page.read_text(encoding="utf-8"))


def _left_out(page: str) -> str:
    assert "<h2>Left out</h2>" in page, "the page has no note on what it left out"
    return page.split("<h2>Left out</h2>", 1)[1].split("<h2>", 1)[0]


METRICS_DAMAGE = {
    "a list": (b"[1, 2, 3]", "holds a list"),
    "a string": (b'"finished"', "holds a str"),
    "cv_mean as text": (None, "cv_mean is 'high'"),
    "folds as a number": (None, "folds is not a list"),
    "weights as a list": (None, "weights is a list"),
    "cut JSON": (b'{"cv_mean": 0.5, "fo', "cannot be read"),
    "latin-1 bytes": ('{"competition": "caf\xe9"}'.encode("latin-1"), "cannot be read"),
    "empty": (b"", "cannot be read"),
}


@pytest.mark.parametrize("case", sorted(METRICS_DAMAGE))
def test_a_damaged_metrics_file_leaves_that_run_out_with_a_note(runs, case):
    runs_dir, good, bad = runs
    path = runs_dir / bad / "metrics.json"
    content, said = METRICS_DAMAGE[case]
    if content is None:
        metrics = json.loads(path.read_text())
        key = {"cv_mean as text": "cv_mean", "folds as a number": "folds", "weights as a list": "weights"}[case]
        metrics[key] = {"cv_mean": "high", "folds": 3, "weights": [0.5, 0.5]}[key]
        content = json.dumps(metrics).encode()
    path.write_bytes(content)
    page = _page(runs_dir)
    note = _left_out(page)
    assert str(path) in note and said in note
    assert good in page.split("<h2>Left out</h2>")[0] or good in page  # the good run is still shown
    assert f'id="{bad}"' not in page


@pytest.mark.parametrize("content", [b"- a\n- list\n", b"just text", b"key: [unclosed\n", b"\xff\xfe\x00bad"])
def test_a_config_of_the_wrong_shape_leaves_that_run_out_with_a_note(runs, content):
    runs_dir, good, bad = runs
    path = runs_dir / bad / "config.yaml"
    path.write_bytes(content)
    note = _left_out(_page(runs_dir))
    assert str(path) in note


@pytest.mark.parametrize("content", [
    b"time,cv,public_score\n2026-01-01,0.5,0.4,extra,fields\n",  # ragged row
    "time,cv,public_score,run_id\n2026-01-01,0.5,0.4,caf\xe9\n".encode("latin-1"),  # not UTF-8
    b"",  # empty
    b'time,cv,public_score\n"2026-01-01,0.5,0.4\n',  # unclosed quote
])
def test_a_malformed_submissions_log_is_named_and_the_rest_is_shown(runs, tmp_path, content):
    runs_dir, good, _ = runs
    subs = tmp_path / "submissions"
    subs.mkdir()
    (subs / "log.csv").write_bytes(content)
    page = _page(runs_dir, subs)
    assert str(subs / "log.csv") in _left_out(page)
    assert f'id="{good}"' in page


@pytest.mark.parametrize("content", [b"trial,val_mean\n1,0.5,9,9\n", b"\xff\xfe\xfd", b""])
def test_a_malformed_search_table_is_named_and_the_rest_is_shown(runs, content):
    runs_dir, good, _ = runs
    search = runs_dir / "search-demo"
    search.mkdir()
    (search / "results.csv").write_bytes(content)
    page = _page(runs_dir)
    assert str(search / "results.csv") in _left_out(page)
    assert f'id="{good}"' in page


def test_a_damaged_per_class_table_leaves_that_run_out_with_a_note(runs):
    runs_dir, good, bad = runs
    (runs_dir / bad / "per_class.csv").write_text(",recall,support\ncat,high,many\n")
    page = _page(runs_dir)
    assert str(runs_dir / bad) in _left_out(page)
    assert f'id="{good}"' in page and f'id="{bad}"' not in page


def test_a_damaged_blend_record_is_left_out_with_a_note(runs):
    runs_dir, good, bad = runs
    blend = _blend(runs_dir, [good, bad])
    path = runs_dir / blend / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["run_oof_cv"] = {good: 0.5}
    path.write_text(json.dumps(metrics))
    assert str(path.parent) in _left_out(_page(runs_dir))


@pytest.mark.parametrize("which", ["runs_dir", "submissions_dir", "out"])
def test_a_folder_setting_that_is_a_file_is_a_clear_error(runs, tmp_path, which):
    runs_dir, _, _ = runs
    paths = {"runs_dir": runs_dir, "submissions_dir": tmp_path / "submissions", "out": tmp_path / "page"}
    if which == "runs_dir":
        paths["runs_dir"] = tmp_path / "runs-file"
    paths[which].write_text("a file")
    with pytest.raises(PodiumError, match="must be a folder") as caught:
        build_report(paths["runs_dir"], paths["submissions_dir"], paths["out"])
    assert str(paths[which]) in str(caught.value)
    assert paths[which].read_text() == "a file"


def test_the_cli_prints_one_error_for_an_out_that_is_a_file(runs, tmp_path, capsys):
    runs_dir, _, _ = runs
    (tmp_path / "page.html").write_text("mine")
    assert main(["report", "--runs-dir", str(runs_dir), "--out", str(tmp_path / "page.html")]) == 2
    err = capsys.readouterr().err
    assert "must be a folder" in err and "Traceback" not in err


# ---------------------------------------------------------------------------- what the page claims
def test_a_one_fold_holdout_shows_no_spread(tmp_path):
    runs_dir = tmp_path / "runs"
    run = _run(runs_dir, "holdout", 0.8624, 1, val_split=0.2)
    path = runs_dir / run / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["folds"], metrics["cv_std"], metrics["cv_tta_std"] = metrics["folds"][:1], 0.0, 0.0
    path.write_text(json.dumps(metrics))
    _run(runs_dir, "kfold", 0.7, 2)
    page = _page(runs_dir)
    assert "0.8624 ± 0.0000" not in page and "0.8624" in page
    assert "0.7000 ± 0.0100" in page  # several folds keep their spread


@pytest.mark.parametrize("points", [
    [(0.80, "0.70"), (0.80, "0.72"), (0.80, "0.75")],  # constant CV
    [(0.70, "0.75"), (0.80, "0.75"), (0.90, "0.75"), (0.85, "0.75")],  # constant public score
    [(0.70, "0.75"), (0.70, "0.75")],  # one point twice
])
def test_no_variance_makes_no_tracking_claim(runs, tmp_path, points):
    runs_dir, _, _ = runs
    _log(tmp_path / "submissions", points)
    page = _page(runs_dir, tmp_path / "submissions")
    section = page.split("CV vs public score</h2>", 1)[1].split("<h2>", 1)[0]
    assert "the same" in section and "no chart or correlation can say" in section
    assert "does not track" not in section and "ranks submissions as" not in section


def test_a_plot_that_cannot_be_copied_is_named_and_the_page_builds(runs):
    runs_dir, good, bad = runs
    plot = runs_dir / bad / "plots" / "confusion.png"
    plot.unlink()
    plot.mkdir()  # is_file() is False: simply not shown
    search = runs_dir / "search-demo"
    (search / "plots" / "lr.png").mkdir(parents=True)
    (search / "results.csv").write_text("trial,val_mean\n0,0.5\n")
    page = _page(runs_dir)
    assert "search-demo/plots/lr.png cannot be shown" in page and f'id="{good}"' in page
