"""How far a build is, in words a person reads: `[k/N]` finished of the paid targets, spend so far against the
estimate, elapsed and time left. Pure: the clock is given (tests use a fake one), and the caller says what finished
and what has been spent."""

from __future__ import annotations

import threading
from collections.abc import Callable


def clock_text(seconds: float) -> str:
    """1:02, 12:05, 1:02:03."""
    whole = max(0, int(round(seconds)))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """The paid targets of one build (`tasks`, from the plan) and how many of them have finished."""

    def __init__(self, tasks: list[str], estimate: float, currency: str, clock: Callable[[], float]):
        self.tasks = frozenset(tasks)
        self.total = len(self.tasks)
        self.estimate = estimate
        self.currency = currency
        self.clock = clock
        self.started = clock()
        self._finished: set[str] = set()
        self._lock = threading.Lock()

    @property
    def done(self) -> int:
        return len(self._finished)

    def finish(self, task: str) -> int | None:
        """Count `task` as finished (built or failed): its number k, or None when it is not one of the paid targets
        or was counted already (a target finishes once)."""
        with self._lock:
            if task not in self.tasks or task in self._finished:
                return None
            self._finished.add(task)
            return len(self._finished)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float | None:
        """Seconds left at the pace so far (None before the first target finishes: no pace yet)."""
        done = self.done
        if not done:
            return None
        return self.elapsed() / done * (self.total - done)

    def finished_line(self, k: int, task: str, what: str, cost: float | None, spent: float) -> str:
        """The plain line of one finished target: `[3/14] built image:x (0.24 USD; 3.44/12.80 USD)`."""
        price = f"{cost:.2f} {self.currency}" if cost is not None else "no price"
        return f"[{k}/{self.total}] {what} {task} ({price}; {self._spend(spent)})"

    def status_line(self, spent: float, videos_in_flight: int = 0) -> str:
        """The live line: `[3/14] built, 3.20/12.80 USD, elapsed 1:02, ~3:10 left, 2 videos in flight`."""
        left = self.left()
        parts = [f"[{self.done}/{self.total}] built", self._spend(spent), f"elapsed {clock_text(self.elapsed())}"]
        if left is not None and self.done < self.total:
            parts.append(f"~{clock_text(left)} left")
        if videos_in_flight:
            parts.append(f"{videos_in_flight} video{'s' if videos_in_flight != 1 else ''} in flight")
        return ", ".join(parts)

    def _spend(self, spent: float) -> str:
        return f"{spent:.2f}/{self.estimate:.2f} {self.currency}"
