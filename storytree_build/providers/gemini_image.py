"""Gemini image generation through the official google-genai SDK: one `generateContent` call per image.

Every paid Gemini image call passes through `GeminiImages.generate`:

    per-target deadline
      └── model slot (per-model concurrency limit, shared by all threads using this provider)
            └── one SDK call (per-call timeout always set; the SDK's own retries are off; `connection: close`)
      └── judged: image → result
                  certainly not billed → retried here: the connection was never established; 429 (per-minute:
                      the model pauses); 408 and 5xx (error answers: "If your request fails with a 400 or 500
                      error, you won't be charged", ai.google.dev/gemini-api/docs/billing)
                  possibly billed → PaidNothingReceived, never retried here: an answer lost after the request was
                      sent (timeout, reset, closed), a 200 whose body cannot be read, a 200 whose image does not
                      decode; the spend gate counts it as spend and asks again at most once per build
                  answered without an image → PaidNothingReceived as well (see below), asked again by the spend
                      gate at most `no_image_retries` times per build
                  prompt blocked / policy block → BilledRefusal, never retried
                  404 for the model → ConfigError (retired model) | other 4xx → error, never retried

"Answered without an image" (a 200 with a readable body and no image part: text only, NO_IMAGE, no candidates) is
counted as billed. Gemini bills every answered request by its tokens — the prompt's input tokens and whatever output
was generated — and only failed requests (4xx/5xx) are documented as free. So every 200 counts as spend at the
image's estimate (an over-estimate for a text-only answer, which is the safe side for max_cost), and asking again is
a new paid call the spend gate reserves against max_cost like the first (`no_image_retries` stays the allowance: the
user's own setting, 0 turns it off). Policy refusals are 200s too: counted, never asked again.

One generate() therefore makes at most one call that may be billed; every further paid call is the spend gate's
decision (building/spend.py). Each call opens its own connection, so a keep-alive connection the server dropped
while idle cannot fail "after sending" and look like a call that may have been billed.

Secrets: the API key lives only in the client's `x-goog-api-key` header; messages are built from the error's code,
status and server message (never from request objects or the client), and the key is redacted from anything a
handler would print. Facts behind the choices: docs/gemini-api.md §1.3 (result shapes), §3 (errors, retries).
"""

from __future__ import annotations

import fnmatch
import io
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image

from ..core.errors import (BilledRefusal, ConfigError, PaidNothingReceived, ProviderError, QuotaExhausted,
                           RetryableProviderError, StorytreeError)
from ..core.generation import ImageTargetConfig
from ..core.redact import redact_url
from ..settings import GeminiSettings, Settings
from .base import ImageRequest, ImageResult
from .google_http import (DEFAULT_BASE_URL, UNLIMITED, HttpFailure, Redactor, RetriesExhausted, Verdict,
                          call_with_retries, daily_reset_hint, endpoint, short, transport_errors)
from .rate_limit import RateLimiter

log = logging.getLogger("storytree")

# Finish reasons that mean "withheld on policy grounds": never retried as-is (gemini-api.md §1.3).
POLICY_FINISH = frozenset({"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST",
                           "SPII", "RECITATION", "IMAGE_RECITATION"})


class ModelSlots:
    """At most `limit` calls in flight per model id across every thread using this provider, so
    `doit -j N` never exceeds the configured limit whatever N is."""

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


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "name", None) or getattr(value, "value", None) or value)


class _NoSlot(Exception):
    """No model slot freed up before the target's deadline."""


class NoImage(Exception):
    """The call succeeded but carried no usable image; `retry` says whether asking again may help."""

    def __init__(self, reason: str, text: str | None, retry: bool, refused: bool = False, undecodable: bool = False):
        super().__init__(reason)
        self.reason, self.text, self.retry, self.refused = reason, text, retry, refused
        self.undecodable = undecodable  # an image part came back, but its bytes are not an image


