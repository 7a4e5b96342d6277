"""The plan of one doit command line: doit's own selection (selection.py), each target's status, its price. The
dry-run shows it; the `run` command refuses to start when it is over `max_cost`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from doit.task import Task

from ..review.gate import frame_of
from ..core.plan import Plan, make_plan
from .selection import expand, named

if TYPE_CHECKING:
    from ..bootstrap import Session


def forced_targets(session: "Session", tasks: Iterable[Task], selection: list[str]) -> set[str]:
    """What `doit -a SELECTION` forces: the targets it names (directly, by group, glob or output path), never the
    references they merely depend on."""
    return set(named(tasks, selection)) & set(session.builder.targets)


def plan_selection(session: "Session", tasks: Iterable[Task], selection: list[str], single: bool = False,
                   always: bool = False) -> Plan:
    tasks = list(tasks)
    targets = session.builder.targets
    names = [n for n in expand(tasks, selection, single=single) if n in targets]
    forced = forced_targets(session, tasks, selection) if always else set()
    entries = ((targets[n], session.checker.status(n)) for n in names)
    return make_plan(session.story_id, entries, session.cost_of, forced, held_back(session))


def held_back(session: "Session"):  # noqa: ANN201 - Callable[[Target, set[str]], str | None]
    """Videos the review gate holds back: the reason, or None (the gate is off: always None)."""
    gate = session.review_gate
    if not gate.required:
        return lambda target, will_run: None

    def reason(target, will_run: set[str]) -> str | None:  # noqa: ANN001 - Target
        frame = gate.waiting_for(target, frame_rebuilt=frame_of(target.task) in will_run)
        if frame is None:
            return None
        if frame in will_run:
            return f"waiting for review of {frame} (built first in this run; nothing is paid for the video)"
        return gate.reason(target, frame)

    return reason


def check_plan(session: "Session", plan: Plan) -> None:
    """Render every prompt that would be sent (it must match the manifest) and check the reference files that no
    planned target builds; problems and the requests go into the plan."""
    will_run = {item.task for item in plan.items if item.action == "run"}
    for item in plan.items:
        if item.action == "run":
            problems, item.request = session.requests.preview(session.target(item.task), will_run)
            plan.problems += problems
