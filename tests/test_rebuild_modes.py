"""rebuild=missing (the video brief's "default (skip if exists)") and the cascade a rebuild sets off, through real
doit builds of the sample story with the offline provider (which costs nothing: the unit tests in
tests/unit/test_rebuild_missing.py check the amounts with real prices).

Make-style is the default: one regenerated model sheet puts every key frame and video that uses it out of date. The
dry-run and the build's opening lines say how many existing files that is and what rebuilding them costs, before
anything is paid; `rebuild=missing` (doit variable, STORYTREE_REBUILD, `[build] rebuild`) builds only what has no file
yet and lists what it leaves stale, with the cost of bringing it up to date."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from support.project import (ASSETS, SAMPLE, SAMPLE_ID, doit, import_story, manifest_of, new_project, project_env)

STORY = f"story:{SAMPLE_ID}"
CHARACTER = "captain-clank"
SHEET = f"ref:character.{CHARACTER}.character-model-sheet-1"


@pytest.fixture(scope="module")
def built_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = import_story(new_project(tmp_path_factory.mktemp("rebuild") / "project"))
    result = doit(root, STORY, "provider=stub")
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def edit_sheet(root: Path, export: dict[str, Any] | None = None) -> Path:
    """captain-clank's model sheet prompt edited (manifest regenerated)."""
    export = export or json.loads(SAMPLE.read_text())
    vrp = export["stories"][0]["visual_reference_package"]
    sheet = next(s for s in vrp["character_model_sheets"] if s["character_id"] == CHARACTER)
    sheet["reference_plates"][0]["image_generation_prompt"] += " Brass rivets gleam on the shoulders."
    return import_story(root, export)


@pytest.fixture
def edited(project: Path, built_template: Path) -> Path:
    """A copy of the built sample with the sheet edited. A copy is another checkout: its records were made
    elsewhere, which is fine for everything here but a missing file."""
    shutil.rmtree(project)
    shutil.copytree(built_template, project)
    return edit_sheet(project)


def users(root: Path) -> list[str]:
    """Every target that uses the sheet, directly or through a key frame."""
    targets = manifest_of(root).targets
    found = {t.task for t in targets if SHEET in t.depends_on}
    found |= {t.task for t in targets if set(t.depends_on) & found}
    return sorted(found)


def calls(root: Path) -> Path:
    return root.parent / "calls.log"


def paid(root: Path) -> list[str]:
    return calls(root).read_text().split() if calls(root).exists() else []


def build(root: Path, *args: str, **env: str) -> Any:
    return doit(root, *args, "provider=stub", env=project_env(root, STORYTREE_STUB_CALL_LOG=str(calls(root)), **env))


def dryrun(root: Path, *args: str, **env: str) -> dict[str, Any]:
    result = doit(root, "dryrun", "--json", *args, "provider=stub", env=project_env(root, **env))
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


