"""`storytree import` / `export` / `ingest-shots` through the console entry point (exit codes, stderr)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from support.project import REPO, SAMPLE, SAMPLE_ID, story_db
from storytree_build.cli import main
from storytree_build.core.exit_codes import ExitCode
from storytree_build.core.errors import InputError

WITH_REFS = REPO / "samples" / "shot-production" / "scenelet-2-with-refs.json"
LEGACY = REPO / "samples" / "shot-production" / "scenelet-2-legacy.json"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    path = tmp_path / "dbs" / "stories.sqlite"
    monkeypatch.setenv("STORYTREE_ROOT", str(root))
    monkeypatch.setenv("STORYTREE_DB", str(path))
    return path


def rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"select count(*) from {table}").fetchone()[0]


def without_scenelet_2_shots(tmp_path: Path) -> Path:
    data = json.loads(SAMPLE.read_text())
    data["shots"] = [s for s in data["shots"] if s["scenelet_id"] != "scenelet-2"]
    path = tmp_path / "no-scenelet-2-shots.json"
    path.write_text(json.dumps(data))
    return path


def test_import_then_export(db, capsys):
    assert main(["import", str(SAMPLE)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "imported 1 stories, 5 scenelets, 12 shots into sqlite" in err
    assert db.is_file() and rows(db, "shots") == 12

    assert main(["export", SAMPLE_ID]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["stories"][0]["id"] == SAMPLE_ID
    assert (len(data["scenelets"]), len(data["shots"])) == (5, 12)


def test_export_to_file_and_reimport_elsewhere_is_identical(db, tmp_path, capsys, monkeypatch):
    assert main(["import", str(SAMPLE)]) == 0
    first = tmp_path / "first.json"
    assert main(["export", SAMPLE_ID, "-o", str(first)]) == 0
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("STORYTREE_DB", str(tmp_path / "second.sqlite"))
    assert main(["import", str(first)]) == 0
    second = tmp_path / "second.json"
    assert main(["export", SAMPLE_ID, "--output", str(second)]) == 0
    assert second.read_bytes() == first.read_bytes()
    assert (tmp_path / "second.sqlite").is_file()


def test_default_database_is_in_the_data_folder(tmp_path, monkeypatch, capsys):
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.setenv("STORYTREE_ROOT", str(root))
    assert main(["import", str(SAMPLE)]) == 0
    assert rows(story_db(root), "stories") == 1


def test_export_unknown_story(db, capsys):
    assert main(["import", str(SAMPLE)]) == 0
    capsys.readouterr()
    assert main(["export", "no-such-story"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("storytree: error: Story no-such-story does not exist")
    assert SAMPLE_ID in err


def test_import_malformed_json(db, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"stories": [}')
    assert main(["import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"storytree: error: {bad}: malformed JSON at line 1")
    assert not db.exists() or rows(db, "stories") == 0


def test_import_invalid_rows_writes_nothing(db, tmp_path, capsys):
    data = json.loads(SAMPLE.read_text())
    del data["shots"][4]["storyboard_payload"]["continuityNotes"]
    data["stories"][0]["visual_design_document"]["character_designs"][0]["character_id"] = "../../etc"
    bad = tmp_path / "invalid.json"
    bad.write_text(json.dumps(data))
    assert main(["import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"storytree: error: {bad}: nothing was imported (" in err
    assert "shots[4] ('scenelet-2' #2): storyboard_payload.continuityNotes: Field required" in err
    assert "visual_design_document design id '../../etc' is not path-safe" in err
    assert rows(db, "stories") == rows(db, "scenelets") == rows(db, "shots") == 0


def test_missing_arguments_is_a_usage_error(db, capsys):
    with pytest.raises(SystemExit) as info:
        main(["export"])
    assert info.value.code == ExitCode.REFUSED


def test_debug_shows_the_exception(db, capsys):
    with pytest.raises(InputError, match="no such file"):
        main(["--debug", "import", "/nonexistent/file.json"])


def test_ingest_shots(db, tmp_path, capsys):
    assert main(["import", str(without_scenelet_2_shots(tmp_path))]) == 0
    assert rows(db, "shots") == 9
    capsys.readouterr()
    assert main(["ingest-shots", SAMPLE_ID, str(WITH_REFS)]) == 0
    assert capsys.readouterr().err.strip() == f"ingested 3 shots into story {SAMPLE_ID}"
    assert rows(db, "shots") == 12

    assert main(["ingest-shots", SAMPLE_ID, str(LEGACY)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"storytree: error: {LEGACY}: scenelet scenelet-2 of story {SAMPLE_ID} already has shots")
    assert rows(db, "shots") == 12

    assert main(["export", SAMPLE_ID]) == 0
    exported = json.loads(capsys.readouterr().out)
    original = json.loads(SAMPLE.read_text())
    payloads = lambda d: [s["storyboard_payload"] for s in d["shots"] if s["scenelet_id"] == "scenelet-2"]  # noqa: E731
    assert payloads(exported) == payloads(original)


def test_ingest_bad_file_among_several_writes_nothing(db, tmp_path, capsys):
    data = json.loads(SAMPLE.read_text())
    data["shots"] = [s for s in data["shots"] if s["scenelet_id"] not in ("scenelet-2", "scenelet-3")]
    export = tmp_path / "partial.json"
    export.write_text(json.dumps(data))
    assert main(["import", str(export)]) == 0
    bad = tmp_path / "scenelet-3.json"
    response = json.loads(WITH_REFS.read_text())
    response["scenelet_id"] = "scenelet-3"
    response["shots"][0]["storyboard_entry"]["audio_and_narrative"][0]["type"] = "soundscape"
    bad.write_text(json.dumps(response))
    capsys.readouterr()
    assert main(["ingest-shots", SAMPLE_ID, str(WITH_REFS), str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: scenelet-3 shot 1: audio_and_narrative[1]: type must be either" in err
    assert rows(db, "shots") == 7


def test_ingest_into_unknown_story(db, capsys):
    assert main(["import", str(SAMPLE)]) == 0
    capsys.readouterr()
    assert main(["ingest-shots", "nope", str(WITH_REFS)]) == 1
    assert "Story nope does not exist" in capsys.readouterr().err
