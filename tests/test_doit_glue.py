"""The doit glue: one selection for doit, the dry-run and the budget check; configuration in one place; no run
state shared between runs; exit codes from typed failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from storytree_build.building.summary import Failure, RunSummary
from storytree_build.core.errors import InputError, QuotaExhausted
from support.project import (ASSETS, SAMPLE_ID, doit, import_story, manifest_of, new_project, project_env, records_of,
                             run_doit)

from support.project import copy_project as fresh

@pytest.fixture(scope="module")
def unbuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_story(new_project(tmp_path_factory.mktemp("glue") / "project"))



@pytest.mark.parametrize("selection", [
    [f"story:{SAMPLE_ID}"],
    ["shot:scenelet-2_1"],
    ["image"],
    ["image:scenelet-3_*"],
    ["video:scenelet-4_1", "ref:environment.thunderpot-gorge.keyframe_2"],
    ["OUTPUT"],  # a target's output path, which doit accepts as a name
])
def test_the_dry_run_lists_exactly_what_doit_then_builds(unbuilt: Path, tmp_path: Path, selection: list[str]) -> None:
    root = fresh(unbuilt, tmp_path)
    if selection == ["OUTPUT"]:
        target = manifest_of(root).by_task()["image:scenelet-2_1"]
        selection = [str(root / ASSETS / target.output)]
    calls = tmp_path / "calls.log"
    env = project_env(root, STORYTREE_STUB_CALL_LOG=str(calls))
    listed = doit(root, "dryrun", "--json", *selection, "provider=stub", env=env)
    assert listed.returncode == 0, listed.stderr
    would_run = {t["task"] for t in json.loads(listed.stdout)["targets"] if t["action"] == "run"}
    assert would_run
    built = doit(root, *selection, "provider=stub", env=env)
    assert built.returncode == 0, built.stdout + built.stderr
    assert set(calls.read_text().split()) == would_run
    assert len(calls.read_text().split()) == len(would_run)


def test_forced_selection_is_what_is_named_not_what_it_uses(unbuilt: Path, tmp_path: Path) -> None:
    root = fresh(unbuilt, tmp_path)
    assert doit(root, "shot:scenelet-2_1", "provider=stub").returncode == 0
    plan = json.loads(doit(root, "dryrun", "--json", "-a", "shot:scenelet-2_1", "provider=stub").stdout)
    assert {t["task"]: t["reason"] for t in plan["targets"] if t["action"] == "run"} == {
        "image:scenelet-2_1": "forced", "video:scenelet-2_1": "forced"}


def test_dodo_state_lives_in_the_state_dir(unbuilt: Path, tmp_path: Path) -> None:
    root = fresh(unbuilt, tmp_path)
    state = tmp_path / "elsewhere"
    shutil.rmtree(root / ".storytree", ignore_errors=True)
    env = project_env(root, STORYTREE_STATE_DIR=str(state))
    result = doit(root, "ref:environment.thunderpot-gorge.keyframe_1", "provider=stub", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (state / "doit.sqlite").is_file()
    assert not (root / ".storytree").exists()
    assert "ref:environment.thunderpot-gorge.keyframe_1" in records_of(root)  # records live with the story


def test_a_bad_variable_names_itself_and_builds_nothing(unbuilt: Path, tmp_path: Path) -> None:
    root = fresh(unbuilt, tmp_path)
    result = doit(root, f"story:{SAMPLE_ID}", "provider=stub", "max_cost=lots")
    assert result.returncode == 3
    assert "max_cost='lots' is not a number (e.g. max_cost=12.50)" in result.stderr
    assert not [p for p in (root / ASSETS).rglob("*") if p.is_file()]


def test_two_runs_in_one_process_share_no_state(unbuilt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = fresh(unbuilt, tmp_path / "a"), fresh(unbuilt, tmp_path / "b")
    for root, selection, built in ((first, f"story:{SAMPLE_ID}", 36), (second, "shot:scenelet-2_1", 4)):
        monkeypatch.setenv("STORYTREE_ROOT", str(root))
        monkeypatch.setenv("STORYTREE_STATE_DIR", str(root / ".storytree"))
        monkeypatch.chdir(root)
        run = run_doit(root, selection, "provider=stub")
        assert run.code == 0, run.output
        assert f"storytree: {built} built, 0 up to date, 0 failed" in run.out
    # The second project built only shot scenelet-2_1: its dry-run must not see what the first run built.
    plan = run_doit(second, "dryrun", "--json", "shot:scenelet-1_1", "provider=stub")
    assert plan.code == 0, plan.output
    assert {t["task"]: t["reason"] for t in json.loads(plan.out)["targets"]} == {
        "ref:environment.quillfeather-rooftop-workshop.keyframe_1": "missing", "image:scenelet-1_1": "missing",
        "video:scenelet-1_1": "missing"}


def test_the_exit_code_comes_from_typed_failures() -> None:
    summary = RunSummary()
    summary.fail(Failure.of("image:scenelet-1_1", InputError("image:scenelet-1_1: bad")))
    assert summary.exit_code(1) == 1
    summary.fail(Failure.of("ref:x", QuotaExhausted("ref:x: daily quota", "m", "soon")))
    assert summary.exit_code(1) == 75
    assert summary.failures["ref:x"].kind == "quota" and summary.failures["ref:x"].retry_safe
    assert summary.counts()["failed"] == 2
