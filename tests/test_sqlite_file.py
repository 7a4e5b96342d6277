"""Opening one new SQLite file from many threads at once (the first parallel build of a fresh checkout does that)."""

from __future__ import annotations

import threading
from pathlib import Path

from storytree_build.files.sqlite_file import connect


def test_threads_opening_a_new_file_at_once_never_see_database_is_locked(tmp_path: Path) -> None:
    failures: list[str] = []
    for trial in range(100):  # without the retry, ~6 % of trials fail: 100 trials fail almost surely
        path = tmp_path / f"new-{trial}.sqlite"

        def open_and_write() -> None:
            try:
                conn = connect(path)
                conn.execute("create table if not exists t (a)")
                conn.execute("begin immediate")
                conn.execute("insert into t values (1)")
                conn.execute("commit")
                conn.close()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(f"trial {trial}: {exc!r}")

        threads = [threading.Thread(target=open_and_write) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    conn = connect(tmp_path / "new-0.sqlite")
    assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert conn.execute("select count(*) from t").fetchone()[0] == 8
