"""Helpers shared by the gallery, serve and browser tests: a throwaway project with the sample story built by the
stub provider through the real `doit` entry point (a subprocess, as a user runs it)."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from .project import SAMPLE_ID, doit, import_story, project_env, session_for, settings_for
from .project import new_project as make_project

__all__ = ["SAMPLE_ID", "new_project", "build_sample", "run_doit", "context", "settings_for", "PageParser", "parse_page",
           "long_story_export"]


def new_project(root: Path, export: dict[str, Any] | None = None) -> Path:
    """Templates, system prompts, dodo.py, the sample story imported and its manifest written."""
    return import_story(make_project(root), export)


def long_story_export(n_targets: int) -> tuple[str, dict[str, Any]]:
    """(story id, export) of a story scaled from the sample to about n_targets targets: bench/noop.py's generator,
    the one the no-op benchmark builds (2 targets per shot)."""
    import importlib.util

    from .project import REPO

    spec = importlib.util.spec_from_file_location("bench_noop", REPO / "bench" / "noop.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.synthetic_export(n_targets)


def run_doit(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return doit(root, *args, env=project_env(root), timeout=300, check=check)


def build_sample(root: Path) -> subprocess.CompletedProcess:
    return run_doit(root, f"story:{SAMPLE_ID}", "provider=stub")


def context(root: Path, provider_name: str = "stub", **kwargs: Any):  # noqa: ANN201 - bootstrap.Session
    return session_for(root, provider_name, **kwargs)


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
        self.anchors: list[dict[str, str | None]] = []  # <a> elements, their attributes
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
            self.anchors.append(a)
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
