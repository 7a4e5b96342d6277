"""`storytree import` / `export` (storytree_build.transfer): lossless round trip, idempotent, all-or-nothing."""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path

import pytest

from support.project import SAMPLE, SAMPLE_ID
from storytree_build.core.errors import InputError
from storytree_build.store import SqliteStoryStore
from storytree_build.data.transfer import export_story, import_file


def counts(store: SqliteStoryStore) -> dict[str, int]:
    with sqlite3.connect(store.path) as conn:
        return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in ("stories", "scenelets", "shots")}


EMPTY = {"stories": 0, "scenelets": 0, "shots": 0}
FULL = {"stories": 1, "scenelets": 5, "shots": 12}


def write(tmp_path: Path, data, name: str = "export.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def import_error(tmp_path: Path, store: SqliteStoryStore, data) -> str:
    path = write(tmp_path, data)
    with pytest.raises(InputError) as info:
        import_file(path, store)
    message = str(info.value)
    assert str(path) in message
    return message


# --- round trip -----------------------------------------------------------------------------------


def test_import_export_import_export_is_byte_identical(tmp_path):
    first = SqliteStoryStore(tmp_path / "one.sqlite")
    assert import_file(SAMPLE, first) == FULL
    text1 = export_story(first, SAMPLE_ID)
    exported = write(tmp_path, text1, "exported.json")

    second = SqliteStoryStore(tmp_path / "two.sqlite")
    assert import_file(exported, second) == FULL
    text2 = export_story(second, SAMPLE_ID)
    assert text2 == text1
    assert text1.endswith("\n")
    first.close()
    second.close()


def test_export_matches_the_sample_rows(store, sample_export):
    import_file(SAMPLE, store)
    data = json.loads(export_story(store, SAMPLE_ID))
    assert set(data) == {"stories", "scenelets", "shots"}
    assert data["stories"] == sample_export["stories"]
    by_id = lambda rows: sorted(rows, key=lambda r: r["id"])  # noqa: E731
    assert by_id(data["scenelets"]) == by_id(sample_export["scenelets"])
    assert by_id(data["shots"]) == by_id(sample_export["shots"])
    # documents keep their stored key order
    assert list(data["stories"][0]["visual_design_document"]) == list(sample_export["stories"][0]["visual_design_document"])
    assert list(data["shots"][0]["storyboard_payload"]) == list(sample_export["shots"][0]["storyboard_payload"])


def test_import_is_idempotent(store):
    import_file(SAMPLE, store)
    text = export_story(store, SAMPLE_ID)
    with sqlite3.connect(store.path) as conn:
        before = [conn.execute(f"select * from {t} order by id").fetchall() for t in ("stories", "scenelets", "shots")]
    import_file(SAMPLE, store)
    import_file(write(store.path.parent, text, "again.json"), store)
    assert counts(store) == FULL
    with sqlite3.connect(store.path) as conn:
        after = [conn.execute(f"select * from {t} order by id").fetchall() for t in ("stories", "scenelets", "shots")]
    assert after == before
    assert export_story(store, SAMPLE_ID) == text


def test_json_string_documents_are_stored_as_objects(tmp_path, store, sample_export):
    story = sample_export["stories"][0]
    expected = copy.deepcopy(story)
    for column in ("visual_design_document", "audio_design_document", "visual_reference_package", "story_constitution"):
        story[column] = json.dumps(story[column])
    for shot in sample_export["shots"]:
        shot["storyboard_payload"] = json.dumps(shot["storyboard_payload"])
    for scenelet in sample_export["scenelets"]:
        scenelet["content"] = json.dumps(scenelet["content"])
    import_file(write(tmp_path, sample_export), store)
    data = json.loads(export_story(store, SAMPLE_ID))
    assert data["stories"][0] == expected
    assert all(isinstance(s["storyboard_payload"], dict) for s in data["shots"])
    assert all(isinstance(s["content"], dict) for s in data["scenelets"])


def test_generated_display_name_upper_is_accepted_and_not_exported(tmp_path, store, sample_export):
    sample_export["stories"][0]["display_name_upper"] = sample_export["stories"][0]["display_name"].upper()
    import_file(write(tmp_path, sample_export), store)
    assert "display_name_upper" not in json.loads(export_story(store, SAMPLE_ID))["stories"][0]


def test_shots_only_file_adds_to_a_stored_story(tmp_path, sample_store, sample_export):
    shot = copy.deepcopy(sample_export["shots"][0])
    shot.update(id="extra-shot", shot_index=4)
    assert import_file(write(tmp_path, {"shots": [shot]}), sample_store) == {"stories": 0, "scenelets": 0, "shots": 1}
    assert counts(sample_store)["shots"] == 13


# --- bad input writes nothing -----------------------------------------------------------------------


def test_export_unknown_story(sample_store):
    with pytest.raises(InputError, match="Story not-a-story does not exist"):
        export_story(sample_store, "not-a-story")


@pytest.mark.parametrize(("text", "expected"), [
    ('{"stories": [', "malformed JSON at line 1"),
    ('{"stories": []\n,,}', "malformed JSON at line 2"),
    ("[]", "expected a table export object"),
    ('{"rows": []}', "expected a table export object"),
    ('{"stories": [], "extra": []}', "unknown top-level keys ['extra']"),
    ('{"stories": {"id": "x"}}', "stories must be an array of row objects"),
    ('{"shots": [1]}', "shots must be an array of row objects"),
])
def test_malformed_file(tmp_path, store, text, expected):
    assert expected in import_error(tmp_path, store, text)
    assert counts(store) == EMPTY


def test_missing_file(tmp_path, store):
    with pytest.raises(InputError, match="no such file"):
        import_file(tmp_path / "absent.json", store)


@pytest.mark.parametrize(("table", "index", "column", "where"), [
    ("stories", 0, "initial_prompt", f"stories[0] (id '{SAMPLE_ID}')"),
    ("stories", 0, "display_name", f"stories[0] (id '{SAMPLE_ID}')"),
    ("scenelets", 2, "content", "scenelets[2] (id '3a9b7c10-1d2e-4f30-8a41-5b6c7d8e9f03')"),
    ("scenelets", 1, "created_at", "scenelets[1] (id '3a9b7c10-1d2e-4f30-8a41-5b6c7d8e9f02')"),
    ("shots", 3, "storyboard_payload", "shots[3] ('scenelet-2' #1)"),
    ("shots", 5, "scenelet_ref", "shots[5] ('scenelet-2' #3)"),
    ("shots", 0, "scenelet_sequence", "shots[0] ('scenelet-1' #1)"),
])
def test_row_missing_required_column(tmp_path, store, sample_export, table, index, column, where):
    del sample_export[table][index][column]
    message = import_error(tmp_path, store, sample_export)
    assert f"{where}: {column}: Field required" in message
    assert "nothing was imported" in message
    assert counts(store) == EMPTY


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda e: e["stories"][0]["visual_design_document"].pop("global_aesthetic"),
     "visual_design_document.global_aesthetic: Field required"),
    (lambda e: e["stories"][0]["visual_design_document"]["global_aesthetic"].pop("master_color_palette"),
     "missing global aesthetic fields (visual_style or master_color_palette): master_color_palette"),
    (lambda e: e["stories"][0]["visual_reference_package"]["character_model_sheets"][0]["reference_plates"][0].update(
        image_generation_prompt=""), "visual_reference_package.character_model_sheets.0.reference_plates.0.image_generation_prompt"),
    (lambda e: e["stories"][0].update(audio_design_document={"audio_design_document": {"character_voice_profiles": [{}]}}),
     "audio_design_document.character_voice_profiles.0.character_id: Field required"),
    (lambda e: e["stories"][0].update(visual_design_document="{not json"), "visual_design_document"),
    (lambda e: e["shots"][4]["storyboard_payload"].update(dialogue=[]),
     "shots[4] ('scenelet-2' #2): storyboard_payload.dialogue: Extra inputs are not permitted"),
    (lambda e: e["shots"][4]["storyboard_payload"].update(cameraDynamics=""),
     "shots[4] ('scenelet-2' #2): storyboard_payload.cameraDynamics"),
    (lambda e: e["shots"][4]["storyboard_payload"]["referencedDesigns"]["characters"].append(" "),
     "shots[4] ('scenelet-2' #2): storyboard_payload.referencedDesigns.characters: Value error, array entries must be non-empty strings"),
    (lambda e: e["shots"][4]["storyboard_payload"]["audioAndNarrative"][0].update(type="song"),
     "shots[4] ('scenelet-2' #2): storyboard_payload.audioAndNarrative.0.type"),
    (lambda e: e["shots"][4].update(shot_index=0), "shots[4] ('scenelet-2' #0): shot_index"),
    (lambda e: e["scenelets"][1]["content"].pop("description"),
     "scenelets[1] (id '3a9b7c10-1d2e-4f30-8a41-5b6c7d8e9f02'): content.description: Field required"),
    (lambda e: e["scenelets"][3].update(parent_id=None),
     f"Story {SAMPLE_ID}: the scenelet tree needs exactly one root (parent_id null); found 2."),
    (lambda e: e["scenelets"][3].update(parent_id="missing-parent"), "has unknown parent_id missing-parent"),
])
def test_document_failing_validation(tmp_path, store, sample_export, mutate, expected):
    mutate(sample_export)
    message = import_error(tmp_path, store, sample_export)
    assert expected in message
    assert counts(store) == EMPTY


