"""Gemini shot videos: submit once, poll with retries, stream the result to the build's temp file.

Two wire protocols, chosen per target by `[generation.video] api` (the manifest's `config.api`):

    interactions (default)   POST /v1beta/interactions through the SDK's `client.interactions.create`
                             (model `gemini-omni-1.1-flash`, background, `response_format` type video,
                             delivery uri); poll `client.interactions.get(id)`. Operation name `interactions/<id>`.
    predict_long_running     POST /v1beta/models/<model>:predictLongRunning (the Veo protocol, sent with httpx
                             because google-genai ≥ 3 refuses `generate_videos` with an API key); poll
                             GET /v1beta/<operation name>. Operation name as the server gives it.

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
    download  only from the configured API origin (scheme, host and port of the base URL), the key only in the
              `x-goog-api-key` header and only to that origin; redirects are followed by hand without the key
              (https only, loopback only when the API base is loopback); interrupted or failed downloads restart
              from scratch into the same temp file, with backoff.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx

from ..quota import daily_reset_hint, quota_window
from ..errors import (ConfigError, InputError, ProviderError, QuotaExhausted, RetryableProviderError, StorytreeError,
                      SubmitUncertain)
from ..settings import GeminiSettings, VideoTargetConfig
from .base import VideoRequest, VideoStatus
from .gemini import AUTH_REASONS, _error_reasons, _short, full_jitter, is_loopback, retry_delay

log = logging.getLogger("storytree")

T = TypeVar("T")
INTERACTION_PREFIX = "interactions/"
PENDING = frozenset({"in_progress", "queued", "requires_continuation"})
FAILED = frozenset({"failed", "cancelled", "incomplete", "budget_exceeded", "requires_action"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
CHUNK = 1 << 20
SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
SAFE_OPERATION = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
# Words the services use when a video is withheld on policy grounds (not charged, never retried as-is).
SAFETY_WORDS = re.compile(r"safety|\bRAI\b|responsible ai|prohibited|blocklist|\bblocked\b|filtered|usage guidelines"
                          r"|violat", re.IGNORECASE)
NOT_SENT = frozenset({"ConnectError", "ConnectTimeout", "PoolTimeout"})
SETTING_HINT = ("STORYTREE_VIDEO_MODEL or storytree.toml [generation.video] model = \"...\" (and "
                "[generation.video] api)")


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in; the unit the API key is bound to."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port or {"https": 443, "http": 80}.get(scheme, -1)


def _origin_text(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}"


class _Failure(Exception):
    """One failed HTTP exchange, reduced to what classification needs (never the request or its headers)."""

    def __init__(self, code: int | None, summary: str, body: Any = None, headers: Any = None, sent: bool = True,
                 transport: bool = False):
        super().__init__(summary)
        self.code, self.summary, self.body, self.headers = code, summary, body, headers
        self.sent, self.transport = sent, transport

    @property
    def delay(self) -> float | None:
        response = SimpleNamespace(headers=self.headers) if self.headers is not None else None
        return retry_delay(SimpleNamespace(details=self.body if isinstance(self.body, dict) else None,
                                           response=response))

    @property
    def message(self) -> str:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return str(error.get("message") or "") if isinstance(error, dict) else ""


def _summary(code: int | None, body: Any, fallback: str = "") -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        status, message = error.get("status") or "", error.get("message") or ""
    else:
        status, message = "", (body if isinstance(body, str) else fallback)
    return f"HTTP {code} {status}: {_short(str(message))}".strip().rstrip(":")


def _was_sent(exc: BaseException) -> bool:
    """False only when the chain proves the connection was never established (so no request reached a server)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in NOT_SENT and type(current).__module__.split(".")[0] in ("httpx", "httpx2",
                                                                                            "httpcore", "httpcore2"):
            return False
        current = current.__cause__ or current.__context__
    return True


def _b64decode(text: str) -> bytes:
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return base64.urlsafe_b64decode(padded)


