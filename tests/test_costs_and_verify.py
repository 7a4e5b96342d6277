"""The bill before the spend, the cap that refuses, and verify's free repair."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from support.project import SAMPLE_ID, doit, project_env, storytree, write_export, story_db
from storytree_build.core.exit_codes import ExitCode
from storytree_build.cli import main as storytree_main

SHOT = "shot:scenelet-2_1"


@pytest.fixture
def imported(project: Path, sample_export: dict, monkeypatch) -> Path:  # noqa: ANN001
    write_export(project / "sample.json", sample_export)
    assert storytree(project, "import", str(project / "sample.json"), monkeypatch=monkeypatch) == 0
    assert storytree(project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    return project


def test_dry_run_prints_the_bill(imported: Path) -> None:
    text = doit(imported, "dryrun", SHOT, "provider=gemini")
    assert text.returncode == 0
    assert "8 s video (1080p), 3.20 USD" in text.stdout and "1 image (1K), 0.07 USD" in text.stdout
    assert "estimated total: 3.40 USD" in text.stdout and "2026-11-21" in text.stdout
    data = json.loads(doit(imported, "dryrun", "--json", SHOT, "provider=gemini").stdout)  # only JSON on stdout
    assert data["estimate"]["total"] == pytest.approx(3.4, abs=0.01)
    assert data["estimate"]["by_kind"]["video"] == pytest.approx(3.2)
    assert {t["task"]: t["cost"] for t in data["targets"]}["video:scenelet-2_1"] == pytest.approx(3.2)
    free = json.loads(doit(imported, "dryrun", "--json", SHOT, "provider=stub").stdout)
    assert free["estimate"]["total"] == 0


def test_a_build_over_max_cost_refuses_to_start(imported: Path) -> None:
    env = project_env(imported, GEMINI_API_KEY="test-key-not-used")
    refused = doit(imported, SHOT, "max_cost=1", env=env)
    assert refused.returncode == 3
    lines = refused.stderr.splitlines()
    assert "estimated at 3.40 USD, over max_cost=1" in refused.stderr
    assert lines.index(next(line for line in lines if "video:scenelet-2_1" in line)) < \
        lines.index(next(line for line in lines if "image:scenelet-2_1" in line))  # biggest first
    assert sqlite3.connect(story_db(imported)).execute("select count(*) from storytree_records").fetchone()[0] == 0
    assert doit(imported, SHOT, "max_cost=1", "provider=stub").returncode == 0  # the stub costs nothing


def test_a_cap_with_an_unknown_price_refuses(imported: Path) -> None:
    (imported / "storytree.toml").write_text('[prices]\nimages = {}\nvideo_per_second = {}\n')
    refused = doit(imported, SHOT, "max_cost=100", env=project_env(imported, GEMINI_API_KEY="k"))
    assert refused.returncode == 3 and "no price for" in refused.stderr


def test_verify_repairs_database_paths_from_records(imported: Path, sample_export: dict, monkeypatch, capsys) -> None:  # noqa: ANN001
    assert doit(imported, f"story:{SAMPLE_ID}", "provider=stub").returncode == 0
    # The story database lost its shot paths (restored from an old backup, edited by hand); assets and records
    # are still there. (A re-import of the export no longer clears paths: see test_store_contract.)
    db = story_db(imported)
    with sqlite3.connect(db) as conn:
        conn.execute("update shots set key_frame_image_path = null, video_file_path = null")
    assert storytree(imported, "import", str(imported / "sample.json"), monkeypatch=monkeypatch) == 0
    assert sqlite3.connect(db).execute("select count(*) from shots where key_frame_image_path is not null").fetchone()[0] == 0
    capsys.readouterr()
    assert storytree_main(["verify", SAMPLE_ID, "--no-repair", "--provider", "stub"]) == ExitCode.CHECK_FOUND_WORK
    assert "does not point at it" in capsys.readouterr().out
    assert storytree_main(["verify", SAMPLE_ID, "--provider", "stub"]) == 0
    out = capsys.readouterr().out
    assert out.count("repaired:") == 24  # the 12 key frames and 12 videos
    assert sqlite3.connect(db).execute("select count(*) from shots where key_frame_image_path is null "
                                       "or video_file_path is null").fetchone()[0] == 0
    assert storytree_main(["verify", SAMPLE_ID, "--provider", "stub"]) == 0
    assert "0 repaired, 0 problems" in capsys.readouterr().err
    # A deleted asset is reported, not regenerated.
    next((imported / "apps").rglob("shot-1_key_frame.png")).unlink()
    assert storytree_main(["verify", SAMPLE_ID, "--provider", "stub"]) == ExitCode.CHECK_FOUND_WORK
    assert "recorded as built but the file is missing" in capsys.readouterr().out
