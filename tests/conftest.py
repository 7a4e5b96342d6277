"""Shared fixtures: every test runs in its own temporary project with no API keys in sight."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from storytree_build.settings import Settings, load_settings
from storytree_build.store import SqliteStoryStore
from support.project import REPO, SAMPLE, SAMPLE_ID, SECRET_ENV, new_project

pytest_plugins = ["support.pg_services",  # throwaway Postgres + PostgREST for the Supabase store
                  "support.s3_server"]  # a real S3-protocol server (moto) for the object remote

__all__ = ["REPO", "SAMPLE", "SAMPLE_ID", "SECRET_ENV"]


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a real key or a real endpoint, and storytree settings come only from the test."""
    for name in (*SECRET_ENV, "CI"):  # CI, set by CI runners, freezes manifests: tests that mean it set it
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith(("STORYTREE_", "AWS_")):  # obstore reads AWS_* itself
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A throwaway project root: templates, system prompts, dodo.py, an empty manifests folder."""
    return new_project(tmp_path / "project")


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
    from storytree_build.data.transfer import validate_export

    store.import_rows(validate_export(sample_export, store, "sample"))
    return store
