"""Stable identity: when scenelet labels shift (a branch was added), a shot's assets follow the shot.

A record remembers what its target *is* (kind, scenelet uuid, shot index). When the manifest names that
same target differently, the files are renamed to the new names and the records follow, before anything
is built, so nothing is paid for twice. Renames can form chains (scenelet-3 → 4 while 4 → 5), so they go
through temporary names, driven by a journal that a re-run finishes after a crash.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..core.errors import StorytreeError
from ..files.atomic import write_text_atomic
from ..core.manifest import Manifest
from ..core.status import content_key, identity_of, signature_of
from .facts import FactGatherer
from .files import inside
from .outputs import Outputs
from ..store.build_state import Record, utc_now

log = logging.getLogger("storytree")


def safe_relative(rel: str) -> bool:
    """A path relative to the asset folder that stays inside it: not absolute, no `..`, no empty or dot segments."""
    path = PurePosixPath(rel)
    return bool(rel) and path.as_posix() == rel and not path.is_absolute() and "\\" not in rel \
        and ".." not in path.parts


@dataclass(frozen=True)
class Move:
    old_task: str
    new_task: str
    old_output: str
    new_output: str


def planned_moves(manifest: Manifest, facts: FactGatherer) -> list[Move]:
    """Records whose target now has another name. Cheap: one pass over the already loaded records."""
    by_identity = {identity_of(t): t for t in manifest.targets}
    moves = []
    for rec in facts.records().values():
        target = by_identity.get(rec.identity) if rec.identity else None
        if target is not None and target.task != rec.task:
            moves.append(Move(rec.task, target.task, rec.output, target.output))
    return sorted(moves, key=lambda m: m.new_task)


class Renamer:
    def __init__(self, manifest: Manifest, facts: FactGatherer, outputs: Outputs, state_dir: Path):
        self.manifest, self.facts, self.outputs = manifest, facts, outputs
        self.records = outputs.records
        self.assets_root, self.state_dir = outputs.assets_root, state_dir
        self.targets = manifest.by_task()

    @property
    def journal(self) -> Path:
        return self.state_dir / f"moves-{self.manifest.story_id}.json"

    def planned(self) -> list[Move]:
        return planned_moves(self.manifest, self.facts)

    def reconcile(self) -> list[Move]:
        """Apply (or finish) the renames. Returns what was moved."""
        moves = self._journal_moves() if self.journal.exists() else None
        if moves is None:
            moves = self.planned()
            if not moves:
                return []
            write_text_atomic(self.journal, json.dumps([m.__dict__ for m in moves]))
        self._move_files(moves)
        self._move_records(moves)
        for move in moves:
            log.info("%s: renamed from %s (%s → %s), no cost", move.new_task, move.old_task, move.old_output,
                     move.new_output)
        self.journal.unlink(missing_ok=True)
        for move in moves:
            if self.facts.status(move.new_task).publish_only:
                self.outputs.publish(self.targets[move.new_task])
        return moves

    def preview(self) -> tuple[list[Move], str]:
        """What the next build's renames will be, for the dry-run: the moves, and why a journal left by an interrupted
        build will be set aside instead ('' when there is none or it fits)."""
        if not self.journal.exists():
            return self.planned(), ""
        moves, why = self._read_journal()
        return (moves, "") if not why else (self.planned(), why)

    def _journal_moves(self) -> list[Move] | None:
        """The journal of an interrupted rename, if every move in it is one the records and files bear out;
        otherwise it is set aside (None)."""
        moves, why = self._read_journal()
        if why:
            self._set_aside(moves, why)
            return None
        return moves

    def _read_journal(self) -> tuple[list[Move], str]:
        """The journal's moves and why they must not be applied ('' when every one may): nothing in it is trusted
        until it is checked — each path stays inside the asset folder, each new name is the manifest's, each old one
        is what the old task's record names, and the file it moves is the one recorded (by sha256)."""
        try:
            moves = [Move(**m) for m in json.loads(self.journal.read_text())]
        except (OSError, ValueError, TypeError) as exc:
            return [], f"it cannot be read ({exc})"
        unsafe = [m.old_output for m in moves if not safe_relative(m.old_output)] + \
                 [m.new_output for m in moves if not safe_relative(m.new_output)]
        if unsafe:
            return [m for m in moves if safe_relative(m.old_output) and safe_relative(m.new_output)], \
                f"it names paths outside the asset folder: {', '.join(unsafe[:3])}"
        unknown = [m.new_task for m in moves if self.targets.get(m.new_task) is None
                   or self.targets[m.new_task].output != m.new_output]
        if unknown or len({m.new_output for m in moves}) != len(moves):
            return moves, "it names targets or files the manifest no longer has: " + ", ".join(unknown[:5])
        unproven = [m.new_task for m in moves if not self._borne_out(m)]
        if unproven:
            return moves, ("its moves are not what the records say (another target's file, or not the recorded "
                           "bytes): " + ", ".join(unproven[:5]))
        return moves, ""

    def _borne_out(self, move: Move) -> bool:
        """The record of the old task names the old output (or the move was already recorded under the new task),
        it is the same target, and the file being moved is the recorded one."""
        records = self.facts.records()
        target = self.targets[move.new_task]
        before, after = records.get(move.old_task), records.get(move.new_task)
        if before is not None and before.output == move.old_output and before.identity == identity_of(target):
            record = before
        elif after is not None and after.output == move.new_output and after.identity == identity_of(target):
            record = after
        else:
            return False
        for path in (self.assets_root / move.old_output, self._temp(move), self.assets_root / move.new_output):
            if path.is_file() and not path.is_symlink():
                return self.facts.hasher.sha256(path) == record.output_sha256
        return True  # nothing to move any more: the record alone is moved (or was)

    def _set_aside(self, moves: list[Move], why: str) -> None:
        """Put the files an interrupted rename had parked back under their old names (their records still point
        there, so nothing is paid again) and move the journal out of the way."""
        restored = 0
        for move in moves:
            if not (safe_relative(move.old_output) and safe_relative(move.new_output)):
                continue  # never a file operation on a path the journal made up
            try:
                parked, old = self._temp(move), inside(self.assets_root, move.old_output)
            except StorytreeError:
                continue  # a folder on the way leads out of the asset folder: leave it alone
            if parked.exists() and not old.exists():
                old.parent.mkdir(parents=True, exist_ok=True)
                os.replace(parked, old)
                restored += 1
        aside = self.journal.with_name(f"{self.journal.name}.stale-{utc_now().replace(':', '')}")
        os.replace(self.journal, aside)
        log.warning("set aside the rename journal %s (%s); %d parked file(s) went back to their old names; "
                    "nothing was moved to an unknown name and nothing will be paid again. It is kept as %s.",
                    self.journal.name, why, restored, aside.name)

    def _temp(self, move: Move) -> Path:
        return inside(self.assets_root, f"{move.new_output}.storytree-moving")

    def _move_files(self, moves: list[Move]) -> None:
        root = self.assets_root
        temp = self._temp

        for move in moves:  # phase 1: every old file out of the way (a chain may reuse its name)
            old = inside(root, move.old_output)
            if old.exists() and not temp(move).exists():
                temp(move).parent.mkdir(parents=True, exist_ok=True)
                os.replace(old, temp(move))
        for move in moves:  # phase 2: into the new names
            if temp(move).exists():
                os.replace(temp(move), inside(root, move.new_output))

    def _move_records(self, moves: list[Move]) -> None:
        records = self.records.all()
        self.facts.refresh()
        remove: list[str] = []
        add: list[Record] = []
        for move in moves:
            rec = records.get(move.old_task)
            target = self.targets[move.new_task]
            if rec is None or rec.identity != identity_of(target):
                continue  # already applied by an earlier, interrupted run
            st = os.stat(self.assets_root / move.new_output)
            moved = {**rec.to_row(), "task": move.new_task, "output": move.new_output, "output_size": st.st_size,
                     "output_mtime_ns": st.st_mtime_ns, "published": False}
            current = self.facts.current_inputs(target)
            if current is not None and content_key(current) == content_key(rec.inputs):
                # Same request, new reference paths: the asset stays current under its new name.
                moved.update(inputs=current, signature=signature_of(current))
            remove.append(move.old_task)
            add.append(Record(**moved))
        self.records.replace(remove, add)
        self.facts.refresh()
