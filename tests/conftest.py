"""Shared fixtures: every test runs in its own temporary project with no API keys in sight."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from storytree_build.settings import Settings, load_settings
from storytree_build.store import SqliteStoryStore

pytest_plugins = ["pg_services"]  # throwaway Postgres + PostgREST for the Supabase store (tests/pg_services.py)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "sample-story.json"
SAMPLE_ID = "5e1f0c2a-7b3d-4c8e-9a61-0d2f4b6c8e10"

SECRET_ENV = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "SUPABASE_URL",
              "SUPABASE_SERVICE_ROLE_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a real key or a real endpoint, and storytree settings come only from the test."""
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)
    for name in list(__import__("os").environ):
        if name.startswith("STORYTREE_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A throwaway project root: templates, system prompts, dodo.py, an empty manifests folder."""
    root = tmp_path / "project"
    root.mkdir()
    for folder in ("templates", "system_prompts"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    (root / "manifests").mkdir()
    (root / "apps/story-tree-ui/public/generated").mkdir(parents=True)
    return root


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(root=project, env={})


@pytest.fixture
def store(settings: Settings) -> SqliteStoryStore:
    s = SqliteStoryStore(settings.db_path)
    yield s
    s.close()


@pytest.fixture
def sample_export() -> dict:
    return json.loads(SAMPLE.read_text())


@pytest.fixture
def sample_store(store: SqliteStoryStore, sample_export: dict) -> SqliteStoryStore:
    from storytree_build.transfer import validate_export

    store.import_rows(validate_export(sample_export, store, "sample"))
    return store
