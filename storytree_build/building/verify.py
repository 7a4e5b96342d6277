"""`storytree verify STORY_ID`: files ↔ records ↔ manifest ↔ story database, and a safe repair.

Never calls a provider. The only repair is writing a recorded asset's path into the story database
(what a build does after a successful generation), so it is safe to run at any time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core import naming
from ..core.design_paths import FieldChoice, field_name, shown
from ..core.manifest import DbLocation, Manifest, Target
from ..core.status import Reason
from ..store.build_state import OperationsPort
from .facts import FactGatherer
from .outputs import Outputs

if TYPE_CHECKING:
    from ..core.story import StorySnapshot


@dataclass
class VerifyReport:
    ok: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def stored_value(snapshot: StorySnapshot, location: DbLocation) -> Any:
    if location.path is None:
        for shot in snapshot.shots:
            if shot["scenelet_id"] == location.scenelet_id and shot["shot_index"] == location.shot_index:
                return shot.get(location.column)
        return None
    node: Any = snapshot.story.get(location.column)
    for segment in location.path:
        try:
            node = node[segment]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def kept_original_paths(target: Target, snapshot: StorySnapshot, outputs: Outputs) -> dict[int, tuple[str, Any]]:
    """The target's design-document fields a build leaves alone (core/design_paths.py), by their index in
    `target.db`: (the field's name, the value kept)."""
    kept: dict[int, tuple[str, Any]] = {}
    for i, loc in enumerate(target.db):
        if loc.path is None or not outputs.design_fields.guards(loc):
            continue  # a shot column or an unguarded document: nothing is kept there (and no story read per shot)
        value = stored_value(snapshot, loc)
        if outputs.design_fields.choice(target, loc, value) is FieldChoice.KEEP:
            kept[i] = (field_name(loc.column, loc.path), value)
    return kept


def verify(manifest: Manifest, snapshot: StorySnapshot, facts: FactGatherer, operations: OperationsPort,
           outputs: Outputs, repair: bool = True) -> VerifyReport:
    report = VerifyReport()
    recorded = outputs.records.all()
    elsewhere: list[str] = []
    for target in manifest.targets:
        rec = recorded.get(target.task)
        digest = facts.file_hash(target.output)
        where = f"{target.task} ({target.output})"
        kept = kept_original_paths(target, snapshot, outputs)
        report.notes.extend(f"{where}: kept original-system path {shown(value)} in {name} (an existing file storytree "
                            "did not make; the story keeps showing it: clear the field and run verify to show "
                            "storytree's file there)." for name, value in kept.values())
        if digest is None:
            status = facts.status(target.task)
            if status.elsewhere:
                elsewhere.append(f"{where}: {status.reason}.")
                continue
            if rec is not None:
                report.problems.append(f"{where}: recorded as built but the file is missing; " + (
                    "the next build restores it (no cost)." if status.restorable else status.reason + "."))
            for loc in target.db:
                value = naming.from_stored(stored_value(snapshot, loc))
                if value == target.output:
                    report.problems.append(f"{where}: the story database points at the missing file ({loc.column}).")
            continue
        if rec is None:
            status = facts.status(target.task)
            if status.why is Reason.INVALID_FILE:
                report.problems.append(f"{where}: {status.reason}; it is never adopted or sent to a model.")
                continue
            report.notes.append(f"{where}: a file exists but has no record; " + (
                "the next build adopts it (no cost)." if status.adoptable else "the next build would replace it."))
            continue
        if rec.output_sha256 != digest:
            flaw = facts.damaged(target.output)
            if flaw:
                status = facts.status(target.task)
                report.problems.append(f"{where}: the file is damaged ({flaw}); " + (
                    "the next build restores it (no cost)." if status.restorable else status.reason + "."))
            else:
                report.notes.append(f"{where}: edited by hand since it was recorded; the next build keeps it as a "
                                    "new version (no cost) and what uses it goes out of date.")
            continue
        status = facts.status(target.task)
        if not status.current and not status.publish_only:
            report.notes.append(f"{where}: stale ({status.reason}); the recorded file stays in use until rebuilt.")
        stale_locations = [loc for i, loc in enumerate(target.db) if i not in kept
                           and naming.from_stored(stored_value(snapshot, loc)) != target.output]
        if stale_locations and repair:
            outputs.publish(target)
            report.repaired.append(f"{where}: wrote the path into " +
                                   ", ".join(loc.column for loc in stale_locations))
        elif stale_locations:
            report.problems.append(f"{where}: the story database does not point at it "
                                   f"({', '.join(loc.column for loc in stale_locations)}); run verify with repair.")
        else:
            report.ok.append(target.task)
    report.problems.extend(elsewhere)  # built by another checkout: sync the asset folder (a build would not pay for them)
    known = {t.task for t in manifest.targets}
    for task in sorted(set(recorded) - known):
        report.notes.append(f"{task}: a record for a target that is no longer in the manifest ({recorded[task].output}).")
    for task, op in sorted(operations.all().items()):
        report.notes.append(f"{task}: video operation {op.operation or '(no name)'} is {op.state} since "
                            f"{op.submitted_at}; the next build {'resumes it' if op.state == 'submitted' else 'asks you to resolve it'}.")
    return report
