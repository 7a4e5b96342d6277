"""Writing a story's manifest: the story and its reviewers' notes, read from the store, become
`manifests/<story-id>.yaml` (and the JSON cache the next build reads instead of the YAML)."""

from __future__ import annotations

from .files.atomic import private_folder, write_text_atomic
from .core.manifest import Manifest
from .core.manifest.build import build_manifest
from .core.prompts import PromptRenderer
from .core.manifest.file import dump_manifest, manifest_path, remember_manifest
from .core.story import StoryView
from .settings import Settings
from .store import StoryStore, open_reviews, open_store
from .review.verdicts import director_notes


def load_view(settings: Settings, store: StoryStore, story_id: str, notes: dict[str, str] | None = None) -> StoryView:
    """The story as prompts see it: its rows plus the standing director's notes of its key frames (read from the
    store unless given)."""
    if notes is None:
        reviews = open_reviews(settings, lambda: store)
        try:
            notes = director_notes(reviews.reviews(story_id))
        finally:
            reviews.close()
    return StoryView.from_snapshot(store.load_story(story_id), notes)


def render_manifest(settings: Settings, story_id: str, store: StoryStore | None = None,
                    notes: dict[str, str] | None = None) -> tuple[str, Manifest]:
    own = store is None
    store = store or open_store(settings)
    try:
        manifest = build_manifest(load_view(settings, store, story_id, notes), settings.generation,
                                  PromptRenderer(settings.templates_dir, settings.system_prompts_dir))
    finally:
        if own:
            store.close()
    return dump_manifest(manifest), manifest


def save_manifest(settings: Settings, story_id: str, text: str, manifest: Manifest) -> None:
    path = manifest_path(settings.manifests_dir, story_id)
    write_text_atomic(path, text)
    private_folder(settings.state_dir)
    remember_manifest(path, manifest, settings.state_dir / "cache")  # the next build skips the YAML parse


def write_manifest(settings: Settings, story_id: str, store: StoryStore | None = None) -> Manifest:
    text, manifest = render_manifest(settings, story_id, store)
    save_manifest(settings, story_id, text, manifest)
    return manifest
