"""The per-story manifest: every target file of a story and every input that decides whether it is current.

One target per output file with its names, database locations, model, config, prompt hash, references and cost
units. It never contains anything a build writes back, so regenerating it right after a build gives the same
manifest. Made by `build.py`; read and written by `file.py`.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


SCHEMA_VERSION = 1
TargetKind = Literal["character_plate", "environment_keyframe", "key_frame", "video"]
_CLOSED = ConfigDict(extra="forbid")
TEXT_ONLY = "text-only (no referenced designs)"  # how the dry-run and the review page mark such a shot's targets


class DbLocation(BaseModel):
    """Where a target's relative path is written: a JSON path in a story document, or a shot column."""

    model_config = _CLOSED
    column: str
    path: list[str | int] | None = None
    scenelet_id: str | None = None
    shot_index: int | None = None


class ShotKey(BaseModel):
    model_config = _CLOSED
    scenelet_id: str
    shot_index: int
    scenelet_ref: str


class ReferenceEntry(BaseModel):
    model_config = _CLOSED
    kind: str
    id: str
    path: str
    task: str


class Target(BaseModel):
    model_config = _CLOSED
    task: str
    kind: TargetKind
    output: str
    db: list[DbLocation]
    model: str
    config: dict[str, Any]
    template: str
    system_prompt: str | None = None
    prompt_sha256: str
    references: list[ReferenceEntry] = []
    depends_on: list[str] = []
    units: dict[str, Any]
    shot: ShotKey | None = None

    @property
    def text_only(self) -> bool:
        """A shot's target with no design references (its shot references no designs, or is a legacy shot without
        `referencedDesigns`): the key frame is drawn from text alone, the video has only its own key frame."""
        return self.shot is not None and all(ref.kind == "KEY_FRAME" for ref in self.references)


def index_by_task(targets: list[Target]) -> dict[str, Target]:
    return {t.task: t for t in targets}


class Manifest(BaseModel):
    model_config = _CLOSED
    schema_version: int = SCHEMA_VERSION
    story_id: str
    display_name: str
    targets: list[Target]

    @functools.cached_property
    def _index(self) -> dict[str, Target]:
        return index_by_task(self.targets)

    def by_task(self) -> dict[str, Target]:
        """The targets by task, indexed once per manifest (the review page looks one up for every reference: a new
        index per call was quadratic at 20,000 targets). A manifest is not changed once made; the index is shared, so
        callers must not change it either."""
        return self._index


def summary(manifest: Manifest) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in manifest.targets:
        counts[t.kind] = counts.get(t.kind, 0) + 1
    return counts
