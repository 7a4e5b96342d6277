"""A doit reporter that prints what was built and a closing summary, not one line per up-to-date task."""

from __future__ import annotations

from doit.reporter import ConsoleReporter


class SummaryReporter(ConsoleReporter):
    desc = "storytree: built targets and a summary"

    def __init__(self, outstream, options):  # noqa: ANN001
        super().__init__(outstream, options)
        self.counts = {"built": 0, "up to date": 0, "failed": 0}

    def execute_task(self, task):  # noqa: ANN001
        if task.actions and task.name[0] != "_":
            self.write(f".  {task.title()}\n")

    def add_success(self, task):  # noqa: ANN001
        if task.actions:
            self.counts["built"] += 1

    def add_failure(self, task, fail_info):  # noqa: ANN001
        if task.actions:
            self.counts["failed"] += 1
        super().add_failure(task, fail_info)

    def skip_uptodate(self, task):  # noqa: ANN001
        if task.actions:
            self.counts["up to date"] += 1

    def complete_run(self):  # noqa: ANN001
        super().complete_run()
        c = self.counts
        self.write(f"storytree: {c['built']} ran, {c['up to date']} up to date, {c['failed']} failed\n")