def set_story_id(export: dict, new_id: str) -> None:
    for table in ("stories", "scenelets", "shots"):
        for row in export[table]:
            row["id" if table == "stories" else "story_id"] = new_id


UNSAFE = ["..", "../escape", "a/b", "a\\b", ""]


@pytest.mark.parametrize("bad", UNSAFE)
def test_unsafe_story_id(tmp_path, store, sample_export, bad):
    set_story_id(sample_export, bad)
    message = import_error(tmp_path, store, sample_export)
    assert f"stories[0] (id {bad!r}): story id {bad!r}" in message or \
        f"stories[0] (id {bad!r}): story id must be a non-empty string" in message
    assert counts(store) == EMPTY


@pytest.mark.parametrize("bad", UNSAFE)
def test_unsafe_scenelet_id_in_shot(tmp_path, store, sample_export, bad):
    sample_export["shots"][7]["scenelet_id"] = bad
    message = import_error(tmp_path, store, sample_export)
    assert f"shots[7] ({bad!r} #2): scenelet_id" in message
    assert "path-safe" in message or "non-empty string" in message
    assert counts(store) == EMPTY


@pytest.mark.parametrize("kind", ["character", "environment"])
@pytest.mark.parametrize("bad", UNSAFE)
def test_unsafe_design_id(tmp_path, store, sample_export, kind, bad):
    sample_export["stories"][0]["visual_design_document"][f"{kind}_designs"][2][f"{kind}_id"] = bad
    message = import_error(tmp_path, store, sample_export)
    assert f"stories[0] (id '{SAMPLE_ID}'): visual_design_document design id" in message
    assert "path-safe" in message or "non-empty string" in message
    assert counts(store) == EMPTY


