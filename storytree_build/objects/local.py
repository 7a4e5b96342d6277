"""The local object store: every paid asset once, by sha256, under `<root>/sha256/<2 hex>/<62 hex>`, read-only.

Objects are written like every storytree file (temp file, fsync, rename, fsync the folder), hashed while they are
copied in, and checked against the sha256 they are stored under whenever they are copied out. An asset file is
*materialized* from its object: a copy-on-write clone (reflink) where the filesystem has one, else a copy; either
way an in-place edit of the asset can never reach the object. `link="hardlink"` makes the asset another name of the
object's read-only inode instead (no second copy on disk), with DVC's risk: a program that edits the asset in place
(root ignores the read-only bit) changes the stored object too, which `verify` then reports and the next `add_*` of
the genuine bytes repairs."""

from __future__ import annotations

import builtins
from io import BufferedReader

import errno
import hashlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from ..core.errors import ConfigError, InputError
from ..files.atomic import private_folder, replacing
from .errors import ObjectCorrupt, ObjectNotFound, ObjectStoreFault, short
from .keys import ALGORITHM, check_sha256, hash_bytes, hash_file, relative_key, sha256_of_key
from .placing import copy_hashing, describe, fsync_folder, try_reflink

if TYPE_CHECKING:
    from .remote import Remote, Transfer

Link = Literal["copy", "hardlink"]
LINKS: tuple[Link, ...] = ("copy", "hardlink")
OBJECT_MODE = 0o444
_NO_HARDLINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP}  # another filesystem or no links: copy

Fill = Callable[[BinaryIO, Path], tuple[str, int]]  # writes the bytes into the open temp file: (sha256, size)


