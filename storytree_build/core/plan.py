"""What a build of a selection would do, and why, and what it would cost: shared by `doit dryrun` and the
`max_cost` check. Pure: the caller expands the selection (doit's own machinery, `doit_glue/selection.py`) and
supplies each target's status and price."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .manifest import Target
from .status import Reason, Status


class Action(Enum):
    """What the build does with a target; `mark` is its letter in the dry-run listing."""

    RUN = ("run", "R")  # a paid call (or a free resume of one already paid for: see PlanItem.costs)
    PUBLISH = ("publish", "P")  # built and recorded; only its path is written to the story database (free)
    ADOPT = ("adopt", "A")  # an existing file is recorded as built (free)
    RESTORE = ("restore", "F")  # its recorded file brought back from the local objects or the remote (free)
    RECORD = ("record", "E")  # a hand edit kept as a new version (free); what uses it goes out of date
    KEEP = ("keep", "K")  # a paid file another provider's build leaves in place
    BLOCKED = ("blocked", "X")  # its recorded file is gone and no copy is kept: needs `-a` (which pays)
    SKIP = ("skip", "U")  # up to date
    WAIT = ("wait", "W")  # a video held back until its key frame is approved (costs nothing this run)
    STALE = ("stale", "S")  # out of date but kept (rebuild=missing); its cost is what bringing it up to date costs

    def __init__(self, word: str, mark: str) -> None:
        self.word = word
        self.mark = mark


UPSTREAM = "upstream will run: "  # the reason of a target rebuilt only because something it uses is

# Items whose cost is shown but not spent by this run.
UNSPENT = (Action.WAIT, Action.STALE)

# Statuses brought up to date without a paid call, and what the plan calls that step.
FREE_STEPS = {Reason.PUBLISH_ONLY: Action.PUBLISH, Reason.SAVED_UNRECORDED: Action.ADOPT,
              Reason.ADOPTABLE: Action.ADOPT, Reason.RESTORE: Action.RESTORE, Reason.PULL: Action.RESTORE,
              Reason.EDITED: Action.RECORD}


@dataclass(frozen=True, kw_only=True)
class PlanItem:
    task: str
    kind: str
    output: str
    action: Action
    reason: str
    references: list[str]
    units: dict[str, Any]
    costs: bool = True  # running it pays: False for a resumed operation or a target another worker pays for
    cost: float | None = 0.0  # estimated cost of this item (0 when it pays nothing; None = unknown price)

    def as_json(self) -> dict[str, Any]:
        return {"task": self.task, "kind": self.kind, "output": self.output, "action": self.action.word,
                "reason": self.reason, "references": self.references, "units": self.units, "cost": self.cost}


@dataclass(frozen=True)
class Plan:
    story_id: str
    items: list[PlanItem] = field(default_factory=list)

    @property
    def to_run(self) -> list[PlanItem]:
        return [i for i in self.items if i.action not in (Action.SKIP, Action.WAIT, Action.KEEP, Action.BLOCKED,
                                                          Action.STALE)]

    @property
    def blocked(self) -> list[PlanItem]:
        return [i for i in self.items if i.action is Action.BLOCKED]

    @property
    def kept(self) -> list[PlanItem]:
        return [i for i in self.items if i.action is Action.KEEP]

    @property
    def paid(self) -> list[PlanItem]:
        """Items this run pays for."""
        return [i for i in self.items if i.action is Action.RUN and i.costs]

    @property
    def stale(self) -> list[PlanItem]:
        """Out of date but kept (rebuild=missing)."""
        return [i for i in self.items if i.action is Action.STALE]

    @property
    def stale_cost(self) -> float:
        """What bringing the stale items up to date would cost (not spent by this run)."""
        return round(sum(i.cost or 0.0 for i in self.stale), 4)

    @property
    def waiting(self) -> list[PlanItem]:
        return [i for i in self.items if i.action is Action.WAIT]

    @property
    def total(self) -> float:
        """What this run would spend (videos held back for review cost nothing now)."""
        return round(sum(i.cost or 0.0 for i in self.items if i.action not in UNSPENT), 4)

    @property
    def held_back(self) -> float:
        return round(sum(i.cost or 0.0 for i in self.waiting), 4)

    def subtotals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for item in self.items:
            if item.action not in UNSPENT:
                out[item.kind] = round(out.get(item.kind, 0.0) + (item.cost or 0.0), 4)
        return out

    @property
    def unpriced(self) -> list[PlanItem]:
        return [i for i in self.items if i.cost is None]

    def biggest(self, n: int = 5) -> list[PlanItem]:
        return sorted((i for i in self.items if i.cost), key=lambda i: (-(i.cost or 0), i.task))[:n]


def make_plan(story_id: str, entries: Iterable[tuple[Target, Status]], cost_of: Callable[[Target], float | None],
              forced: set[str] | frozenset[str] | None = None,
              held_back: Callable[[Target, set[str]], str | None] = lambda target, will_run: None,
              keep_existing: bool = False) -> Plan:
    """`entries` in build order (dependencies first). A target runs when it is forced, not current, or when something
    it depends on runs; a built target whose path is not yet in the story database is only published (free).
    `held_back(target, will_run)` says why a target that would run waits instead (a video whose key frame is not
    approved); it costs nothing this run. `keep_existing` (rebuild=missing): a file whose inputs changed, or whose
    references this run rebuilds, stays; it is listed as stale with what bringing it up to date would cost."""
    forced = forced or set()
    items: list[PlanItem] = []
    will_run: set[str] = set()
    for target, status in entries:
        task = target.task
        ignored = {r.task for r in target.references if r.path in status.unknown_references}
        upstream = [d for d in target.depends_on if d in will_run and d not in ignored]
        costs = True
        free = FREE_STEPS.get(status.why)
        if task in forced:
            action, reason = Action.RUN, "forced"
        elif status.why is Reason.STALE_KEPT or (keep_existing and upstream and status.current):
            action, reason, costs = Action.STALE, status.reason if not upstream else (
                "kept though " + ", ".join(upstream) + " will run: rebuild=missing builds only missing files"), False
        elif free is not None and (not upstream or keep_existing):
            action, reason = free, status.reason
        elif status.lost or status.elsewhere:  # never paid for on its own: only `-a` pays for a new one
            action, reason, costs = Action.BLOCKED, status.reason, False
        elif status.current and status.why is Reason.KEPT:
            action, reason, costs = Action.KEEP, status.reason, False
        elif not status.current and free is None:
            action, reason, costs = Action.RUN, status.reason, not status.why.costs_nothing_new
        elif upstream:  # a free step (publish, adopt, restore) no longer fits once a reference is rebuilt: paid
            action, reason = Action.RUN, UPSTREAM + ", ".join(upstream)
        else:
            action, reason = Action.SKIP, "up to date"
        if action is Action.RUN and (waits := held_back(target, will_run)):
            action, reason = Action.WAIT, waits
        if action is Action.RUN:
            will_run.add(task)
        priced = (action in (Action.RUN, Action.WAIT) and costs) or action is Action.STALE
        items.append(PlanItem(task=task, kind=target.kind, output=target.output, action=action, reason=reason,
                              references=[r.path for r in target.references], units=dict(target.units), costs=costs,
                              cost=cost_of(target) if priced else 0.0))
    return Plan(story_id, items)


@dataclass(frozen=True)
class Dependent:
    task: str
    kind: str
    cost: float | None
    in_run: bool  # rebuilt in this run (its cost is in the plan's total); else left out of date for a later build


@dataclass(frozen=True)
class Cascade:
    """Existing files that what a run rebuilds (or a hand edit it keeps) puts out of date: said before anything is
    paid, with what rebuilding them costs."""

    causes: tuple[str, ...] = ()
    dependents: tuple[Dependent, ...] = ()

    @property
    def in_run(self) -> list[Dependent]:
        return [d for d in self.dependents if d.in_run]

    @property
    def later(self) -> list[Dependent]:
        return [d for d in self.dependents if not d.in_run]

    @staticmethod
    def cost(dependents: Iterable[Dependent]) -> float:
        return round(sum(d.cost or 0.0 for d in dependents), 4)

    def by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for dependent in self.dependents:
            counts[dependent.kind] = counts.get(dependent.kind, 0) + 1
        return counts



def cascade(plan: Plan, targets: Mapping[str, Target], exists: Callable[[Target], bool],
            cost_of: Callable[[Target], float | None]) -> Cascade:
    """The existing dependents (transitively, over the whole manifest) of what `plan` rebuilds or records anew.
    A dependent the plan rebuilds because of them is `in_run`; one outside the selection, or kept by rebuild=missing,
    is left out of date."""
    by_task = {item.task: item for item in plan.items}
    changed = {i.task for i in plan.items if i.action in (Action.RUN, Action.RECORD)}
    in_run = {i.task for i in plan.items if i.action is Action.RUN and i.reason.startswith(UPSTREAM)}
    causes = tuple(sorted(changed - in_run))
    users: dict[str, list[str]] = {}
    for target in targets.values():
        for dependency in target.depends_on:
            users.setdefault(dependency, []).append(target.task)
    seen: set[str] = set()
    frontier = list(causes)
    while frontier:
        for user in users.get(frontier.pop(), ()):
            if user not in seen and user not in causes:
                seen.add(user)
                frontier.append(user)
    dependents = []
    for task in sorted(seen):
        target = targets[task]
        if task in in_run:
            dependents.append(Dependent(task, target.kind, by_task[task].cost, True))
        elif task not in changed and exists(target):
            dependents.append(Dependent(task, target.kind, cost_of(target), False))
    return Cascade(causes, tuple(dependents))
