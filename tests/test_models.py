"""Story document models (facts doc §2): aliases and legacy forms accepted, unknown keys kept, shot payload strict."""

from __future__ import annotations

import copy
import json

import pytest
from pydantic import ValidationError

from support.project import SAMPLE
from storytree_build.core.models import (
    AudioDesignDocument,
    SceneletRow,
    ShotRow,
    StoryboardPayload,
    StoryRow,
    VisualDesignDocument,
    VisualReferencePackage,
)

AESTHETIC = {
    "visual_style": {"name": "Gouache", "description": "Soft painted edges."},
    "master_color_palette": [{"color_name": "Copper", "hex_code": "#B87333", "usage_notes": "warm anchor"}],
}

PAYLOAD = {
    "framingAndAngle": "Wide shot.",
    "compositionAndContent": "Rhea at her bench.",
    "characterActionAndEmotion": "Focused.",
    "cameraDynamics": "Static.",
    "lightingAndAtmosphere": "Warm lamp light.",
    "continuityNotes": "Goggles up.",
    "referencedDesigns": {"characters": ["rhea"], "environments": ["lab"]},
    "audioAndNarrative": [{"type": "monologue", "source": "narrator", "line": "Once.", "delivery": "Soft."}],
}
PAYLOAD_KEYS = set(PAYLOAD)


def sample_story() -> dict:
    return json.loads(SAMPLE.read_text())["stories"][0]


def assert_kept(original, dumped, where="$"):
    """Every key/value of `original` is present, unchanged, in `dumped` (dumps may add defaulted fields)."""
    if isinstance(original, dict):
        assert isinstance(dumped, dict), where
        for key, value in original.items():
            assert key in dumped, f"{where}.{key} was dropped"
            assert_kept(value, dumped[key], f"{where}.{key}")
    elif isinstance(original, list):
        assert isinstance(dumped, list) and len(dumped) == len(original), where
        for i, (a, b) in enumerate(zip(original, dumped)):
            assert_kept(a, b, f"{where}[{i}]")
    else:
        assert dumped == original, where


# --- VDD ----------------------------------------------------------------------------------------


def test_vdd_snake_case():
    vdd = VisualDesignDocument.model_validate({
        "global_aesthetic": AESTHETIC,
        "character_designs": [{"character_id": "rhea", "character_model_sheet_image_path": "s/rhea.png"}],
        "environment_designs": [{"environment_id": "lab", "associated_scenelet_ids": ["scenelet-1"]}],
    })
    assert vdd.character_ids() == ["rhea"]
    assert vdd.environment_ids() == ["lab"]
    assert vdd.character_designs[0].character_model_sheet_image_path == "s/rhea.png"
    assert vdd.environment_designs[0].associated_scenelet_ids == ["scenelet-1"]


def test_vdd_camel_case_aliases():
    vdd = VisualDesignDocument.model_validate({
        "globalAesthetic": AESTHETIC,
        "characterDesigns": [{"characterId": "rhea", "characterModelSheetImagePath": "sid/rhea/sheet.png"}],
        "environmentDesigns": [{
            "environmentId": "lab",
            "associatedSceneletIds": ["scenelet-2"],
            "environmentReferenceImagePath": "generated/sid/lab.png",
        }],
    })
    assert vdd.character_ids() == ["rhea"]
    assert vdd.character_designs[0].character_model_sheet_image_path == "sid/rhea/sheet.png"
    env = vdd.environment_designs[0]
    assert (env.environment_id, env.associated_scenelet_ids, env.environment_reference_image_path) == (
        "lab", ["scenelet-2"], "generated/sid/lab.png")
    assert vdd.global_aesthetic == AESTHETIC


@pytest.mark.parametrize(("style_key", "palette_key"), [
    ("visual_style", "master_color_palette"), ("visualStyle", "masterColorPalette")])
def test_vdd_legacy_top_level_aesthetic(style_key, palette_key):
    vdd = VisualDesignDocument.model_validate({
        style_key: AESTHETIC["visual_style"],
        palette_key: ["#112233", "#445566"],  # plain hex strings, as in some fixtures
        "character_designs": [{"character_id": "rhea"}],
    })
    assert vdd.global_aesthetic == {"visual_style": AESTHETIC["visual_style"], "master_color_palette": ["#112233", "#445566"]}


@pytest.mark.parametrize(("key", "name", "expected"), [
    ("character_name", "Dr. O'Reilly", "dr-oreilly"),
    ("characterName", "Señor Jalapeño", "se-or-jalape-o"),
])
def test_vdd_legacy_character_name_becomes_id(key, name, expected):
    vdd = VisualDesignDocument.model_validate({"global_aesthetic": AESTHETIC, "character_designs": [{key: name}]})
    assert vdd.character_ids() == [expected]


