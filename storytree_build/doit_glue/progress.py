"""The progress a person reads while a build pays (core/progress.py words it). On a terminal: one live line under
the log lines (rich), `[3/14] built, 3.20/12.80 USD, elapsed 1:02, ~3:10 left, 2 videos in flight`. Elsewhere (logs,
CI): one plain line per finished paid target, `storytree: [3/14] built image:x (0.24 USD; 3.44/12.80 USD)`.

rich is imported only when a terminal shows the live line: a no-op or a logged build never loads it."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..core.plan import Plan
from ..core.progress import Progress

if TYPE_CHECKING:
    from ..bootstrap import Session

REFRESH_PER_SECOND = 2


class BuildProgress:
    """Counts the plan's paid targets as the run summary hears them finish; says each one as a plain line unless
    the live line shows the count instead."""

    def __init__(self, plan: Plan, currency: str, spent: Callable[[], float],
                 videos_in_flight: Callable[[], int] = lambda: 0, clock: Callable[[], float] = time.monotonic,
                 plain: bool = True):
        paid = plan.paid
        self.costs = {item.task: item.cost for item in paid}
        self.state = Progress(list(self.costs), plan.total, currency, clock)
        self.spent = spent
        self.videos_in_flight = videos_in_flight
        self.plain = plain

    def finished(self, task: str, what: str) -> None:
        k = self.state.finish(task)
        if k is not None and self.plain:
            line = self.state.finished_line(k, task, what, self.costs.get(task), self.spent())
            sys.stderr.write(f"storytree: {line}\n")  # looked up now: where the build's other lines go

    def status_line(self) -> str:
        return self.state.status_line(self.spent(), self.videos_in_flight())

    def __rich__(self) -> Any:  # rich renders this on every refresh of the live line
        from rich.text import Text

        return Text(self.status_line())


@contextmanager
def showing(session: "Session", plan: Plan, outfile: Any) -> Iterator[Any]:
    """Progress for the run inside the block; yields the output stream doit's reporter should use (on a terminal, one
    that prints above the live line)."""
    if not plan.paid:
        yield outfile  # nothing paid: nothing to count
        return
    live = sys.stderr.isatty()
    progress = BuildProgress(plan, session.settings.prices.currency, lambda: session.gate.budget.spent,
                             lambda: _videos_in_flight(session), plain=not live)
    session.summary.on_finish = progress.finished
    try:
        if not live:
            yield outfile
        else:
            with _live_line(progress, outfile) as stream:
                yield stream
    finally:
        session.summary.on_finish = None


def _videos_in_flight(session: "Session") -> int:
    paying = session._paying.peek()  # never made from the display's thread: a build that pays makes it
    return len(paying.video_flow.in_flight) if paying is not None else 0


@contextmanager
def _live_line(progress: BuildProgress, outfile: Any) -> Iterator[Any]:
    """rich's live display on stderr; the build's log lines and doit's output are printed above it."""
    from rich.console import Console
    from rich.live import Live

    stdout, stderr = sys.stdout, sys.stderr
    # Lines printed above the live line stay as written: not wrapped (paths are copied), no markup read in them.
    console = Console(file=stderr, soft_wrap=True, markup=False, highlight=False, emoji=False)
    live = Live(progress, console=console, refresh_per_second=REFRESH_PER_SECOND, transient=True,
                redirect_stdout=True, redirect_stderr=True)
    live.start()
    # The log handler holds the stderr it was made with: point it at the live display's stand-in for the run.
    handlers = [h for h in logging.getLogger("storytree").handlers
                if isinstance(h, logging.StreamHandler) and h.stream is stderr]
    for handler in handlers:
        handler.setStream(sys.stderr)
    try:
        yield sys.stdout if outfile is stdout else outfile
    finally:
        for handler in handlers:
            handler.setStream(stderr)
        live.stop()
