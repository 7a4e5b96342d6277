"""The tables of the embedded SQLite store, in one place, versioned: the story tables (the original Supabase schema,
jsonb as JSON text) and the build's own tables (records, operations, claims, reviews) in the same file.

The file's `PRAGMA user_version` is the number of the last migration applied to it. `ensure_schema` runs on open:
at the current version it only reads that number (no write, no lock); behind it, it applies the missing migrations
and the new number in one `BEGIN IMMEDIATE` transaction, re-reading the number once it holds the lock (threads and
processes open the same file at once: whoever comes second finds the work done); ahead of it (a newer storytree wrote
the file) it refuses and changes nothing. Version 0 with tables is the layout from before versioning; migration 1 is
that layout, all `create ... if not exists`, so such a file is adopted as it is.

To add a migration, append one entry to MIGRATIONS with the next number, e.g.

    Migration(2, "records remember their object-store key",
              "alter table storytree_records add column object_key text not null default '';"),

and never edit one that has shipped: files out there are already past it. Statements run one by one inside the
transaction (not `executescript`, which commits first). SQLite cannot switch `foreign_keys` inside a transaction, so
a migration that rebuilds a table uses `pragma defer_foreign_keys = on` and SQLite's 12-step procedure.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..core.errors import ConfigError, EnvironmentFault
from ..files.sqlite_file import immediate

log = logging.getLogger("storytree")


@dataclass(frozen=True)
class Migration:
    number: int  # the file's user_version once this has run: 1, 2, 3 ... with no gaps
    description: str
    sql: str  # one or more statements separated by `;`


_LAYOUT_1_STORY_TABLES = """
create table if not exists stories (
  id text primary key,
  display_name text not null check (length(trim(display_name)) > 0),
  initial_prompt text not null,
  story_constitution text check (story_constitution is null or json_valid(story_constitution)),
  visual_design_document text check (visual_design_document is null or json_valid(visual_design_document)),
  audio_design_document text check (audio_design_document is null or json_valid(audio_design_document)),
  visual_reference_package text check (visual_reference_package is null or json_valid(visual_reference_package)),
  created_at text not null,
  updated_at text not null
);
create table if not exists scenelets (
  id text primary key,
  story_id text not null references stories(id) on delete cascade,
  parent_id text references scenelets(id) on delete cascade,
  choice_label_from_parent text,
  choice_prompt text,
  content text not null check (json_valid(content)),
  is_branch_point integer not null default 0,
  is_terminal_node integer not null default 0,
  branch_audio_file_path text,
  created_at text not null
);
create index if not exists scenelets_story_id_idx on scenelets(story_id);
create table if not exists shots (
  id text primary key,
  story_id text not null references stories(id) on delete cascade,
  scenelet_ref text not null references scenelets(id) on delete cascade,
  scenelet_id text not null,
  scenelet_sequence integer not null check (scenelet_sequence > 0),
  shot_index integer not null check (shot_index > 0),
  storyboard_payload text not null check (json_valid(storyboard_payload)),
  key_frame_image_path text,
  audio_file_path text,
  video_file_path text,
  created_at text not null,
  updated_at text not null,
  unique (story_id, scenelet_id, shot_index)
);
create index if not exists shots_story_scenelet_idx on shots(story_id, scenelet_id, shot_index);
"""

_LAYOUT_1_BUILD_TABLES = """
create table if not exists storytree_records (
  story_id text not null, task text not null, output text not null, signature text not null, inputs text not null,
  output_sha256 text not null, output_size integer not null, output_mtime_ns integer not null,
  provider text not null, model text not null, prompt_sha256 text not null, built_at text not null,
  published integer not null default 0, identity text not null default '', origin text not null default 'built',
  built_by text not null default '', detail text not null default '',
  primary key (story_id, task)
);
create table if not exists storytree_operations (
  story_id text not null, task text not null, signature text not null, provider text not null, model text not null,
  state text not null, operation text, submitted_at text not null, download_uri text, error text,
  primary key (story_id, task)
);
create table if not exists storytree_claims (
  story_id text not null, task text not null, owner text not null, claimed_at text not null,
  expires_at text not null,
  primary key (story_id, task)
);
create table if not exists storytree_reviews (
  story_id text not null, task text not null, output_sha256 text not null, verdict text not null,
  note text not null default '', reviewed_by text not null default '', reviewed_at text not null,
  primary key (story_id, task)
);
"""


_OBJECTS = """
alter table storytree_records add column cost real;
alter table storytree_records add column pushed_to text not null default '';
alter table storytree_records add column version integer not null default 1;
create table if not exists storytree_versions (
  story_id text not null, task text not null, version integer not null, output_sha256 text not null,
  record text not null, verdict text not null default '', replaced_at text not null,
  primary key (story_id, task, version)
);
create index if not exists storytree_versions_sha on storytree_versions(output_sha256);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the layout from before versioning: story tables and the build's records, operations, claims and "
                 "reviews", _LAYOUT_1_STORY_TABLES + _LAYOUT_1_BUILD_TABLES),
    Migration(2, "every paid result kept: what a record's file cost, which remote holds it, its version; the files "
                 "targets had before", _OBJECTS),
)
CURRENT_VERSION = MIGRATIONS[-1].number


