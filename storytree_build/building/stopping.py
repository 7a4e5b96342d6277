"""A request to stop a build (Ctrl-C, SIGTERM), as the paying code sees it: once asked, no new paid call starts, and
the targets paying right now are known, so a second signal can name what it abandons.

The signal handling itself is doit_glue/interrupts.py; this is only the state it shares with the builder.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from ..core.errors import Interrupted
from ..core.exit_codes import ExitCode


class StopRequest:
    def __init__(self) -> None:
        self.exit_code: ExitCode | None = None  # INTERRUPTED or TERMINATED once asked
        self.cause = ""  # "Ctrl-C" or "SIGTERM"
        self.building = False  # a build run is under way (its targets wind down instead of the process exiting)
        self._paying: Counter[str] = Counter()  # target → paid steps under way (a call, or its result being kept)
        self._lock = threading.Lock()

    @property
    def requested(self) -> bool:
        return self.exit_code is not None

    def request(self, exit_code: ExitCode, cause: str) -> None:
        with self._lock:
            if self.exit_code is None:
                self.exit_code, self.cause = exit_code, cause

    def refuse(self, task: str, what: str = "not started") -> None:
        """Raise `Interrupted` for `task` once a stop was asked (the one check before a paid call)."""
        code = self.exit_code
        if code is not None:
            raise Interrupted(f"{task}: {what}: the build was stopped ({self.cause}); no new paid call was made for it. "
                              "Run the same command again to resume.", code)

    @contextmanager
    def paying(self, task: str) -> Iterator[None]:
        """Marks `task` as paying: from its paid call until its result is recorded."""
        with self._lock:
            self._paying[task] += 1
        try:
            yield
        finally:
            with self._lock:
                self._paying[task] -= 1
                if self._paying[task] <= 0:
                    del self._paying[task]

    def in_flight(self) -> list[str]:
        with self._lock:
            return sorted(self._paying)
