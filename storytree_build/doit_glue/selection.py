"""What a command line selects, by doit's own machinery: the one expansion the dry-run and the `max_cost` check use,
so neither can disagree with what doit runs (names, basename groups, wildcards, output paths, task options, `-s`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from doit.control import TaskControl
from doit.task import Task


def expand(tasks: Iterable[Task], selection: list[str], single: bool = False) -> list[str]:
    """Names of the tasks doit would execute for `selection`: the selected tasks and everything they depend on
    (with `single`, doit's `-s`: only the selected ones, and a selected basename group's members), in definition
    order."""
    if single:
        return _walk(tasks, selection, lambda task, selected: task.task_dep if selected and task.has_subtask else [])
    return _walk(tasks, selection, lambda task, selected: [*task.task_dep, *task.setup_tasks])


def named(tasks: Iterable[Task], selection: list[str]) -> list[str]:
    """Names of the tasks `selection` names itself: the selected tasks and, through groups (tasks without actions:
    `story:<id>`, `shot:<key>`, `image`), their members — never what a selected target merely depends on."""
    return _walk(tasks, selection, lambda task, selected: [] if task.actions else task.task_dep)


def _walk(tasks: Iterable[Task], selection: list[str], follow: Callable[[Task, bool], list[str]]) -> list[str]:
    control = TaskControl([_clone(t) for t in tasks])
    control.process(selection or [])
    selected = set(control.selected_tasks or [])
    chosen: set[str] = set()
    stack = list(selected)
    while stack:
        name = stack.pop()
        if name in chosen:
            continue
        chosen.add(name)
        stack.extend(follow(control.tasks[name], name in selected))
    return [name for name in control.tasks if name in chosen]


def _clone(task: Task) -> Task:
    """A copy doit may change: TaskControl extends `task_dep` and parses task options (once per task) in place, and
    doit itself processes the same command line again afterwards."""
    clone = object.__new__(Task)
    clone.__dict__.update(task.__dict__)
    clone.task_dep = list(task.task_dep)
    clone.options = None
    return clone