@pytest.mark.parametrize(("kind", "position"), [("characters", 3), ("environments", 10)])
def test_unknown_referenced_design_id(tmp_path, store, sample_export, kind, position):
    sample_export["shots"][position]["storyboard_payload"]["referencedDesigns"][kind].append("ghost-of-nobody")
    message = import_error(tmp_path, store, sample_export)
    shot = sample_export["shots"][position]
    assert (f"shots[{position}] ({shot['scenelet_id']!r} #{shot['shot_index']}): "
            f"referencedDesigns.{kind} includes unknown design ids: ghost-of-nobody.") in message
    assert counts(store) == EMPTY


def test_unknown_referenced_design_id_in_shots_only_file(tmp_path, sample_store, sample_export):
    shot = copy.deepcopy(sample_export["shots"][0])
    shot.update(id="extra-shot", shot_index=4)
    shot["storyboard_payload"]["referencedDesigns"]["characters"] = ["ghost-of-nobody"]
    message = import_error(tmp_path, sample_store, {"shots": [shot]})
    assert "shots[0] ('scenelet-1' #4): referencedDesigns.characters includes unknown design ids: ghost-of-nobody." in message
    assert counts(sample_store) == FULL


def test_unknown_scenelet_ref_in_shots_only_file(tmp_path, sample_store, sample_export):
    shot = copy.deepcopy(sample_export["shots"][0])
    shot.update(id="extra-shot", shot_index=4, scenelet_ref="no-such-scenelet")
    message = import_error(tmp_path, sample_store, {"shots": [shot]})
    assert "shots[0] ('scenelet-1' #4): scenelet_ref no-such-scenelet is not a scenelet" in message
    assert counts(sample_store) == FULL


