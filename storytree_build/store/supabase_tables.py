"""The build's own tables in Supabase for one story: reads through the story store's client, writes as RPCs (one
transaction on the server each); a database without them gets a message naming the migration to apply."""

from __future__ import annotations

from typing import Any

from postgrest.exceptions import APIError

from ..core.errors import ConfigError
from .supabase_stories import SupabaseStoryStore, _is_uuid

MIGRATION = ("supabase/migrations/000014_storytree_records.sql (and 000016_storytree_put_operations.sql, "
             "000017_storytree_objects.sql)")


class SupabaseTables:
    """The build's own tables in Supabase for one story: reads through the story store's client, writes as RPCs; a
    database without them gets a message naming the migration to apply."""

    migration = MIGRATION
    tables = "records tables"

    def __init__(self, store: SupabaseStoryStore, story_id: str):
        self._store = store
        self.story_id = story_id

    def _missing(self, exc: APIError) -> Exception | None:
        if exc.code in ("PGRST202", "PGRST205", "42P01"):
            return ConfigError(
                f"The Supabase database behind SUPABASE_URL lacks storytree's {self.tables} or functions "
                f"({exc.code}). Apply {self.migration} (Supabase SQL editor or `supabase db push`); a self-hosted "
                "PostgREST then needs NOTIFY pgrst, 'reload schema'.")
        return None

    def _own(self, items: list[Any]) -> list[dict[str, Any]]:
        """Rows of values that belong to this port's story (a value of another story is a bug, never written)."""
        for item in items:
            if item.story_id != self.story_id:
                raise ValueError(f"{type(item).__name__} of story {item.story_id} given to story {self.story_id}")
        return [item.to_row() for item in items]

    def _rpc(self, what: str, function: str, params: dict[str, Any]) -> Any:
        return self._store.rpc(what, function, params, self._missing)

    def _select(self, what: str, table: str, columns: list[str], task: str | None = None) -> list[dict]:
        if not _is_uuid(self.story_id):
            return []
        filters = {"story_id": self.story_id, **({"task": task} if task is not None else {})}
        try:
            return self._store.select_all(what, table, columns, ["task"], filters)
        except ConfigError as exc:
            if "missing" in str(exc) or "out of date" in str(exc):
                raise ConfigError(f"{exc} The {self.tables} come with {self.migration}.") from None
            raise
