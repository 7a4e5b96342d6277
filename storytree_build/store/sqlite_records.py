"""Records, operations and claims in the embedded SQLite story store's own file (tables `storytree_*`), one story per
port; `SqliteBuildState` opens them (and the reviews) over shared connections."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import fields
from typing import Any

from .build_state import Claim, Operation, Record, Version, utc_in, utc_now
from .sqlite_reviews import SqliteReviews
from .sqlite_tables import SqliteTables, _Bound, _guarded

RECORD_COLS = [f.name for f in fields(Record)]
OPERATION_COLS = [f.name for f in fields(Operation)]
VERSION_COLS = ["story_id", "task", "version", "output_sha256", "record", "verdict", "replaced_at"]


def _record_values(record: Record) -> list[Any]:
    row = record.to_row()
    row["inputs"] = json.dumps(record.inputs, sort_keys=True)
    row["published"] = int(record.published)
    return [row[c] for c in RECORD_COLS]


# One row: the task's record columns (r_*) and operation columns (o_*), null where there is none (a left join keeps
# the columns' own types, which JSON would round).
_TASK_ROWS = ("select " + ", ".join([*(f"r.{c} as r_{c}" for c in RECORD_COLS), *(f"o.{c} as o_{c}" for c in OPERATION_COLS)])
              + " from (select 1) left join storytree_records r on r.story_id = ? and r.task = ?"
              " left join storytree_operations o on o.story_id = ? and o.task = ?")


def _split(row: sqlite3.Row, prefix: str, cols: list[str]) -> dict[str, Any] | None:
    values = {c: row[prefix + c] for c in cols}
    return values if values["task"] is not None else None


class SqliteBuildState(SqliteTables):
    """The build's own tables of one SQLite file; each port it opens serves one story and shares its connections."""

    def records(self, story_id: str) -> "SqliteRecords":
        return SqliteRecords(self, story_id)

    def versions(self, story_id: str) -> "SqliteVersions":
        return SqliteVersions(self, story_id)

    def operations(self, story_id: str) -> "SqliteOperations":
        return SqliteOperations(self, story_id)

    def claims(self, story_id: str) -> "SqliteClaims":
        return SqliteClaims(self, story_id)

    def reviews(self, story_id: str) -> "SqliteReviews":
        return SqliteReviews(self, story_id)


class SqliteRecords(_Bound):
    @_guarded
    def all(self) -> dict[str, Record]:
        rows = self._conn().execute("select * from storytree_records where story_id = ?", (self.story_id,))
        strings: dict[str, str] = {}
        return {r["task"]: Record.from_row(dict(r), strings) for r in rows}

    @_guarded
    def get(self, task: str) -> Record | None:
        row = self._conn().execute("select * from storytree_records where story_id = ? and task = ?",
                                   (self.story_id, task)).fetchone()
        return Record.from_row(dict(row)) if row else None

    @_guarded
    def with_operation(self, task: str) -> tuple[Record | None, Operation | None]:
        """The task's record and recorded operation in one query (the builder re-reads both under the claim)."""
        row = self._conn().execute(_TASK_ROWS, (self.story_id, task, self.story_id, task)).fetchone()
        record, operation = _split(row, "r_", RECORD_COLS), _split(row, "o_", OPERATION_COLS)
        return (Record.from_row(record) if record is not None else None,
                Operation.from_row(operation) if operation is not None else None)

    @staticmethod
    def _put(conn: sqlite3.Connection, record: Record, verb: str = "insert or replace") -> None:
        conn.execute(f"{verb} into storytree_records ({', '.join(RECORD_COLS)}) values "
                     f"({', '.join('?' for _ in RECORD_COLS)})", _record_values(record))

    @_guarded
    def put(self, record: Record, replaced: Version | None = None) -> None:
        if replaced is None:
            self._put(self._conn(), self._own(record))
            return
        with self._transaction() as conn:
            self._own(replaced.record)
            SqliteVersions.insert(conn, replaced)
            self._put(conn, self._own(record))

    @_guarded
    def mark_pushed(self, shas: list[str], remote: str) -> None:
        with self._transaction() as conn:
            for sha in shas:
                conn.execute("update storytree_records set pushed_to = ? where story_id = ? and output_sha256 = ?",
                             (remote, self.story_id, sha))
                conn.execute("update storytree_versions set record = json_set(record, '$.pushed_to', ?) "
                             "where story_id = ? and output_sha256 = ?", (remote, self.story_id, sha))

    @_guarded
    def mark_published(self, task: str) -> None:
        # Not synced: lost in a power cut, the path is published again for free (the path's own write came first).
        self._light().execute("update storytree_records set published = 1 where story_id = ? and task = ?",
                             (self.story_id, task))

    @_guarded
    def replace(self, remove: list[str], add: list[Record]) -> None:
        with self._transaction() as conn:
            for task in remove:
                conn.execute("delete from storytree_records where story_id = ? and task = ?", (self.story_id, task))
            for record in add:
                self._put(conn, self._own(record))

    @_guarded
    def delete(self, task: str) -> None:
        self._conn().execute("delete from storytree_records where story_id = ? and task = ?", (self.story_id, task))

    @_guarded
    def import_missing(self, records: list[Record]) -> None:
        with self._transaction() as conn:
            for record in records:
                self._put(conn, self._own(record), "insert or ignore")

    def _own(self, record: Record) -> Record:
        if record.story_id != self.story_id:
            raise ValueError(f"record of story {record.story_id} given to the records of story {self.story_id}")
        return record


