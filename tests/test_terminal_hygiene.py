"""The rough edges at the terminal (issue 23 §6): the API key checked once before a paid build starts, exit codes as
the README says, a closed pipe, read-only commands that create nothing, story id prefixes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storytree_build.core.exit_codes import ExitCode
from support.project import SAMPLE, SAMPLE_ID, doit, import_story, new_project, project_env, run_doit, storytree, write_export
from support.project import copy_project as fresh, doit_in_process as doit_here

STORY = f"story:{SAMPLE_ID}"
REPO_MANIFEST = Path(__file__).resolve().parents[1] / "manifests" / f"{SAMPLE_ID}.yaml"


@pytest.fixture(scope="module")
def unbuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_story(new_project(tmp_path_factory.mktemp("hygiene") / "project"))




@pytest.mark.parametrize("workers", [[], ["-j", "4"]])
def test_a_paid_build_without_its_api_key_says_so_once_before_any_target(
        unbuilt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: list[str]) -> None:
    root = fresh(unbuilt, tmp_path)
    run = doit_here(root, monkeypatch, "--continue", *workers, STORY, "provider=gemini")
    assert run.output.count("needs an API key") == 1, run.output
    assert "GEMINI_API_KEY" in run.output and "Traceback" not in run.output
    assert run.code == 3  # refused before anything started
    assert not any((root / "apps/story-tree-ui/public/generated").rglob("*.png"))


def test_the_dry_run_needs_no_api_key(unbuilt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fresh(unbuilt, tmp_path)
    assert doit_here(root, monkeypatch, "-n", STORY, "provider=gemini").code == 0
    assert doit_here(root, monkeypatch, "dryrun", STORY, "provider=gemini").code == 0


def test_continue_past_a_failed_target_exits_1_as_the_readme_says(unbuilt: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = fresh(unbuilt, tmp_path)
    blocker = root / "apps/story-tree-ui/public/generated" / SAMPLE_ID / "visuals/characters/wren-quillfeather"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the plates' folder goes")  # wren's plates fail; what uses them cannot start
    run = doit_here(root, monkeypatch, "--continue", STORY, "provider=stub")
    assert "failed ref:character.wren-quillfeather.character-model-sheet-1" in run.output
    assert run.code == ExitCode.FAILED, run.output


def test_a_closed_pipe_ends_quietly(unbuilt: Path, tmp_path: Path) -> None:
    root = fresh(unbuilt, tmp_path)
    reader, writer = os.pipe()
    os.close(reader)  # `storytree export … | head -c 10` once head has gone
    try:
        done = subprocess.run([str(Path(sys.executable).parent / "storytree"), "export", SAMPLE_ID], cwd=root,
                              env=project_env(root), stdout=writer, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(writer)
    assert done.stderr == ""
    assert done.returncode == ExitCode.OK


def test_ctrl_c_in_a_storytree_command_is_one_line_and_exit_130(unbuilt: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from storytree_build import cli

    def interrupted(*_: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_export", interrupted)
    assert storytree(fresh(unbuilt, tmp_path), "export", SAMPLE_ID, monkeypatch=monkeypatch) == ExitCode.INTERRUPTED
    assert capsys.readouterr().err == "storytree: interrupted (Ctrl-C)\n"


@pytest.mark.parametrize("command", [["export", SAMPLE_ID], ["history", SAMPLE_ID, "image:scenelet-1_1"],
                                     ["prompt", "image:scenelet-1_1", "--story", SAMPLE_ID],
                                     ["verify", "--no-repair", SAMPLE_ID]])
def test_read_only_commands_outside_a_project_create_no_data_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    root = new_project(tmp_path / "empty")
    if command[0] in ("prompt", "history", "verify"):  # a manifest, but no story store beside it
        shutil.copy(REPO_MANIFEST, root / "manifests")
    code = storytree(root, *command, monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert code == ExitCode.FAILED
    assert "no story store" in err and "storytree import" in err and ".storytree-data/story.sqlite" in err
    assert not (root / ".storytree-data").exists()


def copy_under(tmp_path: Path, story_id: str) -> Path:
    data = json.loads(SAMPLE.read_text())
    data["stories"][0]["id"] = story_id
    for table in ("scenelets", "shots"):
        for row in data[table]:
            row["story_id"] = story_id
    return write_export(tmp_path / f"{story_id}.json", data)


def test_a_unique_story_id_prefix_names_the_story(unbuilt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = fresh(unbuilt, tmp_path)
    assert storytree(root, "export", SAMPLE_ID, "-o", str(tmp_path / "full.json"), monkeypatch=monkeypatch) == 0
    assert storytree(root, "export", SAMPLE_ID[:6], "-o", str(tmp_path / "short.json"), monkeypatch=monkeypatch) == 0
    assert (tmp_path / "short.json").read_bytes() == (tmp_path / "full.json").read_bytes()
    capsys.readouterr()
    assert storytree(root, "history", SAMPLE_ID[:4], "image:scenelet-1_1", monkeypatch=monkeypatch) == 0
    assert "not built yet" in capsys.readouterr().err


def test_an_ambiguous_story_id_prefix_lists_the_matches(unbuilt: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    root = fresh(unbuilt, tmp_path)
    other = SAMPLE_ID[:9] + "0000-4000-8000-000000000001"
    assert storytree(root, "import", "--new-ids", str(copy_under(tmp_path, other)), monkeypatch=monkeypatch) == 0
    capsys.readouterr()
    assert storytree(root, "export", SAMPLE_ID[:4], monkeypatch=monkeypatch) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert f"{SAMPLE_ID[:4]!r}" in err and SAMPLE_ID in err and other in err and "Traceback" not in err
    assert storytree(root, "export", other[:10], "-o", str(tmp_path / "o.json"), monkeypatch=monkeypatch) == 0
    assert json.loads((tmp_path / "o.json").read_text())["stories"][0]["id"] == other


def test_doit_help_run_lists_every_storytree_variable(unbuilt: Path) -> None:
    from storytree_build.settings.sources import RUN_VARIABLE_TABLE

    shown = doit(unbuilt, "help", "run").stdout
    description = shown.split("DESCRIPTION", 1)[1]
    flat = " ".join(description.split())
    for variable in RUN_VARIABLE_TABLE:
        assert f"{variable.name}={variable.example}: " in flat, variable.name
        assert " ".join(variable.meaning.split()) in flat
    assert "STORYTREE_MAX_COST" in flat and "STORYTREE_PROVIDER" in flat


def test_doit_info_tells_storytrees_status_and_reason(unbuilt: Path, tmp_path: Path) -> None:
    root = fresh(unbuilt, tmp_path)
    ref = "ref:character.wren-quillfeather.character-model-sheet-1"
    other = "ref:character.captain-clank.character-model-sheet-1"
    assert doit(root, ref, "provider=stub").returncode == 0
    shutil.rmtree(root / ".storytree")  # only caches: doit's database among them
    built = doit(root, "info", ref, "provider=stub")
    assert built.returncode == 0, built.stdout + built.stderr
    assert "status     : up-to-date (storytree: " in built.stdout
    assert built.stdout.count("status") == 1 and "targets" in built.stdout  # doit's own fields, one status
    waiting = doit(root, "info", other, "provider=stub")
    assert waiting.returncode == 1
    line = next(line for line in waiting.stdout.splitlines() if line.startswith("status"))
    assert line.startswith("status     : run (storytree: ") and "costs ~0.00 USD with provider stub" in line


@pytest.mark.parametrize("command", [["list"], ["dryrun", STORY], ["-n", STORY], ["info", STORY]])
def test_doit_commands_that_build_nothing_create_no_data_folder(tmp_path: Path, command: list[str]) -> None:
    root = new_project(tmp_path / "clone")
    shutil.copy(REPO_MANIFEST, root / "manifests")  # a fresh clone: the committed manifest, no story store yet
    done = doit(root, *command, "provider=stub")
    assert not (root / ".storytree-data").exists()
    assert "Traceback" not in done.stderr
    if done.returncode:
        assert "no story store here" in done.stderr and "storytree import" in done.stderr


def test_the_story_variable_takes_a_unique_prefix(unbuilt: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = fresh(unbuilt, tmp_path)
    other = SAMPLE_ID[:9] + "0000-4000-8000-000000000001"
    (root / "manifests" / f"{other}.yaml").write_text((root / "manifests" / f"{SAMPLE_ID}.yaml").read_text())
    listed = doit_here(root, monkeypatch, "-n", "image:scenelet-1_1", f"story={SAMPLE_ID[:11]}", "provider=stub")
    assert listed.code == 0, listed.output
    ambiguous = doit_here(root, monkeypatch, "-n", "image:scenelet-1_1", f"story={SAMPLE_ID[:4]}", "provider=stub")
    assert ambiguous.code == ExitCode.REFUSED and "ambiguous" in ambiguous.output and other in ambiguous.output
