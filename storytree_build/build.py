"""Building one target: the only place money is spent.

Order for every target: lock → re-check → render & verify prompt → load references → provider →
asset (temp file + fsync + rename) → record → story database. A failure at any step leaves no file at
the target path and no record; a finished paid asset is recorded before anything else can fail.
"""

from __future__ import annotations

import fcntl
import io
import struct
import zlib
import logging
import os
import tempfile
import threading
import time
from datetime import datetime, timezone
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .atomic import write_bytes_atomic
from .errors import BudgetExceeded, GenerationRefused, InputError, ProviderError, QuotaExhausted, SubmitUncertain
from .hashing import FileHasher
from .manifest import Manifest, Target
from .pricing import estimate
from .providers import ImageRequest, Provider, ReferenceImage, VideoRequest, make_provider
from .records import Operation, Record, RecordStore, utc_now
from .settings import Settings
from .status import Status, StatusChecker, identity_of, signature_of

if TYPE_CHECKING:  # imported where used: a no-op build needs none of them
    from .prompts import PromptRenderer
    from .store import StoryStore
    from .story import StoryView

log = logging.getLogger("storytree")

MIME_BY_SUFFIX = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


@dataclass
class BuildOutcome:
    task: str
    action: str  # built | resumed | downloaded | published | up to date
    detail: str = ""


class Budget:
    """Reserves each paid call's estimate before it is made, so parallel workers never overrun max_cost."""

    def __init__(self, limit: float | None = None):
        self.limit = limit
        self.spent = 0.0  # estimated cost of what was paid for in this run
        self._reserved = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def reserve(self, task: str, cost: float | None) -> Iterator[None]:
        cost = cost or 0.0
        with self._lock:
            if self.limit is not None and self.spent + self._reserved + cost > self.limit + 1e-9:
                raise BudgetExceeded(
                    f"{task}: not started: its estimated {cost:.2f} would take this run past max_cost={self.limit:g} "
                    f"(already spent {self.spent:.2f}, in flight {self._reserved:.2f}).")
            self._reserved += cost
        try:
            yield
        except BaseException:
            with self._lock:
                self._reserved -= cost
            raise
        with self._lock:
            self._reserved -= cost
            self.spent += cost


@dataclass
class RunSummary:
    outcomes: list[BuildOutcome] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: BuildOutcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def fail(self, task: str, message: str) -> None:
        with self.lock:
            self.failures[task] = message


