"""Gathers the facts that decide whether a target is current — its pay-once record, the hashes of its output and
reference files, an in-flight video operation, another worker's claim, what an unrecorded file says about itself,
whether the story database points at it — and asks `core.status.decide`.

Fast path: one query loads the story's records; each output and reference is `stat`ed and re-hashed only
when its size or mtime differs from what was recorded.
"""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Callable
from typing import Any

from ..core.hashing import FileHasher
from ..core.manifest import Manifest, Target
from ..core.status import Here, Status, decide, signature_inputs
from ..store.build_state import Claim, Operation, Record, RecordsPort
from .files import read_provenance


class StatusChecker:
    def __init__(self, manifest: Manifest, assets_root: Path, records: RecordsPort, provider: str,
                 hasher: FileHasher | None = None, here: Here = Here(), owner: str = "",
                 points_here: Callable[[Target], bool] = lambda target: False,
                 rejections: Callable[[], dict[str, tuple[str, str]]] = dict):
        self.manifest = manifest
        self.assets_root = assets_root
        self.records = records
        self.provider = provider
        self.hasher = hasher or FileHasher()
        self.here = here
        self.owner = owner  # this process's claims are not "another worker's"
        self._points_here = points_here  # reads the story database: asked only for unrecorded files
        self.rejections = rejections  # task → (sha256, note) of files rejected in review (read once, cached)
        self._by_task = manifest.by_task()
        self._by_output = {t.output: t.task for t in manifest.targets}
        self._cache: dict[str, Record] | None = None
        self._operations: dict[str, Any] | None = None
        self._claims: dict[str, Claim] | None = None

    def refresh(self, task: str | None = None) -> None:
        """Forget cached records: all of them, or only `task`'s (re-read at once; a build touches one target)."""
        if task is None or self._cache is None:
            self._cache = None
            self._operations = None
            self._claims = None
            return
        record = self.records.get(self.manifest.story_id, task)
        if record is None:
            self._cache.pop(task, None)
        else:
            self._cache[task] = record
        if self._operations is not None:
            operation = self.records.get_operation(self.manifest.story_id, task)
            if operation is None:
                self._operations.pop(task, None)
            else:
                self._operations[task] = operation

    def claim(self, task: str) -> Claim | None:
        """Another worker's live claim on `task` (claims are read once, when a target first turns out not current)."""
        if self._claims is None:
            self._claims = self.records.claims(self.manifest.story_id)
        held = self._claims.get(task)
        return held if held is not None and held.owner != self.owner and held.live else None

    def forget_claim(self, task: str) -> None:
        if self._claims is not None:
            self._claims.pop(task, None)

    def operation(self, task: str) -> Operation | None:
        return self.operations().get(task)

    def operations(self) -> dict[str, Operation]:
        """The story's in-flight operations (video jobs, images in batch jobs), read once until refreshed."""
        if self._operations is None:
            self._operations = self.records.all_operations(self.manifest.story_id)
        return self._operations

    def all_records(self) -> dict[str, Record]:
        """The story's records, loaded once per process (the no-op path reads them for every target anyway)."""
        if self._cache is None:
            self._cache = self.records.all_for_story(self.manifest.story_id)
        return self._cache

    def record(self, task: str) -> Record | None:
        if self._cache is None:
            self._cache = self.records.all_for_story(self.manifest.story_id)
        return self._cache.get(task)

    def note_built(self, record: Record) -> None:
        if self._cache is not None:
            self._cache[record.task] = record
        self.hasher.remember(self.assets_root / record.output, record.output_size, record.output_mtime_ns,
                             record.output_sha256)

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

    def current_inputs(self, target: Target, overlay: dict[str, str] | None = None,
                       unknown_ok: frozenset[str] = frozenset()) -> dict[str, Any] | None:
        """None when a reference file is missing (it has not been built yet), unless its path is in `unknown_ok`:
        a record made without knowing it (a downloaded video) does not need it."""
        hashes = []
        for ref in target.references:
            digest = self.file_hash(ref.path, overlay)
            if digest is None and ref.path not in unknown_ok:
                return None
            hashes.append([ref.path, digest])
        return signature_inputs(target, self.provider, hashes)

    def status(self, task: str) -> Status:
        target = self._by_task[task]
        pending = self.operation(task)  # a video job, or an image in a batch job
        record = self.record(task)
        unknown = frozenset(path for path, digest in (record.inputs.get("references") or []) if digest is None) \
            if record is not None else frozenset()
        return decide(self.manifest.story_id, task, self.file_hash(target.output), record,
                      lambda: self.current_inputs(target, unknown_ok=unknown), pending,
                      lambda: read_provenance(self.assets_root / target.output), self.here,
                      lambda: self._points_here(target), lambda: self.claim(task),
                      lambda: self.rejections().get(task))
