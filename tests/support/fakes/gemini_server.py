"""A fake Gemini API on 127.0.0.1 that speaks the recorded wire format (docs/gemini-api.md §4).

Point the real google-genai SDK at it with `GOOGLE_GEMINI_BASE_URL=<server.url>` (or
`HttpOptions(base_url=...)`). It records every request (method, path, query, headers, parsed JSON body)
and answers from a script of named steps:

    server.play("unavailable", "unavailable", "ok_png")          # the next three image calls, any model
    server.play("retired", model="gemini-2.5-flash-image", then="retired")   # every call to that model
    server.play("text_only", contains="Wren")                    # calls whose prompt text mentions Wren
    server.play(then="truncated")   # 200, full Content-Length announced, the body cut short and the connection closed
    server.play("hang_up")          # the request is read, then the connection closed with no answer ("reset": a RST)

A rule applies to a call when its model and text filters match; it plays its steps in order, then its
`then` step forever (or retires when it has none). Calls no rule claims get `default_step` ("ok_png").

Routes are a dispatch table of (method, path regex, handler); handlers take the recorded request and the
regex match and return a `Reply`. Image generation is served by `generate_content`; the video routes
(`/v1beta/interactions`, `:predictLongRunning`, `GET …/operations/…`, `GET /v1beta/files/<id>:download`) are
plugged in the same way by `FakeVideo` (end of this file), reachable as `server.video`.
"""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image

IMAGE_ROUTE = re.compile(r"^/(?P<version>v1beta|v1|v1alpha)/models/(?P<model>[^/:]+):generateContent$")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None
    raw: bytes = field(repr=False)
    model: str | None = None

    @property
    def url(self) -> str:
        return self.path + (("?" + "&".join(f"{k}={v}" for k, vs in self.query.items() for v in vs))
                            if self.query else "")

    # -- generateContent helpers ------------------------------------------------------------------
    @property
    def parts(self) -> list[dict[str, Any]]:
        contents = (self.body or {}).get("contents") or []
        return [p for c in contents for p in c.get("parts", [])]

    @property
    def text(self) -> str:
        return "\n".join(p["text"] for p in self.parts if "text" in p)

    @property
    def inline_images(self) -> list[tuple[str, bytes]]:
        """(mime type, bytes) of every inline part, in order. The SDK sends URL-safe base64 and the
        snake_case `mime_type` key inside parts (gemini-api.md §4.1); both spellings are accepted."""
        found = []
        for part in self.parts:
            blob = part.get("inlineData") or part.get("inline_data")
            if blob is not None:
                mime = blob.get("mime_type") or blob.get("mimeType")
                data = blob.get("data", "")
                found.append((mime, base64.urlsafe_b64decode(data.replace("+", "-").replace("/", "_")
                                                             + "=" * (-len(data) % 4))))
        return found

    @property
    def system_instruction(self) -> str | None:
        si = (self.body or {}).get("systemInstruction")
        return None if si is None else "\n".join(p.get("text", "") for p in si.get("parts", []))

    @property
    def generation_config(self) -> dict[str, Any]:
        return (self.body or {}).get("generationConfig") or {}


class TokenBucket:
    """Per-model token buckets: `per_second` tokens a second, at most `burst` saved up; counts what it refused."""

    def __init__(self, per_second: float, burst: float = 1.0):
        self.per_second, self.burst = per_second, burst
        self.tokens: dict[str, float] = {}
        self.stamp: dict[str, float] = {}
        self.accepted: dict[str, int] = {}
        self.refused: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, model: str) -> float | None:
        """None when a token was taken; else the seconds until the next token."""
        with self._lock:
            now = time.monotonic()
            tokens = min(self.burst, self.tokens.get(model, self.burst)
                         + (now - self.stamp.get(model, now)) * self.per_second)
            self.stamp[model] = now
            if tokens >= 1.0:
                self.tokens[model] = tokens - 1.0
                self.accepted[model] = self.accepted.get(model, 0) + 1
                return None
            self.tokens[model] = tokens
            self.refused[model] = self.refused.get(model, 0) + 1
            return (1.0 - tokens) / self.per_second


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to stall before answering (the client may give up first)
    cut_after: int | None = None  # announce the full Content-Length, send only this many bytes, then hang up
    hang_up: str | None = None  # "close" | "reset": end the connection after reading the request, with no answer


