"""What changed between a story's manifest and the one its store gives now, target by target: the line a build
prints when it writes the manifest again (`manifest <story>: 2 targets changed (1 added, 1 changed)`), and the
refusal of a frozen build."""

from __future__ import annotations

from dataclasses import dataclass

from .model import Manifest

NAMED = 3  # target names shown per kind of change; the rest are counted


@dataclass(frozen=True)
class ManifestChanges:
    added: list[str]
    removed: list[str]
    changed: list[str]  # the same task with other inputs (prompt, model, config, references, output, …)

    @property
    def count(self) -> int:
        return len(self.added) + len(self.removed) + len(self.changed)

    def describe(self) -> str:
        """`2 targets changed (1 added: video:scenelet-3_1; 1 changed: image:scenelet-1_1)`."""
        parts = [f"{len(tasks)} {word}: {_names(tasks)}" for word, tasks in
                 (("added", self.added), ("removed", self.removed), ("changed", self.changed)) if tasks]
        if not parts:
            return "no target changed"
        return f"{self.count} target{'s' if self.count != 1 else ''} changed ({'; '.join(parts)})"


def _names(tasks: list[str]) -> str:
    shown = ", ".join(tasks[:NAMED])
    return shown if len(tasks) <= NAMED else f"{shown} and {len(tasks) - NAMED} more"


def compare(old: Manifest | None, new: Manifest) -> ManifestChanges:
    """Target by target; `old` None (no manifest, or one that could not be read): every target is added."""
    before = old.by_task() if old is not None else {}
    after = new.by_task()
    return ManifestChanges(
        added=[task for task in after if task not in before],
        removed=[task for task in before if task not in after],
        changed=[task for task, target in after.items() if task in before and before[task] != target])
