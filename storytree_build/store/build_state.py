"""Pay-once records, video operations and claims: the build's own state, kept in the story store beside the story it
belongs to (tables in the SQLite file; tables and RPCs in Supabase), so that a fresh clone, a second machine or a
wiped state folder never pays again for what the store knows is built.

    Record      one built target: its input signature and inputs, the output's hash, who built it and how
                (origin: built | recovered | adopted | downloaded)
    Operation   a paid video job, recorded before polling: submitting → submitted (resumable) | uncertain
    Claim       a lease on a target while one worker pays for it; other workers, on any machine, wait or report it

Each kind has its own port, bound to one story when it is opened (`BuildState.records(story_id)` …).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..core.errors import UnreadableRow
from ..core.shared_strings import shared_strings

if TYPE_CHECKING:
    from ..review.verdicts import ReviewsPort


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def utc_now_precise() -> str:
    """The moment, to the microsecond: what a file's provenance says of when it was written, so that two writes of
    the same target — a forced rebuild within the same second by a deterministic provider — never give
    byte-identical files (a review is about one exact file)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def utc_in(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def is_past(moment: str) -> bool:
    return datetime.fromisoformat(moment) <= datetime.now(timezone.utc)


def time_problem(row: dict[str, Any], *names: str) -> str:
    """Why one of the row's time columns cannot be compared with now ('' when all can)."""
    for name in names:
        value = row.get(name)
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            return f"its {name} {value!r} is not a time with a time zone"
    return ""


def unreadable(table: str, row: dict[str, Any], problem: str, fix: str) -> UnreadableRow:
    """The error for a row of `table` that cannot be parsed, naming its story, its task and the fix."""
    return UnreadableRow(f"story {row.get('story_id')}: the {table} row of {row.get('task')} cannot be read "
                         f"({problem}). {fix}")


def record_fix(row: dict[str, Any]) -> str:
    return (f"Delete that row (`delete from storytree_records where story_id = '{row.get('story_id')}' and task = "
            f"'{row.get('task')}'` in the story store), then build: a file that still carries its signature is "
            "recorded again without paying; check `doit dryrun` first.")


@dataclass(frozen=True, kw_only=True, slots=True)
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
    origin: str = "built"  # built | recovered | adopted | downloaded | edited | restored
    built_by: str = ""  # the checkout that made or adopted the file (host and project folder)
    detail: str = ""  # e.g. the host a downloaded video came from
    cost: float | None = None  # what this file was estimated to cost (0: free; None: recorded before costs were)
    pushed_to: str = ""  # the remote (display URL) that holds this file's object; '' when none does yet
    version: int = 1  # 1 for a target's first file, one more for each file that replaced the one before

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any], strings: dict[str, str] | None = None) -> "Record":
        """`strings`: shared by the rows of one read (see shared_strings)."""
        try:
            return cls._from_row(row, strings)
        except (TypeError, ValueError, KeyError) as exc:  # a JSON decode error is a ValueError
            raise unreadable("record", row, f"{type(exc).__name__}: {str(exc)[:200]}", record_fix(row)) from None

    @classmethod
    def _from_row(cls, row: dict[str, Any], strings: dict[str, str] | None) -> "Record":
        names = _RECORD_FIELDS
        values = {k: v for k, v in row.items() if k in names}
        if isinstance(values.get("inputs"), str):
            values["inputs"] = json.loads(values["inputs"])
        if strings is not None:
            values["inputs"] = shared_strings(values.get("inputs"), strings)
            for key in ("story_id", "provider", "model", "built_by", "origin", "pushed_to"):
                if isinstance(values.get(key), str):
                    values[key] = strings.setdefault(values[key], values[key])
        values["published"] = bool(values.get("published"))
        for key in ("identity", "origin", "built_by", "detail", "pushed_to", "version"):
            if values.get(key) is None:
                values.pop(key, None)
        return cls(**values)

    def worth_keeping(self, free_providers: frozenset[str]) -> bool:
        """A file another provider's build must not replace on its own: money was spent on it, or a person made or
        chose it (a downloaded or hand-edited file). Records from before costs were kept, and adopted files, count by
        their provider."""
        if self.origin in ("downloaded", "edited"):
            return True
        if self.cost is not None:
            return self.cost > 0
        return self.provider not in free_providers


_RECORD_FIELDS = frozenset(f.name for f in fields(Record))


@dataclass(frozen=True, kw_only=True)
class Version:
    """A file a target had before the current one: its record as it was, and the review verdict that held for it."""

    story_id: str
    task: str
    version: int
    output_sha256: str
    record: Record
    verdict: str = ""  # approved | rejected | '' (unreviewed)
    replaced_at: str = ""

    def to_row(self) -> dict[str, Any]:
        return {"story_id": self.story_id, "task": self.task, "version": self.version,
                "output_sha256": self.output_sha256, "record": self.record.to_row(), "verdict": self.verdict,
                "replaced_at": self.replaced_at}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Version":
        try:
            record = row["record"]
            if isinstance(record, str):
                record = json.loads(record)
            version = int(row["version"])
        except (TypeError, ValueError, KeyError) as exc:
            raise unreadable("version", row, f"{type(exc).__name__}: {str(exc)[:200]}", (
                f"Delete that row (`delete from storytree_versions where story_id = '{row.get('story_id')}' and task "
                f"= '{row.get('task')}' and version = {row.get('version')!r}` in the story store): it only forgets "
                "that earlier version.")) from None
        return cls(story_id=row["story_id"], task=row["task"], version=version,
                   output_sha256=row["output_sha256"], record=Record.from_row(record), verdict=row.get("verdict") or "",
                   replaced_at=row.get("replaced_at") or "")

    @classmethod
    def of(cls, record: Record, verdict: str, replaced_at: str) -> "Version":
        return cls(story_id=record.story_id, task=record.task, version=record.version,
                   output_sha256=record.output_sha256, record=record, verdict=verdict, replaced_at=replaced_at)


