"""A shot whose storyboard payload does not say which designs it shows (`referencedDesigns` absent or null: a legacy
shot, or an ingested response without `referenced_designs`).

The reference-image brief: such a shot proceeds with the text prompt only, uploads no reference images and must not
fail for missing reference data. Here, over the sample story plus one legacy shot, through the real doit build and
the real google-genai SDK against the fake Gemini server: the manifest is written, the legacy key frame's request
carries no image part, its video carries exactly one reference (its own key frame), the dry-run marks both, and the
other shots' targets are unchanged.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from storytree_build.core.manifest import TEXT_ONLY
from support.fakes.gemini_server import FakeGemini
from support.project import (ASSETS, REPO, SAMPLE, SAMPLE_ID, doit, import_story, manifest_of, new_project,
                             project_env, storytree)

LEGACY_RESPONSE = REPO / "samples" / "shot-production" / "scenelet-2-legacy.json"
KEY = "AIza" + "SyTEST-legacy-shots-0000"
FRAME, VIDEO = "image:scenelet-5_3", "video:scenelet-5_3"


def with_legacy_shot(export: dict[str, Any]) -> dict[str, Any]:
    """The sample plus a third shot of scenelet-5 without `referencedDesigns`, as the original system stored it."""
    row = copy.deepcopy(next(s for s in export["shots"] if (s["scenelet_id"], s["shot_index"]) == ("scenelet-5", 2)))
    row.update(id="c0ffee00-0000-4000-8000-000000000053", shot_index=3)
    del row["storyboard_payload"]["referencedDesigns"]
    row["storyboard_payload"]["compositionAndContent"] = "The gorge at dusk, empty, the pots cooling."
    export["shots"].append(row)
    return export


@pytest.fixture(scope="module")
def legacy_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = new_project(tmp_path_factory.mktemp("legacy") / "project")
    (root / "storytree.toml").write_text('[gemini]\ntimeout_seconds = 5.0\ndeadline_seconds = 30.0\n'
                                         'backoff_base_seconds = 0.01\nbackoff_cap_seconds = 0.02\n')
    return import_story(root, with_legacy_shot(json.loads(SAMPLE.read_text())))


@pytest.fixture
def legacy(project: Path, legacy_template: Path) -> Path:
    shutil.rmtree(project)
    shutil.copytree(legacy_template, project)
    return project


def test_the_manifest_of_a_story_with_a_legacy_shot_is_written_and_the_other_shots_are_unchanged(
        legacy: Path, tmp_path: Path) -> None:
    targets = manifest_of(legacy).by_task()
    assert targets[FRAME].references == [] and targets[FRAME].text_only
    assert [(r.kind, r.path) for r in targets[VIDEO].references] == [("KEY_FRAME", targets[FRAME].output)]
    plain = manifest_of(import_story(new_project(tmp_path / "plain"))).targets
    assert [t for t in manifest_of(legacy).targets if t.task not in (FRAME, VIDEO)] == plain


def test_the_dry_run_marks_the_legacy_shot_text_only_and_nothing_else(legacy: Path) -> None:
    listing = doit(legacy, "dryrun", f"story:{SAMPLE_ID}", "provider=stub")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    blocks = listing.stdout.split("\n" + "R ")
    marked = [block.split()[0] for block in blocks if TEXT_ONLY in block]
    assert marked == [FRAME, VIDEO]
    as_json = doit(legacy, "dryrun", "--json", f"story:{SAMPLE_ID}", "provider=stub")
    flags = {t["task"]: t["text_only"] for t in json.loads(as_json.stdout)["targets"]}
    assert {task for task, flag in flags.items() if flag} == {FRAME, VIDEO} and len(flags) > 2


def test_an_ingested_response_without_referenced_designs_builds_text_only(project: Path, tmp_path: Path,
                                                                            monkeypatch) -> None:  # noqa: ANN001
    export = json.loads(SAMPLE.read_text())
    export["shots"] = [s for s in export["shots"] if s["scenelet_id"] != "scenelet-2"]
    path = tmp_path / "story.json"
    path.write_text(json.dumps(export))
    assert storytree(project, "import", str(path), monkeypatch=monkeypatch) == 0
    assert storytree(project, "ingest-shots", SAMPLE_ID, str(LEGACY_RESPONSE), monkeypatch=monkeypatch) == 0
    assert storytree(project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    targets = manifest_of(project).by_task()
    assert all(targets[f"image:scenelet-2_{n}"].text_only for n in (1, 2, 3))
    result = doit(project, "image:scenelet-2_1", "video:scenelet-2_1", "provider=stub")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project / ASSETS / targets["video:scenelet-2_1"].output).is_file()


def test_the_legacy_shot_is_sent_without_reference_images(legacy: Path) -> None:
    with FakeGemini() as fake:
        env = project_env(legacy, GEMINI_API_KEY=KEY, GOOGLE_GEMINI_BASE_URL=fake.url,
                          STORYTREE_VIDEO_POLL_INTERVAL="0.01")
        result = doit(legacy, FRAME, VIDEO, env=env)
        assert result.returncode == 0, result.stdout + result.stderr

        [image_call] = fake.image_calls()
        assert [list(part) for part in image_call.parts] == [["text"]]  # no inlineData part at all
        assert "No reference images are attached" in image_call.text
        [submit] = fake.video.submit_calls
        images = [c for c in submit.body["input"][0]["content"] if c["type"] == "image"]
        frame = (legacy / ASSETS / manifest_of(legacy).by_task()[FRAME].output).read_bytes()
        assert [base64.b64decode(c["data"]) for c in images] == [frame]  # exactly one: its own key frame


def test_the_review_page_marks_the_legacy_shot_text_only(legacy: Path) -> None:
    result = doit(legacy, f"gallery:{SAMPLE_ID}", "provider=stub")
    assert result.returncode == 0, result.stdout + result.stderr
    html = (legacy / "apps/story-tree-ui/public/stories" / SAMPLE_ID / "index.html").read_text()
    blocks = html.split('<div class="target" data-task="')[1:]
    marked = [block.split('"', 1)[0] for block in blocks if "data-text-only" in block.split('<div class="target"')[0]]
    assert marked == [FRAME, VIDEO] and TEXT_ONLY in html
