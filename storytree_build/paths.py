"""The asset naming scheme. Paths are relative to the assets root `apps/story-tree-ui/public/generated/`;
that relative form (no `generated/` prefix) is what goes into the story database."""

from __future__ import annotations

from .ids import normalize_name_for_path

GENERATED_PREFIXES = ("apps/story-tree-ui/public/generated/", "public/generated/", "generated/")


def kebab(plate_type: str) -> str:
    return plate_type.strip().lower().replace("_", "-")


def character_plate(story_id: str, character_id: str, plate_type: str, n: int) -> str:
    return f"{story_id}/visuals/characters/{normalize_name_for_path(character_id)}/{kebab(plate_type)}-{n}.png"


def environment_keyframe(story_id: str, environment_id: str, n: int) -> str:
    return f"{story_id}/visuals/environments/{normalize_name_for_path(environment_id)}/keyframe_{n}.png"


def shot_key_frame(story_id: str, scenelet_id: str, shot_index: int) -> str:
    return f"{story_id}/shots/{normalize_name_for_path(scenelet_id)}/shot-{shot_index}_key_frame.png"


def shot_video(story_id: str, scenelet_id: str, shot_index: int) -> str:
    return f"{story_id}/shots/{normalize_name_for_path(scenelet_id)}/shot-{shot_index}.mp4"


def from_stored(value: str | None) -> str | None:
    """Readers accept the original's `generated/`-prefixed values, leading slashes and backslashes."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip().replace("\\", "/")
    while text.startswith("./") or text.startswith("/"):
        text = text[2:] if text.startswith("./") else text[1:]
    for prefix in GENERATED_PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix):]
    return text