def test_vdd_legacy_environment_name_becomes_id():
    vdd = VisualDesignDocument.model_validate({
        "global_aesthetic": AESTHETIC,
        "environment_designs": [{"environment_name": "Cosmo's Jungle Workshop"}],
    })
    assert vdd.environment_ids() == ["cosmos-jungle-workshop"]


def test_vdd_explicit_id_wins_over_name():
    vdd = VisualDesignDocument.model_validate({
        "global_aesthetic": AESTHETIC,
        "character_designs": [{"character_id": "rhea-2", "character_name": "Rhea"}],
    })
    assert vdd.character_ids() == ["rhea-2"]


def test_vdd_missing_aesthetic_is_an_error():
    with pytest.raises(ValidationError) as info:
        VisualDesignDocument.model_validate({"character_designs": [{"character_id": "rhea"}]})
    assert "global_aesthetic" in str(info.value)


@pytest.mark.parametrize("missing", ["visual_style", "master_color_palette"])
def test_vdd_incomplete_aesthetic_names_the_missing_field(missing):
    aesthetic = {k: v for k, v in AESTHETIC.items() if k != missing}
    with pytest.raises(ValidationError) as info:
        VisualDesignDocument.model_validate({"global_aesthetic": aesthetic})
    assert "missing global aesthetic fields" in str(info.value)
    assert missing in str(info.value)


def test_vdd_design_without_id_or_name_is_an_error():
    with pytest.raises(ValidationError, match="character_id"):
        VisualDesignDocument.model_validate({"global_aesthetic": AESTHETIC, "character_designs": [{"role": "hero"}]})


def test_vdd_json_string_document():
    doc = {"global_aesthetic": AESTHETIC, "character_designs": [{"character_id": "rhea"}]}
    vdd = VisualDesignDocument.model_validate(json.dumps(doc))
    assert vdd.character_ids() == ["rhea"]


def test_vdd_string_that_is_not_json():
    with pytest.raises(ValidationError, match="not valid JSON"):
        VisualDesignDocument.model_validate("{not json")


@pytest.mark.parametrize("wrapper", ["visual_design_document", "visualDesignDocument"])
def test_vdd_wrapped_form_is_unwrapped(wrapper):
    inner = {"global_aesthetic": AESTHETIC, "character_designs": [{"character_id": "rhea"}]}
    assert VisualDesignDocument.model_validate({wrapper: inner}).character_ids() == ["rhea"]
    assert VisualDesignDocument.model_validate({wrapper: json.dumps(inner)}).character_ids() == ["rhea"]


def test_vdd_unknown_keys_survive_model_dump():
    doc = {
        "global_aesthetic": {**AESTHETIC, "mood_board": ["a", "b"]},
        "project_overview": {"logline": "x", "nested": [1, {"deep": None}]},
        "character_designs": [{"character_id": "rhea", "role": "hero",
                               "detailed_description": {"attire": "overalls"}, "x_extra": 3.5}],
        "environment_designs": [{"environment_id": "lab", "detailed_description": {"key_elements": ["bench"]}}],
    }
    dumped = VisualDesignDocument.model_validate(copy.deepcopy(doc)).model_dump()
    assert_kept(doc, dumped)
    assert dumped["project_overview"] == doc["project_overview"]


def test_sample_vdd_round_trips():
    doc = sample_story()["visual_design_document"]
    assert_kept(doc, VisualDesignDocument.model_validate(copy.deepcopy(doc)).model_dump())


# --- VRP ----------------------------------------------------------------------------------------

PROMPT = "A long enough image generation prompt describing lighting and mood for a storybook plate."


def test_vrp_aliases_and_unknown_keys():
    doc = {
        "characterModelSheets": [{
            "characterId": "rhea",
            "referencePlates": [{"plateDescription": "sheet", "plate_type": "CHARACTER_MODEL_SHEET",
                                 "imageGenerationPrompt": PROMPT, "x_plate_note": "keep me"}],
        }],
        "environmentKeyframes": [{
            "environmentId": "lab",
            "environment_keyframes_entries": [{"keyframeDescription": "dawn", "imageGenerationPrompt": PROMPT}],
        }],
        "x_package_note": {"k": [1, 2]},
    }
    vrp = VisualReferencePackage.model_validate(doc)
    plate = vrp.character_model_sheets[0].reference_plates[0]
    assert (plate.plate_description, plate.type, plate.image_generation_prompt) == ("sheet", "CHARACTER_MODEL_SHEET", PROMPT)
    assert vrp.environment_keyframes[0].keyframes[0].keyframe_description == "dawn"
    dumped = vrp.model_dump()
    assert dumped["x_package_note"] == {"k": [1, 2]}
    assert dumped["character_model_sheets"][0]["reference_plates"][0]["x_plate_note"] == "keep me"


