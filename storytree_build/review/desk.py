"""Reviewing built assets — `storytree review` and the buttons of the page `storytree serve` shows.

A verdict is about one exact file (its sha256): a regenerated asset is unreviewed again. Rejecting with a note makes
the note the director's note of that shot's next key-frame prompt: the manifest is rewritten at once, so the dry-run
shows the new prompt and its cost before anything is paid, and the rejected file itself counts as out of date.
Approving a frame that was made with the note keeps the note (it is part of what was approved); approving a frame
made before the note (a change of mind) clears it, so that frame is current again.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from datetime import datetime, timezone

from ..core.hashing import FileHasher
from ..core.manifest import Manifest, Target
from ..core.manifest.file import load_manifest_file, manifest_path
from ..core.errors import InputError
from ..manifests import render_manifest, save_manifest
from ..settings import Settings
from ..store import open_records, open_reviews, open_store
from .verdicts import Review, clean_note, director_notes


@dataclass(frozen=True)
class AssetReview:
    """What the review list and the page show for one target."""

    task: str
    kind: str
    output: str
    state: str  # approved | rejected | unreviewed | not built
    note: str = ""
    reviewed_by: str = ""
    reviewed_at: str = ""


@dataclass(frozen=True)
class Outcome:
    review: Review
    now_out_of_date: list[str]  # targets whose prompt the change rewrote (shown with the manifest's new state)


def reviewer() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = "someone"
    return f"{user}@{socket.gethostname()}"


class ReviewDesk:
    """One story's reviews: read them, approve or reject a built target. Opens the store; close() it."""

    def __init__(self, settings: Settings, story_id: str):
        self.settings = settings
        self.story_id = story_id
        path = manifest_path(settings.manifests_dir, story_id)
        if not path.is_file():
            raise InputError(f"story {story_id} has no manifest ({path.relative_to(settings.root)}); run "
                             f"`storytree manifest {story_id}` first.")
        self.manifest: Manifest = load_manifest_file(path)
        self.store = open_store(settings)
        self.records = open_records(settings, lambda: self.store)
        self.reviews = open_reviews(settings, lambda: self.store)
        self.hasher = FileHasher()

    def close(self) -> None:
        for port in (self.reviews, self.records, self.store):
            port.close()

    # -- reading -------------------------------------------------------------------------------
    def _target(self, task: str) -> Target:
        target = self.manifest.by_task().get(task)
        if target is None:
            raise InputError(f"{task} is not a target of story {self.story_id}; `storytree review list "
                             f"{self.story_id}` shows them.")
        return target

    def _file_hash(self, target: Target) -> str | None:
        path = self.settings.assets_root / target.output
        return self.hasher.sha256(path) if path.is_file() else None

    def list(self) -> list[AssetReview]:
        """Every target of the story, key frames first (they are what a review is mostly for)."""
        reviews = self.reviews.reviews(self.story_id)
        order = {"key_frame": 0, "character_plate": 1, "environment_keyframe": 2, "video": 3}
        rows = []
        for target in sorted(self.manifest.targets, key=lambda t: (order.get(t.kind, 9), t.task)):
            rows.append(self._state(target, reviews.get(target.task)))
        return rows

    def _state(self, target: Target, review: Review | None) -> AssetReview:
        digest = self._file_hash(target)
        if digest is None:
            return AssetReview(target.task, target.kind, target.output, "not built", review.note if review else "")
        if review is None or not review.holds_for(digest):
            return AssetReview(target.task, target.kind, target.output, "unreviewed", review.note if review else "")
        return AssetReview(target.task, target.kind, target.output, review.verdict, review.note, review.reviewed_by,
                           review.reviewed_at)

    # -- deciding ------------------------------------------------------------------------------
    def approve(self, task: str, by: str | None = None) -> Outcome:
        target = self._target(task)
        digest = self._built(target)
        earlier = self.reviews.reviews(self.story_id).get(task)
        note = earlier.note if earlier is not None and self._made_with_current_prompt(target) else ""
        return self._decide(Review(self.story_id, task, digest, "approved", note, by or reviewer(), _now()))

    def reject(self, task: str, note: str | None = None, by: str | None = None) -> Outcome:
        target = self._target(task)
        text = clean_note(task, note)
        digest = self._built(target)
        return self._decide(Review(self.story_id, task, digest, "rejected", text, by or reviewer(), _now()))

    def _built(self, target: Target) -> str:
        digest = self._file_hash(target)
        if digest is None:
            raise InputError(f"{target.task} of story {self.story_id} is not built yet (no file at "
                             f"{target.output}); build it first (`doit {target.task}`), then review it.")
        return digest

    def _made_with_current_prompt(self, target: Target) -> bool:
        record = self.records.get(self.story_id, target.task)
        return record is not None and record.prompt_sha256 == target.prompt_sha256

    def _decide(self, review: Review) -> Outcome:
        """Store the verdict; when it changes a director's note, rewrite the manifest too. The new manifest is
        rendered first, so a story that cannot be rendered leaves both the review and the manifest as they were."""
        reviews = self.reviews.reviews(self.story_id)
        notes = director_notes({**reviews, review.task: review})
        rendered = None
        if notes != director_notes(reviews):
            rendered = render_manifest(self.settings, self.story_id, self.store, notes)
        self.reviews.put_review(review)
        changed: list[str] = []
        if rendered is not None:
            old = {t.task: t.prompt_sha256 for t in self.manifest.targets}
            save_manifest(self.settings, self.story_id, *rendered)
            self.manifest = rendered[1]
            changed = [t.task for t in self.manifest.targets if old.get(t.task) != t.prompt_sha256]
        return Outcome(review, changed)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
