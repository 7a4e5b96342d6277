"""What a build of a selection would do, and why, and what it would cost: shared by `doit dryrun` and the
`max_cost` check. Pure: the caller expands the selection (doit's own machinery, `doit/selection.py`) and supplies
each target's status and price."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .manifest import Target
from .status import Status


@dataclass
class PlanItem:
    task: str
    kind: str
    output: str
    action: str  # run | publish | adopt | skip | wait (a video held back until its key frame is approved)
    reason: str
    references: list[str]
    units: dict[str, Any]
    request: dict[str, Any] | None = None  # what would be sent (run items only): model, config, prompt, refs
    cost: float | None = 0.0  # estimated cost of this item (0 when skipped or publish-only; None = unknown price)


@dataclass
class Plan:
    story_id: str
    items: list[PlanItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def to_run(self) -> list[PlanItem]:
        return [i for i in self.items if i.action not in ("skip", "wait")]

    @property
    def waiting(self) -> list[PlanItem]:
        return [i for i in self.items if i.action == "wait"]

    @property
    def total(self) -> float:
        """What this run would spend (videos held back for review cost nothing now)."""
        return round(sum(i.cost or 0.0 for i in self.items if i.action != "wait"), 4)

    @property
    def held_back(self) -> float:
        return round(sum(i.cost or 0.0 for i in self.waiting), 4)

    def subtotals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for item in self.items:
            if item.action != "wait":
                out[item.kind] = round(out.get(item.kind, 0.0) + (item.cost or 0.0), 4)
        return out

    @property
    def unpriced(self) -> list[PlanItem]:
        return [i for i in self.items if i.cost is None]

    def biggest(self, n: int = 5) -> list[PlanItem]:
        return sorted((i for i in self.items if i.cost), key=lambda i: (-(i.cost or 0), i.task))[:n]


def make_plan(story_id: str, entries: Iterable[tuple[Target, Status]], cost_of: Callable[[Target], float | None],
              forced: set[str] | None = None,
              held_back: Callable[[Target, set[str]], str | None] = lambda target, will_run: None) -> Plan:
    """`entries` in build order (dependencies first). A target runs when it is forced, not current, or when something
    it depends on runs; a built target whose path is not yet in the story database is only published (free).
    `held_back(target, will_run)` says why a target that would run waits instead (a video whose key frame is not
    approved); it costs nothing this run."""
    forced = forced or set()
    plan = Plan(story_id)
    will_run: set[str] = set()
    for target, status in entries:
        task = target.task
        ignored = {r.task for r in target.references if r.path in status.unknown_references}
        upstream = [d for d in target.depends_on if d in will_run and d not in ignored]
        if task in forced:
            action, reason = "run", "forced"
        elif not status.current and status.publish_only and not upstream:
            action, reason = "publish", status.reason
        elif not status.current and status.adoptable and not upstream:
            action, reason = "adopt", status.reason
        elif not status.current and not status.publish_only and not status.adoptable:
            action, reason = "run", status.reason
        elif upstream:  # a free step (publish, adopt) no longer fits once a reference is rebuilt: paid
            action, reason = "run", "upstream will run: " + ", ".join(upstream)
        else:
            action, reason = "skip", "up to date"
        if action == "run" and (waits := held_back(target, will_run)):
            action, reason = "wait", waits
        if action == "run":
            will_run.add(task)
        item = PlanItem(task, target.kind, target.output, action, reason,
                        [r.path for r in target.references], dict(target.units))
        if action in ("run", "wait") and not reason.endswith("(no new cost)"):
            item.cost = cost_of(target)
        plan.items.append(item)
    return plan