def ensure_schema(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> None:
    """Bring the file behind `conn` (autocommit, as `sqlite_file.connect` opens it) to the newest migration, or
    refuse a file newer than these migrations. Cheap when the file is current: one read of `user_version`."""
    newest = _check_numbering(migrations)
    found = _version(conn)
    if found == newest:
        return
    _refuse_if_newer(conn, found, newest)
    path = _file_name(conn)
    try:
        with immediate(conn):
            found = _version(conn)  # again, holding the write lock: another thread or process may have done it
            if found == newest:
                return
            _refuse_if_newer(conn, found, newest)
            adopted = found == 0 and _has_tables(conn)
            for migration in migrations[found:]:
                for statement in _statements(migration.sql):
                    conn.execute(statement)
            conn.execute(f"pragma user_version = {newest}")
    except sqlite3.Error as exc:
        raise EnvironmentFault(
            f"the story database {path} could not be upgraded from schema {found} to {newest} ({exc}); nothing was "
            f"changed, it is still at schema {found}. Free space or make the folder writable and run again.") from None
    if found > 0 or adopted:  # a brand-new file is created silently
        log.info("upgraded the story database %s from schema %d to %d", path, found, newest)


def _check_numbering(migrations: Sequence[Migration]) -> int:
    numbers = [m.number for m in migrations]
    if numbers != list(range(1, len(numbers) + 1)):  # a gap or a repeat would skip or re-run a migration
        raise ValueError(f"SQLite migrations must be numbered 1, 2, 3 ... without gaps; found {numbers}")
    return len(numbers)


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("pragma user_version").fetchone()[0])


def _refuse_if_newer(conn: sqlite3.Connection, found: int, newest: int) -> None:
    if found > newest:
        raise ConfigError(
            f"the story database {_file_name(conn)} is at schema {found}, and this storytree knows schemas up to "
            f"{newest}: a newer storytree wrote it. Upgrade storytree-build to that version or later and run again; the "
            "file was left unchanged.")


def _has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("select 1 from sqlite_master where type = 'table' limit 1").fetchone() is not None


def _file_name(conn: sqlite3.Connection) -> str:
    for _seq, name, file in conn.execute("pragma database_list"):
        if name == "main":
            return file or ":memory:"
    return "?"


def _statements(sql: str) -> Iterator[str]:
    """Split a script at the `;` that end statements (sqlite3.complete_statement knows quotes and triggers)."""
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                yield pending.strip()
            pending = ""
    if pending.strip(" \t\n;"):
        raise ValueError(f"SQLite migration ends inside a statement: {pending.strip()[:80]!r}")
