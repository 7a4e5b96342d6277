"""Shot-production responses (facts doc §2.6, §10.6) → `shots` rows, via storytree_build.shot_production."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from support.project import REPO, SAMPLE_ID
from storytree_build.core.errors import InputError
from storytree_build.core.models import VisualDesignDocument
from storytree_build.data.shot_production import ShotProductionError, ingest_files, parse_response
from storytree_build.store import SqliteStoryStore
from storytree_build.data.transfer import export_story, import_file, validate_export

SHOT_DIR = REPO / "samples" / "shot-production"
WITH_REFS = SHOT_DIR / "scenelet-2-with-refs.json"
LEGACY = SHOT_DIR / "scenelet-2-legacy.json"
PAYLOAD_KEYS = ["framingAndAngle", "compositionAndContent", "characterActionAndEmotion", "cameraDynamics",
                "lightingAndAtmosphere", "continuityNotes", "referencedDesigns", "audioAndNarrative"]


def load(store: SqliteStoryStore, export: dict, without: tuple[str, ...] = ()) -> list[dict]:
    """Import the export minus the shots of the named scenelets; return the removed rows."""
    removed = [s for s in export["shots"] if s["scenelet_id"] in without]
    export = dict(export, shots=[s for s in export["shots"] if s["scenelet_id"] not in without])
    store.import_rows(validate_export(export, store, "test"))
    return removed


def stored_shots(store: SqliteStoryStore, scenelet_id: str) -> list[dict]:
    return [s for s in store.load_story(SAMPLE_ID).shots if s["scenelet_id"] == scenelet_id]


def shot_count(store: SqliteStoryStore) -> int:
    with sqlite3.connect(store.path) as conn:
        return conn.execute("select count(*) from shots").fetchone()[0]


@pytest.fixture
def vdd(sample_export) -> VisualDesignDocument:
    return VisualDesignDocument.model_validate(sample_export["stories"][0]["visual_design_document"])


# --- ingesting the sample responses -----------------------------------------------------------------


def test_ingest_with_refs_reproduces_the_sample_rows(store, sample_export):
    removed = load(store, sample_export, without=("scenelet-2",))
    assert len(removed) == 3 and shot_count(store) == 9
    rows = ingest_files(store, SAMPLE_ID, [WITH_REFS])
    assert len(rows) == 3
    shots = stored_shots(store, "scenelet-2")
    assert [s["shot_index"] for s in shots] == [1, 2, 3]
    for shot, original in zip(shots, removed):
        assert list(shot["storyboard_payload"]) == PAYLOAD_KEYS
        assert shot["storyboard_payload"] == original["storyboard_payload"]
        assert (shot["scenelet_ref"], shot["scenelet_sequence"], shot["story_id"]) == (
            original["scenelet_ref"], 2, SAMPLE_ID)
        assert shot["key_frame_image_path"] is None and shot["video_file_path"] is None
    assert shots[2]["storyboard_payload"]["referencedDesigns"] == {
        "characters": ["wren-quillfeather", "the-cloud-shepherd"], "environments": ["puffwick-cloud-pasture"]}
    assert shot_count(store) == 12


def test_ingest_legacy_response_leaves_referenced_designs_out(store, sample_export):
    """A response that does not say which designs a shot shows stores no `referencedDesigns` at all: empty lists
    would claim "no designs", which nobody said."""
    removed = load(store, sample_export, without=("scenelet-2",))
    ingest_files(store, SAMPLE_ID, [LEGACY])
    shots = stored_shots(store, "scenelet-2")
    assert len(shots) == 3
    for shot, original in zip(shots, removed):
        expected = {k: v for k, v in original["storyboard_payload"].items() if k != "referencedDesigns"}
        assert list(shot["storyboard_payload"]) == [k for k in PAYLOAD_KEYS if k != "referencedDesigns"]
        assert shot["storyboard_payload"] == expected


def test_ingest_null_referenced_designs_is_stored_as_absent(tmp_path, store, sample_export):
    load(store, sample_export, without=("scenelet-2",))
    data = json.loads(WITH_REFS.read_text())
    data["shots"][0]["storyboard_entry"]["referenced_designs"] = None
    del data["shots"][1]["storyboard_entry"]["referenced_designs"]
    data["shots"][1]["storyboard_entry"]["referencedDesigns"] = None
    path = tmp_path / "null-refs.json"
    path.write_text(json.dumps(data))
    ingest_files(store, SAMPLE_ID, [path])
    payloads = [s["storyboard_payload"] for s in stored_shots(store, "scenelet-2")]
    assert "referencedDesigns" not in payloads[0] and "referencedDesigns" not in payloads[1]
    assert payloads[2]["referencedDesigns"] == {
        "characters": ["wren-quillfeather", "the-cloud-shepherd"], "environments": ["puffwick-cloud-pasture"]}


def test_ingested_story_exports_and_reimports(tmp_path, store, sample_export):
    load(store, sample_export, without=("scenelet-2",))
    ingest_files(store, SAMPLE_ID, [LEGACY])
    text = export_story(store, SAMPLE_ID)
    (tmp_path / "out.json").write_text(text)
    other = SqliteStoryStore(tmp_path / "other.sqlite")
    import_file(tmp_path / "out.json", other)
    assert export_story(other, SAMPLE_ID) == text
    other.close()


def test_ingest_trims_and_lower_cases(tmp_path, store, sample_export):
    load(store, sample_export, without=("scenelet-2",))
    data = json.loads(WITH_REFS.read_text())
    entry = data["shots"][0]["storyboard_entry"]
    entry["referenced_designs"] = {"characters": [" captain-clank  "], "environments": ["\tpuffwick-cloud-pasture "]}
    entry["audio_and_narrative"][0].update(type="  MONOLOGUE ", source=" narrator", line=" Above. ", delivery="Light. ")
    entry["framing_and_angle"] = "  Wide shot at cloud level.\n"
    data["shots"][0]["shot_index"] = " 1 "
    data["scenelet_id"] = " scenelet-2 "
    path = tmp_path / "padded.json"
    path.write_text(json.dumps(data))
    ingest_files(store, SAMPLE_ID, [path])
    payload = stored_shots(store, "scenelet-2")[0]["storyboard_payload"]
    assert payload["referencedDesigns"] == {"characters": ["captain-clank"], "environments": ["puffwick-cloud-pasture"]}
    assert payload["audioAndNarrative"] == [{"type": "monologue", "source": "narrator", "line": "Above.", "delivery": "Light."}]
    assert payload["framingAndAngle"] == "Wide shot at cloud level."


def test_ingest_several_files_at_once(tmp_path, store, sample_export):
    removed = load(store, sample_export, without=("scenelet-2", "scenelet-3"))
    scenelet_3 = [s for s in removed if s["scenelet_id"] == "scenelet-3"]
    camel = {"sceneletId": "scenelet-3",
             "shots": [{"shotIndex": s["shot_index"], "storyboardEntry": s["storyboard_payload"]} for s in scenelet_3]}
    path = tmp_path / "scenelet-3.json"
    path.write_text(json.dumps(camel))
    rows = ingest_files(store, SAMPLE_ID, [WITH_REFS, path])
    assert [(r["scenelet_id"], r["shot_index"]) for r in rows] == [
        ("scenelet-2", 1), ("scenelet-2", 2), ("scenelet-2", 3), ("scenelet-3", 1), ("scenelet-3", 2)]
    mine = sorted(stored_shots(store, "scenelet-3"), key=lambda s: s["shot_index"])
    fields = ("story_id", "scenelet_ref", "scenelet_id", "scenelet_sequence", "shot_index", "storyboard_payload")
    assert [{k: s[k] for k in fields} for s in mine] == [{k: s[k] for k in fields} for s in scenelet_3]
    assert mine[0]["scenelet_sequence"] == 3


@pytest.mark.parametrize("scenelet_id", ["scenelet-1", "scenelet-2", "scenelet-3", "scenelet-4", "scenelet-5"])
def test_db_payload_survives_a_trip_through_the_parser(sample_export, vdd, scenelet_id):
    # camelCase Gemini keys are accepted, so every stored payload must parse back to itself
    shots = [s for s in sample_export["shots"] if s["scenelet_id"] == scenelet_id]
    raw = json.dumps({"scenelet_id": scenelet_id,
                      "shots": [{"shot_index": s["shot_index"], "storyboardEntry": s["storyboard_payload"]} for s in shots]})
    assert parse_response(raw, expected_scenelet=scenelet_id, vdd=vdd, where="x") == [s["storyboard_payload"] for s in shots]


# --- refusing to write --------------------------------------------------------------------------------


def test_scenelet_that_already_has_shots_is_refused(sample_store):
    before = export_story(sample_store, SAMPLE_ID)
    with pytest.raises(ShotProductionError, match=rf"{WITH_REFS}: scenelet scenelet-2 of story {SAMPLE_ID} already has shots"):
        ingest_files(sample_store, SAMPLE_ID, [WITH_REFS])
    assert export_story(sample_store, SAMPLE_ID) == before


def test_reingest_is_refused(store, sample_export):
    load(store, sample_export, without=("scenelet-2",))
    ingest_files(store, SAMPLE_ID, [WITH_REFS])
    first = stored_shots(store, "scenelet-2")
    with pytest.raises(ShotProductionError, match="already has shots"):
        ingest_files(store, SAMPLE_ID, [LEGACY])
    assert stored_shots(store, "scenelet-2") == first


def write_bad(tmp_path: Path, scenelet: str, mutate) -> Path:
    data = json.loads(WITH_REFS.read_text())
    data["scenelet_id"] = scenelet
    mutate(data)
    path = tmp_path / f"{scenelet}-bad.json"
    path.write_text(json.dumps(data))
    return path


def test_one_bad_file_among_several_writes_nothing(tmp_path, store, sample_export):
    load(store, sample_export, without=("scenelet-2", "scenelet-3"))
    bad = write_bad(tmp_path, "scenelet-3",
                    lambda d: d["shots"][1]["storyboard_entry"].update(camera_dynamics="   "))
    with pytest.raises(ShotProductionError) as info:
        ingest_files(store, SAMPLE_ID, [WITH_REFS, bad])
    assert str(info.value) == f"{bad}: scenelet-3 shot 2: storyboard_entry.camera_dynamics must be a non-empty string."
    assert shot_count(store) == 7
    assert stored_shots(store, "scenelet-2") == []


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d["shots"][2]["storyboard_entry"]["audio_and_narrative"][0].update(delivery=""),
     "scenelet-2 shot 3: audio_and_narrative[1]: delivery must be a non-empty string."),
    (lambda d: d["shots"][1]["storyboard_entry"]["audio_and_narrative"][1].update(source="cosmo"),
     "scenelet-2 shot 2: audio_and_narrative[2]: Dialogue references unknown character design id cosmo."),
    (lambda d: d["shots"][1]["storyboard_entry"]["referenced_designs"].update(environments=["moon"]),
     "scenelet-2 shot 2: referenced_designs.environments includes unknown design ids: moon."),
    (lambda d: d["shots"][0]["storyboard_entry"].pop("lighting_and_atmosphere"),
     "scenelet-2 shot 1: storyboard_entry.lighting_and_atmosphere must be a non-empty string."),
    (lambda d: d["shots"][2].update(shot_index=4),
     "Shot indices must be sequential starting at 1. Expected 3 but received 4."),
])
def test_errors_name_file_scenelet_shot_and_field(tmp_path, store, sample_export, mutate, expected):
    load(store, sample_export, without=("scenelet-2",))
    bad = write_bad(tmp_path, "scenelet-2", mutate)
    with pytest.raises(ShotProductionError) as info:
        ingest_files(store, SAMPLE_ID, [bad])
    assert str(info.value) == f"{bad}: {expected}"
    assert stored_shots(store, "scenelet-2") == []


def test_unknown_scenelet(tmp_path, store, sample_export):
    load(store, sample_export, without=("scenelet-2",))
    bad = write_bad(tmp_path, "scenelet-9", lambda d: None)
    with pytest.raises(ShotProductionError, match=rf"scenelet 'scenelet-9' is not a scenelet of story {SAMPLE_ID} "
                                                  r"\(known: scenelet-1, scenelet-2, scenelet-3, scenelet-4, scenelet-5\)"):
        ingest_files(store, SAMPLE_ID, [bad])


def test_same_scenelet_in_two_files(tmp_path, store, sample_export):
    load(store, sample_export, without=("scenelet-2",))
    with pytest.raises(ShotProductionError, match="scenelet scenelet-2 appears in more than one file"):
        ingest_files(store, SAMPLE_ID, [WITH_REFS, LEGACY])
    assert stored_shots(store, "scenelet-2") == []


@pytest.mark.parametrize(("text", "expected"), [("{oops", "invalid JSON"), ("null", "must be a JSON object"),
                                                 ("[1]", "must be a JSON object"), ('{"shots": []}', "must include scenelet_id")])
def test_unparseable_files_name_the_file(tmp_path, store, sample_export, text, expected):
    load(store, sample_export, without=("scenelet-2",))
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ShotProductionError, match=expected) as info:
        ingest_files(store, SAMPLE_ID, [path])
    assert str(info.value).startswith(f"{path}: ")


def test_missing_file_and_unknown_story(tmp_path, sample_store):
    with pytest.raises(ShotProductionError, match="no such file"):
        ingest_files(sample_store, SAMPLE_ID, [tmp_path / "absent.json"])
    with pytest.raises(InputError, match="Story nope does not exist"):
        ingest_files(sample_store, "nope", [WITH_REFS])


def test_story_without_visual_design_document(store, sample_export):
    sample_export["stories"][0]["visual_design_document"] = None
    load(store, sample_export, without=("scenelet-2",))
    with pytest.raises(ShotProductionError, match="Visual design document is required"):
        ingest_files(store, SAMPLE_ID, [WITH_REFS])


# --- the validator, case by case (facts doc §10.6) ----------------------------------------------------

ROSTER_VDD = {
    "global_aesthetic": {"visual_style": "gouache", "master_color_palette": ["#000000"]},
    "character_designs": [{"character_id": "finn"}, {"character_id": "rhea"}],
    "environment_designs": [{"environment_id": "lab"}],
}


def entry(**overrides) -> dict:
    base = {
        "referenced_designs": {"characters": ["finn"], "environments": ["lab"]},
        "framing_and_angle": "Wide.",
        "composition_and_content": "Finn in the lab.",
        "character_action_and_emotion": "Curious.",
        "audio_and_narrative": [{"type": "monologue", "source": "narrator", "line": "Once.", "delivery": "Soft."}],
        "camera_dynamics": "Static.",
        "lighting_and_atmosphere": "Lamp glow.",
        "continuity_notes": "None.",
    }
    base.update(overrides)
    return base


def response(*entries, scenelet: str = "scenelet-1") -> dict:
    return {"scenelet_id": scenelet, "shots": [{"shot_index": i, "storyboard_entry": e} for i, e in enumerate(entries or [entry()], 1)]}


def parse(data, *, scenelet: str = "scenelet-1", vdd=ROSTER_VDD) -> list[dict]:
    raw = data if isinstance(data, str) else json.dumps(data)
    model = None if vdd is None else VisualDesignDocument.model_validate(vdd)
    return parse_response(raw, expected_scenelet=scenelet, vdd=model, where="resp.json")


def audio(**overrides) -> dict:
    return {**{"type": "dialogue", "source": "finn", "line": "Hi.", "delivery": "Bright."}, **overrides}


def with_audio(item) -> dict:
    return response(entry(audio_and_narrative=[item]))


def without(key: str) -> dict:
    e = entry()
    del e[key]
    return response(e)


def without_audio_key(key: str) -> dict:
    item = audio()
    del item[key]
    return with_audio(item)


INVALID = [
    ("invalid-json", "{not json", {}, r"contained invalid JSON"),
    ("null", "null", {}, r"must be a JSON object"),
    ("no-target", response(), {"scenelet": ""}, r"requires a target scenelet"),
    ("no-scenelet-id", {"shots": response()["shots"]}, {}, r"must include scenelet_id"),
    ("mismatch", response(scenelet="scenelet-2"), {}, r"scenelet_id scenelet-2 does not match requested scenelet-1"),
    ("no-shots", {"scenelet_id": "scenelet-1", "shots": []}, {}, r"must include at least one shot"),
    ("shots-not-list", {"scenelet_id": "scenelet-1", "shots": {"a": 1}}, {}, r"must include at least one shot"),
    ("non-object-shot", {"scenelet_id": "scenelet-1", "shots": ["shot"]}, {}, r"non-object shot entry"),
    ("first-index-2", {"scenelet_id": "scenelet-1", "shots": [{"shot_index": 2, "storyboard_entry": entry()}]}, {},
     r"Shot indices must be sequential starting at 1\. Expected 1 but received 2\."),
    ("index-abc", {"scenelet_id": "scenelet-1", "shots": [{"shot_index": "abc", "storyboard_entry": entry()}]}, {},
     r"numeric shot_index"),
    ("index-float", {"scenelet_id": "scenelet-1", "shots": [{"shot_index": 1.5, "storyboard_entry": entry()}]}, {},
     r"numeric shot_index"),
    ("index-missing", {"scenelet_id": "scenelet-1", "shots": [{"storyboard_entry": entry()}]}, {}, r"numeric shot_index"),
    ("entry-null", {"scenelet_id": "scenelet-1", "shots": [{"shot_index": 1, "storyboard_entry": None}]}, {},
     r"must include a storyboard_entry object"),
    ("no-framing", without("framing_and_angle"), {}, r"storyboard_entry\.framing_and_angle must be a non-empty string"),
    ("blank-continuity", response(entry(continuity_notes="  ")), {}, r"continuity_notes must be a non-empty string"),
    ("number-camera", response(entry(camera_dynamics=5)), {}, r"camera_dynamics must be a non-empty string"),
    ("refs-list", response(entry(referenced_designs=["finn"])), {}, r"referenced_designs must be an object"),
    ("refs-string", response(entry(referenced_designs="finn")), {}, r"referenced_designs must be an object"),
    ("refs-camel-number", response(entry(referenced_designs=None) | {"referencedDesigns": 3}), {},
     r"referenced_designs must be an object"),
    ("chars-string", response(entry(referenced_designs={"characters": "finn"})), {},
     r"referenced_designs\.characters must be an array when provided"),
    ("chars-number", response(entry(referenced_designs={"characters": [123]})), {},
     r"referenced_designs\.characters array entries must be non-empty strings"),
    ("envs-blank", response(entry(referenced_designs={"characters": [], "environments": [" "]})), {},
     r"referenced_designs\.environments array entries must be non-empty strings"),
    ("unknown-char", response(entry(referenced_designs={"characters": ["finn", "cosmo", "zed"]})), {},
     r"referenced_designs\.characters includes unknown design ids: cosmo, zed\."),
    ("unknown-env", response(entry(referenced_designs={"environments": ["moon"]})), {},
     r"referenced_designs\.environments includes unknown design ids: moon\."),
    ("no-audio", without("audio_and_narrative"), {}, r"storyboard_entry\.audio_and_narrative must be an array"),
    ("audio-object", response(entry(audio_and_narrative={"type": "monologue"})), {},
     r"storyboard_entry\.audio_and_narrative must be an array"),
    ("audio-non-object", with_audio("narrator: hi"), {}, r"audio_and_narrative entries must be objects"),
    ("blank-type", with_audio(audio(type=" ")), {}, r"type must be provided"),
    ("missing-type", without_audio_key("type"), {}, r"type must be provided"),
    ("soundscape", with_audio(audio(type="soundscape")), {}, r'type must be either "monologue" or "dialogue"'),
    ("monologue-voice-over", with_audio(audio(type="monologue", source="voice-over")), {},
     r'Monologue entries must use source "narrator"'),
    ("blank-source", with_audio(audio(source="  ")), {}, r"source must be a non-empty string"),
    ("blank-line", with_audio(audio(line="")), {}, r"line must be a non-empty string"),
    ("missing-delivery", without_audio_key("delivery"), {}, r"delivery must be a non-empty string"),
    ("dialogue-cosmo", with_audio(audio(source="cosmo")), {}, r"Dialogue references unknown character design id cosmo"),
    ("dialogue-narrator", with_audio(audio(source="narrator")), {}, r"Dialogue references unknown character design id narrator"),
    ("null-vdd", response(), {"vdd": None}, r"Visual design document is required before validating shot production"),
    ("no-characters", response(), {"vdd": {**ROSTER_VDD, "character_designs": []}},
     r"Visual design document must include at least one character design"),
]


@pytest.mark.parametrize(("data", "kwargs", "pattern"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_validator_rejects(data, kwargs, pattern):
    with pytest.raises(ShotProductionError, match=pattern) as info:
        parse(data, **kwargs)
    assert str(info.value).startswith("resp.json: ")


def test_errors_name_the_shot_and_audio_entry():
    second = entry(audio_and_narrative=[audio(), audio(type="monologue", source="finn")])
    with pytest.raises(ShotProductionError) as info:
        parse(response(entry(), second))
    assert str(info.value) == ('resp.json: scenelet-1 shot 2: audio_and_narrative[2]: '
                               'Monologue entries must use source "narrator".')


def test_valid_mixed_snake_and_camel_payload():
    first = {
        "referencedDesigns": {"characters": [" finn "], "environments": ["lab "]},
        "framingAndAngle": "  Wide.  ",
        "composition_and_content": "Finn in the lab.",
        "characterActionAndEmotion": "Curious.",
        "audio_and_narrative": [{"type": "MONOLOGUE", "source": " narrator ", "line": " Once. ", "delivery": "Soft."}],
        "cameraDynamics": "Static.",
        "lighting_and_atmosphere": "Lamp glow.",
        "continuityNotes": "None.",
        "dialogue": [{"character": "Finn", "line": "legacy, dropped"}],
        "generation_prompts": {"first_frame_prompt": "dropped"},
    }
    second = {"referencedDesigns": {"characters": [], "environments": []}, "framingAndAngle": "Close.",
              "compositionAndContent": "Rhea.", "characterActionAndEmotion": "Calm.",
              "audioAndNarrative": [{"type": "Dialogue", "source": "rhea", "line": "Not what the script says.",
                                     "delivery": "Dry."}],
              "cameraDynamics": "Push in.", "lightingAndAtmosphere": "Dim.", "continuityNotes": "Same lab."}
    data = {"sceneletId": "scenelet-1",
            "shots": [{"shot_index": " 1 ", "storyboard_entry": first}, {"shotIndex": "2.5", "storyboardEntry": second}]}
    out = parse(data)
    assert out == [
        {"framingAndAngle": "Wide.", "compositionAndContent": "Finn in the lab.", "characterActionAndEmotion": "Curious.",
         "cameraDynamics": "Static.", "lightingAndAtmosphere": "Lamp glow.", "continuityNotes": "None.",
         "referencedDesigns": {"characters": ["finn"], "environments": ["lab"]},
         "audioAndNarrative": [{"type": "monologue", "source": "narrator", "line": "Once.", "delivery": "Soft."}]},
        {"framingAndAngle": "Close.", "compositionAndContent": "Rhea.", "characterActionAndEmotion": "Calm.",
         "cameraDynamics": "Push in.", "lightingAndAtmosphere": "Dim.", "continuityNotes": "Same lab.",
         "referencedDesigns": {"characters": [], "environments": []},
         "audioAndNarrative": [{"type": "dialogue", "source": "rhea", "line": "Not what the script says.",
                                "delivery": "Dry."}]},
    ]
    assert all(list(p) == PAYLOAD_KEYS for p in out)


def test_absent_reference_lists_and_empty_audio_are_fine():
    out = parse(response(entry(referenced_designs={"characters": None}, audio_and_narrative=[])))
    assert out[0]["referencedDesigns"] == {"characters": [], "environments": []}
    assert out[0]["audioAndNarrative"] == []
    out = parse(response(entry(referenced_designs={"characters": ["finn"], "environments": None})))
    assert out[0]["referencedDesigns"] == {"characters": ["finn"], "environments": []}


def test_legacy_entry_without_referenced_designs_omits_the_key():
    e = entry()
    del e["referenced_designs"]
    out = parse(response(e))[0]
    assert "referencedDesigns" not in out
    assert list(out) == [k for k in PAYLOAD_KEYS if k != "referencedDesigns"]


@pytest.mark.parametrize("key", ["referenced_designs", "referencedDesigns"])
def test_null_referenced_designs_is_treated_as_absent(key):
    e = entry()
    del e["referenced_designs"]
    e[key] = None
    assert "referencedDesigns" not in parse(response(e))[0]


def test_a_non_object_referenced_designs_keeps_the_original_error_text():
    with pytest.raises(ShotProductionError) as info:
        parse(response(entry(referenced_designs="finn, lab")))
    assert str(info.value) == "resp.json: scenelet-1 shot 1: referenced_designs must be an object."


def test_unknown_environment_allowed_when_roster_is_empty():
    vdd = {**ROSTER_VDD, "environment_designs": []}
    out = parse(response(entry(referenced_designs={"characters": ["finn"], "environments": ["anywhere"]})), vdd=vdd)
    assert out[0]["referencedDesigns"]["environments"] == ["anywhere"]


def test_numeric_scenelet_id_is_stringified():
    data = response()
    data["scenelet_id"] = 7
    assert len(parse(data, scenelet="7")) == 1


def test_roster_from_camel_case_and_wrapped_vdd():
    vdd = {"visual_design_document": {"globalAesthetic": ROSTER_VDD["global_aesthetic"],
                                      "characterDesigns": [{"characterId": "finn"}],
                                      "environmentDesigns": [{"environmentId": "lab"}]}}
    assert parse(response(entry(audio_and_narrative=[audio()])), vdd=vdd)[0]["audioAndNarrative"][0]["source"] == "finn"
