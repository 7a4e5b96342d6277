"""One contract for every StoryStore: the embedded SQLite store and the Supabase store over a real PostgREST.

The Supabase half runs against a throwaway Postgres + PostgREST (tests/pg_services.py); without them it is
skipped loudly, and with REQUIRE_SUPABASE_TESTS=1 it fails.
"""

from __future__ import annotations

import copy
import threading

import pytest

from support.project import SAMPLE_ID
from storytree_build.core.errors import InputError, StoreError
from storytree_build.data.transfer import validate_export

NULL_DOCS_ID = "0b7d5c1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e"
MISSING_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(params=["sqlite", "supabase"])
def any_store(request):
    return request.getfixturevalue("store" if request.param == "sqlite" else "supabase_store")


def import_export(store, export: dict) -> dict:
    clean = validate_export(copy.deepcopy(export), store, "test")
    store.import_rows(clean)
    return clean


@pytest.fixture
def loaded(any_store, sample_export):
    """The sample story plus a story whose four documents are NULL."""
    import_export(any_store, sample_export)
    import_export(any_store, {"stories": [{
        "id": NULL_DOCS_ID, "display_name": "Empty docs", "initial_prompt": "nothing yet",
        "created_at": "2026-11-02T09:00:00+00:00", "updated_at": "2026-11-02T09:00:00+00:00",
    }], "scenelets": [], "shots": []})
    return any_store


def by_id(rows):
    return sorted(rows, key=lambda r: r["id"])


# -- reads -----------------------------------------------------------------------------------------
def test_import_then_load_round_trips_the_sample(any_store, sample_export):
    clean = import_export(any_store, sample_export)
    snapshot = any_store.load_story(SAMPLE_ID)

    assert any_store.list_story_ids() == [SAMPLE_ID]
    assert snapshot.story == clean["stories"][0]
    assert by_id(snapshot.scenelets) == by_id(clean["scenelets"])
    assert by_id(snapshot.shots) == by_id(clean["shots"])
    assert [s["created_at"] for s in snapshot.scenelets] == sorted(s["created_at"] for s in snapshot.scenelets)
    assert [(s["scenelet_sequence"], s["shot_index"]) for s in snapshot.shots] == sorted(
        (s["scenelet_sequence"], s["shot_index"]) for s in snapshot.shots)
    assert all(isinstance(s["created_at"], str) for s in snapshot.shots)
    assert snapshot.to_export()["stories"][0]["id"] == SAMPLE_ID


def test_reimport_is_an_upsert_and_shots_follow_their_natural_key(any_store, sample_export):
    import_export(any_store, sample_export)
    again = copy.deepcopy(sample_export)
    first = again["shots"][0]
    old_id = first["id"]
    first["id"] = "9d9d9d9d-0000-4000-8000-000000000001"  # same (story, scenelet, shot_index), new row id
    first["key_frame_image_path"] = "replaced.png"
    again["shots"][1]["id"] = None  # no id: keeps the stored row's id
    kept_id = sample_export["shots"][1]["id"]
    import_export(any_store, again)

    shots = any_store.load_story(SAMPLE_ID).shots
    ids = {s["id"] for s in shots}
    assert len(shots) == len(sample_export["shots"])
    assert old_id not in ids and first["id"] in ids and kept_id in ids
    assert next(s for s in shots if s["id"] == first["id"])["key_frame_image_path"] == "replaced.png"
    assert any_store.list_story_ids() == [SAMPLE_ID]


def test_timestamps_round_trip_in_python_isoformat(any_store):
    stamp = "2026-11-02T09:00:00.120000+00:00"  # Postgres alone would answer "…:00.12+00:00"
    import_export(any_store, {"stories": [{"id": NULL_DOCS_ID, "display_name": "T", "initial_prompt": "p",
                                           "created_at": stamp, "updated_at": stamp}], "scenelets": [], "shots": []})
    story = any_store.load_story(NULL_DOCS_ID).story
    assert (story["created_at"], story["updated_at"]) == (stamp, stamp)


def test_list_story_ids_orders_by_creation(loaded):
    assert loaded.list_story_ids() == [SAMPLE_ID, NULL_DOCS_ID]


