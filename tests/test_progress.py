"""podium.progress: tqdm on a terminal; a Kaggle log (no TTY) gets a bounded number of plain lines, each
with done/total, rate and ETA. The clock is injected: no assertion depends on real durations."""

import io
import re
import time

import pytest

from podium.progress import INTERVAL, progress, progress_line
from podium.tasks import get_task

LINE = re.compile(r"^(?P<desc>.+): (?P<done>\d+)/(?P<total>\d+) img \(\d+%\), [\d.]+\w? img/s, "
                  r"elapsed \d\d:\d\d, ETA (\d\d:\d\d|\?)$")


class Clock:
    """A clock that advances `step` seconds each time it is read."""

    def __init__(self, step: float):
        self.reads, self.step = 0, step

    def __call__(self) -> float:
        self.reads += 1
        return (self.reads - 1) * self.step


def test_plain_lines_at_every_tenth_with_rate_and_eta():
    out = io.StringIO()
    items = list(progress(range(100), desc="stage", unit="img", file=out, tty=False, clock=Clock(0.1)))
    assert items == list(range(100))
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in out.getvalue()
    assert lines[4] == "stage: 50/100 img (50%), 10.0 img/s, elapsed 00:05, ETA 00:05"
    assert lines[-1] == "stage: 100/100 img (100%), 10.0 img/s, elapsed 00:10, ETA 00:00"
    assert all(LINE.match(line) for line in lines)


def test_a_slow_stage_prints_between_tenths_every_interval():
    out = io.StringIO()
    list(progress(range(1000), desc="slow", unit="img", file=out, tty=False, clock=Clock(1.0), interval=60))
    lines = out.getvalue().splitlines()
    # 1000 s in all: the ten 10% steps (every 100 s), and in between a line once 60 s passed since the last
    assert len(lines) == 20
    assert lines[0] == "slow: 60/1000 img (6%), 1.00 img/s, elapsed 01:00, ETA 15:40"


def test_unknown_total_says_count_and_rate_only():
    out = io.StringIO()
    list(progress(iter(range(5)), desc="scan", unit="file", file=out, tty=False, clock=Clock(10.0), interval=20))
    lines = out.getvalue().splitlines()
    assert lines == ["scan: 2 file, 0.10 file/s, elapsed 00:20", "scan: 4 file, 0.10 file/s, elapsed 00:40"]


def test_progress_line_before_anything_is_done():
    assert progress_line("cache 32px", 0, 60, 0.0, "img") == "cache 32px: 0/60 img (0%), ? img/s, elapsed 00:00, ETA ?"


def test_a_terminal_gets_tqdm_and_disabled_prints_nothing():
    out = io.StringIO()
    assert list(progress(range(3), desc="tty", unit="img", file=out, tty=True)) == [0, 1, 2]
    assert "\r" in out.getvalue() and "3/3" in out.getvalue() and "img/s" in out.getvalue()
    quiet = io.StringIO()
    assert list(progress(range(3), desc="off", file=quiet, enabled=False)) == [0, 1, 2]
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("stage", ["index", "cache"])
def test_a_real_stage_without_tty_prints_bounded_plain_lines(stage, demo_root, tmp_path, capsys):
    """Indexing and caching the demo with stderr captured (no TTY, as in a Kaggle log)."""
    from podium.data.competitions import load_competition
    from podium.data.cache import load_cached
    from podium.data.index import build_index

    started = time.monotonic()
    index = build_index(load_competition("demo"), demo_root, get_task("classification"), progress=stage == "index")
    if stage == "cache":
        capsys.readouterr()
        started = time.monotonic()
        rows = index[index["ok"]].reset_index(drop=True)
        load_cached(rows, demo_root, 16, tmp_path / "cache", progress=True)
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(stage)]
    assert lines and "\r" not in err
    # ten 10% steps, plus at most one line per INTERVAL seconds the stage took (however slow the machine)
    assert len(lines) <= 10 + int(elapsed // INTERVAL) + 1
    for line in lines:
        match = LINE.match(line)
        assert match, line
    assert LINE.match(lines[-1])["done"] == LINE.match(lines[-1])["total"]
