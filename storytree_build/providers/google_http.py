"""Talking to Google's generative-language API, once for every call: reading an error (status, server message,
RetryInfo delay, quota window, error reasons), keeping the API key out of everything that is printed, where the key
may be sent, and the one retry helper every provider call goes through.

Money rules live in the judges each call site passes to `call_with_retries` (gemini_image.py, gemini_video.py);
this module only knows what an answer *says*.

Quota windows: Gemini's RESOURCE_EXHAUSTED errors carry `google.rpc.QuotaFailure` violations whose `quotaId` /
`quotaMetric` name the window (e.g. `GenerateRequestsPerDayPerProjectPerModel`). Daily quotas reset at midnight
Pacific time (Gemini API rate-limit docs).
"""

from __future__ import annotations

import ipaddress
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import tenacity

from ..core.errors import ConfigError, StorytreeError
from ..core.redact import filter_http_logs, redact_url, scrub_userinfo

if TYPE_CHECKING:  # google_http needs only the endpoint fields of the settings
    from ..settings import Settings

log = logging.getLogger("storytree")

T = TypeVar("T")
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED"})
MAX_TEXT = 400
UNLIMITED = 1 << 62  # an allowance that never runs out (waiting for per-minute quota is not a failure)
# Exception class names that prove the connection was never established (so no request reached a server).
NOT_SENT = frozenset({"ConnectError", "ConnectTimeout", "PoolTimeout"})
HTTP_MODULES = ("httpx", "httpx2", "httpcore", "httpcore2")


# -- quotas -------------------------------------------------------------------------------------------
def quota_window(error_details: Any) -> str | None:
    """'day', 'minute' or None, from the `details` list of a Google API error body."""
    details = error_details
    if isinstance(details, dict):
        details = (details.get("error") or details).get("details")
    if not isinstance(details, list):
        return None
    windows = set()
    for detail in details:
        if not isinstance(detail, dict) or "QuotaFailure" not in str(detail.get("@type", "")):
            continue
        for violation in detail.get("violations") or []:
            text = " ".join(str(violation.get(k, "")) for k in ("quotaId", "quotaMetric")).lower()
            if "perday" in text or "per_day" in text or "daily" in text:
                windows.add("day")
            elif "perminute" in text or "per_minute" in text:
                windows.add("minute")
    return "day" if "day" in windows else ("minute" if windows else None)


def daily_reset_hint(now: datetime | None = None) -> str:
    pacific = ZoneInfo("America/Los_Angeles")
    now = (now or datetime.now(timezone.utc)).astimezone(pacific)
    reset = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    hours = (reset - now).total_seconds() / 3600
    return f"daily quotas reset at midnight Pacific time ({reset.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC, in about {hours:.0f} h)"


# -- where the key may go -----------------------------------------------------------------------------
def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in; the unit the API key is bound to."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port or {"https": 443, "http": 80}.get(scheme, -1)


def origin_text(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}"


def endpoint(settings: Settings) -> tuple[str, str]:
    """(API key, base URL) of the gemini provider, refusing a missing key, a bad URL, and — with CI set — any
    endpoint that is not on this machine."""
    key = settings.gemini_api_key.get_secret_value() if settings.gemini_api_key is not None else ""
    if not key.strip():
        raise ConfigError(
            "The gemini provider needs an API key: set GEMINI_API_KEY (or GOOGLE_API_KEY). "
            "To build offline placeholders instead, choose the stub provider explicitly: "
            "`doit story:<id> provider=stub` or STORYTREE_PROVIDER=stub.")
    base_url = settings.gemini_base_url or DEFAULT_BASE_URL
    if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).hostname:
        raise ConfigError(f"GOOGLE_GEMINI_BASE_URL must be an http(s) URL, got {redact_url(base_url)!r}.")
    if settings.ci and not is_loopback(base_url):
        raise ConfigError(
            f"CI is set, so the gemini provider only calls loopback endpoints, but the base URL is "
            f"{urlsplit(base_url).hostname}. Point GOOGLE_GEMINI_BASE_URL at the local fake server "
            "(http://127.0.0.1:<port>) or use the stub provider in CI.")
    return key.strip(), base_url


