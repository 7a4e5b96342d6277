"""The embedded store's schema version: an old file is upgraded once, a newer one is refused untouched, a current one
is only read, concurrent first opens agree, and a failing migration leaves nothing behind."""

from __future__ import annotations

import gc
import json
import logging
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from storytree_build.core.errors import ConfigError, EnvironmentFault
from storytree_build.files.sqlite_file import connect
from storytree_build.store.sqlite_records import SqliteBuildState
from storytree_build.store.sqlite_schema import CURRENT_VERSION, MIGRATIONS, Migration, ensure_schema
from storytree_build.store.sqlite_stories import SqliteStoryStore

UPGRADED = "upgraded the story database"
STORY = "5e1f0c2a-7b3d-4c8e-9a61-0d2f4b6c8e10"
SCENELET = "scenelet-1"

# The layout on main before the schema had a version (storytree_build/store/sqlite_schema.py at e30e955), verbatim:
# every user's .storytree-data/story.sqlite looks like this, with user_version 0.
TODAYS_DDL = """
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

TABLES = ["scenelets", "shots", "stories", "storytree_claims", "storytree_operations", "storytree_records",
          "storytree_reviews", "storytree_versions"]



def todays_file(path: Path) -> Path:
    """A store file as today's storytree leaves it: WAL, the old tables, user_version 0, one of every kind of row."""
    now = datetime.now(timezone.utc)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("pragma journal_mode=wal")
    conn.executescript(TODAYS_DDL)
    conn.execute("insert into stories values (?,?,?,?,?,?,?,?,?)",
                 (STORY, "The Lighthouse", "a keeper and a storm", json.dumps({"title": "The Lighthouse"}), None, None,
                  None, now.isoformat(), now.isoformat()))
    conn.execute("insert into scenelets values (?,?,?,?,?,?,?,?,?,?)",
                 (SCENELET, STORY, None, None, None, json.dumps({"description": "the storm"}), 0, 1, None,
                  now.isoformat()))
    conn.execute("insert into shots values (?,?,?,?,?,?,?,?,?,?,?,?)",
                 ("shot-1", STORY, SCENELET, SCENELET, 1, 1, json.dumps({"framing": "wide"}), "assets/k1.png", None,
                  None, now.isoformat(), now.isoformat()))
    conn.execute("insert into storytree_records values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                 (STORY, "image:k1", "assets/k1.png", "sig-1", json.dumps({"prompt": "p"}), "a" * 64, 123, 456,
                  "gemini", "imagen", "b" * 64, now.isoformat(), 1, "key_frame:scenelet-1:1", "built", "host:/p", ""))
    conn.execute("insert into storytree_operations values (?,?,?,?,?,?,?,?,?,?)",
                 (STORY, "video:v1", "sig-2", "gemini", "veo", "submitted", "operations/42", now.isoformat(), None,
                  None))
    conn.execute("insert into storytree_claims values (?,?,?,?,?)",
                 (STORY, "video:v2", "host-b:123", now.isoformat(), (now + timedelta(hours=1)).isoformat()))
    conn.execute("insert into storytree_reviews values (?,?,?,?,?,?,?)",
                 (STORY, "image:k1", "a" * 64, "rejected", "warmer light", "director", now.isoformat()))
    assert conn.execute("pragma user_version").fetchone()[0] == 0
    conn.close()
    return path


def current_file(path: Path) -> Path:
    conn = connect(path)
    ensure_schema(conn)
    conn.close()
    return path


def version_of(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("pragma user_version").fetchone()[0])
    finally:
        conn.close()


def tables_of(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("select name from sqlite_master where type = 'table' order by name")]
    finally:
        conn.close()


def upgrade_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "storytree" and UPGRADED in r.getMessage()]


def open_every_adapter(path: Path) -> None:
    for adapter in (SqliteStoryStore(path), SqliteBuildState(path)):
        adapter.close()


# -- (1) today's layout is upgraded and keeps every row --------------------------------------------------------------