class BuildContext:
    """Everything a build needs, created once per process; the store and provider are opened lazily
    so a no-op build touches neither."""

    def __init__(self, settings: Settings, manifest: Manifest, provider_name: str,
                 store: StoryStore | None = None, provider: Provider | None = None):
        self.settings = settings
        self.manifest = manifest
        self.provider_name = provider_name
        self.records = RecordStore(settings.records_path)
        self.hasher = FileHasher()
        self.checker = StatusChecker(manifest, settings.assets_root, self.records, provider_name, self.hasher)
        self.summary = RunSummary()
        self.budget = Budget(settings.max_cost)
        self.exhausted: dict[str, QuotaExhausted] = {}  # model → the per-day quota error that stopped it
        self.in_flight: dict[str, float] = {}  # video task → monotonic start, for progress lines
        self._store = store
        self._provider = provider
        self._view: StoryView | None = None
        self._lazy = threading.Lock()
        self._targets = manifest.by_task()
        self.checked: dict[str, bool] = {}  # last uptodate answer per task (doit -a runs "current" tasks)
        self.argv: list[str] = []
        self.download_link_task: str | None = None

    # -- lazily opened edges ------------------------------------------------------------------
    @property
    def store(self) -> StoryStore:
        with self._lazy:
            if self._store is None:
                from .store import open_store

                self._store = open_store(self.settings)
            return self._store

    @property
    def provider(self) -> Provider:
        with self._lazy:
            if self._provider is None:
                self._provider = make_provider(self.settings, self.provider_name)
            return self._provider

    def story_view(self) -> StoryView:
        store = self.store
        with self._lazy:
            if self._view is None:
                from .story import StoryView

                self._view = StoryView.from_snapshot(store.load_story(self.manifest.story_id))
            return self._view

    @cached_property
    def renderer(self) -> PromptRenderer:
        from .prompts import PromptRenderer

        return PromptRenderer(self.settings.templates_dir, self.settings.system_prompts_dir)

    def target(self, task: str) -> Target:
        return self._targets[task]

    def status(self, task: str) -> Status:
        return self.checker.status(task)

    # -- prompts ------------------------------------------------------------------------------
    def render(self, target: Target) -> tuple[str, str | None]:
        """Re-render the target's prompt from the store and insist it matches the manifest."""
        from .prompts import key_frame_references

        view = self.story_view()
        renderer = self.renderer  # one Jinja environment per context: templates compile once, not once per target
        if target.kind in ("character_plate", "environment_keyframe"):
            prompt = renderer.visual_reference(_plate_prompt(view, target))
        else:
            shot = view.shot(target.shot.scenelet_id, target.shot.shot_index)
            if shot is None:
                raise _stale(target, "its shot no longer exists in the story store")
            if target.kind == "key_frame":
                refs = key_frame_references(view, shot, self.settings.generation.max_key_frame_references)
                prompt = renderer.key_frame(view, shot, refs)
            else:
                prompt = renderer.video(view, shot)
        if prompt.sha256 != target.prompt_sha256:
            raise _stale(target, "its prompt changed")
        return prompt.user, prompt.system

    def load_references(self, target: Target) -> tuple[ReferenceImage, ...]:
        loaded = []
        for ref in target.references:
            path = self.settings.assets_root / ref.path
            mime = MIME_BY_SUFFIX.get(path.suffix.lower())
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise InputError(
                    f"{target.task}: reference image for {ref.kind} {ref.id} is missing; expected "
                    f"{path.relative_to(self.settings.root)} (built by `doit {ref.task}`).") from None
            if not data or mime is None:
                raise InputError(f"{target.task}: reference image {path} is empty or not PNG/JPEG/WebP.")
            loaded.append(ReferenceImage(ref.kind, ref.id, ref.path, mime, data))
        if self.settings.verbose and target.kind == "key_frame" and loaded:
            lines = [f"[Shot {target.shot.scenelet_id} #{target.shot.shot_index}] Using reference images:"]
            lines += [f"  - {r.kind}: {r.id} -> {r.path}" for r in loaded if r.kind in ("CHARACTER", "ENVIRONMENT")]
            log.info("\n".join(lines))
        return tuple(loaded)

    # -- the build ----------------------------------------------------------------------------
    @contextmanager
    def target_lock(self, task: str) -> Iterator[None]:
        """Two doit runs on one story never build the same target at once."""
        folder = self.settings.locks_dir / self.manifest.story_id
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / (task.replace(":", "__") + ".lock"), "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def build(self, task: str, force: bool = False) -> BuildOutcome:
        target = self.target(task)
        with self.target_lock(task):
            self._remove_leftovers(target)
            self.checker.refresh(task)  # another process may have built it while we waited
            status = self.checker.status(task)
            if status.current and not force:
                return self._done(BuildOutcome(task, "up to date"))
            if status.publish_only and not force:
                self.publish(target)
                return self._done(BuildOutcome(task, "published", "path written to the story database"))
            if target.kind == "video":
                return self._done(self._build_video(target))
            return self._done(self._build_image(target))

    @contextmanager
    def paid_call(self, target: Target) -> Iterator[None]:
        """Gate every paid call: a model whose daily quota ran out gets no new submissions, and the
        call's estimate is reserved against max_cost."""
        stopped = self.exhausted.get(target.model)
        if stopped is not None:
            raise QuotaExhausted(f"{target.task}: not submitted: the daily quota of {target.model} is used up "
                                 f"({stopped.reset_hint}).", target.model, stopped.reset_hint)
        with self.budget.reserve(target.task, self.cost_of(target)):
            try:
                yield
            except QuotaExhausted as exc:
                self.exhausted.setdefault(exc.model or target.model, exc)
                raise

    def cost_of(self, target: Target) -> float | None:
        return estimate(target, self.settings.prices, self.provider_name)

    def _remove_leftovers(self, target: Target) -> None:
        """Temp files of a run that was killed mid-write; safe to delete while holding the target's lock."""
        out = self.settings.assets_root / target.output
        if out.parent.is_dir():
            for leftover in out.parent.glob(f".{out.name}.*.part"):
                leftover.unlink(missing_ok=True)

    def _done(self, outcome: BuildOutcome) -> BuildOutcome:
        self.summary.add(outcome)
        return outcome

    def _build_image(self, target: Target) -> BuildOutcome:
        user, system = self.render(target)
        references = self.load_references(target)
        inputs = self.checker.current_inputs(target)
        assert inputs is not None  # references were just read
        request = ImageRequest(
            task=target.task, model=target.model, prompt=user, prompt_sha256=target.prompt_sha256,
            system_instruction=system, references=references,
            aspect_ratio=target.config.get("aspect_ratio", "16:9"), image_size=target.config.get("image_size"))
        with self.paid_call(target):
            result = self.provider.generate_image(request)
        png = to_png_with_provenance(result.data, target, self.provider_name)
        out = self.settings.assets_root / target.output
        write_bytes_atomic(out, png)
        self._record(target, inputs)
        self.publish(target)
        return BuildOutcome(target.task, "built", target.output)

    def _build_video(self, target: Target) -> BuildOutcome:
        sid = self.manifest.story_id
        pending = self.records.get_operation(sid, target.task)
        resumed = False
        if pending is not None and pending.state in ("submitting", "uncertain"):
            raise SubmitUncertain(
                f"{target.task}: a paid submit at {pending.submitted_at} may have reached the provider but no "
                "operation name came back. Check the provider's console; to pay for a new video on purpose run "
                f"`storytree resubmit {sid} {target.task}` and build again.")
        if pending is not None and pending.provider != self.provider_name:
            raise InputError(
                f"{target.task}: a video operation submitted with provider {pending.provider} is pending; build with "
                f"provider={pending.provider} to collect it, or abandon it with "
                f"`storytree resubmit {sid} {target.task}`.")
        if pending is not None and pending.state == "submitted" and pending.operation:
            inputs = self.checker.current_inputs(target) or {}
            resumed = True
            operation = pending.operation
            submitted_at = pending.submitted_at
            log.info("%s: resuming operation %s submitted at %s (not paying again)", target.task, operation,
                     pending.submitted_at)
            signature = pending.signature
            self._check_retention(target, pending)
        else:
            user, _ = self.render(target)
            references = self.load_references(target)
            inputs = self.checker.current_inputs(target)
            assert inputs is not None
            signature = signature_of(inputs)
            request = VideoRequest(task=target.task, model=target.model, prompt=user,
                                   prompt_sha256=target.prompt_sha256, references=references, config=target.config)
            operation = self._submit(target, request, signature)
            submitted_at = utc_now()
        status = self._poll(target, operation, submitted_at)
        if status.refused:
            self.records.delete_operation(sid, target.task)
            raise GenerationRefused(f"{target.task}: the provider filtered the video ({status.error}); not charged. "
                                    "Change the shot's storyboard text and build again.")
        if status.error:
            self.records.delete_operation(sid, target.task)
            raise ProviderError(f"{target.task}: video operation {operation} failed: {status.error}")
        self.download(target, status)
        if resumed and signature_of(inputs) != signature:
            log.warning("%s: the story changed while the video was generated; it was saved but is out of date.",
                        target.task)
        self._record(target, inputs if signature_of(inputs) == signature else {**inputs, "submitted_signature": signature},
                     signature=signature)
        self.records.delete_operation(sid, target.task)
        self.publish(target)
        return BuildOutcome(target.task, "resumed" if resumed else "built", target.output)

    def _check_retention(self, target: Target, pending: Operation) -> None:
        submitted = datetime.fromisoformat(pending.submitted_at)
        age_hours = (datetime.now(timezone.utc) - submitted).total_seconds() / 3600
        if age_hours > self.settings.video_retention_hours:
            raise ProviderError(
                f"{target.task}: operation {pending.operation} was submitted {age_hours:.0f} hours ago; the provider "
                f"keeps results for about {self.settings.video_retention_hours:.0f} hours, so it cannot be fetched any "
                f"more. To generate (and pay for) a new video on purpose run "
                f"`storytree resubmit {self.manifest.story_id} {target.task}` and build again.")

    def _submit(self, target: Target, request: VideoRequest, signature: str) -> str:
        sid = self.manifest.story_id
        marker = Operation(sid, target.task, signature, self.provider_name, target.model, "submitting", None,
                           utc_now(), None, None)
        self.records.put_operation(marker)  # durable before the paid call: a crash now is "uncertain", not "never"
        try:
            with self.paid_call(target):
                operation = self.provider.submit_video(request)
        except SubmitUncertain:
            self.records.put_operation(Operation(**{**marker.__dict__, "state": "uncertain"}))
            raise
        except Exception:
            self.records.delete_operation(sid, target.task)  # the provider refused it: nothing was started
            raise
        self.records.put_operation(Operation(**{**marker.__dict__, "state": "submitted", "operation": operation}))
        log.info("%s: submitted video operation %s", target.task, operation)
        return operation

    def _poll(self, target: Target, operation: str, submitted_at: str):
        started = time.monotonic()
        self.in_flight[target.task] = started
        try:
            while True:
                status = self.provider.poll_video(operation)
                if status.done:
                    return status
                waited = time.monotonic() - started
                if waited > self.settings.video_poll_deadline_seconds:
                    # The job is paid for and still running: keep its record so the next run resumes it.
                    raise ProviderError(
                        f"{target.task}: video operation {operation} (submitted {submitted_at}) is still running "
                        f"after {waited:.0f}s. It stays recorded: run the build again to resume it without paying.")
                now = time.monotonic()
                pending = ", ".join(f"{t} {now - s:.0f}s" for t, s in sorted(self.in_flight.items()))
                log.info("videos in flight: %s", pending)
                time.sleep(self.settings.video_poll_interval_seconds)
        finally:
            self.in_flight.pop(target.task, None)

    def download(self, target: Target, status) -> None:  # noqa: ANN001
        out = self.settings.assets_root / target.output
        out.parent.mkdir(parents=True, exist_ok=True)
        if status.uri:
            log.info("%s: download link %s", target.task, status.uri)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            if status.data is not None:
                tmp_path.write_bytes(status.data)
            else:
                self.provider.download_video(status, tmp_path)
            verify_mp4(tmp_path, target.task)
            with open(tmp_path, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp_path, out)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise

    def _record(self, target: Target, inputs: dict, signature: str | None = None) -> None:
        out = self.settings.assets_root / target.output
        st = os.stat(out)
        digest = self.hasher.sha256(out, st)
        record = Record(
            story_id=self.manifest.story_id, task=target.task, output=target.output,
            signature=signature or signature_of(inputs), inputs=inputs, output_sha256=digest,
            output_size=st.st_size, output_mtime_ns=st.st_mtime_ns, provider=self.provider_name,
            model=target.model, prompt_sha256=target.prompt_sha256, built_at=utc_now(), published=False,
            identity=identity_of(target))
        self.records.put(record)
        self.checker.note_built(record)

    def publish(self, target: Target) -> None:
        """Write the relative path into every DB location of the target, then mark the record published."""
        for location in target.db:
            if location.path is not None:
                self.store.set_document_path(self.manifest.story_id, location.column, location.path, target.output)
            else:
                self.store.set_shot_path(self.manifest.story_id, location.scenelet_id, location.shot_index,
                                         location.column, target.output)
        self.records.mark_published(self.manifest.story_id, target.task)
        self.checker.refresh(target.task)

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()
        if self._store is not None:
            self._store.close()
        self.records.close()


