"""What a run did: how many targets had each outcome, typed failures, and the exit code they imply.

The summary keeps a counter per outcome word, not the outcomes: a build of 20,000 targets holds the same few
objects at its end as at its start. Task names are kept only for the words the reporter lists (NAMED)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.errors import StorytreeError
from ..core.exit_codes import ExitCode
from ..core.status import Reason

STOPPED = "left for the next run"  # not started (or a video left polling) because Ctrl-C / SIGTERM stopped the build
ORDER = ("built", "recovered", "resumed", "downloaded", "restored", "pulled", "kept edit", "moved", "adopted",
         "published", "kept", "stale kept", "up to date", "waiting for review", "failed", STOPPED)

# The outcome words whose task names the reporter needs (doit_glue/reporter.py): the rest are only counted.
NAMED = ("kept", "stale kept")

# Current statuses a run still reports: the outcome word for each.
SAID_CURRENT = {Reason.KEPT: "kept", Reason.STALE_KEPT: "stale kept"}


@dataclass(frozen=True)
class Outcome:
    task: str
    action: str  # one of ORDER: built | recovered | resumed | downloaded | restored | pulled | ... | up to date
    detail: str = ""


@dataclass(frozen=True)
class Failure:
    task: str
    message: str
    kind: str
    retry_safe: bool
    exit_code: ExitCode

    @classmethod
    def of(cls, task: str, error: StorytreeError) -> "Failure":
        return cls(task, str(error), error.kind, error.retry_safe, ExitCode(error.exit_code))

    @property
    def first_line(self) -> str:
        return self.message.splitlines()[0] if self.message else ""


@dataclass
class RunSummary:
    _counts: dict[str, int] = field(default_factory=dict)  # outcome word → targets
    _named: dict[str, set[str]] = field(default_factory=lambda: {action: set() for action in NAMED})
    failures: dict[str, Failure] = field(default_factory=dict)
    stopped: dict[str, Failure] = field(default_factory=dict)  # Ctrl-C / SIGTERM: not failures, the rerun resumes them
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Told (task, outcome word or "failed") as each target finishes: the progress display (doit_glue/progress.py).
    on_finish: Callable[[str, str], None] | None = field(default=None, repr=False)

    def add(self, outcome: Outcome) -> Outcome:
        with self._lock:
            self._counts[outcome.action] = self._counts.get(outcome.action, 0) + 1
            if outcome.action in self._named:
                self._named[outcome.action].add(outcome.task)
        if self.on_finish is not None:
            self.on_finish(outcome.task, outcome.action)
        return outcome

    def fail(self, failure: Failure) -> None:
        with self._lock:
            if failure.kind == "interrupted":
                self.stopped[failure.task] = failure
            else:
                self.failures[failure.task] = failure
        if self.on_finish is not None:
            self.on_finish(failure.task, "failed")

    def tasks(self, action: str) -> set[str]:
        """The tasks that had outcome `action`: only for the NAMED words (the others are counted, not kept)."""
        if action not in NAMED:
            raise ValueError(f"the run summary keeps task names only for {', '.join(NAMED)}, not {action!r}")
        with self._lock:
            return set(self._named[action])

    def counts(self, skipped: int = 0) -> dict[str, int]:
        """Outcomes by action; `skipped` adds targets doit found current without calling us."""
        with self._lock:
            counts = dict(self._counts)
        counts["up to date"] = counts.get("up to date", 0) + skipped
        waiting = len(self.waiting_for_review)
        if waiting:
            counts["waiting for review"] = waiting
        counts["failed"] = len(self.failures) - waiting
        if self.stopped:
            counts[STOPPED] = len(self.stopped)
        return counts

    def exit_code(self, runner_code: int) -> ExitCode:
        """doit's own code unless a failure implies a more specific one (TRY_LATER: a per-day quota ran out or batch
        jobs are pending; WAITING_FOR_REVIEW: only videos waiting for review, everything else built)."""
        failures = list(self.failures.values()) + list(self.stopped.values())
        plain = (ExitCode.OK, ExitCode.FAILED, ExitCode.DOIT_ERROR)
        special = [f.exit_code for f in failures if f.exit_code not in plain and f.kind != "review"]
        if special:
            return ExitCode(max(special))
        if failures and all(f.kind == "review" for f in failures):
            return ExitCode.WAITING_FOR_REVIEW
        if runner_code == ExitCode.DOIT_ERROR and self.failures:
            return ExitCode.FAILED  # doit's "unmet dependency" of targets that wait for one of ours that failed
        return ExitCode(runner_code)

    @property
    def waiting_for_review(self) -> list[Failure]:
        return [f for f in self.failures.values() if f.kind == "review"]
