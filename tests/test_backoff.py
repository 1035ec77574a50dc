"""podium.backoff: the one schedule podium waits on Kaggle with. A recorded sleep and a clock that the sleeps
advance stand in for time, so the tests take none and never depend on the machine's load."""

import pytest

from podium.backoff import PollSchedule, Polling, exponential_wait, waits_within


class Time:
    """A clock that moves only when something sleeps; the sleeps are recorded."""

    def __init__(self):
        self.now, self.slept = 100.0, []

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


def test_each_wait_grows_by_the_factor_up_to_the_cap():
    assert [exponential_wait(2, 3, k, 60) for k in range(6)] == [2, 6, 18, 54, 60, 60]
    assert exponential_wait(5, 1, 10, 60) == 5  # factor 1: a fixed interval


def test_waits_within_a_window_add_up_to_it_and_the_last_is_cut_short():
    waits = waits_within(1, 2, 10, 30)
    assert waits == [1, 2, 4, 8, 10, 5]  # 1+2+4+8+10 = 25, the last wait is what is left of 30
    assert sum(waits) == 30
    assert waits_within(1, 2, 10, 0) == []
    assert waits_within(50, 2, 100, 30) == [30]  # one wait, cut to the window


def test_polling_sleeps_growing_gaps_and_stops_before_the_timeout():
    time = Time()
    polling = Polling(PollSchedule(timeout=100, interval=10, max_interval=25, factor=2, sleep=time.sleep,
                                   clock=time.clock))
    checks = 0
    while polling.wait(polling.elapsed()):
        checks += 1
    assert time.slept == [10, 20, 25, 25]  # 80 s: a fifth gap of 25 would end after 100 s, so none is slept
    assert checks == 4 and polling.elapsed() == 80
    assert not polling.wait(polling.elapsed()) and time.slept == [10, 20, 25, 25]  # refused: no sleep either


def test_polling_counts_from_its_own_start():
    time = Time()
    schedule = PollSchedule(timeout=15, interval=10, sleep=time.sleep, clock=time.clock)
    time.sleep(1000)  # time before the wait began does not count against it
    polling = Polling(schedule)
    assert polling.elapsed() == 0
    assert polling.wait(polling.elapsed()) and polling.elapsed() == 10
    assert not polling.wait(polling.elapsed())  # 10 + 15 > 15
    assert polling.interval == pytest.approx(15)  # grown once by the default factor 1.5
