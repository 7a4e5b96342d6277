"""Embedded SQLite story store: the original Supabase tables, jsonb stored as JSON text.

Concurrency (storage notes §3): one connection per thread, autocommit mode with explicit
`BEGIN IMMEDIATE`, WAL and a busy timeout; JSON paths are written with a single `json_set` UPDATE,
which never loses a concurrent update. Plain deferred transactions upgrade read→write and fail.

The tables live in `sqlite_schema.py`, versioned by `PRAGMA user_version`: opening the store applies any missing
numbered migration there, and refuses a file written by a newer storytree.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ContextManager

from ..files.atomic import private_folder
from ..core.errors import EnvironmentFault, InputError, StoreError, collect
from ..core.columns import DOCUMENT_COLUMNS, SHOT_PATH_COLUMNS
from ..core.shared_strings import shared_strings
from ..files.sqlite_file import connect, immediate
from .sqlite_schema import ensure_schema
from .ports import (ROW_TABLES, SCENELET_COLS, SHOT_COLS, STORY_COLS, WRITTEN_BACK_DOCUMENTS,
                    WRITTEN_BACK_SHOT_COLUMNS, JsonPath, RowOwner, check_document_column, check_shot_column,
                    foreign_row_problems, keep_asset_paths, without_written_back)

if TYPE_CHECKING:
    from ..core.story import StorySnapshot

STORY_JSON = set(DOCUMENT_COLUMNS)
ID_BATCH = 500  # ids per `in (...)` query, well below SQLite's bound-parameter limit
SCENELET_BOOL = {"is_branch_point", "is_terminal_node"}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def sqlite_json_path(path: JsonPath) -> str:
    """`$."key"[0]."other"`: quoted keys so ids with dashes work; keys with quotes are refused."""
    parts = ["$"]
    for segment in path:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        elif '"' in segment:
            raise ValueError(f"JSON key {segment!r} contains a double quote")
        else:
            parts.append(f'."{segment}"')
    return "".join(parts)


def _unusable(path: Path, exc: sqlite3.Error) -> EnvironmentFault:
    return EnvironmentFault(f"the story database {path} could not be opened or read ({exc}). Free space or make its "
                            "folder writable and run again; nothing was built or paid for.")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class SqliteStoryStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        private_folder(self.path.parent)
        self._local = threading.local()
        try:
            ensure_schema(self._conn())
        except sqlite3.Error as exc:  # a full disk or an unwritable folder: every build opens the store first
            raise _unusable(self.path, exc) from None

    # -- connections ---------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            conn.execute("pragma foreign_keys=on")
            self._local.conn = conn
        return conn

    def _light(self) -> sqlite3.Connection:
        """This thread's connection whose commits are not synced, for published asset paths (a shot's column, a
        design document's field): a power cut may take one back, and then it takes back the published flag written
        after it too (one write-ahead log, replayed in order), so the record, synced before both, says unpublished
        and the next build writes the path again for free."""
        conn = getattr(self._local, "light", None)
        if conn is None:
            conn = connect(self.path, durable=False)
            conn.execute("pragma foreign_keys=on")
            self._local.light = conn
        return conn

    def _transaction(self) -> ContextManager[sqlite3.Connection]:
        return immediate(self._conn())

    def close(self) -> None:
        for name in ("conn", "light"):
            conn = getattr(self._local, name, None)
            if conn is not None:
                conn.close()
                setattr(self._local, name, None)

    # -- reads ---------------------------------------------------------------------------------
    def list_story_ids(self) -> list[str]:
        return [r[0] for r in self._conn().execute("select id from stories order by created_at, id")]

    def load_story(self, story_id: str) -> StorySnapshot:
        from ..core.story import StorySnapshot  # the document models: not needed by a no-op build

        conn = self._conn()
        conn.execute("begin")  # one consistent read snapshot across the three tables
        try:
            row = conn.execute(f"select {', '.join(STORY_COLS)} from stories where id = ?", (story_id,)).fetchone()
            if row is None:
                known = ", ".join(self.list_story_ids()) or "none"
                raise InputError(f"Story {story_id} does not exist in {self.path} (known stories: {known}). "
                                 "Import it with `storytree import FILE`.")
            strings: dict[str, str] = {}  # a long story's shots repeat their keys and ids: one copy each
            story = {c: (json.loads(v) if c in STORY_JSON and v is not None else v) for c, v in zip(STORY_COLS, row)}
            scenelets = [
                {c: (shared_strings(json.loads(v), strings) if c == "content" else bool(v) if c in SCENELET_BOOL
                     else shared_strings(v, strings))
                 for c, v in zip(SCENELET_COLS, r)}
                for r in conn.execute(
                    f"select {', '.join(SCENELET_COLS)} from scenelets where story_id = ? order by created_at, id",
                    (story_id,))
            ]
            shots = [
                {c: shared_strings(json.loads(v) if c == "storyboard_payload" else v, strings)
                 for c, v in zip(SHOT_COLS, r)}
                for r in conn.execute(
                    f"select {', '.join(SHOT_COLS)} from shots where story_id = ? "
                    "order by scenelet_sequence, scenelet_ref, shot_index", (story_id,))
            ]
        finally:
            conn.execute("commit")
        return StorySnapshot(story=story, scenelets=scenelets, shots=shots)

    def fingerprint(self, story_id: str) -> str:
        """Hashes the stored text of every row, without parsing it (cheap enough for every no-op build)."""
        digest = hashlib.sha256()
        conn = self._conn()
        conn.execute("begin")
        try:
            for table, cols in (("stories", STORY_COLS), ("scenelets", SCENELET_COLS), ("shots", SHOT_COLS)):
                _digest_rows(digest, conn, table, cols, story_id)
        finally:
            conn.execute("commit")
        return digest.hexdigest()

    def manifest_fingerprint(self, story_id: str) -> str:
        """`fingerprint` without what a build writes back: only the two documents that hold asset paths are parsed."""
        try:
            return self._manifest_fingerprint(story_id)
        except sqlite3.Error as exc:
            raise _unusable(self.path, exc) from None

    def _manifest_fingerprint(self, story_id: str) -> str:
        digest = hashlib.sha256()
        story_cols = [c for c in STORY_COLS if c != "updated_at"]
        shot_cols = [c for c in SHOT_COLS if c not in (*WRITTEN_BACK_SHOT_COLUMNS, "updated_at")]
        parsed = [story_cols.index(c) for c in WRITTEN_BACK_DOCUMENTS]
        conn = self._conn()
        conn.execute("begin")
        try:
            for row in conn.execute(f"select {', '.join(story_cols)} from stories where id = ?", (story_id,)):
                values = list(row)
                for i in parsed:
                    if values[i] is not None:
                        values[i] = _dumps(without_written_back(json.loads(values[i])))
                digest.update(repr(values).encode("utf-8", "surrogatepass"))
            digest.update(b"|")
            for table, cols in (("scenelets", SCENELET_COLS), ("shots", shot_cols)):
                _digest_rows(digest, conn, table, cols, story_id)
        finally:
            conn.execute("commit")
        return digest.hexdigest()

    def row_owners(self, table: str, row_ids: list[str]) -> dict[str, RowOwner]:
        return _row_owners(self._conn(), table, row_ids)

    # -- writes --------------------------------------------------------------------------------
    def import_rows(self, export: dict[str, list[dict[str, Any]]]) -> None:
        """Upsert every row in one transaction. Asset paths a build wrote back are kept when the incoming rows have
        none (`keep_asset_paths`); the transaction serialises with the build's own path writes, so an import during
        a build loses nothing.

        A scenelet or shot row whose id belongs to another story is refused (InputError, nothing written): the
        upsert would move it, and its paid paths, out of that story. Checked inside the write transaction, so an
        import that lands after the caller's validation cannot slip past."""
        stamp = now_iso()
        with self._transaction() as conn:
            owners = {(table, row_id): owner for table in ROW_TABLES
                      for row_id, owner in _row_owners(conn, table, [str(r["id"]) for r in export.get(table, [])
                                                                     if r.get("id") is not None]).items()}
            collect(foreign_row_problems(export, owners), "nothing was imported")
            for story in export.get("stories", []):
                values = {c: story.get(c) for c in STORY_COLS}
                stored = conn.execute(f"select {', '.join(DOCUMENT_COLUMNS)} from stories where id = ?",
                                      (values["id"],)).fetchone()
                for c, old in zip(DOCUMENT_COLUMNS, stored or [None] * len(DOCUMENT_COLUMNS)):
                    if old is not None and values[c] is not None:
                        values[c] = keep_asset_paths(json.loads(old), values[c])
                for c in STORY_JSON:
                    values[c] = None if values[c] is None else _dumps(values[c])
                values["created_at"] = values["created_at"] or stamp
                values["updated_at"] = values["updated_at"] or stamp
                self._upsert(conn, "stories", STORY_COLS, values)
            for scenelet in export.get("scenelets", []):
                values = {c: scenelet.get(c) for c in SCENELET_COLS}
                values["content"] = _dumps(values["content"])
                for c in SCENELET_BOOL:
                    values[c] = 1 if values[c] else 0
                values["created_at"] = values["created_at"] or stamp
                self._upsert(conn, "scenelets", SCENELET_COLS, values, keep=("branch_audio_file_path",))
            for shot in export.get("shots", []):
                values = {c: shot.get(c) for c in SHOT_COLS}
                values["storyboard_payload"] = _dumps(values["storyboard_payload"])
                values["created_at"] = values["created_at"] or stamp
                values["updated_at"] = values["updated_at"] or stamp
                existing = conn.execute(
                    f"select id, {', '.join(SHOT_PATH_COLUMNS)} from shots where story_id=? and scenelet_id=? "
                    "and shot_index=?", (values["story_id"], values["scenelet_id"], values["shot_index"])).fetchone()
                values["id"] = values["id"] or (existing[0] if existing else _new_uuid())
                if existing and existing[0] != values["id"]:
                    # The natural key wins over the row id: re-ingesting a scenelet replaces its shots in place,
                    # and the paths of the shot it replaces stay unless the new row brings its own.
                    for c, old in zip(SHOT_PATH_COLUMNS, existing[1:]):
                        values[c] = values[c] or old
                    conn.execute("delete from shots where id = ?", (existing[0],))
                self._upsert(conn, "shots", SHOT_COLS, values, keep=SHOT_PATH_COLUMNS)

    @staticmethod
    def _upsert(conn: sqlite3.Connection, table: str, cols: list[str], values: dict[str, Any],
                keep: tuple[str, ...] | list[str] = ()) -> None:
        """Insert or update by id; columns in `keep` keep their stored value when the incoming one is empty."""
        placeholders = ", ".join("?" for _ in cols)
        updates = ", ".join(f"{c}=coalesce(nullif(excluded.{c}, ''), {table}.{c})" if c in keep else f"{c}=excluded.{c}"
                            for c in cols if c != "id")
        conn.execute(
            f"insert into {table} ({', '.join(cols)}) values ({placeholders}) on conflict(id) do update set {updates}",
            [values[c] for c in cols],
        )

    def set_document_path(self, story_id: str, column: str, path: JsonPath, value: Any) -> None:
        check_document_column(column)
        json_path = sqlite_json_path(path)
        with immediate(self._light()) as conn:  # a published path: not synced (see _light)
            row = conn.execute(
                f"update stories set {column} = json_set(coalesce({column}, '{{}}'), ?, json(?)), updated_at = ? "
                f"where id = ? returning json_type({column}, ?), json_extract({column}, ?)",
                (json_path, _dumps(value), now_iso(), story_id, json_path, json_path),
            ).fetchone()
            if row is None:
                raise StoreError(f"Story {story_id} does not exist; cannot write {column} {json_path}.")
            # json_set silently ignores out-of-range indexes and scalar parents: verify the write landed.
            # json_type is NULL when the path is absent (even for a JSON null value); objects/arrays come back as text.
            kind, stored = row
            if kind in ("object", "array"):
                stored = json.loads(stored)
            if kind is None or stored != value:
                raise StoreError(f"Could not set {column} {json_path} for story {story_id}: the path does not "
                                 "exist in the stored document (regenerate the manifest).")

    def set_shot_path(self, story_id: str, scenelet_id: str, shot_index: int, column: str, value: str | None) -> None:
        check_shot_column(column)
        # One statement (its own transaction): (story_id, scenelet_id, shot_index) is unique, so it changes one row
        # or none, and none is the error below.
        cur = self._light().execute(
            f"update shots set {column} = ?, updated_at = ? where story_id = ? and scenelet_id = ? and shot_index = ?",
            (value or None, now_iso(), story_id, scenelet_id, shot_index),
        )
        if cur.rowcount != 1:
            raise StoreError(f"Shot {scenelet_id}#{shot_index} of story {story_id} not found; cannot write {column}.")


