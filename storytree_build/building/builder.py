"""Building one target: lock → re-check → request (prompt re-rendered and verified, references loaded) → room for
the result (writable folders, free space) → paid call through the spend gate → asset (temp file + fsync + rename)
→ record → story database.

A failure at any step leaves no file at the target path and no record; a finished paid asset is recorded before
anything else can fail, so a later failure (the database refusing the path) leaves a free "publish only" step. A
paid result that cannot be written goes to the recovery folder, and the next build writes it without paying; a file
whose record was lost is recognised by its provenance and recorded, never paid for again.
"""

from __future__ import annotations

from collections.abc import Callable

from typing import ContextManager

from ..core.manifest import Manifest, Target
from ..core.status import signature_of
from ..core.errors import BuiltElsewhere, EnvironmentFault
from ..providers.base import ImageProvider
from .checker import StatusChecker
from .claims import Claims
from .files import TargetLocks, remove_leftovers
from .outputs import Outputs
from .recovery import Recovery
from .requests import RequestFactory
from .space import describe
from .spend import SpendGate
from .summary import Outcome, RunSummary
from .videos import VideoFlow


class Builder:
    def __init__(self, manifest: Manifest, checker: StatusChecker, requests: RequestFactory, outputs: Outputs,
                 gate: SpendGate, images: Callable[[], ImageProvider], videos: VideoFlow, locks: TargetLocks,
                 summary: RunSummary, cost_of: Callable[[Target], float | None],
                 room_for: Callable[[Target], ContextManager[None]], recovery: Recovery, claims: Claims):
        self.manifest = manifest
        self.targets = manifest.by_task()
        self.checker = checker
        self.requests = requests
        self.outputs = outputs
        self.gate = gate
        self._images = images
        self.videos = videos
        self.locks = locks
        self.summary = summary
        self.cost_of = cost_of
        self.room_for = room_for  # writable folders and free space, held while a result is paid for and written
        self.recovery = recovery
        self.claims = claims
        # Set by the composition root: why an image must not be paid for interactively (it is in a batch job, or
        # this is a batch-mode run); None when it may be.
        self.batch_wait: Callable[[Target], Exception | None] = lambda target: None
        self.batch_collected: set[str] = set()  # tasks the batch phase of this run built (BatchFlow.collected)

    def build(self, task: str, force: bool = False) -> Outcome:
        """Build `task` unless it is current (or only needs a free step); `force` rebuilds a current target.

        The local lock keeps this machine's workers apart cheaply; the claim in the store keeps every worker on every
        machine apart, and is taken only when money may be spent."""
        target = self.targets[task]
        if task in self.batch_collected:  # built from a batch job in this run (also when `-a` named it)
            return Outcome(task, "up to date", "built from a batch job in this run")
        with self.locks.hold(task):
            remove_leftovers(self.outputs.path(target))
            done = self._without_paying(target, force)
            if done is not None:
                return self.summary.add(done)
            with self.claims.hold(task):
                done = self._without_paying(target, force)  # another worker may have finished it meanwhile
                if done is not None:
                    return self.summary.add(done)
                if target.kind == "video":
                    return self.summary.add(self.videos.build(target))
                return self.summary.add(self._build_image(target))

    def _without_paying(self, target: Target, force: bool) -> Outcome | None:
        """The outcome when the target needs no paid call (current, publish, adopt), None when it does; raises when
        it must not be paid for here (built by another checkout)."""
        task = target.task
        self.checker.refresh(task)
        self.checker.forget_claim(task)  # the claim (ours, or the one we waited for) is not a reason here
        status = self.checker.status(task)
        if status.current and not force:
            return Outcome(task, "up to date")
        if status.publish_only:
            self.outputs.publish(target)
            return Outcome(task, "published", "path written to the story database")
        if status.adoptable and not force:
            inputs = self.checker.current_inputs(target)
            assert inputs is not None  # the status compared them with the file
            self.outputs.record(target, inputs, origin="adopted")
            self.outputs.publish(target)
            return Outcome(task, "adopted", status.reason)
        if status.elsewhere and not force:
            raise BuiltElsewhere(f"{task}: {status.reason}; nothing was paid here.")
        return None

    def download_link(self, task: str, link: str) -> Outcome:
        target = self.targets[task]
        with self.locks.hold(task):
            return self.summary.add(self.videos.download_link(target, link))

    def _build_image(self, target: Target) -> Outcome:
        request = self.requests.image(target)
        inputs = self.checker.current_inputs(target)
        assert inputs is not None  # references were just read
        signature = signature_of(inputs)
        kept = self.recovery.find(target.task, signature)
        if kept is None:  # a paid call: never for an image in a batch job, nor one batch mode left for later
            waiting = self.batch_wait(target)
            if waiting is not None:
                raise waiting
        with self.room_for(target):
            if kept is not None:
                data, action = kept.data_path.read_bytes(), "recovered"
            else:
                with self.gate.paid_call(target.task, target.model, self.cost_of(target)):
                    data, action = self._images().generate(request).data, "built"
            self._write_or_keep(target, data, signature, kept is not None)
        return self.finish_image(target, inputs, signature, action, kept is not None)

    def finish_image(self, target: Target, inputs: dict, signature: str, action: str, recovered: bool = False,
                     detail: str = "") -> Outcome:
        """After the file is in place: record it (the signature it was paid for), forget a kept copy, publish."""
        recorded = inputs if signature_of(inputs) == signature else {**inputs, "submitted_signature": signature}
        # Reference hashes unknown here (collected on a machine without them): recorded as what is known.
        unknown = any(digest is None for _, digest in inputs.get("references") or [])
        self.outputs.record(target, recorded, signature_of(inputs) if unknown else signature,
                            origin="recovered" if recovered else "built")
        self.recovery.discard(target.task)
        self.outputs.publish(target)
        return Outcome(target.task, action, detail or target.output)

    def write_paid_image(self, target: Target, data: bytes, signature: str) -> None:
        """Write a paid result (temp + rename); when that fails it is kept in the recovery folder (see below)."""
        with self.room_for(target):
            self._write_or_keep(target, data, signature, False)

    def _write_or_keep(self, target: Target, data: bytes, signature: str, already_kept: bool) -> None:
        try:
            self.outputs.write_image(target, data, signature)
        except OSError as exc:
            if already_kept:
                raise EnvironmentFault(f"{target.task}: the kept result could not be written to "
                                       f"{self.outputs.path(target)} ({describe(exc)}); it stays kept, nothing is "
                                       "paid again. Free space or make the folder writable and build again.") from None
            try:
                where = self.recovery.keep(target.task, signature, data)
            except OSError as again:
                raise EnvironmentFault(
                    f"{target.task}: the generated image was paid for but could be saved neither to "
                    f"{self.outputs.path(target)} ({describe(exc)}) nor to the recovery folder ({describe(again)}); "
                    "it is lost. Free space or make the folders writable before building again.") from None
            raise EnvironmentFault(
                f"{target.task}: the generated image was paid for but could not be written to "
                f"{self.outputs.path(target)} ({describe(exc)}); it is kept in {where}. Free space or make the folder "
                "writable and build again: it is written then without paying again.") from None
