"""The content address: what a valid object id is, where it lives, and how bytes are hashed into one.

An id is a sha256 as 64 lowercase hex digits; anything else is refused before it becomes part of a path or a key,
so no id can reach outside the store (`../`, `/`, NUL, upper case, short prefixes)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .errors import InvalidObjectId

ALGORITHM = "sha256"
CHUNK = 1 << 20  # 1 MiB reads: hashlib releases the GIL on large buffers, so threads hash in parallel
_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_sha256(sha256: object) -> str:
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        shown = repr(sha256)[:80]
        raise InvalidObjectId(f"not an object id: {shown}; expected a sha256 as 64 lowercase hex digits "
                              "(e.g. the `sha256` of a record)")
    return sha256


def relative_key(sha256: str) -> str:
    """`sha256/ab/cdef…`: the same layout in the local folder and under a remote's prefix."""
    check_sha256(sha256)
    return f"{ALGORITHM}/{sha256[:2]}/{sha256[2:]}"


def sha256_of_key(key: str) -> str | None:
    """The id a stored key or relative path names, or None for anything else (temp files, stray names)."""
    parts = key.strip("/").split("/")
    if len(parts) < 3 or parts[-3] != ALGORITHM:
        return None
    candidate = parts[-2] + parts[-1]
    return candidate if len(parts[-2]) == 2 and _SHA256.fullmatch(candidate) else None


def hash_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, ALGORITHM).hexdigest()


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
