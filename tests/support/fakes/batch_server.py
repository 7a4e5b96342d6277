"""The Batch API half of the fake Gemini (docs/gemini-api.md §4.4): `POST …/models/{model}:batchGenerateContent`
creates a job from inline requests keyed by `metadata.key`; `GET /v1beta/batches/{id}` answers its state
(`BATCH_STATE_*`) and, once succeeded, `metadata.output.inlinedResponses.inlinedResponses[]`.

    fake.batches.play_submit("rate_limited", "accept")   # the next submits: 429 (RetryInfo), then accepted
    fake.batches.pending_polls = 2                        # every new job answers RUNNING twice, then finishes
    fake.batches.outcome_for["image:scenelet-1_2"] = "image_safety"   # that request fails, the others succeed
    fake.batches.hold()/release()                         # jobs stay RUNNING until released

Submit steps: accept, rate_limited, quota_per_day, internal (500 after the job was created: a lost answer), slow
(the job is created, the answer comes too late), hang_up / truncated (the job is created, the connection closed
unanswered / the answer cut short), bad_request. Request outcomes: any image step of the fake ("ok_png",
"image_safety", "prompt_blocked", "text_only", …) or "error" (a per-request error status).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .gemini_server import FakeGemini, Recorded, Reply, error_body

BATCH_CREATE = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):batchGenerateContent$")
BATCH_GET = re.compile(r"^/v1beta/(?P<name>batches/[A-Za-z0-9_-]+)$")


@dataclass
class FakeJob:
    name: str
    model: str
    display_name: str
    requests: list[dict[str, Any]]  # {"request": {...}, "metadata": {"key": task}}
    polls_left: int
    state: str = "BATCH_STATE_PENDING"
    held: bool = False
    outcomes: dict[str, str] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [r.get("metadata", {}).get("key") for r in self.requests]


class FakeBatches:
    def __init__(self, fake: FakeGemini):
        self.fake = fake
        self.jobs: dict[str, FakeJob] = {}
        self.submit_steps: deque[str] = deque()
        self.pending_polls = 0
        self.outcome_for: dict[str, str] = {}
        self.holding = False
        self.submit_calls: list[Recorded] = []
        self.poll_calls: list[Recorded] = []
        self._counter = 0
        fake.add_route("POST", BATCH_CREATE, self.create)
        fake.add_route("GET", BATCH_GET, self.get)

    # -- scripting ----------------------------------------------------------------------------------
    def play_submit(self, *steps: str) -> None:
        self.submit_steps.extend(steps)

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        with self.fake._lock:
            self.holding = False
            for job in self.jobs.values():
                job.held = False

    def submitted_keys(self) -> list[str]:
        """Every request key of every job created, in order (a key twice means a target paid twice)."""
        with self.fake._lock:
            return [key for job in self.jobs.values() for key in job.keys]

    # -- handlers -----------------------------------------------------------------------------------
    def create(self, call: Recorded, match: re.Match[str]) -> Reply:
        model = match.group("model")
        refused = self.fake.over_quota(model)
        with self.fake._lock:
            self.submit_calls.append(call)
            if refused is not None:
                return refused
            step = self.submit_steps.popleft() if self.submit_steps else "accept"
            if step == "rate_limited":
                return Reply(429, error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded for batch requests per minute.",
                                             [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                               "retryDelay": self.fake.retry_delay}]))
            if step == "quota_per_day":
                return self.fake.steps["quota_per_day"](call)
            if step == "bad_request":
                return Reply(400, error_body(400, "INVALID_ARGUMENT", "Request contains an invalid argument."))
            batch = (call.body or {}).get("batch") or {}
            requests = (((batch.get("inputConfig") or {}).get("requests") or {}).get("requests")) or []
            self._counter += 1
            job = FakeJob(f"batches/b{self._counter}", model, batch.get("displayName", ""), requests,
                          self.pending_polls, held=self.holding,
                          outcomes={key: self.outcome_for.get(key, "ok_png") for key in
                                    (r.get("metadata", {}).get("key") for r in requests)})
            self.jobs[job.name] = job
            if step == "internal":  # the job exists, but the answer says it failed
                return Reply(500, error_body(500, "INTERNAL", "Internal error encountered."))
            reply = Reply(body=self._job_body(job))
            if step == "slow":
                reply.delay = self.fake.slow_seconds
            if step == "hang_up":  # the job exists, the connection is closed unanswered
                reply.hang_up = "close"
            if step == "truncated":  # the job exists, its answer is cut short of its Content-Length
                reply.cut_after = 8
            return reply

    def get(self, call: Recorded, match: re.Match[str]) -> Reply:
        with self.fake._lock:
            self.poll_calls.append(call)
            job = self.jobs.get(match.group("name"))
            if job is None:
                return Reply(404, error_body(404, "NOT_FOUND", f"Batch {match.group('name')} not found."))
            if job.held or job.polls_left > 0:
                job.polls_left = max(0, job.polls_left - 1)
                job.state = "BATCH_STATE_RUNNING"
                return Reply(body=self._job_body(job))
            job.state = "BATCH_STATE_SUCCEEDED"
            return Reply(body=self._job_body(job, finished=True))

    def _job_body(self, job: FakeJob, finished: bool = False) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": f"models/{job.model}", "displayName": job.display_name, "state": job.state,
            "createTime": "2026-11-29T12:00:00Z"}
        if finished:
            responses = []
            for request in job.requests:
                key = request.get("metadata", {}).get("key")
                outcome = job.outcomes.get(key, "ok_png")
                if outcome == "error":
                    responses.append({"error": {"code": 13, "message": "Internal error while generating."},
                                      "metadata": {"key": key}})
                else:
                    fake_call = Recorded("POST", "", {}, {}, request.get("request"), b"", job.model)
                    responses.append({"response": self.fake.steps[outcome](fake_call).body, "metadata": {"key": key}})
            metadata["output"] = {"inlinedResponses": {"inlinedResponses": responses}}
        return {"name": job.name, "metadata": metadata, "done": finished}
