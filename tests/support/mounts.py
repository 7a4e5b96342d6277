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
