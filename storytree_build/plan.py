"""What a build of a selection would do, and why: pure of side effects, shared by `dryrun` and the CLI."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from .build import BuildContext
from .errors import InputError, StorytreeError
from .pricing import estimate


@dataclass
class PlanItem:
    task: str
    kind: str
    output: str
    action: str  # run | publish | skip
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
        return [i for i in self.items if i.action != "skip"]

    @property
    def total(self) -> float:
        return round(sum(i.cost or 0.0 for i in self.items), 4)

    def subtotals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for item in self.items:
            out[item.kind] = round(out.get(item.kind, 0.0) + (item.cost or 0.0), 4)
        return out

    @property
    def unpriced(self) -> list[PlanItem]:
        return [i for i in self.items if i.cost is None]

    def biggest(self, n: int = 5) -> list[PlanItem]:
        return sorted((i for i in self.items if i.cost), key=lambda i: (-(i.cost or 0), i.task))[:n]


def expand_selection(ctx: BuildContext, selection: list[str]) -> list[str]:
    """Selected target tasks plus everything they depend on, in build order (manifest order)."""
    targets = ctx.manifest.by_task()
    groups: dict[str, list[str]] = {f"story:{ctx.manifest.story_id}": list(targets)}
    for t in ctx.manifest.targets:
        basename = t.task.split(":", 1)[0]
        groups.setdefault(basename, []).append(t.task)
        if t.shot is not None:
            groups.setdefault(f"shot:{t.shot.scenelet_id}_{t.shot.shot_index}", []).append(t.task)
    by_output = {str(ctx.settings.assets_root / t.output): t.task for t in ctx.manifest.targets}
    by_output.update({t.output: t.task for t in ctx.manifest.targets})
    chosen: set[str] = set()
    for arg in selection:
        if arg in targets:
            chosen.add(arg)
        elif arg in groups:
            chosen.update(groups[arg])
        elif "*" in arg:
            matched = [n for n in [*targets, *groups] if fnmatch.fnmatchcase(n, arg)]
            if not matched:
                raise InputError(f'"{arg}" matches no task of story {ctx.manifest.story_id}.')
            for name in matched:
                chosen.update(groups.get(name, [name]))
        elif arg in by_output:
            chosen.add(by_output[arg])
        else:
            raise InputError(f'"{arg}" is not a task of story {ctx.manifest.story_id}; `doit list --all` shows the names.')
    stack = list(chosen)
    while stack:
        for dep in targets[stack.pop()].depends_on:
            if dep not in chosen:
                chosen.add(dep)
                stack.append(dep)
    return [t.task for t in ctx.manifest.targets if t.task in chosen]


def make_plan(ctx: BuildContext, selection: list[str], forced: set[str] | None = None, validate: bool = True) -> Plan:
    forced = forced or set()
    plan = Plan(ctx.manifest.story_id)
    will_run: set[str] = set()
    for task in expand_selection(ctx, selection):
        target = ctx.target(task)
        status = ctx.status(task)
        upstream = [d for d in target.depends_on if d in will_run]
        if task in forced:
            action, reason = "run", "forced"
        elif not status.current and status.publish_only and not upstream:
            action, reason = "publish", status.reason
        elif not status.current:
            action, reason = "run", status.reason
        elif upstream:
            action, reason = "run", "upstream will run: " + ", ".join(upstream)
        else:
            action, reason = "skip", "up to date"
        if action == "run":
            will_run.add(task)
        item = PlanItem(task, target.kind, target.output, action, reason,
                        [r.path for r in target.references], dict(target.units))
        if action == "run" and not reason.endswith("(no new cost)"):
            item.cost = estimate(target, ctx.settings.prices, ctx.provider_name)
        plan.items.append(item)
        if validate and action == "run":
            problems, item.request = check_target(ctx, task, will_run)
            plan.problems += problems
    return plan


def check_target(ctx: BuildContext, task: str, will_run: set[str]) -> tuple[list[str], dict[str, Any] | None]:
    """Render the prompt from the store (must match the manifest) and check existing reference files.
    Returns the problems and the request that would be sent."""
    target = ctx.target(task)
    problems = []
    request = None
    try:
        user, system = ctx.render(target)
        request = {"model": target.model, "config": target.config, "system_instruction": system,
                   "prompt": user, "references": [r.model_dump() for r in target.references]}
    except StorytreeError as exc:
        problems.append(str(exc))
    for ref in target.references:
        if ref.task in will_run:
            continue
        path = ctx.settings.assets_root / ref.path
        if not path.is_file() or path.stat().st_size == 0:
            problems.append(f"{task}: reference image for {ref.kind} {ref.id} is missing: expected "
                            f"{path.relative_to(ctx.settings.root)} (built by `doit {ref.task}`).")
    return problems, request
