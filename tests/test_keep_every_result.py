"""Every paid result kept (one clone): a deleted or damaged file comes back for free and nothing downstream is rebuilt;
a retouched file is kept as an edited version; `-a` keeps the previous version and `storytree restore` brings it back;
`storytree pull` fills a fresh clone; `storytree gc` frees only what nothing needs."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from support.project import (ASSETS, SAMPLE_ID, doit, import_story, manifest_of, new_project, project_env, records_of,
                             records_port, storytree)

STORY = f"story:{SAMPLE_ID}"
SHEET = "ref:character.wren-quillfeather.character-model-sheet-1"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = import_story(new_project(tmp_path_factory.mktemp("keep") / "project"))
    run = doit(root, STORY, "provider=stub")
    assert run.returncode == 0, run.stdout + run.stderr
    return root


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(built, copy)
    return copy


def build(root: Path, *args: str, calls: Path | None = None):  # noqa: ANN201
    env = project_env(root, **({"STORYTREE_STUB_CALL_LOG": str(calls)} if calls else {}))
    return doit(root, *args, STORY if not any(a.startswith(("image:", "ref:", "video:")) for a in args) else "",
                "provider=stub", env=env)


def paid(calls: Path) -> list[str]:
    return calls.read_text().split() if calls.exists() else []


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def asset(root: Path, task: str) -> Path:
    return root / ASSETS / records_of(root)[task].output


def users_of(root: Path, task: str) -> list[str]:
    return [t.task for t in manifest_of(root).targets if task in t.depends_on]


def dryrun(root: Path, *selection: str) -> dict[str, dict]:
    run = doit(root, "dryrun", "--json", *(selection or (STORY,)), "provider=stub")
    assert run.returncode == 0, run.stdout + run.stderr
    return {t["task"]: t for t in json.loads(run.stdout)["targets"]}


def test_a_deleted_model_sheet_comes_back_free_and_nothing_downstream_is_rebuilt(project: Path, tmp_path: Path):
    before = {t: r.output_sha256 for t, r in records_of(project).items()}
    sheet = asset(project, SHEET)
    sheet.unlink()
    plan = dryrun(project)
    assert plan[SHEET]["action"] == "restore" and plan[SHEET]["cost"] == 0.0
    assert plan[SHEET]["reason"] == "file missing: will be restored from the local objects (no cost)"
    assert all(plan[t]["action"] == "skip" for t in users_of(project, SHEET))  # the key frames stay current
    calls = tmp_path / "calls.log"
    run = build(project, calls=calls)
    assert run.returncode == 0, run.stdout + run.stderr
    assert paid(calls) == [] and "1 restored" in run.stdout
    assert sha(sheet) == before[SHEET]
    assert {t: r.output_sha256 for t, r in records_of(project).items()} == before


@pytest.mark.parametrize("garbage", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"])
def test_a_key_frame_overwritten_with_bytes_that_are_no_image_comes_back_free(project: Path, tmp_path: Path,
                                                                               garbage: bytes):
    frame = next(t.task for t in manifest_of(project).targets if t.kind == "key_frame")
    path = asset(project, frame)
    recorded = records_of(project)[frame].output_sha256
    path.write_bytes(garbage)
    assert dryrun(project, frame)[frame]["reason"].startswith("file damaged (")
    calls = tmp_path / "calls.log"
    run = build(project, calls=calls)
    assert run.returncode == 0 and paid(calls) == [], run.stdout + run.stderr
    assert sha(path) == recorded
    assert "1 restored" in run.stdout  # its video, which uses it, was not rebuilt


def retouched(path: Path) -> bytes:
    with Image.open(path) as image:
        edited = image.convert("RGB")
    edited.putpixel((5, 5), (255, 0, 255))
    buffer = io.BytesIO()
    edited.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_retouched_sheet_is_kept_as_an_edited_version_and_what_uses_it_goes_out_of_date(project: Path,
                                                                                           tmp_path: Path,
                                                                                           monkeypatch):  # noqa: ANN001
    sheet = asset(project, SHEET)
    original = sha(sheet)
    sheet.write_bytes(retouched(sheet))
    edited = sha(sheet)
    plan = dryrun(project)
    assert plan[SHEET]["action"] == "record" and plan[SHEET]["cost"] == 0.0 and "edited by hand" in plan[SHEET]["reason"]
    users = users_of(project, SHEET)
    assert users and all(plan[t]["action"] == "run" for t in users)  # ... and says what it puts out of date
    calls = tmp_path / "calls.log"
    run = build(project, calls=calls)
    assert run.returncode == 0, run.stdout + run.stderr
    assert SHEET not in paid(calls) and sha(sheet) == edited  # never overwritten
    assert set(users) <= set(paid(calls))
    record = records_of(project)[SHEET]
    assert (record.origin, record.output_sha256, record.version) == ("edited", edited, 2)
    monkeypatch.chdir(project)
    assert storytree(project, "history", SAMPLE_ID, SHEET, monkeypatch=monkeypatch) == 0
    # and `storytree restore` goes back to the generated sheet (free)
    assert storytree(project, "restore", SAMPLE_ID, SHEET, "1", monkeypatch=monkeypatch) == 0
    assert sha(sheet) == original and records_of(project)[SHEET].version == 3


def test_an_override_keeps_the_previous_version_and_restore_brings_it_back_free(project: Path, tmp_path: Path,
                                                                               monkeypatch):  # noqa: ANN001
    frame = next(t.task for t in manifest_of(project).targets if t.kind == "key_frame")
    path = asset(project, frame)
    first = sha(path)
    calls = tmp_path / "calls.log"
    forced = doit(project, "-a", frame, "provider=stub", env=project_env(project, STORYTREE_STUB_CALL_LOG=str(calls)))
    assert forced.returncode == 0 and paid(calls) == [frame], forced.stdout + forced.stderr
    second = sha(path)
    assert second != first
    monkeypatch.chdir(project)
    assert storytree(project, "restore", SAMPLE_ID, frame, "1", monkeypatch=monkeypatch) == 0
    assert sha(path) == first and paid(calls) == [frame]  # the restore called no provider
    record = records_of(project)[frame]
    assert (record.output_sha256, record.origin) == (first, "restored")
    assert storytree(project, "restore", SAMPLE_ID, frame, second[:8], monkeypatch=monkeypatch) == 0
    assert sha(path) == second and paid(calls) == [frame]


def test_restoring_a_version_made_from_other_inputs_needs_keep(project: Path, sample_export: dict, monkeypatch):  # noqa: ANN001
    frame = next(t.task for t in manifest_of(project).targets if t.kind == "key_frame")
    assert doit(project, "-a", frame, "provider=stub").returncode == 0
    monkeypatch.chdir(project)
    # a manifest whose prompts differ: version 1 no longer fits (its inputs are those of the old prompt)
    manifest = project / "manifests" / f"{SAMPLE_ID}.yaml"
    target = next(t for t in manifest_of(project).targets if t.task == frame)
    manifest.write_text(manifest.read_text().replace(target.prompt_sha256, "f" * 64))
    assert storytree(project, "restore", SAMPLE_ID, frame, "1", monkeypatch=monkeypatch) != 0
    assert records_of(project)[frame].version == 2  # nothing changed
    assert storytree(project, "restore", SAMPLE_ID, frame, "1", "--keep", monkeypatch=monkeypatch) == 0
    assert records_of(project)[frame].origin == "restored"


def test_pull_into_a_fresh_clone_yields_the_whole_asset_tree_without_paying(project: Path, tmp_path: Path,
                                                                           monkeypatch):  # noqa: ANN001
    remote = tmp_path / "team-objects"
    (project / "storytree.toml").write_text(f'[remote]\nurl = "file://{remote}"\n')
    monkeypatch.chdir(project)
    assert storytree(project, "push", SAMPLE_ID, monkeypatch=monkeypatch) == 0  # built before the remote was set
    assert all(r.pushed_to == f"file://{remote}" for r in records_of(project).values())
    files = {p.relative_to(project / ASSETS): sha(p) for p in (project / ASSETS).rglob("*") if p.is_file()}

    clone = tmp_path / "clone"
    shutil.copytree(project, clone, ignore=shutil.ignore_patterns("generated", ".storytree", "objects"))
    (clone / ASSETS).mkdir(parents=True, exist_ok=True)
    assert not any((clone / ASSETS).rglob("*.png"))
    monkeypatch.chdir(clone)
    assert storytree(clone, "pull", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    assert {p.relative_to(clone / ASSETS): sha(p) for p in (clone / ASSETS).rglob("*") if p.is_file()} == files
    calls = tmp_path / "calls.log"
    again = build(clone, calls=calls)
    assert again.returncode == 0 and paid(calls) == [] and "0 built" in again.stdout, again.stdout + again.stderr


def test_gc_frees_only_what_no_current_file_and_no_kept_version_needs(project: Path, monkeypatch,  # noqa: ANN001
                                                                     capsys: pytest.CaptureFixture[str]):
    frame = next(t.task for t in manifest_of(project).targets if t.kind == "key_frame")
    (project / "storytree.toml").write_text("[objects]\nkeep_versions = 1\n")
    versions = []
    for _ in range(3):  # three forced rebuilds: versions 1, 2, 3 kept, version 4 current
        versions.append(sha(asset(project, frame)))
        assert doit(project, "-a", frame, "provider=stub").returncode == 0
    objects = project / ".storytree-data" / "objects" / "sha256"
    stored = {p.parent.name + p.name for p in objects.rglob("*") if p.is_file()}
    assert set(versions) <= stored
    monkeypatch.chdir(project)
    assert storytree(project, "gc", "--dry-run", monkeypatch=monkeypatch) == 0
    assert "would free 2 local object(s)" in capsys.readouterr().err
    assert {p.parent.name + p.name for p in objects.rglob("*") if p.is_file()} == stored  # a dry run frees nothing
    assert storytree(project, "gc", monkeypatch=monkeypatch) == 0
    left = {p.parent.name + p.name for p in objects.rglob("*") if p.is_file()}
    assert versions[0] not in left and versions[1] not in left and versions[2] in left  # the newest kept version
    assert all(r.output_sha256 in left for r in records_of(project).values())  # every current file


def test_a_file_with_no_copy_anywhere_is_blocked_naming_its_path_sha_and_the_fix(project: Path, tmp_path: Path):
    frame = next(t for t in manifest_of(project).targets if t.kind == "key_frame")
    # built by this checkout (the copied project's records name the folder it was built in: "built elsewhere")
    assert doit(project, "-a", frame.task, "provider=stub").returncode == 0
    recorded = records_of(project)[frame.task].output_sha256
    (project / ASSETS / frame.output).unlink()
    shutil.rmtree(project / ".storytree-data" / "objects")  # and no remote is set: no copy anywhere
    shown = f"{ASSETS.as_posix()}/{frame.output}"  # relative to the project: where a person finds it
    said = (f"{shown} missing and no copy of {recorded[:12]}… is kept (not in the local objects, not on a remote): "
            f"`doit -a {frame.task}` pays for a new one")
    plan = doit(project, "dryrun", frame.task, "provider=stub")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert f"X {frame.task}  [{said}]" in plan.stdout
    assert "blocked: 1 recorded file(s) gone with no copy kept" in plan.stdout
    assert dryrun(project, frame.task)[frame.task]["action"] == "blocked"
    calls = tmp_path / "calls.log"
    run = build(project, calls=calls)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output  # ExitCode.FAILED: a target could not be built
    assert paid(calls) == [] and "Traceback" not in output  # never paid for on its own
    assert f"{frame.task}: {said}; nothing was paid." in output
    assert not (project / ASSETS / frame.output).exists() and records_of(project)[frame.task].output_sha256 == recorded


def test_an_adopted_file_enters_the_object_store_and_comes_back_free(project: Path, tmp_path: Path):
    from test_pay_once import original_system_layout

    original_system_layout(project)  # files the original system made, no records
    objects = project / ".storytree-data" / "objects"
    shutil.rmtree(objects)  # nothing kept yet: whatever is kept after this is what the adoption put there
    calls = tmp_path / "calls.log"
    adopted = build(project, calls=calls)
    assert adopted.returncode == 0 and "36 adopted" in adopted.stdout, adopted.stdout + adopted.stderr
    path = asset(project, SHEET)
    recorded = records_of(project)[SHEET].output_sha256
    assert sha(path) == recorded and (objects / "sha256" / recorded[:2] / recorded[2:]).is_file()
    path.unlink()
    assert dryrun(project)[SHEET]["reason"] == "file missing: will be restored from the local objects (no cost)"
    again = build(project, calls=calls)
    assert again.returncode == 0 and "1 restored" in again.stdout, again.stdout + again.stderr
    assert paid(calls) == [] and sha(path) == recorded


def remote_objects(folder: Path) -> dict[str, int]:
    """sha256 → size of every object in a file:// remote (the local layout: sha256/ab/cdef…)."""
    return {p.parent.name + p.name: p.stat().st_size for p in (folder / "sha256").rglob("*") if p.is_file()}


