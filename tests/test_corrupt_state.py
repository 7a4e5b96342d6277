"""Corrupt caches and unreadable rows are ordinary situations: a cache that cannot be read (the rate limiter's
`rate-limits.sqlite`, doit's `doit.sqlite`) is set aside with one line naming it and built again; a claim, operation
or record row that cannot be parsed is reported with the command that clears it, in the build and in the dry-run.
Never a traceback, nothing paid twice."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

import pytest

from storytree_build.core.errors import EnvironmentFault
from storytree_build.providers.rate_limit import RateLimiter
from support.fakes.gemini_server import FakeGemini
from support.project import CONSENT_VAR, SAMPLE_ID, doit, import_story, new_project, project_env, records_of, run_doit, story_db
from test_gemini_images import KEY, PLATE, assert_clean_failure, write_config

MODEL = "gemini-3.1-flash-image"
OTHER = "ref:character.wren-quillfeather.character-action-shot-1"


def garbage(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a database, just bytes\n" * 200)


def truncated(path: Path) -> None:
    """A real SQLite file cut in half (a crash or a full disk while it was copied)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("create table models (model text primary key, rate real)")
        conn.executemany("insert into models values (?, ?)", [(f"m{i}" + "x" * 200, 1.0) for i in range(400)])
    conn.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {"garbage": garbage, "truncated": truncated}


@pytest.fixture(scope="module")
def unbuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = new_project(tmp_path_factory.mktemp("corrupt") / "project")
    write_config(root)
    return import_story(root)


@pytest.fixture
def root(unbuilt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(unbuilt, copy)
    monkeypatch.setenv("STORYTREE_ROOT", str(copy))
    monkeypatch.setenv("STORYTREE_STATE_DIR", str(copy / ".storytree"))
    monkeypatch.chdir(copy)
    return copy


@pytest.fixture
def fake(root: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGemini:
    with FakeGemini() as server:
        monkeypatch.setenv("GEMINI_API_KEY", KEY)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.url)
        monkeypatch.setenv(*CONSENT_VAR)
        monkeypatch.delenv("CI", raising=False)
        yield server


def set_aside_files(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f"{name}.corrupt-*"))


def sql(root: Path, statement: str, *params: object) -> None:
    conn = sqlite3.connect(story_db(root))
    try:
        with conn:
            conn.execute(statement, params)
    finally:
        conn.close()


# -- the rate limiter's cache ------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_corrupt_rate_limit_cache_is_set_aside_and_the_build_goes_on(root: Path, fake: FakeGemini, damage: str):
    cache = root / ".storytree" / "rate-limits.sqlite"
    DAMAGE[damage](cache)
    run = run_doit(root, PLATE)
    assert run.code == 0, run.output
    assert len(fake.image_calls()) == 1  # paid once, kept
    [aside] = set_aside_files(cache.parent, "rate-limits.sqlite")
    assert f"the rate-limit cache {cache} could not be read" in run.output and aside.name in run.output
    assert run.output.count("set aside as") == 1 and "Traceback" not in run.output
    with sqlite3.connect(cache) as conn:  # learnt again, in a new file
        assert conn.execute("select count(*) from models").fetchone() == (1,)
    conn.close()
    again = run_doit(root, OTHER)
    assert again.code == 0 and "set aside" not in again.output


