"""One rate limiter per model in front of every paid call, shared by every worker of the process and by concurrent
storytree processes on this machine (its state is a small SQLite file in the state folder; deleting it only forgets
what was learnt).

Each call takes the next slot of its model: slots are spaced 1/rate apart (calls wait for a slot instead of racing for
it). The rate is learnt, TCP-style:

    slow start     unknown limit: start at `initial_rate_per_minute`, grow 20 % per success until the first 429
    429 (minute)   pause the whole model until the server's retryDelay, rate × 0.7 (once per burst of 429s)
    success        rate + 0.5 % (a configured limit is never exceeded)

The file is a cache: one that cannot be read (garbage bytes, a truncated file) is set aside as
`rate-limits.sqlite.corrupt-<time>` with one line naming it, and learnt again; bookkeeping after a call that was
answered never fails that call (a paid answer is never dropped because the cache broke).

A per-minute 429 is not charged, so it never counts against a target's retries; a model that makes no progress for
`quota_wait_minutes` fails the calls waiting for it. A configured per-day count stops calls before Google's daily quota
is reached (QuotaExhausted, exit 75, as a daily 429 does). Parameters were chosen with a simulation of a token-bucket
server (256 calls at 5/s, 8 workers): ~1.07× the ideal wall time, ~3 % 429s.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..files.atomic import private_folder
from ..core.errors import EnvironmentFault, QuotaExhausted, RetryableProviderError
from ..core.repeats import RepeatGate
from ..settings import RateLimit, Settings
from ..files.sqlite_file import connect, damage, immediate, is_damage, set_aside
from .google_http import daily_reset_hint

log = logging.getLogger("storytree")

SLOW_START = 1.2
DECREASE = 0.7
INCREASE = 0.005
MIN_RATE = 1 / 120  # one call every two minutes
MAX_UNKNOWN_RATE = 50.0  # per second, when no limit is configured
DEFAULT_PAUSE = 10.0  # seconds, for a 429 without retryDelay
MAX_NAP = 1.0  # seconds a waiter sleeps before looking again
PROGRESS_EVERY = 30.0  # at most this often a "waiting for quota" line per model, and only when it changed
SCHEMA_VERSION = 2  # the file is a cache: another version is dropped and learnt again
SCHEMA = """
create table if not exists models (
  model text primary key, rate real not null, last_slot real not null, paused_until real not null,
  slow_start integer not null, cut_at real not null, last_progress real not null, day text not null,
  day_count integer not null, configured real not null
);
"""
FIELDS = ("rate", "last_slot", "paused_until", "slow_start", "cut_at", "last_progress", "day", "day_count",
          "configured")


@dataclass
class ModelStats:
    calls: int = 0
    rate_limited: int = 0
    waited: float = 0.0
    waiting: int = 0


def pacific_day() -> str:
    return datetime.now(ZoneInfo("America/Los_Angeles")).date().isoformat()  # daily quotas reset at midnight PT


class RateLimiter:
    def __init__(self, path: Path, limits: dict[str, RateLimit] | None = None, initial_rate_per_minute: float = 60.0,
                 quota_wait_minutes: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.path = path
        self.limits = limits or {}
        self.initial = initial_rate_per_minute / 60
        self.quota_wait = quota_wait_minutes * 60
        self.started = time.time()  # no progress is counted from here at the earliest (not from an old run)
        self.stats: dict[str, ModelStats] = {}  # this process's calls, 429s and waiting, for the summary
        self._told = RepeatGate(PROGRESS_EVERY, clock)  # the quota line: said again only when it changed
        self._lock = threading.Lock()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []  # one per thread, all closed by close()

    @classmethod
    def from_settings(cls, settings: Settings) -> "RateLimiter":
        options = settings.gemini
        return cls(settings.state_dir / "rate-limits.sqlite", dict(options.rate_limits), options.initial_rate_per_minute,
                   options.quota_wait_minutes)

    # -- the shared state ----------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            private_folder(self.path.parent)
            try:
                conn = self._open()
            except sqlite3.Error as exc:
                if not is_damage(exc):
                    raise self._fault(exc) from None
                self._set_aside(str(exc))
                try:
                    conn = self._open()
                except sqlite3.Error as again:
                    raise self._fault(again) from None
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = connect(self.path)
        try:
            checked = conn.execute("pragma quick_check").fetchall()
            if checked != [("ok",)]:
                raise sqlite3.DatabaseError("quick_check: " + "; ".join(str(r[0]) for r in checked[:3]))
            with immediate(conn):
                if conn.execute("pragma user_version").fetchone()[0] != SCHEMA_VERSION:
                    conn.execute("drop table if exists models")
                    conn.execute(SCHEMA)
                    conn.execute(f"pragma user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _set_aside(self, why: str) -> None:
        """Move the unreadable cache out of the way, once: another thread or process may have done it already (then
        the file now in place is a new, good one)."""
        with self._lock:
            if damage(self.path) is None:
                return
            try:
                aside = set_aside(self.path)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise EnvironmentFault(
                    f"the rate-limit cache {self.path} cannot be read ({why}) and cannot be moved aside ({exc}); "
                    "delete it (it only holds learnt rates) and build again.") from None
        log.warning("the rate-limit cache %s could not be read (%s); set aside as %s and learnt again", self.path,
                    why, aside.name)

    def _fault(self, exc: sqlite3.Error) -> EnvironmentFault:
        return EnvironmentFault(f"the rate-limit cache {self.path} cannot be used ({exc}); nothing was sent. It only "
                                "holds learnt rates: fix the state folder, or delete the file, and build again.")

    @contextmanager
    def _state(self, model: str) -> Iterator[dict[str, Any]]:
        """The model's state, read and written in one transaction (processes take turns)."""
        try:
            with self._transaction(model) as state:
                yield state
        except sqlite3.Error as exc:
            raise self._fault(exc) from None

    @contextmanager
    def _transaction(self, model: str) -> Iterator[dict]:
        with immediate(self._conn()) as conn:
            row = conn.execute(f"select {', '.join(FIELDS)} from models where model = ?", (model,)).fetchone()
            limit = self.limits.get(model, RateLimit())
            cap = limit.per_second or MAX_UNKNOWN_RATE
            state: dict[str, Any] = dict(zip(FIELDS, row)) if row is not None else {
                "last_slot": 0.0, "paused_until": 0.0, "cut_at": 0.0, "last_progress": time.time(),
                "day": pacific_day(), "day_count": 0, "configured": -1.0}
            if state["configured"] != (limit.per_second or 0.0):  # new, or its limit was set or changed: start over
                state.update(rate=limit.per_second or self.initial, slow_start=int(limit.per_second is None),
                             configured=limit.per_second or 0.0)
            state["rate"] = min(state["rate"], cap)
            if state["day"] != pacific_day():
                state["day"], state["day_count"] = pacific_day(), 0
            yield state
            state["rate"] = max(MIN_RATE, min(state["rate"], cap))
            conn.execute(f"insert or replace into models (model, {', '.join(FIELDS)}) values (?,?,?,?,?,?,?,?,?,?)",
                         (model, *(state[name] for name in FIELDS)))

    def _stats(self, model: str) -> ModelStats:
        with self._lock:
            return self.stats.setdefault(model, ModelStats())

    # -- the calls -----------------------------------------------------------------------------
    def acquire(self, model: str, task: str) -> float:
        """Wait until the model may take a call (1/rate after the last one taken, and after any pause) and take it;
        returns the seconds waited. Nothing is reserved while waiting: a waiter wakes at least every second and
        looks again, so a faster rate, a new pause or a killed process is seen at once, and a crash leaves no
        debt for the next run."""
        stats = self._stats(model)
        limit = self.limits.get(model, RateLimit())
        waited = 0.0
        with self._lock:
            stats.waiting += 1
        try:
            while True:
                with self._state(model) as state:
                    if limit.per_day is not None and state["day_count"] >= limit.per_day:
                        hint = daily_reset_hint()
                        raise QuotaExhausted(
                            f"{task}: not sent: {model} has made its configured {limit.per_day} calls today "
                            f"([gemini.rate_limits]); nothing more is sent to it in this run. {hint}.", model, hint)
                    now = time.time()
                    ready = max(state["paused_until"], state["last_slot"] + 1 / state["rate"])
                    if ready <= now:
                        state["last_slot"] = now
                        state["day_count"] += 1
                        break
                    if ready > max(state["last_progress"], self.started) + self.quota_wait:
                        raise RetryableProviderError(
                            f"{task}: gave up waiting for {model}'s quota: no call to it succeeded for "
                            f"{self.quota_wait / 60:g} minutes ([gemini] quota_wait_minutes). Nothing was paid for "
                            "it; build again later, or set its limit in [gemini.rate_limits].")
                    rate = state["rate"]
                nap = min(ready - now, MAX_NAP)
                self._tell(model, stats, ready - now, rate)
                time.sleep(nap)
                waited += nap
        finally:
            with self._lock:
                stats.waiting -= 1
                stats.waited += waited
        with self._lock:
            stats.calls += 1
        self._local.sent_at = now
        return waited

    def succeeded(self, model: str) -> None:
        """Learn from an answered call. Never raises: the call was paid for and its answer must reach the build."""
        try:
            with self._state(model) as state:
                state["last_progress"] = time.time()
                state["rate"] *= SLOW_START if state["slow_start"] else 1 + INCREASE
        except EnvironmentFault as exc:
            log.warning("%s (the answer is kept)", exc)

    def rate_limited(self, model: str, retry_after: float | None) -> None:
        """A per-minute 429 (not charged): pause the model until the server's delay and, once per burst, slow down."""
        sent_at = getattr(self._local, "sent_at", time.time())
        stats = self._stats(model)
        with self._lock:
            stats.rate_limited += 1
        with self._state(model) as state:
            now = time.time()
            state["paused_until"] = max(state["paused_until"], now + (retry_after if retry_after is not None
                                                                       else DEFAULT_PAUSE))
            state["day_count"] = max(0, state["day_count"] - 1)
            if sent_at > state["cut_at"]:  # calls sent before the last cut belong to the same burst
                state["rate"] *= DECREASE
                state["slow_start"] = 0
                state["cut_at"] = now

    def _tell(self, model: str, stats: ModelStats, wait: float, rate: float) -> None:
        # What the line says, but the seconds to the next slot (they change on every look)
        if wait >= 2 and self._told.allows(model, (stats.waiting, round(rate * 60, 1))):
            log.info("quota %s: %d call(s) waiting, %.1f calls/min, next slot in %.1fs", model, stats.waiting,
                     rate * 60, wait)

    def summary_lines(self) -> list[str]:
        with self._lock:
            stats = [(model, s.calls, s.rate_limited, s.waited) for model, s in sorted(self.stats.items()) if s.calls]
        return [f"quota {model}: {calls} calls, {limited} rate-limited (429), {waited:.0f} s waiting"
                + (self._reset_hint(model) if limited else "") for model, calls, limited, waited in stats]

    def _reset_hint(self, model: str) -> str:
        """A 429 cut the learnt rate, and the cut outlives this run: say what it is and how to forget it."""
        learnt = {row["model"]: row for row in self.learnt()}.get(model)
        if learnt is None or learnt["configured"]:
            return ""
        return (f"; learnt rate now {learnt['per_minute']:.1f} calls/min (kept for the next builds; "
                f"`storytree quota --reset {model}` starts over)")

    # -- what was learnt (`storytree quota`) -------------------------------------------------------
    def learnt(self) -> list[dict[str, Any]]:
        """What the cache holds per model: the rate (calls per minute), whether it is still in slow start or
        configured, a pause, today's count. An absent cache is not created."""
        if not self.path.exists():
            return []
        try:
            rows = self._conn().execute(f"select model, {', '.join(FIELDS)} from models order by model").fetchall()
        except sqlite3.Error as exc:
            raise self._fault(exc) from None
        now = time.time()
        out = []
        for model, *values in rows:
            state = dict(zip(FIELDS, values))
            out.append({"model": model, "per_minute": state["rate"] * 60, "slow_start": bool(state["slow_start"]),
                        "configured": state["configured"] > 0, "paused_seconds": max(0.0, state["paused_until"] - now),
                        "day": state["day"], "day_count": state["day_count"]})
        return out

    def forget(self, model: str) -> bool:
        """Forget what was learnt for `model` (the next call starts at the initial rate); False when nothing was."""
        if not self.path.exists():
            return False
        try:
            with immediate(self._conn()) as conn:
                return conn.execute("delete from models where model = ?", (model,)).rowcount > 0
        except sqlite3.Error as exc:
            raise self._fault(exc) from None

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
