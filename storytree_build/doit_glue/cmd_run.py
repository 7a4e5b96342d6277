"""The `run` command: doit's own, plus storytree's pre-flight and exit code. Registered as the `run` plugin in
pyproject.toml; for a project without storytree tasks it is exactly doit's `run`.

Pre-flight, with the options doit parsed and the tasks doit loaded: renames of assets whose scenelet labels shifted
(before anything is judged out of date), the `max_cost` refusal (exit 3) over doit's own selection, the opening
line (what the build pays for and what is free), consent (consent.py: asked on a terminal, `max_cost=`/`yes=1`
without one, else exit 3 before paying), and the targets `-a` names; then the batch phase (batch mode, or batch jobs
recorded earlier: build/batches.py). After the run, the exit code comes from the typed summary (75 when a per-day
quota ran out or batch jobs are still running).

make's flags (flags.py): `-n` hands the same selection to the dry-run listing (cmd_dryrun.py) and builds nothing;
`-j N` (`--process N`) runs N worker threads; `-n N` is refused before any task is loaded.
"""

from __future__ import annotations

import sys
from typing import Any

from doit.cmd_run import Run as DoitRun
from doit.exceptions import InvalidCommand

from ..bootstrap import RunOptions
from ..building.spend import budget_refusal
from ..core.errors import StorytreeError
from ..core.exit_codes import ExitCode
from ..core.plan import Plan
from ..core.status import Status
from . import consent, flags, progress
from .planning import cascade_lines, cascade_of, forced_targets, opening_line, plan_selection
from .selection import expand
from .reporter import SummaryReporter
from .tasks import session_of


PROCESS_REFUSAL = ("storytree builds run in threads, not processes: a build's database connections, locks and HTTP "
                   "client cannot cross a fork, and a child's records and spend would not reach this run's summary; "
                   "drop `-P process` (or `par_type` in the doit config): `-j N` uses threads")


class Run(DoitRun):
    name = "run"
    doc_description = flags.run_description()
    cmd_options = flags.run_options()

    def parse_execute(self, in_args: list[str]) -> Any:
        # Before doit parses (it fails on `-n4`) and before any task is loaded: `-n 4` never builds.
        workers = flags.workers_meant(in_args, self.get_options())
        if workers is not None:
            raise InvalidCommand(flags.refusal(workers))
        return super().parse_execute(in_args)

    def _execute(self, outfile: Any, verbosity: Any = None, always: bool = False, continue_: bool = False,
                 reporter: Any = "console", num_process: int = 0, par_type: str = "thread", single: bool = False,
                 auto_delayed_regex: bool = False, force_verbosity: bool = False, failure_verbosity: int = 0,
                 pdb: bool = False, dry_run: bool = False) -> int:
        session = session_of(self.task_list)
        if dry_run:
            return self._dry_run(outfile, always=always, single=single)
        if session is not None and num_process and par_type == "process":
            raise InvalidCommand(PROCESS_REFUSAL)
        run = super()._execute
        kwargs = dict(verbosity=verbosity, always=always, continue_=continue_, num_process=num_process,
                      par_type=par_type, single=single, auto_delayed_regex=auto_delayed_regex,
                      force_verbosity=force_verbosity, failure_verbosity=failure_verbosity, pdb=pdb)
        if session is None:
            return run(outfile, reporter=reporter, **kwargs)
        selection = list(self.sel_tasks or [])
        forced: frozenset[str] = frozenset()
        plan = Plan(session.story_id)  # nothing selected: nothing planned, nothing counted
        if selection:
            try:
                session.renamer.reconcile()  # labels shifted: rename paid assets before deciding what to build
                statuses: dict[str, Status] = {}
                plan = plan_selection(session, self.task_list, selection, single=single, always=always,
                                      statuses=statuses)
                session.planned.keep(statuses)  # a no-op decides each target once (building/planned.py)
                self._refuse_over_budget(session, plan, selection)
                self._announce(session, plan)
                refused = consent.refusal(session, plan)  # on a terminal, asks `Proceed? [y/N]`
            except StorytreeError as exc:
                raise InvalidCommand(str(exc)) from None
            if refused:
                sys.stderr.write(refused + "\n")
                return ExitCode.REFUSED  # before anything is built or paid for
            if always:
                forced = frozenset(forced_targets(session, self.task_list, selection))
        # --continue: a target another worker is building is reported, not awaited
        session.start_run(RunOptions(forced=forced, wait_for_claims=not continue_))
        if reporter is SummaryReporter:
            reporter = SummaryReporter.bound(session)
        with progress.showing(session, plan, outfile) as outfile:  # [k/N], spend, time left (a live line on a tty)
            if selection:
                self._batch_phase(session, selection, single)
            code = run(outfile, reporter=reporter, **kwargs)
        return session.summary.exit_code(code)

    def _dry_run(self, outfile: Any, always: bool, single: bool) -> int:
        """`doit -n SELECTION`: the listing of `doit dryrun SELECTION` with the same `-a` and `-s`, on the tasks and
        database this command already loaded; like the dry-run it writes nothing (doit's database stays closed)."""
        from .cmd_dryrun import DryRun

        dry = DryRun(task_loader=self.loader, config=self.config, bin_name=self.bin_name)
        dry.task_list, dry.dep_manager = self.task_list, self.dep_manager
        stream = open(outfile, "w", encoding="utf-8") if isinstance(outfile, str) else outfile  # -o FILE, as run does
        try:
            dry.outstream = stream
            return int(dry._execute(pos_args=list(self.sel_tasks or []), always=always, single=single))
        finally:
            if stream is not outfile:
                stream.close()

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
        session.planned.forget()  # jobs submitted or collected change records and files: decide again
        try:
            session.batch_flow.run(chosen, submit=batch_mode, forced=session.run_options.forced)
        except StorytreeError as exc:
            raise InvalidCommand(f"batch mode: {exc}") from None

    def _announce(self, session: Any, plan: Plan) -> None:
        """The opening lines, before anything is paid: what the build puts out of date and what that costs, then
        what it pays for, what is free and what waits (nothing when nothing would run)."""
        currency = session.settings.prices.currency
        lines = cascade_lines(cascade_of(session, plan), currency, session.story_id)
        opening = opening_line(plan, currency, session.settings.max_cost, bool(plan.to_run) and _paid(session.provider_name))
        for line in lines + ([opening] if opening else []):
            sys.stderr.write(f"storytree: {line}\n")

    def _refuse_over_budget(self, session: Any, plan: Plan, selection: list[str]) -> None:
        limit = session.gate.budget.limit
        if limit is None:
            return
        refusal = budget_refusal(plan, limit, session.settings.prices.currency, selection,
                                 {t.task: t.model for t in session.manifest.targets})
        if refusal:
            raise InvalidCommand(refusal)


def _paid(provider_name: str) -> bool:
    """Whether the provider's calls cost money; the registry is imported only when something would run (a no-op
    build never loads a provider module)."""
    from ..providers.registry import entry

    return entry(provider_name).paid