def test_history_lists_the_current_file_and_each_earlier_version(project: Path, monkeypatch,  # noqa: ANN001
                                                                capsys: pytest.CaptureFixture[str]):
    frame = next(t.task for t in manifest_of(project).targets if t.kind == "key_frame")
    for _ in range(2):
        assert doit(project, "-a", frame, "provider=stub").returncode == 0
    monkeypatch.chdir(project)
    capsys.readouterr()
    assert storytree(project, "history", SAMPLE_ID, frame, monkeypatch=monkeypatch) == 0
    out, err = capsys.readouterr()
    current = records_of(project)[frame]
    port = records_port(project)
    try:
        earlier = port.versions(SAMPLE_ID).all(frame)
    finally:
        port.close()
    assert [v.version for v in earlier] == [2, 1] and current.version == 3  # newest first
    def line(mark: str, record) -> str:  # noqa: ANN001
        return (f"{mark} {record.version:>3}  {record.output_sha256[:12]}  {record.built_at}  {record.origin} by "
                f"{record.built_by} with stub {record.model}, {record.cost:.2f} USD")
    assert out.splitlines() == [line("*", current), *(line(" ", v.record) for v in earlier)]
    assert len({current.output_sha256, *(v.output_sha256 for v in earlier)}) == 3  # three different files
    assert earlier[-1].record.origin == "built" and current.origin == "built"
    assert f"3 version(s); `storytree restore {SAMPLE_ID} {frame} <version>` makes one current again (free)" in err


