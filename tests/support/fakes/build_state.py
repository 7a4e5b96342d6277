"""The build's own state in memory, remembering every call: records, operations and claims of one story each, with
the semantics of the real adapters (`tests/test_records_contract.py` runs its contract against these too), so unit
tests can count what a reader asked for — a no-op status reads the records once and the claims never.

    state = MemoryBuildState()
    records = state.records("story-1")      # the same port object for the same story, its calls counted
    records.calls["all"]                     # how often the whole story's records were read
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from typing import Any

from storytree_build.store.build_state import Claim, Operation, Record, Version, utc_in, utc_now


class _Counted:
    """A port bound to one story that counts each call by method name."""

    def __init__(self, story_id: str) -> None:
        self.story_id = story_id
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _call(self, name: str) -> None:
        with self._lock:
            self.calls[name] += 1

    def _own(self, item: Record | Operation) -> Any:
        if item.story_id != self.story_id:
            raise ValueError(f"{type(item).__name__} of story {item.story_id} given to story {self.story_id}")
        return item


class MemoryVersions(_Counted):
    def __init__(self, story_id: str) -> None:
        super().__init__(story_id)
        self.rows: dict[tuple[str, int], Version] = {}

    def keep(self, version: Version) -> None:
        self.rows.setdefault((version.task, version.version), version)

    def mark_pushed(self, shas: list[str], remote: str) -> None:
        for key, version in list(self.rows.items()):
            if version.output_sha256 in shas:
                self.rows[key] = replace(version, record=replace(version.record, pushed_to=remote))

    def all(self, task: str | None = None) -> list[Version]:
        self._call("all")
        return sorted((v for v in self.rows.values() if task is None or v.task == task),
                      key=lambda v: (v.task, -v.version))

    def delete(self, task: str, versions: list[int]) -> None:
        self._call("delete")
        for number in versions:
            self.rows.pop((task, number), None)

    def import_missing(self, versions: list[Version]) -> None:
        self._call("import_missing")
        for version in versions:
            self._own(version.record)
            self.keep(version)


class MemoryRecords(_Counted):
    def __init__(self, story_id: str, versions: MemoryVersions) -> None:
        super().__init__(story_id)
        self.rows: dict[str, Record] = {}
        self.versions = versions

    def all(self) -> dict[str, Record]:
        self._call("all")
        return dict(self.rows)

    def get(self, task: str) -> Record | None:
        self._call("get")
        return self.rows.get(task)

    def put(self, record: Record, replaced: Version | None = None) -> None:
        self._call("put")
        if replaced is not None:
            self._own(replaced.record)
            self.versions.keep(replaced)
        self.rows[record.task] = self._own(record)

    def mark_pushed(self, shas: list[str], remote: str) -> None:
        self._call("mark_pushed")
        for task, record in list(self.rows.items()):
            if record.output_sha256 in shas:
                self.rows[task] = replace(record, pushed_to=remote)
        self.versions.mark_pushed(shas, remote)

    def mark_published(self, task: str) -> None:
        self._call("mark_published")
        if task in self.rows:
            self.rows[task] = Record(**{**self.rows[task].to_row(), "published": True})

    def replace(self, remove: list[str], add: list[Record]) -> None:
        self._call("replace")
        for record in add:
            self._own(record)  # all or nothing: check before changing anything
        for task in remove:
            self.rows.pop(task, None)
        self.rows.update({record.task: record for record in add})

    def delete(self, task: str) -> None:
        self._call("delete")
        self.rows.pop(task, None)

    def import_missing(self, records: list[Record]) -> None:
        self._call("import_missing")
        for record in records:
            self.rows.setdefault(record.task, self._own(record))


class MemoryOperations(_Counted):
    def __init__(self, story_id: str) -> None:
        super().__init__(story_id)
        self.rows: dict[str, Operation] = {}

    def all(self) -> dict[str, Operation]:
        self._call("all")
        return dict(self.rows)

    def get(self, task: str) -> Operation | None:
        self._call("get")
        return self.rows.get(task)

    def put(self, op: Operation) -> None:
        self._call("put")
        self.rows[op.task] = self._own(op)

    def put_many(self, ops: list[Operation]) -> None:
        self._call("put_many")
        for op in ops:
            self._own(op)
        self.rows.update({op.task: op for op in ops})

    def delete(self, task: str) -> None:
        self._call("delete")
        self.rows.pop(task, None)

    def import_missing(self, operations: list[Operation]) -> None:
        self._call("import_missing")
        for op in operations:
            self.rows.setdefault(op.task, self._own(op))


class MemoryClaims(_Counted):
    """Leases with real expiry times, as the stores keep them. `taken_by` lists every owner granted a lease, renewals
    included, in order."""

    def __init__(self, story_id: str) -> None:
        super().__init__(story_id)
        self.rows: dict[str, Claim] = {}
        self.taken_by: list[str] = []
        self.released: list[Claim] = []

    def hold_for(self, task: str, owner: str, lease_seconds: float = 600, claimed_at: str | None = None) -> Claim:
        """Another worker's lease, set up by a test (not counted as a call)."""
        claim = Claim(self.story_id, task, owner, claimed_at or utc_now(), utc_in(lease_seconds))
        self.rows[task] = claim
        return claim

    def take(self, task: str, owner: str, lease_seconds: float) -> Claim | None:
        self._call("take")
        with self._lock:
            held = self.rows.get(task)
            if held is not None and held.owner != owner and held.live:
                return held
            since = held.claimed_at if held is not None and held.owner == owner else utc_now()
            self.rows[task] = Claim(self.story_id, task, owner, since, utc_in(lease_seconds))
            self.taken_by.append(owner)
        return None

    def release(self, task: str, owner: str | None = None) -> Claim | None:
        self._call("release")
        with self._lock:
            held = self.rows.get(task)
            if held is None or (owner is not None and held.owner != owner):
                return None
            del self.rows[task]
            self.released.append(held)
            return held

    def unexpired(self) -> dict[str, Claim]:
        self._call("unexpired")
        return {task: claim for task, claim in self.rows.items() if claim.live}


class MemoryBuildState:
    """`BuildState` in memory: one set of ports per story, the same objects on every call (their counts add up)."""

    def __init__(self) -> None:
        self._records: dict[str, MemoryRecords] = {}
        self._versions: dict[str, MemoryVersions] = {}
        self._operations: dict[str, MemoryOperations] = {}
        self._claims: dict[str, MemoryClaims] = {}

    def records(self, story_id: str) -> MemoryRecords:
        return self._records.setdefault(story_id, MemoryRecords(story_id, self.versions(story_id)))

    def versions(self, story_id: str) -> MemoryVersions:
        return self._versions.setdefault(story_id, MemoryVersions(story_id))

    def operations(self, story_id: str) -> MemoryOperations:
        return self._operations.setdefault(story_id, MemoryOperations(story_id))

    def claims(self, story_id: str) -> MemoryClaims:
        return self._claims.setdefault(story_id, MemoryClaims(story_id))

    def close(self) -> None:
        pass