def _get(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


class GeminiVideo:
    """Video half of the gemini provider. Thread-safe: doit threads share one instance."""

    def __init__(self, api_key: str, options: GeminiSettings, base_url: str):
        self._secret = api_key.strip()
        self.options = options
        self.base_url = base_url.rstrip("/")
        self.origin = origin(self.base_url)
        self.loopback = is_loopback(self.base_url)
        self._lock = threading.Lock()
        self._unavailable: dict[str, str] = {}  # model → message: a retired model fails fast once known
        self._sdk: dict[str, Any] = {}  # "submit" | "poll" → genai.Client (Interactions API), created lazily
        timeout = httpx.Timeout(options.timeout_seconds)
        # Proxy settings from the environment apply to the real API (as in the SDK), never to a loopback one.
        trust_env = not self.loopback
        self._http = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=trust_env)
        # Submits get a connection of their own: a pooled keep-alive connection the server already dropped
        # would fail "after sending" and look like a submit that may have been paid for.
        self._submit_http = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=trust_env,
                                         limits=httpx.Limits(max_keepalive_connections=0))

    def __repr__(self) -> str:
        return f"GeminiVideo(base_url={self.base_url!r})"

    def close(self) -> None:
        for client in (self._http, self._submit_http, *self._sdk.values()):
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

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

    def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._secret, "content-type": "application/json"}

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{self.options.api_version}/{path}"

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "[redacted]") if self._secret else text

    # -- submit -----------------------------------------------------------------------------------
    def submit(self, request: VideoRequest) -> str:
        from ..manifest import video_config_problems

        config = {**VideoTargetConfig().model_dump(), **request.config}
        problems = video_config_problems(config, len(request.references))
        if problems:
            raise InputError(f"{request.task}: the video request is not valid: {'; '.join(problems)} Fix "
                             "[generation.video] in storytree.toml, run `storytree manifest <story-id>`; nothing was sent.")
        if not SAFE_NAME.match(request.model):
            raise ConfigError(f"{request.task}: {request.model!r} is not a model id; set {SETTING_HINT}.")
        if request.model in self._unavailable:
            raise ConfigError(f"{request.task}: {self._unavailable[request.model]}")
        api = config.get("api")
        if api == "interactions":
            send: Callable[[], str] = lambda: self._create_interaction(request, config)  # noqa: E731
        elif api == "predict_long_running":
            send = lambda: self._predict_long_running(request, config)  # noqa: E731
        else:
            raise ConfigError(f"{request.task}: unknown video api {api!r}; [generation.video] api must be "
                              "\"interactions\" or \"predict_long_running\".")
        refusals = 0
        while True:
            try:
                return send()
            except _Failure as failure:
                error, retry = self._classify_submit(request, failure)
                if not retry:
                    raise error from None  # never chain SDK or httpx objects (they carry the request headers)
                refusals += 1
                if refusals >= self.options.max_attempts:
                    raise error from None
                wait = self._wait(failure, refusals)
                log.warning("%s: the video submit was refused (%s), so nothing was started; retrying in %.2fs "
                            "(attempt %d of %d)", request.task, failure.summary, wait, refusals + 1,
                            self.options.max_attempts)
                time.sleep(wait)

    def _wait(self, failure: "_Failure", attempt: int) -> float:
        """The server's RetryInfo delay when it gave one, else full-jitter backoff (longer for 429s)."""
        if failure.delay is not None:
            return failure.delay
        o = self.options
        base, cap = ((o.rate_limit_base_seconds, o.rate_limit_cap_seconds) if failure.code == 429
                     else (o.backoff_base_seconds, o.backoff_cap_seconds))
        return full_jitter(attempt - 1, base, cap)

    def _classify_submit(self, request: VideoRequest, failure: _Failure) -> tuple[StorytreeError, bool]:
        """(error, retry?) — retry only when the failure proves no job was created."""
        task, code = request.task, failure.code
        if failure.transport and not failure.sent:
            return RetryableProviderError(
                f"{task}: could not connect to the video API ({failure.summary}); nothing was sent or charged. "
                "Build again later.", retry_after=None), True
        if failure.transport or code is None or code == 200 or code >= 500:
            return SubmitUncertain(
                f"{task}: the paid video submit got no usable answer ({failure.summary}); the job may exist and be "
                "charged, so it is not sent again automatically. Check the provider's console; to pay for a new "
                f"video on purpose run `storytree resubmit <story-id> {task}` and build again."), False
        if code == 429 and quota_window(failure.body) == "day":
            hint = daily_reset_hint()
            return QuotaExhausted(f"{task}: the daily video quota of {request.model} is used up ({failure.summary}); "
                                  f"nothing was started or charged, and no new videos are submitted to it in this "
                                  f"run. {hint}.", request.model, hint), False
        if code in (408, 429):
            return RetryableProviderError(
                f"{task}: the video API refused the submit ({failure.summary}); nothing was started or charged. "
                "Build again later.", retry_after=failure.delay), True
        if code == 404:
            retired = "no longer available" in failure.message.lower()
            why = "has been retired" if retired else "was not found (unknown model id, api or API version)"
            text = (f"the video model {request.model!r} {why} ({failure.summary}). Choose a current video model "
                    f"(default {VideoTargetConfig().model} with api \"interactions\") with {SETTING_HINT}, then run "
                    "`storytree manifest <story-id>` and build again. Nothing was charged.")
            self._unavailable[request.model] = text
            return ConfigError(f"{task}: {text}"), False
        if code in (401, 403) or _error_reasons(SimpleNamespace(details=failure.body)) & AUTH_REASONS:
            return ConfigError(f"{task}: Gemini rejected the API key for video ({failure.summary}). Check "
                               "GEMINI_API_KEY / GOOGLE_API_KEY and the key's project, tier and region."), False
        return ProviderError(f"{task}: the video API refused the request ({failure.summary}); not retried, nothing "
                             "was charged."), False

    def _create_interaction(self, request: VideoRequest, config: dict[str, Any]) -> str:
        content: list[dict[str, Any]] = [
            {"type": "image", "data": base64.b64encode(ref.data).decode("ascii"), "mime_type": ref.mime_type}
            for ref in request.references]
        content.append({"type": "text", "text": request.prompt})
        response_format = {"type": "video", "aspect_ratio": config["aspect_ratio"],
                           "resolution": config["resolution"], "duration": f"{int(config['duration_seconds'])}s",
                           "delivery": "uri"}
        client = self._client("submit")
        interaction = self._sdk_call(lambda: client.interactions.create(
            model=request.model, input=content, response_modalities=["video"], background=True,
            response_format=response_format, extra_headers={"connection": "close"}))
        ident = _get(interaction, "id")
        if not ident or not isinstance(ident, str):
            raise _Failure(200, "the answer carried no interaction id")
        return ident if ident.startswith(INTERACTION_PREFIX) else INTERACTION_PREFIX + ident

    def _predict_long_running(self, request: VideoRequest, config: dict[str, Any]) -> str:
        instance: dict[str, Any] = {"prompt": request.prompt}
        if request.references:
            instance["referenceImages"] = [
                {"image": {"bytesBase64Encoded": base64.b64encode(ref.data).decode("ascii"),
                           "mimeType": ref.mime_type}, "referenceType": "ASSET"}
                for ref in request.references]
        body = {"instances": [instance],
                "parameters": {"aspectRatio": config["aspect_ratio"], "resolution": config["resolution"],
                               "durationSeconds": int(config["duration_seconds"]),
                               "personGeneration": config.get("person_generation") or "allow_adult",
                               "sampleCount": 1}}
        data = self._json_call(self._submit_http, "POST", self._url(f"models/{request.model}:predictLongRunning"),
                               body, extra={"connection": "close"})
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str) or not SAFE_OPERATION.match(name) or ".." in name:
            raise _Failure(200, "the answer carried no usable operation name")
        return name

    # -- poll -------------------------------------------------------------------------------------
    def poll(self, operation: str) -> VideoStatus:
        if operation.startswith(INTERACTION_PREFIX):
            ident = operation[len(INTERACTION_PREFIX):]
            client = self._client("poll")
            fetch: Callable[[], Any] = lambda: self._sdk_call(lambda: client.interactions.get(id=ident))  # noqa: E731
            read: Callable[[Any], VideoStatus] = self._read_interaction
        elif SAFE_OPERATION.match(operation) and ".." not in operation:
            fetch = lambda: self._json_call(self._http, "GET", self._url(operation))  # noqa: E731
            read = self._read_operation
        else:
            raise ProviderError(f"{operation!r} is not a video operation name this provider issued.")
        answer = self._with_retries(f"polling {operation}", fetch, self._poll_error(operation),
                                    "The operation stays recorded: build again to resume it without paying.")
        return read(answer)

    def _poll_error(self, operation: str) -> Callable[[_Failure], StorytreeError | None]:
        def classify(failure: _Failure) -> StorytreeError | None:
            code = failure.code
            if failure.transport or code is None or code == 200 or code in (408, 429) or code >= 500:
                return None  # retry
            if code == 404:
                return ProviderError(
                    f"video operation {operation} is unknown to the provider ({failure.summary}): it expired or was "
                    "deleted, so it cannot be resumed. It stays recorded; to generate (and pay for) a new video on "
                    "purpose run `storytree resubmit <story-id> <task>` and build again.")
            if code in (401, 403) or _error_reasons(SimpleNamespace(details=failure.body)) & AUTH_REASONS:
                return ConfigError(f"Gemini rejected the API key while polling {operation} ({failure.summary}). "
                                   "Check GEMINI_API_KEY / GOOGLE_API_KEY; the operation stays recorded.")
            return ProviderError(f"polling video operation {operation} failed ({failure.summary}); it stays "
                                 "recorded, so the next build resumes it without paying again.")
        return classify

    def _read_interaction(self, interaction: Any) -> VideoStatus:
        status = str(_get(interaction, "status") or "")
        if status in PENDING:
            return VideoStatus(done=False)
        reasons = self._interaction_errors(interaction)
        if status == "completed":
            video = self._interaction_video(interaction)
            if video is not None:
                uri, data = _get(video, "uri"), _get(video, "data")
                if uri:
                    return VideoStatus(done=True, uri=str(uri))
                if data:
                    try:
                        return VideoStatus(done=True, data=_b64decode(data) if isinstance(data, str) else bytes(data))
                    except (binascii.Error, ValueError, TypeError):
                        return VideoStatus(done=True, error="the inline video data is not valid base64")
            text = _get(interaction, "output_text")
            reasons += [f"the model said {_short(text)!r}"] if text else []
            why = "; ".join(reasons) or "no reason given"
            if reasons and SAFETY_WORDS.search(why):
                return VideoStatus(done=True, refused=True, error=why)
            return VideoStatus(done=True, error=f"the interaction completed without a video ({why})")
        if status in FAILED:
            why = "; ".join(reasons) or "no reason given"
            if SAFETY_WORDS.search(why):
                return VideoStatus(done=True, refused=True, error=why)
            return VideoStatus(done=True, error=f"status {status}: {why}")
        raise ProviderError(f"the interaction has status {status or 'none'!r}, which this version does not know; "
                            "it stays recorded, so the next build asks again without paying.")

    @staticmethod
    def _interaction_video(interaction: Any) -> Any:
        video = _get(interaction, "output_video")
        if video is not None:
            return video
        for step in reversed(_get(interaction, "steps") or []):
            for item in reversed(_get(step, "content") or []):
                if _get(item, "type") == "video":
                    return item
        for item in reversed(_get(interaction, "outputs") or []):
            if _get(item, "type") == "video":
                return item
        return None

    @staticmethod
    def _interaction_errors(interaction: Any) -> list[str]:
        found = []
        for error in _get(interaction, "errors") or []:
            text = " ".join(str(x) for x in (_get(error, "code"), _get(error, "message")) if x)
            if text:
                found.append(_short(text))
        for step in _get(interaction, "steps") or []:
            error = _get(step, "error")
            if error is not None:
                text = " ".join(str(x) for x in (_get(error, "code"), _get(error, "message")) if x)
                if text:
                    found.append(_short(text))
        return found

    def _read_operation(self, data: Any) -> VideoStatus:
        if not isinstance(data, dict):
            raise ProviderError("the operation answer is not a JSON object; it stays recorded.")
        if not data.get("done"):
            return VideoStatus(done=False)
        error = data.get("error")
        if isinstance(error, dict) and (error.get("message") or error.get("code") is not None):
            why = _short(f"code {error.get('code')}: {error.get('message') or ''}")
            if SAFETY_WORDS.search(why):
                return VideoStatus(done=True, refused=True, error=why)
            return VideoStatus(done=True, error=why)
        response = data.get("response") or {}
        answer = response.get("generateVideoResponse") or response.get("generate_video_response") or {}
        samples = answer.get("generatedSamples") or answer.get("generated_samples") or []
        for sample in samples:
            video = sample.get("video") if isinstance(sample, dict) else None
            if not isinstance(video, dict):
                continue
            if video.get("uri"):
                return VideoStatus(done=True, uri=str(video["uri"]))
            encoded = video.get("encodedVideo") or video.get("bytesBase64Encoded")
            if encoded:
                try:
                    return VideoStatus(done=True, data=_b64decode(encoded))
                except (binascii.Error, ValueError):
                    return VideoStatus(done=True, error="the inline video data is not valid base64")
        filtered = answer.get("raiMediaFilteredCount") or answer.get("rai_media_filtered_count")
        reasons = answer.get("raiMediaFilteredReasons") or answer.get("rai_media_filtered_reasons") or []
        if filtered or reasons:
            text = "; ".join(_short(str(r)) for r in reasons) or f"{filtered} video(s) filtered"
            return VideoStatus(done=True, refused=True, error=f"safety filter (RAI): {text}")
        return VideoStatus(done=True, error="the operation finished without a video")

    # -- download ---------------------------------------------------------------------------------
    def check_link(self, uri: str) -> None:
        """Only the configured API origin may be asked with the key (and this provider asks no one else)."""
        if origin(uri) != self.origin:
            raise InputError(
                f"refused to download {uri!r}: it is not on the configured Gemini API host "
                f"({_origin_text(self.base_url)}), and the API key is only ever sent there. Links to other hosts "
                "are refused; download such a file yourself and do not pass it to --download-link.")

    def download(self, status: VideoStatus, destination: Path) -> None:
        uri = (status.uri or "").strip()
        if not uri:
            raise ProviderError("the finished video has no download link.")
        self.check_link(uri)
        self._with_retries(f"downloading {uri}", lambda: self._fetch(uri, destination), self._download_error(uri),
                           "Nothing was saved; build again to download it again (a recorded operation is resumed "
                           "without paying).")

    def _download_error(self, uri: str) -> Callable[[_Failure], StorytreeError | None]:
        def classify(failure: _Failure) -> StorytreeError | None:
            code = failure.code
            if failure.transport or code is None or code in (408, 429) or code >= 500:
                return None  # retry from scratch
            if code in (404, 410):
                return ProviderError(
                    f"the video at {uri} is no longer on the server ({failure.summary}); generated videos are kept "
                    "for about 2 days. To generate (and pay for) a new one on purpose run "
                    "`storytree resubmit <story-id> <task>` and build again.")
            if code in (401, 403):
                return ConfigError(f"the download of {uri} was refused ({failure.summary}); check GEMINI_API_KEY / "
                                   "GOOGLE_API_KEY (the video stays recorded; build again to retry).")
            return ProviderError(f"the download of {uri} failed ({failure.summary}); nothing was saved.")
        return classify

    def _fetch(self, uri: str, destination: Path) -> None:
        url, keyed = uri, True
        for _ in range(MAX_REDIRECTS + 1):
            headers = {"x-goog-api-key": self._secret} if keyed else {}
            try:
                with self._http.stream("GET", url, headers=headers) as response:
                    if response.status_code in REDIRECTS:
                        url, keyed = self._redirect(url, response.headers.get("location"), keyed)
                        continue
                    if response.status_code != 200:
                        response.read()
                        raise _Failure(response.status_code, _summary(response.status_code, _json_or_text(response)),
                                       _json_or_text(response), response.headers)
                    expected = response.headers.get("content-length")
                    written = 0
                    with open(destination, "wb") as handle:  # every attempt starts from scratch
                        for chunk in response.iter_bytes(CHUNK):
                            handle.write(chunk)
                            written += len(chunk)
                    if expected is not None and expected.isdigit() and response.num_bytes_downloaded != int(expected):
                        raise _Failure(None, f"the download stopped after {response.num_bytes_downloaded} of "
                                             f"{expected} bytes", transport=True)
                    if written == 0:
                        raise _Failure(None, "the download was empty", transport=True)
                    return
            except httpx.HTTPError as exc:
                raise _Failure(None, f"the download was interrupted ({type(exc).__name__})", transport=True,
                               sent=_was_sent(exc)) from None
        raise ProviderError(f"the download of {uri} was redirected more than {MAX_REDIRECTS} times; nothing was saved.")

    def _redirect(self, current: str, location: str | None, keyed: bool) -> tuple[str, bool]:
        if not location:
            raise ProviderError(f"the download of {current} answered a redirect without a Location; nothing was saved.")
        target = urljoin(current, location)
        scheme, host, _ = origin(target)
        allowed = scheme == "https" or (scheme == "http" and self.loopback and is_loopback(target))
        if self.loopback and not is_loopback(target):
            allowed = False  # a local (test or CI) API never sends us out to the network
        if not allowed:
            raise ProviderError(f"the download was redirected to {scheme}://{host}, which is refused (https only, "
                                "and loopback only for a loopback API); nothing was saved.")
        same = origin(target) == self.origin
        if keyed and not same:
            log.info("download redirected to %s://%s; following it without the API key", scheme, host)
        return target, keyed and same

    # -- shared plumbing --------------------------------------------------------------------------
    def _with_retries(self, what: str, call: Callable[[], T],
                      classify: Callable[[_Failure], StorytreeError | None], hint: str) -> T:
        failures = 0
        while True:
            try:
                return call()
            except _Failure as failure:
                final = classify(failure)
                if final is not None:
                    raise final from None
                failures += 1
                if failures >= self.options.max_attempts:
                    raise RetryableProviderError(
                        f"{what} gave up after {failures} attempt(s) (last: {failure.summary}). {hint}",
                        retry_after=failure.delay) from None
                wait = self._wait(failure, failures)
                log.warning("%s: %s; retrying in %.2fs (attempt %d of %d)", what, failure.summary, wait,
                            failures + 1, self.options.max_attempts)
                time.sleep(wait)

    def _json_call(self, client: httpx.Client, method: str, url: str, body: Any = None,
                   extra: dict[str, str] | None = None) -> Any:
        headers = {**self._headers(), **(extra or {})}
        try:
            response = client.request(method, url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
            raise _Failure(None, f"the call {kind} ({type(exc).__name__})", transport=True,
                           sent=_was_sent(exc)) from None
        parsed = _json_or_text(response)
        if response.status_code != 200:
            raise _Failure(response.status_code, self._redact(_summary(response.status_code, parsed)), parsed,
                           response.headers)
        if not isinstance(parsed, dict):
            raise _Failure(200, "HTTP 200 with a body that is not a JSON object")
        return parsed

    def _sdk_call(self, call: Callable[[], T]) -> T:
        """Run one Interactions SDK call and turn its failures into `_Failure`s (status code, body, headers)."""
        try:
            from google.genai._gaos.lib import compat_errors as sdk_errors
        except ImportError:  # pragma: no cover - pinned SDK
            sdk_errors = None
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - classified below; nothing of the SDK object is kept
            if sdk_errors is not None and isinstance(exc, sdk_errors.APIConnectionError):
                kind = "timed out" if isinstance(exc, sdk_errors.APITimeoutError) else "connection failed"
                raise _Failure(None, f"the call {kind} ({type(exc.__cause__ or exc).__name__})", transport=True,
                               sent=_was_sent(exc)) from None
            if sdk_errors is not None and isinstance(exc, sdk_errors.APIError):
                code = getattr(exc, "status_code", None)
                body = getattr(exc, "body", None)
                response = getattr(exc, "response", None)
                if code is None or code == 200:
                    raise _Failure(200, "HTTP 200 with a body the SDK could not read") from None
                raise _Failure(int(code), self._redact(_summary(int(code), body)), body,
                               getattr(response, "headers", None)) from None
            if isinstance(exc, httpx.HTTPError) or type(exc).__module__.startswith("httpx2"):
                raise _Failure(None, f"the call failed ({type(exc).__name__})", transport=True,
                               sent=_was_sent(exc)) from None
            raise _Failure(None, f"the SDK call failed unexpectedly ({type(exc).__name__}: "
                                 f"{_short(self._redact(str(exc)))})", transport=True) from None


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]