def test_sample_vrp_round_trips_wrapped_and_as_string():
    doc = sample_story()["visual_reference_package"]
    assert_kept(doc, VisualReferencePackage.model_validate(copy.deepcopy(doc)).model_dump())
    wrapped = VisualReferencePackage.model_validate({"visual_reference_package": json.dumps(doc)})
    assert_kept(doc, wrapped.model_dump())


@pytest.mark.parametrize("plates", [[], [{"plate_description": "d", "type": "CHARACTER_MODEL_SHEET", "image_generation_prompt": ""}]])
def test_vrp_rejects_empty_plates_or_prompts(plates):
    with pytest.raises(ValidationError):
        VisualReferencePackage.model_validate({"character_model_sheets": [{"character_id": "rhea", "reference_plates": plates}]})


# --- ADD ----------------------------------------------------------------------------------------

ADD_INNER = {
    "sonic_identity": {"musical_direction": "Folk ensemble waltz.", "sound_effect_philosophy": "Tactile.", "x_tempo": 96},
    "narrator_voice_profile": {"character_id": "narrator", "voice_name": "Kore", "voice_profile": "Warm grandparent."},
    "character_voice_profiles": [{"character_name": "Rhea", "character_id": "rhea", "voice_name": "Puck",
                                  "voice_profile": "Bright and quick."}],
    "music_and_ambience_cues": [{"cue_name": "Opening", "associated_scenelet_ids": ["scenelet-1"]}],
}


@pytest.mark.parametrize("form", ["wrapped", "camel_wrapped", "unwrapped", "string", "wrapped_string"])
def test_add_wrapped_and_unwrapped(form):
    value = {
        "wrapped": {"audio_design_document": copy.deepcopy(ADD_INNER)},
        "camel_wrapped": {"audioDesignDocument": copy.deepcopy(ADD_INNER)},
        "unwrapped": copy.deepcopy(ADD_INNER),
        "string": json.dumps({"audio_design_document": ADD_INNER}),
        "wrapped_string": {"audio_design_document": json.dumps(ADD_INNER)},
    }[form]
    add = AudioDesignDocument.model_validate(value)
    assert add.narrator_voice_profile["voice_name"] == "Kore"
    assert [p.character_id for p in add.character_voice_profiles] == ["rhea"]
    dumped = add.model_dump()
    assert_kept(ADD_INNER, dumped)
    assert dumped["music_and_ambience_cues"] == ADD_INNER["music_and_ambience_cues"]


def test_sample_add_round_trips():
    doc = sample_story()["audio_design_document"]
    assert "audio_design_document" in doc  # the original stores it wrapped
    assert_kept(doc["audio_design_document"], AudioDesignDocument.model_validate(copy.deepcopy(doc)).model_dump())


def test_add_voice_profile_camel_case_id():
    add = AudioDesignDocument.model_validate({"characterVoiceProfiles": [{"characterId": "rhea"}]})
    assert add.character_voice_profiles[0].character_id == "rhea"


# --- storyboard payload ---------------------------------------------------------------------------


def test_storyboard_payload_exactly_eight_keys():
    payload = StoryboardPayload.model_validate(copy.deepcopy(PAYLOAD))
    assert set(payload.model_dump()) == PAYLOAD_KEYS
    assert len(PAYLOAD_KEYS) == 8
    assert payload.model_dump() == PAYLOAD


@pytest.mark.parametrize("extra", ["dialogue", "generation_prompts", "framing_and_angle", "shotIndex"])
def test_storyboard_payload_rejects_unknown_keys(extra):
    with pytest.raises(ValidationError) as info:
        StoryboardPayload.model_validate({**PAYLOAD, extra: "x"})
    assert extra in str(info.value)
    assert "extra" in str(info.value).lower()


@pytest.mark.parametrize("missing", sorted(PAYLOAD_KEYS - {"referencedDesigns", "audioAndNarrative"}))
def test_storyboard_payload_text_fields_required(missing):
    with pytest.raises(ValidationError, match=missing):
        StoryboardPayload.model_validate({k: v for k, v in PAYLOAD.items() if k != missing})
    with pytest.raises(ValidationError, match=missing):
        StoryboardPayload.model_validate({**PAYLOAD, missing: ""})


