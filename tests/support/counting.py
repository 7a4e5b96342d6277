"""Counters for the count-based rows of issue 25, in this process: SQL statements per SQLite file (a trace callback
on every connection opened while counting), the commits SQLite syncs, and Python's os.fsync / os.fdatasync calls.

SQLite's own fsyncs are C calls no Python hook sees. In WAL mode with `synchronous=FULL` it syncs the log once per
commit, and with `synchronous=NORMAL` not at all (until a checkpoint), so `durable_commits` counts the commits of
connections that did not switch to NORMAL: an explicit COMMIT of a transaction that wrote, or a write outside BEGIN
(its own transaction)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

WRITES = ("insert", "update", "delete", "replace")


@dataclass
class Counts:
    sql: Counter[str] = field(default_factory=Counter)  # file name → statements
    durable_commits: Counter[str] = field(default_factory=Counter)  # file name → commits SQLite syncs
    fsyncs: int = 0  # os.fsync and os.fdatasync calls
    statements: list[tuple[str, str]] = field(default_factory=list)  # (file name, statement), for messages

    def of(self, name: str) -> int:
        return self.sql[name]

    def listing(self, name: str) -> str:
        """The statements run on `name`, most frequent first (for a failing assertion's message)."""
        found = Counter(statement.split(" where ")[0][:90] for label, statement in self.statements if label == name)
        return "\n".join(f"{n:5d}  {text}" for text, n in found.most_common())


def _label(database: Any) -> str:
    text = os.fsdecode(database) if isinstance(database, (str, bytes, os.PathLike)) else str(database)
    return Path(text.removeprefix("file:").split("?", 1)[0]).name


class _Tracer:
    """One connection's trace callback: counts its statements and the commits it syncs."""

    def __init__(self, counts: Counts, label: str, lock: threading.Lock):
        self.counts, self.label, self.lock = counts, label, lock
        self.synced = True  # SQLite's default, FULL
        self.in_transaction = False
        self.wrote = False  # the open transaction has written: a read-only one commits without a sync

    def __call__(self, statement: str) -> None:
        text = statement.strip().lower()
        with self.lock:
            self.counts.sql[self.label] += 1
            self.counts.statements.append((self.label, statement))
            if text.startswith("pragma synchronous"):
                self.synced = not text.endswith(("normal", "off", "=1", "=0"))
            elif text.startswith("begin"):
                self.in_transaction, self.wrote = True, False
            elif text.startswith(("commit", "end", "rollback")):
                if self.synced and self.wrote and not text.startswith("rollback"):
                    self.counts.durable_commits[self.label] += 1
                self.in_transaction = False
            elif text.startswith(WRITES):
                if self.in_transaction:
                    self.wrote = True
                elif self.synced:
                    self.counts.durable_commits[self.label] += 1


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counts]:
    counts = Counts()
    lock = threading.Lock()
    real_connect = sqlite3.connect

    def connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(database, *args, **kwargs)
        conn.set_trace_callback(_Tracer(counts, _label(database), lock))
        return conn

    def counted(real: Any) -> Any:
        def fsync(fd: int) -> None:
            with lock:
                counts.fsyncs += 1
            real(fd)

        return fsync

    monkeypatch.setattr(sqlite3, "connect", connect)
    monkeypatch.setattr(os, "fsync", counted(os.fsync))
    monkeypatch.setattr(os, "fdatasync", counted(os.fdatasync))
    yield counts
