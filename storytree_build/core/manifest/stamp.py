"""Which store fingerprint a manifest file was made from, so a build can tell with one fingerprint query that the
manifest still matches the story store.

The fingerprint is the store's `manifest_fingerprint` (every row of the story but what a build writes back). The stamp
lives in the state folder, not in `manifests/<story>.yaml`: a fingerprint is one store's (SQLite hashes its own rows'
text and import times, Supabase has its own digest), and the committed file must stay byte-identical for every
checkout of the same story. The stamp names the manifest file it belongs to by size
and mtime, like the JSON cache: a manifest written or checked out by anything else has no stamp, and is compared with
the store again. A lost or unreadable stamp only costs one comparison.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ...files.atomic import write_text_atomic


def _stamp_path(cache_dir: Path, manifest: Path) -> Path:
    # Not `<story>.*.json`: those are the JSON copies `remember_manifest` clears.
    return cache_dir / f"{manifest.stem}.fingerprint"


def _file_key(manifest: Path) -> str | None:
    try:
        st = os.stat(manifest)
    except OSError:
        return None
    return f"{st.st_size}.{st.st_mtime_ns}"


def stamped_fingerprint(cache_dir: Path, manifest: Path) -> str | None:
    """The store fingerprint the manifest file was made from; None when unknown (no stamp, another file)."""
    try:
        stamp = json.loads(_stamp_path(cache_dir, manifest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("manifest") != _file_key(manifest):
        return None
    fingerprint = stamp.get("store")
    return fingerprint if isinstance(fingerprint, str) and fingerprint else None


def stamp(cache_dir: Path, manifest: Path, fingerprint: str | None) -> None:
    """Record that the manifest file as it is now was made from (or matches) the store at `fingerprint`; None
    forgets it (a manifest written from a store read whose fingerprint is not known)."""
    path = _stamp_path(cache_dir, manifest)
    key = _file_key(manifest)
    try:
        if fingerprint is None or key is None:
            path.unlink(missing_ok=True)
            return
        write_text_atomic(path, json.dumps({"manifest": key, "store": fingerprint}))
    except OSError:
        pass  # a stamp that cannot be written only costs a comparison next time
