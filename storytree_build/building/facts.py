"""Gathers the facts that decide whether a target is current (`core.status.TargetFacts`) and asks the pure
`core.status.decide`. Each fact is gathered only where it can matter:

    always                 the output's hash, the record, a recorded operation, the latest rejection
    not current            another worker's live claim (a no-op build never reads the claims)
    a file or a record     the current inputs (hashes of the reference files: a reference that will be restored
                           counts with its recorded hash), unless a job is pending
    a file, no record      whether it is a valid file of its kind (decoded), then what it says about itself (PNG
                           provenance) and whether the story database points at it (this loads the story: asked for
                           unrecorded files only)
    other bytes than       whether the file is a valid file of its kind (decoded: asked only when its hash differs
    recorded, or none      from the record) and whether the recorded object is in the local store

Fast path: one query loads the story's records (and one its operations, one its claims); each output and reference
is `stat`ed and re-hashed only when its size or mtime differs from what was recorded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..core.hashing import FileHasher
from ..core.manifest import Manifest, Target
from ..core.status import HeldClaim, Inputs, Rejection, Status, TargetFacts, decide, signature_inputs
from ..core.status import unknown_reference_paths
from ..store.build_state import Claim, ClaimsPort, Operation, OperationsPort, Record, RecordsPort
from .claims import is_live
from ..files.content import check
from .files import read_provenance


@dataclass(frozen=True)
class Asker:
    """Who asks: this checkout (records of another checkout without a file are "built elsewhere"), this process as a
    claim owner (its own claims are no reason to wait), whether unrecorded files the database points at are taken as
    built, and this build's remote (a record pushed there can be pulled)."""

    checkout: str = ""
    owner: str = ""
    adopt_existing: bool = True
    remote: str = ""
    keep_stale: bool = False  # rebuild=missing


TaskRows = Callable[[str], tuple[Record | None, Operation | None]]


@dataclass(frozen=True)
class StoryState:
    """The ports of one story's build state; `task_rows`, where the store has it, reads one task's record and
    operation in one query (else they are two reads)."""

    records: RecordsPort
    operations: OperationsPort
    claims: ClaimsPort
    task_rows: TaskRows | None = None

    def read_task(self, task: str, with_operation: bool = True) -> tuple[Record | None, Operation | None]:
        """The task's record and (when asked, or when it costs nothing more) its operation."""
        if self.task_rows is not None:
            return self.task_rows(task)
        return self.records.get(task), self.operations.get(task) if with_operation else None


