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

from ..core.errors import BuiltElsewhere
from ..core.manifest import Target
from ..core.status import signature_of
from ..providers.base import ImageProvider
from .batches import BatchFlow
from .files import TargetLocks, remove_leftovers
from .paid_images import PaidImages
from .parts import BuildParts
from .summary import Outcome
from .videos import VideoFlow


class Builder:
    def __init__(self, parts: BuildParts, images: Callable[[], ImageProvider], videos: VideoFlow, batch: BatchFlow,
                 paid_images: PaidImages, locks: TargetLocks):
        self.parts = parts
        self.targets = parts.targets
        self._images = images  # the provider, made on first paid call: a no-op build never makes it
        self.videos = videos
        self.batch = batch
        self.paid_images = paid_images
        self.locks = locks

    def build(self, task: str, force: bool = False, wait_for_claims: bool = True) -> Outcome:
        """Build `task` unless it is current (or only needs a free step); `force` rebuilds a current target;
        `wait_for_claims` False (`doit --continue`) reports a target another worker is building instead of waiting.

        The local lock keeps this machine's workers apart cheaply; the claim in the store keeps every worker on every
        machine apart, and is taken only when money may be spent."""
        target = self.targets[task]
        summary = self.parts.summary
        if task in self.batch.collected:  # built from a batch job in this run (also when `-a` named it)
            return Outcome(task, "up to date", "built from a batch job in this run")
        with self.locks.hold(task):
            remove_leftovers(self.parts.outputs.path(target))
            done = self._without_paying(target, force)
            if done is not None:
                return summary.add(done)
            with self.parts.claims.hold(task, wait=wait_for_claims):
                done = self._without_paying(target, force)  # another worker may have finished it meanwhile
                if done is not None:
                    return summary.add(done)
                if target.kind == "video":
                    return summary.add(self.videos.build(target))
                return summary.add(self._build_image(target))

    def _without_paying(self, target: Target, force: bool) -> Outcome | None:
        """The outcome when the target needs no paid call (current, publish, adopt), None when it does; raises when
        it must not be paid for here (built by another checkout)."""
        task, facts, outputs = target.task, self.parts.facts, self.parts.outputs
        facts.refresh(task)
        facts.forget_claim(task)  # the claim (ours, or the one we waited for) is not a reason here
        status = facts.status(task)
        if status.current and not force:
            return Outcome(task, "up to date")
        if status.publish_only:
            outputs.publish(target)
            return Outcome(task, "published", "path written to the story database")
        if status.adoptable and not force:
            inputs = facts.current_inputs(target)
            assert inputs is not None  # the status compared them with the file
            outputs.record(target, inputs, origin="adopted")
            outputs.publish(target)
            return Outcome(task, "adopted", status.reason)
        if status.elsewhere and not force:
            raise BuiltElsewhere(f"{task}: {status.reason}; nothing was paid here.")
        return None

    def download_link(self, task: str, link: str) -> Outcome:
        target = self.targets[task]
        with self.locks.hold(task):
            return self.parts.summary.add(self.videos.download_link(target, link))

    def _build_image(self, target: Target) -> Outcome:
        parts = self.parts
        request = parts.requests.image(target)
        inputs = parts.facts.current_inputs(target)
        assert inputs is not None  # references were just read
        signature = signature_of(inputs)
        kept = parts.recovery.find(target.task, signature)
        if kept is None:  # a paid call: never for an image in a batch job, nor one batch mode left for later
            waiting = self.batch.refusal(target)
            if waiting is not None:
                raise waiting
        with parts.room_for(target):
            if kept is not None:
                data, action = kept.data_path.read_bytes(), "recovered"
            else:
                with parts.spend.paid_call(target.task, target.model, parts.pricing.cost(target)):
                    data, action = self._images().generate(request).data, "built"
            self.paid_images.write_or_keep(target, data, signature, already_kept=kept is not None)
        return self.paid_images.finish(target, inputs, signature, action, kept is not None)
