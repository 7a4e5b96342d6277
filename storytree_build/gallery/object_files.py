"""`GET /objects/<sha256>` of `storytree serve`: the bytes of one object of the local object store, so the review
page can show a key frame's earlier versions (they are not under the served folder).

Only a URL path of exactly `/objects/` and 64 lowercase hex digits names an object, read before any percent-decoding
(`%2e%2e`, upper case, a trailing slash or a second segment are refused); the file must exist in the store and,
resolved with its symlinks, stay inside it; its Content-Type comes from its content (files.content.check), never
from a name, and what is neither an image nor an MP4 video is not served.
"""

from __future__ import annotations

import functools
import os
import re
from http import HTTPStatus
from pathlib import Path

from ..files.content import check
from ..objects.keys import relative_key

PREFIX = "/objects/"
_OBJECT_PATH = re.compile(r"/objects/([0-9a-f]{64})")


def object_url(sha256: str, prefix: str = "../../") -> str:
    """The URL of an object relative to a story page (the page is at stories/<story-id>/index.html)."""
    return f"{prefix}objects/{sha256}"


def object_file(store: Path, url_path: str) -> tuple[Path, str] | HTTPStatus:
    """The object file a URL path (undecoded, without its query) names and its media type, or the status to answer."""
    match = _OBJECT_PATH.fullmatch(url_path)
    if match is None:
        return HTTPStatus.BAD_REQUEST  # not an object id: nothing else under /objects/ is ever looked up
    try:
        root = store.resolve(strict=True)
        real = (store / relative_key(match.group(1))).resolve(strict=True)
        st = os.stat(real)
    except (OSError, RuntimeError):
        return HTTPStatus.NOT_FOUND
    if root not in real.parents:
        return HTTPStatus.NOT_FOUND  # a symlink that leads outside the store
    media_type = _media_type(str(real), st.st_size, st.st_mtime_ns)
    return (real, media_type) if media_type is not None else HTTPStatus.NOT_FOUND


@functools.lru_cache(maxsize=4096)
def _media_type(path: str, size: int, mtime_ns: int) -> str | None:
    """An object's bytes never change under its name: decode it once per process (size and mtime guard a repair)."""
    for kind in ("image", "video"):
        verdict = check(Path(path), kind)
        if verdict.ok:
            return verdict.media_type
    return None
