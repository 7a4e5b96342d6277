"""Throwaway storytree projects and the ways tests run storytree and doit against them."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storytree_build.cli import main as storytree_main
from storytree_build.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "sample-story.json"
SAMPLE_ID = "5e1f0c2a-7b3d-4c8e-9a61-0d2f4b6c8e10"
ASSETS = Path("apps/story-tree-ui/public/generated")
SECRET_ENV = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "SUPABASE_URL",
              "SUPABASE_SERVICE_ROLE_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE")


# -- projects ---------------------------------------------------------------------------------------------
def new_project(root: Path) -> Path:
    """Templates, system prompts, dodo.py, an empty manifests folder and the assets folder."""
    root.mkdir(parents=True, exist_ok=True)
    for folder in ("templates", "system_prompts"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    (root / "manifests").mkdir()
    (root / ASSETS).mkdir(parents=True)
    return root


def copy_project(template: Path, tmp_path: Path, toml: str = "") -> Path:
    """A copy of a prepared project (another checkout of it) under tmp_path, with its own storytree.toml if given."""
    copy = tmp_path / "project"
    shutil.copytree(template, copy)
    if toml:
        (copy / "storytree.toml").write_text(toml)
    return copy


def settings_for(root: Path, **env: str) -> Settings:
    return load_settings(root=root, env={"STORYTREE_ROOT": str(root), **env})


def import_story(root: Path, export: dict[str, Any] | None = None, story_id: str = SAMPLE_ID) -> Path:
    """Import an export (default: the sample story) into the project's store and write its manifest, in-process."""
    from storytree_build.bootstrap import Workspace
    from storytree_build.data.transfer import validate_export

    workspace = Workspace(settings_for(root))
    try:
        store = workspace.store()
        data = export if export is not None else json.loads(SAMPLE.read_text())
        store.import_rows(validate_export(data, store, "test"))
        workspace.manifest_path(story_id).write_text(workspace.render_manifest(story_id)[0], encoding="utf-8")
    finally:
        workspace.close()
    return root


def session_for(root: Path, provider: str = "stub", story_id: str = SAMPLE_ID, **kwargs: Any):  # noqa: ANN201
    """A build session of the project's story, in a workspace of its own (close the session when done)."""
    from storytree_build.bootstrap import Session, Workspace
    from storytree_build.core.manifest.file import load_manifest_file, manifest_path

    settings = settings_for(root)
    return Session(Workspace(settings), load_manifest_file(manifest_path(settings.manifests_dir, story_id)), provider,
                   owns_workspace=True, **kwargs)


def story_db(root: Path) -> Path:
    """The project's embedded story store (stories and, beside them, the build's records)."""
    return root / ".storytree-data" / "story.sqlite"


def records_port(root: Path):  # noqa: ANN201 - store.sqlite_records.SqliteBuildState
    """The project's build state (records, operations, claims, reviews of every story); close it when done."""
    from storytree_build.store.sqlite_records import SqliteBuildState

    return SqliteBuildState(story_db(root))


def records_of(root: Path, story_id: str = SAMPLE_ID) -> dict:
    port = records_port(root)
    try:
        return port.records(story_id).all()
    finally:
        port.close()


def manifest_of(root: Path, story_id: str = SAMPLE_ID):  # noqa: ANN201
    from storytree_build.core.manifest.file import load_manifest_file

    return load_manifest_file(root / "manifests" / f"{story_id}.yaml")


def write_export(path: Path, export: dict) -> Path:
    path.write_text(json.dumps(export, indent=2))
    return path


def is_complete_asset(path: Path) -> bool:
    """A PNG that decodes, or an MP4 with its ftyp box: what a finished (never a partly written) asset looks like."""
    if path.suffix == ".png":
        from PIL import Image

        try:
            with Image.open(path) as image:
                image.load()
            return True
        except Exception:  # noqa: BLE001 - any decoder failure means "not a complete image"
            return False
    head = path.read_bytes()[:12]
    return len(head) == 12 and head[4:8] == b"ftyp"


