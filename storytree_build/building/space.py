"""Room for a paid result, checked before paying: the folders it will be written to accept a real write (a
permission bit says nothing about a read-only mount or a file where a folder should be), and the disk has space for
the output's size bound plus headroom, counting what parallel workers have already reserved."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import EnvironmentFault


def describe(exc: OSError) -> str:
    return exc.strerror or errno.errorcode.get(exc.errno or 0, "") or str(exc)


def probe_writable(folder: Path) -> None:
    """Create `folder` if needed and write and remove a small file in it; OSError when that fails. Not synced: a
    read-only mount, a permission or a file where the folder should be fail at the create or the write, and a full
    disk is the free-space check's job; a sync would cost a disk flush per paid target and tell nothing more."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".storytree-probe-", dir=folder)
    try:
        os.write(fd, b"probe")
    finally:
        os.close(fd)
        os.unlink(name)


class SpaceGuard:
    def __init__(self, headroom_bytes: int):
        self.headroom = headroom_bytes
        self._reserved: dict[int, int] = {}  # device → bytes reserved by targets being built
        self._lock = threading.Lock()

    @contextmanager
    def room_for(self, task: str, output: Path, size_bound: int, state_dir: Path) -> Iterator[None]:
        """Hold room for one output while it is paid for and written; EnvironmentFault (nothing paid) when the
        folders cannot be written or the disk is too full."""
        for folder, what in ((output.parent, "the asset folder"), (state_dir, "the state folder")):
            try:
                probe_writable(folder)
            except OSError as exc:
                raise EnvironmentFault(
                    f"{task}: not started, nothing was paid: {what} {folder} cannot be written ({describe(exc)}). "
                    "Make it writable (or free space) and build again.") from None
        device = os.stat(output.parent).st_dev
        need = size_bound + self.headroom
        with self._lock:
            free = shutil.disk_usage(output.parent).free - self._reserved.get(device, 0)
            if free < need:
                raise EnvironmentFault(
                    f"{task}: not started, nothing was paid: {output.parent} has {free / 2**20:.0f} MB free "
                    f"(after {self._reserved.get(device, 0) / 2**20:.0f} MB held for targets being built), but the "
                    f"result may need up to {size_bound / 2**20:.0f} MB plus {self.headroom / 2**20:.0f} MB headroom. "
                    "Free space (or lower [storage] in storytree.toml) and build again.")
            self._reserved[device] = self._reserved.get(device, 0) + size_bound
        try:
            yield
        finally:
            with self._lock:
                self._reserved[device] -= size_bound
