"""The manifest is never silently stale (issue 23 §2): a build or dry-run whose manifest no longer matches the story
store writes it again first and says what changed; a frozen build (CI, `frozen=1`) refuses instead; a manifest that
still matches costs one fingerprint query."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.project import SAMPLE_ID, doit, project_env, settings_for, storytree, write_export
from storytree_build.bootstrap import Workspace
from storytree_build.core.errors import FrozenManifest
from storytree_build.core.exit_codes import ExitCode
from storytree_build.store.sqlite_stories import SqliteStoryStore

STORY = f"story:{SAMPLE_ID}"
EDITED = ("image:scenelet-3_2", "video:scenelet-3_2")  # the shot's payload is in both prompts
CHANGED_LINE = (f"manifest {SAMPLE_ID}: 2 targets changed (2 changed: image:scenelet-3_2, video:scenelet-3_2); "
                f"manifests/{SAMPLE_ID}.yaml written from the story store")


@pytest.fixture
def built(project: Path, sample_export: dict, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample story imported, its manifest written and built with the stub."""
    export = write_export(project / "sample.json", sample_export)
    assert storytree(project, "import", str(export), monkeypatch=monkeypatch) == 0
    assert storytree(project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    assert doit(project, STORY, "provider=stub").returncode == 0
    return project


def import_edited_prompt(project: Path, sample_export: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Edit one shot's key-frame text in the export and import it; `storytree manifest` is not run."""
    shot = next(s for s in sample_export["shots"] if s["scenelet_id"] == "scenelet-3" and s["shot_index"] == 2)
    shot["storyboard_payload"]["compositionAndContent"] += " A paper kite drifts past the window."
    path = write_export(project / "edited.json", sample_export)
    assert storytree(project, "import", str(path), monkeypatch=monkeypatch) == 0


def manifest_file(project: Path) -> Path:
    return project / "manifests" / f"{SAMPLE_ID}.yaml"


def calls_of(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_an_imported_edit_is_built_once_and_the_build_says_the_manifest_changed(
        built: Path, sample_export: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import_edited_prompt(built, sample_export, monkeypatch)
    calls = built / "calls.log"
    env = project_env(built, STORYTREE_STUB_CALL_LOG=str(calls))
    first = doit(built, STORY, "provider=stub", env=env)
    assert first.returncode == 0, first.stderr
    assert f"storytree: {CHANGED_LINE}" in first.stderr
    assert sorted(calls_of(calls)) == sorted(EDITED)  # each edited target paid once, nothing else
    assert "2 built" in first.stdout
    # The manifest on disk is the one `storytree manifest` writes.
    assert storytree(built, "manifest", "--check", monkeypatch=monkeypatch) == ExitCode.OK
    again = doit(built, STORY, "provider=stub", env=env)
    assert again.returncode == 0 and "0 built" in again.stdout
    assert "manifest" not in again.stderr  # the build's own write-back of paths changed no target
    assert sorted(calls_of(calls)) == sorted(EDITED)


def test_the_dry_run_writes_the_manifest_again_and_lists_the_edited_targets(
        built: Path, sample_export: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import_edited_prompt(built, sample_export, monkeypatch)
    result = doit(built, "dryrun", "--json", STORY, "provider=stub")
    assert result.returncode == 0, result.stderr
    assert f"storytree: {CHANGED_LINE}" in result.stderr
    plan = json.loads(result.stdout)
    assert {t["task"]: t["reason"] for t in plan["targets"] if t["action"] != "skip"} == dict.fromkeys(
        EDITED, "prompt changed")
    again = doit(built, "dryrun", STORY, "provider=stub")
    assert again.returncode == 0 and "manifest" not in again.stderr


@pytest.mark.parametrize("frozen", [{"CI": "true"}, {"CI": "1"}, {"STORYTREE_FROZEN": "1"}, {"var": "frozen=1"}],
                         ids=["CI=true", "CI=1", "STORYTREE_FROZEN", "frozen=1"])
def test_a_frozen_build_refuses_a_stale_manifest_and_builds_nothing(
        built: Path, sample_export: dict, monkeypatch: pytest.MonkeyPatch, frozen: dict[str, str]) -> None:
    import_edited_prompt(built, sample_export, monkeypatch)
    manifest = manifest_file(built)
    before = (manifest.read_bytes(), manifest.stat().st_mtime_ns)
    calls = built / "calls.log"
    variables = [frozen.pop("var")] if "var" in frozen else []
    env = project_env(built, STORYTREE_STUB_CALL_LOG=str(calls), **frozen)
    for command in ([STORY], ["dryrun", STORY]):
        result = doit(built, *command, "provider=stub", *variables, env=env)
        assert result.returncode == ExitCode.REFUSED, result.stderr
        assert f"manifest {SAMPLE_ID} does not match the story store (2 targets changed" in result.stderr
        assert f"Run `storytree manifest {SAMPLE_ID}`" in result.stderr
        assert f"`storytree manifest --check {SAMPLE_ID}` shows the drift" in result.stderr
        assert calls_of(calls) == []
        assert (manifest.read_bytes(), manifest.stat().st_mtime_ns) == before
    # The refusal named the command; after it the build runs.
    assert storytree(built, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    result = doit(built, STORY, "provider=stub", *variables, env=env)
    assert result.returncode == 0, result.stderr
    assert sorted(calls_of(calls)) == sorted(EDITED)


def test_frozen_0_lets_a_ci_build_write_the_manifest(built: Path, sample_export: dict,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import_edited_prompt(built, sample_export, monkeypatch)
    result = doit(built, STORY, "provider=stub", "frozen=0", env=project_env(built, CI="true"))
    assert result.returncode == 0, result.stderr
    assert f"storytree: {CHANGED_LINE}" in result.stderr


def test_a_frozen_build_of_a_current_manifest_runs_even_with_no_state_folder(built: Path) -> None:
    """A CI checkout has no `.storytree/`: the manifest is compared with the store once, and matches."""
    for cache in (built / ".storytree" / "cache").iterdir():
        cache.unlink()
    result = doit(built, STORY, "provider=stub", env=project_env(built, CI="true"))
    assert result.returncode == 0, result.stderr
    assert "0 built" in result.stdout and "manifest" not in result.stderr


@pytest.mark.parametrize("damage, said", [
    (lambda path: path.unlink(), "did not exist"),
    (lambda path: path.write_text("targets: [unclosed\n"), "could not be read"),
    (lambda path: path.write_bytes(b"\xff\xfe\x00garbage"), "could not be read"),
    (lambda path: path.write_text("schema_version: 99\n"), "could not be read"),
], ids=["missing", "bad-yaml", "not-utf8", "other-schema"])
def test_a_missing_or_damaged_manifest_is_written_again_from_the_store(
        built: Path, monkeypatch: pytest.MonkeyPatch, damage, said: str) -> None:  # noqa: ANN001
    manifest = manifest_file(built)
    good = manifest.read_bytes()
    damage(manifest)
    calls = built / "calls.log"
    result = doit(built, STORY, "provider=stub", env=project_env(built, STORYTREE_STUB_CALL_LOG=str(calls)))
    assert result.returncode == 0, result.stderr
    assert f"storytree: manifest {SAMPLE_ID}: manifests/{SAMPLE_ID}.yaml {said}" in result.stderr
    assert "written from the story store" in result.stderr
    assert manifest.read_bytes() == good
    assert "0 built" in result.stdout and calls_of(calls) == []  # every file is still current: nothing paid


def test_a_frozen_build_refuses_a_missing_manifest(built: Path) -> None:
    manifest_file(built).unlink()
    result = doit(built, STORY, "provider=stub", env=project_env(built, CI="true"))
    assert result.returncode == ExitCode.REFUSED
    assert f"manifests/{SAMPLE_ID}.yaml did not exist" in result.stderr
    assert not manifest_file(built).exists()


# -- the no-op path: one fingerprint query, also right after a build that wrote paths back ---------------------------
class CountingStore(SqliteStoryStore):
    """The real SQLite store, remembering which reads it was asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.asked: list[str] = []

    def fingerprint(self, story_id: str) -> str:
        self.asked.append("fingerprint")
        return super().fingerprint(story_id)

    def manifest_fingerprint(self, story_id: str) -> str:
        self.asked.append("manifest_fingerprint")
        return super().manifest_fingerprint(story_id)

    def load_story(self, story_id: str):  # noqa: ANN201
        self.asked.append("load_story")
        return super().load_story(story_id)


def counting_workspace(project: Path) -> tuple[Workspace, CountingStore]:
    settings = settings_for(project, STORYTREE_STATE_DIR=str(project / ".storytree"))
    store = CountingStore(settings.db_path)
    return Workspace(settings, store=store), store


def test_a_current_manifest_costs_one_fingerprint_query_and_no_story_read(
        built: Path, sample_export: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace, store = counting_workspace(built)
    try:
        original = workspace.current_manifest(SAMPLE_ID)
        # The build since `storytree manifest` wrote its paths back into the story: not a manifest input.
        assert store.asked == ["manifest_fingerprint"]
        import_edited_prompt(built, sample_export, monkeypatch)
        store.asked.clear()
        changed = workspace.current_manifest(SAMPLE_ID)
        assert store.asked == ["manifest_fingerprint", "load_story"]
        assert changed.by_task()[EDITED[0]].prompt_sha256 != original.by_task()[EDITED[0]].prompt_sha256
        store.asked.clear()
        assert workspace.current_manifest(SAMPLE_ID) == changed
        assert store.asked == ["manifest_fingerprint"]
    finally:
        workspace.close()


def test_a_manifest_written_by_anything_else_is_compared_once(built: Path) -> None:
    """A manifest checked out by git (or written by an older storytree) has no stamp: it is compared with the store
    once, found current, and stamped; the file is not rewritten."""
    manifest = manifest_file(built)
    manifest.write_bytes(manifest.read_bytes())  # same bytes, another mtime: the stamp no longer names it
    mtime = manifest.stat().st_mtime_ns
    workspace, store = counting_workspace(built)
    try:
        workspace.current_manifest(SAMPLE_ID)
        assert store.asked == ["manifest_fingerprint", "load_story"]
        assert manifest.stat().st_mtime_ns == mtime
        store.asked.clear()
        workspace.current_manifest(SAMPLE_ID)
        assert store.asked == ["manifest_fingerprint"]
    finally:
        workspace.close()


def test_the_frozen_refusal_is_a_typed_error_naming_why(built: Path, sample_export: dict,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import_edited_prompt(built, sample_export, monkeypatch)
    settings = settings_for(built, STORYTREE_STATE_DIR=str(built / ".storytree"), STORYTREE_FROZEN="1")
    workspace = Workspace(settings)
    try:
        with pytest.raises(FrozenManifest, match="this build is frozen \\(frozen is set\\)") as refused:
            workspace.current_manifest(SAMPLE_ID)
        assert refused.value.exit_code == ExitCode.REFUSED
    finally:
        workspace.close()


# -- the same on Supabase ------------------------------------------------------------------------------------------
def test_on_supabase_an_imported_edit_writes_the_manifest_again_and_a_current_one_costs_one_call(
        project: Path, supabase_stack, supabase_settings, supabase_store, sample_export: dict,  # noqa: ANN001
        caplog: pytest.LogCaptureFixture) -> None:
    from storytree_build.data.transfer import validate_export

    supabase_store.import_rows(validate_export(json.loads(json.dumps(sample_export)), supabase_store, "test"))
    workspace = Workspace(supabase_settings, store=supabase_store)
    try:
        original = workspace.write_manifest(SAMPLE_ID)
        supabase_store.set_shot_path(SAMPLE_ID, "scenelet-1", 1, "key_frame_image_path", "x/key_frame.png")
        before = len(supabase_stack.proxy.log)
        assert workspace.current_manifest(SAMPLE_ID) == original
        assert [path for _, path in supabase_stack.proxy.log[before:]] == [
            "/rest/v1/rpc/storytree_manifest_fingerprint"]  # a written-back path is no manifest input
        shot = next(s for s in sample_export["shots"] if s["scenelet_id"] == "scenelet-3" and s["shot_index"] == 2)
        shot["storyboard_payload"]["compositionAndContent"] += " A paper kite drifts past the window."
        supabase_store.import_rows(validate_export(sample_export, supabase_store, "test"))
        with caplog.at_level("INFO", logger="storytree"):
            changed = workspace.current_manifest(SAMPLE_ID)
        assert CHANGED_LINE in caplog.text
        assert [t.task for t in changed.targets if t != original.by_task()[t.task]] == list(EDITED)
    finally:
        workspace.close()


def test_a_stale_manifest_in_a_read_only_folder_is_a_clear_error_and_nothing_is_built(
        built: Path, sample_export: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from support.mounts import read_only

    import_edited_prompt(built, sample_export, monkeypatch)
    calls = built / "calls.log"
    before = manifest_file(built).read_bytes()
    with read_only(built / "manifests"):
        result = doit(built, STORY, "provider=stub", env=project_env(built, STORYTREE_STUB_CALL_LOG=str(calls)))
    assert result.returncode == ExitCode.REFUSED, result.stderr
    assert f"manifest {SAMPLE_ID} does not match the story store (2 targets changed" in result.stderr
    assert f"manifests/{SAMPLE_ID}.yaml cannot be written" in result.stderr
    assert "Traceback" not in result.stderr
    assert calls_of(calls) == [] and manifest_file(built).read_bytes() == before


def test_changes_are_counted_target_by_target_and_named_up_to_three_per_kind(built: Path) -> None:
    from support.project import manifest_of
    from storytree_build.core.manifest.changes import compare

    old = manifest_of(built)
    targets = old.targets
    edited = [t.model_copy(update={"prompt_sha256": "0" * 64}) for t in targets[:5]]
    new = old.model_copy(update={"targets": [*edited, *targets[5:-1]]})  # 5 changed, the last one removed
    changes = compare(old, new)
    names = [t.task for t in targets]
    assert (changes.changed, changes.removed, changes.added) == (names[:5], [names[-1]], [])
    assert changes.describe() == (f"6 targets changed (1 removed: {names[-1]}; 5 changed: {', '.join(names[:3])} "
                                  "and 2 more)")
    assert compare(new, old).describe().startswith("6 targets changed (1 added:")
    assert compare(old, old).describe() == "no target changed"
    assert compare(None, old).added == names