# -- secrets ------------------------------------------------------------------------------------------
class Redactor(logging.Filter):
    """Keeps one secret, and the user-info of any URL, out of text we build and out of any log record a handler is
    about to print (SDK and httpx logs included, once `install()` has run)."""

    def __init__(self, secret: str):
        super().__init__("storytree-redact")
        self.secret = secret.strip()

    def __call__(self, text: str) -> str:
        return scrub_userinfo(text.replace(self.secret, "[redacted]") if self.secret else text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the logging module's problem, not ours
            return True
        cleaned = self(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True

    def install(self) -> None:
        filter_http_logs()  # request lines quote the URL, base URL user-info included
        for logger in (logging.getLogger(), logging.getLogger("storytree")):
            for handler in logger.handlers:
                if not any(isinstance(f, Redactor) and f.secret == self.secret for f in handler.filters):
                    handler.addFilter(Redactor(self.secret))


def short(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


# -- one failed exchange ------------------------------------------------------------------------------
class HttpFailure(Exception):
    """One failed HTTP exchange, reduced to what judging it needs — never the request or its headers (they carry
    the key). `sent` is False only when the connection provably never reached a server."""

    def __init__(self, code: int | None, summary: str, body: Any = None, headers: Any = None, sent: bool = True,
                 transport: bool = False):
        super().__init__(summary)
        self.code, self.summary, self.body, self.headers = code, summary, body, headers
        self.sent, self.transport = sent, transport

    @classmethod
    def from_body(cls, code: int, body: Any, headers: Any, redact: Callable[[str], str]) -> "HttpFailure":
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            status, message = error.get("status") or "", error.get("message") or ""
        else:
            status, message = "", body if isinstance(body, str) else ""
        summary = f"HTTP {code} {status}: {redact(short(str(message)))}".strip().rstrip(":")
        return cls(code, summary, body, headers)

    @classmethod
    def from_transport(cls, exc: BaseException, what: str = "the call") -> "HttpFailure":
        kind = "timed out" if "Timeout" in type(exc).__name__ else "connection failed"
        return cls(None, f"{what} {kind} ({type(exc).__name__})", transport=True, sent=was_sent(exc))

    @property
    def error(self) -> dict[str, Any]:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error if isinstance(error, dict) else {}

    @property
    def message(self) -> str:
        return str(self.error.get("message") or "")

    @property
    def reasons(self) -> set[str]:
        items = self.error.get("details")
        return {str(i.get("reason")) for i in items or [] if isinstance(i, dict) and i.get("reason")}

    @property
    def delay(self) -> float | None:
        """The server's own wait: google.rpc.RetryInfo `retryDelay` ("41s", "0.5s") or a Retry-After header."""
        items = self.error.get("details")
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
        if self.headers is not None:
            try:
                value = self.headers.get("retry-after")
                return max(0.0, float(value)) if value is not None else None
            except (TypeError, ValueError):
                return None
        return None

    @property
    def daily_quota(self) -> bool:
        return self.code == 429 and quota_window(self.body) == "day"

    @property
    def key_rejected(self) -> bool:
        return self.code in (401, 403) or bool(self.reasons & AUTH_REASONS)

    @property
    def retired(self) -> bool:
        return "no longer available" in self.message.lower()

    @property
    def retryable_status(self) -> bool:
        return self.code is not None and (self.code in RETRYABLE_STATUS or self.code >= 500)


def was_sent(exc: BaseException) -> bool:
    """False only when the chain proves the connection was never established (so no request reached a server)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in NOT_SENT and type(current).__module__.split(".")[0] in HTTP_MODULES:
            return False
        current = current.__cause__ or current.__context__
    return True


def close_quietly(*clients: Any) -> None:
    """Close HTTP / SDK clients; closing is best effort (a client that fails to close holds nothing we need)."""
    for client in clients:
        try:
            client.close()
        except Exception:  # noqa: BLE001
            pass


def transport_errors() -> tuple[type[BaseException], ...]:
    """Timeouts and connection failures of whichever httpx flavour the SDK uses (3.x: httpx2)."""
    found: list[type[BaseException]] = []
    for module in ("httpx", "httpx2"):
        try:
            mod = __import__(module)
        except ImportError:  # pragma: no cover - depends on what the SDK pulled in
            continue
        found += [mod.TimeoutException, mod.TransportError]
    return tuple(found)


# -- the one retry helper -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """How one failed attempt is judged by its call site."""

    final: StorytreeError | None = None  # stop with this error: nothing to gain, or another try could pay twice
    reason: str = ""  # what went wrong, for the log line and the give-up message
    delay: float | None = None  # the server's own wait (RetryInfo / Retry-After): it wins over our backoff
    rate_limited: bool = False  # a 429: the longer backoff
    allowance: str = "attempts"  # which allowance this retry spends
    at_once: bool = False  # ask again without waiting (the model answered, just without an image)
    give_up: StorytreeError | None = None  # what to raise if this was the last try the allowance permits


class RetriesExhausted(Exception):
    """An allowance ran out (`deadline` False) or the next try would start after the deadline (`deadline` True)."""

    def __init__(self, verdict: Verdict, counts: Counter, deadline: bool):
        super().__init__(verdict.reason)
        self.verdict, self.counts, self.deadline = verdict, counts, deadline


def full_jitter(attempt: int, base: float, cap: float) -> float:
    return random.uniform(0, min(cap, base * (2 ** attempt)))


def call_with_retries(attempt: Callable[[], T], judge: Callable[[BaseException], Verdict], options: Any, *,
                      allowances: dict[str, int] | None = None, deadline: Callable[[], float | None] = lambda: None,
                      on_retry: Callable[[Verdict, float, Counter], None] | None = None) -> T:
    """Call `attempt` until it returns. After each failure `judge(exc)` decides: a final error is raised at once;
    otherwise the failure spends one unit of its allowance (default `options.max_attempts` attempts) and the next
    try waits the server's delay, or full-jitter backoff (`[gemini]` base/cap, longer for 429s). RetriesExhausted
    when an allowance is spent or the next try would start after `deadline()`."""
    limits = {"attempts": options.max_attempts, **(allowances or {})}
    counts: Counter = Counter()
    verdicts: list[Verdict] = []

    def retry(state: tenacity.RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome is not None else None
        if not isinstance(error, Exception):
            return False  # a result, or KeyboardInterrupt / SystemExit: never retried
        verdicts.append(judge(error))
        return verdicts[-1].final is None

    def wait(state: tenacity.RetryCallState) -> float:
        verdict = verdicts[-1]
        counts[verdict.allowance] += 1
        if verdict.at_once:
            return 0.0
        if verdict.delay is not None:
            return verdict.delay
        base, cap = ((options.rate_limit_base_seconds, options.rate_limit_cap_seconds) if verdict.rate_limited
                     else (options.backoff_base_seconds, options.backoff_cap_seconds))
        return full_jitter(counts[verdict.allowance] - 1, base, cap)

    def stop(state: tenacity.RetryCallState) -> bool:
        verdict = verdicts[-1]
        if counts[verdict.allowance] >= limits[verdict.allowance]:
            raise RetriesExhausted(verdict, counts, deadline=False)
        end = deadline()
        if end is not None and time.monotonic() + state.upcoming_sleep >= end:
            raise RetriesExhausted(verdict, counts, deadline=True)
        return False

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None:
            on_retry(verdicts[-1], state.upcoming_sleep, counts)

    retrying = tenacity.Retrying(retry=retry, wait=wait, stop=stop, before_sleep=before_sleep, reraise=True,
                                 sleep=time.sleep)
    try:
        return retrying(attempt)
    except RetriesExhausted:
        raise
    except BaseException as exc:
        if verdicts and verdicts[-1].final is not None and exc is not verdicts[-1].final:
            raise verdicts[-1].final from None  # never chain SDK or httpx objects (they carry the request headers)
        raise
