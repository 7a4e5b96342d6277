"""Records, operations and claims in Supabase: tables and RPCs of supabase/migrations/000014_storytree_records.sql.

Reads are plain selects; every write is one RPC call (one transaction on the server). Claims use the database's own
clock, so machines with skewed clocks still agree on whose lease is live.
"""

from __future__ import annotations

from .build_state import Claim, Operation, Record, Version
from .supabase_reviews import SupabaseReviews
from .supabase_stories import SupabaseStoryStore, _is_uuid
from .supabase_tables import SupabaseTables

RECORD_COLS = list(Record.__dataclass_fields__)
OPERATION_COLS = list(Operation.__dataclass_fields__)
VERSION_COLS = ["story_id", "task", "version", "output_sha256", "record", "verdict", "replaced_at"]
VERSIONS_MIGRATION = "supabase/migrations/000017_storytree_objects.sql"


class SupabaseBuildState:
    """Opens the ports of one story each; the story store owns the connection."""

    def __init__(self, store: SupabaseStoryStore):
        self._store = store

    def records(self, story_id: str) -> "SupabaseRecords":
        return SupabaseRecords(self._store, story_id)

    def versions(self, story_id: str) -> "SupabaseVersions":
        return SupabaseVersions(self._store, story_id)

    def operations(self, story_id: str) -> "SupabaseOperations":
        return SupabaseOperations(self._store, story_id)

    def claims(self, story_id: str) -> "SupabaseClaims":
        return SupabaseClaims(self._store, story_id)

    def reviews(self, story_id: str) -> "SupabaseReviews":
        return SupabaseReviews(self._store, story_id)

    def close(self) -> None:
        pass


class SupabaseRecords(SupabaseTables):
    def all(self) -> dict[str, Record]:
        rows = self._select(f"read the records of story {self.story_id}", "storytree_records", RECORD_COLS)
        strings: dict[str, str] = {}
        return {r["task"]: Record.from_row(r, strings) for r in rows}

    def get(self, task: str) -> Record | None:
        rows = self._select(f"read the record of {task}", "storytree_records", RECORD_COLS, task)
        return Record.from_row(rows[0]) if rows else None

    def put(self, record: Record, replaced: Version | None = None) -> None:
        if replaced is None:
            self._rpc(f"record {record.task}", "storytree_put_record", {"p_record": self._own([record])[0]})
            return
        self._own([replaced.record])
        self._rpc(f"record {record.task}", "storytree_put_record_keeping",
                  {"p_record": self._own([record])[0], "p_replaced": replaced.to_row()})

    def mark_pushed(self, shas: list[str], remote: str) -> None:
        if shas:
            self._rpc(f"mark {len(shas)} objects pushed", "storytree_mark_pushed",
                      {"p_story_id": self.story_id, "p_shas": shas, "p_remote": remote})

    def mark_published(self, task: str) -> None:
        self._rpc(f"mark {task} published", "storytree_mark_published", {"p_story_id": self.story_id, "p_task": task})

    def replace(self, remove: list[str], add: list[Record]) -> None:
        self._rpc(f"move {len(add)} records", "storytree_replace_records",
                  {"p_story_id": self.story_id, "p_remove": remove, "p_add": self._own(add)})

    def delete(self, task: str) -> None:
        self._rpc(f"delete the record of {task}", "storytree_delete_record",
                  {"p_story_id": self.story_id, "p_task": task})

    def import_missing(self, records: list[Record]) -> None:
        if records:
            self._rpc(f"import {len(records)} records", "storytree_import_records",
                      {"p_records": self._own(records), "p_operations": []})


class SupabaseVersions(SupabaseTables):
    migration = VERSIONS_MIGRATION
    tables = "versions table"

    def all(self, task: str | None = None) -> list[Version]:
        rows = self._select(f"read the versions of story {self.story_id}", "storytree_versions", VERSION_COLS, task)
        return sorted((Version.from_row(r) for r in rows), key=lambda v: (v.task, -v.version))

    def delete(self, task: str, versions: list[int]) -> None:
        if versions:
            self._rpc(f"delete {len(versions)} versions of {task}", "storytree_delete_versions",
                      {"p_story_id": self.story_id, "p_task": task, "p_versions": versions})

    def import_missing(self, versions: list[Version]) -> None:
        if versions:
            self._own([v.record for v in versions])
            self._rpc(f"import {len(versions)} versions", "storytree_import_versions",
                      {"p_versions": self._own(versions)})


class SupabaseOperations(SupabaseTables):
    def get(self, task: str) -> Operation | None:
        rows = self._select(f"read the operation of {task}", "storytree_operations", OPERATION_COLS, task)
        return Operation.from_row(rows[0]) if rows else None

    def all(self) -> dict[str, Operation]:
        rows = self._select(f"read the operations of story {self.story_id}", "storytree_operations", OPERATION_COLS)
        return {r["task"]: Operation.from_row(r) for r in rows}

    def put(self, op: Operation) -> None:
        self._rpc(f"record the operation of {op.task}", "storytree_put_operation", {"p_operation": self._own([op])[0]})

    def put_many(self, ops: list[Operation]) -> None:
        self._rpc(f"record {len(ops)} operations", "storytree_put_operations",
                  {"p_operations": self._own(ops)})

    def delete(self, task: str) -> None:
        self._rpc(f"forget the operation of {task}", "storytree_delete_operation",
                  {"p_story_id": self.story_id, "p_task": task})

    def import_missing(self, operations: list[Operation]) -> None:
        if operations:
            self._rpc(f"import {len(operations)} operations", "storytree_import_records",
                      {"p_records": [], "p_operations": self._own(operations)})


class SupabaseClaims(SupabaseTables):
    def take(self, task: str, owner: str, lease_seconds: float) -> Claim | None:
        held = self._rpc(f"claim {task}", "storytree_claim", {"p_story_id": self.story_id, "p_task": task,
                                                              "p_owner": owner, "p_lease_seconds": lease_seconds})
        return Claim.from_row(held) if held else None

    def release(self, task: str, owner: str | None = None) -> Claim | None:
        gone = self._rpc(f"release {task}", "storytree_release",
                         {"p_story_id": self.story_id, "p_task": task, "p_owner": owner})
        return Claim.from_row(gone) if gone else None

    def unexpired(self) -> dict[str, Claim]:
        if not _is_uuid(self.story_id):
            return {}
        rows = self._rpc(f"read the claims of story {self.story_id}", "storytree_live_claims",
                         {"p_story_id": self.story_id})
        return {r["task"]: Claim.from_row(r) for r in rows or []}
