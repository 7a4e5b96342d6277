"""The `StoryStore` port: what the build runner needs from a story database, and nothing more.

Mutators are atomic primitives (set one JSON path, set one shot column); no adapter ever writes a
whole document back, so concurrent writers cannot lose each other's updates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..core.columns import DOCUMENT_COLUMNS, SHOT_PATH_COLUMNS

if TYPE_CHECKING:
    from ..core.story import StorySnapshot

JsonPath = list[str | int]

# The original schema's columns (facts doc §1.2), shared by every adapter.
STORY_COLS = ["id", "display_name", "initial_prompt", *DOCUMENT_COLUMNS, "created_at", "updated_at"]
SCENELET_COLS = [
    "id", "story_id", "parent_id", "choice_label_from_parent", "choice_prompt", "content",
    "is_branch_point", "is_terminal_node", "branch_audio_file_path", "created_at",
]
SHOT_COLS = [
    "id", "story_id", "scenelet_ref", "scenelet_id", "scenelet_sequence", "shot_index", "storyboard_payload",
    "key_frame_image_path", "audio_file_path", "video_file_path", "created_at", "updated_at",
]


class StoryStore(Protocol):
    def list_story_ids(self) -> list[str]: ...

    def load_story(self, story_id: str) -> StorySnapshot:
        """Raise InputError naming the id when no such story exists."""
        ...

    def fingerprint(self, story_id: str) -> str:
        """A digest that changes whenever any row of the story changes (the review page shows story text)."""
        ...

    def import_rows(self, export: dict[str, list[dict[str, Any]]]) -> None:
        """Upsert every row in one transaction (rows were validated by the caller)."""
        ...

    def set_document_path(self, story_id: str, column: str, path: JsonPath, value: Any) -> None:
        """Atomically set one JSON path inside one story document column."""
        ...

    def set_shot_path(self, story_id: str, scenelet_id: str, shot_index: int, column: str, value: str | None) -> None:
        """Set one asset-path column of one shot."""
        ...

    def close(self) -> None: ...


# Keys that say which design or plate a document entry is: entries whose identities differ are never merged.
IDENTITY_KEYS = ("character_id", "characterId", "environment_id", "environmentId", "type", "plate_type",
                 "character_name", "characterName", "environment_name", "environmentName")


def is_path_key(key: str) -> bool:
    return key.endswith("_path") or key.endswith("Path")


def _filled(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def keep_asset_paths(stored: Any, incoming: Any) -> Any:
    """`incoming` with every asset path that `stored` has and `incoming` lacks (missing, null or blank) kept: an
    import never erases what a build wrote back. Lists are matched by position, and entries only when their identity
    keys agree. Mirrored in SQL by `storytree_keep_asset_paths` (supabase/migrations/000013_import_story_rows.sql)."""
    if isinstance(stored, dict) and isinstance(incoming, dict):
        if any(k in stored and k in incoming and stored[k] != incoming[k] for k in IDENTITY_KEYS):
            return incoming
        merged = dict(incoming)
        for key, value in stored.items():
            if is_path_key(key) and _filled(value) and not _filled(incoming.get(key)):
                merged[key] = value
            elif isinstance(incoming.get(key), (dict, list)):
                merged[key] = keep_asset_paths(value, incoming[key])
        return merged
    if isinstance(stored, list) and isinstance(incoming, list):
        return [keep_asset_paths(stored[i], item) if i < len(stored) else item for i, item in enumerate(incoming)]
    return incoming


def check_document_column(column: str) -> None:
    if column not in DOCUMENT_COLUMNS:
        raise ValueError(f"{column!r} is not a story document column ({', '.join(DOCUMENT_COLUMNS)})")


def check_shot_column(column: str) -> None:
    if column not in SHOT_PATH_COLUMNS:
        raise ValueError(f"{column!r} is not a shot path column ({', '.join(SHOT_PATH_COLUMNS)})")
