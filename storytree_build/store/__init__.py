"""Story stores: the SQLite default and (with configuration) Supabase. Each also keeps the build's own state for its
stories (records, operations, claims and reviews: build_state.py)."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ..files.atomic import private_folder
from ..core.errors import ConfigError
from .ports import JsonPath, StoryStore
from .build_state import BuildState, ClaimsPort, OperationsPort, RecordsPort

if TYPE_CHECKING:  # for types only: stores are opened from settings, the settings never import a store
    from ..core.story import StorySnapshot
    from ..settings import Settings
    from .sqlite_stories import SqliteStoryStore
    from .supabase_stories import SupabaseStoryStore

__all__ = ["BuildState", "ClaimsPort", "JsonPath", "OperationsPort", "RecordsPort", "SqliteStoryStore", "StorySnapshot",
           "StoryStore", "open_build_state", "open_store"]

log = logging.getLogger("storytree")


def __getattr__(name: str) -> Any:
    """`SqliteStoryStore` and `StorySnapshot` on first use: a no-op build opens the build state, not the story."""
    if name == "SqliteStoryStore":
        from .sqlite_stories import SqliteStoryStore

        return SqliteStoryStore
    if name == "StorySnapshot":
        from ..core.story import StorySnapshot

        return StorySnapshot
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(settings: Settings) -> StoryStore:
    if settings.store == "sqlite":
        from .sqlite_stories import SqliteStoryStore

        move_legacy_database(settings)
        return SqliteStoryStore(settings.db_path)
    if settings.store == "supabase":
        from .supabase_stories import SupabaseStoryStore  # optional adapter, imported only when chosen

        return SupabaseStoryStore.from_settings(settings)
    raise ConfigError(f"Unknown story store {settings.store!r}: set STORYTREE_STORE to 'sqlite' or 'supabase'.")


def open_build_state(settings: Settings, store: Callable[[], StoryStore]) -> BuildState:
    """The build's own state (records, operations, claims, reviews) in the same store as the stories. `store` is
    asked only where the state needs its connection (Supabase)."""
    if settings.store == "supabase":
        from .supabase_records import SupabaseBuildState

        return SupabaseBuildState(cast("SupabaseStoryStore", store()))  # open_store made it from these settings
    from .sqlite_records import SqliteBuildState

    move_legacy_database(settings)
    private_folder(settings.db_path.parent)
    return SqliteBuildState(settings.db_path)


def move_legacy_database(settings: Settings) -> None:
    """Earlier versions kept the default SQLite store in `.storytree/story.sqlite`, next to caches that are safe to
    delete. It holds the user's stories, so it moves to the data folder once (only the default location moves)."""
    old = settings.state_dir / "story.sqlite"
    if settings.db_path_is_default and old.is_file() and not settings.db_path.exists() and old != settings.db_path:
        conn = sqlite3.connect(old)
        try:
            conn.execute("pragma wal_checkpoint(truncate)")  # everything into the main file before it moves
        finally:
            conn.close()
        settings.db_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(old, settings.db_path)
        for suffix in ("-wal", "-shm"):
            old.with_name(old.name + suffix).unlink(missing_ok=True)
        log.info("moved the story database from %s to %s (it holds your stories, not a cache)", old, settings.db_path)
