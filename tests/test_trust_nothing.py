"""Nothing from disk is trusted before it is checked: planted files of every bad kind are never adopted and never sent
to a model; a rename journal is applied only when the records and files bear it out, and never moves a file from or
to outside the asset folder; a build never writes through a folder link that leads out of the asset folder."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from support.fakes.gemini_server import FakeGemini
from support.project import (ASSETS, SAMPLE_ID, doit, import_story, manifest_of, new_project, project_env, records_of,
                             story_db)
from test_gemini_images import KEY, write_config

STORY = f"story:{SAMPLE_ID}"
SHEET = "ref:character.wren-quillfeather.character-model-sheet-1"


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 18), (200, 100, 50)).save(buffer, format="PNG")
    return buffer.getvalue()


PLANTS = {  # what a careless copy, a crash of another tool or a malicious planter leaves at a target path
    "empty": b"",
    "truncated PNG": png_bytes()[:40],
    "text named .png": b"this is not an image\n",
}


@pytest.fixture(scope="module")
def stub_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = import_story(new_project(tmp_path_factory.mktemp("trust") / "project"))
    assert doit(root, STORY, "provider=stub").returncode == 0
    return root


@pytest.fixture
def planted(stub_built: Path, tmp_path: Path) -> Path:
    """The story's files as the original system would leave them (paths in the database, no records), except that
    some are bad: a file of every bad kind, a symlink to /etc/passwd, broken videos."""
    root = tmp_path / "project"
    shutil.copytree(stub_built, root)
    with sqlite3.connect(story_db(root)) as conn:
        conn.execute("delete from storytree_records")
    shutil.rmtree(root / ".storytree-data" / "objects")
    targets = manifest_of(root).targets
    images = [t for t in targets if t.kind != "video"]
    videos = [t for t in targets if t.kind == "video"]
    for target, data in zip(images, PLANTS.values()):
        (root / ASSETS / target.output).write_bytes(data)
    sheet = next(t for t in images if t.task == SHEET)
    path = root / ASSETS / sheet.output
    path.unlink()
    os.symlink("/etc/passwd", path)
    (root / ASSETS / videos[0].output).write_bytes(b"")
    (root / ASSETS / videos[1].output).write_bytes(b"\0\0\0\x0cftypisom")
    return root


def bad_tasks(root: Path) -> set[str]:
    targets = manifest_of(root).targets
    images = [t.task for t in targets if t.kind != "video"]
    videos = [t.task for t in targets if t.kind == "video"]
    return {*images[:len(PLANTS)], SHEET, *videos[:2]}


def test_planted_files_are_never_adopted_and_verify_reports_them(planted: Path, tmp_path: Path):
    bad = bad_tasks(planted)
    plan = doit(planted, "dryrun", "--json", STORY, "provider=stub")
    items = {t["task"]: t for t in json.loads(plan.stdout)["targets"]}
    for task in bad:
        assert items[task]["action"] == "run" and items[task]["reason"].startswith("present but not a valid file ("), \
            (task, items[task])
    assert all(items[t]["action"] == "adopt" for t in items if t not in bad and not any(
        ref in bad for ref in manifest_of(planted).by_task()[t].depends_on))
    verify = doit_cli(planted, "verify", SAMPLE_ID, "--no-repair", "--provider", "stub")
    assert verify.returncode != 0 and verify.stdout.count("present but not a valid file") == len(bad), verify.stdout
    assert "a symbolic link that leads out of the asset folder" in verify.stdout
    calls = tmp_path / "calls.log"
    run = doit(planted, STORY, "provider=stub", env=project_env(planted, STORYTREE_STUB_CALL_LOG=str(calls)))
    assert run.returncode == 0, run.stdout + run.stderr
    assert bad <= set(calls.read_text().split())  # rebuilt, paid (stub), never recorded as adopted
    recorded = records_of(planted)
    assert {recorded[t].origin for t in bad} == {"built"}
    assert not (planted / ASSETS / manifest_of(planted).by_task()[SHEET].output).is_symlink()
    assert Path("/etc/passwd").read_bytes()[:4] != b"\x89PNG"  # the link was replaced, never written through


def doit_cli(root: Path, *args: str):  # noqa: ANN201
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "storytree_build.cli", *args], cwd=root, env=project_env(root),
                          text=True, capture_output=True, timeout=120, check=False)


def test_no_reference_sent_to_the_model_is_anything_but_an_image_the_build_made_or_adopted(tmp_path: Path):
    root = new_project(tmp_path / "project")
    write_config(root)
    import_story(root)
    with FakeGemini() as fake:
        env = project_env(root, GEMINI_API_KEY=KEY, GOOGLE_GEMINI_BASE_URL=fake.url)
        assert doit(root, "ref", env=env).returncode == 0
        sheet = root / ASSETS / manifest_of(root).by_task()[SHEET].output
        sheet.unlink()
        os.symlink("/etc/passwd", sheet)  # planted after the build: the record says otherwise
        user = next(t.task for t in manifest_of(root).targets if SHEET in t.depends_on)
        alone = doit(root, "-s", user, env=env)  # -s: the sheet is not brought back first; the request is refused
        assert alone.returncode != 0 and "is a symbolic link that leads out of the asset folder" in alone.stdout, \
            alone.stdout + alone.stderr
        frames = doit(root, "image", env=env)
        sent = [data for call in fake.image_calls() for _, data in call.inline_images]
    assert b"root:" not in b"".join(sent)  # /etc/passwd never left the machine
    recorded = {r.output_sha256 for r in records_of(root).values()}
    for data in sent:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
        assert hashlib.sha256(data).hexdigest() in recorded  # every reference is a file a record vouches for
    assert frames.returncode == 0, frames.stdout + frames.stderr  # the sheet was restored from its object first


def test_a_reference_rewritten_in_place_is_checked_again_even_with_its_old_size_and_time(tmp_path: Path,
                                                                                        monkeypatch) -> None:  # noqa: ANN001
    from storytree_build.building.requests import RequestFactory
    from storytree_build.core.errors import InputError
    from support.project import run_doit

    root = import_story(new_project(tmp_path / "project"))
    monkeypatch.setenv("STORYTREE_ROOT", str(root))
    monkeypatch.setenv("STORYTREE_STATE_DIR", str(root / ".storytree"))
    assert run_doit(root, "ref", "provider=stub").code == 0
    manifest = manifest_of(root)
    user = next(t for t in manifest.targets if SHEET in t.depends_on)
    factory = RequestFactory(root, root / ASSETS, lambda: None, lambda: None, 8)  # type: ignore[arg-type, return-value]
    assert factory.references(user)  # checked (decoded) and found valid: remembered for this run
    sheet = root / ASSETS / manifest.by_task()[SHEET].output
    before = os.stat(sheet)
    sheet.write_bytes(b"\0" * before.st_size)  # garbage of the same length, in place (same inode)
    os.utime(sheet, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old modification time
    with pytest.raises(InputError, match="not sent and nothing is paid"):
        factory.references(user)


# -- journals ---------------------------------------------------------------------------------------------------
def journal_of(root: Path) -> Path:
    return root / ".storytree" / f"moves-{SAMPLE_ID}.json"


def test_a_planted_journal_with_an_outside_old_output_moves_nothing(stub_built: Path, tmp_path: Path):
    root = tmp_path / "project"
    shutil.copytree(stub_built, root)
    outside = tmp_path / "outside" / "secret.txt"
    outside.parent.mkdir()
    outside.write_text("keep me where I am")
    frame = next(t for t in manifest_of(root).targets if t.kind == "key_frame")
    relative = os.path.relpath(outside, root / ASSETS)
    journal_of(root).write_text(json.dumps([{"old_task": "image:scenelet-9_9", "new_task": frame.task,
                                             "old_output": relative, "new_output": frame.output}]))
    plan = doit(root, "dryrun", STORY, "provider=stub")
    assert "J the rename journal of an interrupted build will be set aside: it names paths outside the asset folder" \
        in plan.stdout
    before = {t: r.output_sha256 for t, r in records_of(root).items()}
    calls = tmp_path / "calls.log"
    run = doit(root, STORY, "provider=stub", env=project_env(root, STORYTREE_STUB_CALL_LOG=str(calls)))
    assert run.returncode == 0, run.stdout + run.stderr
    assert outside.read_text() == "keep me where I am"  # untouched
    assert not calls.exists()  # 0 paid calls
    assert not journal_of(root).exists() and list(journal_of(root).parent.glob(f"{journal_of(root).name}.stale-*"))
    assert {t: r.output_sha256 for t, r in records_of(root).items()} == before


def test_a_journal_moving_one_shots_key_frame_over_anothers_is_set_aside(stub_built: Path, tmp_path: Path):
    root = tmp_path / "project"
    shutil.copytree(stub_built, root)
    frames = [t for t in manifest_of(root).targets if t.kind == "key_frame"]
    first, second = frames[0], frames[1]
    files = {t.task: hashlib.sha256((root / ASSETS / t.output).read_bytes()).hexdigest() for t in frames}
    journal_of(root).write_text(json.dumps([{"old_task": first.task, "new_task": second.task,
                                             "old_output": first.output, "new_output": second.output}]))
    calls = tmp_path / "calls.log"
    run = doit(root, STORY, "provider=stub", env=project_env(root, STORYTREE_STUB_CALL_LOG=str(calls)))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "set aside the rename journal" in run.stderr and "its moves are not what the records say" in run.stderr
    assert not calls.exists()
    assert {t.task: hashlib.sha256((root / ASSETS / t.output).read_bytes()).hexdigest() for t in frames} == files


# -- writes stay inside the asset folder ----------------------------------------------------------------------------
def test_a_folder_link_out_of_the_asset_folder_is_never_written_through(tmp_path: Path):
    root = import_story(new_project(tmp_path / "project"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    story_folder = root / ASSETS / SAMPLE_ID
    story_folder.mkdir(parents=True, exist_ok=True)
    os.symlink(elsewhere, story_folder / "visuals")
    calls = tmp_path / "calls.log"
    run = doit(root, "--continue", "ref", "provider=stub", env=project_env(root, STORYTREE_STUB_CALL_LOG=str(calls)))
    output = run.stdout + run.stderr
    assert run.returncode != 0 and "leads out of the asset folder" in output and "Traceback" not in output
    assert not calls.exists()  # refused before paying
    assert not any(elsewhere.rglob("*"))  # nothing written outside, not even a probe or a temp file
