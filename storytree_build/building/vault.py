"""Where the bytes of every recorded asset are kept: the local object store, and the project's remote when one is set.

    keep_bytes / keep_file / keep_moving   into the local objects (temp + fsync + rename, read-only), by sha256
    upload                                 to the remote, before the record is written (a failure is one line)
    place                                  an asset materialised from its object (reflink or copy)
    restore                                an asset brought back for free: local objects first, then the remote,
                                           verified by sha256

A remote that does not answer is asked once per run: after the first "unreachable" the vault stops talking to it and
says so in one line, so a dead remote costs one timeout, not one per target. Nothing here decides whether a target is
current; the builder asks the vault only when the status says so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import AssetLost, StorytreeError

if TYPE_CHECKING:
    from ..objects.local import LocalObjects
    from ..objects.remote import Remote

log = logging.getLogger("storytree")


@dataclass(frozen=True)
class Restored:
    sha256: str
    source: str  # "local" | "remote"


class Vault:
    def __init__(self, objects: Callable[[], LocalObjects], remote: Callable[[], Remote | None], remote_url: str):
        self._objects = objects  # made on first use: a no-op build with every file present never opens the store
        self._remote = remote
        self.remote_url = remote_url  # the remote's display URL ('' when none): what a record's pushed_to names
        self._off: str | None = None  # why the remote is not asked any more in this run
        self._lock = threading.Lock()
        self.upload_failures: list[str] = []  # tasks whose new object is not on the remote yet (the summary counts)

    def objects(self) -> LocalObjects:
        return self._objects()

    # -- into the store -------------------------------------------------------------------------------------------
    def keep_bytes(self, data: bytes) -> str:
        return self._objects().add_bytes(data)

    def keep_file(self, path: Path, expected_sha256: str | None = None) -> str:
        return self._objects().add_file(path, expected_sha256)

    def has_local(self, sha256: str) -> bool:
        return self._objects().has(sha256)

    def object_path(self, sha256: str) -> Path:
        return self._objects().path(sha256)

    # -- the remote ---------------------------------------------------------------------------------------------
    def remote(self) -> Remote | None:
        if not self.remote_url or self._off is not None:
            return None
        try:
            return self._remote()
        except StorytreeError as exc:
            self._turn_off(str(exc))
            return None

    def upload(self, sha256: str, task: str) -> str:
        """Send the object to the remote; the remote's display URL when it holds it now, '' when not. A remote that
        fails this way (unreachable, refusing, full) is not asked again in this run: one line, then silence; every
        object left behind is counted for the summary (`storytree push` sends them)."""
        if not self.remote_url:
            return ""
        remote = self.remote()
        if remote is None:
            self._unsent(task)
            return ""
        try:
            remote.put(sha256, self.object_path(sha256))
        except StorytreeError as exc:
            self._unsent(task)
            if type(exc).__name__ in ("RemoteUnreachable", "RemoteRefused", "RemoteOutOfSpace"):
                self._turn_off(str(exc))
            else:
                log.warning("%s: not on the remote yet (%s); `storytree push` sends it later", task, exc)
            return ""
        return self.remote_url

    def _unsent(self, task: str) -> None:
        with self._lock:
            self.upload_failures.append(task)

    def _turn_off(self, why: str) -> None:
        with self._lock:
            if self._off is None:
                self._off = why
                log.warning("remote %s: %s; not asked again in this run (assets are kept locally)", self.remote_url,
                            why)

    # -- out of the store ---------------------------------------------------------------------------------------
    def place(self, sha256: str, dest: Path) -> None:
        """Materialise the object at `dest` (atomically; checked against its sha256 on the way)."""
        self._objects().materialize(sha256, dest)

    def restore(self, sha256: str, dest: Path, pushed_to: str, task: str) -> Restored:
        """Bring the recorded bytes back to `dest` for free: from the local objects, else from the remote that holds
        them (then they are kept locally too). AssetLost when no copy can be had."""
        objects = self._objects()
        if objects.has(sha256):
            objects.materialize(sha256, dest)
            return Restored(sha256, "local")
        remote = self.remote() if pushed_to and pushed_to == self.remote_url else None
        if remote is None:
            raise AssetLost(self._nowhere(sha256, dest, pushed_to, task))
        try:
            objects.fetch(remote, sha256)
        except StorytreeError as exc:
            raise AssetLost(f"{task}: {dest.name} could not be pulled from the remote ({exc}); nothing was "
                                   "written and nothing is paid. Try again later.") from None
        objects.materialize(sha256, dest)
        return Restored(sha256, "remote")

    def _nowhere(self, sha256: str, dest: Path, pushed_to: str, task: str) -> str:
        where = (f"the remote {pushed_to} is not this build's remote ({self.remote_url or 'none set'})"
                 if pushed_to else "it was never sent to a remote")
        return (f"{task}: {dest} is gone and no copy of {sha256[:12]}… is kept (not in the local objects; {where}). "
                f"`doit -a {task}` pays for a new one.")
