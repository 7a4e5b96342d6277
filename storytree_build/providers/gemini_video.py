"""Gemini shot videos: submit once, poll with retries, stream the result to the build's temp file.

The wire protocols (Interactions API by default, Veo predictLongRunning by configuration) are in
`gemini_video_wire.py`; the download and its key rules in `video_download.py`.

Money rules (docs/gemini-api.md §2, §3.2, §6):

    submit    exactly one request per call, on a connection of its own (no stale keep-alive connection can
              turn into a false "maybe"). The SDK's own retries are off (`attempts=1`).
              - the server answered 429/408, or the connection was never established → no job exists:
                retried with backoff (the server's RetryInfo delay wins), then a RetryableProviderError;
              - 4xx → no job exists: a normal per-target error (404 → ConfigError naming the model setting,
                401/403/invalid key → ConfigError about the key);
              - 5xx, a timeout or lost connection after the request was sent, or a 200 we cannot read →
                the job may exist: SubmitUncertain (the build marks the target; the user must resubmit).
    poll      408/429/5xx, timeouts, connection errors and unreadable bodies are retried with backoff; a 404 means
              the operation is gone (it stays recorded, and only an explicit `storytree resubmit` pays again).
    download  see video_download.py; failures that may pass (5xx, 408/429, interrupted transfers) are retried.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import httpx

from ..core.errors import (ConfigError, InputError, ProviderError, QuotaExhausted, RetryableProviderError,
                      StorytreeError, SubmitUncertain)
from ..core.generation import VideoTargetConfig
from ..core.redact import redact_url
from ..settings import GeminiSettings, Settings
from . import gemini_video_wire as wire
from .base import VideoRequest, VideoStatus
from .google_http import (UNLIMITED, HttpFailure, Redactor, RetriesExhausted, Verdict, call_with_retries,
                          close_quietly, daily_reset_hint, endpoint, is_loopback, short)
from .rate_limit import RateLimiter
from .video_download import VideoDownloader, json_or_text

log = logging.getLogger("storytree")

T = TypeVar("T")
SETTING_HINT = ("STORYTREE_VIDEO_MODEL or storytree.toml [generation.video] model = \"...\" (and "
                "[generation.video] api)")


class GeminiVideos:
    """Video half of the gemini provider. Thread-safe: doit threads share one instance."""

    name = "gemini"

    def __init__(self, api_key: str, options: GeminiSettings, base_url: str, limiter: RateLimiter | None = None):
        self.limiter = limiter  # paces submits (the paid calls) per model; polls and downloads are free
        self._secret = api_key.strip()
        self.options = options
        self.base_url = base_url.rstrip("/")
        self._redact = Redactor(self._secret)
        self._redact.install()
        self._lock = threading.Lock()
        self._unavailable: dict[str, str] = {}  # model → message: a retired model fails fast once known
        self._sdk: dict[str, Any] = {}  # "submit" | "poll" → genai.Client (Interactions API), created lazily
        timeout = httpx.Timeout(options.timeout_seconds)
        # Proxy settings from the environment apply to the real API (as in the SDK), never to a loopback one.
        trust_env = not is_loopback(self.base_url)
        self._http = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=trust_env)
        # Submits get a connection of their own: a pooled keep-alive connection the server already dropped
        # would fail "after sending" and look like a submit that may have been paid for.
        self._submit_http = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=trust_env,
                                         limits=httpx.Limits(max_keepalive_connections=0))
        self.downloader = VideoDownloader(self._http, self.base_url, self._secret, self._redact)

    @classmethod
    def from_settings(cls, settings: Settings, limiter: RateLimiter | None = None) -> "GeminiVideos":
        key, base_url = endpoint(settings)
        return cls(key, settings.gemini, base_url, limiter)

    def __repr__(self) -> str:
        return f"GeminiVideos(base_url={redact_url(self.base_url)!r})"

    def close(self) -> None:
        close_quietly(self._http, self._submit_http, *self._sdk.values())

    # -- clients ----------------------------------------------------------------------------------
    def _client(self, role: str) -> Any:
        """A genai client with the SDK's retries off (the Interactions client retries 4 times by default,
        on 5xx and connection errors too, which could pay twice for one submit)."""
        with self._lock:
            client = self._sdk.get(role)
            if client is None:
                from google import genai
                from google.genai import types

                client = genai.Client(
                    api_key=self._secret, vertexai=False,
                    http_options=types.HttpOptions(api_version=self.options.api_version, base_url=self.base_url,
                                                   timeout=int(self.options.timeout_seconds * 1000),
                                                   retry_options=types.HttpRetryOptions(attempts=1)))
                self._sdk[role] = client
            return client

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{self.options.api_version}/{path}"

    def _retrying(self, call: Callable[[], T], judge: Callable[[HttpFailure], Verdict], what: str,
                  message: Callable[[Verdict], str], allowances: dict[str, int] | None = None) -> T:
        def judged(exc: BaseException) -> Verdict:
            if isinstance(exc, HttpFailure):
                return judge(exc)
            if isinstance(exc, StorytreeError):
                return Verdict(final=exc)
            raise exc

        def on_retry(verdict: Verdict, wait: float, counts: Counter) -> None:
            if verdict.allowance == "quota":
                log.warning("%s; the model is paused for %.2fs, then the submit waits for its slot (a per-minute "
                            "limit is not charged and not counted as a retry)", message(verdict), verdict.delay or 0.0)
                return
            log.warning("%s; retrying in %.2fs (attempt %d of %d)", message(verdict), wait, counts["attempts"] + 1,
                        self.options.max_attempts)

        try:
            return call_with_retries(call, judged, self.options, on_retry=on_retry, allowances=allowances)
        except RetriesExhausted as spent:
            raise (spent.verdict.give_up or RetryableProviderError(
                f"{what} gave up after {spent.counts['attempts']} attempt(s) (last: {spent.verdict.reason}).",
                retry_after=spent.verdict.delay)) from None

    # -- submit -----------------------------------------------------------------------------------
    def submit(self, request: VideoRequest) -> str:
        try:
            config = VideoTargetConfig.model_validate({**request.config, "model": request.model})
        except ValueError as exc:
            raise InputError(f"{request.task}: the video request is not valid: {exc}; nothing was sent.") from None
        problems = config.problems(len(request.references))
        if problems:
            raise InputError(f"{request.task}: the video request is not valid: {'; '.join(problems)} Fix "
                             "[generation.video] in storytree.toml, run `storytree manifest <story-id>`; nothing was sent.")
        if not wire.SAFE_NAME.match(request.model):
            raise ConfigError(f"{request.task}: {request.model!r} is not a model id; set {SETTING_HINT}.")
        if request.model in self._unavailable:
            raise ConfigError(f"{request.task}: {self._unavailable[request.model]}")
        fields = config.model_dump()
        create = self._create_interaction if config.api == "interactions" else self._predict_long_running

        def send() -> str:
            if self.limiter is not None:
                self.limiter.acquire(request.model, request.task)
            operation = create(request, fields)
            if self.limiter is not None:
                self.limiter.succeeded(request.model)
            return operation

        return self._retrying(
            send, lambda failure: self._judge_submit(request, failure), f"{request.task}: the video submit",
            lambda v: f"{request.task}: the video submit was refused ({v.reason}), so nothing was started",
            allowances={"quota": UNLIMITED})

    def _judge_submit(self, request: VideoRequest, failure: HttpFailure) -> Verdict:
        """Retry only when the failure proves no job was created."""
        task, code = request.task, failure.code
        if failure.transport and not failure.sent:
            return Verdict(reason=failure.summary, give_up=RetryableProviderError(
                f"{task}: could not connect to the video API ({failure.summary}); nothing was sent or charged. "
                "Build again later.", retry_after=None))
        if failure.transport or code is None or code == 200 or code >= 500:
            return Verdict(final=SubmitUncertain(
                f"{task}: the paid video submit got no usable answer ({failure.summary}); the job may exist and be "
                "charged, so it is not sent again automatically. Check the provider's console; to pay for a new "
                f"video on purpose run `storytree resubmit <story-id> {task}` and build again."))
        if failure.daily_quota:
            hint = daily_reset_hint()
            return Verdict(final=QuotaExhausted(
                f"{task}: the daily video quota of {request.model} is used up ({failure.summary}); nothing was "
                f"started or charged, and no new videos are submitted to it in this run. {hint}.", request.model, hint))
        if code == 429 and self.limiter is not None:  # per-minute: the whole model waits, nothing is charged
            self.limiter.rate_limited(request.model, failure.delay)
            return Verdict(reason=failure.summary, delay=failure.delay, allowance="quota", at_once=True)
        if code in (408, 429):
            return Verdict(reason=failure.summary, delay=failure.delay, rate_limited=code == 429,
                           give_up=RetryableProviderError(
                               f"{task}: the video API refused the submit ({failure.summary}); nothing was started or "
                               "charged. Build again later.", retry_after=failure.delay))
        if code == 404:
            why = "has been retired" if failure.retired else "was not found (unknown model id, api or API version)"
            text = (f"the video model {request.model!r} {why} ({failure.summary}). Choose a current video model "
                    f"(default {VideoTargetConfig().model} with api \"interactions\") with {SETTING_HINT}, then run "
                    "`storytree manifest <story-id>` and build again. Nothing was charged.")
            self._unavailable[request.model] = text
            return Verdict(final=ConfigError(f"{task}: {text}"))
        if failure.key_rejected:
            return Verdict(final=ConfigError(
                f"{task}: Gemini rejected the API key for video ({failure.summary}). Check GEMINI_API_KEY / "
                "GOOGLE_API_KEY and the key's project, tier and region."))
        return Verdict(final=ProviderError(f"{task}: the video API refused the request ({failure.summary}); not "
                                           "retried, nothing was charged."))

    def _create_interaction(self, request: VideoRequest, config: dict[str, Any]) -> str:
        client = self._client("submit")
        interaction = self._sdk_call(lambda: client.interactions.create(
            model=request.model, input=wire.interaction_input(request), response_modalities=["video"],
            background=True, response_format=wire.interaction_format(config), extra_headers={"connection": "close"}))
        ident = wire.field(interaction, "id")
        if not ident or not isinstance(ident, str):
            raise HttpFailure(200, "the answer carried no interaction id")
        return ident if ident.startswith(wire.INTERACTION_PREFIX) else wire.INTERACTION_PREFIX + ident

    def _predict_long_running(self, request: VideoRequest, config: dict[str, Any]) -> str:
        data = self._json_call(self._submit_http, "POST", self._url(f"models/{request.model}:predictLongRunning"),
                               wire.predict_body(request, config), extra={"connection": "close"})
        name = data.get("name") if isinstance(data, dict) else None
        if not wire.is_operation_name(name):
            raise HttpFailure(200, "the answer carried no usable operation name")
        return name

    # -- poll -------------------------------------------------------------------------------------
    def poll(self, operation: str) -> VideoStatus:
        if operation.startswith(wire.INTERACTION_PREFIX):
            ident = operation[len(wire.INTERACTION_PREFIX):]
            client = self._client("poll")
            fetch: Callable[[], Any] = lambda: self._sdk_call(lambda: client.interactions.get(id=ident))  # noqa: E731
            read: Callable[[Any], VideoStatus] = wire.read_interaction
        elif wire.is_operation_name(operation):
            fetch = lambda: self._json_call(self._http, "GET", self._url(operation))  # noqa: E731
            read = wire.read_operation
        else:
            raise ProviderError(f"{operation!r} is not a video operation name this provider issued.")
        what = f"polling {operation}"
        answer = self._retrying(fetch, lambda failure: self._judge_poll(operation, failure), what,
                                lambda v: f"{what}: {v.reason}")
        return read(answer)

    def _judge_poll(self, operation: str, failure: HttpFailure) -> Verdict:
        code = failure.code
        if failure.transport or code is None or code == 200 or code in (408, 429) or code >= 500:
            return Verdict(reason=failure.summary, delay=failure.delay, rate_limited=code == 429,
                           give_up=_gave_up(f"polling {operation}", failure, self.options.max_attempts,
                                            "The operation stays recorded: build again to resume it without paying."))
        if code == 404:
            return Verdict(final=ProviderError(
                f"video operation {operation} is unknown to the provider ({failure.summary}): it expired or was "
                "deleted, so it cannot be resumed. It stays recorded; to generate (and pay for) a new video on "
                "purpose run `storytree resubmit <story-id> <task>` and build again."))
        if failure.key_rejected:
            return Verdict(final=ConfigError(f"Gemini rejected the API key while polling {operation} "
                                             f"({failure.summary}). Check GEMINI_API_KEY / GOOGLE_API_KEY; the "
                                             "operation stays recorded."))
        return Verdict(final=ProviderError(f"polling video operation {operation} failed ({failure.summary}); it stays "
                                           "recorded, so the next build resumes it without paying again."))

    # -- download ---------------------------------------------------------------------------------
    def check_link(self, uri: str) -> None:
        self.downloader.check_link(uri)

    def download(self, status: VideoStatus, destination: Path) -> None:
        uri = (status.uri or "").strip()
        if not uri:
            raise ProviderError("the finished video has no download link.")
        self.check_link(uri)
        what = f"downloading {redact_url(uri)}"
        self._retrying(lambda: self.downloader.fetch(uri, destination),
                       lambda failure: self._judge_download(uri, failure), what,
                       lambda v: f"{what}: {v.reason}")

    def _judge_download(self, uri: str, failure: HttpFailure) -> Verdict:
        code, uri = failure.code, redact_url(uri)  # only ever shown from here on
        if failure.transport or code is None or code in (408, 429) or code >= 500:
            return Verdict(reason=failure.summary, delay=failure.delay, rate_limited=code == 429,
                           give_up=_gave_up(f"downloading {uri}", failure, self.options.max_attempts,
                                            "Nothing was saved; build again to download it again (a recorded "
                                            "operation is resumed without paying)."))
        if code in (404, 410):
            return Verdict(final=ProviderError(
                f"the video at {uri} is no longer on the server ({failure.summary}); generated videos are kept "
                "for about 2 days. To generate (and pay for) a new one on purpose run "
                "`storytree resubmit <story-id> <task>` and build again."))
        if code in (401, 403):
            return Verdict(final=ConfigError(f"the download of {uri} was refused ({failure.summary}); check "
                                             "GEMINI_API_KEY / GOOGLE_API_KEY (the video stays recorded; build again "
                                             "to retry)."))
        return Verdict(final=ProviderError(f"the download of {uri} failed ({failure.summary}); nothing was saved."))

    # -- plumbing ---------------------------------------------------------------------------------
    def _json_call(self, client: httpx.Client, method: str, url: str, body: Any = None,
                   extra: dict[str, str] | None = None) -> Any:
        headers = {"x-goog-api-key": self._secret, "content-type": "application/json", **(extra or {})}
        try:
            response = client.request(method, url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise HttpFailure.from_transport(exc) from None
        parsed = json_or_text(response)
        if response.status_code != 200:
            raise HttpFailure.from_body(response.status_code, parsed, response.headers, self._redact)
        if not isinstance(parsed, dict):
            raise HttpFailure(200, "HTTP 200 with a body that is not a JSON object")
        return parsed

    def _sdk_call(self, call: Callable[[], T]) -> T:
        """Run one Interactions SDK call and turn its failures into `HttpFailure`s (status code, body, headers)."""
        sdk_errors: ModuleType | None
        try:
            from google.genai._gaos.lib import compat_errors as sdk_errors
        except ImportError:  # pragma: no cover - pinned SDK
            sdk_errors = None
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - classified below; nothing of the SDK object is kept
            if sdk_errors is not None and isinstance(exc, sdk_errors.APIConnectionError):
                kind = "timed out" if isinstance(exc, sdk_errors.APITimeoutError) else "connection failed"
                failure = HttpFailure.from_transport(exc)
                raise HttpFailure(None, f"the call {kind} ({type(exc.__cause__ or exc).__name__})", transport=True,
                                  sent=failure.sent) from None
            if sdk_errors is not None and isinstance(exc, sdk_errors.APIError):
                code = getattr(exc, "status_code", None)
                if code is None or code == 200:
                    raise HttpFailure(200, "HTTP 200 with a body the SDK could not read") from None
                headers = getattr(getattr(exc, "response", None), "headers", None)
                raise HttpFailure.from_body(int(code), getattr(exc, "body", None), headers, self._redact) from None
            if isinstance(exc, httpx.HTTPError) or type(exc).__module__.startswith("httpx2"):
                failure = HttpFailure.from_transport(exc)
                raise HttpFailure(None, f"the call failed ({type(exc).__name__})", transport=True,
                                  sent=failure.sent) from None
            raise HttpFailure(None, f"the SDK call failed unexpectedly ({type(exc).__name__}: "
                                    f"{short(self._redact(str(exc)))})", transport=True) from None


def _gave_up(what: str, failure: HttpFailure, attempts: int, hint: str) -> RetryableProviderError:
    return RetryableProviderError(f"{what} gave up after {attempts} attempt(s) (last: {failure.summary}). {hint}",
                                  retry_after=failure.delay)
