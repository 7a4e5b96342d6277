"""A doit reporter for paid builds: no line per up-to-date task, a closing summary of what really happened
(built, resumed, published, up to date, failed with reasons)."""

from __future__ import annotations

from doit.reporter import ConsoleReporter

from .errors import QuotaExhausted


class SummaryReporter(ConsoleReporter):
    desc = "storytree: what was built and a summary"

    def __init__(self, outstream, options):  # noqa: ANN001
        super().__init__(outstream, options)
        self.skipped = 0

    def execute_task(self, task):  # noqa: ANN001
        pass  # the build action logs what it spends; doit -a "runs" dependencies that stay untouched

    def skip_uptodate(self, task):  # noqa: ANN001
        if task.actions and not task.name.startswith("gallery:"):  # count assets only, not the review page
            self.skipped += 1

    def complete_run(self):  # noqa: ANN001
        super().complete_run()
        from .doit_tasks import ACTIVE

        ctx = ACTIVE.get("ctx")
        if ctx is None:
            return
        counts: dict[str, int] = {}
        for outcome in ctx.summary.outcomes:
            counts[outcome.action] = counts.get(outcome.action, 0) + 1
        counts["up to date"] = counts.get("up to date", 0) + self.skipped
        counts["failed"] = len(ctx.summary.failures)
        order = ["built", "resumed", "downloaded", "moved", "published", "up to date", "failed"]
        self.write("storytree: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in order if counts.get(k) or k in
                                              ("built", "up to date", "failed")) + "\n")
        self.write(f"storytree: estimated spend this run: {ctx.budget.spent:.2f} {ctx.settings.prices.currency}"
                   f" (provider {ctx.provider_name})\n")
        for task, message in ctx.summary.failures.items():
            first = message.splitlines()[0] if message else ""
            self.write(f"  failed {task}: {first}\n")
        if ctx.exhausted:
            for model, exc in ctx.exhausted.items():
                self.write(f"storytree: the daily quota of {model} is used up; no new submissions were made to it. "
                           f"{exc.reset_hint}. Run the same command again then: finished targets are kept.\n")
            # doit's database is already saved (Runner.finish closes it before complete_run).
            raise SystemExit(QuotaExhausted.exit_code)
