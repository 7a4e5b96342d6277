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

from ..core.errors import AssetLost, BuiltElsewhere, StorytreeError
from ..core.manifest import Target
from ..core.status import Reason, signature_of
from ..providers.base import ImageProvider
from .batches import BatchFlow
from .files import TargetLocks, remove_leftovers
from .outputs import Placed
from .paid_images import PaidImages
from .parts import BuildParts
from .summary import SAID_CURRENT, Outcome
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
        machine apart. A build is asked for only when the up-to-date check found work (a paid call or a free step),
        so the claim is taken first and the task's record and operation are read once, under it: another worker may
        have finished it meanwhile, and a free step (publish, adopt, restore) then acts on what the store says now."""
        target = self.targets[task]
        summary = self.parts.summary
        if task in self.batch.collected:  # built from a batch job in this run (also when `-a` named it)
            return Outcome(task, "up to date", "built from a batch job in this run")
        stop = self.parts.spend.stop
        stop.refuse(task)  # stopping: nothing new starts (in-flight targets finish)
        with self.locks.hold(task):
            remove_leftovers(self.parts.outputs.path(target))
            with self.parts.claims.hold(task, wait=wait_for_claims):
                done = self._without_paying(target, force)
                if done is not None:
                    return summary.add(done)
                with stop.paying(task):  # from the paid call until its result is recorded
                    if target.kind == "video":
                        return summary.add(self.videos.build(target))
                    return summary.add(self._build_image(target))

    def _without_paying(self, target: Target, force: bool) -> Outcome | None:
        """The outcome when the target needs no paid call (current, kept, publish, adopt, restore), None when it
        does; raises when it must not be paid for here (built by another checkout, or lost: `-a` forces)."""
        task, facts, outputs = target.task, self.parts.facts, self.parts.outputs
        facts.refresh(task)
        facts.forget_claim(task)  # the claim (ours, or the one we waited for) is not a reason here
        done: list[str] = []  # free steps taken on the way (a restore, a kept edit), for the outcome
        for _ in range(3):  # at most: restore or keep an edit, then publish
            status = facts.status(task)
            if force:
                if status.why is Reason.EDITED:  # `-a` never destroys a hand edit: it is kept as a version first
                    self._keep_edit(target)
                return None
            if status.current:
                said = SAID_CURRENT.get(status.why)  # current, but worth saying: kept, or stale and kept
                detail = status.reason if said else ""
                return Outcome(task, done[0] if done else (said or "up to date"),
                               "; ".join([*done[1:], detail]).strip("; "))
            if status.publish_only:
                outputs.publish(target)
                return Outcome(task, done[0] if done else "published", "path written to the story database")
            if status.adoptable:
                inputs = facts.current_inputs(target)
                assert inputs is not None  # the status compared them with the file
                placed = self._keep_as_object(target)
                outputs.record(target, inputs, origin="adopted", placed=placed, cost=None)
                outputs.publish(target)
                return Outcome(task, "adopted", status.reason)
            if status.restorable:
                restored = outputs.restore(target)
                done.append("restored" if restored.source == "local" else "pulled")
                continue
            if status.why is Reason.EDITED:
                self._keep_edit(target)
                done.append("kept edit")
                continue
            if status.lost:
                raise AssetLost(f"{task}: {status.reason}; nothing was paid.")
            if status.elsewhere:
                raise BuiltElsewhere(f"{task}: {status.reason}; nothing was paid here.")
            return None
        return None

    def _keep_as_object(self, target: Target) -> Placed:
        """The file at the target path kept as an object (and sent to the remote); an unkeepable one stays as is."""
        outputs = self.parts.outputs
        try:
            sha = outputs.keep_existing(target)
        except StorytreeError:
            return Placed("", True)
        return Placed(sha, True, outputs.vault.upload(sha, target.task))

    def _keep_edit(self, target: Target) -> None:
        """A valid file with other bytes than recorded: a person's edit, kept as the target's new version (made from
        the same inputs); the record it replaces is kept as a version."""
        record = self.parts.facts.record(target.task)
        assert record is not None
        placed = self._keep_as_object(target)
        self.parts.outputs.record(target, record.inputs, record.signature, origin="edited",
                                  detail="edited by hand", placed=placed, cost=0.0)
        self.parts.outputs.publish(target)

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
        kept = parts.recovery.find(target.task, signature)  # paid for by an earlier version that could not write it
        if kept is None:  # a paid call: never for an image in a batch job, nor one batch mode left for later
            waiting = self.batch.refusal(target)
            if waiting is not None:
                raise waiting
        cost = parts.pricing.cost(target)
        with parts.room_for(target):
            if kept is not None:
                data, action = kept.data_path.read_bytes(), "recovered"
            else:
                # One paid call; after one that may have been billed and delivered nothing, asked again only within
                # this build's allowance for the target and max_cost (spend.py).
                data = parts.spend.paid_calls(target.task, target.model, cost,
                                              lambda: self._images().generate(request)).data
                action = "built"
            placed = self.paid_images.place(target, data, signature)
        return self.paid_images.finish(target, inputs, signature, action, placed, cost=cost,
                                       recovered=kept is not None)
