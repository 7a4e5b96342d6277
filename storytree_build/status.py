"""Is a target up to date? Decided from the pay-once records and the files, never from doit's database.

Fast path: one query loads the story's records; each output and reference is `stat`ed and re-hashed only
when its size or mtime differs from what was recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .hashing import FileHasher, sha256_json
from .manifest import Manifest, Target
from .records import Record, RecordStore


@dataclass(frozen=True)
class Status:
    current: bool
    reason: str  # missing | no record | output changed | prompt changed | ... | up to date
    publish_only: bool = False


def signature_inputs(target: Target, provider: str, reference_hashes: list[list[str]]) -> dict[str, Any]:
    return {
        "prompt_sha256": target.prompt_sha256,
        "model": target.model,
        "config": target.config,
        "provider": provider,
        "references": reference_hashes,
    }


def signature_of(inputs: dict[str, Any]) -> str:
    return sha256_json(inputs)


def explain_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    reasons = []
    if old.get("prompt_sha256") != new["prompt_sha256"]:
        reasons.append("prompt changed")
    if [r[0] for r in old.get("references", [])] != [r[0] for r in new["references"]]:
        reasons.append("reference list changed")
    elif old.get("references") != new["references"]:
        changed = [n[0] for o, n in zip(old["references"], new["references"]) if o != n]
        reasons.append("references changed: " + ", ".join(changed))
    if old.get("model") != new["model"] or old.get("config") != new["config"]:
        reasons.append("model/config changed")
    if old.get("provider") != new["provider"]:
        reasons.append(f"provider changed ({old.get('provider')} → {new['provider']})")
    return "; ".join(reasons) or "inputs changed"


def identity_of(target: Target) -> str:
    """What a target is, whatever it is called: shots by scenelet uuid and index, references by name."""
    if target.shot is not None:
        return f"{target.kind}|{target.shot.scenelet_ref}|{target.shot.shot_index}"
    return f"{target.kind}|{target.task}"


def content_key(inputs: dict[str, Any]) -> str:
    """The signature without reference paths: equal keys mean the same paid request."""
    return sha256_json({**inputs, "references": [r[1] for r in inputs.get("references", [])]})


class StatusChecker:
    def __init__(self, manifest: Manifest, assets_root: Path, records: RecordStore, provider: str,
                 hasher: FileHasher | None = None):
        self.manifest = manifest
        self.assets_root = assets_root
        self.records = records
        self.provider = provider
        self.hasher = hasher or FileHasher()
        self._by_task = manifest.by_task()
        self._by_output = {t.output: t.task for t in manifest.targets}
        self._cache: dict[str, Record] | None = None
        self._operations: dict[str, Any] | None = None

    def refresh(self, task: str | None = None) -> None:
        """Forget cached records: all of them, or only `task`'s (re-read at once; a build touches one target)."""
        if task is None or self._cache is None:
            self._cache = None
            self._operations = None
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

    def operation(self, task: str):  # noqa: ANN201 - records.Operation | None
        if self._operations is None:
            self._operations = self.records.all_operations(self.manifest.story_id)
        return self._operations.get(task)

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
        except FileNotFoundError:
            return None
        producer = self._by_output.get(rel)
        rec = self.record(producer) if producer else None
        if rec and rec.output_size == st.st_size and rec.output_mtime_ns == st.st_mtime_ns:
            return rec.output_sha256
        return self.hasher.sha256(path, st)

    def current_inputs(self, target: Target, overlay: dict[str, str] | None = None) -> dict[str, Any] | None:
        """None when a reference file is missing (it has not been built yet)."""
        hashes = []
        for ref in target.references:
            digest = self.file_hash(ref.path, overlay)
            if digest is None:
                return None
            hashes.append([ref.path, digest])
        return signature_inputs(target, self.provider, hashes)

    def status(self, task: str) -> Status:
        target = self._by_task[task]
        pending = self.operation(task) if target.kind == "video" else None
        if pending is not None:
            if pending.state == "submitted":
                return Status(False, f"operation {pending.operation} in flight since {pending.submitted_at}: "
                                     "will resume (no new cost)")
            return Status(False, f"a submit at {pending.submitted_at} may have reached the provider: blocked until "
                                 f"`storytree resubmit {self.manifest.story_id} {task}`")
        output = self.file_hash(target.output)
        rec = self.record(task)
        if output is None:
            return Status(False, "missing")
        if rec is None:
            return Status(False, "no record (an existing file would be replaced)")
        if rec.output_sha256 != output:
            return Status(False, "output file changed since it was built")
        inputs = self.current_inputs(target)
        if inputs is None:
            return Status(False, "references not built yet")
        if signature_of(inputs) != rec.signature:
            return Status(False, explain_difference(rec.inputs, inputs))
        if not rec.published:
            return Status(False, "built but path not yet written to the story database (no cost)", publish_only=True)
        return Status(True, "up to date")
