"""The plan of one doit command line: doit's own selection (selection.py), each target's status, its price. The
dry-run shows it; the `run` command refuses to start when it is over `max_cost`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from doit.task import Task

from ..core.manifest import Target
from ..core.status import Status
from ..review.gate import frame_of
from ..core.plan import Action, Cascade, Plan, PlanItem, cascade, make_plan
from .selection import expand, named

if TYPE_CHECKING:
    from ..bootstrap import Session


def forced_targets(session: "Session", tasks: Iterable[Task], selection: list[str]) -> set[str]:
    """What `doit -a SELECTION` forces: the targets it names (directly, by group, glob or output path), never the
    references they merely depend on."""
    return set(named(tasks, selection)) & set(session.targets)


def plan_selection(session: "Session", tasks: Iterable[Task], selection: list[str], single: bool = False,
                   always: bool = False, statuses: dict[str, Status] | None = None) -> Plan:
    """The plan of the selection; `statuses`, when given, receives each target's status (the run hands them to
    doit's up-to-date checks: building/planned.py)."""
    tasks = list(tasks)
    targets = session.targets
    names = [n for n in expand(tasks, selection, single=single) if n in targets]
    forced = forced_targets(session, tasks, selection) if always else set()
    seen = statuses if statuses is not None else {}

    def status(name: str) -> Status:
        seen[name] = found = session.facts.status(name)
        return found

    entries = ((targets[n], status(n)) for n in names)
    plan = make_plan(session.story_id, entries, session.pricing.cost, forced, held_back(session),
                     keep_existing=session.settings.build.rebuild == "missing")
    if session.builds and any(item.action is Action.RUN for item in plan.items):
        session.check_provider()  # a build that calls the provider: its key once, before any target starts
    return plan


def held_back(session: "Session") -> Callable[[Target, set[str]], str | None]:
    """Videos the review gate holds back: the reason, or None (the gate is off: always None)."""
    gate = session.review_gate
    if not gate.required:
        return lambda target, will_run: None

    def reason(target: Target, will_run: set[str]) -> str | None:
        frame = gate.waiting_for(target, frame_rebuilt=frame_of(target.task) in will_run)
        if frame is None:
            return None
        if frame in will_run:
            return f"waiting for review of {frame} (built first in this run; nothing is paid for the video)"
        return gate.reason(target, frame)

    return reason


@dataclass(frozen=True)
class PlanCheck:
    """What the dry-run found by rendering every prompt a plan would send: the problems that would stop the build,
    and each paid item's request (model, config, prompt, references) for `--requests`."""

    problems: list[str]
    requests: dict[str, dict[str, Any]]


def previews(session: "Session", plan: Plan) -> Iterator[tuple[PlanItem, list[str], dict[str, Any] | None]]:
    """Each item of the plan with what checking it found and, for one that would run, the request it would send
    (one at a time: the dry-run's JSON writes each and lets it go)."""
    will_run = {item.task for item in plan.items if item.action is Action.RUN}
    for item in plan.items:
        if item.action is Action.RUN:
            found, request = session.requests.preview(session.target(item.task), will_run)
            yield item, found, request
        else:
            yield item, [], None


def check_plan(session: "Session", plan: Plan) -> PlanCheck:
    """Render every prompt that would be sent (it must match the manifest) and check the reference files that no
    planned target builds."""
    problems: list[str] = []
    requests: dict[str, dict[str, Any]] = {}
    for item, found, request in previews(session, plan):
        problems += found
        if request is not None:
            requests[item.task] = request
    return PlanCheck(problems, requests)


def cascade_of(session: "Session", plan: Plan) -> Cascade:
    root = session.settings.assets_root
    return cascade(plan, session.targets, lambda target: (root / target.output).exists(), session.pricing.cost)


def cascade_lines(found: Cascade, currency: str, story_id: str) -> list[str]:
    """What the dry-run and a build's opening lines say about a cascade (nothing when there is none)."""
    if not found.dependents:
        return []
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(found.by_kind().items()))
    shown = ", ".join(found.causes[:3]) + (f" and {len(found.causes) - 3} more" if len(found.causes) > 3 else "")
    lines = [f"rebuilding {shown} puts {len(found.dependents)} existing file(s) out of date ({kinds}): "
             f"{Cascade.cost(found.dependents):.2f} {currency} to rebuild them"]
    if found.in_run:
        lines.append(f"  {len(found.in_run)} of them are rebuilt in this run "
                     f"({Cascade.cost(found.in_run):.2f} {currency}, in the estimate)")
    if found.later:
        lines.append(f"  {len(found.later)} of them are left out of date ({Cascade.cost(found.later):.2f} {currency}): "
                     f"the next `doit story:{story_id}` rebuilds them; rebuild=missing keeps them")
    return lines


# The free or deferred steps the opening line counts, in its order, with the words it uses.
OPENING_COUNTS = ((Action.RESTORE, "restored"), (Action.ADOPT, "adopted"), (Action.PUBLISH, "published"),
                  (Action.RECORD, "hand edit(s) kept"), (Action.WAIT, "wait for review"),
                  (Action.STALE, "stale kept"), (Action.BLOCKED, "blocked"), (Action.KEEP, "kept"),
                  (Action.SKIP, "up to date"))


def opening_line(plan: Plan, currency: str, cap: float | None, paid_provider: bool) -> str | None:
    """The one line a build says before its first paid call: what it pays for, what is free, what waits, the
    estimate and the cap. None when nothing would run (a no-op stays quiet)."""
    if not plan.to_run:
        return None
    paid = plan.paid
    resumed = sum(1 for i in plan.to_run if i.action is Action.RUN and not i.costs)
    unpriced = sum(1 for i in paid if i.cost is None)
    if paid_provider:
        bound = f"cap {cap:.2f} {currency}" if cap is not None else "no cap"
        priced = f"{plan.total:.2f} {currency} est." + (f" + {unpriced} unpriced" if unpriced else "")
        money = f"{priced}, {bound}"
    else:
        money = f"{plan.total:.2f} {currency}, offline"
    verb = "to pay" if paid_provider else "to generate"
    parts = [f"{len(paid)} {verb} ({money})"] + ([f"{resumed} resumed (already paid)"] if resumed else [])
    for action, word in OPENING_COUNTS:
        count = sum(1 for i in plan.items if i.action is action)
        if count:
            parts.append(f"{count} {word}")
    return f"story {plan.story_id}: " + ", ".join(parts)
