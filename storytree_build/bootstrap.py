"""The composition root: the one place where the objects of a build are made and wired together.

    settings (+ doit variables) ─► manifest ─► records, checker ─► requests, outputs, spend gate, claims ─► builder
                                   (records, operations and claims live in the story store)   providers (lazy) ┘

Nothing else creates a store, a provider or a record store for a build, and no module-level variable holds the state
of a run: the doit glue, the reporter, the dry-run and the CLI all receive a `Session` from here.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import ContextManager

from .building.batches import BatchFlow
from .building.builder import Builder
from .building.checker import StatusChecker
from .building.files import TargetLocks
from .building.outputs import Outputs
from .building.claims import Claims, owner_name
from .building.recovery import Recovery
from .building.renames import Renamer
from .review.gate import ReviewGate
from .building.requests import RequestFactory
from .building.space import SpaceGuard
from .building.spend import Budget, SpendGate
from .building.summary import RunSummary
from .building.verify import stored_value
from .building.videos import VideoFlow
from .core.hashing import FileHasher
from .core.manifest import Manifest, Target
from .core.manifest.file import load_manifest_file, manifest_path
from .core import naming
from .core.pricing import estimate
from .core.status import Here
from .gallery.source import GallerySource
from .core.lazy import Lazy
from .settings import Settings
from .store.build_state import RecordsPort, read_legacy_records

log = logging.getLogger("storytree")


class Session:
    """Everything one build of one story needs. The story is loaded and the providers are made on first use, so a
    no-op build reads only the story's records."""

    def __init__(self, settings: Settings, manifest: Manifest, provider_name: str | None = None,
                 store=None, images=None, videos=None):  # noqa: ANN001 - ports, for tests that swap the edge
        from .providers.registry import make_batches, make_images, make_videos

        self.settings = settings
        self.manifest = manifest
        self.story_id = manifest.story_id
        self.provider_name = provider = provider_name or settings.provider
        # Who is building: records say which checkout made a file; claims say which process is paying right now.
        self.checkout = f"{socket.gethostname()}:{settings.root.resolve()}"
        self.owner = owner_name(self.checkout)
        self.store = Lazy(lambda: store if store is not None else _open_store(settings))
        self.records = _open_records(settings, self.store)
        import_legacy_records(settings, self.records)
        self.hasher = FileHasher()
        self.reviews = Lazy(lambda: _open_reviews(settings, self.store))
        self.review_gate = ReviewGate(settings.review.key_frames == "required", self.story_id, self.reviews,
                                      self._file_hash_of)
        self.checker = StatusChecker(manifest, settings.assets_root, self.records, provider, self.hasher,
                                     Here(self.checkout, settings.build.adopt_existing), self.owner,
                                     self._points_here, self.review_gate.rejections)
        self.summary = RunSummary()
        self.gate = SpendGate(Budget(settings.max_cost))
        self.claims = Claims(self.records, self.story_id, self.owner, settings.build.claim_lease_seconds,
                             settings.build.claim_poll_seconds)
        # One limiter per session, in front of every paid call of both halves (shared with other processes on disk).
        self.limiter = Lazy(lambda: _open_limiter(settings))
        self.images = Lazy(lambda: images if images is not None else make_images(settings, provider, self.limiter()))
        self.videos = Lazy(lambda: videos if videos is not None else make_videos(settings, provider, self.limiter()))
        self.view = Lazy(self._load_view)
        self.renderer = Lazy(self._make_renderer)
        self.requests = RequestFactory(settings.root, settings.assets_root, self.view, self.renderer,
                                       settings.generation.max_key_frame_references, settings.verbose)
        self.outputs = Outputs(self.story_id, settings.assets_root, provider, self.records, self.checker,
                               self.hasher, self.store, self.checkout)
        self.space = SpaceGuard(int(settings.storage.headroom_mb * 1024 * 1024))
        self.video_flow = VideoFlow(self.story_id, provider, self.records, self.checker, self.requests, self.outputs,
                                    self.gate, self.videos, self.cost_of, settings.video_poll_interval_seconds,
                                    settings.video_poll_deadline_seconds, settings.video_retention_hours,
                                    self.room_for, self.review_gate)
        self.builder = Builder(manifest, self.checker, self.requests, self.outputs, self.gate, self.images,
                               self.video_flow, TargetLocks(settings.locks_dir / self.story_id), self.summary,
                               self.cost_of, self.room_for, Recovery(settings.recovery_dir / self.story_id),
                               self.claims)
        self.batches = Lazy(lambda: make_batches(settings, provider, self.limiter()))
        self.batch_flow = BatchFlow(
            self.builder.targets, self.story_id, provider, self.records, self.checker, self.requests, self.gate,
            self.claims, self.summary, self.builder.recovery, self.batches, self.batch_cost_of, self.room_for,
            self.builder.write_paid_image, self.builder.finish_image, self._asset_size,
            settings.generation.batch_max_requests,
            settings.generation.batch_wait_minutes * 60, settings.generation.batch_poll_seconds)
        self.builder.batch_wait = lambda target: self.batch_flow.refusal(target, settings.generation.batch)
        self.builder.batch_collected = self.batch_flow.collected
        self.renamer = Renamer(manifest, self.checker, self.records, self.outputs, settings.assets_root,
                               settings.state_dir)
        self.forced: set[str] = set()  # targets `doit -a` names (set by the run command); never their references
        self.link_task: str | None = None  # the video a `--download-link` fills: it depends on nothing

    @classmethod
    def open(cls, settings: Settings, story_id: str, provider_name: str | None = None) -> "Session":
        """The session of one story, from its manifest file (the JSON cache under the state folder keeps a
        no-op build from parsing YAML)."""
        manifest = load_manifest_file(manifest_path(settings.manifests_dir, story_id), cache_dir=settings.state_dir / "cache")
        return cls(settings, manifest, provider_name)

    def gallery(self) -> GallerySource:
        return GallerySource(
            self.settings, self.manifest, self.checker, self.provider_name,
            operations=lambda: self.records.all_operations(self.story_id),
            failures=lambda: {task: f.message for task, f in self.summary.failures.items()},
            story_view=self.view, render=self.requests.render,
            reviews=self.review_gate.reviews,
            story_fingerprint=lambda: self.store().fingerprint(self.story_id))

    def target(self, task: str) -> Target:
        return self.builder.targets[task]

    def room_for(self, target: Target) -> ContextManager[None]:
        """Writable asset and state folders and free space for the target's result (see build/space.py)."""
        return self.space.room_for(target.task, self.outputs.path(target),
                                   self.settings.storage.bound_bytes(target.units), self.settings.data_dir)

    def _asset_size(self, rel: str) -> int:
        try:
            return (self.settings.assets_root / rel).stat().st_size
        except OSError:
            return 0

    def _file_hash_of(self, task: str) -> str | None:
        target = self.builder.targets.get(task)
        return self.checker.file_hash(target.output) if target is not None else None

    def _points_here(self, target: Target) -> bool:
        """Does the story database point at the target's file? (Read only for files without a record.)"""
        snapshot = self.view().snapshot
        return any(naming.from_stored(stored_value(snapshot, loc)) == target.output for loc in target.db)

    def cost_of(self, target: Target) -> float | None:
        """What building `target` in this run costs: images at the batch price in batch mode."""
        return estimate(target, self.settings.prices, self.provider_name, self.settings.generation.batch)

    def interactive_cost_of(self, target: Target) -> float | None:
        return estimate(target, self.settings.prices, self.provider_name)

    def batch_cost_of(self, target: Target) -> float | None:
        return estimate(target, self.settings.prices, self.provider_name, batch=True)

    def _load_view(self):  # noqa: ANN202 - core.story.StoryView
        from .core.story import StoryView

        from .review.verdicts import director_notes

        notes = director_notes(self.review_gate.reviews())  # the prompts must match the manifest's
        return StoryView.from_snapshot(self.store().load_story(self.story_id), notes)

    def _make_renderer(self):  # noqa: ANN202 - core.prompts.PromptRenderer (jinja2 is imported only when needed)
        from .core.prompts import PromptRenderer

        return PromptRenderer(self.settings.templates_dir, self.settings.system_prompts_dir)

    def close(self) -> None:
        for lazy in (self.images, self.videos, self.batches, self.limiter, self.reviews, self.store):
            made = lazy.peek()
            if made is not None:
                made.close()
        self.records.close()


