"""The composition root: the one place where stores, ports, providers and the objects of a build are made and wired
together. Nothing else opens a store or a provider, and nothing is assigned to an object after it is made.

    Workspace   one project's settings → the story store and the build state beside it (opened on first use),
                manifests written from the store, review desks, the review page's API, sessions
    Session     one story's build: facts → requests, outputs, spend gate, claims → builder, video and batch flows
                (providers are made on first paid call, so a no-op build reads only the story's records)

No module-level variable holds the state of a run: the doit glue, the reporter, the dry-run and the CLI all receive a
`Workspace` or a `Session` from here.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ContextManager

from .building.planned import PlannedStatuses
from .building.vault import Vault
from .core.errors import EnvironmentFault, FrozenManifest, InputError
from .core.lazy import Lazy
from .core.manifest.file import dump_manifest, load_manifest_file, manifest_path, remember_manifest
from .core.manifest.stamp import stamp, stamped_fingerprint
from .files.atomic import private_folder, write_text_atomic
from .review.verdicts import director_notes
from .settings import Settings
from .store import open_build_state, open_store
from .store.build_state import BuildState, read_legacy_records

if TYPE_CHECKING:  # a build session's parts are imported when one is opened: `storytree --help` never does
    from .building.batches import BatchFlow
    from .building.claims import Claims
    from .building.facts import FactGatherer
    from .building.outputs import Outputs
    from .building.renames import Renamer
    from .building.requests import RequestFactory
    from .building.space import SpaceGuard
    from .building.spend import SpendGate
    from .building.summary import RunSummary
    from .core.manifest import DbLocation, Manifest, Target
    from .core.pricing import Pricing
    from .gallery.source import GallerySource
    from .review.gate import ReviewGate
    from .building.builder import Builder
    from .building.videos import VideoFlow
    from .objects.local import LocalObjects
    from .objects.remote import Remote
    from .core.prompts import PromptRenderer
    from .core.story import StoryView
    from .providers.rate_limit import RateLimiter
    from .review.desk import ReviewDesk
    from .review.web_api import ReviewApi
    from .store.ports import StoryStore

log = logging.getLogger("storytree")


def remote_display(url: str) -> str:
    """How a remote is named in records and messages: its URL without credentials ('' when there is none)."""
    if not url:
        return ""
    from .objects.faults import redact_url

    return redact_url(url)


@dataclass(frozen=True)
class Paying:
    """What pays for targets, made together on first need."""

    builder: Builder
    video_flow: VideoFlow
    batch_flow: BatchFlow


@dataclass(frozen=True)
class RunOptions:
    """What one `doit run` asks beyond the selection: the targets `-a` names (never their references), and whether
    a target another worker is building is waited for (without `--continue`) or reported."""

    forced: frozenset[str] = frozenset()
    wait_for_claims: bool = True


class Workspace:
    """One project: its settings, its story store and the build state beside it (both opened on first use)."""

    def __init__(self, settings: Settings, *, store: StoryStore | None = None, read_only: bool = False):
        self.settings = settings
        self.read_only = read_only  # a command that only reads: an embedded store that is not there is not made
        # Who is building: records say which checkout made a file; claims say which process is paying right now.
        self.checkout = f"{socket.gethostname()}:{settings.root.resolve()}"
        self.store: Lazy[StoryStore] = Lazy(lambda: store if store is not None else self._open_store())
        self.state: Lazy[BuildState] = Lazy(self._open_state)
        self.vault = Vault(Lazy(self._open_objects), Lazy(self._open_remote), remote_display(settings.remote.url))

    def _open_store(self) -> StoryStore:
        self._require_embedded_store()
        return open_store(self.settings)

    def _require_embedded_store(self) -> None:
        """A read-only command outside a project (or before the first import) says so instead of creating an empty
        story database and its data folder."""
        settings = self.settings
        if not self.read_only or settings.store != "sqlite" or settings.db_path.exists():
            return
        try:
            shown = settings.db_path.relative_to(settings.root)
        except ValueError:
            shown = settings.db_path
        raise InputError(f"no story store here: {shown} does not exist (project root {settings.root}). Run it in "
                         "the project folder (or set STORYTREE_ROOT / STORYTREE_DB), or load stories first with "
                         "`storytree import FILE`.")

    def _open_objects(self) -> LocalObjects:
        from .objects.local import LocalObjects

        return LocalObjects(self.settings.objects_dir, self.settings.objects.link)

    def _open_remote(self) -> Remote | None:
        if not self.settings.remote.url:
            return None
        from .objects.remote import open_remote

        return open_remote(self.settings.remote.url, options=self.settings.remote.options(), env={})

    def _open_state(self) -> BuildState:
        self._require_embedded_store()
        state = open_build_state(self.settings, self.store)
        import_legacy_records(self.settings, state)
        return state

    def resolve_story(self, given: str) -> str:
        """The story id `given` starts (a unique prefix is enough, like git's short hashes): the stored stories and the
        manifests are the ids known."""
        from .core.ids import resolve_prefix

        known = {path.stem for path in self.settings.manifests_dir.glob("*.yaml")}
        if not self.read_only or self.settings.store != "sqlite" or self.settings.db_path.exists():
            known |= set(self.store().list_story_ids())
        return resolve_prefix(given, sorted(known))

    # -- manifests ------------------------------------------------------------------------------------------
    def manifest_path(self, story_id: str) -> Path:
        return manifest_path(self.settings.manifests_dir, story_id)

    def load_manifest(self, story_id: str) -> Manifest:
        """The story's manifest file (the JSON cache under the state folder keeps a no-op build from parsing YAML)."""
        return load_manifest_file(self.manifest_path(story_id), cache_dir=self.settings.state_dir / "cache")

    def story_view(self, story_id: str, notes: dict[str, str] | None = None) -> StoryView:
        """The story as prompts see it: its rows plus the standing director's notes of its key frames (read from
        the store unless given)."""
        from .core.story import StoryView

        if notes is None:
            notes = director_notes(self.state().reviews(story_id).all())
        return StoryView.from_snapshot(self.store().load_story(story_id), notes)

    def renderer(self) -> PromptRenderer:
        from .core.prompts import PromptRenderer  # jinja2 is imported only when a prompt is rendered

        return PromptRenderer(self.settings.templates_dir, self.settings.system_prompts_dir,
                              overrides=self.settings.prompt_overrides_dir)

    def render_manifest(self, story_id: str, notes: dict[str, str] | None = None) -> tuple[str, Manifest]:
        from .core.manifest.build import build_manifest

        manifest = build_manifest(self.story_view(story_id, notes), self.settings.generation, self.renderer())
        return dump_manifest(manifest), manifest

    def save_manifest(self, story_id: str, text: str, manifest: Manifest, fingerprint: str | None = None) -> None:
        """Write the manifest file; `fingerprint`: the store's, read before the story was, which the next build
        compares with (None: unknown, so the next build compares the manifest with the store once)."""
        path = self.manifest_path(story_id)
        write_text_atomic(path, text)
        cache = private_folder(self.settings.state_dir) / "cache"
        remember_manifest(path, manifest, cache)  # the next build skips the YAML parse
        stamp(cache, path, fingerprint)

    def write_manifest(self, story_id: str) -> Manifest:
        fingerprint = self.store().manifest_fingerprint(story_id)  # read first: a later import is seen next time
        text, manifest = self.render_manifest(story_id)
        self.save_manifest(story_id, text, manifest, fingerprint)
        return manifest

    def current_manifest(self, story_id: str) -> Manifest:
        """The manifest a build or dry-run uses, made again first when the story store has moved past it (the
        manifest is a target of the build, make-style). Current: one fingerprint query and the cached manifest.
        Otherwise the story is rendered in memory and compared target by target; a manifest that differs is written
        atomically with one line saying what changed, or, in a frozen build (CI, `frozen=1`), refused."""
        path = self.manifest_path(story_id)
        cache = self.settings.state_dir / "cache"
        fingerprint = self.store().manifest_fingerprint(story_id)  # read first: a later import is seen next time
        if fingerprint and stamped_fingerprint(cache, path) == fingerprint:
            try:
                return self.load_manifest(story_id)
            except (InputError, ValueError):
                pass  # damaged since it was stamped: compared with the store below
        text, manifest = self.render_manifest(story_id)
        on_disk, old, unreadable = self._manifest_on_disk(story_id)
        if text == on_disk:  # no stamp (a manifest from git or an older storytree), or an edit no target depends on
            stamp(private_folder(self.settings.state_dir) / "cache", path, fingerprint)
            return manifest
        shown = self._shown(path)
        if unreadable is not None:
            what = f"{shown} {unreadable}; {len(manifest.targets)} targets"
        else:
            from .core.manifest.changes import compare

            what = compare(old, manifest).describe()
        if self.settings.manifest_frozen:
            why = "the CI environment variable is set" if self.settings.frozen is None else "frozen is set"
            raise FrozenManifest(
                f"manifest {story_id} does not match the story store ({what}) and this build is frozen ({why}): "
                f"nothing was built. Run `storytree manifest {story_id}` and commit {shown} (`storytree manifest --check "
                f"{story_id}` shows the drift), or build with frozen=0 to let the build write it.")
        try:
            self.save_manifest(story_id, text, manifest, fingerprint)
        except OSError as exc:
            raise EnvironmentFault(f"manifest {story_id} does not match the story store ({what}), and {shown} cannot "
                                   f"be written ({exc}); make its folder writable and run again.") from None
        log.info("manifest %s: %s; %s written from the story store", story_id, what, shown)
        return manifest

    def _manifest_on_disk(self, story_id: str) -> tuple[str | None, Manifest | None, str | None]:
        """(its text, the manifest, why it cannot be used): a missing or damaged manifest is written again."""
        path = self.manifest_path(story_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, None, "did not exist"
        except (OSError, UnicodeDecodeError) as exc:
            return None, None, f"could not be read ({exc})"
        try:
            return text, self.load_manifest(story_id), None
        except (InputError, ValueError) as exc:
            return text, None, f"could not be read ({str(exc).splitlines()[0]})"

    def _shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.settings.root))
        except ValueError:
            return str(path)

    # -- reviews --------------------------------------------------------------------------------------------
    def review_desk(self, story_id: str) -> ReviewDesk:
        from .review.desk import ReviewDesk

        path = self.manifest_path(story_id)
        if not path.is_file():
            raise InputError(f"story {story_id} has no manifest ({path.relative_to(self.settings.root)}); run "
                             f"`storytree manifest {story_id}` first.")
        state = self.state()
        return ReviewDesk(story_id, load_manifest_file(path), self.settings.assets_root, state.records(story_id),
                          state.reviews(story_id), self)

    def review_api(self, token: str, read_only: bool) -> ReviewApi:
        from .review.web_api import ReviewApi

        return ReviewApi(token, read_only, has_story=lambda story_id: self.manifest_path(story_id).is_file(),
                         desk=self.review_desk, render_page=self.render_review_page, restore=self.restore_version,
                         objects=self.settings.objects_dir)

    def restore_version(self, story_id: str, task: str, version: str) -> str:
        """The page's restore button: `storytree restore` without `--keep`, for free (building/keeping.py)."""
        from .building import keeping

        session = self.session(story_id)
        try:
            return keeping.restore(session, task, version)
        finally:
            session.close()

    def render_review_page(self, story_id: str) -> None:
        """The page shows reviews: render it again after one changed (the reviewer's browser reloads it)."""
        from .core.errors import StorytreeError
        from .gallery.freshness import read_sidecar
        from .gallery.page import build_gallery

        provider = read_sidecar(self.settings, story_id).get("provider")  # the one the page was built for
        session = Session(self, self.load_manifest(story_id), provider if isinstance(provider, str) else None)
        try:
            build_gallery(session.gallery())
        except (StorytreeError, OSError) as exc:  # the review is stored; the next build renders the page
            log.error("the review page of %s could not be rendered again: %s", story_id, exc)
        finally:
            session.close()

    # -- builds ---------------------------------------------------------------------------------------------
    def session(self, story_id: str, provider_name: str | None = None, *, link_task: str | None = None) -> Session:
        return Session(self, self.load_manifest(story_id), provider_name, link_task=link_task)

    def close(self) -> None:
        for lazy in (self.state, self.store):
            made = lazy.peek()
            if made is not None:
                made.close()