def test_a_file_in_todays_layout_is_upgraded_once_and_every_row_is_still_readable(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = todays_file(tmp_path / "story.sqlite")
    caplog.set_level(logging.INFO, logger="storytree")

    stories = SqliteStoryStore(path)
    records = SqliteBuildState(path)
    reviews = records.reviews(STORY)
    try:
        assert upgrade_messages(caplog) == [f"{UPGRADED} {path} from schema 0 to {CURRENT_VERSION}"]
        assert [r.levelno for r in caplog.records if UPGRADED in r.getMessage()] == [logging.INFO]
        assert version_of(path) == CURRENT_VERSION

        snapshot = stories.load_story(STORY)
        assert snapshot.story["display_name"] == "The Lighthouse"
        assert snapshot.story["story_constitution"] == {"title": "The Lighthouse"}
        assert [s["content"] for s in snapshot.scenelets] == [{"description": "the storm"}]
        assert [(s["shot_index"], s["key_frame_image_path"]) for s in snapshot.shots] == [(1, "assets/k1.png")]

        record = records.records(STORY).get("image:k1")
        assert record is not None
        assert (record.output_sha256, record.inputs, record.published, record.identity) == (
            "a" * 64, {"prompt": "p"}, True, "key_frame:scenelet-1:1")
        operation = records.operations(STORY).get("video:v1")
        assert operation is not None and (operation.state, operation.operation) == ("submitted", "operations/42")
        assert list(records.claims(STORY).unexpired()) == ["video:v2"]  # still live: a claim is never dropped by an upgrade
        review = reviews.all()["image:k1"]
        assert (review.verdict, review.note) == ("rejected", "warmer light")
    finally:
        for adapter in (stories, records):
            adapter.close()

    open_every_adapter(path)  # opened again: nothing more to say
    assert len(upgrade_messages(caplog)) == 1


# -- (2) a newer file is refused and left as it was ------------------------------------------------------------------

@pytest.mark.parametrize("adapter", [SqliteStoryStore, SqliteBuildState])
def test_a_file_newer_than_this_storytree_is_refused_and_never_altered(tmp_path: Path,
                                                                        adapter: Callable[[Path], object]) -> None:
    path = current_file(tmp_path / "story.sqlite")
    newer = CURRENT_VERSION + 3
    conn = sqlite3.connect(path)
    conn.execute(f"pragma user_version = {newer}")
    conn.commit()
    conn.close()
    before = path.read_bytes()

    with pytest.raises(ConfigError) as refused:
        adapter(path)
    message = str(refused.value)
    assert str(path) in message
    assert f"schema {newer}" in message and f"up to {CURRENT_VERSION}" in message
    assert "Upgrade storytree" in message and "unchanged" in message

    gc.collect()  # the refused adapter's connection closes: still nothing written
    assert path.read_bytes() == before
    assert not (tmp_path / "story.sqlite-wal").exists() or (tmp_path / "story.sqlite-wal").stat().st_size == 0
    assert version_of(path) == newer


# -- (3) a new file starts at the current version, silently ----------------------------------------------------------

def test_a_new_file_is_created_at_the_current_version_without_a_message(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="storytree")
    path = tmp_path / "story.sqlite"

    open_every_adapter(path)

    assert version_of(path) == CURRENT_VERSION
    assert tables_of(path) == TABLES
    assert [r for r in caplog.records if r.name == "storytree"] == []


# -- (4) opening a current file writes nothing -----------------------------------------------------------------------

def test_opening_a_current_file_only_reads_its_version(tmp_path: Path) -> None:
    path = current_file(tmp_path / "story.sqlite")
    conn = connect(path)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    changes_before = conn.total_changes

    ensure_schema(conn)

    assert statements == ["pragma user_version"]  # no begin, no DDL: no write lock taken
    assert conn.total_changes == changes_before
    conn.close()


def test_opening_a_current_file_through_every_adapter_leaves_its_bytes_as_they_were(tmp_path: Path) -> None:
    path = current_file(tmp_path / "story.sqlite")
    before = (path.read_bytes(), path.stat().st_mtime_ns)

    for _ in range(3):
        open_every_adapter(path)

    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


# -- (5) concurrent first opens ---------------------------------------------------------------------------------------

ADAPTERS: list[Callable[[Path], SqliteStoryStore | SqliteBuildState]] = [SqliteStoryStore, SqliteBuildState]


def open_from_threads(path: Path, count: int) -> list[str]:
    failures: list[str] = []
    start = threading.Barrier(count)

    def open_one(n: int) -> None:
        try:
            start.wait()
            adapter = ADAPTERS[n % len(ADAPTERS)](path)
            adapter.close()
        except Exception as exc:  # noqa: BLE001 - collected and asserted by the caller
            failures.append(f"{path.name} thread {n}: {exc!r}")

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


@pytest.mark.parametrize("layout", ["new", "todays"])
def test_threads_opening_one_file_at_once_all_succeed_and_one_of_them_upgrades(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, layout: str) -> None:
    caplog.set_level(logging.INFO, logger="storytree")
    failures: list[str] = []
    trials = 20
    for trial in range(trials):
        path = tmp_path / f"{layout}-{trial}.sqlite"
        if layout == "todays":
            todays_file(path)
        failures += open_from_threads(path, 8)
        assert version_of(path) == CURRENT_VERSION
        assert tables_of(path) == TABLES
    assert failures == []
    assert len(upgrade_messages(caplog)) == (trials if layout == "todays" else 0)


OPENER = """
import logging, sys, threading, time
from pathlib import Path
from storytree_build.store.sqlite_records import SqliteBuildState
from storytree_build.store.sqlite_stories import SqliteStoryStore

logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
path, go = Path(sys.argv[1]), Path(sys.argv[2])
give_up = time.monotonic() + 60
while not go.exists() and time.monotonic() < give_up:  # every process starts opening at the same moment
    time.sleep(0.001)
failures = []
def open_one(n):
    try:
        (SqliteStoryStore, SqliteBuildState)[n % 2](path).close()
    except Exception as exc:
        failures.append(repr(exc))
threads = [threading.Thread(target=open_one, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("\\n".join(failures), file=sys.stderr)
sys.exit(1 if failures else 0)
"""


def test_processes_opening_todays_file_at_once_all_succeed_and_exactly_one_upgrades(tmp_path: Path) -> None:
    path = todays_file(tmp_path / "story.sqlite")
    go = tmp_path / "go"
    processes = [subprocess.Popen([sys.executable, "-c", OPENER, str(path), str(go)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
    time.sleep(0.5)  # let the interpreters import; a slow start only makes the race milder, never the test wrong
    go.touch()
    outputs = [p.communicate(timeout=120) for p in processes]

    assert [p.returncode for p in processes] == [0, 0, 0], [err for _out, err in outputs]
    upgrades = [line for out, _err in outputs for line in out.splitlines() if UPGRADED in line]
    assert upgrades == [f"{UPGRADED} {path} from schema 0 to {CURRENT_VERSION}"]
    assert version_of(path) == CURRENT_VERSION
    records = SqliteBuildState(path)
    try:
        assert list(records.records(STORY).all()) == ["image:k1"]
    finally:
        records.close()


# -- (6) a failing migration leaves the file as it was ---------------------------------------------------------------

FAILS_HALF_WAY = Migration(CURRENT_VERSION + 1, "fails after two of its statements", """
alter table storytree_records add column object_key text not null default '';
create table storytree_objects (sha256 text primary key);
insert into no_such_table values (1);
""")


def columns_of(path: Path, table: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[1] for r in conn.execute(f"pragma table_info({table})")]
    finally:
        conn.close()


def test_a_migration_that_fails_half_way_is_rolled_back_completely(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="storytree")
    path = todays_file(tmp_path / "story.sqlite")
    current_file(path)  # now at the current version, with its rows
    records_columns = columns_of(path, "storytree_records")
    conn = connect(path)

    with pytest.raises(EnvironmentFault) as failed:
        ensure_schema(conn, (*MIGRATIONS, FAILS_HALF_WAY))
    message = str(failed.value)
    assert str(path) in message and "no_such_table" in message
    assert f"from schema {CURRENT_VERSION} to {CURRENT_VERSION + 1}" in message
    assert f"still at schema {CURRENT_VERSION}" in message

    conn.close()
    assert version_of(path) == CURRENT_VERSION
    assert tables_of(path) == TABLES
    assert columns_of(path, "storytree_records") == records_columns
    assert upgrade_messages(caplog) == [f"{UPGRADED} {path} from schema 0 to {CURRENT_VERSION}"]  # only the real one
    records = SqliteBuildState(path)  # and the file still opens with the real migrations
    try:
        assert list(records.records(STORY).all()) == ["image:k1"]
    finally:
        records.close()


def test_a_failing_migration_on_a_new_file_leaves_no_table_behind(tmp_path: Path) -> None:
    path = tmp_path / "story.sqlite"
    conn = connect(path)
    with pytest.raises(EnvironmentFault):
        ensure_schema(conn, (*MIGRATIONS, FAILS_HALF_WAY))  # migration 1 ran in the same transaction: undone too
    conn.close()
    assert version_of(path) == 0
    assert tables_of(path) == []


# -- the list itself ---------------------------------------------------------------------------------------------------

def test_a_next_migration_is_one_entry_and_may_hold_triggers_and_semicolons_in_strings(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="storytree")
    path = current_file(tmp_path / "story.sqlite")
    second = Migration(CURRENT_VERSION + 1, "an example of the next migration", """
alter table storytree_records add column object_key text not null default 'none; yet';
create table storytree_objects (sha256 text primary key, seen integer not null default 0);
create trigger storytree_objects_seen after insert on storytree_records begin
  insert or ignore into storytree_objects (sha256) values (new.output_sha256);
  update storytree_objects set seen = seen + 1 where sha256 = new.output_sha256;
end;
""")
    conn = connect(path)
    ensure_schema(conn, (*MIGRATIONS, second))
    conn.close()

    assert version_of(path) == CURRENT_VERSION + 1
    assert columns_of(path, "storytree_records")[-1] == "object_key"
    assert upgrade_messages(caplog) == [f"{UPGRADED} {path} from schema {CURRENT_VERSION} to {CURRENT_VERSION + 1}"]
    with pytest.raises(ConfigError):  # and this storytree, which knows only the shipped list, now refuses the file
        SqliteBuildState(path)


def test_migrations_are_numbered_from_one_without_gaps(tmp_path: Path) -> None:
    assert [m.number for m in MIGRATIONS] == list(range(1, CURRENT_VERSION + 1))
    conn = connect(tmp_path / "story.sqlite")
    gap = Migration(CURRENT_VERSION + 2, "skips a number", "create table t (a);")
    with pytest.raises(ValueError, match="without gaps"):
        ensure_schema(conn, (*MIGRATIONS, gap))
    conn.close()
