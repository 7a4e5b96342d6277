"""Streaming a finished video to the build's temp file, with the API key only where it belongs: only links on the
configured API origin (scheme, host and port of the base URL) are fetched, the key goes only in the `x-goog-api-key`
header and only to that origin, and redirects are followed by hand without the key (https only; loopback only when
the API base is loopback). Each attempt starts from scratch into the same temp file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from ..core.errors import InputError, ProviderError
from ..core.redact import redact_url
from .google_http import HttpFailure, is_loopback, origin, origin_text

log = logging.getLogger("storytree")

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
CHUNK = 1 << 20


def json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]


class VideoDownloader:
    def __init__(self, http: httpx.Client, base_url: str, api_key: str, redact: Any):
        self._http = http
        self.base_url = base_url
        self.origin = origin(base_url)
        self.loopback = is_loopback(base_url)
        self._secret = api_key
        self._redact = redact

    def check_link(self, uri: str) -> None:
        """Only the configured API origin may be asked with the key (and this provider asks no one else)."""
        if origin(uri) != self.origin:
            raise InputError(
                f"refused to download {redact_url(uri)!r}: it is not on the configured Gemini API host "
                f"({origin_text(self.base_url)}), and the API key is only ever sent there. Links to other hosts "
                "are refused; download such a file yourself and do not pass it to --download-link.")

    def fetch(self, uri: str, destination: Path) -> None:
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
                        raise HttpFailure.from_body(response.status_code, json_or_text(response), response.headers,
                                                    self._redact)
                    expected = response.headers.get("content-length")
                    written = 0
                    with open(destination, "wb") as handle:  # every attempt starts from scratch
                        for chunk in response.iter_bytes(CHUNK):
                            handle.write(chunk)
                            written += len(chunk)
                    if expected is not None and expected.isdigit() and response.num_bytes_downloaded != int(expected):
                        raise HttpFailure(None, f"the download stopped after {response.num_bytes_downloaded} of "
                                                f"{expected} bytes", transport=True)
                    if written == 0:
                        raise HttpFailure(None, "the download was empty", transport=True)
                    return
            except httpx.HTTPError as exc:
                failure = HttpFailure.from_transport(exc)
                raise HttpFailure(None, f"the download was interrupted ({type(exc).__name__})", transport=True,
                                  sent=failure.sent) from None
        raise ProviderError(f"the download of {redact_url(uri)} was redirected more than {MAX_REDIRECTS} times; nothing was saved.")

    def _redirect(self, current: str, location: str | None, keyed: bool) -> tuple[str, bool]:
        if not location:
            raise ProviderError(f"the download of {redact_url(current)} answered a redirect without a Location; nothing was saved.")
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
