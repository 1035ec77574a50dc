"""make report: the static page over runs/ and submissions/, built from real files (podium's own plots,
configs and metrics), checked as text and in a real headless Chromium where one is installed."""

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.reports import run_report as report
from podium.cli.main import main
from podium.config import load_config, save_config
from podium.reports.html import build_report, config_differences, correlation
from podium.scoring.metrics import classification_table, confusion

EVIL = "<script>alert('x')</script>"
CLASSES = ["cat", "dog", f"b{EVIL}"]


def _run(runs_dir: Path, name: str, cv: float, seed: int, **changes) -> str:
    """A finished classification run's folder as make train leaves it (metrics, config, plots, per_class)."""
    cfg = load_config(None, {"name": name, "seed": seed, "epochs": 2, **changes})
    run_dir = runs_dir / cfg.run_id
    save_config(cfg, run_dir / "config.yaml")
    rng = np.random.default_rng(seed)
    history = pd.DataFrame({"epoch": range(4), "loss": 1 / np.arange(1, 5), "val_loss": 1.2 / np.arange(1, 5),
                            "accuracy": np.linspace(0.3, 0.6, 4), "val_accuracy": np.linspace(0.25, cv, 4)})
    for fold in (0, 1):
        report.plot_history(history, run_dir / "plots" / f"history-fold-{fold}.png", monitor="val_accuracy")
    truth, predicted = rng.integers(0, 3, 90), rng.integers(0, 3, 90)
    report.plot_confusion(confusion(truth, predicted, 3), CLASSES, run_dir / "plots" / "confusion.png")
    classification_table(truth, predicted, CLASSES).to_csv(run_dir / "per_class.csv")
    folds = [{"fold": k, "best_epoch": 4, "epochs_run": 4, "val_score": cv + d, "val_score_tta": cv + d + 0.01}
             for k, d in ((0, -0.01), (1, 0.01))]
    (run_dir / "metrics.json").write_text(json.dumps({
        "run_id": cfg.run_id, "competition": "demo", "task": "classification", "metric": "accuracy", "folds": folds,
        "cv_mean": cv, "cv_std": 0.01, "cv_tta_mean": cv + 0.01, "cv_tta_std": 0.01, "wall_seconds": 125.0}))
    return cfg.run_id


def _blend(runs_dir: Path, runs: list[str]) -> str:
    blend_dir = runs_dir / "blend-pair-0123abcd"
    blend_dir.mkdir(parents=True)
    (blend_dir / "metrics.json").write_text(json.dumps({
        "kind": "blend", "method": "weights", "runs": runs, "weights": {runs[0]: 0.3, runs[1]: 0.7},
        "cv_mean": 0.6123, "cv_std": 0.004, "in_sample_cv_mean": 0.6301,
        "run_oof_cv": {r: {"mean": 0.5, "std": 0.01} for r in runs}}))
    return blend_dir.name


def _log(submissions_dir: Path, points: list[tuple[float, str]]) -> None:
    submissions_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"time": f"2026-01-0{k + 1} 10:00", "competition": "demo", "file": f"s{k}.csv", "cv": cv,
             "status": "scored" if public else "pending", "public_score": public, "run_id": f"run-{k}"}
            for k, (cv, public) in enumerate(points)]
    pd.DataFrame(rows).to_csv(submissions_dir / "log.csv", index=False)


@pytest.fixture
def workspace(tmp_path):
    runs, subs = tmp_path / "runs", tmp_path / "submissions"
    first = _run(runs, "base", 0.55, 1)
    second = _run(runs, "wide", 0.60, 2, lr=0.01, dropout=0.4)
    blend = _blend(runs, [first, second])
    search = runs / "search-demo"
    (search / "plots").mkdir(parents=True)
    pd.DataFrame({"rank": [1, 2], "lr": ["0.002", EVIL], "val_score": [0.61, 0.58]}).to_csv(
        search / "results.csv", index=False)
    shutil.copyfile(runs / first / "plots" / "confusion.png", search / "plots" / "metric_per_param.png")
    _log(subs, [(0.55, "0.54"), (0.60, "0.62"), (0.6123, "0.615"), (0.58, "0.571"), (0.7, "")])
    return tmp_path, first, second, blend


