"""The rate limiter's learning and its shared state, on a real SQLite file with a fake clock (no sleeping)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storytree_build.core.errors import ConfigError, QuotaExhausted, RetryableProviderError
from storytree_build.providers import rate_limit
from storytree_build.providers.rate_limit import DECREASE, SLOW_START, RateLimiter
from storytree_build.settings import GeminiSettings, RateLimit, load_settings

MODEL = "gemini-3.1-flash-image"


class Clock:
    """Stands in for the `time` module inside rate_limit: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(rate_limit, "time", fake)
    return fake


def limiter(tmp_path: Path, **limits: str) -> RateLimiter:
    parsed = {model.replace("_", "-"): RateLimit.model_validate(text) for model, text in limits.items()}
    return RateLimiter(tmp_path / "state" / "rate-limits.sqlite", parsed, initial_rate_per_minute=60,
                       quota_wait_minutes=1)


def rate(lim: RateLimiter, model: str = MODEL) -> float:
    with lim._state(model) as state:
        return state["rate"]


def test_calls_are_spaced_by_the_rate_and_successes_grow_it(tmp_path: Path, clock: Clock) -> None:
    lim = limiter(tmp_path)
    assert lim.acquire(MODEL, "t1") == 0  # the first call goes at once
    assert lim.acquire(MODEL, "t2") == pytest.approx(1.0)  # 60/min: the next one a second later
    lim.succeeded(MODEL)
    assert rate(lim) == pytest.approx(SLOW_START)  # slow start until the first 429
    assert lim.acquire(MODEL, "t3") == pytest.approx(1 / SLOW_START)


def test_a_429_pauses_the_model_and_cuts_the_rate_once_per_burst(tmp_path: Path, clock: Clock) -> None:
    lim = limiter(tmp_path)
    for _ in range(5):
        lim.acquire(MODEL, "t")
        lim.succeeded(MODEL)
    grown = rate(lim)
    lim.acquire(MODEL, "a")
    lim.rate_limited(MODEL, retry_after=30)
    assert rate(lim) == pytest.approx(grown * DECREASE)
    lim.rate_limited(MODEL, retry_after=30)  # a call sent before the cut: same burst, no second cut
    assert rate(lim) == pytest.approx(grown * DECREASE)
    before = clock.now
    lim.acquire(MODEL, "b")  # waits for the pause, whoever got the 429
    assert clock.now >= before + 30
    lim.succeeded(MODEL)
    assert rate(lim) == pytest.approx(grown * DECREASE * (1 + rate_limit.INCREASE))  # slow start is over


def test_a_configured_limit_is_the_rate_and_is_never_exceeded(tmp_path: Path, clock: Clock) -> None:
    lim = limiter(tmp_path, **{MODEL: "30/min"})
    assert rate(lim) == pytest.approx(0.5)
    for _ in range(20):
        lim.acquire(MODEL, "t")
        lim.succeeded(MODEL)
    assert rate(lim) == pytest.approx(0.5)


def test_a_configured_daily_count_stops_calls_and_is_shared_by_later_runs(tmp_path: Path, clock: Clock) -> None:
    first = limiter(tmp_path, **{MODEL: "2/day"})
    first.acquire(MODEL, "t1")
    first.acquire(MODEL, "t2")
    with pytest.raises(QuotaExhausted, match=r"t3: not sent: .*configured 2 calls today.*\[gemini.rate_limits\]"):
        first.acquire(MODEL, "t3")
    later = limiter(tmp_path, **{MODEL: "2/day"})  # another process, same state file
    with pytest.raises(QuotaExhausted):
        later.acquire(MODEL, "t4")
    with later._state(MODEL) as state:  # a new Pacific day starts counting again
        state["day"] = "2000-01-01"
    later.acquire(MODEL, "t5")


def test_a_model_without_progress_fails_the_waiting_calls_with_the_setting_to_change(tmp_path: Path,
                                                                                   clock: Clock) -> None:
    lim = limiter(tmp_path)
    lim.acquire(MODEL, "t1")
    lim.rate_limited(MODEL, retry_after=3600)  # paused far beyond quota_wait_minutes = 1
    with pytest.raises(RetryableProviderError, match=r"t2: gave up waiting .* quota_wait_minutes.*Nothing was paid"):
        lim.acquire(MODEL, "t2")


def test_an_old_run_without_progress_does_not_fail_a_new_one(tmp_path: Path, clock: Clock) -> None:
    old = limiter(tmp_path)
    old.acquire(MODEL, "t1")
    clock.now += 86_400  # a day later, still no success recorded
    old.acquire(MODEL, "t2")
    new = limiter(tmp_path)
    assert new.acquire(MODEL, "t3") == pytest.approx(1.0)  # waits its turn; not failed for the old run's day


def test_summary_counts_calls_429s_and_waiting(tmp_path: Path, clock: Clock) -> None:
    lim = limiter(tmp_path)
    lim.acquire(MODEL, "a")
    lim.rate_limited(MODEL, retry_after=4)
    lim.acquire(MODEL, "a")
    assert lim.summary_lines() == [f"quota {MODEL}: 2 calls, 1 rate-limited (429), 4 s waiting; learnt rate now "
                                   f"42.0 calls/min (kept for the next builds; `storytree quota --reset {MODEL}` "
                                   "starts over)"]


@pytest.mark.parametrize("text", ["10 per minute", "0/min", "5/fortnight", "/min", "10/min, x"])
def test_a_bad_limit_names_the_model_and_shows_the_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"10/min"):
        GeminiSettings(rate_limits={MODEL: text})


def test_a_bad_limit_in_storytree_toml_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    (tmp_path / "storytree.toml").write_text(f'[gemini.rate_limits]\n"{MODEL}" = "ten a minute"\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(root=tmp_path, env={})
    assert "rate_limits" in str(raised.value) and MODEL in str(raised.value) and "10/min" in str(raised.value)


def test_limits_are_read_in_every_unit() -> None:
    parsed = GeminiSettings(rate_limits={"a": "10/min, 500/day", "b": "2/s", "c": "120/hour"}).rate_limits
    assert parsed["a"] == RateLimit(per_second=10 / 60, per_day=500)
    assert parsed["b"].per_second == 2 and parsed["c"].per_second == pytest.approx(1 / 30)


def test_a_changed_limit_replaces_what_was_learnt(tmp_path: Path, clock: Clock) -> None:
    slow = limiter(tmp_path, **{MODEL: "1/min"})
    slow.acquire(MODEL, "t1")
    assert limiter(tmp_path, **{MODEL: "100/s"}).acquire(MODEL, "t2") == pytest.approx(0.01)
    assert rate(limiter(tmp_path)) == pytest.approx(1.0)  # no limit any more: learning starts again at 60/min
