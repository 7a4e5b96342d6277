"""A shot whose storyboard payload does not say which designs it shows (`referencedDesigns` absent or null).

The original shot image and video tasks refused such a shot ("Shot <sc>#<n> is missing referenced designs in the
storyboard payload."). storytree refuses it where it checks everything before money is spent: `storytree manifest`
lists the problem and writes nothing; a manifest written before the payload lost its designs cannot build it either.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storytree_build.core.models import StoryboardPayload
from storytree_build.core.errors import InputError
from support.project import (ASSETS, REPO, SAMPLE, SAMPLE_ID, doit, import_story, manifest_of, session_for,
                             storytree)

LEGACY = REPO / "samples" / "shot-production" / "scenelet-2-legacy.json"


def problem(scenelet: str, n: int) -> str:
    """The manifest's line for one such shot (what a user reads, including how to fix it)."""
    return (f"  - shot {scenelet}#{n}: storyboard_payload has no referencedDesigns (absent or null), so nothing says "
            "which model sheets and environment keyframes its key frame and video need. Fix: add "
            '"referencedDesigns": {"characters": [], "environments": []} to the payload if the shot shows no designs '
            f"(or list their ids there): `storytree export {SAMPLE_ID} > story.json`, edit, "
            f"`storytree import story.json`; or re-run shot production for {scenelet} and ingest a response that "
            "includes referenced_designs.")


def payload_of(export: dict, scenelet: str, n: int) -> dict:
    return next(s for s in export["shots"] if (s["scenelet_id"], s["shot_index"]) == (scenelet, n))["storyboard_payload"]


def manifest_file(project: Path) -> Path:
    return project / "manifests" / f"{SAMPLE_ID}.yaml"


def test_the_model_tells_unknown_designs_from_none() -> None:
    base = payload_of(json.loads(SAMPLE.read_text()), "scenelet-2", 1)
    absent = {k: v for k, v in base.items() if k != "referencedDesigns"}
    assert StoryboardPayload.model_validate(absent).designs_unknown
    assert StoryboardPayload.model_validate({**absent, "referencedDesigns": None}).designs_unknown
    none = StoryboardPayload.model_validate({**absent, "referencedDesigns": {"characters": [], "environments": []}})
    assert not none.designs_unknown and none.referenced().characters == []


def test_manifest_refuses_shots_without_referenced_designs(project: Path, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    export = json.loads(SAMPLE.read_text())
    del payload_of(export, "scenelet-2", 2)["referencedDesigns"]
    payload_of(export, "scenelet-3", 1)["referencedDesigns"] = None  # stored null: the same as absent
    path = tmp_path / "story.json"
    path.write_text(json.dumps(export))
    assert storytree(project, "import", str(path), monkeypatch=monkeypatch) == 0
    capsys.readouterr()

    assert storytree(project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 1
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0] == (f"storytree: error: Story {SAMPLE_ID} cannot be built until its documents are fixed; "
                        "nothing was written (2 problems):")
    assert lines[1:] == [problem("scenelet-2", 2), problem("scenelet-3", 1)]
    assert not manifest_file(project).exists()


def test_ingested_legacy_response_blocks_the_manifest_until_fixed(project: Path, tmp_path: Path, monkeypatch,
                                                                  capsys) -> None:  # noqa: ANN001
    export = json.loads(SAMPLE.read_text())
    export["shots"] = [s for s in export["shots"] if s["scenelet_id"] != "scenelet-2"]
    path = tmp_path / "story.json"
    path.write_text(json.dumps(export))
    assert storytree(project, "import", str(path), monkeypatch=monkeypatch) == 0
    assert storytree(project, "ingest-shots", SAMPLE_ID, str(LEGACY), monkeypatch=monkeypatch) == 0
    capsys.readouterr()

    assert storytree(project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[1:] == [problem("scenelet-2", n) for n in (1, 2, 3)]
    assert not manifest_file(project).exists()

    # The fix the message gives: export, say "no designs" explicitly, import. The shots are then built from text.
    assert storytree(project, "export", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    fixed = json.loads(capsys.readouterr().out)
    for n in (1, 2, 3):
        payload_of(fixed, "scenelet-2", n)["referencedDesigns"] = {"characters": [], "environments": []}
    path.write_text(json.dumps(fixed))
    assert storytree(project, "import", str(path), monkeypatch=monkeypatch) == 0
    assert storytree(project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    targets = manifest_of(project).by_task()
    assert targets["image:scenelet-2_1"].references == []
    assert [r.kind for r in targets["video:scenelet-2_1"].references] == ["KEY_FRAME"]


def old_manifest_project(project: Path) -> Path:
    """A manifest written by an older storytree, which drew such shots from text: it hashes exactly what the store
    holds, so only the build's own check stands between it and a paid request."""
    export = json.loads(SAMPLE.read_text())
    del payload_of(export, "scenelet-2", 2)["referencedDesigns"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StoryboardPayload, "designs_unknown", property(lambda self: False))
        import_story(project, export)
    return project


def stale_message(task: str) -> str:
    return (f"{task}: the manifest is out of date (shot scenelet-2#2 has no referencedDesigns). "
            f"Run `storytree manifest {SAMPLE_ID}` and check the dry-run before building.")


def test_an_old_manifest_that_let_such_a_shot_through_builds_nothing(project: Path) -> None:
    old_manifest_project(project)
    target = manifest_of(project).by_task()["image:scenelet-2_2"]
    assert target.references == []  # the old manifest would have sent no model sheets at all

    result = doit(project, "image:scenelet-2_2", "provider=stub")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert stale_message("image:scenelet-2_2") in output
    assert not (project / ASSETS / target.output).exists()


@pytest.mark.parametrize("task", ["image:scenelet-2_2", "video:scenelet-2_2"])
def test_requests_and_the_dry_run_refuse_such_a_shot(project: Path, task: str) -> None:
    old_manifest_project(project)
    session = session_for(project)
    try:
        target = session.target(task)
        with pytest.raises(InputError) as info:
            session.requests.render(target)
        assert str(info.value) == stale_message(task)
        problems, request = session.requests.preview(target, will_run=set())
        assert stale_message(task) in problems and request is None
    finally:
        session.close()
