"""Hostile or broken input gets a clear error naming what to fix, exit 1, no traceback, nothing written."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from storytree_build.cli import main
from support.project import REPO, SAMPLE, new_project

WITH_REFS = REPO / "samples" / "shot-production" / "scenelet-2-with-refs.json"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    path = tmp_path / "dbs" / "stories.sqlite"
    monkeypatch.setenv("STORYTREE_ROOT", str(root))
    monkeypatch.setenv("STORYTREE_DB", str(path))
    return path


def stored(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        return sum(conn.execute(f"select count(*) from {t}").fetchone()[0] for t in ("stories", "scenelets", "shots"))


def refused(tmp_path: Path, db: Path, capsys, data: dict | bytes, *fragments: str) -> None:  # noqa: ANN001
    path = tmp_path / "input.json"
    path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    capsys.readouterr()
    assert main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in err and stored(db) == 0


def sample() -> dict:
    return json.loads(SAMPLE.read_text())


def test_a_5000_character_scenelet_id_is_refused(db, tmp_path, capsys) -> None:
    data = sample()
    data["shots"][0]["scenelet_id"] = "s" * 5000
    refused(tmp_path, db, capsys, data, "scenelet_id", "5000 characters long; ids are at most 128")


def test_an_id_with_surrounding_spaces_is_refused_not_trimmed(db, tmp_path, capsys) -> None:
    data = sample()
    data["shots"][0]["scenelet_id"] = f" {data['shots'][0]['scenelet_id']} "
    refused(tmp_path, db, capsys, data, "surrounding whitespace")


def test_ids_only_in_the_visual_reference_package_are_checked_too(db, tmp_path, capsys) -> None:
    data = sample()
    data["stories"][0]["visual_reference_package"]["character_model_sheets"][0]["character_id"] = "../../escape"
    refused(tmp_path, db, capsys, data, "visual_reference_package design id", "'../../escape' is not path-safe")


def test_absurd_shot_indexes_are_refused(db, tmp_path, capsys) -> None:
    data = sample()
    data["shots"][0]["shot_index"] = 2 ** 63
    refused(tmp_path, db, capsys, data, "shot_index", "less than or equal to 100000")


def test_deeply_nested_json_is_refused(db, tmp_path, capsys) -> None:
    data = sample()
    deep: object = "x"
    for _ in range(100):
        deep = [deep]
    data["scenelets"][0]["content"]["extra"] = deep
    refused(tmp_path, db, capsys, data, "nests JSON deeper than 64 levels")
    refused(tmp_path, db, capsys, b"[" * 200_000 + b"]" * 200_000, "nests JSON deeper than 64 levels")


def test_invalid_utf8_is_refused(db, tmp_path, capsys) -> None:
    refused(tmp_path, db, capsys, json.dumps(sample()).encode()[:100] + b"\xff\xfe" + b"}", "not valid UTF-8")


def test_an_ingest_with_absurdly_many_references_is_refused(db, tmp_path, capsys) -> None:
    assert main(["import", str(SAMPLE)]) == 0
    with sqlite3.connect(db) as conn:
        conn.execute("delete from shots where scenelet_id = 'scenelet-2'")
    response = json.loads(WITH_REFS.read_text())
    refs = response["shots"][0]["storyboard_entry"]["referenced_designs"]
    refs["characters"] = refs["characters"][:1] * 100_000
    path = tmp_path / "many-refs.json"
    path.write_text(json.dumps(response))
    before = stored(db)
    capsys.readouterr()
    assert main(["ingest-shots", "5e1f0c2a-7b3d-4c8e-9a61-0d2f4b6c8e10", str(path)]) == 1
    err = capsys.readouterr().err
    assert "scenelet-2 shot 1" in err and "100000 designs; a shot references at most 32" in err
    assert stored(db) == before


def test_an_oversized_response_is_refused_before_reading(db, tmp_path, capsys) -> None:
    assert main(["import", str(SAMPLE)]) == 0
    big = tmp_path / "big.json"
    with open(big, "wb") as handle:
        handle.truncate(9 * 1024 * 1024)
    capsys.readouterr()
    assert main(["ingest-shots", "5e1f0c2a-7b3d-4c8e-9a61-0d2f4b6c8e10", str(big)]) == 1
    assert "larger than a shot-production response may be (8 MB)" in capsys.readouterr().err


def test_a_manifest_without_templates_or_with_an_absurd_prompt_is_not_written(db, tmp_path, capsys) -> None:
    data = sample()
    shot = data["shots"][0]
    shot["storyboard_payload"]["compositionAndContent"] = "a field of poppies, " * 15_000  # 300 KB of story text
    path = tmp_path / "input.json"
    path.write_text(json.dumps(data))
    assert main(["import", str(path)]) == 0
    story_id = data["stories"][0]["id"]
    capsys.readouterr()
    assert main(["manifest", story_id]) == 1  # an empty project folder: no templates
    err = capsys.readouterr().err
    assert "visual_reference.j2 is not in" in err and "STORYTREE_ROOT" in err and "Traceback" not in err, err
    new_project(tmp_path / "project")
    assert main(["manifest", story_id]) == 1
    err = capsys.readouterr().err
    task = f"image:{shot['scenelet_id']}_{shot['shot_index']}"
    assert f"{task}: the rendered prompt" in err and "more than the limit of 262,144" in err, err
    assert "shorten the story text" in err and "Traceback" not in err
    assert not (tmp_path / "project" / "manifests" / f"{story_id}.yaml").exists()
