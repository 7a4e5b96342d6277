"""When a status line that repeats while a build waits (the quota line) is worth saying again: only when what it
says has changed, and at most once per interval. Pure: the clock is given."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable


class RepeatGate:
    def __init__(self, every: float, clock: Callable[[], float]):
        self.every = every
        self.clock = clock
        self._told: dict[Hashable, tuple[float, Hashable]] = {}  # subject → (when, what was said)
        self._lock = threading.Lock()

    def allows(self, subject: Hashable, content: Hashable) -> bool:
        """True (and remembered as said) when `content` about `subject` was never said, or differs from what was
        said last and at least `every` seconds have passed since."""
        now = self.clock()
        with self._lock:
            last = self._told.get(subject)
            if last is not None and (last[1] == content or now - last[0] < self.every):
                return False
            self._told[subject] = (now, content)
            return True
