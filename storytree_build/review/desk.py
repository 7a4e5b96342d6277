"""Reviewing built assets — `storytree review` and the buttons of the page `storytree serve` shows.

A verdict is about one exact file (its sha256): a regenerated asset is unreviewed again. Rejecting with a note makes
the note the director's note of that shot's next key-frame prompt: the manifest is rewritten at once, so the dry-run
shows the new prompt and its cost before anything is paid, and the rejected file itself counts as out of date.
Approving a frame that was made with the note keeps the note (it is part of what was approved); approving a frame
made before the note (a change of mind) clears it, so that frame is current again.
"""

from __future__ import annotations

import builtins
import fnmatch
import getpass
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from ..core.errors import InputError
from ..core.hashing import FileHasher
from ..core.manifest import Manifest, Target
from ..store.build_state import RecordsPort
from .verdicts import Review, ReviewsPort, clean_note, director_notes

REVIEWED_KIND = "key_frame"  # the review gate (gate.py) asks only for a shot's key frame


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
class ReviewResult:
    review: Review
    now_out_of_date: list[str]  # targets whose prompt the change rewrote (shown with the manifest's new state)


class ManifestWriter(Protocol):
    """Writes a story's manifest from the store with the given director's notes (bootstrap.Workspace)."""

    def render_manifest(self, story_id: str, notes: dict[str, str] | None = None) -> tuple[str, Manifest]: ...
    def save_manifest(self, story_id: str, text: str, manifest: Manifest) -> None: ...


def reviewer() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = "someone"
    return f"{user}@{socket.gethostname()}"


class ReviewDesk:
    """One story's reviews: read them, approve or reject a built target (made by bootstrap.Workspace)."""

    def __init__(self, story_id: str, manifest: Manifest, assets_root: Path, records: RecordsPort,
                 reviews: ReviewsPort, manifests: ManifestWriter):
        self.story_id = story_id
        self.manifest = manifest
        self.assets_root = assets_root
        self.records = records
        self.reviews = reviews
        self.manifests = manifests
        self.hasher = FileHasher()

    # -- reading -------------------------------------------------------------------------------
    def _target(self, task: str) -> Target:
        target = self.manifest.by_task().get(task)
        if target is None:
            raise InputError(f"{task} is not a target of story {self.story_id}; `storytree review list "
                             f"{self.story_id}` shows them.")
        return target

    def _file_hash(self, target: Target) -> str | None:
        path = self.assets_root / target.output
        return self.hasher.sha256(path) if path.is_file() else None

    def list(self) -> list[AssetReview]:
        """Every target of the story, key frames first (they are what a review is mostly for)."""
        reviews = self.reviews.all()
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

    def select(self, patterns: Sequence[str], every: bool = False) -> builtins.list[str]:
        """The targets a command names: exact task names as they are, doit-style wildcards (`image:scenelet-2_*`) over
        the built key frames, `every` for each built key frame nobody has reviewed yet. A pattern that matches nothing
        is an error naming it, before anything is written."""
        rows = self.list()
        frames = [r for r in rows if r.kind == "key_frame" and r.state != "not built"]
        chosen: builtins.list[str] = [r.task for r in frames if r.state == "unreviewed"] if every else []
        for pattern in patterns:
            if not any(c in pattern for c in "*?["):
                self._target(pattern)  # an unknown name is refused with the way to list them
                found = [pattern]
            else:
                found = [r.task for r in frames if fnmatch.fnmatchcase(r.task, pattern)]
            if not found:
                raise InputError(f"{pattern!r} matches no built key frame of story {self.story_id}; nothing was "
                                 f"written. `storytree review list {self.story_id}` shows them.")
            chosen += [task for task in found if task not in chosen]
        if every and not chosen:
            raise InputError(f"story {self.story_id} has no built key frame waiting for review; nothing was written.")
        return list(dict.fromkeys(chosen))

    # -- deciding ------------------------------------------------------------------------------
    def _reviewable(self, task: str) -> Target:
        """A target a verdict may be given on: a shot's key frame, the one file the review gate asks about."""
        target = self._target(task)
        if target.kind != REVIEWED_KIND:
            raise InputError(f"{task} of story {self.story_id} is a {target.kind.replace('_', ' ')}: only key frames "
                             "(image:<scenelet>_<n>) are reviewed — approving one lets its shot's video be paid for. "
                             "Nothing was written.")
        return target

    def approve(self, task: str, by: str | None = None) -> ReviewResult:
        target = self._reviewable(task)
        digest = self._built(target)
        earlier = self.reviews.all().get(task)
        note = earlier.note if earlier is not None and self._made_with_current_prompt(target) else ""
        return self._decide(Review(self.story_id, task, digest, "approved", note, by or reviewer(), _now()))

    def reject(self, task: str, note: str | None = None, by: str | None = None) -> ReviewResult:
        target = self._reviewable(task)
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
        record = self.records.get(target.task)
        return record is not None and record.prompt_sha256 == target.prompt_sha256

    def _decide(self, review: Review) -> ReviewResult:
        """Store the verdict; when it changes a director's note, rewrite the manifest too. The new manifest is
        rendered first, so a story that cannot be rendered leaves both the review and the manifest as they were."""
        reviews = self.reviews.all()
        notes = director_notes({**reviews, review.task: review})
        rendered = None
        if notes != director_notes(reviews):
            rendered = self.manifests.render_manifest(self.story_id, notes)
        self.reviews.put(review)
        changed: list[str] = []
        if rendered is not None:
            old = {t.task: t.prompt_sha256 for t in self.manifest.targets}
            self.manifests.save_manifest(self.story_id, *rendered)
            self.manifest = rendered[1]
            changed = [t.task for t in self.manifest.targets if old.get(t.task) != t.prompt_sha256]
        return ReviewResult(review, changed)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
