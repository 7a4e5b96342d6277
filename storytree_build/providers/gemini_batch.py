"""Gemini images through the Batch API (half the interactive price, minutes to 24 hours): one
`batchGenerateContent` job per group of requests, polled with `batches.get`, results read inline.

Each request is exactly what `GeminiImages` sends interactively (references inline before the text, the system
instruction, the image config), keyed by task name in its metadata (docs/gemini-api.md §4.4, §5).

Money rules, as for video submits:
    submit  one request on a connection of its own; the SDK's retries are off.
            - connection never established, 408 or a per-minute 429 → no job exists: retried (a 429 pauses the
              model in the rate limiter and is not an attempt), then a RetryableProviderError;
            - a per-day 429 → QuotaExhausted; 404 → ConfigError naming the model setting; a rejected key →
              ConfigError; other 4xx → ProviderError (nothing was started);
            - 5xx, a timeout or lost connection after sending, an answer without a job name, or any failure the
              SDK raises that says nothing of whether the request went out → the job may exist: SubmitUncertain
              (its targets are blocked until `storytree resubmit`; the spend gate counts their batch price).
    poll    408/429/5xx and transport failures are retried; 404 means the job is unknown (it stays recorded).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.errors import (ConfigError, ProviderError, QuotaExhausted, RetryableProviderError, StorytreeError,
                      SubmitUncertain)
from ..core.redact import redact_url
from .base import BatchItem, BatchStatus, ImageRequest
from .gemini_image import GeminiImages, NoImage, read_image
from .google_http import (UNLIMITED, HttpFailure, RetriesExhausted, Verdict, call_with_retries, close_quietly,
                          daily_reset_hint, endpoint, short)
from .rate_limit import RateLimiter

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger("storytree")
T = TypeVar("T")
DONE_STATES = frozenset({"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED",
                         "JOB_STATE_PARTIALLY_SUCCEEDED"})


class GeminiImageBatches:
    name = "gemini"

    def __init__(self, api_key: str, options: Any, base_url: str | None = None, limiter: RateLimiter | None = None):
        from google import genai

        self.images = GeminiImages(api_key, options, base_url, limiter)  # the same request, the same reader
        self.options = options
        self.limiter = limiter
        types = self.images._types
        # Submits get a client whose connections are never reused: a stale keep-alive connection would fail
        # "after sending" and look like a job that may have been paid for.
        self._submit_client = genai.Client(
            api_key=api_key.strip(), vertexai=False,
            http_options=types.HttpOptions(api_version=options.api_version, base_url=self.images.base_url,
                                           timeout=int(options.timeout_seconds * 1000),
                                           headers={"connection": "close"}))

    @classmethod
    def from_settings(cls, settings: Settings, limiter: RateLimiter | None = None) -> "GeminiImageBatches":
        key, base_url = endpoint(settings)
        return cls(key, settings.gemini, base_url, limiter)

    def __repr__(self) -> str:
        return f"GeminiImageBatches(base_url={redact_url(self.images.base_url)!r})"

    def close(self) -> None:
        close_quietly(self._submit_client, self.images._client)

    # -- submit -------------------------------------------------------------------------------------
    def submit_batch(self, model: str, requests: list[ImageRequest], display_name: str) -> str:
        types = self.images._types
        inlined = []
        for request in requests:
            contents, config = self.images.build_call(request, None)
            inlined.append(types.InlinedRequest(contents=contents, config=config, metadata={"key": request.task}))
        what = f"the batch job {display_name} ({len(requests)} image(s) of {model})"

        def send() -> str:
            if self.limiter is not None:
                self.limiter.acquire(model, display_name)
            job = self._sdk(lambda: self._submit_client.batches.create(
                model=model, src=inlined, config=types.CreateBatchJobConfig(display_name=display_name)))
            name = getattr(job, "name", None)
            if not isinstance(name, str) or not name.startswith("batches/"):
                raise HttpFailure(200, "the answer carried no batch job name")
            if self.limiter is not None:
                self.limiter.succeeded(model)
            return name

        return self._retrying(send, lambda f: self._judge_submit(model, what, f), what,
                              allowances={"quota": UNLIMITED})

    def _judge_submit(self, model: str, what: str, failure: HttpFailure) -> Verdict:
        code = failure.code
        if failure.transport and not failure.sent:
            return Verdict(reason=failure.summary, give_up=RetryableProviderError(
                f"{what}: could not connect to the Gemini API ({failure.summary}); nothing was sent or charged. "
                "Build again later."))
        if failure.transport or code is None or code == 200 or code >= 500:
            return Verdict(final=SubmitUncertain(
                f"{what}: the paid submit got no usable answer ({failure.summary}); the job may exist and be charged, "
                "so its images are not sent again automatically. Check the provider's console; to pay for them again "
                "on purpose run `storytree resubmit <story-id> <task>` for each, and build again."))
        if failure.daily_quota:
            hint = daily_reset_hint()
            return Verdict(final=QuotaExhausted(
                f"{what}: the daily quota of {model} is used up ({failure.summary}); nothing was started or charged. "
                f"{hint}.", model, hint))
        if code == 429 and self.limiter is not None:
            self.limiter.rate_limited(model, failure.delay)
            return Verdict(reason=failure.summary, delay=failure.delay, allowance="quota", at_once=True)
        if code in (408, 429):
            return Verdict(reason=failure.summary, delay=failure.delay, rate_limited=code == 429,
                           give_up=RetryableProviderError(f"{what}: refused ({failure.summary}); nothing was started "
                                                          "or charged. Build again later.", retry_after=failure.delay))
        if code == 404:
            return Verdict(final=ConfigError(
                f"{what}: the image model {model!r} was not found or cannot run batch jobs ({failure.summary}). "
                "Choose another with STORYTREE_IMAGE_MODEL or [generation.<kind>] model, or build without batch "
                "mode. Nothing was charged."))
        if failure.key_rejected:
            return Verdict(final=ConfigError(f"{what}: Gemini rejected the API key ({failure.summary}). Check "
                                             "GEMINI_API_KEY / GOOGLE_API_KEY."))
        return Verdict(final=ProviderError(f"{what}: refused ({failure.summary}); not retried, nothing was charged."))

    # -- poll ---------------------------------------------------------------------------------------
    def poll_batch(self, name: str) -> BatchStatus:
        what = f"polling batch job {name}"
        job = self._retrying(lambda: self._sdk(lambda: self.images._client.batches.get(name=name)),
                             lambda f: self._judge_poll(name, f), what)
        state = str(getattr(getattr(job, "state", None), "name", None) or getattr(job, "state", "") or "")
        if state not in DONE_STATES:
            return BatchStatus(done=False, state=state or "JOB_STATE_UNSPECIFIED")
        items: dict[str, BatchItem] = {}
        dest = getattr(job, "dest", None)
        for inlined in (getattr(dest, "inlined_responses", None) or []):
            task = (getattr(inlined, "metadata", None) or {}).get("key")
            if not isinstance(task, str):
                continue
            items[task] = self._item(inlined)
        error = None
        if state != "JOB_STATE_SUCCEEDED":
            job_error = getattr(job, "error", None)
            said = short(str(getattr(job_error, "message", "") or "")) if job_error is not None else ""
            error = f"the batch job ended {state.removeprefix('JOB_STATE_').lower()}" + (f": {said}" if said else "")
        return BatchStatus(done=True, state=state, items=items, error=error)

    def _item(self, inlined: Any) -> BatchItem:
        failed = getattr(inlined, "error", None)
        if failed is not None:
            code, message = getattr(failed, "code", None), short(str(getattr(failed, "message", "") or ""))
            return BatchItem(error=f"the request failed in the batch job (code {code}: {message})")
        response = getattr(inlined, "response", None)
        if response is None:
            return BatchItem(error="the batch job returned no response for it")
        try:
            return BatchItem(result=read_image(response))
        except NoImage as exc:
            said = f" The model said: {short(exc.text)!r}." if exc.text else ""
            return BatchItem(error=f"Gemini did not generate the image: {exc.reason}.{said}", refused=exc.refused)

    def _judge_poll(self, name: str, failure: HttpFailure) -> Verdict:
        code = failure.code
        if failure.transport or code is None or code == 200 or code in (408, 429) or code >= 500:
            return Verdict(reason=failure.summary, delay=failure.delay, rate_limited=code == 429,
                           give_up=RetryableProviderError(
                               f"polling batch job {name} gave up ({failure.summary}); it stays recorded: build "
                               "again to collect it without paying.", retry_after=failure.delay))
        if code == 404:
            return Verdict(final=ProviderError(
                f"batch job {name} is unknown to the provider ({failure.summary}): it expired or was deleted. Its "
                "targets stay blocked; to pay for them again on purpose run `storytree resubmit <story-id> <task>`."))
        if failure.key_rejected:
            return Verdict(final=ConfigError(f"Gemini rejected the API key while polling {name} ({failure.summary})."))
        return Verdict(final=ProviderError(f"polling batch job {name} failed ({failure.summary}); it stays recorded."))

    # -- plumbing -----------------------------------------------------------------------------------
    def _sdk(self, call: Callable[[], T]) -> T:
        """One SDK call; its failures become HttpFailures (status, body, headers) with nothing of the request."""
        errors = self.images._errors
        try:
            return call()
        except errors.APIError as exc:
            headers = getattr(getattr(exc, "response", None), "headers", None)  # exc.details: the error's JSON body
            raise HttpFailure.from_body(int(exc.code or 0), exc.details, headers, self.images._redact) from None
        except self.images._transport_errors as exc:
            raise HttpFailure.from_transport(exc) from None
        except (ValueError, KeyError, TypeError) as exc:  # a 200 the SDK could not read
            raise HttpFailure(200, f"an answer the SDK could not read ({type(exc).__name__})") from None
        except Exception as exc:  # noqa: BLE001 - anything else may come after sending: a submit is then uncertain
            raise HttpFailure(None, f"the SDK call failed unexpectedly ({type(exc).__name__}: "
                                    f"{short(self.images._redact(str(exc)))})", transport=True) from None

    def _retrying(self, call: Callable[[], T], judge: Callable[[HttpFailure], Verdict], what: str,
                  allowances: dict[str, int] | None = None) -> T:
        def judged(exc: BaseException) -> Verdict:
            if isinstance(exc, HttpFailure):
                return judge(exc)
            if isinstance(exc, StorytreeError):
                return Verdict(final=exc)
            raise exc

        def on_retry(verdict: Verdict, wait: float, counts: Any) -> None:
            log.warning("%s: %s; retrying in %.2fs", what, verdict.reason, wait)

        try:
            return call_with_retries(call, judged, self.options, allowances=allowances, on_retry=on_retry)
        except RetriesExhausted as spent:
            raise (spent.verdict.give_up or RetryableProviderError(
                f"{what} gave up after {spent.counts['attempts']} attempt(s) (last: {spent.verdict.reason})."
            )) from None
