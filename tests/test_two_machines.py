"""Two machines, one story store: pay-once across checkouts (openspec change pay-once-across-machines).

"Two machines" are two project folders made by `new_project` — each with its own `.storytree/` state folder, its own
data folder and its own asset folder — sharing one story store: one SQLite file both point at with STORYTREE_DB
("sqlite"), or the throwaway Postgres + PostgREST stack ("supabase"). Machine A imports the sample story into the
shared store once and writes its manifest; machine B gets the committed `manifests/<id>.yaml` as from git.

Every build runs as a real `doit` subprocess (the process boundary a user has); the stub provider appends one line
per paid call to a call log shared by both clones, so the tests count payments across processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from storytree_build.core.exit_codes import ExitCode
from support.processes import dead_pid
from support.project import (
    ASSETS,
    SAMPLE,
    SAMPLE_ID,
    doit,
    manifest_of,
    new_project,
    project_env,
)

STORES = ["sqlite", "supabase"]
REMOTE_OWNER = "otherhost:/somewhere (pid 1)"  # a claim owner on another machine: never judged dead from here
VIDEO = "video:scenelet-1_1"
FAILED = re.compile(r"^\s+failed (?P<task>\S+): (?P<reason>.*)$", re.MULTILINE)


@dataclass
class Clone:
    name: str
    root: Path
    store_env: dict[str, str]

    @property
    def checkout(self) -> str:
        """How storytree names this checkout in records and claims (bootstrap.Session)."""
        return f"{socket.gethostname()}:{self.root.resolve()}"

    @property
    def assets(self) -> Path:
        return self.root / ASSETS

    def env(self, **extra: str) -> dict[str, str]:
        return project_env(self.root, **self.store_env, **extra)


@dataclass
class Machines:
    store: str
    a: Clone
    b: Clone
    call_log: Path

    def calls(self) -> list[str]:
        return self.call_log.read_text().splitlines() if self.call_log.exists() else []

    def doit(self, clone: Clone, *args: str, wait: bool = True, **extra: str):
        """`doit ARGS` in the clone, the stub's call log shared by both clones."""
        env = clone.env(STORYTREE_STUB_CALL_LOG=str(self.call_log), **extra)
        return doit(clone.root, *args, env=env, wait=wait, timeout=60)

    def cli(self, clone: Clone, *args: str) -> subprocess.CompletedProcess:
        """`storytree ARGS` in the clone (a subprocess: the store environment is the clone's alone)."""
        return subprocess.run([sys.executable, "-m", "storytree_build.cli", *args], cwd=clone.root,
                              env=clone.env(), text=True, capture_output=True, timeout=60, check=False)

    @contextmanager
    def records(self, clone: Clone | None = None):
        """The build state of the shared store, as storytree opens it."""
        from storytree_build.bootstrap import Workspace
        from storytree_build.settings import load_settings

        clone = clone or self.a
        workspace = Workspace(load_settings(root=clone.root, env=clone.env()))
        try:
            yield workspace.state()
        finally:
            workspace.close()


@pytest.fixture(params=STORES)
def machines(request: pytest.FixtureRequest, tmp_path: Path) -> Machines:
    return _machines(request.param, request, tmp_path)


@pytest.fixture
def sqlite_machines(request: pytest.FixtureRequest, tmp_path: Path) -> Machines:
    return _machines("sqlite", request, tmp_path)


