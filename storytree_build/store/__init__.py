"""Story stores: the SQLite default and (with configuration) Supabase."""

from .base import JsonPath, StorySnapshot, StoryStore
from .sqlite import SqliteStoryStore

__all__ = ["JsonPath", "StorySnapshot", "StoryStore", "SqliteStoryStore", "open_store"]


def open_store(settings) -> StoryStore:  # noqa: ANN001 - Settings, imported lazily to keep layers one-way
    if settings.store == "sqlite":
        return SqliteStoryStore(settings.db_path)
    if settings.store == "supabase":
        from .supabase import SupabaseStoryStore  # optional adapter, imported only when chosen

        return SupabaseStoryStore.from_settings(settings)
    from ..errors import ConfigError

    raise ConfigError(f"Unknown story store {settings.store!r}: set STORYTREE_STORE to 'sqlite' or 'supabase'.")
