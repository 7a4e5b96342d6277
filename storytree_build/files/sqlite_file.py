"""One way to open a SQLite file that several threads and processes write: WAL, a 30 s busy timeout, fsync on commit.

Switching a new file to WAL needs an exclusive lock, and SQLite answers "database is locked" at once instead of
waiting for it (the busy handler is not used for it; measured: 8 threads opening one new file fail ~6 % of the
time). So that switch is retried here for up to the same 30 s.

Cache files (the rate limiter's learnt rates, doit's database) that cannot be read are not fatal: `damage` says what
is wrong with one, and `set_aside` renames it (`<name>.corrupt-<UTC time>`) so a new one is built in its place. A
file that is only locked or cannot be opened for permissions is never taken for damaged.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

SIDE_FILES = ("-wal", "-shm", "-journal")
NOT_DAMAGE = ("locked", "busy", "unable to open", "readonly", "read-only", "disk i/o error")

BUSY_SECONDS = 30.0


def connect(path: Path | str, durable: bool = True) -> sqlite3.Connection:
    """`durable` False: commits are not synced (WAL with `synchronous=NORMAL`), for rows that are free to lose in a
    power cut (leases, published paths): they reach the disk with the next durable commit on the same file, in order,
    because every connection appends to the same write-ahead log and a sync of it covers what came before."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_SECONDS, check_same_thread=False)
    conn.execute(f"pragma busy_timeout={int(BUSY_SECONDS * 1000)}")
    give_up = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            conn.execute("pragma journal_mode=wal")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > give_up:
                conn.close()
                raise
            time.sleep(0.01)
    # durable: a committed record survives a power cut
    conn.execute("pragma synchronous=full" if durable else "pragma synchronous=normal")
    return conn


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (BEGIN IMMEDIATE: whoever reads before writing holds the lock), rolled
    back on any exception."""
    conn.execute("begin immediate")
    try:
        yield conn
    except BaseException:
        conn.execute("rollback")
        raise
    conn.execute("commit")


def is_damage(exc: sqlite3.Error) -> bool:
    """The error says the file's content is broken (not a database, malformed), not that it is busy or unreachable."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and not any(word in text for word in NOT_DAMAGE)


def damage(path: Path, query: str | None = None) -> str | None:
    """What is wrong with the SQLite file at `path` (None when it reads, is busy, or does not exist): `pragma
    quick_check`, then `query` (e.g. a select on the table its owner needs)."""
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(path, timeout=5.0)
    except sqlite3.Error as exc:
        return str(exc) if is_damage(exc) else None
    try:
        rows = conn.execute("pragma quick_check").fetchall()
        if rows != [("ok",)]:
            return "quick_check: " + "; ".join(str(r[0]) for r in rows[:3])
        if query:
            conn.execute(query).fetchall()
    except sqlite3.Error as exc:
        return str(exc) if is_damage(exc) else None
    finally:
        conn.close()
    return None


def set_aside(path: Path) -> Path:
    """Rename a damaged file, and its -wal/-shm/-journal, to `<name>.corrupt-<UTC time>`; returns the new path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside, n = path.with_name(f"{path.name}.corrupt-{stamp}"), 1
    while aside.exists():
        aside, n = path.with_name(f"{path.name}.corrupt-{stamp}-{n}"), n + 1
    os.replace(path, aside)
    for suffix in SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, aside.with_name(aside.name + suffix))
    return aside
