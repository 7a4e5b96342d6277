"""A doit reporter for paid builds: no line per up-to-date task, and a closing summary of what really happened
(built, resumed, published, up to date, failed with reasons, estimated spend, quota stops)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from doit.reporter import ConsoleReporter

from ..building.summary import ORDER
from ..core import naming

if TYPE_CHECKING:
    from ..bootstrap import Session


class SummaryReporter(ConsoleReporter):
    desc = "storytree: what was built and a summary"

    session: "Session | None" = None  # set on the class `bound` makes for one run

    def __init__(self, outstream: Any, options: dict[str, Any]):
        super().__init__(outstream, options)
        self.skipped = 0

    @classmethod
    def bound(cls, session: "Session") -> type["SummaryReporter"]:
        """This reporter for one run's session (doit makes the instance, with its own output stream)."""
        return type(cls.__name__, (cls,), {"session": session})

    def execute_task(self, task: Any) -> None:
        pass  # the build action logs what it spends; doit -a "runs" dependencies that stay untouched

    def skip_uptodate(self, task: Any) -> None:
        if task.actions and naming.split_task(task.name)[0] in naming.ASSET_STAGES:  # assets only, not the page
            summary = self.session.summary if self.session else None
            counted = (self.session.batch_collected() | summary.tasks("kept") | summary.tasks("stale kept")
                       if self.session and summary else set())
            if task.name not in counted:  # counted as built (batch) or as kept
                self.skipped += 1

    def complete_run(self) -> None:
        super().complete_run()
        session = self.session
        if session is None:
            return
        counts = session.summary.counts(self.skipped)
        self.write("storytree: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in ORDER if counts.get(k) or k in
                                              ("built", "up to date", "failed")) + "\n")
        self.write(f"storytree: estimated spend this run: {session.gate.budget.spent:.2f} "
                   f"{session.settings.prices.currency} (provider {session.provider_name})\n")
        unreceived = session.gate.unreceived_line(session.settings.prices.currency, session.provider_name)
        if unreceived:
            self.write(f"storytree: {unreceived}\n")
        waiting = session.summary.waiting_for_review
        for failure in session.summary.failures.values():
            if failure.kind != "review":
                self.write(f"  failed {failure.task}: {failure.first_line}\n")
        if waiting:  # one line for the group: waiting is the workflow, not a failure
            held = sum(session.pricing.cost(session.target(f.task)) or 0.0 for f in waiting)
            videos = "1 video waits" if len(waiting) == 1 else f"{len(waiting)} videos wait"
            self.write(f"storytree: {videos} for review of their key frames: {held:.2f} "
                       f"{session.settings.prices.currency} held back; `storytree serve` (or `storytree review list "
                       f"{session.story_id}`)\n")
        stale = sorted(session.summary.tasks("stale kept"))
        if stale:
            cost = sum(session.pricing.cost(session.target(task)) or 0.0 for task in stale)
            self.write(f"storytree: {len(stale)} file(s) out of date but kept (rebuild=missing); bringing them up to "
                       f"date would cost {cost:.2f} {session.settings.prices.currency} (`doit dryrun` lists them)\n")
        pending = session.batch_jobs_pending()
        if pending:
            self.write(f"storytree: {len(pending)} batch job(s) still running with "
                       f"{sum(len(t) for t in pending.values())} image(s): {', '.join(sorted(pending))}; run the same "
                       "command again later to collect them (nothing is paid again).\n")
        unsent = session.workspace.vault.upload_failures
        if unsent:
            self.write(f"storytree: {len(unsent)} new file(s) not on the remote {session.workspace.vault.remote_url} "
                       f"yet (kept locally); `storytree push {session.story_id}` sends them\n")
        limiter = session.limiter.peek()
        for line in limiter.summary_lines() if limiter is not None else ():
            self.write(f"storytree: {line}\n")
        for model, exc in session.gate.exhausted.items():
            self.write(f"storytree: the daily quota of {model} is used up; no new submissions were made to it. "
                       f"{exc.reset_hint}. Run the same command again then: finished targets are kept.\n")