class Session:
    """Everything one build of one story needs. The story is loaded and the providers are made on first use, so a
    no-op build reads only the story's records."""

    def __init__(self, workspace: Workspace, manifest: Manifest, provider_name: str | None = None, *,
                 link_task: str | None = None, owns_workspace: bool = False, images: Any = None, videos: Any = None):
        from .building.claims import Claims, Lease
        from .building.facts import Asker, FactGatherer, StoryState
        from .building.outputs import Outputs
        from .building.renames import Renamer
        from .building.requests import RequestFactory
        from .building.space import SpaceGuard
        from .building.spend import Budget, SpendGate
        from .building.stopping import StopRequest
        from .building.summary import RunSummary
        from .core.claim_liveness import owner_name
        from .core.hashing import FileHasher
        from .core.pricing import Pricing
        from .review.gate import ReviewGate

        settings = self.settings = workspace.settings
        self.workspace = workspace
        self.owns_workspace = owns_workspace  # closed with the session (Session.open)
        self.manifest = manifest
        self.story_id = story_id = manifest.story_id
        self.provider_name = provider = provider_name or settings.provider
        self.link_task = link_task  # the video a `--download-link` fills: it depends on nothing
        self.run_options = RunOptions()
        self.builds = False  # this doit invocation builds (not a listing or dry-run): paid work is checked up front
        self.checkout = workspace.checkout
        self.owner = owner_name(self.checkout, os.getpid())
        state = workspace.state()
        self.records = state.records(story_id)
        self.versions = state.versions(story_id)
        self.operations = state.operations(story_id)
        self.reviews = state.reviews(story_id)
        self.review_gate = ReviewGate(settings.review.key_frames == "required", story_id, self.reviews,
                                      self._file_hash_of)
        vault = workspace.vault
        self.facts = FactGatherer(
            manifest, settings.assets_root, StoryState(self.records, self.operations, state.claims(story_id),
                                                    getattr(self.records, "with_operation", None)),
            provider, hasher=FileHasher(),
            asker=Asker(self.checkout, self.owner, settings.build.adopt_existing, vault.remote_url,
                        keep_stale=settings.build.rebuild == "missing"),
            points_here=self._points_here, rejections=self.review_gate.rejections, object_local=vault.has_local,
            project_root=settings.root)
        self.summary = RunSummary()
        self.planned = PlannedStatuses()  # the pre-flight's statuses, for doit's up-to-date checks until a build
        self.stop = StopRequest()  # Ctrl-C / SIGTERM (doit_glue/interrupts.py): no new paid call starts
        self.gate = SpendGate(Budget(settings.max_cost), self.stop)
        self.claims = Claims(state.claims(story_id), self.owner,
                             Lease(settings.build.claim_lease_seconds, settings.build.claim_poll_seconds))
        # One limiter per session, in front of every paid call of both halves (shared with other processes on disk).
        self.limiter = Lazy(lambda: _open_limiter(settings))
        self.images = Lazy(lambda: images if images is not None else _registry().make_images(
            settings, provider, self.limiter()))
        self.videos = Lazy(lambda: videos if videos is not None else _registry().make_videos(
            settings, provider, self.limiter()))
        self.batches = Lazy(lambda: _registry().make_batches(settings, provider, self.limiter()))
        self.view = Lazy(self._load_view)
        self.renderer = Lazy(workspace.renderer)
        self.requests = RequestFactory(settings.root, settings.assets_root, self.view, self.renderer,
                                       settings.generation.max_key_frame_references, settings.verbose)
        self.outputs = Outputs(settings.assets_root, provider, self.records, self.facts, workspace.store, vault,
                               stored=self._stored_value, checkout=self.checkout, verdicts=self.verdict_of)
        self.space = SpaceGuard(int(settings.storage.headroom_mb * 1024 * 1024))
        self.pricing = Pricing(settings.prices, provider, settings.generation.batch)
        self.targets = manifest.by_task()
        # The builder and the video and batch flows are made on the first target that may be paid for: a no-op build
        # never imports them.
        self._paying: Lazy[Paying] = Lazy(self._make_paying)
        self.renamer = Renamer(manifest, self.facts, self.outputs, settings.state_dir)

    def _make_paying(self) -> Paying:
        from .building.batches import BatchFlow, BatchLimits
        from .building.builder import Builder
        from .building.files import TargetLocks
        from .building.paid_images import PaidImages
        from .building.parts import BuildParts
        from .building.recovery import Recovery
        from .building.videos import VideoFlow, VideoTiming

        from .core.manifest.compact import compact

        # A run that builds holds the manifest for as long as it builds: one copy of each equal part (7 µs a target,
        # so a no-op, which only reads it, does not pay for it).
        compact(self.manifest)
        settings, story_id, generation = self.settings, self.story_id, self.settings.generation
        recovery = Recovery(settings.recovery_dir / story_id)
        parts = BuildParts(story_id=story_id, provider=self.provider_name, targets=self.targets, facts=self.facts,
                           requests=self.requests, outputs=self.outputs, operations=self.operations, spend=self.gate,
                           pricing=self.pricing, room_for=self.room_for, claims=self.claims, summary=self.summary,
                           recovery=recovery)
        paid_images = PaidImages(self.outputs, recovery, self.room_for)
        video_flow = VideoFlow(parts, self.videos, VideoTiming(
            settings.video_poll_interval_seconds, settings.video_poll_deadline_seconds,
            settings.video_retention_hours), self.review_gate)
        batch_flow = BatchFlow(parts, self.batches, BatchLimits(
            generation.batch, generation.batch_max_requests, generation.batch_wait_minutes * 60,
            generation.batch_poll_seconds), paid_images, self._asset_size)
        builder = Builder(parts, self.images, video_flow, batch_flow, paid_images,
                          TargetLocks(settings.locks_dir / story_id))
        return Paying(builder, video_flow, batch_flow)

    @property
    def builder(self) -> Builder:
        return self._paying().builder

    @property
    def batch_flow(self) -> BatchFlow:
        return self._paying().batch_flow

    def batch_collected(self) -> set[str]:
        """Targets built from batch jobs in this run (none when nothing was paid for)."""
        made = self._paying.peek()
        return made.batch_flow.collected if made is not None else set()

    def batch_jobs_pending(self) -> dict[str, list[str]]:
        made = self._paying.peek()
        return made.batch_flow.jobs if made is not None else {}

    @classmethod
    def open(cls, settings: Settings, story_id: str, provider_name: str | None = None, *,
             link_task: str | None = None, read_only: bool = False) -> "Session":
        """The session of one story in a workspace of its own (closed with the session); `read_only`: a command
        that builds nothing (`doit list`, a dry-run) creates no story store."""
        workspace = Workspace(settings, read_only=read_only)
        try:
            manifest = workspace.current_manifest(story_id)
        except BaseException:
            workspace.close()
            raise
        return cls(workspace, manifest, provider_name, link_task=link_task, owns_workspace=True)

    def start_run(self, options: RunOptions) -> None:
        """The options of the `doit run` about to start (known only once doit has parsed its command line)."""
        self.run_options = options
        self.stop.building = True

    def check_provider(self) -> None:
        """Once, before any target of a build that pays starts: what every paid call would fail on (a missing API
        key) is one error instead of one per target."""
        _registry().check(self.settings, self.provider_name)

    def gallery(self) -> GallerySource:
        from .gallery.source import GallerySource

        return GallerySource(
            settings=self.settings, manifest=self.manifest, facts=self.facts, provider_name=self.provider_name,
            operations=self.operations.all,
            failures=lambda: {task: f.message for task, f in self.summary.failures.items() if f.kind != "review"},
            story_view=self.view, render=self.requests.render,
            reviews=self.review_gate.reviews, versions=self.versions.all, object_here=self.workspace.vault.has_local,
            story_fingerprint=lambda: self.workspace.store().fingerprint(self.story_id))

    def target(self, task: str) -> Target:
        return self.targets[task]

    def room_for(self, target: Target) -> ContextManager[None]:
        """Writable asset and state folders and free space for the target's result (see building/space.py)."""
        return self.space.room_for(target.task, self.outputs.path(target),
                                   self.settings.storage.bound_bytes(target.units), self.settings.data_dir)

    def _asset_size(self, rel: str) -> int:
        try:
            return (self.settings.assets_root / rel).stat().st_size
        except OSError:
            return 0

    def _file_hash_of(self, task: str) -> str | None:
        target = self.targets.get(task)
        return self.facts.file_hash(target.output) if target is not None else None

    def verdict_of(self, task: str, sha256: str) -> str:
        """The review verdict that holds for that file of `task` ('' when none): kept with a replaced version."""
        review = self.review_gate.reviews().get(task)
        return review.verdict if review is not None and review.holds_for(sha256) else ""

    def _stored_value(self, location: DbLocation) -> Any:
        """What the story database holds at `location` (the story as this session loaded it)."""
        from .building.verify import stored_value

        return stored_value(self.view().snapshot, location)

    def _points_here(self, target: Target) -> bool:
        """Does the story database point at the target's file? (Read only for files without a record.)"""
        from .building.verify import stored_value
        from .core import naming

        snapshot = self.view().snapshot
        return any(naming.from_stored(stored_value(snapshot, loc)) == target.output for loc in target.db)

    def _load_view(self) -> StoryView:
        return self.workspace.story_view(self.story_id, director_notes(self.review_gate.reviews()))

    def close(self) -> None:
        for lazy in (self.images, self.videos, self.batches, self.limiter):
            made = lazy.peek()
            if made is not None:
                made.close()
        if self.owns_workspace:
            self.workspace.close()


def _registry() -> Any:
    """The provider registry, imported when a provider is first made (never on a no-op build)."""
    from .providers import registry

    return registry


def _open_limiter(settings: Settings) -> RateLimiter:
    from .providers.rate_limit import RateLimiter

    return RateLimiter.from_settings(settings)


def import_legacy_records(settings: Settings, state: BuildState) -> None:
    """Earlier versions kept records in `.storytree/records.sqlite`, per checkout; they move into the story store
    once (records already in the store win), and the old file is kept renamed."""
    legacy = settings.legacy_records_path
    if not legacy.is_file():
        return
    found, operations = read_legacy_records(legacy)
    by_story: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for record in found:
        by_story[record.story_id][0].append(record)
    for op in operations:
        by_story[op.story_id][1].append(op)
    for story_id, (records, ops) in by_story.items():
        state.records(story_id).import_missing(records)
        state.operations(story_id).import_missing(ops)
    try:
        os.replace(legacy, legacy.with_name(legacy.name + ".imported"))
    except FileNotFoundError:  # another process imported it at the same moment
        return
    log.info("imported %d records and %d video operations from %s into the story store (once; the old file is "
             "kept as %s.imported)", len(found), len(operations), legacy, legacy.name)
