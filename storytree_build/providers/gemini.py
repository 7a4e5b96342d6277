"""Gemini image generation through the official google-genai SDK: one `generateContent` call per image.

Every paid Gemini image call passes through `GeminiProvider.generate_image`:

    per-target deadline
      └── model slot (per-model concurrency limit, shared by all threads of the process)
            └── one SDK call (per-call timeout always set; the SDK's own retries are off)
      └── classify: image → result | prompt blocked / policy block → refused | no image → retry ≤ 2
                    408/429/5xx, timeout, connection error → full-jitter backoff (RetryInfo wins) → retry
                    404 for the model → ConfigError (retired model) | other 4xx → error, never retried

Secrets: the API key lives only in the client's `x-goog-api-key` header. Messages are built from the
error's code, status and server message (never from request objects or the client), and a logging
filter redacts the key from anything a handler would print. With `CI` set, only loopback endpoints are
called. Facts behind the choices: docs/gemini-api.md §1.3 (result shapes), §3 (errors, retries, timeouts).

Shot videos (submit once, poll, stream the download) live in `gemini_video.py`; the three video methods below
delegate to it.
"""

from __future__ import annotations

import fnmatch
import io
import ipaddress
import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from ..errors import (ConfigError, GenerationRefused, ProviderError, QuotaExhausted, RetryableProviderError,
                      StorytreeError)
from ..quota import daily_reset_hint, quota_window
from ..settings import GeminiSettings, ImageTargetConfig
from .base import ImageRequest, ImageResult, VideoRequest, VideoStatus

log = logging.getLogger("storytree")

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Finish reasons that mean "withheld on policy grounds": never retried as-is (gemini-api.md §1.3).
POLICY_FINISH = frozenset({"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST",
                           "SPII", "RECITATION", "IMAGE_RECITATION"})
AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED"})
KIND_BY_TASK_PREFIX = (("ref:character.", "character_plate"), ("ref:environment.", "environment_keyframe"),
                       ("image:", "key_frame"))
MAX_TEXT = 400


# -- process-wide per-model concurrency ---------------------------------------------------------------
class ModelSlots:
    """At most `limit` calls in flight per model id across every thread (and provider) of this process,
    so `doit -n N -P thread` never exceeds the configured limit whatever N is."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._in_flight: dict[str, int] = {}

    @contextmanager
    def hold(self, model: str, limit: int, timeout: float | None = None) -> Iterator[None]:
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._in_flight.get(model, 0) >= limit:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise _NoSlot(model)
                self._cond.wait(remaining)
            self._in_flight[model] = self._in_flight.get(model, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                self._in_flight[model] -= 1
                self._cond.notify_all()


MODEL_SLOTS = ModelSlots()


# -- secrets ------------------------------------------------------------------------------------------
class RedactSecret(logging.Filter):
    """Replaces the API key in any record a handler is about to print (SDK and httpx logs included)."""

    def __init__(self, secret: str):
        super().__init__("storytree-redact")
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a broken record is the logging module's problem, not ours
                return True
            if self.secret in message:
                record.msg, record.args = message.replace(self.secret, "[redacted]"), None
        return True


def install_redaction(secret: str) -> None:
    for logger in (logging.getLogger(), logging.getLogger("storytree")):
        for handler in logger.handlers:
            if not any(isinstance(f, RedactSecret) and f.secret == secret for f in handler.filters):
                handler.addFilter(RedactSecret(secret))


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Timeouts and connection failures of whichever httpx flavour the SDK uses (3.x: httpx2)."""
    found: list[type[BaseException]] = []
    for module in ("httpx", "httpx2"):
        try:
            mod = __import__(module)
        except ImportError:  # pragma: no cover - depends on what the SDK pulled in
            continue
        found += [mod.TimeoutException, mod.TransportError]
    return tuple(found)