class LocalObjects:
    def __init__(self, root: Path, link: Link = "copy"):
        if link not in LINKS:
            raise ConfigError(f"objects link = {link!r} is not one of {', '.join(LINKS)} (copy is the safe default)")
        self.root = Path(root)
        self.link: Link = link

    def __repr__(self) -> str:
        return f"LocalObjects({str(self.root)!r}, link={self.link!r})"

    # -- where --------------------------------------------------------------------------------------------------
    def path(self, sha256: str) -> Path:
        return self.root / relative_key(sha256)

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    # -- in -----------------------------------------------------------------------------------------------------
    def add_file(self, src: Path, expected_sha256: str | None = None) -> str:
        """Store the bytes of `src` and return their sha256. With `expected_sha256`, bytes that hash otherwise are
        refused (ObjectCorrupt) and nothing is stored."""
        if expected_sha256 is not None:
            check_sha256(expected_sha256)
        try:
            source = open(src, "rb")
        except OSError as exc:
            raise InputError(f"cannot store {src} as an object: {describe(exc)}") from None

        def fill(out: BinaryIO, tmp: Path) -> tuple[str, int]:
            if try_reflink(source, out):  # the clone is a snapshot: hashing it hashes exactly what is stored
                return hash_file(tmp), os.fstat(out.fileno()).st_size
            return copy_hashing(source, out)

        with source:
            return self._store(fill, expected_sha256, what=str(src))

    def add_bytes(self, data: bytes) -> str:
        def fill(out: BinaryIO, tmp: Path) -> tuple[str, int]:
            out.write(data)
            return hash_bytes(data), len(data)

        return self._store(fill, None, what=f"{len(data)} bytes")

    def _store(self, fill: Fill, expected: str | None, what: str) -> str:
        """Fill a temp file in `<root>/tmp`, check it, and rename it to its address; an intact object already there
        is kept (adding is idempotent), a damaged one (other size or hash) is replaced."""
        try:
            incoming = private_folder(private_folder(self.root) / "tmp")
            fd, name = tempfile.mkstemp(prefix=".", suffix=".part", dir=incoming)
        except OSError as exc:
            raise self._fault(exc, what) from None
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                sha256, size = fill(out, tmp)
                out.flush()
                os.fsync(out.fileno())
            if expected is not None and sha256 != expected:
                raise ObjectCorrupt(f"{what}: its bytes hash to {short(sha256)}, not to the expected "
                                    f"{short(expected)}; nothing was stored", sha256=expected, actual_sha256=sha256)
            final = self.path(sha256)
            if _intact(final, sha256, size):
                tmp.unlink()
                return sha256
            os.chmod(tmp, OBJECT_MODE)
            if not final.parent.is_dir():
                _make_prefix_folders(final.parent.parent)
            os.replace(tmp, final)
            fsync_folder(final.parent)  # the object's new name is durable before any record names it
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise self._fault(exc, what) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return sha256

    # -- out ----------------------------------------------------------------------------------------------------
    def materialize(self, sha256: str, dest: Path, *, verify: bool = True) -> None:
        """Put the object's bytes at `dest`: complete or not at all (the old `dest`, if any, stays until then).
        Not synced: the object is the durable copy, so a `dest` a power cut empties is restored from it for free.
        The bytes are checked against `sha256` on the way (a copy hashes what it writes), so a damaged object
        raises ObjectCorrupt and leaves `dest` untouched."""
        source_path = self.path(sha256)
        try:
            source = open(source_path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(f"object {short(sha256)} is not in the local objects ({self.root})",
                                 sha256=sha256) from None
        dest = Path(dest)
        with source:
            if self.link == "hardlink" and self._hardlink(source, source_path, sha256, dest, verify):
                return
            source.seek(0)  # a hardlink attempt may have read it to the end
            try:
                with replacing(dest, durable=False) as tmp, open(tmp, "wb") as out:  # a copy of the object
                    if try_reflink(source, out):
                        actual = _hash_handle(source) if verify else sha256
                    else:
                        actual, _ = copy_hashing(source, out)
                    if actual != sha256:
                        raise self._damaged(sha256, actual)
            except OSError as exc:
                raise ObjectStoreFault(f"object {short(sha256)}: cannot write {dest} ({describe(exc)}); nothing "
                                       "was replaced. Make the folder writable (or free space) and try again."
                                       ) from None

    def _hardlink(self, source: BufferedReader, source_path: Path, sha256: str, dest: Path, verify: bool) -> bool:
        """`dest` becomes another name of the object's inode; False (nothing done) where links cannot be made."""
        if verify and (actual := _hash_handle(source)) != sha256:
            raise self._damaged(sha256, actual)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.parent / f".{dest.name}.{secrets.token_hex(6)}.part"
            os.link(source_path, tmp)
        except OSError as exc:
            if exc.errno in _NO_HARDLINK:
                return False
            raise ObjectStoreFault(f"object {short(sha256)}: cannot link {dest} ({describe(exc)}); nothing was "
                                   "replaced") from None
        try:
            os.replace(tmp, dest)  # no folder fsync: the object is the durable name, the asset is restored from it
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return True

    # -- check, list, remove ------------------------------------------------------------------------------------
    def verify(self, sha256: str) -> bool:
        """Re-hash the object: False when it is missing or its bytes no longer match."""
        try:
            return hash_file(self.path(sha256)) == sha256
        except FileNotFoundError:
            return False

    def remove(self, sha256: str) -> bool:
        """Delete the object; False when there was none. (Callers decide what may go: see gc.)"""
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def __iter__(self) -> Iterator[tuple[str, int]]:
        """(sha256, size) of every object, in no particular order; temp files and stray names are skipped."""
        base = self.root / ALGORITHM
        try:
            folders = list(os.scandir(base))
        except FileNotFoundError:
            return
        for folder in folders:
            if not folder.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(folder.path):
                sha256 = sha256_of_key(f"{ALGORITHM}/{folder.name}/{entry.name}")
                if sha256 and entry.is_file(follow_symlinks=False):
                    yield sha256, entry.stat(follow_symlinks=False).st_size

    def list(self) -> list[tuple[str, int]]:
        return list(self)

    def total_bytes(self) -> int:
        return sum(size for _, size in self)

    # -- from a remote ------------------------------------------------------------------------------------------
    def fetch(self, remote: Remote, sha256: str) -> Path:
        """Download one object from `remote` into this store (verified while streaming); its path."""
        self._ready_for(sha256)
        remote.get(sha256, self.path(sha256))
        os.chmod(self.path(sha256), OBJECT_MODE)
        return self.path(sha256)

    def fetch_many(self, remote: Remote, shas: Iterable[str], max_workers: int = 8) -> builtins.list[Transfer]:
        """Download many objects concurrently; one result per object, failures included (never raises for one)."""
        wanted = list(dict.fromkeys(shas))
        for sha256 in wanted:
            self._ready_for(sha256)
        results = remote.get_many([(sha256, self.path(sha256)) for sha256 in wanted], max_workers=max_workers)
        for result in results:
            if result.ok:
                os.chmod(result.path, OBJECT_MODE)
        return results

    def _ready_for(self, sha256: str) -> None:
        check_sha256(sha256)
        try:
            private_folder(self.root)
        except OSError as exc:
            raise self._fault(exc, f"object {short(sha256)}") from None

    # -- messages -----------------------------------------------------------------------------------------------
    def _fault(self, exc: OSError, what: str) -> ObjectStoreFault:
        full = " (the disk is full)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        return ObjectStoreFault(f"cannot store {what} in the local objects {self.root}{full}: {describe(exc)}. "
                                "Make the folder writable (or free space) and try again; nothing was stored.")

    def _damaged(self, sha256: str, actual: str) -> ObjectCorrupt:
        return ObjectCorrupt(f"object {short(sha256)} in {self.root} is damaged: its bytes hash to {short(actual)}; "
                             "nothing was written. Add the genuine bytes again (or get them from the remote).",
                             sha256=sha256, actual_sha256=actual)


def _make_prefix_folders(base: Path) -> None:
    """Every `<2 hex>` folder under `base` at once, made durable with one sync of `base` (and of its parent when
    `base` is new): adding an object then syncs only its own folder, never a new one's parent."""
    new_base = not base.is_dir()
    base.mkdir(parents=True, exist_ok=True)
    for prefix in range(256):
        (base / f"{prefix:02x}").mkdir(exist_ok=True)
    fsync_folder(base)
    if new_base:
        fsync_folder(base.parent)


def _intact(path: Path, sha256: str, size: int) -> bool:
    try:
        if path.stat().st_size != size:
            return False
    except FileNotFoundError:
        return False
    return hash_file(path) == sha256


def _hash_handle(handle: BufferedReader) -> str:
    handle.seek(0)
    return hashlib.file_digest(handle, ALGORITHM).hexdigest()