class SqliteVersions(_Bound):
    @staticmethod
    def insert(conn: sqlite3.Connection, version: Version, verb: str = "insert or ignore") -> None:
        row = version.to_row()
        row["record"] = json.dumps(row["record"], sort_keys=True)
        conn.execute(f"{verb} into storytree_versions ({', '.join(VERSION_COLS)}) values "
                     f"({', '.join('?' for _ in VERSION_COLS)})", [row[c] for c in VERSION_COLS])

    @_guarded
    def all(self, task: str | None = None) -> list[Version]:
        if task is None:
            rows = self._conn().execute("select * from storytree_versions where story_id = ? order by task, version "
                                        "desc", (self.story_id,))
        else:
            rows = self._conn().execute("select * from storytree_versions where story_id = ? and task = ? order by "
                                        "version desc", (self.story_id, task))
        return [Version.from_row(dict(r)) for r in rows]

    @_guarded
    def delete(self, task: str, versions: list[int]) -> None:
        with self._transaction() as conn:
            for number in versions:
                conn.execute("delete from storytree_versions where story_id = ? and task = ? and version = ?",
                             (self.story_id, task, number))

    @_guarded
    def import_missing(self, versions: list[Version]) -> None:
        with self._transaction() as conn:
            for version in versions:
                if version.story_id != self.story_id:
                    raise ValueError(f"version of story {version.story_id} given to story {self.story_id}")
                self.insert(conn, version)


class SqliteOperations(_Bound):
    @_guarded
    def get(self, task: str) -> Operation | None:
        row = self._conn().execute("select * from storytree_operations where story_id = ? and task = ?",
                                   (self.story_id, task)).fetchone()
        return Operation.from_row(dict(row)) if row else None

    @_guarded
    def all(self) -> dict[str, Operation]:
        rows = self._conn().execute("select * from storytree_operations where story_id = ?", (self.story_id,))
        return {r["task"]: Operation.from_row(dict(r)) for r in rows}

    def _put(self, conn: sqlite3.Connection, op: Operation, verb: str = "insert or replace") -> None:
        if op.story_id != self.story_id:
            raise ValueError(f"operation of story {op.story_id} given to the operations of story {self.story_id}")
        row = op.to_row()
        conn.execute(f"{verb} into storytree_operations ({', '.join(OPERATION_COLS)}) values "
                     f"({', '.join('?' for _ in OPERATION_COLS)})", [row[c] for c in OPERATION_COLS])

    @_guarded
    def put(self, op: Operation) -> None:
        self._put(self._conn(), op)

    @_guarded
    def put_many(self, ops: list[Operation]) -> None:
        with self._transaction() as conn:
            for op in ops:
                self._put(conn, op)

    @_guarded
    def delete(self, task: str) -> None:
        self._conn().execute("delete from storytree_operations where story_id = ? and task = ?",
                             (self.story_id, task))

    @_guarded
    def import_missing(self, operations: list[Operation]) -> None:
        with self._transaction() as conn:
            for op in operations:
                self._put(conn, op, "insert or ignore")


class SqliteClaims(_Bound):
    # Claims are leases, written without a sync (the light connection): a power cut ends their workers too, and a
    # claim that comes back is one of a process that no longer runs, which the next worker takes over.
    @_guarded
    def take(self, task: str, owner: str, lease_seconds: float) -> Claim | None:
        # One statement when the target is free or already ours (the lease extended, its start kept); the
        # transaction below only when another owner's row is there.
        taken = self._light().execute(
            "insert into storytree_claims values (?,?,?,?,?) on conflict (story_id, task) do update set "
            "expires_at = excluded.expires_at where storytree_claims.owner = excluded.owner",
            (self.story_id, task, owner, utc_now(), utc_in(lease_seconds)))
        if taken.rowcount == 1:
            return None
        with self._transaction(light=True) as conn:
            row = conn.execute("select * from storytree_claims where story_id = ? and task = ?",
                               (self.story_id, task)).fetchone()
            held = Claim.from_row(dict(row)) if row else None
            if held is not None and held.owner != owner and held.problem:
                raise held.unreadable()
            if held is not None and held.owner != owner and held.live:
                return held
            since = held.claimed_at if held is not None and held.owner == owner else utc_now()
            conn.execute("insert or replace into storytree_claims values (?,?,?,?,?)",
                         (self.story_id, task, owner, since, utc_in(lease_seconds)))
        return None

    @_guarded
    def release(self, task: str, owner: str | None = None) -> Claim | None:
        if owner is None:
            rows = self._light().execute("delete from storytree_claims where story_id = ? and task = ? returning *",
                                         (self.story_id, task)).fetchall()
        else:
            rows = self._light().execute("delete from storytree_claims where story_id = ? and task = ? and owner = ? "
                                         "returning *", (self.story_id, task, owner)).fetchall()
        return Claim.from_row(dict(rows[0])) if rows else None

    @_guarded
    def unexpired(self) -> dict[str, Claim]:
        rows = self._light().execute("select * from storytree_claims where story_id = ?", (self.story_id,))
        found = (Claim.from_row(dict(r)) for r in rows)
        return {c.task: c for c in found if c.live}