def test_unknown_story_is_an_error_naming_the_id(loaded):
    with pytest.raises(InputError, match=MISSING_ID):
        loaded.load_story(MISSING_ID)
    with pytest.raises(InputError, match="not-a-uuid"):
        loaded.load_story("not-a-uuid")
    with pytest.raises(StoreError, match=MISSING_ID):
        loaded.set_document_path(MISSING_ID, "visual_design_document", ["a"], "x")
    with pytest.raises(StoreError, match=MISSING_ID):
        loaded.set_shot_path(MISSING_ID, "scenelet-1", 1, "key_frame_image_path", "x.png")


# -- document paths --------------------------------------------------------------------------------
def test_set_document_path_on_existing_nested_path(loaded):
    before = loaded.load_story(SAMPLE_ID).story
    path = ["character_designs", 0, "character_model_sheet_image_path"]
    loaded.set_document_path(SAMPLE_ID, "visual_design_document", path, "s/visuals/characters/a/sheet.png")

    after = loaded.load_story(SAMPLE_ID).story
    vdd = after["visual_design_document"]
    assert vdd["character_designs"][0]["character_model_sheet_image_path"] == "s/visuals/characters/a/sheet.png"
    expected = copy.deepcopy(before["visual_design_document"])
    expected["character_designs"][0]["character_model_sheet_image_path"] = "s/visuals/characters/a/sheet.png"
    assert vdd == expected
    for column in ("story_constitution", "audio_design_document", "visual_reference_package"):
        assert after[column] == before[column]
    assert after["updated_at"] != before["updated_at"]


def test_set_document_path_creates_missing_parents(loaded):
    loaded.set_document_path(SAMPLE_ID, "visual_reference_package", ["extras", "deep", "leaf"], {"a": [1, 2]})
    loaded.set_document_path(SAMPLE_ID, "visual_reference_package", ["extras", "deep", "other"], None)
    vrp = loaded.load_story(SAMPLE_ID).story["visual_reference_package"]
    assert vrp["extras"] == {"deep": {"leaf": {"a": [1, 2]}, "other": None}}
    assert vrp["character_model_sheets"]  # the rest is untouched


def test_set_document_path_on_a_null_document(loaded):
    assert loaded.load_story(NULL_DOCS_ID).story["audio_design_document"] is None
    loaded.set_document_path(NULL_DOCS_ID, "audio_design_document", ["characters", "hero", "image_path"], "img/h.png")
    loaded.set_document_path(NULL_DOCS_ID, "story_constitution", ["targetSceneletsPerPath"], 12)
    story = loaded.load_story(NULL_DOCS_ID).story
    assert story["audio_design_document"] == {"characters": {"hero": {"image_path": "img/h.png"}}}
    assert story["story_constitution"] == {"targetSceneletsPerPath": 12}
    assert story["visual_design_document"] is None


@pytest.mark.parametrize("path", [
    ["character_designs", 99, "character_model_sheet_image_path"],
    ["character_designs", 99],
    ["global_aesthetic", "visual_style", "name", "below_a_string"],
])
def test_set_document_path_refuses_paths_that_do_not_exist(loaded, path):
    before = loaded.load_story(SAMPLE_ID).story["visual_design_document"]
    with pytest.raises(StoreError, match="visual_design_document"):
        loaded.set_document_path(SAMPLE_ID, "visual_design_document", path, "x.png")
    assert loaded.load_story(SAMPLE_ID).story["visual_design_document"] == before


def test_set_document_path_refuses_unknown_columns(loaded):
    with pytest.raises(ValueError, match="not a story document column"):
        loaded.set_document_path(SAMPLE_ID, "display_name", ["x"], "y")


