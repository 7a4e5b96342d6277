"""Helpers shared by the gallery, serve and browser tests: a throwaway project with the sample story built by the
stub provider through the real `doit` entry point (a subprocess, as a user runs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from conftest import REPO, SAMPLE, SAMPLE_ID

from storytree_build.build import BuildContext
from storytree_build.manifest import load_manifest_file, manifest_path
from storytree_build.settings import Settings, load_settings

__all__ = ["SAMPLE_ID", "new_project", "build_sample", "run_doit", "context", "settings_for", "PageParser", "parse_page"]


def child_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORYTREE_")
           and k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "SUPABASE_URL",
                         "SUPABASE_SERVICE_ROLE_KEY")}
    env["STORYTREE_ROOT"] = str(root)
    return env


def new_project(root: Path, export: dict[str, Any] | None = None) -> Path:
    """Templates, system prompts, dodo.py, the sample story imported and its manifest written."""
    root.mkdir(parents=True)
    for folder in ("templates", "system_prompts"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    (root / "manifests").mkdir()
    (root / "apps/story-tree-ui/public/generated").mkdir(parents=True)
    settings = settings_for(root)
    from storytree_build.cli import render_manifest
    from storytree_build.store import SqliteStoryStore
    from storytree_build.transfer import validate_export

    store = SqliteStoryStore(settings.db_path)
    try:
        data = export if export is not None else json.loads(SAMPLE.read_text())
        store.import_rows(validate_export(data, store, "sample"))
    finally:
        store.close()
    manifest_path(settings, SAMPLE_ID).write_text(render_manifest(settings, SAMPLE_ID)[0], encoding="utf-8")
    return root


def run_doit(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "doit", *args], cwd=root, env=child_env(root),
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"doit {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def build_sample(root: Path) -> subprocess.CompletedProcess:
    return run_doit(root, f"story:{SAMPLE_ID}", "provider=stub")


def settings_for(root: Path) -> Settings:
    return load_settings(root=root, env={})


def context(root: Path, provider_name: str = "stub", **kwargs: Any) -> BuildContext:
    settings = settings_for(root)
    return BuildContext(settings, load_manifest_file(manifest_path(settings, SAMPLE_ID)), provider_name, **kwargs)


class PageParser(HTMLParser):
    """Collects what the tests look at: media elements, placeholders, target blocks and <details> texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.imgs: list[dict[str, str | None]] = []
        self.videos: list[dict[str, str | None]] = []
        self.placeholders: list[dict[str, str | None]] = []
        self.targets: dict[str, str] = {}  # task -> data-state
        self.details: list[dict[str, Any]] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self._open_details: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "img":
            self.imgs.append(a)
        elif tag == "video":
            self.videos.append(a)
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")
        elif tag == "details":
            entry = {"open": "open" in a, "text": []}
            self.details.append(entry)
            self._open_details.append(entry)
        if "placeholder" in classes:
            self.placeholders.append(a)
        if "target" in classes and a.get("data-task"):
            self.targets[a["data-task"] or ""] = a.get("data-state") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "details" and self._open_details:
            self._open_details.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for entry in self._open_details:
            entry["text"].append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def parse_page(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    for entry in parser.details:
        entry["text"] = "".join(entry["text"])
    return parser
