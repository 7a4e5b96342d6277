"""One contract for the build's own state in every store: records, operations and claims (SQLite and Supabase over a
real PostgREST)."""

from __future__ import annotations

import copy
import threading

import pytest

from storytree_build.data.transfer import validate_export
from storytree_build.store.build_state import Operation, Record, utc_now
from support.project import SAMPLE_ID

TASK = "image:scenelet-1_1"


@pytest.fixture(params=["sqlite", "supabase"])
def records(request, sample_export):
    """The records port of a store holding the sample story."""
    if request.param == "sqlite":
        from storytree_build.store.sqlite_records import SqliteRecords

        store = request.getfixturevalue("store")
        port = SqliteRecords(store.path)
    else:
        from storytree_build.store.supabase_records import SupabaseRecords

        store = request.getfixturevalue("supabase_store")
        port = SupabaseRecords(store)
    store.import_rows(validate_export(copy.deepcopy(sample_export), store, "test"))
    yield port
    port.close()


def record(task: str = TASK, **changes) -> Record:  # noqa: ANN003
    values = dict(story_id=SAMPLE_ID, task=task, output=f"{SAMPLE_ID}/x/{task}.png", signature="sig",
                  inputs={"prompt_sha256": "p", "references": [["a.png", "h"]]}, output_sha256="out",
                  output_size=10, output_mtime_ns=1_700_000_000_123_456_789, provider="stub", model="m",
                  prompt_sha256="p", built_at=utc_now(), published=False, identity="key_frame|x|1", origin="built",
                  built_by="host:/project", detail="")
    values.update(changes)
    return Record(**values)


def test_records_round_trip_exactly(records) -> None:
    mine = record()
    records.put(mine)
    assert records.get(SAMPLE_ID, TASK) == mine
    assert records.all_for_story(SAMPLE_ID) == {TASK: mine}
    records.mark_published(SAMPLE_ID, TASK)
    assert records.get(SAMPLE_ID, TASK).published
    records.put(record(origin="adopted", detail="x"))  # replaces
    assert records.get(SAMPLE_ID, TASK).origin == "adopted"
    records.replace(SAMPLE_ID, [TASK], [record("image:scenelet-9_1")])
    assert set(records.all_for_story(SAMPLE_ID)) == {"image:scenelet-9_1"}
    records.delete(SAMPLE_ID, "image:scenelet-9_1")
    assert records.all_for_story(SAMPLE_ID) == {}


def test_operations_round_trip(records) -> None:
    op = Operation(SAMPLE_ID, "video:scenelet-1_1", "sig", "stub", "m", "submitted", "ops/1", utc_now(), None, None)
    records.put_operation(op)
    assert records.get_operation(SAMPLE_ID, op.task) == op
    assert records.all_operations(SAMPLE_ID) == {op.task: op}
    records.delete_operation(SAMPLE_ID, op.task)
    assert records.get_operation(SAMPLE_ID, op.task) is None


def test_a_batch_jobs_operations_are_written_together(records) -> None:
    tasks = ["ref:character.a.character-model-sheet-1", "image:scenelet-1_1", "image:scenelet-1_2"]
    submitting = [Operation(SAMPLE_ID, t, f"sig-{t}", "gemini", "m", "submitting", None, utc_now(), None, None)
                  for t in tasks]
    records.put_operations(submitting)
    assert records.all_operations(SAMPLE_ID) == {op.task: op for op in submitting}
    submitted = [Operation(**{**op.to_row(), "state": "submitted", "operation": "batches/b1"}) for op in submitting]
    records.put_operations(submitted)  # replaces
    assert records.all_operations(SAMPLE_ID) == {op.task: op for op in submitted}


def test_import_keeps_what_is_there(records) -> None:
    records.put(record(signature="mine"))
    records.import_records([record(signature="theirs"), record("image:scenelet-2_1")], [])
    assert records.get(SAMPLE_ID, TASK).signature == "mine"
    assert set(records.all_for_story(SAMPLE_ID)) == {TASK, "image:scenelet-2_1"}


def test_a_claim_belongs_to_one_owner_at_a_time(records) -> None:
    assert records.claim(SAMPLE_ID, TASK, "a", 60) is None
    assert records.claim(SAMPLE_ID, TASK, "a", 60) is None  # renewing one's own
    held = records.claim(SAMPLE_ID, TASK, "b", 60)
    assert held is not None and held.owner == "a" and held.live
    assert set(records.claims(SAMPLE_ID)) == {TASK}
    assert records.release(SAMPLE_ID, TASK, "b") is None  # not b's to release
    released = records.release(SAMPLE_ID, TASK)
    assert released is not None and released.owner == "a"
    assert records.claim(SAMPLE_ID, TASK, "b", 60) is None
    assert records.claims(SAMPLE_ID)[TASK].owner == "b"


def test_an_expired_claim_is_taken_over(records) -> None:
    assert records.claim(SAMPLE_ID, TASK, "a", 0.001) is None
    import time

    time.sleep(0.05)
    assert records.claims(SAMPLE_ID) == {}
    assert records.claim(SAMPLE_ID, TASK, "b", 60) is None


def test_concurrent_claimers_get_exactly_one_grant(records) -> None:
    granted: list[str] = []
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        barrier.wait()
        if records.claim(SAMPLE_ID, TASK, f"owner-{n}", 60) is None:
            granted.append(f"owner-{n}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 1
    assert records.claims(SAMPLE_ID)[TASK].owner == granted[0]
