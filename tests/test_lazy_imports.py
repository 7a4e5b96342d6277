"""What a no-op build and `storytree --help` never import (issue 25: their start-up is most of what they cost): the
provider SDKs, the Supabase client, the prompt templates' engine, the image library, the object-store client, the
review page's renderer for --help, and a build session's parts for --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.project import SAMPLE_ID, import_story, new_project, project_env, run_doit

HEAVY = ("google", "supabase", "postgrest", "httpx", "jinja2", "PIL", "obstore", "rich", "storytree_build.providers",
         "storytree_build.building.builder", "storytree_build.building.videos", "storytree_build.building.batches",
         "storytree_build.gallery.page")  # the page's up-to-date check is gallery/freshness.py
SESSION_PARTS = ("storytree_build.building.facts", "storytree_build.building.outputs", "storytree_build.gallery",
                 "storytree_build.review.gate", "storytree_build.core.status")
# --help answers before any settings are read or validated: no pydantic (its import alone costs more than doit's own
# start-up), no settings, no workspace
SETTINGS_PARTS = ("pydantic", "pydantic_settings", "yaml", "storytree_build.settings", "storytree_build.bootstrap",
                  "storytree_build.store", "storytree_build.core.manifest")

REPORT = ("import json, sys\n"
          "names = json.loads(sys.argv[1])\n"
          "def report():\n"
          "    found = sorted(m for m in sys.modules if any(m == n or m.startswith(n + '.') for n in names))\n"
          "    sys.__stderr__.write('MODULES ' + json.dumps(found) + '\\n')\n")


def imported(cwd: Path, code: str, names: tuple[str, ...], env: dict[str, str]) -> list[str]:
    run = subprocess.run([sys.executable, "-c", REPORT + code, json.dumps(names)], cwd=cwd, env=env, text=True,
                         capture_output=True, timeout=120)
    lines = [line for line in run.stderr.splitlines() if line.startswith("MODULES ")]
    assert lines, run.stdout + run.stderr
    return json.loads(lines[-1].removeprefix("MODULES "))


def test_storytree_help_imports_no_build_session(tmp_path: Path) -> None:
    code = ("from storytree_build.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "report()\n")
    assert imported(tmp_path, code, HEAVY + SESSION_PARTS + SETTINGS_PARTS, project_env(tmp_path)) == []


def test_a_no_op_build_imports_no_sdk_template_engine_or_image_library(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = import_story(new_project(tmp_path / "project"))
    monkeypatch.setenv("STORYTREE_ROOT", str(root))
    monkeypatch.setenv("STORYTREE_STATE_DIR", str(root / ".storytree"))
    assert run_doit(root, f"story:{SAMPLE_ID}", "provider=stub").code == 0
    code = ("from doit.doit_cmd import DoitMain\n"
            f"rc = DoitMain().run(['story:{SAMPLE_ID}', 'provider=stub'])\n"
            "assert rc == 0, rc\n"
            "report()\n")
    assert imported(root, code, HEAVY, project_env(root)) == []
