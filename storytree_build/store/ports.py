"""The `StoryStore` port: what the build runner needs from a story database, and nothing more.

Mutators are atomic primitives (set one JSON path, set one shot column); no adapter ever writes a
whole document back, so concurrent writers cannot lose each other's updates.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

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


class RowOwner(NamedTuple):
    """The story a stored scenelet or shot row belongs to."""

    story_id: str
    display_name: str


ROW_TABLES = ("scenelets", "shots")


class StoryStore(Protocol):
    def list_story_ids(self) -> list[str]: ...

    def load_story(self, story_id: str) -> StorySnapshot:
        """Raise InputError naming the id when no such story exists."""
        ...

    def fingerprint(self, story_id: str) -> str:
        """A digest that changes whenever any row of the story changes (the review page shows story text)."""
        ...

    def manifest_fingerprint(self, story_id: str) -> str:
        """A digest of what a manifest is made from: every row of the story except what a build writes back (asset
        paths, `updated_at`), so a build's own write-back leaves it as it was ('' for an id that cannot exist)."""
        ...

    def import_rows(self, export: dict[str, list[dict[str, Any]]]) -> None:
        """Upsert every row in one transaction (rows were validated by the caller)."""
        ...

    def row_owners(self, table: str, row_ids: list[str]) -> dict[str, RowOwner]:
        """The story each of `row_ids` belongs to, for the ids stored in `table` ("scenelets" or "shots")."""
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


# What a build writes back into a story (see core/manifest/build.py, the targets' `db`): never a manifest input, so
# `manifest_fingerprint` leaves it out. Mirrored in SQL by `storytree_manifest_fingerprint` (migration 000019).
WRITTEN_BACK_DOCUMENTS = ("visual_design_document", "visual_reference_package")
WRITTEN_BACK_KEYS = frozenset({"image_path", "character_model_sheet_image_path", "environment_reference_image_path"})
WRITTEN_BACK_SHOT_COLUMNS = ("key_frame_image_path", "video_file_path")


def without_written_back(document: Any) -> Any:
    """The document without the keys a build writes back, at any depth."""
    if isinstance(document, dict):
        return {k: without_written_back(v) for k, v in document.items() if k not in WRITTEN_BACK_KEYS}
    if isinstance(document, list):
        return [without_written_back(item) for item in document]
    return document


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


def same_id(stored: Any, incoming: Any) -> bool:
    """Equal ids; uuids compare by value (Postgres answers `5E1F…` as `5e1f…`)."""
    if stored == incoming:
        return True
    try:
        return uuid.UUID(str(stored)) == uuid.UUID(str(incoming))
    except ValueError:
        return False


def row_label(table: str, index: int, row: dict[str, Any]) -> str:
    """How import messages name a row: `scenelets[2] (id '…')`, `shots[7] ('scenelet-3' #2, id '…')`."""
    if table == "shots":
        return f"shots[{index}] ({row.get('scenelet_id')!r} #{row.get('shot_index')!r}, id {row.get('id')!r})"
    return f"{table}[{index}] (id {row.get('id')!r})"


def foreign_row_problems(export: dict[str, list[dict[str, Any]]],
                         owners: dict[tuple[str, str], RowOwner]) -> list[str]:
    """One line per scenelet or shot row whose id belongs to another story (`owners`: (table, row id) -> owner),
    then the fix once. Upserting such a row would move it out of its story, taking its paid paths along."""
    problems: list[str] = []
    owner_ids: list[str] = []
    for table in ROW_TABLES:
        for index, row in enumerate(export.get(table, [])):
            owner = owners.get((table, str(row.get("id"))))
            if row.get("id") is None or owner is None or same_id(owner.story_id, row.get("story_id")):
                continue
            problems.append(f"{row_label(table, index, row)}: belongs to story {owner.story_id} "
                            f"({owner.display_name!r}), not to story {row.get('story_id')}")
            if owner.story_id not in owner_ids:
                owner_ids.append(owner.story_id)
    if problems:
        problems.append("an import never moves rows out of another story: give the copy fresh row ids "
                        "(`storytree import --new-ids FILE`), or import it into story "
                        f"{' / '.join(owner_ids)} (the story that owns those rows)")
    return problems
