"""A project's own prompt files (`[prompts] dir`, docs/prompts.md): a file in that folder replaces the same-named
template or system prompt, every other prompt comes from the repository's folders, and the change shows up where a
user looks for it: `storytree manifest --check` reports the drift and the new manifest's hashes differ exactly for
the targets rendered from the replaced file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support.project import SAMPLE_ID, import_story, manifest_of, new_project, settings_for, storytree
from storytree_build.core.exit_codes import ExitCode

KEY_FRAME_KINDS = {"key_frame"}


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return import_story(new_project(tmp_path / "project"))


def prompt_hashes(root: Path) -> dict[str, tuple[str, str]]:
    return {t.task: (t.kind, t.prompt_sha256) for t in manifest_of(root).targets}


def own_prompts(root: Path, **files: str) -> Path:
    """The project's prompt folder with the given files, and storytree.toml pointing at it."""
    folder = root / "my-prompts"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    (root / "storytree.toml").write_text('[prompts]\ndir = "my-prompts"\n', encoding="utf-8")
    return folder


def test_a_replaced_key_frame_template_changes_only_the_key_frames(sample: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    before = prompt_hashes(sample)
    template = (sample / "templates" / "key_frame.j2").read_text(encoding="utf-8")
    own_prompts(sample, **{"key_frame.j2": template + "\nKeep the horizon level in every frame.\n"})

    assert storytree(sample, "manifest", "--check", monkeypatch=monkeypatch) == ExitCode.CHECK_FOUND_WORK
    assert "prompt_sha256" in capsys.readouterr().out  # the diff shows the hashes that moved
    assert storytree(sample, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == ExitCode.OK
    after = prompt_hashes(sample)

    changed = {task for task in before if before[task][1] != after[task][1]}
    key_frames = {task for task, (kind, _) in before.items() if kind in KEY_FRAME_KINDS}
    assert key_frames and changed == key_frames
    assert (sample / "templates" / "key_frame.j2").read_text(encoding="utf-8") == template  # the repo's stays


def test_a_replaced_system_prompt_is_the_one_sent(sample: Path) -> None:
    own_prompts(sample, **{"create_shot_images.md": "Draw every shot as a woodcut.\n"})
    from storytree_build.bootstrap import Workspace

    workspace = Workspace(settings_for(sample))
    try:
        renderer = workspace.renderer()
        assert renderer._system("create_shot_images.md") == "Draw every shot as a woodcut.\n"
        # a file the folder does not hold comes from templates/ as before
        assert renderer._template("video.j2").filename == str(sample / "templates" / "video.j2")
    finally:
        workspace.close()


def test_the_folder_can_come_from_the_environment(sample: Path) -> None:
    (sample / "elsewhere").mkdir()
    settings = settings_for(sample, STORYTREE_PROMPTS_DIR="elsewhere")
    assert settings.prompt_overrides_dir == sample / "elsewhere"
    assert settings_for(sample).prompt_overrides_dir is None


def test_a_missing_folder_is_refused_naming_the_setting(sample: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    folder = own_prompts(sample)
    shutil.rmtree(folder)
    manifest_before = (sample / "manifests" / f"{SAMPLE_ID}.yaml").read_bytes()

    assert storytree(sample, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert "[prompts] dir" in err and "my-prompts" in err and "Traceback" not in err
    assert (sample / "manifests" / f"{SAMPLE_ID}.yaml").read_bytes() == manifest_before  # nothing half-written