def _machines(store: str, request: pytest.FixtureRequest, tmp_path: Path) -> Machines:
    if store == "supabase":
        stack = request.getfixturevalue("supabase_stack")
        stack.reset()  # no stories, hence (on delete cascade) no records, operations or claims
        store_env = stack.env()
    else:
        shared = tmp_path / "shared-store"
        shared.mkdir()
        store_env = {"STORYTREE_DB": str(shared / "story.sqlite")}
    m = Machines(store, Clone("A", new_project(tmp_path / "machine-a" / "project"), store_env),
                 Clone("B", new_project(tmp_path / "machine-b" / "project"), store_env), tmp_path / "calls.log")
    for args in (("import", str(SAMPLE)), ("manifest", SAMPLE_ID)):
        done = m.cli(m.a, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    # The manifest is committed: machine B has it from git, not from its own `storytree manifest`.
    manifest = Path("manifests") / f"{SAMPLE_ID}.yaml"
    shutil.copy(m.a.root / manifest, m.b.root / manifest)
    if store == "sqlite":
        assert not (m.a.root / ".storytree-data" / "story.sqlite").exists()  # the shared file, not a local one
    return m


def all_tasks(clone: Clone) -> list[str]:
    return [t.task for t in manifest_of(clone.root).targets]


def output_of(run) -> str:
    return run.stdout + run.stderr


def failures(output: str) -> dict[str, str]:
    """The closing summary's `failed <task>: <reason>` lines."""
    return {m["task"]: m["reason"] for m in FAILED.finditer(output)}


def dryrun_items(m: Machines, clone: Clone, *selection: str) -> dict[str, dict]:
    run = m.doit(clone, "dryrun", "--json", *selection, "provider=stub")
    assert run.returncode == 0, output_of(run)
    return {item["task"]: item for item in json.loads(run.stdout)["targets"]}


def sync_assets(source: Clone, destination: Clone) -> None:
    """What "sync the asset folder" means: copy the generated files across (git-lfs, rsync, a shared drive)."""
    shutil.copytree(source.assets, destination.assets, dirs_exist_ok=True)


def first_reference(clone: Clone) -> str:
    return next(t.task for t in manifest_of(clone.root).targets if t.kind == "character_plate")


# -- 1. two clones, four workers each, at the same moment -------------------------------------------
def test_two_clones_building_at_once_pay_for_every_target_exactly_once(machines: Machines):
    m, tasks = machines, all_tasks(machines.a)
    assert len(tasks) == 36
    rounds = 0
    while True:
        rounds += 1
        runs = [m.doit(clone, "-j", "4", "--continue", f"story:{SAMPLE_ID}", "provider=stub",
                       wait=False, STORYTREE_STUB_DELAY="0.05") for clone in (m.a, m.b)]
        outputs = {}
        for clone, run in zip((m.a, m.b), runs):
            out, err = run.communicate(timeout=120)
            outputs[clone.name] = (run.returncode, out + err)
        paid = Counter(m.calls())
        assert not [task for task, n in paid.items() if n > 1], f"paid twice: {paid}\n{outputs}"
        for clone, other in ((m.a, m.b), (m.b, m.a)):
            code, output = outputs[clone.name]
            assert "Traceback" not in output, output
            # A target the other clone holds or has built is reported, never paid for again here; the targets that
            # need it are left for a later build (doit's UnmetDependency), never sent with a reference missing.
            for task, reason in failures(output).items():
                assert reason.startswith((f"{task}: being built by {other.checkout} (pid ",
                                          f"{task}: built elsewhere by {other.checkout} at ")), (task, reason, output)
            assert code == 0 or failures(output), output
        if all(code == 0 for code, _ in outputs.values()):
            break
        assert rounds < 8, outputs
        # What the failures ask for: sync the asset folders, then build again (both clones at once again).
        sync_assets(m.a, m.b)
        sync_assets(m.b, m.a)
    assert sorted(m.calls()) == sorted(tasks)  # 36 distinct paid calls across both clones and all rounds
    with m.records() as port:
        recorded = port.records(SAMPLE_ID).all()
        assert sorted(recorded) == sorted(tasks)
        assert {r.built_by for r in recorded.values()} <= {m.a.checkout, m.b.checkout}
        assert port.claims(SAMPLE_ID).unexpired() == {}  # every claim was released
        assert port.operations(SAMPLE_ID).all() == {}


# -- 1b. with a shared remote: no syncing by hand, both clones end with every file ----------------------------------
@pytest.fixture(params=["file", "s3"])
def remote_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "file":
        return {"STORYTREE_REMOTE": f"file://{tmp_path / 'team-objects'}"}
    s3 = request.getfixturevalue("s3_server")
    return {"STORYTREE_REMOTE": s3.fresh_url("clones"), **s3.env}


def test_two_clones_with_a_remote_finish_a_shared_story_paying_once(machines: Machines, remote_env: dict[str, str]):
    m, tasks = machines, all_tasks(machines.a)
    for clone in (m.a, m.b):
        clone.store_env.update(remote_env)
    rounds = 0
    while True:
        rounds += 1
        runs = [m.doit(clone, "-j", "4", "--continue", f"story:{SAMPLE_ID}", "provider=stub",
                       wait=False, STORYTREE_STUB_DELAY="0.05") for clone in (m.a, m.b)]
        outputs = {}
        for clone, run in zip((m.a, m.b), runs):
            out, err = run.communicate(timeout=120)
            outputs[clone.name] = (run.returncode, out + err)
        paid = Counter(m.calls())
        assert not [task for task, n in paid.items() if n > 1], f"paid twice: {paid}\n{outputs}"
        for clone, other in ((m.a, m.b), (m.b, m.a)):
            code, output = outputs[clone.name]
            assert "Traceback" not in output, output
            # only what the other clone is building right now is left for the next round; never "sync by hand"
            for task, reason in failures(output).items():
                assert reason.startswith(f"{task}: being built by {other.checkout} (pid "), (task, reason, output)
        if all(code == 0 for code, _ in outputs.values()):
            break
        assert rounds < 4, outputs
    assert sorted(m.calls()) == sorted(tasks)  # one paid call per target, both clones together
    files = [{p.relative_to(clone.assets): p.read_bytes() for p in clone.assets.rglob("*") if p.is_file()}
             for clone in (m.a, m.b)]
    assert len(files[0]) == 36 and files[0] == files[1]  # every asset in both clones, byte-identical
    with m.records() as state:
        assert {r.pushed_to for r in state.records(SAMPLE_ID).all().values()} == {remote_env["STORYTREE_REMOTE"]}


# -- 2. a teammate's build: recorded as built elsewhere, never paid again ---------------------------
def test_a_clone_without_the_files_reports_built_elsewhere_and_pays_nothing(machines: Machines):
    m = machines
    built = m.doit(m.a, f"story:{SAMPLE_ID}", "provider=stub")
    assert built.returncode == 0, output_of(built)
    tasks = all_tasks(m.a)
    assert sorted(m.calls()) == sorted(tasks)
    paid_by_a = len(m.calls())

    assert not any(p.is_file() for p in m.b.assets.rglob("*"))  # machine B has none of the files
    elsewhere = f"built elsewhere by {m.a.checkout} at "
    plan = dryrun_items(m, m.b, f"story:{SAMPLE_ID}")
    assert sorted(plan) == sorted(tasks)
    assert all(item["reason"].startswith(elsewhere) for item in plan.values()), plan

    run = m.doit(m.b, "--continue", f"story:{SAMPLE_ID}", "provider=stub")
    output = output_of(run)
    assert run.returncode != 0, output
    assert len(m.calls()) == paid_by_a, m.calls()[paid_by_a:]  # zero provider calls in B
    failed = failures(output)
    references = [t for t in tasks if t.startswith("ref:")]
    assert references and set(references) <= set(failed), output
    for task, reason in failed.items():
        assert reason.startswith(f"{task}: {elsewhere}"), (task, reason)
    assert "storytree: 0 built" in output, output
    assert not any(p.is_file() for p in m.b.assets.rglob("*"))

    verify = m.cli(m.b, "verify", SAMPLE_ID, "--no-repair", "--provider", "stub")
    assert verify.returncode == ExitCode.CHECK_FOUND_WORK, output_of(verify)
    problems = [line for line in verify.stdout.splitlines() if line.startswith("problem: ")]
    for task in tasks:
        assert any(line.startswith(f"problem: {task} (") and elsewhere in line for line in problems), (task, problems)
    assert len(m.calls()) == paid_by_a


# -- 3. a live claim from another machine, seen and honoured by this one -----------------------------
def test_a_remote_claim_shows_in_the_dry_run_blocks_the_build_and_release_frees_it(machines: Machines):
    m = machines
    task = first_reference(m.b)
    with m.records() as port:
        assert port.claims(SAMPLE_ID).take(task, REMOTE_OWNER, 60) is None  # taken by "otherhost"

    plan = dryrun_items(m, m.b, f"story:{SAMPLE_ID}")
    assert plan[task]["reason"].startswith("being built by otherhost"), plan[task]
    assert not any(item["reason"].startswith("being built by") for t, item in plan.items() if t != task)

    blocked = m.doit(m.b, "--continue", task, "provider=stub")
    output = output_of(blocked)
    assert blocked.returncode != 0, output
    assert failures(output)[task].startswith(f"{task}: being built by {REMOTE_OWNER} since "), output
    assert m.calls() == []
    with m.records() as port:
        assert port.claims(SAMPLE_ID).unexpired()[task].owner == REMOTE_OWNER  # still theirs
        assert port.records(SAMPLE_ID).get(task) is None

    released = m.cli(m.b, "release", SAMPLE_ID, task)
    assert released.returncode == 0, output_of(released)
    assert f"released the claim of {REMOTE_OWNER}" in released.stderr
    with m.records() as port:
        assert port.claims(SAMPLE_ID).unexpired() == {}

    build = m.doit(m.b, task, "provider=stub")
    assert build.returncode == 0, output_of(build)
    assert m.calls() == [task]
    with m.records() as port:
        assert port.records(SAMPLE_ID).get(task).built_by == m.b.checkout


# -- 4. a remote claim that runs out: waited for, then taken over -----------------------------------
def test_a_build_waits_for_a_remote_claim_to_expire_then_builds_once(machines: Machines, tmp_path: Path):
    m = machines
    for clone in (m.a, m.b):
        (clone.root / "storytree.toml").write_text("[build]\nclaim_lease_seconds = 1\nclaim_poll_seconds = 0.1\n")
    task = first_reference(m.b)
    with m.records() as port:
        assert port.claims(SAMPLE_ID).take(task, REMOTE_OWNER, 1) is None
        log = tmp_path / "b-build.log"
        with log.open("w") as sink:
            env = m.b.env(STORYTREE_STUB_CALL_LOG=str(m.call_log))
            build = subprocess.Popen([sys.executable, "-m", "doit", task, "provider=stub"], cwd=m.b.root, env=env,
                                     stdout=sink, stderr=subprocess.STDOUT, text=True)
            try:
                # The remote worker keeps its 1-second lease alive until B has said it waits, then goes away
                # silently (no release): B must wait for the lease to run out — however slowly B started.
                waiting = f"{task}: being built by {REMOTE_OWNER} since "
                deadline = time.monotonic() + 30
                while waiting not in log.read_text():
                    assert build.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, log.read_text()
                    assert m.calls() == []
                    assert port.claims(SAMPLE_ID).take(task, REMOTE_OWNER, 1) is None  # renewed: still ours
                    time.sleep(0.1)
                assert "waiting for it" in log.read_text()
                code = build.wait(timeout=30)
            finally:
                if build.poll() is None:
                    build.kill()
                    build.wait()
        output = log.read_text()
        assert code == 0, output
        assert m.calls() == [task]  # built exactly once, by B, after the remote lease expired
        assert port.records(SAMPLE_ID).get(task).built_by == m.b.checkout
        assert port.claims(SAMPLE_ID).unexpired() == {}


# -- 5. a machine killed while its video is in flight -----------------------------------------------
KILLABLE_DOIT = """
import pathlib, sys, time
from storytree_build.providers import stub

marker = pathlib.Path(sys.argv[1])

def poll(self, operation):  # the provider keeps working: this build is killed while it polls
    marker.write_text(operation)
    time.sleep(600)

stub.StubVideos.poll = poll
from doit.doit_cmd import DoitMain
sys.exit(DoitMain().run(sys.argv[2:]))
"""


def killed_while_polling_by_hand(m: Machines) -> tuple[str, str, str]:
    """What a SIGKILL of machine A while it polls its video leaves behind, written by hand: the submitted operation
    (with the signature A paid for) and A's claim, whose process is gone. The lease is long, so B must take the claim
    over because the process is dead, not because the lease ran out. Returns (operation, signature, owner)."""
    from storytree_build.bootstrap import Session, Workspace
    from storytree_build.core.status import signature_of
    from storytree_build.settings import load_settings
    from storytree_build.store.build_state import Operation, utc_now

    settings = load_settings(root=m.a.root, env=m.a.env())
    session = Session(Workspace(settings), manifest_of(m.a.root), "stub", owns_workspace=True)
    try:
        target = session.target(VIDEO)
        signature = signature_of(session.facts.current_inputs(target))
    finally:
        session.close()
    owner = f"{m.a.checkout} (pid {dead_pid()})"
    operation = "stub-operations/earlier"
    with m.records() as port:
        port.operations(SAMPLE_ID).put(Operation(story_id=SAMPLE_ID, task=VIDEO, signature=signature, provider="stub", model=target.model, state="submitted", operation=operation,
                                     submitted_at=utc_now(), download_uri=None, error=None))
        assert port.claims(SAMPLE_ID).take(VIDEO, owner, 120) is None
    return operation, signature, owner


def killed_while_polling_for_real(m: Machines, marker: Path) -> tuple[str, str, str]:
    """Machine A builds the video; the stub's poll is made to hang (the provider is still working), and A is
    SIGKILLed while it polls — after it recorded the operation and while it holds the claim."""
    env = m.a.env(STORYTREE_STUB_CALL_LOG=str(m.call_log))
    killed = subprocess.Popen([sys.executable, "-c", KILLABLE_DOIT, str(marker), VIDEO, "provider=stub"],
                              cwd=m.a.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert killed.poll() is None, killed.communicate()[0]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        owner = f"{m.a.checkout} (pid {killed.pid})"
        with m.records() as port:  # A recorded the operation before polling, and holds the claim
            recorded = port.operations(SAMPLE_ID).get(VIDEO)
            assert recorded is not None and recorded.state == "submitted" and recorded.operation
            assert port.claims(SAMPLE_ID).unexpired()[VIDEO].owner == owner
        os.kill(killed.pid, signal.SIGKILL)
        assert killed.wait(timeout=30) == -signal.SIGKILL
    finally:
        if killed.poll() is None:
            killed.kill()
            killed.wait()
    return recorded.operation, recorded.signature, owner


@pytest.mark.parametrize("how", ["recorded-by-hand", "real-sigkill"])
def test_a_killed_clones_video_is_resumed_by_the_other_clone_without_a_new_submit(sqlite_machines: Machines,
                                                                                   tmp_path: Path, how: str):
    """By hand, B has none of A's files (it could not even send a request). With the real SIGKILL, B has synced A's
    asset folder first, so it has everything a new submit would need — and still must not make one."""
    m = sqlite_machines
    first = m.doit(m.a, "image:scenelet-1_1", "provider=stub")  # references and key frame of the shot, on A
    assert first.returncode == 0, output_of(first)
    assert "image:scenelet-1_1" in m.calls() and VIDEO not in m.calls()
    before = len(m.calls())
    if how == "recorded-by-hand":
        operation, signature, owner_a = killed_while_polling_by_hand(m)
    else:
        operation, signature, owner_a = killed_while_polling_for_real(m, tmp_path / "polling")
        assert m.calls()[before:] == [VIDEO]  # A paid for one submit before it died
        before += 1
        sync_assets(m.a, m.b)

    resumed = m.doit(m.b, "-s", VIDEO, "provider=stub")
    output = output_of(resumed)
    assert resumed.returncode == 0, output
    assert m.calls()[before:] == [], output  # no new submit, no other paid call
    assert f"taking over the claim of {owner_a}" in output, output
    assert f"{VIDEO}: resuming operation {operation}" in output, output
    assert (m.b.assets / f"{SAMPLE_ID}/shots/scenelet-1/shot-1.mp4").is_file()
    with m.records() as port:
        record = port.records(SAMPLE_ID).get(VIDEO)
        assert record is not None and record.built_by == m.b.checkout
        if how == "real-sigkill":
            assert record.signature == signature  # what A paid for, checked against B's synced references
        else:  # B cannot hash A's references: their hashes are unknown, what A paid for is kept beside them
            assert record.inputs["submitted_signature"] == signature
            assert all(digest is None for _, digest in record.inputs["references"])
        assert port.operations(SAMPLE_ID).get(VIDEO) is None
        assert port.claims(SAMPLE_ID).unexpired() == {}

    # Back on A, with B's video synced: up to date, nothing to pay for.
    sync_assets(m.b, m.a)
    plan = dryrun_items(m, m.a, VIDEO)
    assert plan[VIDEO]["action"] == "skip", plan[VIDEO]
    assert m.calls()[before:] == []


def test_resuming_on_a_machine_without_the_references_does_not_say_the_story_changed(sqlite_machines: Machines):
    m = sqlite_machines
    first = m.doit(m.a, "image:scenelet-1_1", "provider=stub")
    assert first.returncode == 0, output_of(first)
    _, signature, _ = killed_while_polling_by_hand(m)

    resumed = m.doit(m.b, "-s", VIDEO, "provider=stub")
    output = output_of(resumed)
    assert resumed.returncode == 0, output
    assert "story changed" not in output and "out of date" not in output, output
    assert "hashes unknown" in output, output
    with m.records() as port:
        record = port.records(SAMPLE_ID).get(VIDEO)
    assert record.inputs["submitted_signature"] == signature
    assert record.inputs.get("prompt_sha256") == manifest_of(m.a.root).by_task()[VIDEO].prompt_sha256, record.inputs
    # B itself sees the video up to date (nothing to pay for), before and after A's references arrive.
    assert dryrun_items(m, m.b, VIDEO)[VIDEO]["action"] == "skip"
    sync_assets(m.a, m.b)
    assert dryrun_items(m, m.b, VIDEO)[VIDEO]["action"] == "skip"


# -- 6. the state folder is only a cache ------------------------------------------------------------
def test_deleting_the_state_folder_of_a_built_clone_costs_nothing(machines: Machines):
    m = machines
    built = m.doit(m.a, f"story:{SAMPLE_ID}", "provider=stub")
    assert built.returncode == 0, output_of(built)
    paid = len(m.calls())
    assert paid == 36

    shutil.rmtree(m.a.root / ".storytree")
    check = m.doit(m.a, "dryrun", "--check", f"story:{SAMPLE_ID}", "provider=stub")
    assert check.returncode == 0, output_of(check)
    assert "dryrun: 0 would run" in check.stdout, check.stdout

    again = m.doit(m.a, f"story:{SAMPLE_ID}", "provider=stub")
    assert again.returncode == 0, output_of(again)
    assert len(m.calls()) == paid
