"""core/progress.py and core/repeats.py with a fake clock: [k/N], spend against the estimate, elapsed and time left;
the quota line said again only when it changed, at most every 30 s."""

from __future__ import annotations

import logging

import pytest

from storytree_build.core.progress import Progress, clock_text
from storytree_build.core.repeats import RepeatGate
from storytree_build.providers.rate_limit import ModelStats, RateLimiter


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (5.4, "0:05"), (62, "1:02"), (725, "12:05"),
                                           (3723, "1:02:03"), (-3, "0:00")])
def test_clock_text(seconds: float, text: str) -> None:
    assert clock_text(seconds) == text


def test_k_counts_each_paid_target_once_and_ends_at_n() -> None:
    clock = FakeClock()
    progress = Progress(["a", "b", "c", "d"], 12.80, "USD", clock)
    assert (progress.done, progress.total) == (0, 4)
    assert progress.finish("a") == 1
    assert progress.finish("a") is None  # finished once (an outcome, then a failure of the same target)
    assert progress.finish("page:x") is None  # not a paid target of the plan
    assert [progress.finish(t) for t in ("c", "b", "d")] == [2, 3, 4]
    assert progress.done == progress.total == 4


def test_time_left_is_the_pace_so_far() -> None:
    clock = FakeClock()
    progress = Progress(["a", "b", "c", "d"], 12.80, "USD", clock)
    assert progress.left() is None  # no pace before the first target finishes
    assert progress.status_line(0.0) == "[0/4] built, 0.00/12.80 USD, elapsed 0:00"
    clock.now += 62
    progress.finish("a")
    assert progress.elapsed() == 62 and progress.left() == 186
    assert progress.status_line(3.2, videos_in_flight=2) == (
        "[1/4] built, 3.20/12.80 USD, elapsed 1:02, ~3:06 left, 2 videos in flight")
    assert progress.status_line(3.2, videos_in_flight=1).endswith(", 1 video in flight")
    clock.now += 62
    progress.finish("b")
    assert progress.left() == 124
    for task in ("c", "d"):
        progress.finish(task)
    assert progress.status_line(12.8) == "[4/4] built, 12.80/12.80 USD, elapsed 2:04"  # nothing left to wait for


def test_the_plain_line_of_a_finished_target() -> None:
    progress = Progress(["image:scenelet-1_1", "image:scenelet-1_2"], 12.80, "USD", FakeClock())
    k = progress.finish("image:scenelet-1_2")
    assert progress.finished_line(k, "image:scenelet-1_2", "built", 0.24, 3.44) == (
        "[1/2] built image:scenelet-1_2 (0.24 USD; 3.44/12.80 USD)")
    assert progress.finished_line(2, "image:scenelet-1_1", "failed", None, 3.44) == (
        "[2/2] failed image:scenelet-1_1 (no price; 3.44/12.80 USD)")


def test_a_repeated_line_is_said_when_it_changed_and_at_most_every_interval() -> None:
    clock = FakeClock()
    gate = RepeatGate(30.0, clock)
    assert gate.allows("m", (5, 9.8))  # first time
    clock.now += 31
    assert not gate.allows("m", (5, 9.8))  # unchanged: never again, however long
    clock.now += 5
    assert gate.allows("m", (4, 9.8))  # changed, 36 s after the last line
    assert gate.allows("other", (5, 9.8))  # each subject on its own


def test_a_changed_line_waits_for_the_interval() -> None:
    clock = FakeClock()
    gate = RepeatGate(30.0, clock)
    assert gate.allows("m", "a")
    clock.now += 29.9
    assert not gate.allows("m", "b")
    clock.now += 0.1
    assert gate.allows("m", "b")
    clock.now += 30
    assert not gate.allows("m", "b")
    assert gate.allows("m", "c")


def test_the_quota_line_is_logged_only_when_it_changed_at_most_every_30_s(tmp_path, caplog) -> None:  # noqa: ANN001
    clock = FakeClock()
    limiter = RateLimiter(tmp_path / "rate-limits.sqlite", clock=clock)
    stats = ModelStats(waiting=5)
    caplog.set_level(logging.INFO, logger="storytree")
    told = []
    for _ in range(20):  # a look every 5 s for 100 s, the same calls waiting at the same rate
        limiter._tell("m", stats, 4.0, 9.8 / 60)
        clock.now += 5
    told.append(len(caplog.records))
    stats.waiting = 3  # what it says changed
    limiter._tell("m", stats, 4.0, 9.8 / 60)
    told.append(len(caplog.records))
    stats.waiting = 2
    limiter._tell("m", stats, 4.0, 9.8 / 60)  # changed again, but 0 s after the last line
    told.append(len(caplog.records))
    limiter.close()
    assert told == [1, 2, 2]
    assert caplog.records[0].getMessage().startswith("quota m: 5 call(s) waiting, 9.8 calls/min, next slot in 4.0s")
