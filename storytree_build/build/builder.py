"""Building one target: lock → re-check → request (prompt re-rendered and verified, references loaded) → paid call
through the spend gate → asset (temp file + fsync + rename) → record → story database.

A failure at any step leaves no file at the target path and no record; a finished paid asset is recorded before
anything else can fail, so a later failure (the database refusing the path) leaves a free "publish only" step.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.manifest import Manifest, Target
from ..providers.base import ImageProvider
from .checker import StatusChecker
from .files import TargetLocks, remove_leftovers
from .outputs import Outputs
from .requests import RequestFactory
from .spend import SpendGate
from .summary import Outcome, RunSummary
from .videos import VideoFlow


class Builder:
    def __init__(self, manifest: Manifest, checker: StatusChecker, requests: RequestFactory, outputs: Outputs,
                 gate: SpendGate, images: Callable[[], ImageProvider], videos: VideoFlow, locks: TargetLocks,
                 summary: RunSummary, cost_of: Callable[[Target], float | None]):
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

    def build(self, task: str, force: bool = False) -> Outcome:
        """Build `task` unless it is current (or only needs publishing); `force` rebuilds a current target."""
        target = self.targets[task]
        with self.locks.hold(task):
            remove_leftovers(self.outputs.path(target))
            self.checker.refresh(task)  # another process may have built it while we waited
            status = self.checker.status(task)
            if status.current and not force:
                return self.summary.add(Outcome(task, "up to date"))
            if status.publish_only:
                self.outputs.publish(target)
                return self.summary.add(Outcome(task, "published", "path written to the story database"))
            if target.kind == "video":
                return self.summary.add(self.videos.build(target))
            return self.summary.add(self._build_image(target))

    def download_link(self, task: str, link: str) -> Outcome:
        target = self.targets[task]
        with self.locks.hold(task):
            return self.summary.add(self.videos.download_link(target, link))

    def _build_image(self, target: Target) -> Outcome:
        request = self.requests.image(target)
        inputs = self.checker.current_inputs(target)
        assert inputs is not None  # references were just read
        with self.gate.paid_call(target.task, target.model, self.cost_of(target)):
            result = self._images().generate(request)
        self.outputs.write_image(target, result.data)
        self.outputs.record(target, inputs)
        self.outputs.publish(target)
        return Outcome(target.task, "built", target.output)