class FactGatherer:
    def __init__(self, manifest: Manifest, assets_root: Path, state: StoryState, provider: str, *,
                 hasher: FileHasher | None = None, asker: Asker = Asker(),
                 points_here: Callable[[Target], bool] = lambda target: False,
                 rejections: Callable[[], dict[str, Rejection]] = dict,
                 object_local: Callable[[str], bool] = lambda sha256: False,
                 flaw: Callable[[Path], str] | None = None, project_root: Path | None = None):
        self.manifest = manifest
        self.assets_root = assets_root
        # how messages name a target's file: relative to the project (a person finds it from there)
        self._shown_assets = _relative(assets_root, project_root)
        self.state = state
        self.provider = provider
        self.hasher = hasher or FileHasher()
        self.asker = asker
        self._points_here = points_here  # reads the story database: asked only for unrecorded files
        self._rejections = rejections  # task → the latest rejection (read once per read of the reviews)
        self._object_local = object_local  # sha256 → is that object in the local store (a stat)
        self._flaw = flaw or self._content_flaw  # a file → why it is not a valid file of its kind ('' when it is)
        self._by_task = manifest.by_task()
        self._by_output = {t.output: t.task for t in manifest.targets}
        self._records: dict[str, Record] | None = None
        self._operations: dict[str, Operation] | None = None
        self._claims: dict[str, Claim] | None = None

    # -- what the store says, read once per story until refreshed ------------------------------------------
    def refresh(self, task: str | None = None) -> None:
        """Forget cached state: all of it, or only `task`'s record and operation (re-read at once; a build touches
        one target)."""
        if task is None or self._records is None:
            self._records = self._operations = self._claims = None
            return
        record, operation = self.state.read_task(task, with_operation=self._operations is not None)
        _replace(self._records, task, record)
        if self._operations is not None:
            _replace(self._operations, task, operation)

    def forget_claim(self, task: str) -> None:
        """The claim read for `task` no longer stands (this worker now holds it, or waited for it to end)."""
        if self._claims is not None:
            self._claims.pop(task, None)

    def records(self) -> dict[str, Record]:
        if self._records is None:
            self._records = self.state.records.all()
        return self._records

    def record(self, task: str) -> Record | None:
        return self.records().get(task)

    def operations(self) -> dict[str, Operation]:
        """The story's recorded paid submissions (video jobs, images in batch jobs), read once until refreshed."""
        if self._operations is None:
            self._operations = self.state.operations.all()
        return self._operations

    def operation(self, task: str) -> Operation | None:
        return self.operations().get(task)

    def held_claim(self, task: str) -> HeldClaim | None:
        """Another worker's live claim on `task` (claims are read once per story until refreshed)."""
        if self._claims is None:
            self._claims = self.state.claims.unexpired()
        held = self._claims.get(task)
        if held is None or not is_live(held.owner, self.asker.owner):
            return None
        return HeldClaim(held.owner, held.since)

    def forget_operation(self, task: str) -> None:
        """This worker deleted the task's operation (its video is recorded)."""
        if self._operations is not None:
            self._operations.pop(task, None)

    def note_published(self, task: str) -> None:
        """The record of `task` now says published (written by this worker: nothing to read back)."""
        if self._records is not None and task in self._records:
            self._records[task] = replace(self._records[task], published=True)

    def note_built(self, record: Record) -> None:
        if self._records is not None:
            self._records[record.task] = record
        self.hasher.remember(self.assets_root / record.output, record.output_size, record.output_mtime_ns,
                             record.output_sha256)

    # -- what the files say ---------------------------------------------------------------------------------
    def file_hash(self, rel: str, overlay: dict[str, str] | None = None) -> str | None:
        if overlay and rel in overlay:
            return overlay[rel]  # dry-run: the file a planned rename would put there
        path = self.assets_root / rel
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        producer = self._by_output.get(rel)
        rec = self.record(producer) if producer else None
        if rec and rec.output_size == st.st_size and rec.output_mtime_ns == st.st_mtime_ns:
            return rec.output_sha256
        return self.hasher.sha256(path, st)

    def is_ours(self, rel: str) -> bool:
        """Is `rel` a file storytree makes: the output of one of this story's targets, or one the records know."""
        return rel in self._by_output or any(rec.output == rel for rec in self.records().values())

    def damaged(self, rel: str) -> str:
        """Why the file at `rel` is not a valid file of its kind ('' when it is)."""
        return self._flaw(self.assets_root / rel)

    def _content_flaw(self, path: Path) -> str:
        verdict = check(path, inside=self.assets_root)
        return "" if verdict.ok else verdict.why

    def reference_hash(self, rel: str, overlay: dict[str, str] | None = None) -> str | None:
        """What the file at `rel` will hold when the build gets to a target that uses it: its recorded bytes when it
        is missing or damaged and a copy is kept (the build restores it first, for free), else what is there (a hand
        edit included); None when it is missing and nothing will bring it back."""
        actual = self.file_hash(rel, overlay)
        producer = self._by_output.get(rel)
        rec = self.record(producer) if producer else None
        if rec is None or actual == rec.output_sha256 or (overlay and rel in overlay):
            return actual
        if actual is not None and not self.damaged(rel):
            return actual  # edited by hand: what uses it goes out of date
        if self._object_local(rec.output_sha256) or (self.asker.remote and rec.pushed_to == self.asker.remote):
            return rec.output_sha256
        return None

    def current_inputs(self, target: Target, overlay: dict[str, str] | None = None,
                       unknown_ok: frozenset[str] = frozenset()) -> Inputs | None:
        """None when a reference file is missing (it has not been built yet), unless its path is in `unknown_ok`:
        a record made without knowing it (a downloaded video) does not need it."""
        hashes: list[list[str | None]] = []
        for ref in target.references:
            digest = self.reference_hash(ref.path, overlay)
            if digest is None and ref.path not in unknown_ok:
                return None
            hashes.append([ref.path, digest])
        return signature_inputs(target, self.provider, hashes)

    # -- the decision ---------------------------------------------------------------------------------------
    def facts(self, task: str, with_claim: bool = True) -> TargetFacts:
        target = self._by_task[task]
        output = self.file_hash(target.output)
        record = self.record(task)
        operation = self.operation(task)
        inputs = provenance = None
        points_here = object_local = False
        damaged = ""
        if operation is None and (output is not None or record is not None):
            unknown = unknown_reference_paths(record.inputs) if record is not None else frozenset()
            inputs = self.current_inputs(target, unknown_ok=unknown)
        if operation is None and record is None and output is not None:
            damaged = self.damaged(target.output)
            if not damaged:
                provenance = read_provenance(self.assets_root / target.output)
                points_here = self.asker.adopt_existing and self._points_here(target)
        if operation is None and record is not None and output != record.output_sha256:
            damaged = self.damaged(target.output) if output is not None else ""
            if output is None or damaged:
                object_local = self._object_local(record.output_sha256)
        return TargetFacts(
            story_id=self.manifest.story_id, task=task, output_sha256=output, record=record, inputs=inputs,
            operation=operation, provenance=provenance or {}, points_here=points_here,
            claim=self.held_claim(task) if with_claim else None, rejection=self._rejections().get(task),
            checkout=self.asker.checkout, adopt_existing=self.asker.adopt_existing, provider=self.provider,
            damaged=damaged, object_local=object_local, remote=self.asker.remote, keep_stale=self.asker.keep_stale,
            shown_path=f"{self._shown_assets}/{target.output}")

    def status(self, task: str) -> Status:
        # A claim matters only for a target that is not current: a no-op build never reads the story's claims.
        facts = self.facts(task, with_claim=False)
        status = decide(facts)
        if status.current:
            return status
        return decide(replace(facts, claim=self.held_claim(task)))


def _relative(folder: Path, root: Path | None) -> str:
    if root is not None and folder.is_relative_to(root):
        return folder.relative_to(root).as_posix()
    return folder.as_posix()


def _replace(cache: dict, task: str, value: object) -> None:
    if value is None:
        cache.pop(task, None)
    else:
        cache[task] = value