@dataclass
class Rule:
    steps: deque[str]
    model: str | None = None
    contains: str | None = None
    then: str | None = None

    def matches(self, call: Recorded) -> bool:
        return ((self.model is None or call.model == self.model)
                and (self.contains is None or self.contains in call.text)
                and (bool(self.steps) or self.then is not None))

    def take(self) -> str:
        return self.steps.popleft() if self.steps else self.then  # type: ignore[return-value]


def tiny_image(fmt: str = "PNG", size: tuple[int, int] = (64, 36), color: tuple[int, int, int] = (40, 90, 160)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def error_body(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def image_response(data: bytes, mime_type: str, text: str | None = None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if text:
        parts.append({"text": text})
    parts.append({"inlineData": {"mimeType": mime_type, "data": base64.b64encode(data).decode()}})
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 1290, "totalTokenCount": 1300},
            "modelVersion": "fake", "responseId": "fake-response"}


class FakeGemini:
    """Thread-safe recorder + scripted responder. Use as a context manager or call start()/stop()."""

    def __init__(self, slow_seconds: float = 2.0, retry_delay: str = "0.01s", latency: float = 0.0,
                 host: str = "127.0.0.1"):
        self.host = host  # another loopback address (127.0.0.2) makes a second, "foreign" host
        self.requests: list[Recorded] = []
        self.rules: list[Rule] = []
        self.default_step = "ok_png"
        self.slow_seconds = slow_seconds  # how long "slow" stalls: set it past the client's timeout
        self.retry_delay = retry_delay  # RetryInfo.retryDelay sent with "rate_limited"
        self.latency = latency  # every image reply waits this long (lets concurrency overlap)
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.quota: TokenBucket | None = None  # set by limit_rate(): per-model paid calls per second
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.routes: list[tuple[str, re.Pattern[str], Callable[[Recorded, re.Match[str]], Reply]]] = []
        self.add_route("POST", IMAGE_ROUTE, self.generate_content)
        self.steps: dict[str, Callable[[Recorded], Reply]] = {
            "ok_png": lambda c: Reply(body=image_response(tiny_image("PNG"), "image/png")),
            "ok_jpeg": lambda c: Reply(body=image_response(tiny_image("JPEG"), "image/jpeg", text="Here it is.")),
            "prompt_blocked": lambda c: Reply(body={"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}),
            "image_safety": lambda c: Reply(body={"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}]}),
            "text_only": lambda c: Reply(body={"candidates": [{
                "content": {"role": "model", "parts": [{"text": "I can't draw that, but here is a description."}]},
                "finishReason": "STOP", "index": 0}]}),
            "no_image": lambda c: Reply(body={"candidates": [{"finishReason": "NO_IMAGE", "index": 0}]}),
            "corrupt_image": lambda c: Reply(body=image_response(b"\x89PNG\r\n\x1a\n-truncated", "image/png")),
            "rate_limited": lambda c: Reply(429, error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded for requests "
                                                            "per minute.", [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": self.retry_delay}])),
            "quota_per_day": lambda c: Reply(429, error_body(429, "RESOURCE_EXHAUSTED", "You exceeded your current "
                                                            "quota, please check your plan and billing details.", [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_requests_per_model_per_day",
                    "quotaId": "GenerateRequestsPerDayPerProjectPerModel"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3600s"}])),
            "unavailable": lambda c: Reply(503, error_body(503, "UNAVAILABLE", "The model is overloaded.")),
            "internal": lambda c: Reply(500, error_body(500, "INTERNAL", "Internal error encountered.")),
            "bad_request": lambda c: Reply(400, error_body(400, "INVALID_ARGUMENT", "Request contains an invalid "
                                                           "argument.")),
            "bad_key": lambda c: Reply(400, error_body(400, "INVALID_ARGUMENT", "API key not valid. Please pass a "
                                                       "valid API key.", [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}])),
            "retired": lambda c: Reply(404, error_body(404, "NOT_FOUND", f"models/{c.model} is no longer available "
                                                       "to new users. Please update your code to use a newer model.")),
            "malformed": lambda c: Reply(200, "<html>upstream proxy hiccup</html>", {"content-type": "text/html"}),
            "slow": lambda c: Reply(body=image_response(tiny_image("PNG"), "image/png"), delay=self.slow_seconds),
            # Answers lost on the wire after the request was read (the call may have been billed):
            "truncated": lambda c: Reply(body=image_response(tiny_image("PNG"), "image/png"), cut_after=120),
            "cut_json": lambda c: Reply(200, json.dumps(image_response(tiny_image("PNG"), "image/png"))[:120],
                                        {"content-type": "application/json; charset=UTF-8"}),
            "hang_up": lambda c: Reply(hang_up="close"),
            "reset": lambda c: Reply(hang_up="reset"),
        }
        self.video = FakeVideo(self)  # the video routes (interactions, predictLongRunning, operations, files)
        from .batch_server import FakeBatches  # the Batch API routes (batchGenerateContent, batches/…)

        self.batches = FakeBatches(self)

    # -- scripting --------------------------------------------------------------------------------
    def add_route(self, method: str, pattern: str | re.Pattern[str],
                  handler: Callable[[Recorded, re.Match[str]], Reply]) -> None:
        self.routes.append((method, re.compile(pattern) if isinstance(pattern, str) else pattern, handler))

    def play(self, *steps: str, model: str | None = None, contains: str | None = None, then: str | None = None) -> None:
        for step in (*steps, *([then] if then else [])):
            if step not in self.steps:
                raise ValueError(f"unknown step {step!r}; known: {', '.join(sorted(self.steps))}")
        with self._lock:
            self.rules.append(Rule(deque(steps), model, contains, then))

    def limit_rate(self, per_second: float, burst: float = 1.0) -> "TokenBucket":
        """Every model accepts `per_second` paid calls (image calls, video submits), `burst` at once; above that a
        per-minute 429 RESOURCE_EXHAUSTED with QuotaFailure and a RetryInfo delay until the next token."""
        self.quota = TokenBucket(per_second, burst)
        return self.quota

    def over_quota(self, model: str) -> Reply | None:
        """The per-minute 429 for a paid call above the rate limit, or None when the call may pass."""
        if self.quota is None:
            return None
        wait = self.quota.take(model)
        if wait is None:
            return None
        return Reply(429, error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded for metric: generate_content requests "
                                     f"per minute per model, limit: {self.quota.per_second * 60:g}.", [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_requests_per_model",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{wait:.3f}s"}]))

    def next_step(self, call: Recorded) -> str:
        with self._lock:
            for rule in self.rules:
                if rule.matches(call):
                    return rule.take()
        return self.default_step

    def image_calls(self, model: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.model is not None and (model is None or r.model == model)]

    # -- handlers ---------------------------------------------------------------------------------
    def generate_content(self, call: Recorded, match: re.Match[str]) -> Reply:
        reply = self.over_quota(call.model or "") or self.steps[self.next_step(call)](call)
        reply.delay = max(reply.delay, self.latency)
        return reply

    def dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        call = Recorded(handler.command, split.path, parse_qs(split.query),
                        {k.lower(): v for k, v in handler.headers.items()}, body, raw)
        route = next(((h, m) for method, pattern, h in self.routes
                      if method == handler.command and (m := pattern.match(split.path))), None)
        if route is not None and "model" in route[1].groupdict():
            call.model = route[1].group("model")
        with self._lock:
            self.requests.append(call)
            if call.model:
                self.in_flight[call.model] = self.in_flight.get(call.model, 0) + 1
                self.max_in_flight[call.model] = max(self.max_in_flight.get(call.model, 0),
                                                     self.in_flight[call.model])
        try:
            if route is None:
                reply = Reply(404, error_body(404, "NOT_FOUND", f"no fake route for {handler.command} {split.path}"))
            else:
                reply = route[0](call, route[1])
            if reply.delay and self._stopping.wait(reply.delay):
                return
            if reply.hang_up is not None:
                self._hang_up(handler, reset=reply.hang_up == "reset")
                return
            self._send(handler, reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and hung up
        finally:
            if call.model:
                with self._lock:
                    self.in_flight[call.model] -= 1

    @staticmethod
    def _hang_up(handler: BaseHTTPRequestHandler, reset: bool) -> None:
        """End the connection without a byte of answer: a FIN (closed) or a RST (reset by peer)."""
        if reset:
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()
        else:
            handler.connection.shutdown(socket.SHUT_RDWR)
        handler.close_connection = True

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if isinstance(reply.body, dict):
            payload = json.dumps(reply.body).encode()
            headers = {"content-type": "application/json; charset=UTF-8", **reply.headers}
        else:
            payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
            headers = dict(reply.headers)
        handler.send_response(reply.status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("content-length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload if reply.cut_after is None else payload[:reply.cut_after])

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeGemini":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake.dispatch(self)

            def do_POST(self) -> None:  # noqa: N802
                fake.dispatch(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-gemini", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeGemini":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- video ------------------------------------------------------------------------------------------------
INTERACTIONS_ROUTE = re.compile(r"^/(?P<version>v1beta|v1)/interactions$")
INTERACTION_ROUTE = re.compile(r"^/(?P<version>v1beta|v1)/interactions/(?P<ident>[^/]+)$")
PREDICT_ROUTE = re.compile(r"^/(?P<version>v1beta|v1)/models/(?P<vmodel>[^/:]+):predictLongRunning$")
OPERATION_ROUTE = re.compile(r"^/(?P<version>v1beta|v1)/(?P<name>models/[^/]+/operations/[^/]+)$")
FILE_ROUTE = re.compile(r"^/(?P<version>v1beta|v1)/files/(?P<fid>[a-z0-9]+):download$")


def fake_mp4(label: str, size: int = 1_500_000) -> bytes:
    """The stub provider's playable MP4 plus a top-level `free` box naming the video (and padding it past one
    download chunk, so streaming is exercised)."""
    import struct
    from importlib import resources

    fixture = resources.files("storytree_build.providers").joinpath("stub_video.mp4").read_bytes()
    payload = f"fake gemini video {label}".encode().ljust(max(0, size - len(fixture) - 8), b".")
    return fixture + struct.pack(">I4s", 8 + len(payload), b"free") + payload


@dataclass
class FakeOperation:
    api: str  # interactions | predict_long_running
    name: str  # interaction id, or the long-running operation's full name
    model: str
    file_id: str
    outcome: str  # done | done_inline | error | rai | pending (until release())
    polls_left: int  # pending answers before the outcome
    polls: int = 0


class FakeVideo:
    """The video half of the fake: scripted per phase, every request recorded by the server as usual.

        fake.video.play_submit("rate_limited", "accept")   # next submits: 429 (RetryInfo), then accepted
        fake.video.next_outcome("done", pending=2)          # the next operation: 2 pending polls, then a uri
        fake.video.play_poll("unavailable")                 # the next poll answers 503 first
        fake.video.play_download("cut", "ok")               # first download hangs up mid-body, then a full one
        fake.video.release()                                # let every "pending" operation finish

    Submit steps: accept, rate_limited, retired, internal, bad_request, slow (accepted, answered too late), hang_up
    (accepted, the connection closed unanswered), truncated (accepted, the answer cut short).
    Outcomes: done, done_inline, error, rai, pending. Poll steps: unavailable, rate_limited, gone.
    Download steps: ok, cut, redirect (302 to `redirect_to`, another FakeGemini), unavailable, gone, not_mp4.
    """

    def __init__(self, fake: FakeGemini):
        self.fake = fake
        self.operations: dict[str, FakeOperation] = {}
        self.files: dict[str, bytes] = {}
        self.submit_steps: deque[str] = deque()
        self.outcomes: deque[tuple[str, int]] = deque()
        self.default_outcome: tuple[str, int] = ("done", 1)
        self.poll_steps: deque[str] = deque()
        self.download_steps: deque[str] = deque()
        self.redirect_to: FakeGemini | None = None
        self.submit_calls: list[Recorded] = []
        self.poll_calls: list[Recorded] = []
        self.download_calls: list[Recorded] = []
        self._counter = 0
        fake.add_route("POST", INTERACTIONS_ROUTE, self.create_interaction)
        fake.add_route("GET", INTERACTION_ROUTE, self.get_interaction)
        fake.add_route("POST", PREDICT_ROUTE, self.predict_long_running)
        fake.add_route("GET", OPERATION_ROUTE, self.get_operation)
        fake.add_route("GET", FILE_ROUTE, self.download)

    # -- scripting ----------------------------------------------------------------------------------
    def play_submit(self, *steps: str) -> None:
        self.submit_steps.extend(steps)

    def next_outcome(self, outcome: str, pending: int = 0) -> None:
        self.outcomes.append((outcome, pending))

    def play_poll(self, *steps: str) -> None:
        self.poll_steps.extend(steps)

    def play_download(self, *steps: str) -> None:
        self.download_steps.extend(steps)

    def release(self) -> None:
        with self.fake._lock:
            for op in self.operations.values():
                if op.outcome == "pending":
                    op.outcome, op.polls_left = "done", 0

    def add_file(self, data: bytes | None = None) -> str:
        """Store a finished video and return its download link on this server."""
        with self.fake._lock:
            fid = self._new_id("file")
            self.files[fid] = data if data is not None else fake_mp4(fid)
        return self.file_uri(fid)

    def file_uri(self, fid: str) -> str:
        return f"{self.fake.url}/v1beta/files/{fid}:download?alt=media"

    # -- submit -------------------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}x{threading.get_ident() % 100000:05d}"

    def _submit(self, call: Recorded, api: str, model: str) -> tuple[Reply | None, FakeOperation | None]:
        refused = self.fake.over_quota(model)
        with self.fake._lock:
            self.submit_calls.append(call)
            if refused is not None:
                return refused, None
            step = self.submit_steps.popleft() if self.submit_steps else "accept"
            if step == "rate_limited":
                return Reply(429, error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded for video generation "
                                             "requests per minute.", [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": self.fake.retry_delay}])), None
            if step == "quota_per_day":
                return self.fake.steps["quota_per_day"](call), None
            if step == "retired":
                return Reply(404, error_body(404, "NOT_FOUND", f"models/{model} is no longer available to new "
                                             "users. Please update your code to use a newer model.")), None
            if step == "internal":
                return Reply(500, error_body(500, "INTERNAL", "Internal error encountered.")), None
            if step == "bad_request":
                return Reply(400, error_body(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")), None
            outcome, pending = self.outcomes.popleft() if self.outcomes else self.default_outcome
            fid = self._new_id("file")
            self.files[fid] = fake_mp4(fid)
            ident = self._new_id("int" if api == "interactions" else "op")
            name = ident if api == "interactions" else f"models/{model}/operations/{ident}"
            op = FakeOperation(api, name, model, fid, outcome, pending if outcome != "pending" else 10 ** 9)
            self.operations[name] = op
            delay = self.fake.slow_seconds if step == "slow" else 0.0
            # The job exists, but its answer is lost: "hang_up" closes the connection unanswered, "truncated" cuts
            # the body short of its Content-Length.
            return Reply(delay=delay, hang_up="close" if step == "hang_up" else None,
                         cut_after=8 if step == "truncated" else None), op

    def create_interaction(self, call: Recorded, match: re.Match[str]) -> Reply:
        model = str((call.body or {}).get("model") or "")
        reply, op = self._submit(call, "interactions", model)
        if op is None:
            return reply  # type: ignore[return-value]
        reply.body = {"id": op.name, "status": "in_progress", "model": model}  # type: ignore[union-attr]
        return reply  # type: ignore[return-value]

    def predict_long_running(self, call: Recorded, match: re.Match[str]) -> Reply:
        reply, op = self._submit(call, "predict_long_running", match.group("vmodel"))
        if op is None:
            return reply  # type: ignore[return-value]
        reply.body = {"name": op.name}  # type: ignore[union-attr]
        return reply  # type: ignore[return-value]

    # -- poll ---------------------------------------------------------------------------------------
    def _poll(self, call: Recorded, name: str) -> tuple[Reply | None, FakeOperation | None, bool]:
        """(error reply, operation, finished?)."""
        with self.fake._lock:
            self.poll_calls.append(call)
            step = self.poll_steps.popleft() if self.poll_steps else "ok"
            if step == "unavailable":
                return Reply(503, error_body(503, "UNAVAILABLE", "The service is currently unavailable.")), None, False
            if step == "rate_limited":
                return Reply(429, error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": self.fake.retry_delay}])), \
                    None, False
            op = self.operations.get(name)
            if op is None or step == "gone":
                return Reply(404, error_body(404, "NOT_FOUND", f"Operation {name} not found.")), None, False
            op.polls += 1
            if op.polls_left > 0:
                op.polls_left -= 1
                return None, op, False
            return None, op, True

    def get_interaction(self, call: Recorded, match: re.Match[str]) -> Reply:
        reply, op, finished = self._poll(call, match.group("ident"))
        if op is None:
            return reply  # type: ignore[return-value]
        if not finished:
            return Reply(body={"id": op.name, "status": "queued" if op.polls == 1 else "in_progress"})
        body: dict[str, Any] = {"id": op.name, "model": op.model, "status": "completed", "steps": [  # live shape:
            {"type": "user_input", "content": [{"type": "text", "text": "(the prompt)"}]},  # TanStack/ai#871
            {"type": "thought", "signature": "fake-signature"}]}
        if op.outcome == "done":
            body["steps"].append({"type": "model_output", "content": [
                {"type": "video", "mime_type": "video/mp4", "uri": self.file_uri(op.file_id)}]})
        elif op.outcome == "done_inline":
            body["steps"].append({"type": "model_output", "content": [
                {"type": "video", "mime_type": "video/mp4", "data": base64.b64encode(self.files[op.file_id]).decode()}]})
        elif op.outcome == "error":
            body.update(status="failed", errors=[{"code": "https://ai.google.dev/errors/internal",
                                                  "message": "Video generation failed due to an internal error."}])
        elif op.outcome == "rai":
            body.update(status="failed", errors=[{"code": "https://ai.google.dev/errors/safety",
                                                  "message": "The video was blocked by the safety filters."}])
        return Reply(body=body)

    def get_operation(self, call: Recorded, match: re.Match[str]) -> Reply:
        reply, op, finished = self._poll(call, match.group("name"))
        if op is None:
            return reply  # type: ignore[return-value]
        if not finished:  # both pending shapes of gemini-api.md §4.3
            return Reply(body={"name": op.name} if op.polls == 1 else
                         {"name": op.name, "done": False, "metadata": {"progressPercent": 50}})
        body: dict[str, Any] = {"name": op.name, "done": True}
        answer: dict[str, Any] = {}
        if op.outcome == "done":
            answer = {"generatedSamples": [{"video": {"uri": self.file_uri(op.file_id)}}]}
        elif op.outcome == "done_inline":
            answer = {"generatedSamples": [{"video": {"encodedVideo": base64.b64encode(self.files[op.file_id]).decode(),
                                                      "encoding": "video/mp4"}}]}
        elif op.outcome == "error":
            body["error"] = {"code": 13, "message": "Video generation failed due to an internal error."}
        elif op.outcome == "rai":
            answer = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [
                "The video could not be generated because it may violate the usage guidelines."]}
        if "error" not in body:
            body["response"] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                                         "PredictLongRunningResponse", "generateVideoResponse": answer}
        return Reply(body=body)

    # -- download -----------------------------------------------------------------------------------
    def download(self, call: Recorded, match: re.Match[str]) -> Reply:
        fid = match.group("fid")
        with self.fake._lock:
            self.download_calls.append(call)
            step = self.download_steps.popleft() if self.download_steps else "ok"
            data = self.files.get(fid)
        if data is None or step == "gone":
            return Reply(404, error_body(404, "NOT_FOUND", f"File {fid} not found."))
        if step == "unavailable":
            return Reply(503, error_body(503, "UNAVAILABLE", "The service is currently unavailable."))
        if step == "not_mp4":
            return Reply(200, "<html>sign in</html>", {"content-type": "text/html"})
        if step == "redirect":
            other = self.redirect_to
            assert other is not None, "set fake.video.redirect_to to a second FakeGemini first"
            other.video.files[fid] = data
            return Reply(302, b"", {"location": other.video.file_uri(fid)})
        headers = {"content-type": "video/mp4"}
        if step == "cut":
            return Reply(200, data, headers, cut_after=len(data) // 3)
        return Reply(200, data, headers)
