"""Records, operations and claims in Supabase: tables and RPCs of supabase/migrations/000014_storytree_records.sql.

Reads are plain selects; every write is one RPC call (one transaction on the server). Claims use the database's own
clock, so machines with skewed clocks still agree on whose lease is live.
"""

from __future__ import annotations

from typing import Any

from postgrest.exceptions import APIError

from ..core.errors import ConfigError
from .build_state import Claim, Operation, Record
from .supabase_stories import SupabaseStoryStore, _is_uuid

MIGRATION = "supabase/migrations/000014_storytree_records.sql (and 000016_storytree_put_operations.sql)"
RECORD_COLS = list(Record.__dataclass_fields__)
OPERATION_COLS = list(Operation.__dataclass_fields__)


class SupabaseTables:
    """The build's own tables in Supabase: reads through the story store's client, writes as RPCs; a database
    without them gets a message naming the migration to apply."""

    migration = MIGRATION
    tables = "records tables"

    def __init__(self, store: SupabaseStoryStore):
        self._store = store

    def close(self) -> None:
        pass  # the story store owns the connection

    def _missing(self, exc: APIError) -> Exception | None:
        if exc.code in ("PGRST202", "PGRST205", "42P01"):
            return ConfigError(
                f"The Supabase database behind SUPABASE_URL lacks storytree's {self.tables} or functions "
                f"({exc.code}). Apply {self.migration} (Supabase SQL editor or `supabase db push`); a self-hosted "
                "PostgREST then needs NOTIFY pgrst, 'reload schema'.")
        return None

    def _rpc(self, what: str, function: str, params: dict[str, Any]) -> Any:
        return self._store.rpc(what, function, params, self._missing)

    def _select(self, what: str, table: str, columns: list[str], story_id: str, task: str | None = None) -> list[dict]:
        if not _is_uuid(story_id):
            return []
        filters = {"story_id": story_id, **({"task": task} if task is not None else {})}
        try:
            return self._store.select_all(what, table, columns, ["task"], filters)
        except ConfigError as exc:
            if "missing" in str(exc) or "out of date" in str(exc):
                raise ConfigError(f"{exc} The {self.tables} come with {self.migration}.") from None
            raise


class SupabaseRecords(SupabaseTables):

    # -- records -------------------------------------------------------------------------------
    def all_for_story(self, story_id: str) -> dict[str, Record]:
        rows = self._select(f"read the records of story {story_id}", "storytree_records", RECORD_COLS, story_id)
        return {r["task"]: Record.from_row(r) for r in rows}

    def get(self, story_id: str, task: str) -> Record | None:
        rows = self._select(f"read the record of {task}", "storytree_records", RECORD_COLS, story_id, task)
        return Record.from_row(rows[0]) if rows else None

    def put(self, record: Record) -> None:
        self._rpc(f"record {record.task}", "storytree_put_record", {"p_record": record.to_row()})

    def mark_published(self, story_id: str, task: str) -> None:
        self._rpc(f"mark {task} published", "storytree_mark_published", {"p_story_id": story_id, "p_task": task})

    def replace(self, story_id: str, remove: list[str], add: list[Record]) -> None:
        self._rpc(f"move {len(add)} records", "storytree_replace_records",
                  {"p_story_id": story_id, "p_remove": remove, "p_add": [r.to_row() for r in add]})

    def delete(self, story_id: str, task: str) -> None:
        self._rpc(f"delete the record of {task}", "storytree_delete_record", {"p_story_id": story_id, "p_task": task})

    # -- in-flight operations ------------------------------------------------------------------
    def get_operation(self, story_id: str, task: str) -> Operation | None:
        rows = self._select(f"read the operation of {task}", "storytree_operations", OPERATION_COLS, story_id, task)
        return Operation.from_row(rows[0]) if rows else None

    def all_operations(self, story_id: str) -> dict[str, Operation]:
        rows = self._select(f"read the operations of story {story_id}", "storytree_operations", OPERATION_COLS,
                            story_id)
        return {r["task"]: Operation.from_row(r) for r in rows}

    def put_operation(self, op: Operation) -> None:
        self._rpc(f"record the operation of {op.task}", "storytree_put_operation", {"p_operation": op.to_row()})

    def put_operations(self, ops: list[Operation]) -> None:
        self._rpc(f"record {len(ops)} operations", "storytree_put_operations",
                  {"p_operations": [op.to_row() for op in ops]})

    def delete_operation(self, story_id: str, task: str) -> None:
        self._rpc(f"forget the operation of {task}", "storytree_delete_operation",
                  {"p_story_id": story_id, "p_task": task})

    # -- claims --------------------------------------------------------------------------------
    def claim(self, story_id: str, task: str, owner: str, lease_seconds: float) -> Claim | None:
        held = self._rpc(f"claim {task}", "storytree_claim", {"p_story_id": story_id, "p_task": task,
                                                              "p_owner": owner, "p_lease_seconds": lease_seconds})
        return Claim(**held) if held else None

    def release(self, story_id: str, task: str, owner: str | None = None) -> Claim | None:
        gone = self._rpc(f"release {task}", "storytree_release",
                         {"p_story_id": story_id, "p_task": task, "p_owner": owner})
        return Claim(**gone) if gone else None

    def claims(self, story_id: str) -> dict[str, Claim]:
        if not _is_uuid(story_id):
            return {}
        rows = self._rpc(f"read the claims of story {story_id}", "storytree_live_claims", {"p_story_id": story_id})
        return {r["task"]: Claim(**r) for r in rows or []}

    # -- moving between stores -----------------------------------------------------------------
    def import_records(self, records: list[Record], operations: list[Operation]) -> None:
        self._rpc(f"import {len(records)} records", "storytree_import_records",
                  {"p_records": [r.to_row() for r in records], "p_operations": [o.to_row() for o in operations]})