def test_parallel_writers_lose_nothing(loaded):
    """8 threads x 100 distinct paths into ONE story document: a read-modify-write store loses hundreds."""
    threads, per_thread = 8, 100
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def writer(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                loaded.set_document_path(SAMPLE_ID, "visual_design_document", ["race", f"t{t}_{i}"], f"{t}/{i}.png")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    before = loaded.load_story(SAMPLE_ID).story["visual_design_document"]
    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    assert errors == []
    vdd = loaded.load_story(SAMPLE_ID).story["visual_design_document"]
    race = vdd.pop("race")
    lost = threads * per_thread - len(race)
    assert lost == 0
    assert race == {f"t{t}_{i}": f"{t}/{i}.png" for t in range(threads) for i in range(per_thread)}
    assert vdd == before


# -- shot paths ------------------------------------------------------------------------------------
def test_set_shot_path_writes_one_column_of_one_shot(loaded):
    before = {(s["scenelet_id"], s["shot_index"]): s for s in loaded.load_story(SAMPLE_ID).shots}
    loaded.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "key_frame_image_path", "s/shots/scenelet-1/shot-1.png")
    loaded.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "video_file_path", "s/shots/scenelet-1/shot-1.mp4")

    after = {(s["scenelet_id"], s["shot_index"]): s for s in loaded.load_story(SAMPLE_ID).shots}
    shot = after[("scenelet-1", 1)]
    assert shot["key_frame_image_path"] == "s/shots/scenelet-1/shot-1.png"
    assert shot["video_file_path"] == "s/shots/scenelet-1/shot-1.mp4"
    assert shot["storyboard_payload"] == before[("scenelet-1", 1)]["storyboard_payload"]
    assert shot["updated_at"] != before[("scenelet-1", 1)]["updated_at"]
    assert {k: v for k, v in after.items() if k != ("scenelet-1", 1)} == {
        k: v for k, v in before.items() if k != ("scenelet-1", 1)}

    loaded.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "key_frame_image_path", "")  # empty string is stored as NULL
    shot = next(s for s in loaded.load_story(SAMPLE_ID).shots if (s["scenelet_id"], s["shot_index"]) == ("scenelet-1", 1))
    assert shot["key_frame_image_path"] is None


def test_set_shot_path_on_a_missing_shot_is_an_error(loaded):
    with pytest.raises(StoreError, match="scenelet-1#99"):
        loaded.set_shot_path(SAMPLE_ID, "scenelet-1", 99, "key_frame_image_path", "x.png")
    with pytest.raises(StoreError, match="scenelet-77#1"):
        loaded.set_shot_path(SAMPLE_ID, "scenelet-77", 1, "audio_file_path", "x.wav")
    with pytest.raises(ValueError, match="not a shot path column"):
        loaded.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "storyboard_payload", "x")


# -- import keeps built assets -----------------------------------------------------------------------
SHOT_KEY = ("scenelet-2", 1)
PLATE_PATH = ["character_model_sheets", 0, "reference_plates", 0, "image_path"]
SHEET_PATH = ["character_designs", 0, "character_model_sheet_image_path"]


def write_paths(store, n: int = 0) -> None:
    """What a build writes back: a shot column and paths inside two documents."""
    store.set_shot_path(SAMPLE_ID, *SHOT_KEY, "key_frame_image_path", f"{SAMPLE_ID}/shots/scenelet-2/shot-1_key_frame.png")
    store.set_shot_path(SAMPLE_ID, *SHOT_KEY, "video_file_path", f"{SAMPLE_ID}/shots/scenelet-2/shot-1.mp4")
    store.set_document_path(SAMPLE_ID, "visual_reference_package", PLATE_PATH, "plate.png")
    store.set_document_path(SAMPLE_ID, "visual_design_document", SHEET_PATH, "sheet.png")


def stored_paths(store) -> tuple:
    snapshot = store.load_story(SAMPLE_ID)
    shot = next(s for s in snapshot.shots if (s["scenelet_id"], s["shot_index"]) == SHOT_KEY)
    vrp, vdd = snapshot.story["visual_reference_package"], snapshot.story["visual_design_document"]
    return (shot["key_frame_image_path"], shot["video_file_path"],
            vrp["character_model_sheets"][0]["reference_plates"][0].get("image_path"),
            vdd["character_designs"][0].get("character_model_sheet_image_path"))


def test_reimporting_the_export_keeps_every_path_a_build_wrote(any_store, sample_export):
    import_export(any_store, sample_export)
    write_paths(any_store)
    written = stored_paths(any_store)
    assert all(written)
    import_export(any_store, sample_export)  # the original export: no paths at all
    assert stored_paths(any_store) == written
    # An export that brings its own paths still sets them.
    changed = copy.deepcopy(sample_export)
    shot = next(s for s in changed["shots"] if (s["scenelet_id"], s["shot_index"]) == SHOT_KEY)
    shot["key_frame_image_path"] = "elsewhere.png"
    changed["stories"][0]["visual_reference_package"]["character_model_sheets"][0]["reference_plates"][0][
        "image_path"] = "other-plate.png"
    import_export(any_store, changed)
    assert stored_paths(any_store) == ("elsewhere.png", written[1], "other-plate.png", written[3])


