"""Crash-safe file writes, the only way storytree puts a file in place: temp file in the same folder, fsync, rename,
fsync the folder. A reader sees the old file or the complete new one, never a partial one.

Files get the usual permissions, 0666 minus the umask (0644 with the common umask 022): assets and manifests are
served and read by other users. Private state is kept private by its folder (see `private_folder`)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _read_umask() -> int:
    """The process umask, read without changing it where Linux allows (changing it is process-wide, not thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_read_umask()


def private_folder(path: Path) -> Path:
    """Create `path` (and parents) readable by this user only, for records, caches and recovered results."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
    return path


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(path: Path) -> Path:
    """A new empty temp file beside `path` (`.<name>.<random>.part`, hidden, removed by the next build if orphaned)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600
    finally:
        os.close(fd)
    return Path(tmp_name)


@contextmanager
def replacing(path: Path, durable: bool | Callable[[], bool] = True) -> Iterator[Path]:
    """Yield a temp path for the caller to fill (and check); on success it is fsynced and renamed to `path`. On any
    error the temp file is removed and `path` is untouched.

    `durable` False (or a callable answering False once the body has run): renamed without fsyncs, for a file that
    is a copy of a durable one (an asset materialised from its object): a power cut may leave it empty or absent,
    and the next build restores it from the object for free. The rename stays atomic for every reader."""
    tmp = temp_path_for(path)
    try:
        yield tmp
        sync = durable() if callable(durable) else durable
        if sync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        _fsync_dir(path.parent)


def write_chunks_atomic(path: Path, chunks: Iterable[bytes]) -> int:
    """Write `chunks` to `path` so that `path` is either absent/old or complete. Returns bytes written."""
    total = 0
    with replacing(path) as tmp, open(tmp, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
            total += len(chunk)
    return total


def write_bytes_atomic(path: Path, data: bytes) -> None:
    write_chunks_atomic(path, [data])


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
