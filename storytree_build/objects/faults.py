"""What went wrong with a remote, in our terms: an obstore exception becomes one typed `RemoteError` whose message
names the remote (redacted URL), the object (sha256 prefix) and what to do, and carries no credential.

obstore raises a few specific classes (PermissionDeniedError, AlreadyExistsError, builtin FileNotFoundError...) and a
`GenericError` for everything else, whose text holds the HTTP status or the OS error; both are read here."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..core.redact import redact_url, scrub_userinfo  # noqa: F401 - redact_url is also used as faults.redact_url
from .errors import (RemoteCorrupt, RemoteError, RemoteNotFound, RemoteOutOfSpace, RemoteRefused, RemoteUnreachable,
                     short)

_SIGNED_QUERY = re.compile(r"(?i)(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s]+")
_STATUS = re.compile(r"status code: (\d{3})")
_OS_ERROR = re.compile(r"os error (\d+)")
_NETWORK_WORDS = ("error sending request", "HTTP error", "timed out", "timeout", "Timeout", "connection", "Connect",
                  "dns error", "broken pipe", "reset by peer")
MAX_DETAIL = 300


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove credentials from a message: known secret values, URL user-info, signed-URL query parameters."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = scrub_userinfo(text)
    return _SIGNED_QUERY.sub(r"\1***", text)


def detail(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """obstore's first paragraph (its "Debug source" dump is long and repeats it), scrubbed and cut short."""
    text = str(exc).split("\n\nDebug source", 1)[0]
    text = " ".join(text.split())
    if len(text) > MAX_DETAIL:
        text = text[:MAX_DETAIL] + "…"
    return scrub(text, secrets) or type(exc).__name__


def translate(exc: BaseException, *, url: str, action: str, sha256: str = "", bucket: str = "",
              secrets: Iterable[str] = ()) -> RemoteError:
    """One RemoteError for an exception raised by obstore while doing `action` ("download", "upload", "check",
    "list", "delete") on object `sha256` of remote `url` (already redacted)."""
    import obstore.exceptions as oe  # obstore is loaded only once a remote is used

    secrets = tuple(secrets)
    what = f"object {short(sha256)} on remote {url}" if sha256 else f"remote {url}"
    why = detail(exc, secrets)
    text = str(exc)
    status = int(m.group(1)) if (m := _STATUS.search(text)) else None
    os_error = int(m.group(1)) if (m := _OS_ERROR.search(text)) else None
    args = {"remote_url": url, "sha256": sha256}

    if isinstance(exc, FileNotFoundError) and "NoSuchBucket" not in text:
        return RemoteNotFound(f"{what}: not found ({action})", **args)
    if "NoSuchBucket" in text:
        return RemoteRefused(f"{what}: cannot {action}: the bucket {bucket or '(of the URL)'} does not exist at the "
                             f"endpoint. Create it, or fix the remote URL / AWS_ENDPOINT_URL. ({why})", **args)
    if os_error in (28, 122) or status == 507 or "StorageFull" in text or "QuotaExceeded" in text:
        return RemoteOutOfSpace(f"{what}: cannot {action}: the remote is out of space. Free space there (or raise its "
                                f"quota) and push again; the local copy is kept. ({why})", **args)
    if isinstance(exc, (oe.PermissionDeniedError, oe.UnauthenticatedError)) or status in (401, 403):
        target = f"bucket {bucket}" if bucket else "the remote"
        return RemoteRefused(f"{what}: the remote refused to {action} (HTTP {status or 'denied'}). Check the "
                             f"credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN) and that "
                             f"they may read and write {target}. ({why})", **args)
    if os_error in (1, 13, 30):
        return RemoteRefused(f"{what}: cannot {action}: the shared folder refused it (read-only or no permission). "
                             f"Make it writable for this user. ({why})", **args)
    if status is not None and (status >= 500 or status in (408, 429)) or any(w in text for w in _NETWORK_WORDS):
        return RemoteUnreachable(f"{what}: the remote did not answer ({action}); nothing was lost, try again when "
                                 f"it is reachable. ({why})", **args)
    return RemoteError(f"{what}: {action} failed ({why})", **args)


def corrupt(*, url: str, sha256: str, actual: str) -> RemoteCorrupt:
    return RemoteCorrupt(f"object {short(sha256)} on remote {url}: the bytes stored under its key hash to "
                         f"{short(actual)}, not to its sha256; nothing was written. The remote copy is damaged: push "
                         "it again from a machine that has it (`put(..., overwrite=True)`).",
                         remote_url=url, sha256=sha256, actual_sha256=actual)
