"""The embedded SQLite story store: original table shapes, atomic JSON-path writes, shot path writes, location."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from support.project import SAMPLE_ID, story_db
from storytree_build.core.errors import InputError, StoreError
from storytree_build.settings import load_settings
from storytree_build.store import SqliteStoryStore, open_store

# facts doc §1.2 (display_name_upper is a Postgres generated column; not stored here)
STORY_COLUMNS = ["id", "display_name", "initial_prompt", "story_constitution", "visual_design_document",
                 "audio_design_document", "visual_reference_package", "created_at", "updated_at"]
SCENELET_COLUMNS = ["id", "story_id", "parent_id", "choice_label_from_parent", "choice_prompt", "content",
                    "is_branch_point", "is_terminal_node", "branch_audio_file_path", "created_at"]
SHOT_COLUMNS = ["id", "story_id", "scenelet_ref", "scenelet_id", "scenelet_sequence", "shot_index",
                "storyboard_payload", "key_frame_image_path", "audio_file_path", "video_file_path",
                "created_at", "updated_at"]
NOT_NULL = {
    "stories": {"id", "display_name", "initial_prompt", "created_at", "updated_at"},
    "scenelets": {"id", "story_id", "content", "is_branch_point", "is_terminal_node", "created_at"},
    "shots": {"id", "story_id", "scenelet_ref", "scenelet_id", "scenelet_sequence", "shot_index",
              "storyboard_payload", "created_at", "updated_at"},
}

STORY = "story-1"


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path)


def raw_column(path: Path, column: str, story_id: str = STORY) -> str | None:
    with raw(path) as conn:
        return conn.execute(f"select {column} from stories where id = ?", (story_id,)).fetchone()[0]


def add_story(store: SqliteStoryStore, story_id: str = STORY, **docs) -> None:
    store.import_rows({"stories": [{"id": story_id, "display_name": "Story", "initial_prompt": "p",
                                    "created_at": "2026-01-01T00:00:00+00:00",
                                    "updated_at": "2026-01-01T00:00:00+00:00", **docs}]})


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- schema -------------------------------------------------------------------------------------


def test_tables_and_columns_mirror_the_original(store):
    with raw(store.path) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        assert {"stories", "scenelets", "shots"} <= tables
        for table, expected in (("stories", STORY_COLUMNS), ("scenelets", SCENELET_COLUMNS), ("shots", SHOT_COLUMNS)):
            info = conn.execute(f"pragma table_info({table})").fetchall()
            assert [r[1] for r in info] == expected, table
            assert {r[1] for r in info if r[3]} | {r[1] for r in info if r[5]} == NOT_NULL[table], table
            assert [r[1] for r in info if r[5]] == ["id"], table  # primary key


def test_foreign_keys_mirror_the_original(store):
    with raw(store.path) as conn:
        fks = {(table, r[3], r[2], r[4], r[6]) for table in ("scenelets", "shots")
               for r in conn.execute(f"pragma foreign_key_list({table})")}
    assert fks == {
        ("scenelets", "story_id", "stories", "id", "CASCADE"),
        ("scenelets", "parent_id", "scenelets", "id", "CASCADE"),
        ("shots", "story_id", "stories", "id", "CASCADE"),
        ("shots", "scenelet_ref", "scenelets", "id", "CASCADE"),
    }


def test_shots_natural_key_is_unique(sample_store):
    with raw(sample_store.path) as conn:
        unique = [r[1] for r in conn.execute("pragma index_list(shots)") if r[2]]
        columns = [[c[2] for c in conn.execute(f"pragma index_info('{name}')")] for name in unique]
        assert ["story_id", "scenelet_id", "shot_index"] in columns
        row = conn.execute("select * from shots where scenelet_id='scenelet-1' and shot_index=1").fetchone()
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute(f"insert into shots values ({','.join('?' * len(row))})", ("another-id", *row[1:]))


@pytest.mark.parametrize(("sql", "message"), [
    ("update shots set shot_index = 0 where shot_index = 1", "CHECK"),
    ("update shots set scenelet_sequence = 0", "CHECK"),
    ("update stories set display_name = '   '", "CHECK"),
    ("update stories set visual_design_document = '{not json'", "CHECK"),
    ("update shots set scenelet_ref = 'no-such-scenelet'", "FOREIGN KEY"),
])
def test_constraints_enforced(sample_store, sql, message):
    conn = raw(sample_store.path)
    conn.execute("pragma foreign_keys=on")
    with pytest.raises(sqlite3.IntegrityError, match=message):
        conn.execute(sql)
    conn.close()


def test_store_uses_wal(store):
    with raw(store.path) as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"


# --- reads ----------------------------------------------------------------------------------------


def test_load_story_round_trips_rows(sample_store, sample_export):
    snap = sample_store.load_story(SAMPLE_ID)
    assert snap.story_id == SAMPLE_ID
    assert snap.story == sample_export["stories"][0]
    assert sorted(snap.scenelets, key=lambda r: r["id"]) == sorted(sample_export["scenelets"], key=lambda r: r["id"])
    assert sorted(snap.shots, key=lambda r: r["id"]) == sorted(sample_export["shots"], key=lambda r: r["id"])
    # shots ordered like getShotsByStory: scenelet_sequence, scenelet_ref, shot_index
    order = [(s["scenelet_sequence"], s["scenelet_ref"], s["shot_index"]) for s in snap.shots]
    assert order == sorted(order)
    assert all(isinstance(s["is_branch_point"], bool) for s in snap.scenelets)


def test_load_story_holds_each_repeated_string_once(sample_store):
    """The shots of a long story repeat their payload keys and ids: one copy each in memory (round-trip above)."""
    first, second = sample_store.load_story(SAMPLE_ID).shots[:2]
    key_a = next(k for k in first["storyboard_payload"] if k in second["storyboard_payload"])
    key_b = next(k for k in second["storyboard_payload"] if k == key_a)
    assert key_a is key_b
    assert first["story_id"] is second["story_id"]


def test_load_unknown_story_names_the_id(sample_store):
    with pytest.raises(InputError, match=rf"Story no-such-story does not exist.*{SAMPLE_ID}"):
        sample_store.load_story("no-such-story")


def test_data_survives_reopening(sample_store):
    path = sample_store.path
    sample_store.close()
    again = SqliteStoryStore(path)
    try:
        assert again.list_story_ids() == [SAMPLE_ID]
        assert len(again.load_story(SAMPLE_ID).shots) == 12
    finally:
        again.close()


# --- set_document_path ----------------------------------------------------------------------------


def test_set_document_path_on_array_index(sample_store):
    path = ["character_designs", 1, "character_model_sheet_image_path"]
    value = f"{SAMPLE_ID}/visuals/characters/captain-clank/character-model-sheet.png"
    sample_store.set_document_path(SAMPLE_ID, "visual_design_document", path, value)
    vdd = sample_store.load_story(SAMPLE_ID).story["visual_design_document"]
    assert vdd["character_designs"][1]["character_model_sheet_image_path"] == value
    assert "character_model_sheet_image_path" not in vdd["character_designs"][0]


def test_set_document_path_creates_missing_parents_and_null_documents(store):
    add_story(store)
    store.set_document_path(STORY, "visual_reference_package", ["a", "b-c", "d"], "v.png")
    assert json.loads(raw_column(store.path, "visual_reference_package")) == {"a": {"b-c": {"d": "v.png"}}}


@pytest.mark.parametrize("value", [{"image_path": "x.png", "n": [1, 2]}, ["a", "b"], 7, 2.5, True, False, "é"])
def test_set_document_path_accepts_any_json_value(store, value):
    add_story(store, visual_reference_package={"k": {"old": 1}})
    store.set_document_path(STORY, "visual_reference_package", ["k", "new"], value)
    doc = json.loads(raw_column(store.path, "visual_reference_package"))
    assert doc == {"k": {"old": 1, "new": value}}
    assert type(doc["k"]["new"]) is type(value)


def test_set_document_path_to_null_on_existing_key(store):
    add_story(store, visual_reference_package={"k": "v", "other": 1})
    store.set_document_path(STORY, "visual_reference_package", ["k"], None)
    assert raw_column(store.path, "visual_reference_package") == '{"k":null,"other":1}'


@pytest.mark.parametrize(("path", "value"), [
    (["character_designs", 99, "character_model_sheet_image_path"], "x.png"),  # index out of range
    (["character_designs", 99, "character_model_sheet_image_path"], None),
    (["character_designs", "0", "character_model_sheet_image_path"], "x.png"),  # object key on an array
    (["global_aesthetic", "visual_style", "name", "deeper"], "x"),  # scalar parent
])
def test_set_document_path_verifies_the_write(sample_store, path, value):
    before = raw_column(sample_store.path, "visual_design_document", SAMPLE_ID)
    with pytest.raises(StoreError, match="visual_design_document"):
        sample_store.set_document_path(SAMPLE_ID, "visual_design_document", path, value)
    assert raw_column(sample_store.path, "visual_design_document", SAMPLE_ID) == before


def test_set_document_path_unknown_story(sample_store):
    with pytest.raises(StoreError, match="Story no-such-story does not exist"):
        sample_store.set_document_path("no-such-story", "visual_design_document", ["x"], "y")


def test_set_document_path_rejects_non_document_columns_and_quoted_keys(sample_store):
    with pytest.raises(ValueError, match="not a story document column"):
        sample_store.set_document_path(SAMPLE_ID, "display_name", ["x"], "y")
    with pytest.raises(ValueError, match="double quote"):
        sample_store.set_document_path(SAMPLE_ID, "visual_design_document", ['a"b'], "y")


def test_set_document_path_keeps_other_bytes(store):
    # A document written by another tool: number spellings, escapes and key order must all survive.
    add_story(store)
    original = ('{"zeta":{"n":2.50,"e":1E3,"s":"x\\n\\"q\\u00e9é","u":[1,null,true]},'
                '"character_designs":[{"character_id":"rhea","x_unknown":{"deep":[0.10]}},{"character_id":"finn"}],'
                '"alpha":"last"}')
    with raw(store.path) as conn:
        conn.execute("update stories set visual_design_document = ? where id = ?", (original, STORY))
    store.set_document_path(STORY, "visual_design_document", ["character_designs", 1, "character_model_sheet_image_path"], "p.png")
    expected = original.replace('{"character_id":"finn"}', '{"character_id":"finn","character_model_sheet_image_path":"p.png"}')
    assert raw_column(store.path, "visual_design_document") == expected
    store.set_document_path(STORY, "visual_design_document", ["character_designs", 1, "character_model_sheet_image_path"], "q.png")
    assert raw_column(store.path, "visual_design_document") == expected.replace("p.png", "q.png")


def test_set_document_path_keeps_sample_document_byte_for_byte(sample_store, sample_export):
    before = raw_column(sample_store.path, "visual_reference_package", SAMPLE_ID)
    assert before == dumps(sample_export["stories"][0]["visual_reference_package"])
    sample_store.set_document_path(SAMPLE_ID, "visual_reference_package",
                                   ["character_model_sheets", 0, "reference_plates", 0, "image_path"], "w/sheet-1.png")
    doc = sample_export["stories"][0]["visual_reference_package"]
    doc["character_model_sheets"][0]["reference_plates"][0]["image_path"] = "w/sheet-1.png"
    assert raw_column(sample_store.path, "visual_reference_package", SAMPLE_ID) == dumps(doc)
    # the other documents of the row are untouched
    assert raw_column(sample_store.path, "visual_design_document", SAMPLE_ID) == dumps(
        sample_export["stories"][0]["visual_design_document"])


def test_set_document_path_bumps_updated_at(sample_store, sample_export):
    sample_store.set_document_path(SAMPLE_ID, "story_constitution", ["targetSceneletsPerPath"], 5)
    story = sample_store.load_story(SAMPLE_ID).story
    assert story["updated_at"] != sample_export["stories"][0]["updated_at"]
    assert story["created_at"] == sample_export["stories"][0]["created_at"]


THREADS = 8
WRITES = 100


def test_concurrent_threads_lose_no_write(store):
    add_story(store, visual_reference_package={"keep": {"me": [1, 2, 3]}})
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for i in range(WRITES):
                store.set_document_path(STORY, "visual_reference_package", ["images", f"t{t}_{i}"], f"{t}/{i}.png")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            store.close()  # this thread's connection

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    doc = json.loads(raw_column(store.path, "visual_reference_package"))
    assert len(doc["images"]) == THREADS * WRITES
    assert doc["images"] == {f"t{t}_{i}": f"{t}/{i}.png" for t in range(THREADS) for i in range(WRITES)}
    assert doc["keep"] == {"me": [1, 2, 3]}


def _process_writer(db: str, t: int, barrier) -> None:
    store = SqliteStoryStore(Path(db))
    barrier.wait()
    for i in range(WRITES):
        store.set_document_path(STORY, "visual_reference_package", ["images", f"p{t}_{i}"], i)
    store.close()


def test_concurrent_processes_lose_no_write(store):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs the fork start method (spawn re-imports everything in 8 interpreters: too slow)")
    add_story(store)
    store.close()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(THREADS)
    procs = [ctx.Process(target=_process_writer, args=(str(store.path), t, barrier)) for t in range(THREADS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * THREADS
    doc = json.loads(raw_column(store.path, "visual_reference_package"))
    assert doc["images"] == {f"p{t}_{i}": i for t in range(THREADS) for i in range(WRITES)}


# --- set_shot_path --------------------------------------------------------------------------------


def shot_row(path: Path, scenelet_id: str, index: int) -> dict:
    conn = raw(path)
    conn.row_factory = sqlite3.Row
    row = conn.execute("select * from shots where scenelet_id=? and shot_index=?", (scenelet_id, index)).fetchone()
    conn.close()
    return dict(row)


def test_set_shot_path_sets_one_column_of_one_shot(sample_store):
    before_other = shot_row(sample_store.path, "scenelet-2", 2)
    before = shot_row(sample_store.path, "scenelet-2", 1)
    sample_store.set_shot_path(SAMPLE_ID, "scenelet-2", 1, "key_frame_image_path", "sid/shots/scenelet-2/shot-1.png")
    sample_store.set_shot_path(SAMPLE_ID, "scenelet-2", 1, "video_file_path", "sid/shots/scenelet-2/shot-1.mp4")
    sample_store.set_shot_path(SAMPLE_ID, "scenelet-2", 1, "audio_file_path", "N/A")
    after = shot_row(sample_store.path, "scenelet-2", 1)
    assert after["key_frame_image_path"] == "sid/shots/scenelet-2/shot-1.png"
    assert after["video_file_path"] == "sid/shots/scenelet-2/shot-1.mp4"
    assert after["audio_file_path"] == "N/A"
    unchanged = {k for k in before if k not in ("key_frame_image_path", "video_file_path", "audio_file_path", "updated_at")}
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert shot_row(sample_store.path, "scenelet-2", 2) == before_other


def test_set_shot_path_empty_string_is_null(sample_store):
    sample_store.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "key_frame_image_path", "a.png")
    sample_store.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "key_frame_image_path", "")
    assert shot_row(sample_store.path, "scenelet-1", 1)["key_frame_image_path"] is None


@pytest.mark.parametrize(("story_id", "scenelet_id", "index"), [
    (SAMPLE_ID, "scenelet-1", 9), (SAMPLE_ID, "scenelet-9", 1), ("other-story", "scenelet-1", 1)])
def test_set_shot_path_unknown_shot(sample_store, story_id, scenelet_id, index):
    with pytest.raises(StoreError, match=rf"{scenelet_id}#{index} of story {story_id} not found"):
        sample_store.set_shot_path(story_id, scenelet_id, index, "key_frame_image_path", "a.png")


def test_set_shot_path_rejects_other_columns(sample_store):
    with pytest.raises(ValueError, match="not a shot path column"):
        sample_store.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "scenelet_id", "x")


# --- import_rows ------------------------------------------------------------------------------------


def test_import_rows_natural_key_wins_over_row_id(sample_store, sample_export):
    shot = dict(sample_export["shots"][0], id="replacement-id")
    shot["storyboard_payload"] = dict(shot["storyboard_payload"], cameraDynamics="Handheld.")
    sample_store.import_rows({"shots": [shot]})
    with raw(sample_store.path) as conn:
        rows = conn.execute("select id, storyboard_payload from shots where scenelet_id='scenelet-1' and shot_index=1").fetchall()
        assert conn.execute("select count(*) from shots").fetchone()[0] == 12
    assert [r[0] for r in rows] == ["replacement-id"]
    assert json.loads(rows[0][1])["cameraDynamics"] == "Handheld."


def test_import_rows_is_all_or_nothing(store):
    good = {"id": "s-ok", "display_name": "ok", "initial_prompt": "p"}
    bad = {"id": "s-bad", "display_name": "  ", "initial_prompt": "p"}  # violates the CHECK constraint
    with pytest.raises(sqlite3.IntegrityError):
        store.import_rows({"stories": [good, bad]})
    assert store.list_story_ids() == []


# --- location -------------------------------------------------------------------------------------


def test_storytree_db_env_selects_the_database(tmp_path):
    target = tmp_path / "elsewhere" / "my-stories.sqlite"
    settings = load_settings(root=tmp_path / "proj", env={"STORYTREE_DB": str(target)})
    assert settings.db_path == target
    store = open_store(settings)
    add_story(store)
    store.close()
    assert target.exists()
    assert not (tmp_path / "proj" / ".storytree").exists()
    with raw(target) as conn:
        assert conn.execute("select id from stories").fetchall() == [(STORY,)]


def test_default_database_lives_in_the_data_folder_not_with_the_caches(tmp_path):
    settings = load_settings(root=tmp_path, env={})
    assert settings.db_path == story_db(tmp_path)
    store = open_store(settings)
    add_story(store)
    store.close()
    assert (story_db(tmp_path)).is_file()