@pytest.mark.parametrize("entries", [[""], ["  "], ["rhea", " "]])
def test_referenced_designs_entries_must_be_non_empty_strings(entries):
    with pytest.raises(ValidationError, match="non-empty strings"):
        StoryboardPayload.model_validate({**PAYLOAD, "referencedDesigns": {"characters": entries, "environments": []}})


@pytest.mark.parametrize("entries", [[123], ["rhea", None], "rhea"])
def test_referenced_designs_entries_must_be_strings(entries):
    with pytest.raises(ValidationError, match=r"referencedDesigns\.environments"):
        StoryboardPayload.model_validate({**PAYLOAD, "referencedDesigns": {"characters": [], "environments": entries}})


def test_referenced_designs_absent_lists_empty_and_ids_checked():
    payload = StoryboardPayload.model_validate(
        {**PAYLOAD, "referencedDesigns": {"characters": ["rhea"], "environments": None}})
    assert payload.referenced().characters == ["rhea"]
    assert payload.referenced().environments == []
    for bad, why in (([" rhea "], "surrounding whitespace"), (["../x"], "not path-safe"), (["r"] * 33, "at most 32")):
        with pytest.raises(ValidationError, match=why):
            StoryboardPayload.model_validate({**PAYLOAD, "referencedDesigns": {"characters": bad}})


def test_referenced_designs_rejects_unknown_key():
    with pytest.raises(ValidationError, match="props"):
        StoryboardPayload.model_validate({**PAYLOAD, "referencedDesigns": {"characters": [], "props": ["hat"]}})


def test_legacy_payload_without_referenced_designs():
    legacy = {k: v for k, v in PAYLOAD.items() if k != "referencedDesigns"}
    payload = StoryboardPayload.model_validate(legacy)
    assert payload.referencedDesigns is None
    assert payload.referenced().characters == [] and payload.referenced().environments == []


@pytest.mark.parametrize("entry", [
    {"type": "narration", "source": "narrator", "line": "x", "delivery": "y"},
    {"type": "monologue", "source": "", "line": "x", "delivery": "y"},
    {"type": "monologue", "source": "narrator", "line": "x"},
    {"type": "monologue", "source": "narrator", "line": "x", "delivery": "y", "speaker": "z"},
])
def test_audio_and_narrative_entries_are_strict(entry):
    with pytest.raises(ValidationError):
        StoryboardPayload.model_validate({**PAYLOAD, "audioAndNarrative": [entry]})


# --- table rows ---------------------------------------------------------------------------------

SHOT = {"story_id": "s", "scenelet_ref": "r", "scenelet_id": "scenelet-1", "scenelet_sequence": 1, "shot_index": 1}


def test_shot_row_accepts_payload_as_json_string():
    row = ShotRow.model_validate({**SHOT, "storyboard_payload": json.dumps(PAYLOAD)})
    assert row.storyboard_payload.framingAndAngle == "Wide shot."


@pytest.mark.parametrize(("field", "value"), [("shot_index", 0), ("scenelet_sequence", -1)])
def test_shot_row_positive_integers(field, value):
    with pytest.raises(ValidationError, match=field):
        ShotRow.model_validate({**SHOT, field: value, "storyboard_payload": PAYLOAD})


def test_shot_row_rejects_unknown_column():
    with pytest.raises(ValidationError, match="first_frame_prompt"):
        ShotRow.model_validate({**SHOT, "storyboard_payload": PAYLOAD, "first_frame_prompt": "legacy"})


def test_story_row_documents_from_json_strings_and_generated_column():
    story = sample_story()
    row = StoryRow.model_validate({
        **story,
        "visual_design_document": json.dumps(story["visual_design_document"]),
        "display_name_upper": story["display_name"].upper(),
    })
    assert row.visual_design_document == story["visual_design_document"]


@pytest.mark.parametrize("name", ["", "   "])
def test_story_row_blank_display_name(name):
    with pytest.raises(ValidationError, match="display_name"):
        StoryRow.model_validate({**sample_story(), "display_name": name})


def test_scenelet_row_content_from_string_and_required_description():
    base = {"id": "a", "story_id": "s", "created_at": "2026-01-01T00:00:00+00:00"}
    row = SceneletRow.model_validate({**base, "content": json.dumps({"description": "d", "shotSuggestions": ["x"]})})
    assert row.content.shot_suggestions == ["x"]
    with pytest.raises(ValidationError, match="description"):
        SceneletRow.model_validate({**base, "content": {"dialogue": []}})
