"""One contract for the build's own state in every store: records, operations and claims (SQLite and Supabase over a
real PostgREST), and the in-memory ports the unit tests count calls on (`support/fakes/build_state.py`), so that those
fakes cannot drift from the stores they stand in for."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

import pytest

from storytree_build.data.transfer import validate_export
from storytree_build.store.build_state import (ClaimsPort, Operation, OperationsPort, Record, RecordsPort, Version,
                                              utc_now)
from support.project import SAMPLE_ID

TASK = "image:scenelet-1_1"
OTHER_STORY = "6f2e0d3b-8c4a-4d9f-8b72-1e3f5c7d9a21"


@dataclass(frozen=True)
class Ports:
    """The three ports of the sample story, as a store opens them (bound to the story)."""

    records: RecordsPort
    operations: OperationsPort
    claims: ClaimsPort


@pytest.fixture(params=["sqlite", "supabase", "memory"])
def state(request, sample_export):
    """The build state of a store holding the sample story."""
    if request.param == "memory":
        from support.fakes.build_state import MemoryBuildState

        yield MemoryBuildState()
        return
    if request.param == "sqlite":
        from storytree_build.store.sqlite_records import SqliteBuildState

        store = request.getfixturevalue("store")
        opened = SqliteBuildState(store.path)
    else:
        from storytree_build.store.supabase_records import SupabaseBuildState

        store = request.getfixturevalue("supabase_store")
        opened = SupabaseBuildState(store)
    store.import_rows(validate_export(copy.deepcopy(sample_export), store, "test"))
    another = {**copy.deepcopy(sample_export["stories"][0]), "id": OTHER_STORY, "display_name": "Another"}
    store.import_rows(validate_export({"stories": [another], "scenelets": [], "shots": []}, store, "test"))
    yield opened
    opened.close()


@pytest.fixture
def ports(state) -> Ports:  # noqa: ANN001
    return Ports(state.records(SAMPLE_ID), state.operations(SAMPLE_ID), state.claims(SAMPLE_ID))


def record(task: str = TASK, **changes) -> Record:  # noqa: ANN003
    values = dict(story_id=SAMPLE_ID, task=task, output=f"{SAMPLE_ID}/x/{task}.png", signature="sig",
                  inputs={"prompt_sha256": "p", "references": [["a.png", "h"]]}, output_sha256="out",
                  output_size=10, output_mtime_ns=1_700_000_000_123_456_789, provider="stub", model="m",
                  prompt_sha256="p", built_at=utc_now(), published=False, identity="key_frame|x|1", origin="built",
                  built_by="host:/project", detail="")
    values.update(changes)
    return Record(**values)


def test_records_round_trip_exactly(ports: Ports) -> None:
    mine = record()
    ports.records.put(mine)
    assert ports.records.get(TASK) == mine
    assert ports.records.all() == {TASK: mine}
    ports.records.mark_published(TASK)
    assert ports.records.get(TASK).published
    ports.records.put(record(origin="adopted", detail="x"))  # replaces
    assert ports.records.get(TASK).origin == "adopted"
    ports.records.replace([TASK], [record("image:scenelet-9_1")])
    assert set(ports.records.all()) == {"image:scenelet-9_1"}
    ports.records.delete("image:scenelet-9_1")
    assert ports.records.all() == {}


def test_operations_round_trip(ports: Ports) -> None:
    op = Operation(story_id=SAMPLE_ID, task="video:scenelet-1_1", signature="sig", provider="stub", model="m", state="submitted", operation="ops/1", submitted_at=utc_now(), download_uri=None, error=None)
    ports.operations.put(op)
    assert ports.operations.get(op.task) == op
    assert ports.operations.all() == {op.task: op}
    ports.operations.delete(op.task)
    assert ports.operations.get(op.task) is None


def test_a_batch_jobs_operations_are_written_together(ports: Ports) -> None:
    tasks = ["ref:character.a.character-model-sheet-1", "image:scenelet-1_1", "image:scenelet-1_2"]
    submitting = [Operation(story_id=SAMPLE_ID, task=t, signature=f"sig-{t}", provider="gemini", model="m", state="submitting", operation=None, submitted_at=utc_now(), download_uri=None, error=None)
                  for t in tasks]
    ports.operations.put_many(submitting)
    assert ports.operations.all() == {op.task: op for op in submitting}
    submitted = [Operation(**{**op.to_row(), "state": "submitted", "operation": "batches/b1"}) for op in submitting]
    ports.operations.put_many(submitted)  # replaces
    assert ports.operations.all() == {op.task: op for op in submitted}


def test_import_keeps_what_is_there(ports: Ports) -> None:
    ports.records.put(record(signature="mine"))
    ports.records.import_missing([record(signature="theirs"), record("image:scenelet-2_1")])
    assert ports.records.get(TASK).signature == "mine"
    assert set(ports.records.all()) == {TASK, "image:scenelet-2_1"}


def test_a_claim_belongs_to_one_owner_at_a_time(ports: Ports) -> None:
    assert ports.claims.take(TASK, "a", 60) is None
    assert ports.claims.take(TASK, "a", 60) is None  # renewing one's own
    held = ports.claims.take(TASK, "b", 60)
    assert held is not None and held.owner == "a" and held.live
    assert set(ports.claims.unexpired()) == {TASK}
    assert ports.claims.release(TASK, "b") is None  # not b's to release
    released = ports.claims.release(TASK)
    assert released is not None and released.owner == "a"
    assert ports.claims.take(TASK, "b", 60) is None
    assert ports.claims.unexpired()[TASK].owner == "b"


def test_an_expired_claim_is_taken_over(ports: Ports) -> None:
    assert ports.claims.take(TASK, "a", 0.001) is None
    import time

    time.sleep(0.05)
    assert ports.claims.unexpired() == {}
    assert ports.claims.take(TASK, "b", 60) is None


def test_concurrent_claimers_get_exactly_one_grant(ports: Ports) -> None:
    granted: list[str] = []
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        barrier.wait()
        if ports.claims.take(TASK, f"owner-{n}", 60) is None:
            granted.append(f"owner-{n}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 1
    assert ports.claims.unexpired()[TASK].owner == granted[0]


def test_a_port_serves_only_its_own_story(state) -> None:  # noqa: ANN001
    other = OTHER_STORY
    state.records(SAMPLE_ID).put(record())
    assert state.records(other).all() == {} and state.records(other).get(TASK) is None
    with pytest.raises(ValueError, match="given to"):
        state.records(other).put(record())  # a record of the sample story is never written as another story's
    assert state.claims(other).take(TASK, "a", 60) is None  # the same task name in another story is another lease
    assert state.claims(SAMPLE_ID).take(TASK, "b", 60) is None
    assert set(state.claims(other).unexpired()) == {TASK} and state.claims(other).unexpired()[TASK].owner == "a"


def test_a_replaced_record_is_kept_as_a_version_with_its_verdict(state) -> None:  # noqa: ANN001
    records, versions = state.records(SAMPLE_ID), state.versions(SAMPLE_ID)
    first = record(output_sha256="1" * 64, cost=0.067, pushed_to="s3://team/objects", version=1)
    records.put(first)
    assert records.get(TASK) == first  # cost, pushed_to and version round trip
    second = record(output_sha256="2" * 64, cost=0.067, version=2)
    records.put(second, replaced=Version.of(first, "approved", "2026-12-03T10:00:00+00:00"))
    third = record(output_sha256="3" * 64, cost=0.0, origin="edited", version=3)
    records.put(third, replaced=Version.of(second, "", "2026-12-03T11:00:00+00:00"))
    assert records.get(TASK) == third
    kept = versions.all(TASK)
    assert [(v.version, v.output_sha256[0], v.verdict) for v in kept] == [(2, "2", ""), (1, "1", "approved")]
    assert kept[1].record == first and kept[1].replaced_at == "2026-12-03T10:00:00+00:00"
    assert versions.all() == kept and state.versions(OTHER_STORY).all() == []

    records.mark_pushed(["1" * 64, "3" * 64], "file:///team")
    assert records.get(TASK).pushed_to == "file:///team"
    assert {v.version: v.record.pushed_to for v in versions.all(TASK)} == {2: "", 1: "file:///team"}

    versions.delete(TASK, [1])
    assert [v.version for v in versions.all(TASK)] == [2]
    versions.import_missing([Version.of(first, "rejected", "x"), Version.of(second, "approved", "y")])
    assert [(v.version, v.verdict) for v in versions.all(TASK)] == [(2, ""), (1, "rejected")]  # existing ones win


def test_records_read_together_share_their_repeated_strings(ports: Ports, state) -> None:  # noqa: ANN001
    """A long story's records repeat the same reference paths and hashes thousands of times; read together, each
    repeated string is held once (the dry-run of 5,002 targets: about 7 MiB less), and the records are unchanged."""
    if type(state).__name__ == "MemoryBuildState":
        pytest.skip("the in-memory fake hands back the objects it was given")
    refs = [[f"{SAMPLE_ID}/visuals/characters/wren/character-model-sheet-1.png", "ab" * 32]]
    first, second = record(inputs={"references": refs}), record("image:scenelet-1_2", inputs={"references": refs})
    ports.records.put(first)
    ports.records.put(second)
    read = ports.records.all()
    assert read == {first.task: first, second.task: second}
    (path_a, digest_a), = read[first.task].inputs["references"]
    (path_b, digest_b), = read[second.task].inputs["references"]
    assert path_a is path_b and digest_a is digest_b
    assert read[first.task].model is read[second.task].model