def test_an_import_during_a_build_loses_no_path(any_store, sample_export):
    import_export(any_store, sample_export)
    clean = validate_export(copy.deepcopy(sample_export), any_store, "test")
    locations = [(s["scenelet_id"], s["shot_index"]) for s in sample_export["shots"]]
    stop = threading.Event()
    errors: list[BaseException] = []

    def importer() -> None:
        while not stop.is_set():
            try:
                any_store.import_rows(copy.deepcopy(clean))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    thread = threading.Thread(target=importer)
    thread.start()
    try:
        for scenelet_id, index in locations:
            any_store.set_shot_path(SAMPLE_ID, scenelet_id, index, "key_frame_image_path", f"{scenelet_id}-{index}.png")
            for plate in range(2):
                any_store.set_document_path(SAMPLE_ID, "visual_reference_package",
                                            ["character_model_sheets", plate, "reference_plates", 0, "image_path"],
                                            f"plate-{plate}.png")
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    snapshot = any_store.load_story(SAMPLE_ID)
    assert {(s["scenelet_id"], s["shot_index"]): s["key_frame_image_path"] for s in snapshot.shots} == {
        (sc, i): f"{sc}-{i}.png" for sc, i in locations}
    plates = snapshot.story["visual_reference_package"]["character_model_sheets"]
    assert [plates[n]["reference_plates"][0]["image_path"] for n in range(2)] == ["plate-0.png", "plate-1.png"]


def test_the_fingerprint_changes_with_any_row_and_only_then(any_store, sample_export):
    import_export(any_store, sample_export)
    first = any_store.fingerprint(SAMPLE_ID)
    assert first and any_store.fingerprint(SAMPLE_ID) == first
    scenelet = any_store.load_story(SAMPLE_ID).scenelets[0]
    any_store.import_rows({"stories": [], "shots": [],
                           "scenelets": [{**scenelet, "choice_prompt": "Which way, Wren?"}]})
    second = any_store.fingerprint(SAMPLE_ID)
    assert second != first
    any_store.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "audio_file_path", "x/audio.wav")
    assert any_store.fingerprint(SAMPLE_ID) not in (first, second)


def test_the_manifest_fingerprint_ignores_what_a_build_writes_back_and_nothing_else(any_store, sample_export):
    import_export(any_store, sample_export)
    first = any_store.manifest_fingerprint(SAMPLE_ID)
    assert first and any_store.manifest_fingerprint(SAMPLE_ID) == first
    story = any_store.fingerprint(SAMPLE_ID)
    # Every kind of write-back a build does (core/manifest/build.py: the targets' `db`).
    any_store.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "key_frame_image_path", "x/shot-1_key_frame.png")
    any_store.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "video_file_path", "x/shot-1.mp4")
    any_store.set_document_path(SAMPLE_ID, "visual_reference_package",
                                ["character_model_sheets", 0, "reference_plates", 0, "image_path"], "x/sheet.png")
    any_store.set_document_path(SAMPLE_ID, "visual_design_document",
                                ["character_designs", 0, "character_model_sheet_image_path"], "x/sheet.png")
    any_store.set_document_path(SAMPLE_ID, "visual_design_document",
                                ["environment_designs", 0, "environment_reference_image_path"], "x/keyframe_1.png")
    assert any_store.fingerprint(SAMPLE_ID) != story  # the story did change
    assert any_store.manifest_fingerprint(SAMPLE_ID) == first  # what a manifest is made from did not
    edits = [
        lambda: any_store.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "audio_file_path", "x/audio.wav"),
        lambda: any_store.set_document_path(SAMPLE_ID, "visual_design_document",
                                            ["character_designs", 0, "character_name"], "Wren the Bold"),
        lambda: any_store.set_document_path(SAMPLE_ID, "visual_reference_package",
                                            ["character_model_sheets", 0, "reference_plates", 0,
                                             "image_generation_prompt"], "A new plate prompt"),
    ]
    seen = {first}
    for edit in edits:
        edit()
        now = any_store.manifest_fingerprint(SAMPLE_ID)
        assert now not in seen
        seen.add(now)
    shot = any_store.load_story(SAMPLE_ID).shots[0]
    payload = {**shot["storyboard_payload"], "cameraDynamics": "A slow push in."}
    any_store.import_rows({"stories": [], "scenelets": [], "shots": [{**shot, "storyboard_payload": payload}]})
    assert any_store.manifest_fingerprint(SAMPLE_ID) not in seen
    assert any_store.manifest_fingerprint(MISSING_ID) != first


