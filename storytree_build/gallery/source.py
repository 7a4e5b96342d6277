"""What the review page is made from, handed over by the composition root: the manifest, the status of every target,
in-flight operations, this run's failures, reviews, earlier versions, and (lazily, it opens the story store) the story
and its prompts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..building.facts import FactGatherer
from ..core.manifest import Manifest, Target
from ..settings import Settings

if TYPE_CHECKING:
    from ..core.story import StoryView


@dataclass(frozen=True, kw_only=True)
class GallerySource:
    settings: Settings
    manifest: Manifest
    facts: FactGatherer
    provider_name: str
    operations: Callable[[], dict[str, Any]]  # task → store.build_state.Operation of the story
    failures: Callable[[], dict[str, str]]  # task → message, this run
    story_view: Callable[[], StoryView]
    render: Callable[[Target], tuple[str, str | None]]  # (user prompt, system instruction) from the store
    reviews: Callable[[], dict[str, Any]]  # task → review.verdicts.Review of the story
    versions: Callable[[], list[Any]]  # store.build_state.Version of the story's targets, newest first per task
    object_here: Callable[[str], bool]  # is this sha256 in the local object store?
    story_fingerprint: Callable[[], str]  # changes with any story text the page shows