# -- errors and their delays --------------------------------------------------------------------------
def retry_delay(exc: Any) -> float | None:
    """The server's own wait: google.rpc.RetryInfo `retryDelay` ("41s", "0.5s") or a Retry-After header."""
    details = getattr(exc, "details", None)
    error = details.get("error") if isinstance(details, dict) else None
    items = error.get("details") if isinstance(error, dict) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            value = item.get("retryDelay")
            if isinstance(value, str) and value.endswith("s"):
                try:
                    return max(0.0, float(value[:-1]))
                except ValueError:
                    pass
            if isinstance(value, dict):  # the proto-JSON object form
                return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        try:
            value = headers.get("retry-after")
            return max(0.0, float(value)) if value is not None else None
        except (TypeError, ValueError):
            return None
    return None


def _error_reasons(exc: Any) -> set[str]:
    details = getattr(exc, "details", None)
    error = details.get("error") if isinstance(details, dict) else None
    items = error.get("details") if isinstance(error, dict) else None
    return {str(i.get("reason")) for i in items or [] if isinstance(i, dict) and i.get("reason")}


def full_jitter(attempt: int, base: float, cap: float) -> float:
    return random.uniform(0, min(cap, base * (2 ** attempt)))


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "name", None) or getattr(value, "value", None) or value)