# -- running storytree and doit ---------------------------------------------------------------------------
# A paid build without a terminal needs consent (max_cost= or yes=1): test builds against the fake Gemini give it
# here once; the consent tests (test_consent.py) build without it.
CONSENT = {"STORYTREE_YES": "1"}
CONSENT_VAR = ("STORYTREE_YES", "1")  # for monkeypatch.setenv


def project_env(project: Path, consent: bool = True, **extra: str) -> dict[str, str]:
    """The environment of a storytree or doit subprocess: none of the caller's storytree, key or store variables,
    and no `CI` (a CI runner sets it, and it freezes manifests): tests that mean CI pass it in `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STORYTREE_", "GEMINI_", "GOOGLE_", "SUPABASE_")) and k != "CI"}
    env.update({"STORYTREE_ROOT": str(project), "STORYTREE_STATE_DIR": str(project / ".storytree")})
    if consent:
        env.update(CONSENT)
    env.update(extra)
    return env


def storytree(project: Path, *args: str, monkeypatch=None) -> int:  # noqa: ANN001
    """Run the storytree CLI in-process with the project's settings."""
    assert monkeypatch is not None
    monkeypatch.setenv("STORYTREE_ROOT", str(project))
    monkeypatch.setenv("STORYTREE_STATE_DIR", str(project / ".storytree"))
    return storytree_main(list(args))


def doit(project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
         wait: bool = True, check: bool = False) -> subprocess.CompletedProcess | subprocess.Popen:
    """`doit ARGS` in a subprocess (the real process boundary, as a user runs it)."""
    cmd = [sys.executable, "-m", "doit", *args]
    kwargs = dict(cwd=project, env=env or project_env(project), text=True,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not wait:
        return subprocess.Popen(cmd, **kwargs)
    result = subprocess.run(cmd, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"doit {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def doit_in_process(root: Path, monkeypatch: "pytest.MonkeyPatch", *args: str) -> "Run":
    """`doit ARGS` in this process, in the project, with the stub's call log beside it (calls.log)."""
    monkeypatch.setenv("STORYTREE_ROOT", str(root))
    monkeypatch.setenv("STORYTREE_STATE_DIR", str(root / ".storytree"))
    monkeypatch.setenv("STORYTREE_STUB_CALL_LOG", str(root.parent / "calls.log"))
    monkeypatch.chdir(root)
    return run_doit(root, *args)


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


def run_doit(project: Path, *args: str) -> Run:
    """`doit ARGS` in this process, with the project's own dodo.py (environment from the caller, e.g. monkeypatch).
    Faster than a subprocess; everything the run changes in the process (logging, argv, signals, GC) is restored."""
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    logger = logging.getLogger("storytree")
    saved = (logger.handlers[:], logger.level, sys.argv, signal.getsignal(signal.SIGTERM), gc.get_threshold())
    log_stream, out, err = io.StringIO(), io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(log_stream)
    handler.setFormatter(logging.Formatter("storytree: %(message)s"))
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    spec = importlib.util.spec_from_file_location(f"dodo_{uuid.uuid4().hex}", project / "dodo.py")
    assert spec is not None and spec.loader is not None
    module = None
    try:
        sys.argv = ["doit", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            # doit's `outfile` default is the sys.stdout of import time, so hand it our stream explicitly.
            code = DoitMain(ModuleTaskLoader(module), extra_config={"GLOBAL": {"outfile": out}}).run(list(args))
    finally:
        if module is not None:
            module.project.close()
        logger.handlers, logger.level, sys.argv = saved[0], saved[1], saved[2]
        signal.signal(signal.SIGTERM, saved[3])
        gc.set_threshold(*saved[4])
    return Run(code, out.getvalue(), err.getvalue() + log_stream.getvalue())
