"""Fixtures for the fast unit tests of the pure core: no store, no doit, no provider, no files written.

The sample story is read straight from `samples/sample-story.json` (an export has the stored row shapes that
`store/sqlite.py` `load_story` returns), and templates/system prompts come from the repository itself.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storytree_build.core.manifest import DbLocation, Manifest, Target
from storytree_build.core.manifest.build import build_manifest
from storytree_build.core.prompts import PromptRenderer
from storytree_build.core.story import StorySnapshot, StoryView
from storytree_build.settings import Settings
from support.project import REPO, SAMPLE

_SAMPLE_EXPORT: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))


def _view_of(export: dict[str, Any]) -> StoryView:
    """A StoryView of an export, shaped like `SqliteStoryStore.load_story` (rows ordered as the store orders them)."""
    story = export["stories"][0]
    scenelets = sorted((r for r in export["scenelets"] if r["story_id"] == story["id"]),
                       key=lambda r: (r["created_at"], r["id"]))
    shots = sorted((r for r in export["shots"] if r["story_id"] == story["id"]),
                   key=lambda r: (r["scenelet_sequence"], r["scenelet_ref"], r["shot_index"]))
    return StoryView.from_snapshot(StorySnapshot(story=story, scenelets=scenelets, shots=shots))


@pytest.fixture(name="view_of")
def view_of_fixture() -> Callable[[dict[str, Any]], StoryView]:
    """`view_of(export)`: the StoryView of an (edited) export."""
    return _view_of


@pytest.fixture
def export() -> dict[str, Any]:
    """A private deep copy of the sample export: tests may mutate it."""
    return copy.deepcopy(_SAMPLE_EXPORT)


@pytest.fixture(scope="session")
def unit_settings() -> Settings:
    """Default settings over the repository's templates; no storytree.toml, no environment, nothing on disk."""
    nowhere = Path("/nonexistent-storytree-unit")
    return Settings(root=REPO, db_path=nowhere / "story.sqlite", state_dir=nowhere, data_dir=nowhere)


@pytest.fixture(scope="session")
def renderer(unit_settings: Settings) -> PromptRenderer:
    return PromptRenderer(unit_settings.templates_dir, unit_settings.system_prompts_dir)


@pytest.fixture(scope="session")
def sample_view() -> StoryView:
    """Read-only view of the sample story (do not mutate; use `export` + `view_of` for edits)."""
    return _view_of(copy.deepcopy(_SAMPLE_EXPORT))


@pytest.fixture(scope="session")
def sample_manifest(sample_view: StoryView, unit_settings: Settings, renderer: PromptRenderer) -> Manifest:
    return build_manifest(sample_view, unit_settings.generation, renderer)


@pytest.fixture
def make_target() -> Callable[..., Target]:
    """A minimal valid Target; keyword arguments override any field."""

    def make(task: str = "image:scenelet-1_1", **fields: Any) -> Target:
        basename = task.partition(":")[0]
        kind = fields.pop("kind", {"ref": "character_plate", "image": "key_frame", "video": "video"}.get(basename,
                                                                                                         "key_frame"))
        units = ({"video_seconds": 8, "resolution": "1080p"} if kind == "video"
                 else {"images": 1, "image_size": "1K"})
        values: dict[str, Any] = dict(
            task=task, kind=kind, output=f"story/{task.replace(':', '/')}.png",
            db=[DbLocation(column="key_frame_image_path", scenelet_id="scenelet-1", shot_index=1)],
            model="gemini-omni-1.1-flash" if kind == "video" else "gemini-3.1-flash-image",
            config={"aspect_ratio": "16:9"}, template="key_frame.j2", prompt_sha256="p" * 64, units=units)
        values.update(fields)
        return Target(**values)

    return make
