"""The `run` command: doit's own, plus storytree's pre-flight and exit code. Registered as the `run` plugin in
pyproject.toml; for a project without storytree tasks it is exactly doit's `run`.

Pre-flight, with the options doit parsed and the tasks doit loaded: renames of assets whose scenelet labels shifted
(before anything is judged out of date), the `max_cost` refusal (exit 3) over doit's own selection, and the targets
`-a` names; then the batch phase (batch mode, or batch jobs recorded earlier: build/batches.py). After the run, the
exit code comes from the typed summary (75 when a per-day quota ran out or batch jobs are still running).
"""

from __future__ import annotations

import sys
from typing import Any

from doit.cmd_run import Run as DoitRun
from doit.exceptions import InvalidCommand

from ..bootstrap import RunOptions
from ..building.spend import budget_refusal
from ..core.errors import StorytreeError
from ..core.plan import Plan
from .planning import cascade_lines, cascade_of, forced_targets, plan_selection
from .selection import expand
from .reporter import SummaryReporter
from .tasks import session_of


class Run(DoitRun):
    name = "run"

    def _execute(self, outfile: Any, verbosity: Any = None, always: bool = False, continue_: bool = False,
                 reporter: Any = "console", num_process: int = 0, par_type: str = "process", single: bool = False,
                 auto_delayed_regex: bool = False, force_verbosity: bool = False, failure_verbosity: int = 0,
                 pdb: bool = False) -> int:
        session = session_of(self.task_list)
        run = super()._execute
        kwargs = dict(verbosity=verbosity, always=always, continue_=continue_, num_process=num_process,
                      par_type=par_type, single=single, auto_delayed_regex=auto_delayed_regex,
                      force_verbosity=force_verbosity, failure_verbosity=failure_verbosity, pdb=pdb)
        if session is None:
            return run(outfile, reporter=reporter, **kwargs)
        selection = list(self.sel_tasks or [])
        forced: frozenset[str] = frozenset()
        if selection:
            try:
                session.renamer.reconcile()  # labels shifted: rename paid assets before deciding what to build
                plan = plan_selection(session, self.task_list, selection, single=single, always=always)
                self._refuse_over_budget(session, plan, selection)
                self._announce(session, plan)
            except StorytreeError as exc:
                raise InvalidCommand(str(exc)) from None
            if always:
                forced = frozenset(forced_targets(session, self.task_list, selection))
        # --continue: a target another worker is building is reported, not awaited
        session.start_run(RunOptions(forced=forced, wait_for_claims=not continue_))
        if selection:
            self._batch_phase(session, selection, single)
        if reporter is SummaryReporter:
            reporter = SummaryReporter.bound(session)
        code = run(outfile, reporter=reporter, **kwargs)
        return session.summary.exit_code(code)

    def _batch_phase(self, session: Any, selection: list[str], single: bool) -> None:
        """Batch mode: the selection's out-of-date images go into batch jobs before doit runs the rest; any mode:
        jobs recorded earlier are collected first (an image in a job is never paid for again)."""
        batch_mode = session.settings.generation.batch
        try:  # reads the operations: they may not parse
            if not batch_mode and not any(op.operation and op.operation.startswith("batches/")
                                          for op in session.facts.operations().values()):
                return
        except StorytreeError as exc:
            raise InvalidCommand(str(exc)) from None
        targets = session.targets
        chosen = [targets[name] for name in expand(self.task_list, selection, single=single) if name in targets]
        try:
            session.batch_flow.run(chosen, submit=batch_mode, forced=session.run_options.forced)
        except StorytreeError as exc:
            raise InvalidCommand(f"batch mode: {exc}") from None

    def _announce(self, session: Any, plan: Plan) -> None:
        """The opening lines, before anything is paid: what the build puts out of date and what that costs."""
        for line in cascade_lines(cascade_of(session, plan), session.settings.prices.currency, session.story_id):
            sys.stderr.write(f"storytree: {line}\n")

    def _refuse_over_budget(self, session: Any, plan: Plan, selection: list[str]) -> None:
        limit = session.gate.budget.limit
        if limit is None:
            return
        refusal = budget_refusal(plan, limit, session.settings.prices.currency, selection,
                                 {t.task: t.model for t in session.manifest.targets})
        if refusal:
            raise InvalidCommand(refusal)