def test_the_rate_limiter_sets_a_corrupt_file_aside_once_for_all_threads(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    import threading

    cache = tmp_path / "rate-limits.sqlite"
    garbage(cache)
    limiter = RateLimiter(cache, initial_rate_per_minute=6000)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            limiter.acquire(MODEL, "t")
            limiter.succeeded(MODEL)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    with caplog.at_level(logging.WARNING, logger="storytree"):
        threads = [threading.Thread(target=call) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    limiter.close()
    assert errors == []
    assert len(set_aside_files(tmp_path, "rate-limits.sqlite")) == 1
    assert caplog.text.count("set aside as") == 1


def test_bookkeeping_after_an_answered_call_never_fails_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """The answer was paid for: a cache that breaks afterwards is a warning, never a lost (and re-paid) result."""
    limiter = RateLimiter(tmp_path / "rate-limits.sqlite")
    limiter.acquire(MODEL, "t")

    def broken(model: str):  # noqa: ANN202
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(limiter, "_transaction", broken)
    with caplog.at_level(logging.WARNING, logger="storytree"):
        limiter.succeeded(MODEL)
    assert "the answer is kept" in caplog.text and "rate-limits.sqlite" in caplog.text
    with pytest.raises(EnvironmentFault, match="rate-limit cache .* cannot be used .*nothing was sent"):
        limiter.acquire(MODEL, "t")  # before a call: the call is not made, and says why
    limiter.close()


# -- doit's database ----------------------------------------------------------------------------------------------
def bad_json_row(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("create table doit (task_id text not null primary key, task_data json)")
        conn.execute("insert into doit values (?, ?)", (PLATE, "{not json"))
    conn.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "bad_json_row"])
def test_a_corrupt_doit_database_is_set_aside_and_the_build_goes_on(root: Path, damage: str) -> None:
    database = root / ".storytree" / "doit.sqlite"
    {**DAMAGE, "bad_json_row": bad_json_row}[damage](database)
    run = doit(root, PLATE, "provider=stub", env=project_env(root))  # a real process: what the user sees
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Traceback" not in output and f"doit's database {database} could not be read" in output
    [aside] = set_aside_files(database.parent, "doit.sqlite")
    assert aside.name in output and PLATE in records_of(root)
    again = doit(root, PLATE, "provider=stub", env=project_env(root))
    assert again.returncode == 0 and "set aside" not in again.stdout + again.stderr
    assert "1 up to date" in again.stdout


# -- rows of the story store -------------------------------------------------------------------------------------
@pytest.mark.parametrize("claimed_at, expires_at", [("garbage", "not-a-time"),
                                                    ("2026-12-03T10:00:00+00:00", "2026-12-03T10:02:00")])  # no zone
def test_an_unreadable_claim_names_the_command_that_clears_it(root: Path, fake: FakeGemini,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              claimed_at: str, expires_at: str) -> None:
    sql(root, "insert into storytree_claims values (?,?,?,?,?)", SAMPLE_ID, PLATE, "elsewhere:/project (pid 4242)",
        claimed_at, expires_at)
    release = f"`storytree release {SAMPLE_ID} {PLATE}`"
    dry = run_doit(root, "dryrun", PLATE, OTHER)
    assert dry.code == 0, dry.output
    assert release in dry.output and "cannot be read" in dry.output and "Traceback" not in dry.output

    run = run_doit(root, "--continue", PLATE, OTHER)
    assert_clean_failure(root, PLATE, run)
    assert release in run.output and "nothing is paid for it here" in run.output
    assert "bug in storytree" not in run.output and "Traceback" not in run.output
    assert [call.text for call in fake.image_calls()] and OTHER in records_of(root)  # the rest goes on
    assert len(fake.image_calls()) == 1  # only the other target was paid for

    from support.project import storytree
    assert storytree(root, "release", SAMPLE_ID, PLATE, monkeypatch=monkeypatch) == 0
    assert run_doit(root, PLATE).code == 0 and len(fake.image_calls()) == 2


def test_an_unreadable_operation_names_the_command_that_clears_it(root: Path) -> None:
    video = "video:scenelet-1_1"
    sql(root, "insert into storytree_operations (story_id, task, signature, provider, model, state, operation, "
              "submitted_at) values (?,?,?,?,?,?,?,?)", SAMPLE_ID, video, "s", "stub", "m", "submitted", "op-1",
        "yesterday")
    for run in (run_doit(root, "dryrun", video, "provider=stub"), run_doit(root, video, "provider=stub")):
        assert run.code != 0
        assert f"`storytree resubmit {SAMPLE_ID} {video}` clears it" in run.output
        assert "'yesterday' is not a time" in run.output and "Traceback" not in run.output
        assert "bug in storytree" not in run.output


def test_an_unreadable_record_names_the_row_and_how_to_clear_it(root: Path) -> None:
    assert run_doit(root, PLATE, "provider=stub").code == 0
    sql(root, "update storytree_records set inputs = '{not json' where task = ?", PLATE)
    for run in (run_doit(root, "dryrun", PLATE, "provider=stub"), run_doit(root, PLATE, "provider=stub")):
        assert run.code != 0
        assert f"the record row of {PLATE} cannot be read" in run.output
        assert f"delete from storytree_records where story_id = '{SAMPLE_ID}' and task = '{PLATE}'" in run.output
        assert "Traceback" not in run.output and "bug in storytree" not in run.output
