"""A shot video is a paid job: submitted once, its operation recorded before polling, resumed (never resubmitted)
after a crash, downloaded into the target, recorded and published. Also download-only mode, which fetches an already
generated video from a link and calls no model.

Operation states in the records: submitting (recorded *before* the paid call: a crash now is "uncertain", not
"never") → submitted (operation name known: resumable) | uncertain (the answer was lost: blocked until
`storytree resubmit`). Refused or failed jobs are forgotten (nothing to resume, nothing charged or the charge is
final).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from ..core.manifest import Target
from ..core.status import signature_inputs, signature_of
from ..core.errors import GenerationRefused, InputError, ProviderError, SubmitUncertain
from ..core.redact import redact_url
from ..providers.base import VideoProvider, VideoRequest, VideoStatus
from ..review.gate import ReviewGate
from ..store.build_state import Operation, utc_now
from .outputs import Placed
from .parts import BuildParts
from .summary import Outcome

log = logging.getLogger("storytree")


@dataclass(frozen=True)
class VideoTiming:
    poll_interval: float  # seconds between polls of a running job
    poll_deadline: float  # how long one build waits; past it the operation stays recorded and the next run resumes
    retention_hours: float  # how long the provider keeps a result: older operations cannot be resumed


class VideoFlow:
    def __init__(self, parts: BuildParts, videos: Callable[[], VideoProvider], timing: VideoTiming,
                 review: ReviewGate):
        self.parts = parts
        self.story_id = parts.story_id
        self.provider_name = parts.provider
        self.operations = parts.operations
        self.facts = parts.facts
        self._videos = videos  # the provider, made on first use
        self.timing = timing
        self.in_flight: dict[str, float] = {}  # video task → monotonic start, for progress lines
        self.review = review  # asked before a new submit (never before resuming one that is paid for)

    def build(self, target: Target) -> Outcome:
        pending = self.facts.operation(target.task)  # re-read under the claim by the builder
        if pending is not None and pending.state in ("submitting", "uncertain"):
            raise SubmitUncertain(
                f"{target.task}: a paid submit at {pending.submitted_at} may have reached the provider but no "
                "operation name came back. Check the provider's console; to pay for a new video on purpose run "
                f"`storytree resubmit {self.story_id} {target.task}` and build again.")
        if pending is not None and pending.provider != self.provider_name:
            raise InputError(
                f"{target.task}: a video operation submitted with provider {pending.provider} is pending; build with "
                f"provider={pending.provider} to collect it, or abandon it with "
                f"`storytree resubmit {self.story_id} {target.task}`.")
        if pending is None:
            self.review.check(target)
        with self.parts.room_for(target):
            return self._build(target, pending)

    def _build(self, target: Target, pending: Operation | None) -> Outcome:
        resumed = pending is not None and pending.state == "submitted" and bool(pending.operation)
        if resumed:
            assert pending is not None and pending.operation is not None
            operation, submitted_at, signature = pending.operation, pending.submitted_at, pending.signature
            inputs = self.facts.current_inputs(target)
            if inputs is None:  # resumed on a machine without (some of) the reference files
                inputs = self.facts.current_inputs(target, unknown_ok=frozenset(r.path for r in target.references))
                assert inputs is not None
                log.info("%s: some reference files are not here; the video is recorded with their hashes unknown "
                         "(as a download is), so it stays up to date once they arrive", target.task)
            log.info("%s: resuming operation %s submitted at %s (not paying again)", target.task, operation,
                     submitted_at)
            self._check_retention(target, pending)
        else:
            request = self.parts.requests.video(target)
            current = self.facts.current_inputs(target)
            assert current is not None  # references were just read
            inputs, signature = current, signature_of(current)
            operation = self._submit(target, request, signature)
            submitted_at = utc_now()
        status = self._poll(target, operation, submitted_at)
        if status.refused:
            self.operations.delete(target.task)
            raise GenerationRefused(f"{target.task}: the provider filtered the video ({status.error}); not charged. "
                                    "Change the shot's storyboard text and build again.")
        if status.error:
            self.operations.delete(target.task)
            raise ProviderError(f"{target.task}: video operation {operation} failed: {status.error}")
        placed = self._download(target, status)
        unknown = any(digest is None for _, digest in inputs["references"])
        if resumed and not unknown and signature_of(inputs) != signature:
            log.warning("%s: the story changed while the video was generated; it was saved but is out of date.",
                        target.task)
        changed = signature_of(inputs) != signature
        recorded = {**inputs, "submitted_signature": signature} if changed else inputs
        # Unknown reference hashes: the record's signature is that of what is known, as for a downloaded video.
        self.parts.outputs.record(target, recorded, signature_of(inputs) if unknown else signature, placed=placed,
                                  cost=self.parts.pricing.cost(target))
        self.operations.delete(target.task)
        self.facts.forget_operation(target.task)
        self.parts.outputs.publish(target, reread=False)  # recorded just above
        return Outcome(target.task, "resumed" if resumed else "built", target.output)

    def download_link(self, target: Target, link: str) -> Outcome:
        """`doit video:<scenelet-id>_<n> --download-link=URL`: fetch exactly this video; no model is called and no
        reference or key frame is built or needed. Reference hashes not known yet are recorded as unknown, so
        building those references later does not make the download stale."""
        if target.kind != "video":
            raise InputError(f"--download-link applies to one shot video (video:<scenelet-id>_<n>), not {target.task}.")
        link = link.strip()
        if not link:
            raise InputError(f"{target.task}: --download-link needs a URL.")
        hashes = [[ref.path, self.facts.file_hash(ref.path)] for ref in target.references]
        inputs = signature_inputs(target, self.provider_name, hashes)
        log.info("%s: downloading %s (no model call)", target.task, redact_url(link))
        with self.parts.room_for(target):
            placed = self._download(target, VideoStatus(done=True, uri=link))
        self.parts.outputs.record(target, inputs, origin="downloaded", detail=urlsplit(link).hostname or "",
                                  placed=placed, cost=0.0)
        self.parts.outputs.publish(target)
        return Outcome(target.task, "downloaded", target.output)

    def _check_retention(self, target: Target, pending: Operation) -> None:
        submitted = datetime.fromisoformat(pending.submitted_at)
        age_hours = (datetime.now(timezone.utc) - submitted).total_seconds() / 3600
        if age_hours > self.timing.retention_hours:
            raise ProviderError(
                f"{target.task}: operation {pending.operation} was submitted {age_hours:.0f} hours ago; the provider "
                f"keeps results for about {self.timing.retention_hours:.0f} hours, so it cannot be fetched any "
                f"more. To generate (and pay for) a new video on purpose run "
                f"`storytree resubmit {self.story_id} {target.task}` and build again.")

    def _submit(self, target: Target, request: VideoRequest, signature: str) -> str:
        marker = Operation(story_id=self.story_id, task=target.task, signature=signature, provider=self.provider_name, model=target.model, state="submitting",
                           operation=None, submitted_at=utc_now(), download_uri=None, error=None)
        self.operations.put(marker)  # durable before the paid call: a crash now is "uncertain", not "never"
        try:
            with self.parts.spend.paid_call(target.task, target.model, self.parts.pricing.cost(target)):
                operation = self._videos().submit(request)
        except SubmitUncertain:
            self.operations.put(replace(marker, state="uncertain"))
            raise
        except Exception:
            self.operations.delete(target.task)  # the provider refused it: nothing started
            raise
        self.operations.put(replace(marker, state="submitted", operation=operation))
        log.info("%s: submitted video operation %s", target.task, operation)
        return operation

    def _poll(self, target: Target, operation: str, submitted_at: str) -> VideoStatus:
        started = time.monotonic()
        self.in_flight[target.task] = started
        try:
            while True:
                status = self._videos().poll(operation)
                if status.done:
                    return status
                # Stopping: the job is paid for and recorded; the next run resumes polling it.
                self.parts.spend.stop.refuse(target.task, f"operation {operation} stays recorded and resumes")
                waited = time.monotonic() - started
                if waited > self.timing.poll_deadline:
                    # The job is paid for and still running: keep its record so the next run resumes it.
                    raise ProviderError(
                        f"{target.task}: video operation {operation} (submitted {submitted_at}) is still running "
                        f"after {waited:.0f}s. It stays recorded: run the build again to resume it without paying.")
                now = time.monotonic()
                pending = ", ".join(f"{t} {now - s:.0f}s" for t, s in sorted(self.in_flight.items()))
                log.info("videos in flight: %s", pending)
                time.sleep(self.timing.poll_interval)
        finally:
            self.in_flight.pop(target.task, None)

    def _download(self, target: Target, status: VideoStatus) -> Placed:
        if status.uri:
            log.info("%s: download link %s", target.task, redact_url(status.uri))

        def fill(tmp: Path) -> None:
            if status.data is not None:
                tmp.write_bytes(status.data)
            else:
                self._videos().download(status, tmp)

        return self.parts.outputs.write_video(target, fill)
