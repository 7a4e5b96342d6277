"""Helpers to run the real CLI and the real doit (in a subprocess) against a temporary project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from storytree_build.cli import main as storytree_main

SAMPLE_ID = "5e1f0c2a-7b3d-4c8e-9a61-0d2f4b6c8e10"


def project_env(project: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STORYTREE_", "GEMINI_", "GOOGLE_", "SUPABASE_"))}
    env.update({"STORYTREE_ROOT": str(project), "STORYTREE_STATE_DIR": str(project / ".storytree")})
    env.update(extra)
    return env


def storytree(project: Path, *args: str, monkeypatch=None) -> int:  # noqa: ANN001
    """Run the storytree CLI in-process with the project's settings."""
    assert monkeypatch is not None
    monkeypatch.setenv("STORYTREE_ROOT", str(project))
    monkeypatch.setenv("STORYTREE_STATE_DIR", str(project / ".storytree"))
    return storytree_main(list(args))


def doit(project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
         wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    cmd = [sys.executable, "-m", "doit", *args]
    kwargs = dict(cwd=project, env=env or project_env(project), text=True,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not wait:
        return subprocess.Popen(cmd, **kwargs)
    return subprocess.run(cmd, timeout=timeout, **kwargs)


def write_export(path: Path, export: dict) -> Path:
    path.write_text(json.dumps(export, indent=2))
    return path