def _open_store(settings: Settings):  # noqa: ANN202 - store.StoryStore
    from .store import open_store

    return open_store(settings)


def _open_reviews(settings: Settings, store: Lazy):  # noqa: ANN202 - store.reviews.ReviewsPort
    from .store import open_reviews

    return open_reviews(settings, store)


def _open_limiter(settings: Settings):  # noqa: ANN202 - providers.rate_limit.RateLimiter
    from .providers.rate_limit import RateLimiter

    return RateLimiter.from_settings(settings)


def _open_records(settings: Settings, store: Lazy) -> RecordsPort:
    from .store import open_records

    return open_records(settings, store)


def import_legacy_records(settings: Settings, records: RecordsPort) -> None:
    """Earlier versions kept records in `.storytree/records.sqlite`, per checkout; they move into the story store
    once (records already in the store win), and the old file is kept renamed."""
    legacy = settings.legacy_records_path
    if not legacy.is_file():
        return
    found, operations = read_legacy_records(legacy)
    records.import_records(found, operations)
    try:
        os.replace(legacy, legacy.with_name(legacy.name + ".imported"))
    except FileNotFoundError:  # another process imported it at the same moment
        return
    log.info("imported %d records and %d video operations from %s into the story store (once; the old file is "
             "kept as %s.imported)", len(found), len(operations), legacy, legacy.name)