def test_gc_remote_frees_only_what_nothing_needs_after_a_yes(project: Path, tmp_path: Path, monkeypatch,  # noqa: ANN001
                                                            capsys: pytest.CaptureFixture[str]):
    remote = tmp_path / "team-objects"
    (project / "storytree.toml").write_text(f'[objects]\nkeep_versions = 1\n\n[remote]\nurl = "file://{remote}"\n')
    frame = next(t.task for t in manifest_of(project).targets if t.kind == "key_frame")
    versions = []
    for _ in range(3):  # versions 1, 2, 3 kept, version 4 current; each new one uploaded as it is made
        versions.append(sha(asset(project, frame)))
        assert doit(project, "-a", frame, "provider=stub").returncode == 0
    monkeypatch.chdir(project)
    assert storytree(project, "push", SAMPLE_ID, monkeypatch=monkeypatch) == 0  # the rest, built before the remote
    stray = b"an object no story of this store needs (a teammate's, or left by a crash before its record)"
    stray_sha = hashlib.sha256(stray).hexdigest()
    (remote / "sha256" / stray_sha[:2]).mkdir(parents=True, exist_ok=True)
    (remote / "sha256" / stray_sha[:2] / stray_sha[2:]).write_bytes(stray)
    before = remote_objects(remote)
    current = {r.output_sha256 for r in records_of(project).values()}
    assert current | set(versions) | {stray_sha} <= set(before)
    garbage = {versions[0], versions[1], stray_sha}  # no current file, not the newest kept version
    megabytes = f"{sum(before[s] for s in garbage) / 2**20:.1f} MB"
    capsys.readouterr()

    assert storytree(project, "gc", "--remote", "--dry-run", monkeypatch=monkeypatch) == 0
    err = capsys.readouterr().err
    assert "gc: would free 2 local object(s)" in err
    assert f"gc: the remote file://{remote} holds 3 object(s) nothing needs ({megabytes})" in err
    assert remote_objects(remote) == before  # a dry run deletes nothing

    # without --yes and no terminal to ask at: refused, nothing deleted
    assert storytree(project, "gc", "--remote", monkeypatch=monkeypatch) == 1
    assert "needs a yes: answer at a terminal, or add --yes" in capsys.readouterr().err
    assert remote_objects(remote) == before

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))  # asked, and the answer is no
    assert storytree(project, "gc", "--remote", monkeypatch=monkeypatch) == 0
    assert "gc: nothing deleted on the remote" in capsys.readouterr().err
    assert remote_objects(remote) == before

    assert storytree(project, "gc", "--remote", "--yes", monkeypatch=monkeypatch) == 0
    err = capsys.readouterr().err
    assert "gc: deleted 3 object(s) on the remote" in err
    left = remote_objects(remote)
    assert set(left) == set(before) - garbage
    assert current <= set(left) and versions[2] in left  # every current file and the newest kept version stay
    assert storytree(project, "gc", "--remote", "--dry-run", monkeypatch=monkeypatch) == 0
    assert "holds 0 object(s) nothing needs" in capsys.readouterr().err
