"""`doit dryrun --json` is written target by target (each request rendered, written and let go), and its bytes are
still exactly those of `json.dumps(document, indent=2)`, the writer it replaced."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from storytree_build.doit_glue.json_stream import write_document
from support.project import ASSETS, SAMPLE_ID, import_story, new_project, run_doit

ODD = {"nul": "\x00", "line separators": "a\u2028b\u2029c", "newline": "x\ny\r\n", "quote": '"\\',
       "accents": "é ü ñ 漢字 🎬", "floats": [0.1 + 0.2, 1e-07, 12345678901234567890.0, -0.0], "big": 2**70,
       "empty": {"list": [], "object": {}}, "none": None, "bools": [True, False]}


@pytest.mark.parametrize("before, items, after", [
    ({"story_id": "s", "provider": "stub"}, [], {"problems": []}),
    ({"story_id": "s"}, [ODD, {}, [], "text", 3, [ODD]], {"tail": ODD}),
    ({"a": ODD}, [{"nested": [[{"deep": ODD}]]}], {}),
    ({}, [1], {"b": 2}),
])
def test_the_streamed_document_is_byte_for_byte_json_dumps(before: dict, items: list, after: dict) -> None:
    out = io.StringIO()
    write_document(out, before, "targets", iter(items), lambda: after)
    assert out.getvalue() == json.dumps({**before, "targets": items, **after}, indent=2) + "\n"


def test_each_item_is_written_before_the_next_is_made() -> None:
    out = io.StringIO()
    made: list[int] = []

    def items() -> Iterator[dict]:
        for number in range(3):
            assert out.getvalue().count('"n":') == number  # every item made so far is already written
            made.append(number)
            yield {"n": number}

    write_document(out, {"story_id": "s"}, "targets", items(), lambda: {"problems": made[:]})
    assert json.loads(out.getvalue()) == {"story_id": "s", "targets": [{"n": 0}, {"n": 1}, {"n": 2}],
                                          "problems": [0, 1, 2]}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = import_story(new_project(tmp_path_factory.mktemp("dryrun") / "project"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("STORYTREE_ROOT", str(root))
        monkeypatch.setenv("STORYTREE_STATE_DIR", str(root / ".storytree"))
        assert run_doit(root, f"story:{SAMPLE_ID}", "provider=stub").code == 0
    return root


@pytest.mark.parametrize("args, problems", [
    ((f"story:{SAMPLE_ID}", "provider=gemini"), False),  # every target would run: every request is listed
    ((f"story:{SAMPLE_ID}", "provider=stub"), False),  # nothing would run
    (("-s", "image", "provider=gemini"), True),  # references missing and not built in this run: problems
])
def test_the_dry_run_json_of_the_sample_is_what_json_dumps_writes(built: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  args: tuple[str, ...], problems: bool) -> None:
    root = tmp_path / "project"
    shutil.copytree(built, root, symlinks=True)
    if problems:
        for plate in (root / ASSETS / SAMPLE_ID / "visuals").rglob("*.png"):
            plate.unlink()
    monkeypatch.setenv("STORYTREE_ROOT", str(root))
    monkeypatch.setenv("STORYTREE_STATE_DIR", str(root / ".storytree"))
    listed = run_doit(root, "dryrun", "--json", *args)
    document = json.loads(listed.out)
    assert listed.out == json.dumps(document, indent=2) + "\n"
    assert bool(document["problems"]) is problems and listed.code == (1 if problems else 0)
    assert document["targets"] and all("request" in t for t in document["targets"])