def _stale(target: Target, why: str) -> InputError:
    story = target.output.split("/", 1)[0]
    return InputError(f"{target.task}: the manifest is out of date ({why}). Run `storytree manifest {story}` "
                      "and check the dry-run before building.")


def _plate_prompt(view: StoryView, target: Target) -> str:
    path = target.db[0].path or []
    if view.vrp is None:
        raise _stale(target, "the visual reference package is gone")
    try:
        if target.kind == "character_plate":
            return view.vrp.character_model_sheets[path[1]].reference_plates[path[3]].image_generation_prompt
        return view.vrp.environment_keyframes[path[1]].keyframes[path[3]].image_generation_prompt
    except (IndexError, TypeError):
        raise _stale(target, "its plate no longer exists") from None


def to_png_with_provenance(data: bytes, target: Target, provider: str) -> bytes:
    """Verify the provider's bytes are an image, store PNG, and embed provenance as PNG text chunks.
    A PNG keeps its encoded pixels (chunks are spliced in before IEND); other formats are converted."""
    from PIL import Image, PngImagePlugin

    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        image = Image.open(io.BytesIO(data))
        image.load()  # decodes every pixel: a truncated or corrupt image fails here
    except Exception as exc:
        raise ProviderError(f"{target.task}: the provider returned bytes that are not a valid image ({exc}).") from exc
    items = (("storytree:task", target.task), ("storytree:prompt_sha256", target.prompt_sha256),
             ("storytree:model", target.model), ("storytree:provider", provider), ("storytree:built_at", utc_now()))
    if image.format == "PNG" and data.endswith(_IEND):
        chunks = b"".join(_png_chunk(b"iTXt", key.encode() + b"\0\0\0\0\0" + value.encode()) for key, value in items)
        return data[: -len(_IEND)] + chunks + _IEND
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA")
    info = PngImagePlugin.PngInfo()
    for key, value in items:
        info.add_itxt(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def verify_mp4(path: Path, task: str) -> None:
    with open(path, "rb") as handle:
        head = handle.read(12)
    if len(head) < 12 or head[4:8] != b"ftyp":
        size = path.stat().st_size
        raise ProviderError(f"{task}: the downloaded video is not an MP4 ({size} bytes, no ftyp box); nothing was saved.")

