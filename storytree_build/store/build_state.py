"""Pay-once records, video operations and claims: the build's own state, kept in the story store beside the story it
belongs to (tables in the SQLite file; tables and RPCs in Supabase), so that a fresh clone, a second machine or a
wiped state folder never pays again for what the store knows is built.

    Record      one built target: its input signature and inputs, the output's hash, who built it and how
                (origin: built | recovered | adopted | downloaded)
    Operation   a paid video job, recorded before polling: submitting → submitted (resumable) | uncertain
    Claim       a lease on a target while one worker pays for it; other workers, on any machine, wait or report it
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def utc_in(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def is_past(moment: str) -> bool:
    return datetime.fromisoformat(moment) <= datetime.now(timezone.utc)


@dataclass(frozen=True)
class Record:
    story_id: str
    task: str
    output: str
    signature: str
    inputs: dict[str, Any]
    output_sha256: str
    output_size: int
    output_mtime_ns: int
    provider: str
    model: str
    prompt_sha256: str
    built_at: str
    published: bool
    identity: str = ""  # what the target is, independent of its name (kind, scenelet uuid, shot index)
    origin: str = "built"  # built | recovered | adopted | downloaded
    built_by: str = ""  # the checkout that made or adopted the file (host and project folder)
    detail: str = ""  # e.g. the host a downloaded video came from

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Record":
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in row.items() if k in names}
        if isinstance(values.get("inputs"), str):
            values["inputs"] = json.loads(values["inputs"])
        values["published"] = bool(values.get("published"))
        for key in ("identity", "origin", "built_by", "detail"):
            if values.get(key) is None:
                values.pop(key, None)
        return cls(**values)


@dataclass(frozen=True)
class Operation:
    story_id: str
    task: str
    signature: str
    provider: str
    model: str
    state: str  # submitting | submitted | uncertain
    operation: str | None
    submitted_at: str
    download_uri: str | None
    error: str | None

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Operation":
        return cls(**{f.name: row.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class Claim:
    story_id: str
    task: str
    owner: str
    claimed_at: str
    expires_at: str

    @property
    def live(self) -> bool:
        return not is_past(self.expires_at)


class RecordsPort(Protocol):
    """What the build needs from the store for its own state. Every write is one transaction."""

    def all_for_story(self, story_id: str) -> dict[str, Record]: ...
    def get(self, story_id: str, task: str) -> Record | None: ...
    def put(self, record: Record) -> None: ...
    def mark_published(self, story_id: str, task: str) -> None: ...
    def replace(self, story_id: str, remove: list[str], add: list[Record]) -> None: ...
    def delete(self, story_id: str, task: str) -> None: ...

    def get_operation(self, story_id: str, task: str) -> Operation | None: ...
    def all_operations(self, story_id: str) -> dict[str, Operation]: ...
    def put_operation(self, op: Operation) -> None: ...
    def put_operations(self, ops: list[Operation]) -> None:
        """Several operations in one transaction (a batch job's targets: all recorded, or none)."""
        ...
    def delete_operation(self, story_id: str, task: str) -> None: ...

    def claim(self, story_id: str, task: str, owner: str, lease_seconds: float) -> Claim | None:
        """Take (or extend) the lease: None when it is ours now, else the live claim another owner holds."""
        ...

    def release(self, story_id: str, task: str, owner: str | None = None) -> Claim | None:
        """Drop the claim (only `owner`'s, unless None); returns what was released."""
        ...

    def claims(self, story_id: str) -> dict[str, Claim]:
        """The live claims of a story."""
        ...

    def import_records(self, records: list[Record], operations: list[Operation]) -> None:
        """Add records and operations that are not there yet (one transaction); existing ones win."""
        ...

    def close(self) -> None: ...


def read_legacy_records(path: Path) -> tuple[list[Record], list[Operation]]:
    """Records and operations of the `.storytree/records.sqlite` file earlier versions kept per checkout."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        records = [Record.from_row(dict(r)) for r in conn.execute("select * from records")]
        operations = [Operation.from_row(dict(r)) for r in conn.execute("select * from operations")]
    finally:
        conn.close()
    return records, operations
