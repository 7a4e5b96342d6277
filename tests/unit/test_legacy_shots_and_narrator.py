"""The briefs, exactly: a shot without `referencedDesigns` (a legacy shot) is drawn from its text alone and its video
has only its own key frame; a referenced design without its image is still refused, naming the expected path; a
narrator line selects the narrator voice profile only, never a character's whose id is `narrator`."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from storytree_build.core.errors import InputError
from storytree_build.core.manifest import Manifest
from storytree_build.core.manifest.build import build_manifest
from storytree_build.core.prompts import PromptRenderer
from storytree_build.core.story import StoryView
from storytree_build.settings import Settings
from support.project import SAMPLE_ID

ViewOf = Callable[[dict[str, Any]], StoryView]
LEGACY = ("scenelet-5", 3)


def shot_row(export: dict[str, Any], scenelet_id: str, n: int) -> dict[str, Any]:
    return next(s for s in export["shots"] if (s["scenelet_id"], s["shot_index"]) == (scenelet_id, n))


def with_legacy_shot(export: dict[str, Any], designs: Any = "absent") -> dict[str, Any]:
    """The sample plus one more shot of scenelet-5 whose payload does not say which designs it shows."""
    row = copy.deepcopy(shot_row(export, "scenelet-5", 2))
    row.update(id="c0ffee00-0000-4000-8000-000000000053", shot_index=3)
    payload = row["storyboard_payload"]
    payload["compositionAndContent"] = "The gorge at dusk, empty, pots cooling."
    payload["audioAndNarrative"] = [{"type": "monologue", "source": "narrator", "line": "And all was quiet.",
                                     "delivery": "Soft."}]
    del payload["referencedDesigns"]
    if designs != "absent":
        payload["referencedDesigns"] = designs
    export["shots"].append(row)
    return export


def manifest_of(view: StoryView, settings: Settings, renderer: PromptRenderer) -> Manifest:
    return build_manifest(view, settings.generation, renderer)


@pytest.mark.parametrize("designs", ["absent", None, {"characters": [], "environments": []}],
                         ids=["absent", "null", "empty-lists"])
def test_a_shot_without_referenced_designs_is_built_from_text_alone(
        export: dict[str, Any], view_of: ViewOf, unit_settings: Settings, renderer: PromptRenderer,
        sample_manifest: Manifest, designs: Any) -> None:
    view = view_of(with_legacy_shot(export, designs))
    manifest = manifest_of(view, unit_settings, renderer)
    targets = manifest.by_task()
    frame, video = targets["image:scenelet-5_3"], targets["video:scenelet-5_3"]
    assert frame.references == [] and frame.depends_on == [] and frame.text_only
    assert [(r.kind, r.path) for r in video.references] == [("KEY_FRAME", frame.output)] and video.text_only
    assert video.depends_on == ["image:scenelet-5_3"]
    prompt = renderer.for_target(view, frame)
    assert "No reference images are attached: work from the description alone." in prompt.user
    assert "Attached reference images" not in prompt.user
    document = json.loads(renderer.for_target(view, video).user)
    assert document["character_designs"] == [] and document["environment_designs"] == []
    # Every other target is exactly what the sample's manifest has: nothing else moved.
    others = [t for t in manifest.targets if t.task not in ("image:scenelet-5_3", "video:scenelet-5_3")]
    assert others == sample_manifest.targets
    assert not any(t.text_only for t in sample_manifest.targets)


def test_a_referenced_character_without_a_model_sheet_is_still_refused_with_the_expected_path(
        export: dict[str, Any], view_of: ViewOf, unit_settings: Settings, renderer: PromptRenderer) -> None:
    story = export["stories"][0]
    sheets = story["visual_reference_package"]["character_model_sheets"]
    clank = next(s for s in sheets if s["character_id"] == "captain-clank")
    clank["reference_plates"] = [p for p in clank["reference_plates"] if p["type"] != "CHARACTER_MODEL_SHEET"]
    with pytest.raises(InputError) as info:
        manifest_of(view_of(export), unit_settings, renderer)
    expected = f"{SAMPLE_ID}/visuals/characters/captain-clank/character-model-sheet-1.png"
    lines = [line for line in str(info.value).splitlines() if line.startswith("  - shot scenelet-")]
    assert lines and all("character 'captain-clank'" in line and f"(expected {expected})" in line for line in lines)


# -- the narrator is never a character -----------------------------------------------------------------------------
def narrator_character_story(export: dict[str, Any]) -> dict[str, Any]:
    """A story whose visual design document has a character with the id `narrator` (with a voice profile of its
    own), referenced by a shot whose only line is the narrator's."""
    story = export["stories"][0]
    vdd = story["visual_design_document"]
    wren = next(c for c in vdd["character_designs"] if c["character_id"] == "wren-quillfeather")
    vdd["character_designs"].append({**copy.deepcopy(wren), "character_id": "narrator", "character_name": "Narrator"})
    sheets = story["visual_reference_package"]["character_model_sheets"]
    wren_sheet = next(s for s in sheets if s["character_id"] == "wren-quillfeather")
    sheets.append({**copy.deepcopy(wren_sheet), "character_id": "narrator"})
    add = story["audio_design_document"]["audio_design_document"]
    add["character_voice_profiles"].append({"character_name": "Narrator", "character_id": "narrator",
                                            "voice_name": "Fenrir", "voice_profile": "A character's own voice."})
    payload = shot_row(export, "scenelet-5", 2)["storyboard_payload"]
    payload["referencedDesigns"] = {"characters": ["narrator", "wren-quillfeather"], "environments": []}
    payload["audioAndNarrative"] = [line for line in payload["audioAndNarrative"] if line["source"] == "narrator"]
    return export


def test_a_narrator_line_selects_only_the_narrator_voice_profile(
        export: dict[str, Any], view_of: ViewOf, renderer: PromptRenderer) -> None:
    view = view_of(narrator_character_story(export))
    audio = json.loads(renderer.for_kind(view, "video", shot=view.shot("scenelet-5", 2)).user)["audio_design"]
    assert audio["narrator_voice_profile"]["voice_name"] == "Charon"
    assert audio["character_voice_profiles"] == []  # neither the `narrator` character's nor wren's (no line)
    assert "Fenrir" not in json.dumps(audio)


def test_a_character_with_a_line_of_its_own_keeps_its_voice_profile(
        export: dict[str, Any], view_of: ViewOf, renderer: PromptRenderer) -> None:
    view = view_of(export)
    audio = json.loads(renderer.for_kind(view, "video", shot=view.shot("scenelet-5", 2)).user)["audio_design"]
    assert [p["character_id"] for p in audio["character_voice_profiles"]] == ["wren-quillfeather", "captain-clank"]
    assert audio["narrator_voice_profile"]["voice_name"] == "Charon"
