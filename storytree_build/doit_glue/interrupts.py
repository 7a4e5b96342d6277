"""Ctrl-C and SIGTERM during `doit`: never a traceback, never a paid result dropped without saying so.

- Before a build is under way (loading tasks, a dry-run): one line, exit 130 (Ctrl-C) or 143 (SIGTERM).
- During a build, the first signal asks the build to stop (building/stopping.py): no new paid call starts, the
  targets paying right now finish and are recorded (they are paid for either way), a video that is polling stays
  recorded and resumes next time; doit then ends as after a failure, the summary counts what is left for the next
  run, and the exit code is 130 / 143.
- A second signal, or the grace period (`[build] stop_grace_seconds`) running out, abandons the calls in flight at
  once and names the targets whose paid results may be lost.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from ..building.stopping import StopRequest
from ..core.exit_codes import ExitCode

log = logging.getLogger("storytree")

SIGNALS = {signal.SIGINT: (ExitCode.INTERRUPTED, "Ctrl-C"), signal.SIGTERM: (ExitCode.TERMINATED, "SIGTERM")}


class Interrupts:
    """The signal handlers of one doit process (installed from the main thread only)."""

    def __init__(self) -> None:
        self.stop: StopRequest | None = None
        self.grace_seconds = 60.0
        self._timer: threading.Timer | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in SIGNALS:
            previous = signal.signal(signum, self.handle)
            self._previous.setdefault(signum, previous)

    def attach(self, stop: StopRequest, grace_seconds: float) -> None:
        """The build whose targets wind down on the first signal."""
        self.stop, self.grace_seconds = stop, grace_seconds

    def uninstall(self) -> None:
        """Back to the handlers before `install` (a doit run inside another program, e.g. a test)."""
        if self._timer is not None:
            self._timer.cancel()
        if threading.current_thread() is threading.main_thread():
            for signum, previous in self._previous.items():
                signal.signal(signum, previous)
        self._previous.clear()
        self.stop = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        code, cause = SIGNALS.get(signal.Signals(signum), (ExitCode.INTERRUPTED, signal.Signals(signum).name))
        stop = self.stop
        if stop is None or not stop.building:
            _say(f"{cause}: stopped before any target was built; nothing was paid. Finished targets are kept.")
            raise SystemExit(int(code))
        if stop.requested:
            self.abandon(f"{cause} again")
            return
        stop.request(code, cause)
        flying = stop.in_flight()
        busy = (f"{len(flying)} target(s) paying now ({', '.join(flying)}) finish and are recorded within "
                f"{self.grace_seconds:g} s ({cause} again abandons them); " if flying else "")
        _say(f"{cause}: stopping: no new paid call starts; {busy}run the same command again to resume the rest.")
        self._timer = threading.Timer(self.grace_seconds, self.abandon, [f"{self.grace_seconds:g} s grace period over"])
        self._timer.daemon = True
        self._timer.start()

    def abandon(self, why: str) -> None:
        """Exit now, naming what is abandoned: its paid results may be lost (a video's submit stays recorded, so the
        next build resumes or blocks it; it never pays for it silently again)."""
        stop = self.stop
        code = stop.exit_code if stop is not None and stop.exit_code is not None else ExitCode.INTERRUPTED
        flying = stop.in_flight() if stop is not None else []
        if flying:
            _say(f"{why}: abandoned {len(flying)} target(s) in flight: {', '.join(flying)}; their paid results may be "
                 "lost (the provider may bill them; a video's submit stays recorded and the next build resumes or "
                 "blocks it). Run the same command again to resume.")
        else:
            _say(f"{why}: stopped; nothing was in flight. Run the same command again to resume.")
        sys.stderr.flush()
        os._exit(int(code))


def _say(line: str) -> None:
    log.warning("%s", line)
    for handler in log.handlers:
        handler.flush()
