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
from pathlib import Path

from .atomic import write_text_atomic
from .build import BuildContext
from .records import Record
from .status import content_key, identity_of, signature_of

log = logging.getLogger("storytree")


@dataclass(frozen=True)
class Move:
    old_task: str
    new_task: str
    old_output: str
    new_output: str


def planned_moves(ctx: BuildContext) -> list[Move]:
    """Records whose target now has another name. Cheap: one pass over the already loaded records."""
    by_identity = {identity_of(t): t for t in ctx.manifest.targets}
    moves = []
    for rec in ctx.checker.all_records().values():
        target = by_identity.get(rec.identity) if rec.identity else None
        if target is not None and target.task != rec.task:
            moves.append(Move(rec.task, target.task, rec.output, target.output))
    return sorted(moves, key=lambda m: m.new_task)


def journal_path(ctx: BuildContext) -> Path:
    return ctx.settings.state_dir / f"moves-{ctx.manifest.story_id}.json"


def reconcile(ctx: BuildContext) -> list[Move]:
    """Apply (or finish) the renames. Returns what was moved."""
    journal = journal_path(ctx)
    if journal.exists():
        moves = [Move(**m) for m in json.loads(journal.read_text())]
    else:
        moves = planned_moves(ctx)
        if not moves:
            return []
        write_text_atomic(journal, json.dumps([m.__dict__ for m in moves]))
    root = ctx.settings.assets_root

    def temp(move: Move) -> Path:
        return root / f"{move.new_output}.storytree-moving"

    for move in moves:  # phase 1: every old file out of the way (a chain may reuse its name)
        old = root / move.old_output
        if old.exists() and not temp(move).exists():
            temp(move).parent.mkdir(parents=True, exist_ok=True)
            os.replace(old, temp(move))
    for move in moves:  # phase 2: into the new names
        if temp(move).exists():
            os.replace(temp(move), root / move.new_output)
    records = ctx.records.all_for_story(ctx.manifest.story_id)
    ctx.checker.refresh()
    remove: list[str] = []
    add: list[Record] = []
    for move in moves:
        rec = records.get(move.old_task)
        if rec is None or rec.identity != identity_of(ctx.target(move.new_task)):
            continue  # already applied by an earlier, interrupted run
        target = ctx.target(move.new_task)
        st = os.stat(root / move.new_output)
        moved = {**rec.__dict__, "task": move.new_task, "output": move.new_output, "output_size": st.st_size,
                 "output_mtime_ns": st.st_mtime_ns, "published": False}
        current = ctx.checker.current_inputs(target)
        if current is not None and content_key(current) == content_key(rec.inputs):
            # Same request, new reference paths: the asset stays current under its new name.
            moved.update(inputs=current, signature=signature_of(current))
        remove.append(move.old_task)
        add.append(Record(**moved))
    ctx.records.replace(ctx.manifest.story_id, remove, add)
    ctx.checker.refresh()
    for move in moves:
        log.info("%s: renamed from %s (%s → %s), no cost", move.new_task, move.old_task, move.old_output,
                 move.new_output)
    journal.unlink(missing_ok=True)
    for move in moves:
        if ctx.checker.status(move.new_task).publish_only:
            ctx.publish(ctx.target(move.new_task))
    return moves
