"""Batch mode: out-of-date images of a selection go into batch jobs (half the price, minutes to hours) instead of one
paid call each, before doit runs the rest of the build.

    collect  jobs recorded earlier are polled first; finished results are written, recorded and published exactly as
             an interactive build does (temp + fsync + rename, provenance, record, database path)
    waves    images whose references exist go into jobs of at most `batch_max_requests` (one model per job);
             after those jobs finish, the key frames whose references they built go into the next wave
    money    before a job is submitted its targets are claimed, budgeted at the batch price and recorded as
             `submitting`; the job name is recorded for all of them in one transaction before anything is
             polled, so a re-run polls it and never submits those targets again. A submit whose answer was lost
             leaves them `uncertain`: blocked until `storytree resubmit`.
    waiting  a run waits `batch_wait_minutes` for its jobs, then ends with them pending (exit 75); the next run
             collects them. An image in a pending job is never paid for interactively, in any mode.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, replace

from ..core.manifest import Target
from ..core.status import Reason, signature_of
from ..core.errors import (BatchPending, ClaimedElsewhere, FailedEarlier, GenerationRefused, ProviderError,
                           StorytreeError, SubmitUncertain)
from ..providers.base import BatchStatus, ImageBatchProvider, ImageRequest
from ..store.build_state import Operation, utc_now
from .paid_images import PaidImages
from .parts import BuildParts
from .summary import Failure

log = logging.getLogger("storytree")
BATCH_PREFIX = "batches/"
MAX_JOB_BYTES = 18 * 1024 * 1024  # under the API's 20 MB for inline requests, with room for the JSON around them
PROMPT_BYTES = 64 * 1024  # a generous bound for one request's text and config


def job_chunks(entries: list[tuple[Target, dict, str]], max_requests: int,
               file_size: Callable[[str], int]) -> Iterable[list[tuple[Target, dict, str]]]:
    """Jobs of at most `max_requests` requests and about MAX_JOB_BYTES of inline data (the API takes inline
    requests only up to 20 MB; reference images travel base64-encoded, a third larger)."""
    chunk: list[tuple[Target, dict, str]] = []
    size = 0
    for entry in entries:
        estimate = PROMPT_BYTES + sum(file_size(ref.path) * 4 // 3 for ref in entry[0].references)
        if chunk and (len(chunk) >= max_requests or size + estimate > MAX_JOB_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(entry)
        size += estimate
    if chunk:
        yield chunk


@dataclass(frozen=True)
class BatchLimits:
    batch_mode: bool  # this run sends out-of-date images to batch jobs (`batch=1`)
    max_requests: int  # images per job
    wait_seconds: float  # how long a run waits for its jobs before it ends with them pending
    poll_seconds: float


class BatchFlow:
    def __init__(self, parts: BuildParts, provider: Callable[[], ImageBatchProvider], limits: BatchLimits,
                 paid_images: PaidImages, file_size: Callable[[str], int]):
        self.parts = parts
        self.targets = parts.targets
        self.story_id = parts.story_id
        self.operations = parts.operations
        self.facts = parts.facts
        self.summary = parts.summary
        self._provider = provider  # made on first use
        self.limits = limits
        self.paid_images = paid_images  # write (temp + rename, or the recovery folder), then finish (record, publish)
        self._file_size = file_size  # bytes of an asset file (0 when missing), to keep jobs under the size limit
        self.jobs: dict[str, list[str]] = {}  # job name → tasks still pending at the end of the batch phase
        self.states: dict[str, str] = {}  # job name → last state seen
        self.collected: set[str] = set()  # tasks built from a batch job in this run (doit then finds them current)

    # -- what is pending --------------------------------------------------------------------------------
    def recorded_jobs(self) -> dict[str, list[str]]:
        jobs: dict[str, list[str]] = {}
        for op in self.facts.operations().values():  # the status check reads them anyway
            if op.state == "submitted" and (op.operation or "").startswith(BATCH_PREFIX):
                jobs.setdefault(op.operation or "", []).append(op.task)
        return jobs

    def refusal(self, target: Target) -> StorytreeError | None:
        """Why `target` must not be paid for interactively right now (None when it may be)."""
        if target.kind == "video":
            return None
        batch_mode = self.limits.batch_mode
        op = self.facts.operation(target.task)  # re-read under the claim by the builder
        if op is not None and (op.operation or "").startswith(BATCH_PREFIX):
            state = self.states.get(op.operation or "", "not looked at in this run")
            return BatchPending(f"{target.task}: in batch job {op.operation} ({state}), submitted {op.submitted_at}; "
                                "not paid for again. Run the same command later to collect it.")
        if op is not None and op.state in ("submitting", "uncertain") and op.operation is None:
            return SubmitUncertain(f"{target.task}: a batch submit at {op.submitted_at} may have reached the "
                                   f"provider; blocked until `storytree resubmit {self.story_id} {target.task}`.")
        failed = self.summary.failures.get(target.task)
        if batch_mode and failed is not None:  # it failed in its batch job: reported, never paid for again here
            return FailedEarlier(failed.message, failed.kind, failed.retry_safe, failed.exit_code)
        if batch_mode:
            return BatchPending(f"{target.task}: not built in batch mode in this run (its references were not ready "
                                "or its job is still running); run the same command again to batch it.")
        return None

    # -- the batch phase --------------------------------------------------------------------------------
    def run(self, selection: Iterable[Target], submit: bool, forced: set[str] | frozenset[str] = frozenset()) -> None:
        """Collect recorded jobs; with `submit`, batch every ready image of `selection` in waves (`forced`: the
        targets `doit -a` names, batched even when current)."""
        images = [t for t in selection if t.kind != "video"]
        deadline = time.monotonic() + self.limits.wait_seconds
        self.facts.refresh()  # the operations as they are now, not as a dry-run of this process saw them
        jobs = self.recorded_jobs()
        started = time.monotonic()
        while True:
            jobs = self._collect(jobs, deadline, started)
            wave = self._ready(images, forced) if submit else []
            forced = frozenset()  # forced targets go into the first wave only
            if not wave:
                break
            submitted = self._submit_wave(wave)
            if not submitted:
                break
            jobs.update(submitted)
        self.jobs = jobs
        if jobs:
            log.warning("batch: %d job(s) still running (%s); %d image(s) wait in them. Run the same command later "
                        "to collect them: nothing is paid again.", len(jobs),
                        ", ".join(f"{name} {self.states.get(name, '')}".strip() for name in sorted(jobs)),
                        sum(len(tasks) for tasks in jobs.values()))

    def _ready(self, images: list[Target], forced: set[str] | frozenset[str]) -> list[tuple[Target, dict, str]]:
        """Images that need a paid call now and can have one: (target, inputs, signature)."""
        ready = []
        self.facts.refresh()
        for target in images:
            task = target.task
            if task in self.summary.failures:
                continue
            status = self.facts.status(task)
            free = status.current or status.publish_only or status.adoptable or status.restorable \
                or status.why is Reason.EDITED
            if (free and task not in forced) or status.elsewhere or status.lost or status.claimed_by:
                continue  # doit handles these (free steps, or reports)
            if self.operations.get(task) is not None:
                continue  # in a job, or blocked
            inputs = self.facts.current_inputs(target)
            if inputs is None:
                continue  # its references are not built yet: a later wave
            signature = signature_of(inputs)
            if self.parts.recovery.find(task, signature) is not None:
                continue  # paid before and kept: doit writes it for free
            ready.append((target, inputs, signature))
        return ready

    def _submit_wave(self, wave: list[tuple[Target, dict, str]]) -> dict[str, list[str]]:
        by_model: dict[str, list[tuple[Target, dict, str]]] = {}
        for entry in wave:
            by_model.setdefault(entry[0].model, []).append(entry)
        submitted: dict[str, list[str]] = {}
        for model, entries in by_model.items():
            for chunk in job_chunks(entries, self.limits.max_requests, self._file_size):
                job = self._submit_job(model, chunk)
                if job is not None:
                    submitted[job[0]] = job[1]
        return submitted

    def _fail(self, task: str, error: StorytreeError, message: str | None = None) -> None:
        text = message or str(error)
        self.summary.fail(Failure(task, text, error.kind, error.retry_safe, error.exit_code))
        log.error("%s", text)

    def _choose(self, held: ExitStack, model: str,
                entries: list[tuple[Target, dict, str]]) -> list[tuple[Target, ImageRequest, str]]:
        """The entries that may go into the job: claimed here, room to write, a request, within the budget."""
        chosen = []
        for target, _inputs, signature in entries:
            try:
                held.enter_context(self.parts.claims.hold(target.task, wait=False))
                with self.parts.room_for(target):  # writable folders and free space now, before paying
                    pass
                request = self.parts.requests.image(target)
                held.enter_context(self.parts.spend.paid_call(target.task, model, self.parts.pricing.batch_cost(target)))
            except ClaimedElsewhere:
                continue  # another worker builds it: doit reports it
            except StorytreeError as exc:
                self._fail(target.task, exc)
                continue
            chosen.append((target, request, signature))
        return chosen

    def _submit_job(self, model: str, entries: list[tuple[Target, dict, str]]) -> tuple[str, list[str]] | None:
        """Claim, budget, record and submit one job: (its name, its tasks), or None when nothing was submitted.
        A failed submit leaves the paid-call reservations unspent (the exception passes through them)."""
        ops: list[Operation] = []
        tasks: list[str] = []
        try:
            with ExitStack() as held:
                chosen = self._choose(held, model, entries)
                if not chosen:
                    return None
                tasks = [t.task for t, _, _ in chosen]
                now = utc_now()
                ops = [Operation(story_id=self.story_id, task=t.task, signature=sig, provider=self.parts.provider, model=model, state="submitting", operation=None, submitted_at=now,
                                 download_uri=None, error=None) for t, _, sig in chosen]
                self.operations.put_many(ops)  # before the paid call: a crash now is "uncertain", not "unpaid"
                display = f"storytree {self.story_id[:8]} {len(chosen)} image(s)"
                name = self._provider().submit_batch(model, [r for _, r, _ in chosen], display)
                self.operations.put_many([replace(op, state="submitted", operation=name) for op in ops])
        except SubmitUncertain as exc:
            self.operations.put_many([replace(op, state="uncertain", error=str(exc)) for op in ops])
            for task in tasks:
                self._fail(task, exc, f"{task}: {exc}")
            return None
        except StorytreeError as exc:  # refused before a job existed: nothing charged, nothing stays recorded
            for op in ops:
                self.operations.delete(op.task)
            for task in tasks:
                self._fail(task, exc, f"{task}: {exc}")
            return None
        self.states[name] = "submitted"
        log.info("batch: submitted %s with %d image(s) of %s at the batch price: %s", name, len(tasks), model,
                 ", ".join(tasks))
        return name, tasks

    # -- collecting ---------------------------------------------------------------------------------------
    def _collect(self, jobs: dict[str, list[str]], deadline: float, started: float) -> dict[str, list[str]]:
        """Poll until every job is done or the deadline passes; write what finished. Returns what is pending."""
        pending = dict(jobs)
        while pending:
            for name in sorted(pending):
                try:
                    status = self._provider().poll_batch(name)
                except StorytreeError as exc:
                    if not exc.retry_safe:  # the job is gone or unreadable: its targets stay recorded
                        for task in pending.pop(name):
                            self._fail(task, ProviderError(f"{task}: {exc}"))
                    else:
                        log.warning("batch: %s", exc)
                    continue
                self.states[name] = status.state
                if status.done:
                    self._write_results(name, pending.pop(name), status)
            if not pending or time.monotonic() >= deadline:
                break
            log.info("batch: %d job(s) pending (%s), %.0fs elapsed", len(pending),
                     ", ".join(f"{n} {self.states.get(n, '')}" for n in sorted(pending)), time.monotonic() - started)
            time.sleep(min(self.limits.poll_seconds, max(0.0, deadline - time.monotonic())))
        return pending

    def _write_results(self, name: str, tasks: list[str], status: BatchStatus) -> None:
        for task in tasks:
            target = self.targets.get(task)
            op = self.operations.get(task)
            if target is None or op is None or op.operation != name:
                continue  # collected by another worker meanwhile, or no longer a target of the manifest
            item = status.items.get(task)
            if item is not None and item.result is not None:
                try:
                    placed = self.paid_images.write(target, item.result.data, op.signature)
                    inputs = self.facts.current_inputs(target) or self.facts.current_inputs(
                        target, unknown_ok=frozenset(r.path for r in target.references))
                    assert inputs is not None  # with every reference allowed to be unknown
                    self.summary.add(self.paid_images.finish(target, inputs, op.signature, "built", placed,
                                                             cost=self.parts.pricing.batch_cost(target),
                                                             detail=f"batch {name}"))
                    self.collected.add(task)
                except StorytreeError as exc:  # a failed write keeps the paid image as an object, recorded
                    self._fail(task, exc)
                self.operations.delete(task)  # the job has nothing more to give
                continue
            self.operations.delete(task)  # nothing to collect any more
            why = (item.error if item is not None else None) or status.error or "the job returned nothing for it"
            refused = item is not None and item.refused
            hint = "change the story text behind it and build again" if refused else "build again to batch it again"
            kind = GenerationRefused if refused else ProviderError
            self._fail(task, kind(f"{task}: {why} (batch job {name}). Nothing was saved; {hint}."))