def test_the_page_shows_runs_blends_searches_and_cv_vs_public(workspace):
    base, first, second, blend = workspace
    built = build_report(base / "runs", base / "submissions")
    page = built.page.read_text(encoding="utf-8")
    assert built.page == base / "runs" / "report" / "index.html"
    assert (built.n_runs, built.n_blends, built.n_searches, built.n_submissions) == (2, 1, 1, 4)
    for text in (first, second, blend, "search-demo", "0.5500 ± 0.0100", "+0.0100", "2m 05s", "0.6123", "0.6301"):
        assert text in page
    # the config differences name what differs from the most common values, not paths or names
    row = re.search(rf"<tr><td>{second}</td>.*?</tr>", page).group(0)
    assert "lr=0.01" in row and "dropout=0.4" in row and "runs_dir" not in row and "name=" not in row
    # every string is escaped: the class name and the search cell with markup show as text
    assert "<script" not in page and html.escape(EVIL) in page
    # the correlation is that of the 4 scored submissions (the pending one has no public score)
    cv, public = np.array([0.55, 0.60, 0.6123, 0.58]), np.array([0.54, 0.62, 0.615, 0.571])
    pearson = np.corrcoef(cv, public)[0, 1]
    spearman = pd.Series(cv).corr(pd.Series(public), method="spearman")
    assert f"Pearson r = <b>{pearson:.4f}</b>" in page and f"ρ = <b>{spearman:.4f}</b>" in page
    assert "n = <b>4</b>" in page
    # every image the page shows is a PNG inside the report folder
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 2 * 3 + 1 + 1  # two runs' curves and confusion, the search plot, the CV chart
    for src in sources:
        image = built.page.parent / html.unescape(src)
        assert image.suffix == ".png" and image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the CV chart is drawn from the 4 scored rows of the log, named by run (what it draws: test_report.py)
    [chart] = [built.page.parent / html.unescape(src) for src in sources if "cv_vs_public" in src]
    expected = report.plot_cv_vs_public(cv.tolist(), public.tolist(), [f"run-{k}" for k in range(4)],
                                        base / "expected.png")
    assert chart.read_bytes() == expected.read_bytes()
    # worst classes: lowest recall first, at most five
    assert "Worst 3 classes by recall" in page


def test_few_scored_submissions_say_the_correlation_needs_more(workspace):
    base, *_ = workspace
    _log(base / "submissions", [(0.55, "0.54"), (0.6, "0.61")])
    page = build_report(base / "runs", base / "submissions").page.read_text(encoding="utf-8")
    assert "Only 2 scored submission(s)" in page and "Pearson" not in page
    (base / "submissions" / "log.csv").unlink()
    page = build_report(base / "runs", base / "submissions").page.read_text(encoding="utf-8")
    assert "No scored submissions" in page


def test_the_report_is_regenerated_not_edited(workspace):
    base, first, *_ = workspace
    built = build_report(base / "runs", base / "submissions")
    (built.page.parent / "stale.txt").write_text("left from an old build")
    shutil.rmtree(base / "runs" / first)
    rebuilt = build_report(base / "runs", base / "submissions")
    page = rebuilt.page.read_text(encoding="utf-8")
    assert f"<tr><td>{first}</td>" not in page and f'href="#{first}"' not in page  # (the blend still names it)
    assert not (rebuilt.page.parent / "stale.txt").exists() and not (rebuilt.page.parent / "img" / first).exists()
    assert not list((base / "runs").glob(".report.building-*"))


