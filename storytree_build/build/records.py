"""Pay-once records: one row per built target, written the moment an asset lands on disk.

Kept in `.storytree/records.sqlite` (outside the public assets folder), one transaction per write with
`synchronous=FULL`, so a SIGKILL never loses a finished target. doit's own database is only a cache:
deleting it rebuilds nothing, because "up to date" is decided from these records.

A second table holds in-flight video operations: the operation name is stored right after submit and
before polling, so a re-run resumes the paid job instead of paying for a new one.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable
from typing import Any, TypeVar

from ..atomic import private_folder
from ..errors import EnvironmentFault

T = TypeVar("T")

SCHEMA = """
create table if not exists records (
  story_id text not null,
  task text not null,
  output text not null,
  signature text not null,
  inputs text not null,
  output_sha256 text not null,
  output_size integer not null,
  output_mtime_ns integer not null,
  provider text not null,
  model text not null,
  prompt_sha256 text not null,
  built_at text not null,
  published integer not null default 0,
  identity text not null default '',
  primary key (story_id, task)
);
create table if not exists operations (
  story_id text not null,
  task text not null,
  signature text not null,
  provider text not null,
  model text not null,
  state text not null,            -- submitting | submitted | uncertain | failed
  operation text,
  submitted_at text not null,
  download_uri text,
  error text,
  primary key (story_id, task)
);
"""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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


@dataclass(frozen=True)
class Operation:
    story_id: str
    task: str
    signature: str
    provider: str
    model: str
    state: str
    operation: str | None
    submitted_at: str
    download_uri: str | None
    error: str | None


def _guarded(method: Callable[..., T]) -> Callable[..., T]:
    """SQLite failures of the records (a full disk, a read-only folder) become a clear EnvironmentFault."""

    @functools.wraps(method)
    def wrapper(self: "RecordStore", *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise EnvironmentFault(
                f"the pay-once records at {self.path} could not be read or written ({exc}). Free space or make the "
                "folder writable and build again; assets already saved are recognised by their provenance and not "
                "paid for again.") from None

    return wrapper


class RecordStore:
    @_guarded
    def __init__(self, path: Path):
        self.path = Path(path)
        private_folder(self.path.parent)
        self._local = threading.local()
        conn = self._conn()
        conn.executescript(SCHEMA)
        columns = {row[1] for row in conn.execute("pragma table_info(records)")}
        if "identity" not in columns:  # records written before identities existed
            conn.execute("alter table records add column identity text not null default ''")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
            conn.execute("pragma journal_mode=wal")
            conn.execute("pragma synchronous=full")  # fsync on every commit: a record is durable once written
            conn.execute("pragma busy_timeout=30000")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- records -------------------------------------------------------------------------------
    @_guarded
    def all_for_story(self, story_id: str) -> dict[str, Record]:
        rows = self._conn().execute(
            "select story_id, task, output, signature, inputs, output_sha256, output_size, output_mtime_ns, provider, "
            "model, prompt_sha256, built_at, published, identity from records where story_id = ?", (story_id,))
        return {r[1]: Record(*r[:4], json.loads(r[4]), *r[5:12], bool(r[12]), r[13]) for r in rows}

    @_guarded
    def get(self, story_id: str, task: str) -> Record | None:
        row = self._conn().execute(
            "select story_id, task, output, signature, inputs, output_sha256, output_size, output_mtime_ns, provider, "
            "model, prompt_sha256, built_at, published, identity from records where story_id = ? and task = ?",
            (story_id, task)).fetchone()
        return Record(*row[:4], json.loads(row[4]), *row[5:12], bool(row[12]), row[13]) if row else None

    @_guarded
    def put(self, record: Record) -> None:
        self._conn().execute(
            "insert or replace into records (story_id, task, output, signature, inputs, output_sha256, output_size, "
            "output_mtime_ns, provider, model, prompt_sha256, built_at, published, identity) "
            "values (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (record.story_id, record.task, record.output, record.signature, json.dumps(record.inputs, sort_keys=True),
             record.output_sha256, record.output_size, record.output_mtime_ns, record.provider, record.model,
             record.prompt_sha256, record.built_at, int(record.published), record.identity))

    @_guarded
    def mark_published(self, story_id: str, task: str) -> None:
        self._conn().execute("update records set published = 1 where story_id = ? and task = ?", (story_id, task))

    @_guarded
    def replace(self, story_id: str, remove: list[str], add: list[Record]) -> None:
        """Delete and insert records in one transaction (renames must never lose a record)."""
        conn = self._conn()
        conn.execute("begin immediate")
        try:
            for task in remove:
                conn.execute("delete from records where story_id = ? and task = ?", (story_id, task))
            for record in add:
                self.put(record)
        except BaseException:
            conn.execute("rollback")
            raise
        conn.execute("commit")

    @_guarded
    def delete(self, story_id: str, task: str) -> None:
        self._conn().execute("delete from records where story_id = ? and task = ?", (story_id, task))

    # -- in-flight operations ------------------------------------------------------------------
    @_guarded
    def get_operation(self, story_id: str, task: str) -> Operation | None:
        row = self._conn().execute(
            "select story_id, task, signature, provider, model, state, operation, submitted_at, download_uri, error "
            "from operations where story_id = ? and task = ?", (story_id, task)).fetchone()
        return Operation(*row) if row else None

    @_guarded
    def all_operations(self, story_id: str) -> dict[str, Operation]:
        rows = self._conn().execute(
            "select story_id, task, signature, provider, model, state, operation, submitted_at, download_uri, error "
            "from operations where story_id = ?", (story_id,))
        return {r[1]: Operation(*r) for r in rows}

    @_guarded
    def put_operation(self, op: Operation) -> None:
        self._conn().execute("insert or replace into operations values (?,?,?,?,?,?,?,?,?,?)",
                             (op.story_id, op.task, op.signature, op.provider, op.model, op.state, op.operation,
                              op.submitted_at, op.download_uri, op.error))

    @_guarded
    def delete_operation(self, story_id: str, task: str) -> None:
        self._conn().execute("delete from operations where story_id = ? and task = ?", (story_id, task))