def test_rows_of_an_unknown_story(tmp_path, store, sample_export):
    message = import_error(tmp_path, store, {"scenelets": sample_export["scenelets"][:1], "shots": sample_export["shots"][:1]})
    assert f"scenelets[0] (id '3a9b7c10-1d2e-4f30-8a41-5b6c7d8e9f01'): story_id {SAMPLE_ID} is neither in this file nor in the store." in message
    assert f"shots[0] ('scenelet-1' #1): story_id {SAMPLE_ID} is neither in this file nor in the store." in message
    assert counts(store) == EMPTY


def test_every_problem_is_reported_at_once(tmp_path, store, sample_export):
    del sample_export["stories"][0]["initial_prompt"]
    sample_export["shots"][0]["storyboard_payload"]["extra"] = 1
    sample_export["shots"][11]["scenelet_id"] = "../x"
    message = import_error(tmp_path, store, sample_export)
    assert "(3 problems)" in message
    assert "initial_prompt" in message and "storyboard_payload.extra" in message and "'../x'" in message


def test_bad_file_leaves_an_existing_story_untouched(tmp_path, sample_store, sample_export):
    before = export_story(sample_store, SAMPLE_ID)
    sample_export["stories"][0]["display_name"] = "Renamed"
    sample_export["shots"][0]["storyboard_payload"]["cameraDynamics"] = ""
    import_error(tmp_path, sample_store, sample_export)
    assert export_story(sample_store, SAMPLE_ID) == before


@pytest.mark.parametrize("bad_id", [["a"], {"k": 1}, 5, None])
def test_non_string_story_id_is_a_reported_problem(tmp_path, store, sample_export, bad_id):
    set_story_id(sample_export, bad_id)
    message = import_error(tmp_path, store, sample_export)
    assert "stories[0]" in message and "id" in message
    assert counts(store) == EMPTY


def test_a_file_adding_scenelets_to_a_stored_story_is_checked_against_the_whole_tree(sample_store, sample_export):
    from storytree_build.data.transfer import validate_export

    root = next(r for r in sample_export["scenelets"] if r["parent_id"] is None)
    extra = {**root, "id": "3a9b7c10-1d2e-4f30-8a41-5b6c7d8e9f99", "parent_id": root["id"],
             "created_at": "2026-11-02T00:00:00+00:00", "choice_label_from_parent": "A new branch"}
    clean = validate_export({"stories": [], "scenelets": [extra], "shots": []}, sample_store, "addition")
    sample_store.import_rows(clean)
    assert len(sample_store.load_story(SAMPLE_ID).scenelets) == len(sample_export["scenelets"]) + 1


