"""Video targets through the build: submit is recorded before polling, resumed instead of re-paid,
uncertain submits block, download-only mode fills exactly one shot."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.project import SAMPLE_ID, doit, storytree, write_export, story_db
from storytree_build.store.build_state import Operation, utc_now
from storytree_build.store.sqlite_records import SqliteBuildState as RecordStore

VIDEO = "video:scenelet-1_1"


@pytest.fixture
def ready(project: Path, sample_export: dict, monkeypatch) -> Path:  # noqa: ANN001
    export = write_export(project / "sample.json", sample_export)
    assert storytree(project, "import", str(export), monkeypatch=monkeypatch) == 0
    assert storytree(project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    assert doit(project, "image:scenelet-1_1", "provider=stub").returncode == 0
    return project


def record_store(project: Path) -> RecordStore:
    return RecordStore(story_db(project))


def test_recorded_operation_is_resumed_not_resubmitted(ready: Path) -> None:
    from storytree_build.core.status import signature_of

    store = record_store(ready)
    store.operations(SAMPLE_ID).put(Operation(story_id=SAMPLE_ID, task=VIDEO, signature="sig-at-submit", provider="stub", model="m", state="submitted",
                                  operation="stub-operations/earlier", submitted_at=utc_now(), download_uri=None, error=None))
    plan = doit(ready, "dryrun", VIDEO, "provider=stub")
    assert "will resume (no new cost)" in plan.stdout
    result = doit(ready, VIDEO, "provider=stub")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resuming operation stub-operations/earlier" in result.stderr
    assert "submitted video operation" not in result.stderr
    assert "1 resumed" in result.stdout
    assert store.operations(SAMPLE_ID).get(VIDEO) is None
    rec = store.records(SAMPLE_ID).get(VIDEO)
    assert rec is not None and rec.signature == "sig-at-submit"
    assert signature_of(rec.inputs) != rec.signature  # saved, but out of date for the current inputs


def test_uncertain_submit_blocks_until_user_resubmits(ready: Path, monkeypatch) -> None:  # noqa: ANN001
    store = record_store(ready)
    store.operations(SAMPLE_ID).put(Operation(story_id=SAMPLE_ID, task=VIDEO, signature="s", provider="stub", model="m", state="uncertain", operation=None, submitted_at=utc_now(), download_uri=None, error=None))
    blocked = doit(ready, VIDEO, "provider=stub")
    assert blocked.returncode != 0
    assert f"storytree resubmit {SAMPLE_ID} {VIDEO}" in blocked.stdout
    assert not (ready / "apps/story-tree-ui/public/generated" / SAMPLE_ID / "shots/scenelet-1/shot-1.mp4").exists()
    assert storytree(ready, "resubmit", SAMPLE_ID, VIDEO, monkeypatch=monkeypatch) == 0
    again = doit(ready, VIDEO, "provider=stub")
    assert again.returncode == 0 and "1 built" in again.stdout


def test_expired_operation_tells_how_to_regenerate(ready: Path) -> None:
    store = record_store(ready)
    store.operations(SAMPLE_ID).put(Operation(story_id=SAMPLE_ID, task=VIDEO, signature="s", provider="stub", model="m", state="submitted", operation="stub-operations/old",
                                  submitted_at="2026-01-01T00:00:00+00:00", download_uri=None, error=None))
    result = doit(ready, VIDEO, "provider=stub")
    assert result.returncode != 0
    assert "cannot be fetched any more" in result.stdout and "storytree resubmit" in result.stdout
    assert store.operations(SAMPLE_ID).get(VIDEO) is not None  # nothing is forgotten silently


def test_download_link_fills_exactly_one_shot(ready: Path) -> None:
    result = doit(ready, VIDEO, "--download-link", "stub://operations/given", "provider=stub")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 downloaded" in result.stdout
    video = ready / "apps/story-tree-ui/public/generated" / SAMPLE_ID / "shots/scenelet-1/shot-1.mp4"
    assert video.read_bytes()[4:8] == b"ftyp"
    assert b"stub://operations/given" in video.read_bytes()
    assert record_store(ready).records(SAMPLE_ID).get(VIDEO).published
    for args in (["video:scenelet-1_1", "video:scenelet-1_2"], ["video:*"], ["shot:scenelet-1_1"],
                 [f"story:{SAMPLE_ID}"]):
        refused = doit(ready, *args, "--download-link", "stub://operations/given", "provider=stub")
        assert refused.returncode == 3
        assert "exactly one shot" in refused.stderr


def test_download_link_to_another_host_is_refused(ready: Path) -> None:
    result = doit(ready, VIDEO, "--download-link", "https://elsewhere.example/v.mp4", "provider=stub")
    assert result.returncode != 0
    assert "refused" in result.stdout
    assert record_store(ready).records(SAMPLE_ID).get(VIDEO) is None
