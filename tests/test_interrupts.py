"""Ctrl-C and SIGTERM (issue 23 §6): no new paid call starts, calls in flight finish and are recorded within a grace
period, a second signal abandons them and names them, no traceback, exit 130 / 143; the rerun pays only for what was
never paid for."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from storytree_build.building.spend import Budget, SpendGate
from storytree_build.building.stopping import StopRequest
from storytree_build.core.errors import Interrupted
from storytree_build.core.exit_codes import ExitCode
from storytree_build.doit_glue.interrupts import Interrupts
from support.project import SAMPLE_ID, doit, import_story, manifest_of, new_project, project_env, records_of
from support.project import copy_project as fresh

STORY = f"story:{SAMPLE_ID}"


@pytest.fixture(scope="module")
def unbuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_story(new_project(tmp_path_factory.mktemp("interrupts") / "project"))



def start_build(root: Path, calls: Path, delay: str, err: Path, *options: str) -> subprocess.Popen:
    env = project_env(root, STORYTREE_STUB_CALL_LOG=str(calls), STORYTREE_STUB_DELAY=delay)
    with err.open("w") as stream:
        return subprocess.Popen([sys.executable, "-m", "doit", *options, "-j", "4", STORY, "provider=stub"], cwd=root,
                                env=env, text=True, stdout=stream, stderr=subprocess.STDOUT)


def wait_for(predicate, what: str, timeout: float = 60) -> None:  # noqa: ANN001 - a zero-argument callable
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def logged(calls: Path) -> list[str]:
    return calls.read_text().split() if calls.exists() else []


@pytest.mark.parametrize("options", [[], ["--continue"]])
def test_sigterm_during_a_parallel_build_finishes_the_calls_in_flight_and_the_rerun_pays_once(
        unbuilt: Path, tmp_path: Path, options: list[str]) -> None:
    root = fresh(unbuilt, tmp_path)
    calls, err = tmp_path / "calls.log", tmp_path / "out.txt"
    proc = start_build(root, calls, "1.5", err, *options)
    wait_for(lambda: logged(calls), "a paid call in flight")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=90) == ExitCode.TERMINATED
    output = err.read_text()
    assert "Traceback" not in output
    assert "SIGTERM: stopping: no new paid call starts" in output
    assert "left for the next run" in output  # the summary counts what the rerun resumes
    assert "UnmetDependency" not in output and "TaskFailed" not in output  # no line per target left
    paid_first = logged(calls)
    records = records_of(root)
    assert set(paid_first) <= set(records), "a call in flight finished but its result was not recorded"
    targets = {t.task for t in manifest_of(root).targets}
    assert set(paid_first) < targets, "the stop came too late to leave anything for the rerun"

    rerun = doit(root, STORY, "provider=stub", env=project_env(root, STORYTREE_STUB_CALL_LOG=str(calls)))
    assert rerun.returncode == 0, rerun.stderr
    assert Counter(logged(calls)) == Counter(targets), "the build and its rerun made other than one call per target"


def test_a_second_sigterm_abandons_the_calls_in_flight_and_names_them(unbuilt: Path, tmp_path: Path) -> None:
    root = fresh(unbuilt, tmp_path)
    calls, err = tmp_path / "calls.log", tmp_path / "out.txt"
    proc = start_build(root, calls, "60", err)
    wait_for(lambda: logged(calls), "a paid call in flight")
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping" in err.read_text(), "the stopping line")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == ExitCode.TERMINATED
    output = err.read_text()
    assert "Traceback" not in output
    abandoned = [line for line in output.splitlines() if "abandoned" in line]
    assert len(abandoned) == 1 and all(task in abandoned[0] for task in logged(calls))
    assert "may be lost" in abandoned[0]


def test_the_grace_period_running_out_abandons_the_calls_in_flight(unbuilt: Path, tmp_path: Path) -> None:
    root = fresh(unbuilt, tmp_path, "[build]\nstop_grace_seconds = 0.2\n")
    calls, err = tmp_path / "calls.log", tmp_path / "out.txt"
    proc = start_build(root, calls, "60", err)
    wait_for(lambda: logged(calls), "a paid call in flight")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == ExitCode.INTERRUPTED
    output = err.read_text()
    assert "Traceback" not in output
    assert "grace period over: abandoned" in output


def test_after_a_stop_no_paid_call_starts() -> None:
    stop = StopRequest()
    gate = SpendGate(Budget(), stop)
    made: list[str] = []
    with gate.paid_call("image:a", "m", 0.1):
        made.append("image:a")
    stop.request(ExitCode.TERMINATED, "SIGTERM")
    with pytest.raises(Interrupted) as refused:
        with gate.paid_call("image:b", "m", 0.1):
            made.append("image:b")
    assert made == ["image:a"]
    assert refused.value.exit_code == ExitCode.TERMINATED and "image:b" in str(refused.value)
    assert gate.budget.spent == pytest.approx(0.1)  # the refused call reserved nothing


def test_a_signal_before_any_build_exits_at_once_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    interrupts = Interrupts()
    with pytest.raises(SystemExit) as exited:
        interrupts.handle(signal.SIGINT, None)
    assert exited.value.code == ExitCode.INTERRUPTED
    stop = StopRequest()
    interrupts.attach(stop, 60)
    with pytest.raises(SystemExit) as exited:  # a session, but no build under way (the dry-run, task loading)
        interrupts.handle(signal.SIGTERM, None)
    assert exited.value.code == ExitCode.TERMINATED and not stop.requested


def test_signals_are_handed_back_when_the_project_closes() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    interrupts = Interrupts()
    interrupts.install()
    assert signal.getsignal(signal.SIGTERM) == interrupts.handle
    interrupts.uninstall()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert os.getpid()  # still here: nothing exited
