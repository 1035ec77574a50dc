"""The one progress bar of every long stage (indexing, caching, duplicate search, prediction, blending).

On a terminal it is tqdm's bar. Where stderr is not a terminal (a Kaggle kernel's log, CI, `make ... > log`)
tqdm's carriage-return redraws become one giant line or thousands of lines, so there the same stage
prints plain lines instead: one at each 10% step and one at least every `interval` seconds, each with
done/total, the rate and the ETA, e.g.

    index: 600/1200 img (50%), 85.3 img/s, elapsed 00:07, ETA 00:07
"""

from __future__ import annotations

import math
import sys
import time
from typing import Callable, Iterable, Iterator, TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")
INTERVAL = 30.0  # seconds between two plain lines when no 10% step is crossed (a slow stage still shows life)
STEPS = 10  # plain lines at every 1/STEPS of the total


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool = True, *, file: TextIO | None = None, tty: bool | None = None,
             clock: Callable[[], float] = time.monotonic, interval: float = INTERVAL) -> Iterator[T]:
    """`iterable`'s items, reporting progress on `file` (stderr): tqdm on a terminal, plain lines elsewhere.

    `tty` overrides the terminal check and `clock` the time source (tests inject both)."""
    if not enabled:
        return iter(iterable)
    stream = file if file is not None else sys.stderr
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if tty is None:
        tty = bool(getattr(stream, "isatty", lambda: False)())
    if tty:
        return iter(tqdm(iterable, total=total, desc=desc, unit=unit, file=stream))
    return _plain(iterable, total, desc, unit, stream, clock, interval)


def progress_line(desc: str, done: int, total: int | None, elapsed: float, unit: str = "it") -> str:
    """One plain line: done/total, share, rate, elapsed and ETA (`?` while nothing is done yet)."""
    rate = done / elapsed if elapsed > 0 and done else None
    rate_text = f"{tqdm.format_sizeof(rate)} {unit}/s" if rate else f"? {unit}/s"
    if total:
        eta = tqdm.format_interval((total - done) / rate) if rate else "?"
        head = f"{done}/{total} {unit} ({100 * done / total:.0f}%)"
        return f"{desc}: {head}, {rate_text}, elapsed {tqdm.format_interval(elapsed)}, ETA {eta}"
    return f"{desc}: {done} {unit}, {rate_text}, elapsed {tqdm.format_interval(elapsed)}"


def _plain(iterable: Iterable[T], total: int | None, desc: str, unit: str, stream: TextIO,
           clock: Callable[[], float], interval: float) -> Iterator[T]:
    started = last = clock()
    done, step = 0, 0
    for item in iterable:
        yield item
        done += 1
        now = clock()
        reached = math.floor(done * STEPS / total) if total else 0
        if reached > step or now - last >= interval or (total and done == total):
            step = max(step, reached)
            last = now
            print(progress_line(desc, done, total, now - started, unit), file=stream, flush=True)
