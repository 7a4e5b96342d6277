"""Credentials out of every URL storytree prints: a URL's user-info (`https://user:secret@host`) is replaced by
`***@` wherever a URL is shown — the story store's SUPABASE_URL, the providers' GOOGLE_GEMINI_BASE_URL, download
links, the remote URL — and in any message or log line that may quote one."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

# The HTTP clients log every request's URL (httpx: "HTTP Request: GET http://user:pw@host/…" at INFO).
HTTP_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2")

# scheme://, then the authority's user-info up to its last '@' (before any path, query, fragment or space).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@")


def redact_url(url: str) -> str:
    """The URL with any user-info (`user:secret@`) replaced by `***@`, for display."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub_userinfo(url)
    if "@" not in parts.netloc:
        return scrub_userinfo(url)  # an unparsable authority still never shows what precedes an '@'
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def scrub_userinfo(text: str) -> str:
    """`text` with the user-info of every URL in it replaced by `***@`."""
    return _USERINFO.sub(r"\1***@", text) if "@" in text else text


class UrlCredentialsFilter(logging.Filter):
    """Scrubs URL user-info from every record logged on the logger it is attached to."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the logging module's problem, not ours
            return True
        cleaned = scrub_userinfo(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def filter_http_logs() -> None:
    """Attach the filter to the HTTP clients' own loggers, once: their request lines never show user-info, whatever
    handler prints them."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, UrlCredentialsFilter) for f in logger.filters):
            logger.addFilter(UrlCredentialsFilter())
