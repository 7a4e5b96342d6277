"""Every name a target has: its file (relative to `apps/story-tree-ui/public/generated/`, the value written to the
story database, without a `generated/` prefix) and its doit task.

    ref:character.<character-id>.<plate-type>-<n>   <story>/visuals/characters/<id>/<plate-type>-<n>.png
    ref:environment.<environment-id>.keyframe_<n>   <story>/visuals/environments/<id>/keyframe_<n>.png
    image:<scenelet-id>_<n>                         <story>/shots/<scenelet-id>/shot-<n>_key_frame.png
    video:<scenelet-id>_<n>                         <story>/shots/<scenelet-id>/shot-<n>.mp4
    shot:<scenelet-id>_<n>                          group: the shot's key frame and video
    story:<story-id>                                group: everything of the story, then its review page
    gallery:<story-id>                              the story's review page
"""

from __future__ import annotations

from .ids import normalize_name_for_path

GENERATED_PREFIXES = ("apps/story-tree-ui/public/generated/", "public/generated/", "generated/")
ASSET_STAGES = ("ref", "image", "video")  # doit's basename groups of the asset tasks


# -- files -----------------------------------------------------------------------------------------
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


# -- tasks -----------------------------------------------------------------------------------------
def shot_key(scenelet_id: str, shot_index: int) -> str:
    return f"{scenelet_id}_{shot_index}"


def plate_task(character_id: str, plate_type: str, n: int) -> str:
    return f"ref:character.{character_id}.{kebab(plate_type)}-{n}"


def keyframe_task(environment_id: str, n: int) -> str:
    return f"ref:environment.{environment_id}.keyframe_{n}"


def image_task(key: str) -> str:
    return f"image:{key}"


def video_task(key: str) -> str:
    return f"video:{key}"


def shot_task(key: str) -> str:
    return f"shot:{key}"


def story_task(story_id: str) -> str:
    return f"story:{story_id}"


def gallery_task(story_id: str) -> str:
    return f"gallery:{story_id}"


def split_task(task: str) -> tuple[str, str]:
    """`image:scenelet-1_1` → ("image", "scenelet-1_1")."""
    basename, _, name = task.partition(":")
    return basename, name


def design_of_reference_task(task: str) -> tuple[str, str] | None:
    """`ref:character.<id>.<plate>` → ("character", id); environments alike; None for other tasks."""
    basename, name = split_task(task)
    kind, _, rest = name.partition(".")
    if basename != "ref" or kind not in ("character", "environment") or "." not in rest:
        return None
    return kind, rest.rsplit(".", 1)[0]
