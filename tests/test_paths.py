"""The naming scheme, and readers accepting every stored form the original wrote."""

import pytest

from storytree_build.core import naming as paths


def test_naming_scheme():
    assert paths.character_plate("S", "rhea", "CHARACTER_MODEL_SHEET", 1) == \
        "S/visuals/characters/rhea/character-model-sheet-1.png"
    assert paths.character_plate("S", "rhea", "character_action_shot", 3) == \
        "S/visuals/characters/rhea/character-action-shot-3.png"
    assert paths.environment_keyframe("S", "grove", 2) == "S/visuals/environments/grove/keyframe_2.png"
    assert paths.shot_key_frame("S", "scenelet-3", 4) == "S/shots/scenelet-3/shot-4_key_frame.png"
    assert paths.shot_video("S", "scenelet-3", 4) == "S/shots/scenelet-3/shot-4.mp4"


@pytest.mark.parametrize("stored", [
    "S/shots/scenelet-1/shot-1.mp4",
    "generated/S/shots/scenelet-1/shot-1.mp4",
    "/generated/S/shots/scenelet-1/shot-1.mp4",
    "./generated/S/shots/scenelet-1/shot-1.mp4",
    "apps/story-tree-ui/public/generated/S/shots/scenelet-1/shot-1.mp4",
    "  generated\\S\\shots\\scenelet-1\\shot-1.mp4 ",
])
def test_readers_accept_prefixed_and_unprefixed_values(stored):
    assert paths.from_stored(stored) == "S/shots/scenelet-1/shot-1.mp4"


@pytest.mark.parametrize("stored", [None, "", "   "])
def test_blank_values_mean_no_asset(stored):
    assert paths.from_stored(stored) is None