def read_image(response: Any) -> ImageResult:
    """The first non-thought part whose inline data is an image that Pillow can decode (§1.3)."""
    feedback = getattr(response, "prompt_feedback", None)
    block = _enum_name(getattr(feedback, "block_reason", None)) if feedback is not None else None
    candidates = getattr(response, "candidates", None) or []
    candidate = candidates[0] if candidates else None
    parts = (candidate.content.parts if candidate is not None and candidate.content is not None else None) or []
    text = "\n".join(p.text for p in parts if p.text and not p.thought) or None
    if block:
        raise NoImage(f"the prompt was blocked (block reason {block})", text, retry=False, refused=True)
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
        raise NoImage(f"the image was withheld by a policy filter (finish reason {finish})", text, retry=False,
                       refused=True)
    if undecodable:
        raise NoImage(undecodable, text, retry=True, undecodable=True)
    if candidate is None:
        raise NoImage("the response had no candidates", text, retry=True)
    shape = "text only" if text else "no parts"
    raise NoImage(f"no image was returned (finish reason {finish or 'none'}, {shape})", text, retry=True)


class GeminiImages:
    name = "gemini"

    def __init__(self, api_key: str, options: GeminiSettings, base_url: str | None = None,
                 limiter: RateLimiter | None = None):
        from google import genai
        from google.genai import errors, types

        self._types, self._errors = types, errors
        self.options = options
        self.base_url = base_url or DEFAULT_BASE_URL
        self.slots = ModelSlots()
        self.limiter = limiter  # shared with the video half and other processes: slots per model, learnt rates
        self._transport_errors = transport_errors()
        self._unavailable: dict[str, str] = {}  # model → message, so a retired model fails fast once known
        self._redact = Redactor(api_key)
        self._redact.install()
        # retry_options left unset: the SDK then makes exactly one attempt, and every retry is ours.
        # `connection: close`: every call on a fresh connection (module docstring).
        self._client = genai.Client(
            api_key=api_key.strip(), vertexai=False,
            http_options=types.HttpOptions(api_version=options.api_version, base_url=self.base_url,
                                           timeout=int(options.timeout_seconds * 1000),
                                           headers={"connection": "close"}))

    def __repr__(self) -> str:
        return f"GeminiImages(base_url={redact_url(self.base_url)!r})"

    @classmethod
    def from_settings(cls, settings: Settings, limiter: RateLimiter | None = None) -> "GeminiImages":
        key, base_url = endpoint(settings)
        return cls(key, settings.gemini, base_url, limiter)

    def supports_image_size(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.options.image_size_models)

    def build_call(self, request: ImageRequest, timeout: float | None) -> tuple[Any, Any]:
        """The `contents` and `config` of one generateContent call: references first, then the text. Without a
        timeout (a request inside a batch job) the config carries no HTTP options."""
        types = self._types
        parts = [types.Part.from_bytes(data=ref.data, mime_type=ref.mime_type) for ref in request.references]
        parts.append(types.Part.from_text(text=request.prompt))
        size = request.image_size if request.image_size and self.supports_image_size(request.model) else None
        config = types.GenerateContentConfig(
            system_instruction=request.system_instruction or None,
            response_modalities=["IMAGE"],
            image_config=types.ImageConfig(aspect_ratio=request.aspect_ratio, image_size=size),
            candidate_count=1,
            http_options=types.HttpOptions(timeout=max(1, int(timeout * 1000))) if timeout is not None else None,
        )
        return [types.Content(role="user", parts=parts)], config

    def generate(self, request: ImageRequest) -> ImageResult:
        opts, task, model = self.options, request.task, request.model
        if model in self._unavailable:
            raise ConfigError(self._unavailable[model])
        limit = opts.model_concurrency.get(model, opts.max_concurrency)
        calls = 0
        sending = False  # True from the moment the SDK is handed the request until it returns
        last = ""  # the latest retried failure, for the give-up message
        started: list[float] = []  # the deadline starts with the first call, not while queueing for a slot

        def deadline() -> float | None:
            return started[0] + opts.deadline_seconds if started else None

        def attempt() -> ImageResult:
            nonlocal calls, sending
            sending = False
            if self.limiter is not None:
                waited = self.limiter.acquire(model, task)
                if started:
                    started[0] += waited  # waiting for quota does not eat the target's deadline
            end = deadline()
            remaining = None if end is None else end - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise _NoSlot(model)
            with self.slots.hold(model, limit, timeout=remaining):
                if not started:
                    started.append(time.monotonic())
                call_end = deadline()
                assert call_end is not None  # the first call has started the deadline
                call_timeout = min(opts.timeout_seconds, max(0.05, call_end - time.monotonic()))
                contents, config = self.build_call(request, call_timeout)
                calls += 1
                sending = True
                response = self._client.models.generate_content(model=model, contents=contents, config=config)
                sending = False
            if self.limiter is not None:
                self.limiter.succeeded(model)
            return read_image(response)

        def on_retry(verdict: Verdict, wait: float, counts: Counter) -> None:
            nonlocal last
            last = verdict.reason
            if verdict.allowance == "quota":
                log.warning("%s: %s; %s is paused for %.2fs, then the call waits for its slot (a per-minute limit "
                            "is not charged and not counted as a retry)", task, verdict.reason, model,
                            verdict.delay if verdict.delay is not None else 0.0)
            else:
                log.warning("%s: %s; retrying in %.2fs (attempt %d of %d; not billed)", task, verdict.reason, wait,
                            counts["attempts"] + 1, opts.max_attempts)

        try:
            return call_with_retries(attempt, lambda exc: self._judge(request, exc, calls, last, sending), opts,
                                     allowances={"quota": UNLIMITED}, deadline=deadline, on_retry=on_retry)
        except RetriesExhausted as spent:
            verdict = spent.verdict
            last = verdict.reason + ("; the next try would start after the deadline" if spent.deadline else "")
            raise self._gave_up(task, calls, last, deadline=spent.deadline, retry_after=verdict.delay) from None

    def _judge(self, request: ImageRequest, exc: BaseException, calls: int, last: str, sending: bool) -> Verdict:
        """Only failures that certainly were not billed are retried here; a call that may have been billed is final
        (PaidNothingReceived: the spend gate decides whether to pay for another)."""
        task = request.task
        if isinstance(exc, _NoSlot):
            return Verdict(final=self._gave_up(task, calls, last or "waiting for a free model slot", deadline=True))
        if isinstance(exc, StorytreeError):  # the rate limiter's own verdicts (per-day count, no progress)
            return Verdict(final=exc)
        if isinstance(exc, NoImage):
            return Verdict(final=self._no_image(task, exc))
        if isinstance(exc, self._errors.APIError):
            failure = HttpFailure(int(exc.code or 0), self._summary(exc), exc.details,
                                  getattr(getattr(exc, "response", None), "headers", None))
            return self._judge_http(request, failure)
        if isinstance(exc, self._transport_errors):
            failure = HttpFailure.from_transport(exc)
            if not failure.sent:  # the connection was never established: no request reached Gemini
                return Verdict(reason=failure.summary + " before anything was sent")
            return Verdict(final=PaidNothingReceived(
                f"{task}: the answer of the paid Gemini call was lost after the request was sent ({failure.summary}); "
                "Gemini may have billed it, so it counts as spend. Nothing was saved.", "lost", retries=1))
        if isinstance(exc, json.JSONDecodeError):
            return Verdict(final=PaidNothingReceived(
                f"{task}: Gemini answered HTTP 200 with a body that could not be read (not valid JSON); Gemini may "
                "have billed it, so it counts as spend. Nothing was saved.", "lost", retries=1))
        if isinstance(exc, Exception) and not sending:  # before the request was handed over: nothing was sent
            return Verdict(final=ProviderError(
                f"{task}: the Gemini call could not be prepared ({type(exc).__name__}: {self._redact(str(exc))[:400]}); "
                "nothing was sent or paid."))
        if isinstance(exc, Exception):  # unknown SDK failure, perhaps after sending: report it, never leak a traceback
            return Verdict(final=PaidNothingReceived(
                f"{task}: the Gemini call failed unexpectedly ({type(exc).__name__}: {self._redact(str(exc))[:400]}); "
                "it may have been billed, so it counts as spend, and it is not asked again. Nothing was saved."))
        raise exc

    def _no_image(self, task: str, exc: "NoImage") -> StorytreeError:
        """A 200 without a usable image: billed (module docstring), so never asked again here."""
        said = f" The model said: {short(exc.text)!r}." if exc.text else ""
        if exc.refused:
            return BilledRefusal(
                f"{task}: Gemini did not generate the image: {exc.reason}.{said} Not retried; change the story text "
                "behind this target and build again (the answer counts as spend).")
        if exc.undecodable:
            return PaidNothingReceived(
                f"{task}: Gemini answered, but {exc.reason}; it may have been billed, so it counts as spend. Nothing "
                "was saved.", "lost", retries=1)
        return PaidNothingReceived(
            f"{task}: Gemini returned no usable image: {exc.reason}.{said} An answered call is billed, so it counts "
            "as spend. Nothing was saved.", "no_image", retries=self.options.no_image_retries)

    def _judge_http(self, request: ImageRequest, failure: HttpFailure) -> Verdict:
        """Retryable errors spend an attempt; anything else is the final error to raise."""
        code, summary = failure.code or 0, failure.summary
        if failure.daily_quota:
            hint = daily_reset_hint()
            return Verdict(final=QuotaExhausted(
                f"{request.task}: the daily quota of {request.model} is used up ({summary}); not retried, and no new "
                f"images are sent to it in this run. {hint}.", request.model, hint))
        if code == 429 and self.limiter is not None:
            self.limiter.rate_limited(request.model, failure.delay)
            return Verdict(reason=summary, delay=failure.delay, allowance="quota", at_once=True)
        if failure.retryable_status:
            return Verdict(reason=summary, delay=failure.delay, rate_limited=code == 429)
        if code == 404:
            why = "has been retired" if "no longer available" in summary.lower() else \
                "was not found (unknown model id or API version)"
            text = (f"{request.task}: the image model {request.model!r} {why} ({summary}). Choose a current image "
                    f"model (default {ImageTargetConfig().model}) with STORYTREE_IMAGE_MODEL or storytree.toml "
                    f"[generation.{request.kind}] model = \"...\", then run `storytree manifest <story-id>` and build "
                    "again.")
            self._unavailable[request.model] = text
            return Verdict(final=ConfigError(text))
        if failure.key_rejected:
            return Verdict(final=ConfigError(
                f"{request.task}: Gemini rejected the API key ({summary}). Check GEMINI_API_KEY / GOOGLE_API_KEY and "
                "the key's project and region."))
        return Verdict(final=ProviderError(
            f"{request.task}: Gemini refused the request ({summary}); not retried. Nothing was saved."))

    def _summary(self, exc: Any) -> str:
        code = int(getattr(exc, "code", 0) or 0)
        status = getattr(exc, "status", None) or ""
        message = self._redact(short(str(getattr(exc, "message", "") or "")))
        return f"HTTP {code} {status}: {message}".strip().rstrip(":")

    def _gave_up(self, task: str, calls: int, last: str, deadline: bool = False,
                 retry_after: float | None = None) -> RetryableProviderError:
        why = (f"the per-target deadline of {self.options.deadline_seconds:g}s ran out" if deadline
               else f"{calls} call(s) failed")
        return RetryableProviderError(
            f"{task}: Gemini image generation gave up, {why} (last: {last or 'no call made'}). Nothing was saved; "
            "build again later.", retry_after=retry_after)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