def test_two_rows_for_the_same_shot_are_reported_not_silently_merged(store, sample_export):
    from storytree_build.core.errors import InputError
    from storytree_build.data.transfer import validate_export

    sample_export["shots"].append(dict(sample_export["shots"][0], id="b7e4a2d0-6c1f-4e3a-9b58-1c2d3e4f5999"))
    with pytest.raises(InputError, match=r"duplicates shots\[0\]"):
        validate_export(sample_export, store, "dup")
    assert store.list_story_ids() == []


# --- a copy under a new story id ---------------------------------------------------------------------
COPY_ID = "6f2a1d3b-8c4e-4d5f-9a70-1e3f5a7c9e21"


def as_copy(export: dict) -> dict:
    """The export under a new story id, its rows keeping the original's row ids."""
    set_story_id(export, COPY_ID)
    export["stories"][0]["display_name"] = "Wren, the copy"
    return export


def test_a_scenelet_id_used_by_two_stories_of_one_file_is_refused(tmp_path, store, sample_export):
    copy_ = as_copy(copy.deepcopy(sample_export))
    both = {table: sample_export[table] + copy_[table] for table in ("stories", "scenelets", "shots")}
    message = import_error(tmp_path, store, both)
    first = sample_export["scenelets"][0]["id"]
    assert f"scenelets[5] (id {first!r}): the same id is scenelets[0] of story {SAMPLE_ID}" in message
    shot = sample_export["shots"][0]
    assert f"shots[12] ({shot['scenelet_id']!r} #1): id {shot['id']} is also the id of shots[0]." in message
    assert counts(store) == EMPTY


def test_a_shot_whose_scenelet_ref_is_a_scenelet_of_another_story_is_refused(tmp_path, store, sample_export):
    other = as_copy(copy.deepcopy(sample_export))
    other["scenelets"] = [dict(r, id="4" + r["id"][1:], parent_id=r["parent_id"] and "4" + r["parent_id"][1:])
                          for r in other["scenelets"]]
    for shot in other["shots"]:
        shot.update(id=None, scenelet_ref="4" + shot["scenelet_ref"][1:])
    other["shots"][3]["scenelet_ref"] = sample_export["shots"][3]["scenelet_ref"]  # the original's scenelet
    both = {table: sample_export[table] + other[table] for table in ("stories", "scenelets", "shots")}
    message = import_error(tmp_path, store, both)
    assert (f"shots[15] ('scenelet-2' #1): scenelet_ref {sample_export['shots'][3]['scenelet_ref']} is a scenelet of "
            f"story {SAMPLE_ID}, not of story {COPY_ID}.") in message
    assert counts(store) == EMPTY


def test_fresh_ids_keep_the_sort_order_of_the_old_ones():
    from storytree_build.data.transfer import fresh_ids

    old = {f"{n:02d}-{'z' if n % 2 else 'a'}" for n in range(60)}
    mapping = fresh_ids(COPY_ID, old)
    assert sorted(mapping.values()) == [mapping[o] for o in sorted(old)]
    assert len(set(mapping.values())) == 60 and not set(mapping.values()) & old
    assert fresh_ids(COPY_ID, old) == mapping  # the same file, the same ids: importing it again is an upsert
    assert not set(fresh_ids(SAMPLE_ID, old).values()) & set(mapping.values())  # another story, other ids


