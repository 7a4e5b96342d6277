"""Byte-level helpers for putting an object's bytes somewhere: a copy-on-write clone where the filesystem has one,
else a copy that hashes what it writes. No policy here: `local.py` decides where and when."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
from pathlib import Path
from io import BufferedReader
from typing import BinaryIO

from .keys import ALGORITHM, CHUNK

FICLONE = 0x40049409  # linux/fs.h _IOW(0x94, 9, int): share the source's extents, copy-on-write
# Answers that mean "no clone here" (not a failure): another filesystem, no reflink support, not Linux.
_NO_CLONE = {errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.ENOSYS, errno.EPERM}


def describe(exc: OSError) -> str:
    return exc.strerror or errno.errorcode.get(exc.errno or 0, "") or str(exc)


def try_reflink(src: BinaryIO, dst: BinaryIO) -> bool:
    """Clone `src` into the empty `dst` (btrfs, XFS with reflink, bcachefs...); False when the filesystem cannot.
    A clone is independent afterwards: writing either file never changes the other."""
    try:
        fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
    except OSError as exc:
        if exc.errno in _NO_CLONE:
            return False
        raise
    return True


def copy_hashing(src: BufferedReader, dst: BinaryIO) -> tuple[str, int]:
    """Copy the rest of `src` into `dst`, hashing the bytes as they pass. Returns (sha256, size)."""
    digest = hashlib.new(ALGORITHM)
    size = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while True:
        n = src.readinto(buffer)
        if not n:
            break
        digest.update(view[:n])
        dst.write(view[:n])
        size += n
    return digest.hexdigest(), size


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