def test_correlation_and_config_differences():
    pearson, spearman = correlation(np.array([1, 2, 3, 4.0]), np.array([1, 4, 9, 16.0]))
    assert spearman == pytest.approx(1.0) and 0.9 < pearson < 1.0
    assert all(np.isnan(v) for v in correlation(np.array([1, 1, 1.0]), np.array([1, 2, 3.0])))
    diffs = config_differences([{"lr": 1, "seed": 1, "runs_dir": "a"}, {"lr": 1, "seed": 2, "runs_dir": "b"},
                                {"lr": 3, "seed": 1, "runs_dir": "c"}])
    assert diffs == [{}, {"seed": 2}, {"lr": 3}]


def test_make_report_cli_prints_where_the_page_is(workspace, capsys):
    base, *_ = workspace
    assert main(["report", "--runs-dir", str(base / "runs"), "--submissions-dir", str(base / "submissions")]) == 0
    out = capsys.readouterr().out
    assert "index.html" in out and "file://" in out and "2 runs" in out


# ---------------------------------------------------------------------------------- a real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH: install Debian's package (apt-get install -y chromium; "
                             ".ci/run does when apt is available) to check the report in a real browser")


def _console_errors(stderr: str) -> list[str]:
    """Chromium's log lines for page console messages and uncaught exceptions (the page has no script)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def _screenshot(page: Path, png: Path, size: str = "1200,2000") -> subprocess.CompletedProcess:
    return subprocess.run([*BROWSER, f"--screenshot={png}", f"--window-size={size}", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)


@needs_chromium
def test_the_console_check_catches_a_script_error(tmp_path):
    """The check below is only worth something if it sees an error when there is one."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><p>x</p><script>throw new Error("podium-boom")</script></body></html>')
    done = _screenshot(bad, tmp_path / "bad.png", "400,300")
    assert any("podium-boom" in line for line in _console_errors(done.stderr)), done.stderr[-2000:]


@needs_chromium
def test_the_page_loads_in_headless_chromium_without_errors_and_is_not_blank(workspace):
    from PIL import Image

    base, first, *_ = workspace
    built = build_report(base / "runs", base / "submissions")
    png = base / "screenshot.png"
    done = _screenshot(built.page, png)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _console_errors(done.stderr) == []
    pixels = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert pixels.shape == (2000, 1200) and pixels.std() > 10  # text, tables and figures, not a blank page
    assert (pixels < 128).mean() > 0.01  # dark pixels: text and plot lines were drawn
    dom = subprocess.run([*BROWSER, "--dump-dom", built.page.resolve().as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert dom.count("<table") >= 5 and first in dom and "CV vs public score" in dom


def test_runs_scored_by_different_metrics_get_a_table_each_and_a_direction_aware_tta_gain():
    from podium.reports.html import RunInfo, runs_section

    def run(run_id, metric, direction, cv, tta):
        return RunInfo(run_id, Path(run_id), {"metric": metric, "direction": direction, "cv_mean": cv, "cv_std": 0.01,
                                              "cv_tta_mean": tta, "cv_tta_std": 0.01, "folds": [{}]},
                       {"name": run_id})

    one = runs_section([run("acc-1", "accuracy", "max", 0.8, 0.81), run("acc-2", "accuracy", "max", 0.7, 0.72)])
    assert "<h3>" not in one and "different metrics" not in one  # one metric: one table, as before
    page = runs_section([run("acc-1", "accuracy", "max", 0.8, 0.81), run("ll-1", "log_loss", "min", 0.40, 0.43)])
    assert "scored by 2 different metrics" in page and page.count("<table") == 2
    assert "<h3>Scored by accuracy (higher is better)</h3>" in page
    assert "<h3>Scored by log_loss (lower is better)</h3>" in page
    log_loss_table = page[page.index("Scored by log_loss"):]
    assert "acc-1" not in log_loss_table and "-0.0300" in log_loss_table  # 0.40 -> 0.43: TTA lost 0.03
