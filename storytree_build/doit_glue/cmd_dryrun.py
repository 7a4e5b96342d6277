"""`doit dryrun [SELECTION]`: every target a build would run, with its reason; calls no provider and
writes nothing. `doit -n [SELECTION]` (make's -n, cmd_run.py) shows the same listing.

Exit codes (core/exit_codes.py): OK listed; CHECK_FOUND_WORK with --check when something would run; FAILED when a
prompt, reference or manifest problem would stop the build.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

from doit.cmd_base import DoitCmdBase

from ..core.errors import StorytreeError
from ..core.exit_codes import ExitCode
from ..core.manifest import TEXT_ONLY
from ..core.plan import Action, Cascade, Plan
from ..core.pricing import describe_units
from .json_stream import write_document
from .gc_phases import loading_done
from .planning import cascade_lines, cascade_of, check_plan, plan_selection, previews
from .tasks import session_of

opt_json = {"name": "json_output", "long": "json", "type": bool, "default": False,
            "help": "print only JSON on stdout"}
opt_check = {"name": "check", "long": "check", "type": bool, "default": False,
             "help": "exit 1 when anything would run (for CI)"}
opt_requests = {"name": "requests", "long": "requests", "type": bool, "default": False,
                "help": "print the full request (prompt, references, config) of every target that would run"}
opt_always = {"name": "always", "short": "a", "long": "always-execute", "type": bool, "default": False,
              "help": "show what `doit -a` would force"}
opt_single = {"name": "single", "short": "s", "long": "single", "type": bool, "default": False,
              "help": "show what `doit -s` would run: the named tasks without their dependencies"}


class DryRun(DoitCmdBase):
    name = "dryrun"
    doc_purpose = "list what a build would do, and why, without spending anything"
    doc_usage = "[TASK ...]"
    doc_description = __doc__
    cmd_options = (opt_json, opt_check, opt_always, opt_single, opt_requests)

    def _execute(self, pos_args: list[str] | None = None, json_output: bool = False, check: bool = False,
                 always: bool = False, requests: bool = False, single: bool = False) -> ExitCode:
        from doit.exceptions import InvalidCommand

        loading_done()
        session = session_of(self.task_list)
        if session is None:
            self.outstream.write("dryrun: no story manifest is loaded (run `storytree manifest <story-id>`).\n")
            return ExitCode.FAILED
        selection = list(pos_args or [])
        if not selection:
            sys.stderr.write("dryrun: name what to build, e.g. `doit dryrun story:<id>`.\n")
            return ExitCode.FAILED
        try:
            # reads the records and the journal: an unreadable row is a message, not a traceback
            moves, journal_set_aside = session.renamer.preview()
            plan = plan_selection(session, self.task_list, selection, single=single, always=always)
            checked = None if json_output else check_plan(session, plan)  # the JSON checks while it writes
        except (StorytreeError, InvalidCommand) as exc:
            sys.stderr.write(f"dryrun: {exc}\n")
            return ExitCode.FAILED
        prices = session.settings.prices
        modes = _mode_totals(session, plan)
        found = cascade_of(session, plan)
        if json_output:
            problems = _write_json(self.outstream, session, plan, modes, found, moves, journal_set_aside)
        else:
            assert checked is not None
            problems = checked.problems
            if journal_set_aside:
                self.outstream.write(f"J the rename journal of an interrupted build will be set aside: {journal_set_aside}; "
                                     "nothing in it is moved\n")
            for move in moves:
                self.outstream.write(f"M {move.new_task}  [renamed from {move.old_task}: scenelet labels shifted; "
                                     "no cost]\n")
            if moves:
                self.outstream.write("  (the statuses below are from before these renames, which the build does first)\n")
            for item in plan.items:
                if item.action is Action.SKIP:
                    continue
                unspent = " to bring up to date (not spent)" if item.action is Action.STALE else ""
                self.outstream.write(f"{item.action.mark} {item.task}  [{item.reason}]  {describe_units(item.units)}, "
                                     f"{_money(item.cost, prices.currency)}{unspent}\n    → {item.output}\n")
                for ref in item.references:
                    self.outstream.write(f"    ref {ref}\n")
                if session.target(item.task).text_only:
                    self.outstream.write(f"    {TEXT_ONLY}\n")
                if item.action is Action.RECORD:
                    stale = [i.task for i in plan.items if i.action is Action.RUN
                             and item.task in session.target(i.task).depends_on]
                    if stale:
                        self.outstream.write(f"    puts out of date: {', '.join(stale)}\n")
                req = checked.requests.get(item.task)
                if requests and req:
                    self.outstream.write(f"    model {req['model']} {json.dumps(req['config'])}\n")
                    if req["system_instruction"]:
                        self.outstream.write("    system instruction:\n" + _indent(req["system_instruction"]))
                    self.outstream.write("    prompt:\n" + _indent(req["prompt"]))
            for kind, subtotal in plan.subtotals().items():
                if subtotal:
                    self.outstream.write(f"  subtotal {kind}: {_money(subtotal, prices.currency)}\n")
            self.outstream.write(f"  estimated total: {_money(plan.total, prices.currency)} "
                                 f"(estimate from the price table of {prices.as_of}; the provider bills the real amount)\n")
            for line in cascade_lines(found, prices.currency, plan.story_id):
                self.outstream.write(f"  {line}\n")
            if modes[0] != modes[1]:
                now = "batch" if session.settings.generation.batch else "interactive"
                self.outstream.write(f"  interactive: {_money(modes[0], prices.currency)} · batch mode (batch=1, images "
                                     f"at {prices.image_batch_factor:.0%} through the Batch API, minutes to 24 h): "
                                     f"{_money(modes[1], prices.currency)} — this run: {now}\n")
            if plan.unpriced:
                self.outstream.write(f"  no price known for: {', '.join(sorted({session.target(i.task).model for i in plan.unpriced}))}"
                                     " (add it to [prices] in storytree.toml)\n")
            if plan.waiting:
                self.outstream.write(f"  held back for review: {len(plan.waiting)} video(s), "
                                     f"{_money(plan.held_back, prices.currency)} (not in the total; approve their key "
                                     f"frames: `storytree review list {plan.story_id}`)\n")
            if plan.stale:
                self.outstream.write(f"  stale but kept: {len(plan.stale)} file(s) (rebuild=missing), "
                                     f"{_money(plan.stale_cost, prices.currency)} to bring up to date (not in the "
                                     "total; rebuild=outdated or `doit -a <task>` rebuilds them)\n")
            if plan.kept:
                self.outstream.write(f"  kept: {len(plan.kept)} paid file(s) another provider made; provider "
                                     f"{session.provider_name} does not replace them (`doit -a` would)\n")
            if plan.blocked:
                self.outstream.write(f"  blocked: {len(plan.blocked)} recorded file(s) gone with no copy kept; "
                                     "`doit -a <task>` pays for new ones\n")
            skipped = (len(plan.items) - len(plan.to_run) - len(plan.waiting) - len(plan.blocked) - len(plan.kept)
                       - len(plan.stale))
            waiting = f", {len(plan.waiting)} waiting for review" if plan.waiting else ""
            kept = f", {len(plan.kept)} kept" if plan.kept else ""
            blocked = f", {len(plan.blocked)} blocked" if plan.blocked else ""
            kept += f", {len(plan.stale)} stale kept" if plan.stale else ""
            self.outstream.write(f"dryrun: {len(plan.to_run)} would run{waiting}{blocked}, {skipped} up to date{kept} "
                                 f"(provider {session.provider_name}); nothing was called or written.\n")
            for problem in checked.problems:
                sys.stderr.write(f"dryrun: problem: {problem}\n")
        if problems:
            return ExitCode.FAILED
        if check and (plan.to_run or plan.waiting or plan.blocked):
            return ExitCode.CHECK_FOUND_WORK
        return ExitCode.OK


def _write_json(out: Any, session: Any, plan: Plan, modes: tuple[float, float], found: Cascade, moves: list[Any],
                journal_set_aside: Any) -> list[str]:
    """The listing as one JSON document, written target by target (each request rendered, written and let go);
    the problems found on the way, which close the document."""
    prices = session.settings.prices
    problems: list[str] = []

    def targets() -> Iterator[dict[str, Any]]:
        for item, found_problems, request in previews(session, plan):
            problems.extend(found_problems)
            yield {**item.as_json(), "text_only": session.target(item.task).text_only, "request": request}

    def after() -> dict[str, Any]:
        return {
            "would_run": len(plan.to_run),
            "waiting_for_review": len(plan.waiting),
            "kept": len(plan.kept),
            "blocked": len(plan.blocked),
            "stale": len(plan.stale),
            "estimate": {"currency": prices.currency, "prices_as_of": prices.as_of, "total": plan.total,
                         "by_kind": plan.subtotals(), "unpriced": [i.task for i in plan.unpriced],
                         "held_back": plan.held_back, "stale_cost": plan.stale_cost,
                         "batch_mode": session.settings.generation.batch,
                         "interactive_total": modes[0], "batch_total": modes[1]},
            "cascade": {"causes": list(found.causes), "dependents": [d.__dict__ for d in found.dependents],
                        "cost": found.cost(found.dependents), "in_run_cost": found.cost(found.in_run),
                        "later_cost": found.cost(found.later)},
            "renames": [m.__dict__ for m in moves],
            "rename_journal_set_aside": journal_set_aside,
            "problems": problems,
        }

    write_document(out, {"story_id": plan.story_id, "provider": session.provider_name}, "targets", targets(), after)
    return problems


def _mode_totals(session: Any, plan: Plan) -> tuple[float, float]:
    """The plan's total in interactive mode and in batch mode (images at the batch price)."""
    interactive = batch = 0.0
    for item in plan.paid:
        if item.cost is not None:
            target = session.target(item.task)
            interactive += session.pricing.interactive_cost(target) or 0.0
            batch += session.pricing.batch_cost(target) or 0.0
    return round(interactive, 4), round(batch, 4)


def _money(value: float | None, currency: str) -> str:
    return "price unknown" if value is None else f"{value:,.2f} {currency}"


def _indent(text: str) -> str:
    return "".join(f"      {line}\n" for line in text.splitlines())
