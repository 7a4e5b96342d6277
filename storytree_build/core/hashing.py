"""Canonical JSON and content hashes, with an in-process cache keyed by (path, size, mtime)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_json(value: Any) -> str:
    return sha256_text(canonical_json(value))


class FileHasher:
    """Hashes each file once per (size, mtime_ns); shared reference images are read once per run."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[int, int, str]] = {}
        self._lock = threading.Lock()

    def remember(self, path: Path, size: int, mtime_ns: int, digest: str) -> None:
        with self._lock:
            self._cache[str(path)] = (size, mtime_ns, digest)

    def sha256(self, path: Path, stat: os.stat_result | None = None) -> str:
        st = stat or os.stat(path)
        with self._lock:
            hit = self._cache.get(str(path))
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        value = digest.hexdigest()
        self.remember(path, st.st_size, st.st_mtime_ns, value)
        return value
