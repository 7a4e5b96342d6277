"""`storytree config` (issue 23 §7): the settings in effect and where each came from, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storytree_build.core.exit_codes import ExitCode
from storytree_build.settings import load_settings
from storytree_build.settings.explain import effective_settings
from support.project import new_project, storytree
from test_settings_example import leaf_fields
from storytree_build.settings import Settings

SECRET = "AIza-very-secret-key"


def configured(tmp_path: Path) -> Path:
    root = new_project(tmp_path / "project")
    (root / "storytree.toml").write_text('[gemini]\nmax_attempts = 7\n\n[build]\nrebuild = "missing"\n')
    return root


def test_config_prints_every_setting_with_its_source_and_masks_secrets(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = configured(tmp_path)
    monkeypatch.setenv("STORYTREE_PROVIDER", "stub")
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    monkeypatch.setenv("STORYTREE_REMOTE", "s3://bucket/prefix")
    monkeypatch.setenv("SUPABASE_URL", "https://admin:hunter2@example.supabase.co")
    assert storytree(root, "config", monkeypatch=monkeypatch) == ExitCode.OK
    out = capsys.readouterr().out
    lines = {line.split(" = ", 1)[0].strip(): line for line in out.splitlines()}
    assert lines["gemini.max_attempts"].endswith("= 7  # storytree.toml")
    assert lines["build.rebuild"].endswith('= "missing"  # storytree.toml')
    assert lines["provider"].endswith('= "stub"  # env STORYTREE_PROVIDER')
    assert lines["gemini.timeout_seconds"].endswith("= 180.0  # default")
    assert lines["remote.url"].endswith('= "s3://bucket/prefix"  # env STORYTREE_REMOTE')
    assert lines["gemini_api_key"].endswith('= "********"  # env GEMINI_API_KEY')
    assert SECRET not in out and "hunter2" not in out
    assert len(lines) == len(leaf_fields(Settings))  # every setting, once


def test_config_json_and_doit_variables_as_a_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = configured(tmp_path)
    env = {"STORYTREE_ROOT": str(root), "STORYTREE_MAX_COST": "30"}
    variables = {"max_cost": "12.5", "rebuild": None}
    settings = load_settings(env=env, variables=variables)
    rows = {row.name: row for row in effective_settings(settings, env, variables)}
    assert (rows["max_cost"].shown, rows["max_cost"].source) == ("12.5", "doit variable max_cost=")
    assert rows["state_dir"].source == "default (under the project root)"
    assert storytree(root, "config", "--json", monkeypatch=monkeypatch) == ExitCode.OK
    listed = {row["setting"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed["gemini.max_attempts"] == {"setting": "gemini.max_attempts", "value": 7, "source": "storytree.toml"}
    assert not (root / ".storytree-data").exists()  # read-only: nothing created