def test_new_ids_give_a_copy_new_rows_with_the_same_tree(sample_export):
    from storytree_build.core.tree import derive_tree
    from storytree_build.data.transfer import with_fresh_row_ids

    for row in sample_export["scenelets"]:  # siblings with equal times: their order comes from their ids
        row["created_at"] = "2026-11-01T10:05:00+00:00"
    fresh = with_fresh_row_ids(as_copy(copy.deepcopy(sample_export)))
    old_scenelets = {r["id"] for r in sample_export["scenelets"]}
    new_by_id = {r["id"]: r for r in fresh["scenelets"]}
    assert len(new_by_id) == len(old_scenelets) and not set(new_by_id) & old_scenelets
    assert not {s["id"] for s in fresh["shots"]} & {s["id"] for s in sample_export["shots"]}
    assert len({s["id"] for s in fresh["shots"]}) == len(sample_export["shots"])

    def shape(export: dict) -> list[tuple]:
        tree = derive_tree("s", export["scenelets"])
        return [(node.label, tree[node.parent_id].label if node.parent_id else None,
                 [tree[child].label for child in node.children]) for node in tree.values()]

    assert shape(fresh) == shape(sample_export)
    old_tree, new_tree = derive_tree("s", sample_export["scenelets"]), derive_tree(COPY_ID, fresh["scenelets"])
    assert [(new_tree[s["scenelet_ref"]].label, s["shot_index"]) for s in fresh["shots"]] == [
        (old_tree[s["scenelet_ref"]].label, s["shot_index"]) for s in sample_export["shots"]]


def test_new_ids_carry_the_build_records_identities_along(sample_export):
    from storytree_build.data.transfer import with_fresh_row_ids

    ref = sample_export["shots"][3]["scenelet_ref"]
    sample_export["storytree_records"] = [{"story_id": SAMPLE_ID, "identity": f"image|{ref}|1"},
                                          {"story_id": SAMPLE_ID, "identity": "image|image:sheet"},
                                          {"story_id": SAMPLE_ID, "identity": ""}]
    fresh = with_fresh_row_ids(sample_export)
    new_ref = fresh["shots"][3]["scenelet_ref"]
    assert new_ref != ref
    assert [r["identity"] for r in fresh["storytree_records"]] == [f"image|{new_ref}|1", "image|image:sheet", ""]


def test_import_with_new_ids_adds_the_copy_beside_the_original(tmp_path, sample_store, sample_export):
    sample_store.set_shot_path(SAMPLE_ID, "scenelet-2", 1, "key_frame_image_path", "kept.png")
    before = export_story(sample_store, SAMPLE_ID)
    path = write(tmp_path, as_copy(copy.deepcopy(sample_export)))
    assert "storytree import --new-ids FILE" in import_error(tmp_path, sample_store, as_copy(copy.deepcopy(sample_export)))
    assert import_file(path, sample_store, new_ids=True) == FULL
    assert export_story(sample_store, SAMPLE_ID) == before
    original, copied = json.loads(before), json.loads(export_story(sample_store, COPY_ID))
    assert (len(copied["scenelets"]), len(copied["shots"])) == (5, 12)
    assert not {r["id"] for r in copied["scenelets"] + copied["shots"]} & {
        r["id"] for r in original["scenelets"] + original["shots"]}
    assert [(s["scenelet_id"], s["shot_index"]) for s in copied["shots"]] == [
        (s["scenelet_id"], s["shot_index"]) for s in original["shots"]]
    assert counts(sample_store) == {"stories": 2, "scenelets": 10, "shots": 24}
    # the same copy again, with new ids again: the same new ids, an upsert that keeps the copy's built paths
    sample_store.set_shot_path(COPY_ID, "scenelet-2", 1, "key_frame_image_path", "copy-kept.png")
    assert import_file(path, sample_store, new_ids=True) == FULL
    assert counts(sample_store) == {"stories": 2, "scenelets": 10, "shots": 24}
    again = json.loads(export_story(sample_store, COPY_ID))
    assert [r["id"] for r in again["scenelets"] + again["shots"]] == [r["id"] for r in copied["scenelets"] + copied["shots"]]
    assert next(s for s in again["shots"] if (s["scenelet_id"], s["shot_index"]) == ("scenelet-2", 1))[
        "key_frame_image_path"] == "copy-kept.png"
    assert export_story(sample_store, SAMPLE_ID) == before
