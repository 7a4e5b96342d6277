"""core/prompts.py over the sample story: prompt dispatch per kind, re-rendering manifest targets, reference selection,
and prompts that never change when a build writes paths back into the story."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from storytree_build.core import naming
from storytree_build.core.manifest import Manifest
from storytree_build.core.manifest.build import build_manifest
from storytree_build.core.prompts import (
    PromptRenderer,
    Reference,
    StaleTarget,
    key_frame_references,
    video_references,
)
from storytree_build.core.story import StoryView
from storytree_build.settings import Settings
from support.project import REPO, SAMPLE_ID

ViewOf = Callable[[dict[str, Any]], StoryView]
WREN, CLANK, SHEPHERD = "wren-quillfeather", "captain-clank", "the-cloud-shepherd"
WORKSHOP, PASTURE, GORGE = "quillfeather-rooftop-workshop", "puffwick-cloud-pasture", "thunderpot-gorge"


def sheet(cid: str) -> Reference:
    return Reference("CHARACTER", cid, naming.character_plate(SAMPLE_ID, cid, "CHARACTER_MODEL_SHEET", 1),
                     naming.plate_task(cid, "CHARACTER_MODEL_SHEET", 1))


def keyframe(eid: str) -> Reference:
    return Reference("ENVIRONMENT", eid, naming.environment_keyframe(SAMPLE_ID, eid, 1), naming.keyframe_task(eid, 1))


def own_key_frame(scenelet_id: str, n: int) -> Reference:
    key = naming.shot_key(scenelet_id, n)
    return Reference("KEY_FRAME", key, naming.shot_key_frame(SAMPLE_ID, scenelet_id, n), naming.image_task(key))


def shot_row(export: dict[str, Any], scenelet_id: str, n: int) -> dict[str, Any]:
    return next(s for s in export["shots"] if s["scenelet_id"] == scenelet_id and s["shot_index"] == n)


# -- for_kind: which prompt each kind of target gets ------------------------------------------------
@pytest.mark.parametrize("kind", ["character_plate", "environment_keyframe"])
def test_plates_and_keyframes_are_drawn_from_their_own_stripped_prompt(renderer: PromptRenderer,
                                                                       sample_view: StoryView, kind: str) -> None:
    prompt = renderer.for_kind(sample_view, kind, plate_prompt="  A copper rooster on a plain cream background.\n")
    assert prompt.template == "visual_reference.j2"
    assert "A copper rooster on a plain cream background." in prompt.user
    assert "  A copper rooster" not in prompt.user and "background.\n\n" not in prompt.user
    assert prompt.system is None and prompt.system_file is None
    other = renderer.for_kind(sample_view, kind, plate_prompt="A brass lantern.")
    assert other.sha256 != prompt.sha256


def test_key_frame_prompt_has_the_shot_images_system_prompt_and_lists_its_references(
        renderer: PromptRenderer, sample_view: StoryView) -> None:
    shot = sample_view.shot("scenelet-2", 3)
    prompt = renderer.for_kind(sample_view, "key_frame", shot=shot)
    assert prompt.template == "key_frame.j2"
    assert prompt.system_file == "create_shot_images.md"
    assert prompt.system == (REPO / "system_prompts" / "create_shot_images.md").read_text(encoding="utf-8")
    assert f"- Image 1: character model sheet for {WREN}\n" in prompt.user
    assert f"- Image 2: character model sheet for {SHEPHERD}\n" in prompt.user
    assert f"- Image 3: environment keyframe for {PASTURE}\n" in prompt.user
    assert "Image 4" not in prompt.user
    assert shot.raw_payload["cameraDynamics"] in prompt.user
    assert "audioAndNarrative" not in prompt.user  # the key frame is a still: no lines


def test_key_frame_prompt_follows_the_reference_cap(renderer: PromptRenderer, sample_view: StoryView) -> None:
    shot = sample_view.shot("scenelet-2", 3)
    capped = renderer.for_kind(sample_view, "key_frame", shot=shot, max_key_frame_references=1)
    assert f"Image 1: character model sheet for {WREN}" in capped.user and "Image 2" not in capped.user
    assert capped.sha256 != renderer.for_kind(sample_view, "key_frame", shot=shot).sha256


def test_video_prompt_is_one_pretty_json_document(renderer: PromptRenderer, sample_view: StoryView) -> None:
    shot = sample_view.shot("scenelet-3", 1)  # references the shepherd before wren (the VDD has them the other way)
    prompt = renderer.for_kind(sample_view, "video", shot=shot)
    assert prompt.template == "video.j2" and prompt.system is None
    document = json.loads(prompt.user)
    assert list(document) == ["global_aesthetic", "character_designs", "environment_designs", "audio_design",
                              "storyboard_payload", "critical_instruction"]
    assert prompt.user == json.dumps(document, ensure_ascii=False, indent=2)
    assert [d["character_id"] for d in document["character_designs"]] == [SHEPHERD, WREN]
    assert [d["environment_id"] for d in document["environment_designs"]] == [PASTURE]
    assert document["storyboard_payload"] == shot.raw_payload


def test_key_frame_and_video_prompts_differ(renderer: PromptRenderer, sample_view: StoryView) -> None:
    shot = sample_view.shot("scenelet-1", 1)
    assert renderer.for_kind(sample_view, "key_frame", shot=shot).sha256 != \
        renderer.for_kind(sample_view, "video", shot=shot).sha256


def test_unknown_kind_is_refused(renderer: PromptRenderer, sample_view: StoryView) -> None:
    with pytest.raises(ValueError, match="unknown target kind 'audio'"):
        renderer.for_kind(sample_view, "audio", shot=sample_view.shots[0])


# -- for_target: the builder re-renders exactly what the manifest hashed ---------------------------
def test_for_target_re_renders_every_manifest_prompt_hash(renderer: PromptRenderer, sample_view: StoryView,
                                                          sample_manifest: Manifest) -> None:
    kinds = {t.kind for t in sample_manifest.targets}
    assert kinds == {"character_plate", "environment_keyframe", "key_frame", "video"}
    assert len(sample_manifest.targets) == 12 + 2 * len(sample_view.shots)
    for target in sample_manifest.targets:
        prompt = renderer.for_target(sample_view, target)
        assert (prompt.sha256, prompt.template, prompt.system_file) == \
            (target.prompt_sha256, target.template, target.system_prompt), target.task
    assert len({t.prompt_sha256 for t in sample_manifest.targets}) == len(sample_manifest.targets)


def test_for_target_raises_stale_target_when_the_shot_is_gone(renderer: PromptRenderer, sample_manifest: Manifest,
                                                              export: dict, view_of: ViewOf) -> None:
    export["shots"].remove(shot_row(export, "scenelet-5", 2))
    view = view_of(export)
    targets = sample_manifest.by_task()
    for task in ("image:scenelet-5_2", "video:scenelet-5_2"):
        with pytest.raises(StaleTarget, match="shot no longer exists"):
            renderer.for_target(view, targets[task])
    assert renderer.for_target(view, targets["image:scenelet-5_1"]).sha256 == \
        targets["image:scenelet-5_1"].prompt_sha256


def test_for_target_raises_stale_target_when_the_plate_is_gone(renderer: PromptRenderer, sample_manifest: Manifest,
                                                               export: dict, view_of: ViewOf) -> None:
    vrp = export["stories"][0]["visual_reference_package"]
    del vrp["character_model_sheets"][0]["reference_plates"][1]
    del vrp["environment_keyframes"][2]["keyframes"][1]
    view = view_of(export)
    targets = sample_manifest.by_task()
    for task in (f"ref:character.{WREN}.character-action-shot-1", f"ref:environment.{GORGE}.keyframe_2"):
        with pytest.raises(StaleTarget, match="plate no longer exists"):
            renderer.for_target(view, targets[task])
    kept = targets[f"ref:character.{WREN}.character-model-sheet-1"]
    assert renderer.for_target(view, kept).sha256 == kept.prompt_sha256


def test_for_target_raises_stale_target_when_a_plate_path_names_a_key(renderer: PromptRenderer,
                                                                      sample_manifest: Manifest,
                                                                      sample_view: StoryView) -> None:
    """A hand-edited manifest whose plate path names a key where the package holds a list: stale, not a crash."""
    plate = sample_manifest.by_task()[f"ref:character.{WREN}.character-model-sheet-1"]
    location = plate.db[0]
    assert location.path is not None and isinstance(location.path[1], int)
    keyed = plate.model_copy(update={"db": [location.model_copy(update={"path": [location.path[0], "0",
                                                                                 *location.path[2:]]})]})
    with pytest.raises(StaleTarget, match="plate no longer exists"):
        renderer.for_target(sample_view, keyed)


def test_for_target_raises_stale_target_without_a_reference_package(renderer: PromptRenderer,
                                                                    sample_manifest: Manifest, export: dict,
                                                                    view_of: ViewOf) -> None:
    export["stories"][0]["visual_reference_package"] = None
    with pytest.raises(StaleTarget, match="visual reference package is gone"):
        renderer.for_target(view_of(export), sample_manifest.by_task()[f"ref:environment.{GORGE}.keyframe_1"])


# -- reference selection ---------------------------------------------------------------------------
@pytest.mark.parametrize(("scenelet", "n", "expected"), [
    ("scenelet-1", 1, [keyframe(WORKSHOP)]),
    ("scenelet-2", 1, [sheet(CLANK), keyframe(PASTURE)]),
    ("scenelet-3", 1, [sheet(SHEPHERD), sheet(WREN), keyframe(PASTURE)]),  # referencedDesigns order, not VDD order
    ("scenelet-2", 2, [sheet(CLANK), sheet(WREN), keyframe(PASTURE)]),
])
def test_key_frame_references_are_model_sheets_then_environment_keyframes(
        sample_view: StoryView, scenelet: str, n: int, expected: list[Reference]) -> None:
    assert key_frame_references(sample_view, sample_view.shot(scenelet, n), 5) == expected


def test_key_frame_references_are_capped_in_priority_order(export: dict, view_of: ViewOf, unit_settings: Settings,
                                                           renderer: PromptRenderer) -> None:
    shot_row(export, "scenelet-2", 1)["storyboard_payload"]["referencedDesigns"] = {
        "characters": [SHEPHERD, WREN, CLANK, WREN], "environments": [GORGE, PASTURE, WORKSHOP]}
    view = view_of(export)
    shot = view.shot("scenelet-2", 1)
    everything = [sheet(SHEPHERD), sheet(WREN), sheet(CLANK), keyframe(GORGE), keyframe(PASTURE), keyframe(WORKSHOP)]
    assert key_frame_references(view, shot, 10) == everything  # a repeated design is sent once
    assert key_frame_references(view, shot, 5) == everything[:5]
    assert key_frame_references(view, shot, 2) == everything[:2]
    # the manifest applies settings.generation.max_key_frame_references (default 5)
    assert unit_settings.generation.max_key_frame_references == 5
    manifest = build_manifest(view, unit_settings.generation, renderer)
    image = manifest.by_task()["image:scenelet-2_1"]
    assert [r.task for r in image.references] == [r.task for r in everything[:5]]
    assert image.depends_on == sorted(r.task for r in everything[:5])


def test_manifest_cap_comes_from_settings(sample_view: StoryView, unit_settings: Settings,
                                          renderer: PromptRenderer) -> None:
    settings = unit_settings.model_copy(deep=True)
    settings.generation.max_key_frame_references = 1
    manifest = build_manifest(sample_view, settings.generation, renderer)
    image = manifest.by_task()["image:scenelet-3_1"]
    assert [r.task for r in image.references] == [sheet(SHEPHERD).task]
    assert renderer.for_target(sample_view, image, max_key_frame_references=1).sha256 == image.prompt_sha256


@pytest.mark.parametrize(("scenelet", "n", "limit", "expected"), [
    ("scenelet-1", 1, 3, [keyframe(WORKSHOP), own_key_frame("scenelet-1", 1)]),
    ("scenelet-2", 1, 3, [sheet(CLANK), keyframe(PASTURE), own_key_frame("scenelet-2", 1)]),
    ("scenelet-2", 2, 3, [sheet(CLANK), sheet(WREN), keyframe(PASTURE)]),  # no slot left for the key frame
    ("scenelet-2", 1, 2, [sheet(CLANK), keyframe(PASTURE)]),
    ("scenelet-2", 2, 2, [sheet(CLANK), sheet(WREN)]),
    ("scenelet-1", 1, 1, [keyframe(WORKSHOP)]),
    ("scenelet-2", 2, 4, [sheet(CLANK), sheet(WREN), keyframe(PASTURE), own_key_frame("scenelet-2", 2)]),
])
def test_video_references_end_with_the_key_frame_while_slots_remain(
        sample_view: StoryView, scenelet: str, n: int, limit: int, expected: list[Reference]) -> None:
    assert video_references(sample_view, sample_view.shot(scenelet, n), limit) == expected


def test_shot_without_referenced_designs_has_only_its_key_frame_for_video(export: dict, view_of: ViewOf,
                                                                          renderer: PromptRenderer) -> None:
    del shot_row(export, "scenelet-1", 2)["storyboard_payload"]["referencedDesigns"]
    view = view_of(export)
    shot = view.shot("scenelet-1", 2)
    assert key_frame_references(view, shot, 5) == []
    assert video_references(view, shot, 3) == [own_key_frame("scenelet-1", 2)]
    assert "No reference images are attached" in renderer.for_kind(view, "key_frame", shot=shot).user


def test_manifest_video_targets_depend_on_their_key_frame(sample_manifest: Manifest) -> None:
    for target in sample_manifest.targets:
        if target.kind == "video":
            own = naming.image_task(target.task.partition(":")[2])
            assert set(target.depends_on) == {r.task for r in target.references} | {own}, target.task


# -- paths written back never change a prompt -------------------------------------------------------
def write_back_paths(export: dict[str, Any], camel: bool) -> None:
    story = export["stories"][0]
    vdd, vrp = story["visual_design_document"], story["visual_reference_package"]
    for design in vdd["character_designs"]:
        key = "characterModelSheetImagePath" if camel else "character_model_sheet_image_path"
        design[key] = f"{SAMPLE_ID}/visuals/characters/{design['character_id']}/character-model-sheet-1.png"
    for design in vdd["environment_designs"]:
        key = "environmentReferenceImagePath" if camel else "environment_reference_image_path"
        design[key] = f"generated/{SAMPLE_ID}/visuals/environments/{design['environment_id']}/keyframe_1.png"
    for entry in vrp["character_model_sheets"]:
        for n, plate in enumerate(entry["reference_plates"]):
            plate["image_path"] = f"{SAMPLE_ID}/visuals/characters/{entry['character_id']}/plate-{n}.png"
    for entry in vrp["environment_keyframes"]:
        for n, frame in enumerate(entry["keyframes"]):
            frame["image_path"] = f"{SAMPLE_ID}/visuals/environments/{entry['environment_id']}/keyframe_{n + 1}.png"
    for shot in export["shots"]:
        shot["key_frame_image_path"] = naming.shot_key_frame(SAMPLE_ID, shot["scenelet_id"], shot["shot_index"])
        shot["video_file_path"] = naming.shot_video(SAMPLE_ID, shot["scenelet_id"], shot["shot_index"])


@pytest.mark.parametrize("camel", [False, True], ids=["snake_case", "camelCase"])
def test_paths_written_back_change_no_prompt_hash(export: dict, view_of: ViewOf, unit_settings: Settings,
                                                  renderer: PromptRenderer, sample_manifest: Manifest,
                                                  camel: bool) -> None:
    write_back_paths(export, camel)
    view = view_of(export)
    assert view.problems == []
    after = build_manifest(view, unit_settings.generation, renderer)
    before = {t.task: t.prompt_sha256 for t in sample_manifest.targets}
    assert {t.task: t.prompt_sha256 for t in after.targets} == before
    assert after == sample_manifest  # nothing a build writes back is in the manifest at all
    for target in sample_manifest.targets:
        assert renderer.for_target(view, target).sha256 == target.prompt_sha256, target.task


def test_a_design_edit_does_change_the_prompts_of_shots_using_it(export: dict, view_of: ViewOf,
                                                                  unit_settings: Settings, renderer: PromptRenderer,
                                                                  sample_manifest: Manifest) -> None:
    """The control for the test above: the same comparison notices a real change."""
    design = next(d for d in export["stories"][0]["visual_design_document"]["character_designs"]
                  if d["character_id"] == SHEPHERD)
    design["role"] += " He hums while he walks."
    after = build_manifest(view_of(export), unit_settings.generation, renderer).by_task()
    changed = {t.task for t in sample_manifest.targets if after[t.task].prompt_sha256 != t.prompt_sha256}
    assert changed == {"image:scenelet-2_3", "video:scenelet-2_3", "image:scenelet-3_1", "video:scenelet-3_1"}