def _row_owners(conn: sqlite3.Connection, table: str, row_ids: list[str]) -> dict[str, RowOwner]:
    if table not in ROW_TABLES:
        raise ValueError(f"{table!r} is not a row table ({', '.join(ROW_TABLES)})")
    unique = sorted(set(row_ids))
    owners: dict[str, RowOwner] = {}
    for start in range(0, len(unique), ID_BATCH):
        batch = unique[start:start + ID_BATCH]
        for row_id, story_id, display_name in conn.execute(
                f"select t.id, t.story_id, s.display_name from {table} t join stories s on s.id = t.story_id "
                f"where t.id in ({', '.join('?' for _ in batch)})", batch):
            owners[row_id] = RowOwner(story_id, display_name)
    return owners


def _new_uuid() -> str:
    import uuid

    return str(uuid.uuid4())


def _digest_rows(digest: "hashlib._Hash", conn: sqlite3.Connection, table: str, cols: list[str] | tuple[str, ...],
                 story_id: str) -> None:
    """One table's rows of the story, in id order, into the digest as stored (unparsed), then a separator."""
    key = "id" if table == "stories" else "story_id"
    for row in conn.execute(f"select {', '.join(cols)} from {table} where {key} = ? order by id", (story_id,)):
        digest.update(repr(row).encode("utf-8", "surrogatepass"))
    digest.update(b"|")
