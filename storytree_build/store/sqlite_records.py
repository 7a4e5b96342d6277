"""Records, operations and claims in the embedded SQLite story store's own file (tables `storytree_*`).

One connection per thread, autocommit with explicit `BEGIN IMMEDIATE` for anything that reads before it writes
(claims, replacements), `synchronous=FULL` so a record is durable once written. SQLite failures (a full disk, a
read-only folder) become EnvironmentFault.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, ContextManager, TypeVar

from ..core.errors import EnvironmentFault
from ..files.sqlite_file import connect, immediate
from .sqlite_schema import ensure_schema
from .build_state import Claim, Operation, Record, utc_in, utc_now

T = TypeVar("T")

RECORD_COLS = [f.name for f in fields(Record)]
OPERATION_COLS = [f.name for f in fields(Operation)]


def _guarded(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def wrapper(self: "SqliteTables", *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise EnvironmentFault(
                f"the pay-once records in {self.path} could not be read or written ({exc}). Free space or make the "
                "folder writable and build again; assets already saved are recognised by their provenance and not "
                "paid for again.") from None

    return wrapper


def _record_values(record: Record) -> list[Any]:
    row = record.to_row()
    row["inputs"] = json.dumps(record.inputs, sort_keys=True)
    row["published"] = int(record.published)
    return [row[c] for c in RECORD_COLS]


class SqliteTables:
    """The build's own tables in the story's SQLite file: one connection per thread, explicit transactions."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self._init()

    @_guarded
    def _init(self) -> None:
        ensure_schema(self._conn())

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)  # fsync on every commit: a record is durable once written
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def _transaction(self) -> ContextManager[sqlite3.Connection]:
        return immediate(self._conn())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class SqliteRecords(SqliteTables):
    # -- records -------------------------------------------------------------------------------
    @_guarded
    def all_for_story(self, story_id: str) -> dict[str, Record]:
        rows = self._conn().execute("select * from storytree_records where story_id = ?", (story_id,))
        return {r["task"]: Record.from_row(dict(r)) for r in rows}

    @_guarded
    def get(self, story_id: str, task: str) -> Record | None:
        row = self._conn().execute("select * from storytree_records where story_id = ? and task = ?",
                                   (story_id, task)).fetchone()
        return Record.from_row(dict(row)) if row else None

    def _put(self, conn: sqlite3.Connection, record: Record, verb: str = "insert or replace") -> None:
        conn.execute(f"{verb} into storytree_records ({', '.join(RECORD_COLS)}) values "
                     f"({', '.join('?' for _ in RECORD_COLS)})", _record_values(record))

    @_guarded
    def put(self, record: Record) -> None:
        self._put(self._conn(), record)

    @_guarded
    def mark_published(self, story_id: str, task: str) -> None:
        self._conn().execute("update storytree_records set published = 1 where story_id = ? and task = ?",
                             (story_id, task))

    @_guarded
    def replace(self, story_id: str, remove: list[str], add: list[Record]) -> None:
        """Delete and insert records in one transaction (renames must never lose a record)."""
        with self._transaction() as conn:
            for task in remove:
                conn.execute("delete from storytree_records where story_id = ? and task = ?", (story_id, task))
            for record in add:
                self._put(conn, record)

    @_guarded
    def delete(self, story_id: str, task: str) -> None:
        self._conn().execute("delete from storytree_records where story_id = ? and task = ?", (story_id, task))

    # -- in-flight operations ------------------------------------------------------------------
    @_guarded
    def get_operation(self, story_id: str, task: str) -> Operation | None:
        row = self._conn().execute("select * from storytree_operations where story_id = ? and task = ?",
                                   (story_id, task)).fetchone()
        return Operation.from_row(dict(row)) if row else None

    @_guarded
    def all_operations(self, story_id: str) -> dict[str, Operation]:
        rows = self._conn().execute("select * from storytree_operations where story_id = ?", (story_id,))
        return {r["task"]: Operation.from_row(dict(r)) for r in rows}

    def _put_operation(self, conn: sqlite3.Connection, op: Operation, verb: str = "insert or replace") -> None:
        row = op.to_row()
        conn.execute(f"{verb} into storytree_operations ({', '.join(OPERATION_COLS)}) values "
                     f"({', '.join('?' for _ in OPERATION_COLS)})", [row[c] for c in OPERATION_COLS])

    @_guarded
    def put_operation(self, op: Operation) -> None:
        self._put_operation(self._conn(), op)

    @_guarded
    def put_operations(self, ops: list[Operation]) -> None:
        with self._transaction() as conn:
            for op in ops:
                self._put_operation(conn, op)

    @_guarded
    def delete_operation(self, story_id: str, task: str) -> None:
        self._conn().execute("delete from storytree_operations where story_id = ? and task = ?", (story_id, task))

    # -- claims --------------------------------------------------------------------------------
    @_guarded
    def claim(self, story_id: str, task: str, owner: str, lease_seconds: float) -> Claim | None:
        with self._transaction() as conn:
            row = conn.execute("select * from storytree_claims where story_id = ? and task = ?",
                               (story_id, task)).fetchone()
            held = Claim(**dict(row)) if row else None
            if held is not None and held.owner != owner and held.live:
                return held
            since = held.claimed_at if held is not None and held.owner == owner else utc_now()
            conn.execute("insert or replace into storytree_claims values (?,?,?,?,?)",
                         (story_id, task, owner, since, utc_in(lease_seconds)))
        return None

    @_guarded
    def release(self, story_id: str, task: str, owner: str | None = None) -> Claim | None:
        with self._transaction() as conn:
            row = conn.execute("select * from storytree_claims where story_id = ? and task = ?",
                               (story_id, task)).fetchone()
            if row is None or (owner is not None and row["owner"] != owner):
                return None
            conn.execute("delete from storytree_claims where story_id = ? and task = ?", (story_id, task))
            return Claim(**dict(row))

    @_guarded
    def claims(self, story_id: str) -> dict[str, Claim]:
        rows = self._conn().execute("select * from storytree_claims where story_id = ?", (story_id,))
        found = (Claim(**dict(r)) for r in rows)
        return {c.task: c for c in found if c.live}

    # -- moving between stores -----------------------------------------------------------------
    @_guarded
    def import_records(self, records: list[Record], operations: list[Operation]) -> None:
        with self._transaction() as conn:
            for record in records:
                self._put(conn, record, "insert or ignore")
            for op in operations:
                self._put_operation(conn, op, "insert or ignore")