# -- an import never moves another story's rows -------------------------------------------------------
COPY_ID = "6f2a1d3b-8c4e-4d5f-9a70-1e3f5a7c9e21"


def same_ids_copy(export: dict) -> dict:
    """The story under a new story id whose scenelet and shot rows keep the original's row ids."""
    copy_ = copy.deepcopy(export)
    copy_["stories"][0].update(id=COPY_ID, display_name="Wren, the copy")
    for table in ("scenelets", "shots"):
        for row in copy_[table]:
            row["story_id"] = COPY_ID
    return copy_


def exported(store, story_id: str = SAMPLE_ID) -> str:
    import json

    return json.dumps(store.load_story(story_id).to_export(), sort_keys=True)


def test_validation_refuses_rows_that_belong_to_another_story(any_store, sample_export):
    import_export(any_store, sample_export)
    write_paths(any_store)
    before = exported(any_store)
    with pytest.raises(InputError) as refused:
        import_export(any_store, same_ids_copy(sample_export))
    message = str(refused.value)
    name = sample_export["stories"][0]["display_name"]
    scenelet, shot = sample_export["scenelets"][2], sample_export["shots"][7]
    assert (f"scenelets[2] (id {scenelet['id']!r}): belongs to story {SAMPLE_ID} ({name!r}), "
            f"not to story {COPY_ID}") in message
    assert (f"shots[7] ({shot['scenelet_id']!r} #{shot['shot_index']}, id {shot['id']!r}): "
            f"belongs to story {SAMPLE_ID} ({name!r}), not to story {COPY_ID}") in message
    assert "storytree import --new-ids FILE" in message and f"import it into story {SAMPLE_ID}" in message
    rows = len(sample_export["scenelets"]) + len(sample_export["shots"])
    assert f"({rows + 1} problems)" in message  # every row at once, and the fix once
    assert exported(any_store) == before
    assert any_store.list_story_ids() == [SAMPLE_ID]


def test_the_store_refuses_rows_of_another_story_that_validation_did_not_see(any_store, sample_export):
    """Validated while the store was empty (as when a second import lands between validation and write): the
    store's own transaction refuses the copy, and nothing of it is written."""
    copy_rows = validate_export(same_ids_copy(sample_export), any_store, "test")
    import_export(any_store, sample_export)
    write_paths(any_store)
    before = exported(any_store)
    with pytest.raises(InputError) as refused:
        any_store.import_rows(copy.deepcopy(copy_rows))
    message = str(refused.value)
    name = sample_export["stories"][0]["display_name"]
    assert f"scenelets[0] (id {sample_export['scenelets'][0]['id']!r}): belongs to story {SAMPLE_ID} ({name!r})" in message
    last = sample_export["shots"][11]
    assert (f"shots[11] ({last['scenelet_id']!r} #{last['shot_index']}, id {last['id']!r}): "
            f"belongs to story {SAMPLE_ID}") in message
    assert "--new-ids" in message
    assert exported(any_store) == before
    assert any_store.list_story_ids() == [SAMPLE_ID]


def test_the_store_refuses_a_shot_of_another_story_alone(any_store, sample_export):
    """Only a shot row's id is another story's (its scenelets are new): still refused, nothing written."""
    import_export(any_store, sample_export)
    before = exported(any_store)
    copy_ = same_ids_copy(sample_export)
    fresh = {row["id"]: "4" + row["id"][1:] for row in copy_["scenelets"]}
    for row in copy_["scenelets"]:
        row["id"], row["parent_id"] = fresh[row["id"]], fresh.get(row["parent_id"])
    for n, row in enumerate(copy_["shots"]):
        row["scenelet_ref"] = fresh[row["scenelet_ref"]]
        row["id"] = row["id"] if n == 4 else None  # one shot keeps the original's row id
    with pytest.raises(InputError, match=r"shots\[4\] .*belongs to story " + SAMPLE_ID):
        any_store.import_rows(copy_)
    assert exported(any_store) == before
    assert any_store.list_story_ids() == [SAMPLE_ID]
