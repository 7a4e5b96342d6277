"""Scenelet labels shift (a branch was added): assets follow their shot and are renamed, never re-paid."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

from support.project import SAMPLE_ID, doit, project_env, storytree, write_export, story_db
from storytree_build.store.sqlite_records import SqliteBuildState as RecordStore

STORY = f"story:{SAMPLE_ID}"


def relabel(export: dict, mapping: dict[str, str]) -> dict:
    """What a branch insertion does to the labels: same scenelet uuids and shot indexes, new scenelet ids."""
    export = copy.deepcopy(export)
    for shot in export["shots"]:
        if shot["scenelet_id"] in mapping:
            shot["scenelet_id"] = mapping[shot["scenelet_id"]]
    return export


def test_swapped_labels_rename_assets_in_a_chain_without_paying(project: Path, sample_export: dict, monkeypatch) -> None:  # noqa: ANN001
    write_export(project / "a.json", sample_export)
    assert storytree(project, "import", str(project / "a.json"), monkeypatch=monkeypatch) == 0
    assert storytree(project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    assert doit(project, STORY, "provider=stub").returncode == 0
    records = RecordStore(story_db(project))
    assets = project / "apps/story-tree-ui/public/generated" / SAMPLE_ID / "shots"
    before = {r.identity: r.output_sha256 for r in records.records(SAMPLE_ID).all().values()}
    old_frame = (assets / "scenelet-3/shot-1_key_frame.png").read_bytes()

    # scenelet-3 and scenelet-5 trade labels (both have 2 shots): every rename is part of a cycle.
    write_export(project / "b.json", relabel(sample_export, {"scenelet-3": "scenelet-5", "scenelet-5": "scenelet-3"}))
    assert storytree(project, "import", str(project / "b.json"), monkeypatch=monkeypatch) == 0
    assert storytree(project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    plan = doit(project, "dryrun", STORY, "provider=stub")
    assert "M image:scenelet-5_1  [renamed from image:scenelet-3_1" in plan.stdout

    result = doit(project, STORY, "provider=stub")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 built" in result.stdout, result.stdout
    assert "renamed from image:scenelet-3_1" in result.stderr
    after = {r.identity: r.output_sha256 for r in records.records(SAMPLE_ID).all().values()}
    assert after == before  # same files, same shots: nothing regenerated
    assert (assets / "scenelet-5/shot-1_key_frame.png").read_bytes() == old_frame
    assert not list(assets.rglob("*.storytree-moving"))
    again = doit(project, "dryrun", "--check", STORY, "provider=stub")
    assert again.returncode == 0, again.stdout


def built(project: Path, sample_export: dict, monkeypatch) -> RecordStore:  # noqa: ANN001
    write_export(project / "a.json", sample_export)
    assert storytree(project, "import", str(project / "a.json"), monkeypatch=monkeypatch) == 0
    assert storytree(project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    assert doit(project, STORY, "provider=stub").returncode == 0
    return RecordStore(story_db(project))


def test_a_journal_that_no_longer_fits_is_set_aside_and_pays_nothing(project: Path, sample_export: dict,
                                                                     monkeypatch) -> None:  # noqa: ANN001
    records = built(project, sample_export, monkeypatch)
    before = {t: r.output_sha256 for t, r in records.records(SAMPLE_ID).all().items()}
    assets = project / "apps/story-tree-ui/public/generated"
    frame = f"{SAMPLE_ID}/shots/scenelet-3/shot-1_key_frame.png"
    # An interrupted rename to a target the manifest no longer has: its file was already parked.
    gone = f"{SAMPLE_ID}/shots/scenelet-9/shot-1_key_frame.png"
    (assets / gone).parent.mkdir(parents=True)
    os.replace(assets / frame, assets / f"{gone}.storytree-moving")
    journal = project / ".storytree" / f"moves-{SAMPLE_ID}.json"
    journal.write_text(json.dumps([{"old_task": "image:scenelet-3_1", "new_task": "image:scenelet-9_1",
                                    "old_output": frame, "new_output": gone}]))
    calls = project / "calls.log"
    result = doit(project, STORY, "provider=stub", env=project_env(project, STORYTREE_STUB_CALL_LOG=str(calls)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "set aside the rename journal" in result.stderr and "Traceback" not in result.stderr
    assert not calls.exists()  # nothing paid again
    assert (assets / frame).is_file() and not (assets / f"{gone}.storytree-moving").exists()
    assert not journal.exists() and list(journal.parent.glob(f"{journal.name}.stale-*"))
    assert {t: r.output_sha256 for t, r in records.records(SAMPLE_ID).all().items()} == before
    again = doit(project, STORY, "provider=stub")
    assert again.returncode == 0 and "set aside" not in again.stderr


def test_an_unreadable_journal_never_blocks_a_build(project: Path, sample_export: dict, monkeypatch) -> None:  # noqa: ANN001
    built(project, sample_export, monkeypatch)
    journal = project / ".storytree" / f"moves-{SAMPLE_ID}.json"
    journal.write_text("{not json")
    result = doit(project, STORY, "provider=stub")
    assert result.returncode == 0 and "0 built" in result.stdout, result.stdout + result.stderr
    assert "set aside the rename journal" in result.stderr
