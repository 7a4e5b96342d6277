"""The object store's errors, typed so a caller can decide without reading messages.

    InvalidObjectId(InputError)      not a 64-hex lowercase sha256 (also the path-traversal guard)
    ObjectNotFound                   no object under that sha256 (here or on the remote)
    ObjectCorrupt                    bytes do not hash to their sha256 (a damaged object or a wrong source)
    ObjectStoreFault(EnvironmentFault)  the local objects folder or a destination cannot be written, or is full
    RemoteError                      the remote failed; names the remote (redacted URL) and the object
    ├── RemoteUnreachable            connection refused, timeout, 5xx after retries: retry-safe
    ├── RemoteRefused                401/403, read-only or forbidden folder: check credentials/permissions
    ├── RemoteNotFound               (also an ObjectNotFound) the object is not on the remote
    ├── RemoteCorrupt                (also an ObjectCorrupt) the remote's bytes do not match the key
    └── RemoteOutOfSpace             the remote (or its disk) is full: retry-safe once space is freed

Every message names the object by a short sha256 prefix and, for remotes, the remote by its redacted URL; no
credential ever appears (see `faults.scrub`).
"""

from __future__ import annotations

from ..core.errors import EnvironmentFault, InputError, StorytreeError


def short(sha256: str) -> str:
    """The prefix used in messages (git-style), long enough to tell objects apart in a story."""
    return sha256[:12]


class InvalidObjectId(InputError):
    kind = "object-id"


class ObjectNotFound(StorytreeError):
    kind = "object-missing"

    def __init__(self, message: str, sha256: str = ""):
        super().__init__(message)
        self.sha256 = sha256


class ObjectCorrupt(StorytreeError):
    kind = "object-corrupt"

    def __init__(self, message: str, sha256: str = "", actual_sha256: str = ""):
        super().__init__(message)
        self.sha256 = sha256
        self.actual_sha256 = actual_sha256


class ObjectStoreFault(EnvironmentFault):
    """A local folder (the objects folder or an asset's folder) refused a write or is full. Nothing was replaced."""

    kind = "object-store"


class RemoteError(StorytreeError):
    kind = "remote"

    def __init__(self, message: str, remote_url: str = "", sha256: str = ""):
        super().__init__(message)
        self.remote_url = remote_url
        self.sha256 = sha256


class RemoteUnreachable(RemoteError):
    kind = "remote-unreachable"
    retry_safe = True


class RemoteRefused(RemoteError):
    kind = "remote-refused"


class RemoteNotFound(RemoteError, ObjectNotFound):
    kind = "remote-missing"

    def __init__(self, message: str, remote_url: str = "", sha256: str = ""):
        RemoteError.__init__(self, message, remote_url, sha256)


class RemoteCorrupt(RemoteError, ObjectCorrupt):
    kind = "remote-corrupt"

    def __init__(self, message: str, remote_url: str = "", sha256: str = "", actual_sha256: str = ""):
        RemoteError.__init__(self, message, remote_url, sha256)
        self.actual_sha256 = actual_sha256


class RemoteOutOfSpace(RemoteError):
    kind = "remote-full"
    retry_safe = True
