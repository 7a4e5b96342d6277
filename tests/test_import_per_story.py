"""`storytree import` of a copy of a stored story (issue 24, item 3), through the CLI, on both stores.

The copy is the sample story under a new story id whose scenelet and shot rows keep the original's row ids: it is
refused (the original keeps every row, byte for byte, and its manifest its targets), `--new-ids` imports it beside
the original, and re-importing the original itself still keeps what a build wrote back.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from support.project import SAMPLE, SAMPLE_ID, settings_for, storytree, write_export
from storytree_build.core.exit_codes import ExitCode
from storytree_build.store import open_store

COPY_ID = "6f2a1d3b-8c4e-4d5f-9a70-1e3f5a7c9e21"
BUILT = ("scenelet-2", 1, "key_frame_image_path", f"{SAMPLE_ID}/shots/scenelet-2/shot-1_key_frame.png")


@pytest.fixture(params=["sqlite", "supabase"])
def cli(request, project, monkeypatch):
    """Runs `storytree ARGS` in the project against the store of the parameter; returns (exit code, stderr)."""
    if request.param == "supabase":
        stack = request.getfixturevalue("supabase_stack")
        stack.reset()
        for name, value in stack.env().items():
            monkeypatch.setenv(name, value)
    capsys = request.getfixturevalue("capsys")

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = storytree(project, *args, monkeypatch=monkeypatch)
        return code, capsys.readouterr().err

    return run


def same_ids_copy(tmp_path: Path, sample_export: dict) -> Path:
    data = copy.deepcopy(sample_export)
    data["stories"][0].update(id=COPY_ID, display_name="Wren, the copy")
    for table in ("scenelets", "shots"):
        for row in data[table]:
            row["story_id"] = COPY_ID
    return write_export(tmp_path / "copy.json", data)


def exported(cli, tmp_path: Path, story_id: str) -> bytes:
    out = tmp_path / f"export-{story_id}.json"
    assert cli("export", story_id, "-o", str(out))[0] == ExitCode.OK
    return out.read_bytes()


def write_built_path(project: Path) -> None:
    """What a build writes back for one shot (the store the CLI uses, opened in-process)."""
    env = {k: v for k, v in os.environ.items() if k.startswith(("STORYTREE_", "SUPABASE_"))}
    store = open_store(settings_for(project, **env))
    try:
        store.set_shot_path(SAMPLE_ID, *BUILT)
    finally:
        store.close()


@pytest.fixture
def original(cli, project, tmp_path):
    """The sample imported, one built path written back, its manifest written."""
    assert cli("import", str(SAMPLE))[0] == ExitCode.OK
    write_built_path(project)
    assert cli("manifest", SAMPLE_ID)[0] == ExitCode.OK
    return exported(cli, tmp_path, SAMPLE_ID)


def test_a_copy_reusing_row_ids_is_refused_and_the_original_keeps_everything(cli, original, project, tmp_path,
                                                                             sample_export):
    manifest = (project / "manifests" / f"{SAMPLE_ID}.yaml").read_bytes()
    code, err = cli("import", str(same_ids_copy(tmp_path, sample_export)))
    assert code == ExitCode.FAILED
    name = sample_export["stories"][0]["display_name"]
    shot = sample_export["shots"][3]
    assert "nothing was imported (18 problems)" in err
    assert (f"scenelets[0] (id {sample_export['scenelets'][0]['id']!r}): belongs to story {SAMPLE_ID} ({name!r}), "
            f"not to story {COPY_ID}") in err
    assert f"shots[3] ({shot['scenelet_id']!r} #1, id {shot['id']!r}): belongs to story {SAMPLE_ID}" in err
    assert "`storytree import --new-ids FILE`" in err and f"import it into story {SAMPLE_ID}" in err

    assert exported(cli, tmp_path, SAMPLE_ID) == original  # byte for byte, built path included
    assert BUILT[3].encode() in original
    assert cli("manifest", "--check", SAMPLE_ID)[0] == ExitCode.OK  # every shot target still there
    assert (project / "manifests" / f"{SAMPLE_ID}.yaml").read_bytes() == manifest
    assert cli("export", COPY_ID)[0] == ExitCode.FAILED  # nothing of the copy was written


def test_new_ids_imports_the_copy_beside_the_original(cli, original, project, tmp_path, sample_export):
    code, err = cli("import", "--new-ids", str(same_ids_copy(tmp_path, sample_export)))
    assert code == ExitCode.OK, err
    assert "imported 1 stories, 5 scenelets, 12 shots" in err and "new row ids" in err

    assert exported(cli, tmp_path, SAMPLE_ID) == original
    first, second = json.loads(original), json.loads(exported(cli, tmp_path, COPY_ID))
    assert (len(second["scenelets"]), len(second["shots"])) == (len(first["scenelets"]), len(first["shots"])) == (5, 12)
    ids = lambda export: {r["id"] for r in export["scenelets"] + export["shots"]}  # noqa: E731
    assert not ids(first) & ids(second)
    assert [(s["scenelet_id"], s["shot_index"]) for s in second["shots"]] == [
        (s["scenelet_id"], s["shot_index"]) for s in first["shots"]]

    assert cli("manifest", COPY_ID)[0] == ExitCode.OK
    tasks = lambda story_id: (project / "manifests" / f"{story_id}.yaml").read_text().count("\n- task: ")  # noqa: E731
    assert tasks(COPY_ID) == tasks(SAMPLE_ID) > 12
    assert cli("manifest", "--check", SAMPLE_ID)[0] == ExitCode.OK


def test_reimporting_the_original_still_keeps_its_built_paths(cli, original, tmp_path):
    assert cli("import", str(SAMPLE))[0] == ExitCode.OK
    again = json.loads(exported(cli, tmp_path, SAMPLE_ID))
    shot = next(s for s in again["shots"] if (s["scenelet_id"], s["shot_index"]) == BUILT[:2])
    assert shot[BUILT[2]] == BUILT[3]
    assert [r["id"] for r in again["scenelets"]] == [r["id"] for r in json.loads(original)["scenelets"]]
