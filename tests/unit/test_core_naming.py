"""core/naming.py: every file and task name a target has, and how stored paths are read back."""

from __future__ import annotations

import pytest

from storytree_build.core import naming
from storytree_build.core.ids import normalize_name_for_path
from storytree_build.core.errors import InputError

STORY = "5e1f0c2a-7b3d-4c8e-9a61-0d2f4b6c8e10"


# -- files -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("plate_type", "expected"), [
    ("CHARACTER_MODEL_SHEET", "character-model-sheet"),
    ("CHARACTER_ACTION_SHOT", "character-action-shot"),
    ("  Character_Model_Sheet ", "character-model-sheet"),
    ("already-kebab", "already-kebab"),
])
def test_kebab_lowercases_strips_and_dashes_plate_types(plate_type: str, expected: str) -> None:
    assert naming.kebab(plate_type) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("wren-quillfeather", "wren-quillfeather"),
    ("Élan Vital", "elan-vital"),
    ("  Crème   Brûlée  ", "creme-brulee"),
    ("scenelet_2", "scenelet-2"),
    ("Ōsaka 大阪", "osaka-大阪"),  # non-Latin letters are kept, accents stripped
    ("--a..b--", "a-b"),
])
def test_normalize_name_for_path_strips_accents_and_joins_runs_with_one_dash(name: str, expected: str) -> None:
    assert normalize_name_for_path(name) == expected


@pytest.mark.parametrize("name", ["", "   ", "---", "!!"])
def test_normalize_name_for_path_refuses_names_without_letters_or_digits(name: str) -> None:
    with pytest.raises(InputError, match="at least one alphanumeric"):
        normalize_name_for_path(name)


def test_file_names_of_every_target_kind() -> None:
    assert naming.character_plate(STORY, "wren-quillfeather", "CHARACTER_MODEL_SHEET", 1) == \
        f"{STORY}/visuals/characters/wren-quillfeather/character-model-sheet-1.png"
    assert naming.character_plate(STORY, "wren-quillfeather", "CHARACTER_ACTION_SHOT", 2) == \
        f"{STORY}/visuals/characters/wren-quillfeather/character-action-shot-2.png"
    assert naming.environment_keyframe(STORY, "thunderpot-gorge", 3) == \
        f"{STORY}/visuals/environments/thunderpot-gorge/keyframe_3.png"
    assert naming.shot_key_frame(STORY, "scenelet-2", 1) == f"{STORY}/shots/scenelet-2/shot-1_key_frame.png"
    assert naming.shot_video(STORY, "scenelet-2", 1) == f"{STORY}/shots/scenelet-2/shot-1.mp4"


def test_file_names_normalise_ids_with_accents_and_spaces_into_folder_names() -> None:
    assert naming.character_plate(STORY, "Zoë Ärmel", "Character_Model_Sheet", 1) == \
        f"{STORY}/visuals/characters/zoe-armel/character-model-sheet-1.png"
    assert naming.environment_keyframe(STORY, "Café du Nord", 1) == \
        f"{STORY}/visuals/environments/cafe-du-nord/keyframe_1.png"
    assert naming.shot_key_frame(STORY, "Scène Un", 2) == f"{STORY}/shots/scene-un/shot-2_key_frame.png"
    assert naming.shot_video(STORY, "Scène Un", 2) == f"{STORY}/shots/scene-un/shot-2.mp4"


# -- stored values ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("stored", "expected"), [
    ("s/shots/scenelet-1/shot-1.mp4", "s/shots/scenelet-1/shot-1.mp4"),
    ("generated/s/shots/scenelet-1/shot-1.mp4", "s/shots/scenelet-1/shot-1.mp4"),
    ("public/generated/s/a.png", "s/a.png"),
    ("apps/story-tree-ui/public/generated/s/a.png", "s/a.png"),
    ("/generated/s/a.png", "s/a.png"),
    ("//apps/story-tree-ui/public/generated/s/a.png", "s/a.png"),
    ("./generated/s/a.png", "s/a.png"),
    ("generated\\s\\visuals\\a.png", "s/visuals/a.png"),
    ("\\s\\a.png", "s/a.png"),
    ("  generated/s/a.png \n", "s/a.png"),
    ("generated/generated/s/a.png", "generated/s/a.png"),  # only one prefix is the original's
])
def test_from_stored_accepts_prefixes_leading_slashes_and_backslashes(stored: str, expected: str) -> None:
    assert naming.from_stored(stored) == expected


@pytest.mark.parametrize("stored", [None, "", "   ", "\t\n"])
def test_from_stored_reads_none_and_blank_as_no_path(stored: str | None) -> None:
    assert naming.from_stored(stored) is None


# -- tasks -----------------------------------------------------------------------------------------
def test_task_names_of_every_kind() -> None:
    key = naming.shot_key("scenelet-2", 3)
    assert key == "scenelet-2_3"
    assert naming.image_task(key) == "image:scenelet-2_3"
    assert naming.video_task(key) == "video:scenelet-2_3"
    assert naming.shot_task(key) == "shot:scenelet-2_3"
    assert naming.story_task(STORY) == f"story:{STORY}"
    assert naming.gallery_task(STORY) == f"gallery:{STORY}"
    assert naming.plate_task("captain-clank", "CHARACTER_MODEL_SHEET", 1) == \
        "ref:character.captain-clank.character-model-sheet-1"
    assert naming.keyframe_task("thunderpot-gorge", 2) == "ref:environment.thunderpot-gorge.keyframe_2"
    assert naming.ASSET_STAGES == ("ref", "image", "video")


@pytest.mark.parametrize(("task", "expected"), [
    ("image:scenelet-1_1", ("image", "scenelet-1_1")),
    ("ref:character.wren.character-model-sheet-1", ("ref", "character.wren.character-model-sheet-1")),
    (f"story:{STORY}", ("story", STORY)),
    ("image", ("image", "")),
])
def test_split_task_splits_at_the_first_colon(task: str, expected: tuple[str, str]) -> None:
    assert naming.split_task(task) == expected


@pytest.mark.parametrize(("task", "expected"), [
    ("ref:character.wren-quillfeather.character-model-sheet-1", ("character", "wren-quillfeather")),
    ("ref:environment.thunderpot-gorge.keyframe_1", ("environment", "thunderpot-gorge")),
    ("ref:character.v1.2.character-action-shot-2", ("character", "v1.2")),  # ids may contain dots
    (naming.plate_task("captain-clank", "CHARACTER_ACTION_SHOT", 2), ("character", "captain-clank")),
    (naming.keyframe_task("puffwick-cloud-pasture", 3), ("environment", "puffwick-cloud-pasture")),
    ("ref:character.wren", None),  # no plate part
    ("ref:prop.lantern.keyframe_1", None),
    ("image:scenelet-1_1", None),
    ("video:character.wren.x", None),
    ("ref", None),
])
def test_design_of_reference_task(task: str, expected: tuple[str, str] | None) -> None:
    assert naming.design_of_reference_task(task) == expected
