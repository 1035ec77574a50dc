"""How podium waits on Kaggle: waits that grow by a factor up to a cap, bounded by a deadline or a window.

One schedule for retries (RetryPolicy), for polling a score or a kernel run (PollPolicy, StatusPolicy) and
for looking for a create whose answer was lost. `sleep` and `clock` are injected, so tests take no time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

Sleep = Callable[[float], None]
Clock = Callable[[], float]


def exponential_wait(first: float, factor: float, attempt: int, cap: float) -> float:
    """The wait before retry `attempt` (0-based): first * factor ** attempt, at most `cap`."""
    return min(first * factor ** attempt, cap)


def waits_within(first: float, factor: float, cap: float, window: float) -> list[float]:
    """Growing waits (first, first*factor, ... each at most `cap`) that add up to `window`; the last is cut short."""
    waits: list[float] = []
    while sum(waits) < window:
        step = min(exponential_wait(first, factor, len(waits), cap), window - sum(waits))
        if step <= 0:
            break
        waits.append(step)
    return waits


@dataclass
class PollSchedule:
    """A bounded wait with backoff: checks `interval` apart, each gap `factor` longer up to `max_interval`,
    none after `timeout` seconds."""

    timeout: float = 1800.0
    interval: float = 10.0
    max_interval: float = 120.0
    factor: float = 1.5
    sleep: Sleep = time.sleep
    clock: Clock = time.monotonic


class Polling:
    """One wait under a PollSchedule: started now, with the gap before the next check."""

    def __init__(self, schedule: PollSchedule):
        self.schedule = schedule
        self.started = schedule.clock()
        self.interval = schedule.interval

    def elapsed(self) -> float:
        return self.schedule.clock() - self.started

    def wait(self, elapsed: float) -> bool:
        """Sleep until the next check and grow the gap; False, without sleeping, when that check would come
        after the timeout."""
        if elapsed + self.interval > self.schedule.timeout:
            return False
        self.schedule.sleep(self.interval)
        self.interval = min(self.interval * self.schedule.factor, self.schedule.max_interval)
        return True
