"""Run doit in this process with counters on, then write what was counted as JSON (the per-target row).

    cd <project> && python count_build.py COUNTS.json ref image video provider=stub

Counts, for the whole run: SQL statements per SQLite file (a trace callback on every connection), calls into each
port of the story store and the build state (records, operations, claims, reviews; an outer call only, so an adapter
method calling another one counts once), Python-level os.fsync/os.fdatasync calls, and the calls and seconds inside
`Builder.build` and inside the stub provider. SQLite's own fsyncs are C calls: the row counts those with strace
around this script.

Ports and adapters are found by shape, not by name: every Protocol class of the store and review modules, and every
class of `storytree_build.store.*` that has all of a protocol's methods, so a renamed adapter is still counted."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sqlite3
import sys
import threading
import time
from collections import Counter
from pathlib import Path

PROTOCOL_MODULES = ("storytree_build.store.build_state", "storytree_build.store.ports",
                    "storytree_build.review.verdicts")
STORE_PACKAGE = "storytree_build.store"

sql: Counter[str] = Counter()
ports: Counter[str] = Counter()
fsyncs: Counter[str] = Counter()
builder = {"calls": 0, "seconds": 0.0}
provider = {"calls": 0, "seconds": 0.0}
_lock = threading.Lock()
_depth = threading.local()


def _database_label(database: object) -> str:
    text = os.fsdecode(database) if isinstance(database, (str, bytes, os.PathLike)) else str(database)
    text = text.removeprefix("file:").split("?", 1)[0]
    return Path(text).name or text


def _count_sql() -> None:
    real_connect = sqlite3.connect

    def connect(database, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - sqlite3.connect's signature
        conn = real_connect(database, *args, **kwargs)
        label = _database_label(database)

        def traced(statement: str) -> None:
            with _lock:
                sql[label] += 1

        conn.set_trace_callback(traced)
        return conn

    sqlite3.connect = connect


def _count_fsync() -> None:
    for name in ("fsync", "fdatasync"):
        real = getattr(os, name)

        def counted(fd, _real=real, _name=name):  # noqa: ANN001, ANN202
            with _lock:
                fsyncs[_name] += 1
            return _real(fd)

        setattr(os, name, counted)


def _protocols() -> dict[str, list[str]]:
    found = {}
    for module_name in PROTOCOL_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name, obj in vars(module).items():
            if isinstance(obj, type) and getattr(obj, "_is_protocol", False) and obj.__module__ == module_name:
                methods = [m for m in vars(obj) if not m.startswith("_") and callable(vars(obj)[m])]
                if methods:
                    found[name] = methods
    return found


def _wrap(cls: type, method: str, label: str) -> None:
    real = getattr(cls, method)

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        depth = getattr(_depth, "value", 0)
        if depth == 0:
            with _lock:
                ports[label] += 1
        _depth.value = depth + 1
        try:
            return real(*args, **kwargs)
        finally:
            _depth.value = depth

    setattr(cls, method, counted)


def _count_ports() -> None:
    protocols = _protocols()
    package = importlib.import_module(STORE_PACKAGE)
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{STORE_PACKAGE}.{info.name}")
        for obj in list(vars(module).values()):
            if not isinstance(obj, type) or obj.__module__ != module.__name__ or getattr(obj, "_is_protocol", False):
                continue
            for port, methods in protocols.items():
                if all(callable(getattr(obj, m, None)) for m in methods):
                    for method in methods:
                        _wrap(obj, method, f"{port}.{method}")


def _time_builder() -> None:
    try:
        from storytree_build.building.builder import Builder
    except ImportError:
        return
    real = Builder.build

    def build(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            with _lock:
                builder["calls"] += 1
                builder["seconds"] += time.perf_counter() - started

    Builder.build = build


def _time_provider() -> None:
    """Seconds inside the stub provider (drawing and encoding its placeholder images, writing its video): the
    provider's work, which a real API does on its own machines, not the builder's."""
    try:
        from storytree_build.providers.stub import StubImages, StubVideos
    except ImportError:
        return
    for cls, methods in ((StubImages, ("generate", "poll_batch")), (StubVideos, ("submit", "poll", "download"))):
        for method in methods:
            real = getattr(cls, method)

            def timed(*args, _real=real, **kwargs):  # noqa: ANN002, ANN003, ANN202
                started = time.perf_counter()
                try:
                    return _real(*args, **kwargs)
                finally:
                    with _lock:
                        provider["calls"] += 1
                        provider["seconds"] += time.perf_counter() - started

            setattr(cls, method, timed)


def main(out: str, doit_args: list[str]) -> int:
    _count_sql()  # before anything opens a connection
    _count_fsync()
    _count_ports()
    _time_builder()
    _time_provider()
    from doit.doit_cmd import DoitMain

    rc = 1
    try:
        rc = DoitMain().run(doit_args)
    finally:
        Path(out).write_text(json.dumps({"rc": rc, "sql": sql, "ports": ports, "py_fsync": fsyncs,
                                         "builder": builder, "provider": provider}), encoding="utf-8")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