# -- rebuild=missing --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["variable", "environment", "storytree.toml"])
def test_rebuild_missing_after_a_sheet_edit_pays_nothing_and_lists_what_is_stale(edited: Path, how: str) -> None:
    args: tuple[str, ...] = ("rebuild=missing",) if how == "variable" else ()
    env = {"STORYTREE_REBUILD": "missing"} if how == "environment" else {}
    if how == "storytree.toml":
        (edited / "storytree.toml").write_text('[build]\nrebuild = "missing"\n')

    plan = dryrun(edited, STORY, *args, **env)
    stale = {t["task"]: t for t in plan["targets"] if t["action"] == "stale"}
    assert list(stale) == [SHEET] and "prompt changed" in stale[SHEET]["reason"]
    assert plan["would_run"] == 0 and plan["estimate"]["total"] == 0
    assert plan["estimate"]["stale_cost"] == stale[SHEET]["cost"]  # the offline provider's price: 0 (unit tests price)

    listing = doit(edited, "dryrun", STORY, *args, "provider=stub", env=project_env(edited, **env)).stdout
    assert re.search(rf"^S {re.escape(SHEET)}  \[out of date \(prompt changed\) but kept: rebuild=missing", listing,
                     re.M)
    assert "stale but kept: 1 file(s) (rebuild=missing)" in listing

    result = build(edited, STORY, *args, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert paid(edited) == []
    assert "1 stale kept" in result.stdout
    assert "1 file(s) out of date but kept (rebuild=missing)" in result.stdout


def test_rebuild_missing_builds_what_has_no_file_and_brings_back_what_is_kept(project: Path) -> None:
    import_story(project)
    assert build(project, STORY).returncode == 0
    built = len(paid(project))
    export = json.loads(SAMPLE.read_text())
    new_shot = copy.deepcopy(next(s for s in export["shots"] if (s["scenelet_id"], s["shot_index"]) == ("scenelet-5", 2)))
    new_shot.update(id="c0ffee00-0000-4000-8000-000000000153", shot_index=3)
    export["shots"].append(new_shot)  # a new shot that uses the sheet: its key frame and video have no file yet
    edit_sheet(project, export)
    frame = manifest_of(project).by_task()["image:scenelet-1_1"]
    (project / ASSETS / frame.output).unlink()

    plan = dryrun(project, STORY, "rebuild=missing")
    actions = {t["task"]: t["action"] for t in plan["targets"] if t["action"] != "skip"}
    # the deleted key frame's object is kept: it comes back for free, though the sheet it was drawn from changed
    assert actions == {SHEET: "stale", frame.task: "restore", "image:scenelet-5_3": "run", "video:scenelet-5_3": "run"}
    result = build(project, STORY, "rebuild=missing")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(paid(project)[built:]) == ["image:scenelet-5_3", "video:scenelet-5_3"]
    assert (project / ASSETS / frame.output).is_file()
    assert dryrun(project, STORY, "rebuild=missing")["would_run"] == 0


def test_a_rejected_value_names_the_accepted_ones(edited: Path) -> None:
    result = build(edited, STORY, "rebuild=sometimes")
    assert result.returncode != 0 and paid(edited) == []
    assert "rebuild='sometimes' must be one of 'outdated' or 'missing'" in result.stdout + result.stderr


# -- the cascade, said before anything is paid ------------------------------------------------------------------
def test_the_dry_run_counts_what_a_rebuilt_sheet_puts_out_of_date_and_its_cost(edited: Path) -> None:
    plan = dryrun(edited, STORY)
    cascade = plan["cascade"]
    dependents = {d["task"]: d for d in cascade["dependents"]}
    assert cascade["causes"] == [SHEET] and sorted(dependents) == users(edited)
    assert all(d["in_run"] for d in dependents.values())
    costs = {t["task"]: t["cost"] for t in plan["targets"]}
    assert cascade["cost"] == pytest.approx(sum(costs[task] for task in dependents))
    videos = sum(1 for task in dependents if task.startswith("video:"))
    frames = len(dependents) - videos

    listing = doit(edited, "dryrun", STORY, "provider=stub").stdout
    assert (f"  rebuilding {SHEET} puts {len(dependents)} existing file(s) out of date ({frames} key_frame, "
            f"{videos} video): {cascade['cost']:.2f} USD to rebuild them\n") in listing
    assert f"    {len(dependents)} of them are rebuilt in this run" in listing


def test_forcing_only_the_sheet_says_what_it_leaves_out_of_date_before_it_pays(edited: Path) -> None:
    result = build(edited, "-a", SHEET)
    assert result.returncode == 0, result.stdout + result.stderr
    assert paid(edited) == [SHEET]
    expected = len(users(edited))
    opening = [line for line in result.stderr.splitlines() if line.startswith("storytree: rebuilding")]
    assert opening and f"puts {expected} existing file(s) out of date" in opening[0]
    assert (f"storytree:   {expected} of them are left out of date" in result.stderr
            and f"the next `doit story:{SAMPLE_ID}` rebuilds them; rebuild=missing keeps them" in result.stderr)


def test_a_no_op_build_says_nothing_about_a_cascade(built_template: Path, project: Path) -> None:
    shutil.rmtree(project)
    shutil.copytree(built_template, project)
    result = build(project, STORY)
    assert result.returncode == 0 and paid(project) == []
    assert "out of date" not in result.stdout + result.stderr