@dataclass(frozen=True, kw_only=True)
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
        problem = time_problem(row, "submitted_at")
        if row.get("state") not in OPERATION_STATES:
            problem = f"its state {row.get('state')!r} is not one of {', '.join(OPERATION_STATES)}"
        if problem:
            raise unreadable("operation", row, problem, (
                f"`storytree resubmit {row.get('story_id')} {row.get('task')}` clears it; the next build then pays "
                "for a new job, so check the provider's console for the old one first."))
        values: dict[str, Any] = {f.name: row.get(f.name) for f in fields(cls)}
        return cls(**values)


OPERATION_STATES = ("submitting", "submitted", "uncertain")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


@dataclass(frozen=True)
class Claim:
    story_id: str
    task: str
    owner: str
    claimed_at: str
    expires_at: str
    problem: str = ""  # why the row cannot be read ('' when it can): such a claim holds until it is released

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Claim":
        """A claim row as stored; unparsable times do not raise: the claim then holds (nobody can tell it ended)
        and says which command clears it."""
        values: dict[str, str] = {name: _text(row.get(name))
                                  for name in ("story_id", "task", "owner", "claimed_at", "expires_at")}
        return cls(**values, problem=time_problem(row, "claimed_at", "expires_at"))

    @property
    def live(self) -> bool:
        return True if self.problem else not is_past(self.expires_at)

    @property
    def since(self) -> str:
        """When it was taken, for messages; for an unreadable row, what is wrong and the command that clears it."""
        if not self.problem:
            return self.claimed_at
        return (f"an unknown time: its claim row cannot be read ({self.problem}); "
                f"`storytree release {self.story_id} {self.task}` clears it")

    def unreadable(self) -> UnreadableRow:
        return UnreadableRow(
            f"{self.task}: its claim (by {self.owner}) cannot be read ({self.problem}), so nobody can tell whether "
            f"that worker is still paying for it; nothing is paid for it here. If that worker is gone, "
            f"`storytree release {self.story_id} {self.task}` clears the claim.")


class RecordsPort(Protocol):
    """The pay-once records of one story (bound when opened). Every write is one transaction."""

    story_id: str

    def all(self) -> dict[str, Record]: ...
    def get(self, task: str) -> Record | None: ...
    def put(self, record: Record, replaced: Version | None = None) -> None:
        """Write the record; `replaced`, the version it replaces, is kept in the same transaction."""
        ...
    def mark_published(self, task: str) -> None: ...
    def mark_pushed(self, shas: list[str], remote: str) -> None:
        """The remote now holds these objects: every record and kept version of this story with one of them says so."""
        ...
    def replace(self, remove: list[str], add: list[Record]) -> None:
        """Delete and insert records in one transaction (renames must never lose a record)."""
        ...
    def delete(self, task: str) -> None: ...
    def import_missing(self, records: list[Record]) -> None:
        """Add records that are not there yet (existing ones win)."""
        ...


class VersionsPort(Protocol):
    """The files one story's targets had before their current ones (newest first)."""

    story_id: str

    def all(self, task: str | None = None) -> list[Version]: ...
    def delete(self, task: str, versions: list[int]) -> None: ...
    def import_missing(self, versions: list[Version]) -> None: ...


class OperationsPort(Protocol):
    """The paid submissions of one story (video jobs, images in batch jobs), recorded before polling."""

    story_id: str

    def all(self) -> dict[str, Operation]: ...
    def get(self, task: str) -> Operation | None: ...
    def put(self, op: Operation) -> None: ...
    def put_many(self, ops: list[Operation]) -> None:
        """Several operations in one transaction (a batch job's targets: all recorded, or none)."""
        ...
    def delete(self, task: str) -> None: ...
    def import_missing(self, operations: list[Operation]) -> None: ...


class ClaimsPort(Protocol):
    """The leases on one story's targets."""

    story_id: str

    def take(self, task: str, owner: str, lease_seconds: float) -> Claim | None:
        """Take (or extend) the lease: None when it is ours now, else the unexpired claim another owner holds."""
        ...

    def release(self, task: str, owner: str | None = None) -> Claim | None:
        """Drop the claim (only `owner`'s, unless None); returns what was released."""
        ...

    def unexpired(self) -> dict[str, Claim]:
        """Claims whose lease has not run out (whether their owner still runs is decided by the reader)."""
        ...


class BuildState(Protocol):
    """The build's own tables in one store; each port it opens serves one story."""

    def records(self, story_id: str) -> RecordsPort: ...
    def versions(self, story_id: str) -> VersionsPort: ...
    def operations(self, story_id: str) -> OperationsPort: ...
    def claims(self, story_id: str) -> ClaimsPort: ...
    def reviews(self, story_id: str) -> ReviewsPort: ...
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