def _short(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


class _NoSlot(Exception):
    """No model slot freed up before the target's deadline."""


class _NoImage(Exception):
    """The call succeeded but carried no usable image; `retry` says whether asking again may help."""

    def __init__(self, reason: str, text: str | None, retry: bool, refused: bool = False):
        super().__init__(reason)
        self.reason, self.text, self.retry, self.refused = reason, text, retry, refused


def read_image(response: Any) -> ImageResult:
    """The first non-thought part whose inline data is an image that Pillow can decode (§1.3)."""
    feedback = getattr(response, "prompt_feedback", None)
    block = _enum_name(getattr(feedback, "block_reason", None)) if feedback is not None else None
    candidates = getattr(response, "candidates", None) or []
    candidate = candidates[0] if candidates else None
    parts = (candidate.content.parts if candidate is not None and candidate.content is not None else None) or []
    text = "\n".join(p.text for p in parts if p.text and not p.thought) or None
    if block:
        raise _NoImage(f"the prompt was blocked (block reason {block})", text, retry=False, refused=True)
    finish = _enum_name(getattr(candidate, "finish_reason", None))
    undecodable = None
    for part in parts:
        blob = part.inline_data
        if part.thought or blob is None or not blob.data or not (blob.mime_type or "").startswith("image/"):
            continue
        try:
            with Image.open(io.BytesIO(blob.data)) as probe:
                probe.verify()
        except Exception as exc:  # noqa: BLE001 - any decoder failure means "not an image"
            undecodable = f"the returned {blob.mime_type} bytes are not a valid image ({type(exc).__name__})"
            continue
        return ImageResult(data=blob.data, mime_type=blob.mime_type, text=text)
    if finish in POLICY_FINISH:
        raise _NoImage(f"the image was withheld by a policy filter (finish reason {finish})", text, retry=False,
                       refused=True)
    if undecodable:
        raise _NoImage(undecodable, text, retry=True)
    if candidate is None:
        raise _NoImage("the response had no candidates", text, retry=True)
    shape = "text only" if text else "no parts"
    raise _NoImage(f"no image was returned (finish reason {finish or 'none'}, {shape})", text, retry=True)


# -- the provider -------------------------------------------------------------------------------------
class GeminiProvider:
    name = "gemini"

    def __init__(self, api_key: str, options: GeminiSettings, base_url: str | None = None,
                 slots: ModelSlots | None = None):
        from google import genai
        from google.genai import errors, types

        self._types, self._errors = types, errors
        self.options = options
        self.base_url = base_url or DEFAULT_BASE_URL
        self.slots = slots or MODEL_SLOTS
        self._secret = api_key.strip()
        self._transport_errors = _transport_errors()
        self._unavailable: dict[str, str] = {}  # model → message, so a retired model fails fast once known
        install_redaction(self._secret)
        # retry_options left unset: the SDK then makes exactly one attempt, and every retry is ours.
        self._client = genai.Client(
            api_key=self._secret, vertexai=False,
            http_options=types.HttpOptions(api_version=options.api_version, base_url=self.base_url,
                                           timeout=int(options.timeout_seconds * 1000)))

    def __repr__(self) -> str:
        return f"GeminiProvider(base_url={self.base_url!r})"

    @classmethod
    def from_settings(cls, settings: Any) -> "GeminiProvider":
        key = settings.gemini_api_key.get_secret_value() if settings.gemini_api_key is not None else ""
        if not key.strip():
            raise ConfigError("The gemini provider needs an API key: set GEMINI_API_KEY (or GOOGLE_API_KEY).")
        base_url = settings.gemini_base_url or DEFAULT_BASE_URL
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).hostname:
            raise ConfigError(f"GOOGLE_GEMINI_BASE_URL must be an http(s) URL, got {base_url!r}.")
        if settings.ci and not is_loopback(base_url):
            raise ConfigError(
                f"CI is set, so the gemini provider only calls loopback endpoints, but the base URL is "
                f"{urlsplit(base_url).hostname}. Point GOOGLE_GEMINI_BASE_URL at the local fake server "
                "(http://127.0.0.1:<port>) or use the stub provider in CI.")
        return cls(key, settings.gemini, base_url)

    # -- images -----------------------------------------------------------------------------------
    def supports_image_size(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.options.image_size_models)

    def build_call(self, request: ImageRequest, timeout: float) -> tuple[Any, Any]:
        """The `contents` and `config` of one generateContent call: references first, then the text."""
        types = self._types
        parts = [types.Part.from_bytes(data=ref.data, mime_type=ref.mime_type) for ref in request.references]
        parts.append(types.Part.from_text(text=request.prompt))
        size = request.image_size if request.image_size and self.supports_image_size(request.model) else None
        config = types.GenerateContentConfig(
            system_instruction=request.system_instruction or None,
            response_modalities=["IMAGE"],
            image_config=types.ImageConfig(aspect_ratio=request.aspect_ratio, image_size=size),
            candidate_count=1,
            http_options=types.HttpOptions(timeout=max(1, int(timeout * 1000))),
        )
        return [types.Content(role="user", parts=parts)], config

    def generate_image(self, request: ImageRequest) -> ImageResult:
        opts, task, model = self.options, request.task, request.model
        if model in self._unavailable:
            raise ConfigError(self._unavailable[model])
        limit = opts.model_concurrency.get(model, opts.max_concurrency)
        deadline: float | None = None  # starts with the first call, not while queueing for a slot
        failures = no_image = calls = 0
        last = ""
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise self._gave_up(task, calls, last, deadline=True)
            try:
                with self.slots.hold(model, limit, timeout=remaining):
                    if deadline is None:
                        deadline = time.monotonic() + opts.deadline_seconds
                    call_timeout = min(opts.timeout_seconds, max(0.05, deadline - time.monotonic()))
                    contents, config = self.build_call(request, call_timeout)
                    calls += 1
                    response = self._client.models.generate_content(model=model, contents=contents, config=config)
                return read_image(response)
            except _NoSlot:
                raise self._gave_up(task, calls, last or "waiting for a free model slot", deadline=True) from None
            except _NoImage as exc:
                said = f" The model said: {_short(exc.text)!r}." if exc.text else ""
                if exc.refused:
                    raise GenerationRefused(
                        f"{task}: Gemini did not generate the image: {exc.reason}.{said} Not retried; change the "
                        "story text behind this target and build again.") from None
                if not exc.retry or no_image >= opts.no_image_retries:
                    raise ProviderError(
                        f"{task}: Gemini returned no usable image after {calls} call(s): {exc.reason}.{said} "
                        "Nothing was saved.") from None
                no_image += 1
                last = exc.reason
                log.warning("%s: %s; asking again (%d/%d)", task, exc.reason, no_image, opts.no_image_retries)
                continue
            except self._errors.APIError as exc:
                verdict = self._classify_api_error(request, exc)
                if isinstance(verdict, StorytreeError):
                    raise verdict from None  # no SDK objects (and their request headers) in the chain
                delay, last = verdict
                rate_limited = int(exc.code or 0) == 429
            except self._transport_errors as exc:
                kind = "timed out" if "Timeout" in type(exc).__name__ else "connection failed"
                delay, last, rate_limited = None, f"the call {kind} ({type(exc).__name__})", False
            except json.JSONDecodeError:
                delay, last, rate_limited = None, "the response body was not valid JSON", False
            except Exception as exc:  # noqa: BLE001 - unknown SDK failure: report it, never leak a traceback
                raise ProviderError(f"{task}: the Gemini call failed unexpectedly ({type(exc).__name__}: "
                                    f"{self._redact(str(exc))[:MAX_TEXT]}); nothing was saved.") from None
            failures += 1
            if failures >= opts.max_attempts:
                raise self._gave_up(task, calls, last, retry_after=delay)
            base, cap = ((opts.rate_limit_base_seconds, opts.rate_limit_cap_seconds) if rate_limited
                         else (opts.backoff_base_seconds, opts.backoff_cap_seconds))
            wait = delay if delay is not None else full_jitter(failures - 1, base, cap)
            assert deadline is not None
            if time.monotonic() + wait >= deadline:
                raise self._gave_up(task, calls, f"{last}; the next try would start after the deadline",
                                    deadline=True, retry_after=delay)
            log.warning("%s: %s; retrying in %.2fs (attempt %d of %d)", task, last, wait, failures + 1,
                        opts.max_attempts)
            time.sleep(wait)

    def _classify_api_error(self, request: ImageRequest, exc: Any) -> tuple[float | None, str] | StorytreeError:
        """Retryable errors give (server delay, reason); anything else gives the final error to raise."""
        code = int(getattr(exc, "code", 0) or 0)
        status = getattr(exc, "status", None) or ""
        message = self._redact(_short(str(getattr(exc, "message", "") or "")))
        summary = f"HTTP {code} {status}: {message}".strip().rstrip(":")
        if code == 429 and quota_window(getattr(exc, "details", None)) == "day":
            hint = daily_reset_hint()
            return QuotaExhausted(f"{request.task}: the daily quota of {request.model} is used up ({summary}); "
                                  f"not retried, and no new images are sent to it in this run. {hint}.",
                                  request.model, hint)
        if code in RETRYABLE_STATUS or code >= 500:
            return retry_delay(exc), summary
        if code == 404:
            kind = next((k for prefix, k in KIND_BY_TASK_PREFIX if request.task.startswith(prefix)), "key_frame")
            retired = "no longer available" in message.lower()
            why = "has been retired" if retired else "was not found (unknown model id or API version)"
            text = (f"{request.task}: the image model {request.model!r} {why} ({summary}). Choose a current image "
                    f"model (default {ImageTargetConfig().model}) with STORYTREE_IMAGE_MODEL or storytree.toml "
                    f"[generation.{kind}] model = \"...\", then run `storytree manifest <story-id>` and build again.")
            self._unavailable[request.model] = text
            return ConfigError(text)
        if code in (401, 403) or _error_reasons(exc) & AUTH_REASONS:
            return ConfigError(f"{request.task}: Gemini rejected the API key ({summary}). Check GEMINI_API_KEY / "
                               "GOOGLE_API_KEY and the key's project and region.")
        return ProviderError(f"{request.task}: Gemini refused the request ({summary}); not retried. Nothing was saved.")

    def _gave_up(self, task: str, calls: int, last: str, deadline: bool = False,
                 retry_after: float | None = None) -> RetryableProviderError:
        why = (f"the per-target deadline of {self.options.deadline_seconds:g}s ran out" if deadline
               else f"{calls} call(s) failed")
        return RetryableProviderError(
            f"{task}: Gemini image generation gave up, {why} (last: {last or 'no call made'}). Nothing was saved; "
            "build again later.", retry_after=retry_after)

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "[redacted]") if self._secret else text

    # -- video: submit once, poll, stream (providers/gemini_video.py) -------------------------------
    def _video(self) -> Any:
        with _VIDEO_LOCK:
            video = getattr(self, "_video_client", None)
            if video is None:
                from .gemini_video import GeminiVideo

                video = self._video_client = GeminiVideo(self._secret, self.options, self.base_url)
            return video

    def submit_video(self, request: VideoRequest) -> str:
        return self._video().submit(request)

    def poll_video(self, operation: str) -> VideoStatus:
        return self._video().poll(operation)

    def download_video(self, status: VideoStatus, destination: Path) -> None:
        self._video().download(status, destination)

    def close(self) -> None:
        video = getattr(self, "_video_client", None)
        if video is not None:
            video.close()
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


_VIDEO_LOCK = threading.Lock()
