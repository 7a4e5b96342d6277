"""A fake Gemini API on 127.0.0.1 that speaks the recorded wire format (docs/gemini-api.md §4).

Point the real google-genai SDK at it with `GOOGLE_GEMINI_BASE_URL=<server.url>` (or
`HttpOptions(base_url=...)`). It records every request (method, path, query, headers, parsed JSON body)
and answers from a script of named steps:

    server.play("unavailable", "unavailable", "ok_png")          # the next three image calls, any model
    server.play("retired", model="gemini-2.5-flash-image", then="retired")   # every call to that model
    server.play("text_only", contains="Wren")                    # calls whose prompt text mentions Wren

A rule applies to a call when its model and text filters match; it plays its steps in order, then its
`then` step forever (or retires when it has none). Calls no rule claims get `default_step` ("ok_png").

Routes are a dispatch table of (method, path regex, handler); handlers take the recorded request and the
regex match and return a `Reply`. Only image generation is served today; video routes
(`:predictLongRunning`, `GET …/operations/…`, `GET /v1beta/files/<id>:download`, `/v1beta/interactions`)
plug in with `server.add_route(...)` and can reuse `play`/`next_step` with their own step names.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
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


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to stall before answering (the client may give up first)


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

    def __init__(self, slow_seconds: float = 2.0, retry_delay: str = "0.01s", latency: float = 0.0):
        self.requests: list[Recorded] = []
        self.rules: list[Rule] = []
        self.default_step = "ok_png"
        self.slow_seconds = slow_seconds  # how long "slow" stalls: set it past the client's timeout
        self.retry_delay = retry_delay  # RetryInfo.retryDelay sent with "rate_limited"
        self.latency = latency  # every image reply waits this long (lets concurrency overlap)
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
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
        }

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
        reply = self.steps[self.next_step(call)](call)
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
            self._send(handler, reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and hung up
        finally:
            if call.model:
                with self._lock:
                    self.in_flight[call.model] -= 1

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
        handler.wfile.write(payload)

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

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
