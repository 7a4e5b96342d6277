"""The statuses a run's plan worked out, handed to doit's up-to-date check of each target so that a no-op build
decides each target once, not twice (issue 25: the pre-flight and doit's `uptodate` each stat'ed every output and
reference). Good only until something may change: the first build action, or the batch phase (jobs submitted or
collected), forgets them all, and every check after it decides again from the files and records as they are then. The builder itself always
decides again under its claim, so a status taken from here only schedules; it never pays or skips a payment."""

from __future__ import annotations

from ..core.status import Status


class PlannedStatuses:
    def __init__(self) -> None:
        self._statuses: dict[str, Status] = {}

    def keep(self, statuses: dict[str, Status]) -> None:
        self._statuses = statuses

    def take(self, task: str) -> Status | None:
        """The planned status of `task`, at most once (None when there is none, or the files may have changed)."""
        return self._statuses.pop(task, None)

    def forget(self) -> None:
        """Something is about to change files or records: no planned status holds any more."""
        self._statuses = {}
