"""Real environment faults for tests: a small tmpfs (a disk that fills up) and a read-only bind mount (a read-only
folder that even root cannot write). Both need mount rights (root, as in CI); without them the test is skipped with
the reason, unless REQUIRE_MOUNT_TESTS=1 turns that into a failure."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        reason = f"cannot mount here ({result.stderr.strip() or result.returncode})"
        if os.environ.get("REQUIRE_MOUNT_TESTS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextmanager
def tmpfs(path: Path, size_kb: int) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path))
    try:
        yield path
    finally:
        _umount(path)


@contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """`path` (an existing folder) becomes read-only in place, for root too."""
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        yield path
    finally:
        _umount(path)


@contextmanager
def reflink_filesystem(path: Path, size_mb: int = 320) -> Iterator[Path]:
    """A small XFS with reflink (copy-on-write clones) on a loop device at `path`; ext4 has no clones, so this is
    where the FICLONE path runs. Needs mkfs.xfs (Debian `xfsprogs`, installed by .ci/services-install) and loop
    devices; skipped without them (a failure with REQUIRE_MOUNT_TESTS=1)."""
    import shutil

    if not shutil.which("mkfs.xfs"):
        reason = "mkfs.xfs not found (apt-get install xfsprogs)"
        if os.environ.get("REQUIRE_MOUNT_TESTS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    image = path.with_name(path.name + ".img")
    with open(image, "wb") as handle:
        handle.truncate(size_mb * 2**20)  # sparse: costs only what XFS writes
    made = subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], capture_output=True, text=True)
    if made.returncode != 0:
        image.unlink()
        pytest.skip(f"mkfs.xfs failed: {made.stderr.strip()}")
    path.mkdir(parents=True, exist_ok=True)
    try:
        _mount("-o", "loop", str(image), str(path))
        try:
            yield path
        finally:
            _umount(path)
    finally:
        image.unlink(missing_ok=True)
