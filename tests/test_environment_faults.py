"""Environment faults are ordinary user situations: a read-only asset folder, a full disk, a state folder that cannot
take records, a write that fails after the call was paid. Nothing is paid that cannot be kept; every failure is
counted with its reason; no traceback."""

from __future__ import annotations

import errno
import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from storytree_build.store.sqlite_records import SqliteBuildState as RecordStore
from support.mounts import read_only, tmpfs
from support.project import ASSETS, SAMPLE_ID, doit, import_story, new_project, project_env, run_doit, story_db

REF = "ref:environment.thunderpot-gorge.keyframe_1"


@pytest.fixture(scope="module")
def unbuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_story(new_project(tmp_path_factory.mktemp("faults") / "project"))


@pytest.fixture
def root(unbuilt: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(unbuilt, copy)
    return copy


def fill(path: Path) -> None:
    """Write until the file system says it is full."""
    with open(path, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def calls(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def stub_env(root: Path, log: Path) -> dict[str, str]:
    return project_env(root, STORYTREE_STUB_CALL_LOG=str(log))


def records(root: Path) -> dict:
    return RecordStore(story_db(root)).records(SAMPLE_ID).all()


def assert_refused_unpaid(result, log: Path, expected_failures: int, fragment: str) -> None:  # noqa: ANN001
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert calls(log) == []
    assert f"{expected_failures} failed" in result.stdout, out
    assert "not started, nothing was paid" in out and fragment in out
    assert "Traceback" not in out


@pytest.mark.parametrize("how", ["file-in-the-way", "read-only-mount"])
def test_an_unwritable_asset_folder_is_refused_before_paying(root: Path, tmp_path: Path, how: str) -> None:
    log = tmp_path / "calls.log"
    generated = root / ASSETS
    if how == "file-in-the-way":
        (generated / SAMPLE_ID).write_text("not a folder")
        result = doit(root, "--continue", "ref", "provider=stub", env=stub_env(root, log))
        assert_refused_unpaid(result, log, 12, str(generated / SAMPLE_ID))
    else:
        with read_only(generated):
            result = doit(root, "--continue", "ref", "provider=stub", env=stub_env(root, log))
        assert_refused_unpaid(result, log, 12, "Read-only file system")
    assert records(root) == {}


def test_too_little_space_is_refused_before_paying_and_the_rerun_pays_once(root: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    (root / "storytree.toml").write_text('[storage]\nheadroom_mb = 1\nimage_mb = { "*" = 2 }\n')
    generated = root / ASSETS
    with tmpfs(generated, 8 * 1024):
        filler = generated / "filler.bin"
        filler.write_bytes(b"\0" * (6 * 1024 * 1024))  # about 2 MB left: less than one image's bound + headroom
        full = doit(root, "--continue", "ref", "provider=stub", env=stub_env(root, log))
        assert_refused_unpaid(full, log, 12, "MB free")
        filler.unlink()
        again = doit(root, "ref", "provider=stub", env=stub_env(root, log))
        assert again.returncode == 0, again.stdout + again.stderr
        assert sorted(calls(log)) == sorted(set(calls(log))) and len(calls(log)) == 12
        assert len(records(root)) == 12


def test_a_size_bound_over_the_free_space_is_refused(root: Path, tmp_path: Path) -> None:
    """The same refusal without a mount: bounds no disk can hold."""
    log = tmp_path / "calls.log"
    (root / "storytree.toml").write_text('[storage]\nimage_mb = { "*" = 1e12 }\n')
    result = doit(root, "--continue", REF, "provider=stub", env=stub_env(root, log))
    assert_refused_unpaid(result, log, 1, "may need up to")


def test_a_full_data_folder_is_refused_before_paying(root: Path, tmp_path: Path) -> None:
    """The folder of the story database (and the records beside the stories) is full."""
    log = tmp_path / "calls.log"
    data = tmp_path / "data"
    with tmpfs(data, 512):
        shutil.copy(story_db(root), data / "story.sqlite")
        env = {**stub_env(root, log), "STORYTREE_DATA_DIR": str(data)}
        setup = doit(root, "list", env=env)  # the records tables take their place first
        assert setup.returncode == 0, setup.stderr
        fill(data / "filler.bin")
        result = doit(root, "--continue", REF, "provider=stub", env=env)
    out = result.stdout + result.stderr
    assert result.returncode != 0 and calls(log) == []
    assert str(data) in out and "Traceback" not in out


def test_a_result_that_cannot_be_written_is_kept_and_written_later_without_paying(
        root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from storytree_build.objects.local import LocalObjects

    log = tmp_path / "calls.log"
    for name, value in stub_env(root, log).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(root)

    def disk_full(self, sha256: str, dest: Path, **kwargs) -> None:  # noqa: ANN001, ANN003
        raise OSError(errno.ENOSPC, "No space left on device", str(dest))

    with monkeypatch.context() as patch:
        patch.setattr(LocalObjects, "materialize", disk_full)  # the asset folder's disk is full
        failed = run_doit(root, REF, "provider=stub")
    assert failed.code != 0 and calls(log) == [REF]
    assert "the result is kept (object" in failed.output and "No space left on device" in failed.output
    assert "1 failed" in failed.out and "Traceback" not in failed.output
    recorded = records(root)[REF]  # recorded, pointing at its object: the file itself is missing
    assert not (root / ASSETS / recorded.output).exists()

    plan = run_doit(root, "dryrun", REF, "provider=stub")
    assert f"F {REF}  [file missing: will be restored from the local objects (no cost)]" in plan.out
    again = run_doit(root, REF, "provider=stub")
    assert again.code == 0, again.output
    assert calls(log) == [REF]  # written from the object: no second call
    assert "1 restored" in again.out
    assert hashlib.sha256((root / ASSETS / recorded.output).read_bytes()).hexdigest() == recorded.output_sha256
    assert records(root)[REF].published


def test_a_result_an_earlier_version_kept_in_the_recovery_folder_is_written_without_paying(
        root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from storytree_build.building.recovery import Recovery
    from storytree_build.core.status import signature_of
    from support.project import session_for

    session = session_for(root)
    try:
        target = session.target(REF)
        signature = signature_of(session.facts.current_inputs(target))
        data = session.images().generate(session.requests.image(target)).data
    finally:
        session.close()
    Recovery(root / ".storytree-data" / "recovery" / SAMPLE_ID).keep(REF, signature, data)
    log = tmp_path / "calls.log"
    for name, value in stub_env(root, log).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(root)
    again = run_doit(root, REF, "provider=stub")
    assert again.code == 0, again.output
    assert not log.exists() and "1 recovered" in again.out
    assert REF in records(root) and (root / ASSETS / records(root)[REF].output).read_bytes()[:4] == b"\x89PNG"
    assert not list((root / ".storytree-data" / "recovery" / SAMPLE_ID).glob("*"))


def test_a_lost_record_is_recovered_from_the_files_provenance_without_paying(
        root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from storytree_build.store import sqlite_tables
    from storytree_build.store.sqlite_records import SqliteRecords

    log = tmp_path / "calls.log"
    for name, value in stub_env(root, log).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(root)

    def full(self, record, replaced=None) -> None:  # noqa: ANN001
        raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as patch:
        patch.setattr(SqliteRecords, "put", sqlite_tables._guarded(full))  # what the records raise on a full disk
        failed = run_doit(root, REF, "provider=stub")
    assert failed.code != 0 and calls(log) == [REF]
    assert "database or disk is full" in failed.output and "1 failed" in failed.out
    assert "Traceback" not in failed.output
    saved = root / ASSETS / SAMPLE_ID / "visuals/environments/thunderpot-gorge/keyframe_1.png"
    assert saved.is_file() and records(root) == {}

    plan = run_doit(root, "dryrun", REF, "provider=stub")
    assert f"A {REF}  [saved earlier but not recorded" in plan.out
    again = run_doit(root, REF, "provider=stub")
    assert again.code == 0, again.output
    assert calls(log) == [REF] and "1 adopted" in again.out
    assert records(root)[REF].published


def test_an_unexpected_error_is_reported_as_a_bug_and_counted(root: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from storytree_build.building.builder import Builder

    monkeypatch.setenv("STORYTREE_ROOT", str(root))
    monkeypatch.setenv("STORYTREE_STATE_DIR", str(root / ".storytree"))
    monkeypatch.chdir(root)

    def broken(self, target):  # noqa: ANN001
        raise KeyError("surprise")

    monkeypatch.setattr(Builder, "_build_image", broken)
    run = run_doit(root, "--continue", REF, "provider=stub")
    assert run.code != 0 and "1 failed" in run.out
    assert "this is a bug in storytree (KeyError" in run.output and "Traceback" in run.output
