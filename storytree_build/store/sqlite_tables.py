"""The build's own tables in the story's SQLite file, shared by the ports of every story: one connection per thread,
autocommit with explicit `BEGIN IMMEDIATE` for anything that reads before it writes (claims, replacements),
`synchronous=FULL` so a record is durable once written. SQLite failures (a full disk, a read-only folder) become
EnvironmentFault.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ContextManager, TypeVar

from ..core.errors import EnvironmentFault
from ..files.sqlite_file import connect, immediate
from .sqlite_schema import ensure_schema

T = TypeVar("T")


def _guarded(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise EnvironmentFault(
                f"the pay-once records in {self.path} could not be read or written ({exc}). Free space or make the "
                "folder writable and build again; assets already saved are recognised by their provenance and not "
                "paid for again.") from None

    return wrapper


class SqliteTables:
    """The connections to one SQLite file (one per thread)."""

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

    def _light(self) -> sqlite3.Connection:
        """This thread's second connection, whose commits are not synced: for rows a power cut may take back at no
        cost (claims, which die with their worker; the published flag, whose write is free to repeat)."""
        conn = getattr(self._local, "light", None)
        if conn is None:
            conn = connect(self.path, durable=False)
            conn.row_factory = sqlite3.Row
            self._local.light = conn
        return conn

    def _transaction(self, light: bool = False) -> ContextManager[sqlite3.Connection]:
        return immediate(self._light() if light else self._conn())

    def close(self) -> None:
        for name in ("conn", "light"):
            conn = getattr(self._local, name, None)
            if conn is not None:
                conn.close()
                setattr(self._local, name, None)


class _Bound:
    """A port of one story over the shared tables (its failures name the file, see `_guarded`)."""

    def __init__(self, tables: SqliteTables, story_id: str):
        self.tables = tables
        self.story_id = story_id

    @property
    def path(self) -> Path:
        return self.tables.path

    def _conn(self) -> sqlite3.Connection:
        return self.tables._conn()

    def _light(self) -> sqlite3.Connection:
        return self.tables._light()

    def _transaction(self, light: bool = False) -> ContextManager[sqlite3.Connection]:
        return self.tables._transaction(light)
