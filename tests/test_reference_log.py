"""The verbose reference log of a key frame, exactly in the original shot-image task's format (facts doc §6.7):

    [Shot <scenelet-id> #<index>] Using reference images:
      - <TYPE>: <id> -> <path>

on stdout, without any prefix, in the terminal output of a real `doit ... verbose=1` (or STORYTREE_VERBOSE=1) run.
"""

from __future__ import annotations

import json
from itertools import takewhile
from pathlib import Path

import pytest

from support.project import ASSETS, SAMPLE, SAMPLE_ID, doit, import_story, manifest_of, new_project, project_env

HEADER = "Using reference images:"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_story(new_project(tmp_path_factory.mktemp("reference-log") / "project"))


def expected_lines(project: Path, scenelet: str, n: int) -> list[str]:
    """What the log must say for one shot: the ids the story names, in its order, with the manifest's paths."""
    target = manifest_of(project).by_task()[f"image:{scenelet}_{n}"]
    shot = next(s for s in json.loads(SAMPLE.read_text())["shots"]
                if (s["scenelet_id"], s["shot_index"]) == (scenelet, n))
    designs = shot["storyboard_payload"]["referencedDesigns"]
    named = [("CHARACTER", c) for c in designs["characters"]] + [("ENVIRONMENT", e) for e in designs["environments"]]
    assert [(r.kind, r.id) for r in target.references] == named  # the sample shot fits under the reference cap
    for ref in target.references:  # the paths are real files (relative to the assets folder), not just strings
        assert ref.path.startswith(f"{SAMPLE_ID}/") and (project / ASSETS / ref.path).is_file()
    return [f"[Shot {scenelet} #{n}] {HEADER}"] + [f"  - {r.kind}: {r.id} -> {r.path}" for r in target.references]


def logged_blocks(stdout: str) -> list[list[str]]:
    """Every reference block on stdout: a header line and the `  - ` lines right after it."""
    lines = stdout.splitlines()
    return [[line, *takewhile(lambda x: x.startswith("  - "), lines[i + 1:])]
            for i, line in enumerate(lines) if HEADER in line]


@pytest.mark.parametrize(("scenelet", "n", "how"), [
    ("scenelet-2", 3, "variable"),  # two characters and an environment
    ("scenelet-3", 1, "environment"),  # references the shepherd before wren: the story's order, not the VDD's
])
def test_verbose_build_prints_the_original_reference_lines(built: Path, scenelet: str, n: int, how: str) -> None:
    task = f"image:{scenelet}_{n}"
    if how == "variable":
        result = doit(built, task, "verbose=1", "provider=stub")
    else:
        result = doit(built, task, "provider=stub", env=project_env(built, STORYTREE_VERBOSE="1"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert logged_blocks(result.stdout) == [expected_lines(built, scenelet, n)]
    assert HEADER not in result.stderr  # not through the logger (which prefixes `storytree: `)
    assert (built / ASSETS / manifest_of(built).by_task()[task].output).is_file()


def test_no_reference_lines_without_verbose(built: Path) -> None:
    result = doit(built, "image:scenelet-2_1", "provider=stub")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (built / ASSETS / manifest_of(built).by_task()["image:scenelet-2_1"].output).is_file()  # it did build
    assert HEADER not in result.stdout + result.stderr
