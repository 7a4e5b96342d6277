"""make's flags on doit's `run` (issue 22 §2): `-n` is the dry-run listing and spends nothing, `-n N` is refused and
builds nothing, `-j N` / `--process N` build with worker threads to a true summary, `-P process` is refused for
storytree tasks (and still works for a plain doit project)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from storytree_build.doit_glue import argv
from storytree_build.doit_glue.project import DOIT_COMMANDS
from support.project import (ASSETS, SAMPLE_ID, doit, import_story, is_complete_asset, manifest_of, new_project,
                             project_env, records_of, run_doit)
from support.project import copy_project as fresh, doit_in_process as run_here

STORY = f"story:{SAMPLE_ID}"


@pytest.fixture(scope="module")
def unbuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_story(new_project(tmp_path_factory.mktemp("flags") / "project"))




def assets_on_disk(root: Path) -> list[Path]:
    return [p for p in (root / ASSETS).rglob("*") if p.is_file()]


def calls_in(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


# -- -n: the dry-run listing ------------------------------------------------------------------------------
def test_n_prints_the_dryrun_listing_and_makes_no_call(unbuilt: Path, tmp_path: Path) -> None:
    root = fresh(unbuilt, tmp_path)
    log = tmp_path / "calls.log"
    env = project_env(root, STORYTREE_STUB_CALL_LOG=str(log))
    listed = doit(root, "-n", STORY, "provider=stub", env=env)
    dryrun = doit(root, "dryrun", STORY, "provider=stub", env=env)
    assert listed.returncode == dryrun.returncode == 0, listed.stdout + listed.stderr
    assert listed.stdout == dryrun.stdout
    assert "dryrun: 36 would run, 0 up to date (provider stub); nothing was called or written." in listed.stdout
    assert "estimated total:" in listed.stdout and "    ref " in listed.stdout  # cost and references are listed
    assert calls_in(log) == [] and assets_on_disk(root) == [] and records_of(root) == {}


@pytest.mark.parametrize("run_flags, dryrun_flags, selection", [
    (["run", "-n"], [], [STORY]),  # the command word spelled out
    (["--dry-run"], [], ["shot:scenelet-2_1"]),
    (["-n", "-a"], ["-a"], ["shot:scenelet-2_1"]),  # -a: what it would force
    (["-an"], ["-a"], ["image"]),
    (["-n", "-s"], ["-s"], ["image:scenelet-1_1"]),  # -s: without the references it depends on
    (["-n", "-j", "4"], [], ["image:scenelet-3_*"]),  # workers mean nothing to a listing
    (["-nj4", "--continue"], [], [STORY]),
])
def test_n_takes_the_same_selection_and_options_as_a_build(unbuilt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            run_flags: list[str], dryrun_flags: list[str],
                                                            selection: list[str]) -> None:
    root = fresh(unbuilt, tmp_path)
    assert run_here(root, monkeypatch, "ref:environment.thunderpot-gorge.keyframe_1", "provider=stub").code == 0
    before, paid = records_of(root), calls_in(tmp_path / "calls.log")  # one target up to date
    listed = run_here(root, monkeypatch, *run_flags, *selection, "provider=stub")
    dryrun = run_here(root, monkeypatch, "dryrun", *dryrun_flags, *selection, "provider=stub")
    assert listed.code == dryrun.code, listed.output
    assert listed.out == dryrun.out and "nothing was called or written" in listed.out
    assert calls_in(tmp_path / "calls.log") == paid and records_of(root) == before


# -- -n N: refused, nothing built -------------------------------------------------------------------------
REFUSED = "ERROR: `-n` is a dry run here (make-style); for 4 workers use `-j 4`\n"


def test_n_followed_by_a_number_builds_nothing_and_says_to_use_j(unbuilt: Path, tmp_path: Path) -> None:
    root = fresh(unbuilt, tmp_path)
    log = tmp_path / "calls.log"
    result = doit(root, "-n", "4", STORY, "provider=stub", env=project_env(root, STORYTREE_STUB_CALL_LOG=str(log)))
    assert result.returncode == 3
    assert result.stderr == REFUSED and result.stdout == ""
    assert calls_in(log) == [] and assets_on_disk(root) == [] and records_of(root) == {}
    assert not (root / ".storytree").exists()  # refused before doit opened its database or loaded a task


@pytest.mark.parametrize("flags", [["-n", "4"], ["-n4"], ["-n=4"], ["-an", "4"], ["-a", "-n", "4"], ["--dry-run", "4"],
                                   ["--dry-run=4"], ["--dry", "4"], ["run", "-n", "4"], ["-v", "2", "-n4"]])
def test_every_spelling_of_n_with_a_number_is_refused(unbuilt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      flags: list[str]) -> None:
    root = fresh(unbuilt, tmp_path)
    result = run_here(root, monkeypatch, *flags, STORY, "provider=stub")
    assert (result.code, result.err) == (3, REFUSED)
    assert calls_in(tmp_path / "calls.log") == [] and assets_on_disk(root) == [] and records_of(root) == {}


# -- -j N / --process N: worker threads, a true summary ---------------------------------------------------
@pytest.mark.parametrize("workers", [["-j", "4"], ["--process", "4"], ["--process=4"]])
def test_a_parallel_build_finishes_with_a_true_summary_and_a_no_op_after(unbuilt: Path, tmp_path: Path,
                                                                         workers: list[str]) -> None:
    root = fresh(unbuilt, tmp_path)
    log = tmp_path / "calls.log"
    env = project_env(root, STORYTREE_STUB_CALL_LOG=str(log), STORYTREE_STUB_DELAY="0.02")  # calls overlap
    targets = manifest_of(root).targets
    first = doit(root, *workers, STORY, "provider=stub", env=env, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"storytree: {len(targets)} built, 0 up to date, 0 failed" in first.stdout
    assert Counter(calls_in(log)) == Counter({t.task: 1 for t in targets})  # every target paid once
    assert all(is_complete_asset(root / ASSETS / t.output) for t in targets)
    assert set(records_of(root)) == {t.task for t in targets}
    again = doit(root, *workers, STORY, "provider=stub", env=env, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"storytree: 0 built, {len(targets)} up to date, 0 failed" in again.stdout
    assert len(calls_in(log)) == len(targets)


def test_process_workers_are_refused_for_storytree_tasks(unbuilt: Path, tmp_path: Path) -> None:
    root = fresh(unbuilt, tmp_path)
    log = tmp_path / "calls.log"
    result = doit(root, "-j", "4", "-P", "process", STORY, "provider=stub",
                  env=project_env(root, STORYTREE_STUB_CALL_LOG=str(log)), timeout=60)
    assert result.returncode == 3
    assert result.stderr.startswith("ERROR: storytree builds run in threads, not processes") and \
        result.stderr.count("\n") == 1 and "drop `-P process`" in result.stderr
    assert calls_in(log) == [] and assets_on_disk(root) == [] and records_of(root) == {}


PLAIN_DODO = '''
from pathlib import Path


def write(name):
    Path(name).write_text(name)


def task_plain():
    for name in ("a.txt", "b.txt"):
        yield {"name": name, "actions": [(write, [name])], "targets": [name]}
'''


def test_a_plain_doit_project_keeps_process_workers(tmp_path: Path) -> None:
    (tmp_path / "dodo.py").write_text(PLAIN_DODO)
    result = doit(tmp_path, "-j", "2", "-P", "process", "plain", env=project_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "a.txt").read_text() == "a.txt" and (tmp_path / "b.txt").read_text() == "b.txt"


# -- help and the load-time parse -------------------------------------------------------------------------
def test_help_run_shows_the_make_flags(unbuilt: Path) -> None:
    text = " ".join(doit(unbuilt, "help", "run").stdout.split())  # doit wraps the help text
    assert "-n, --dry-run dry run, as make's -n: list what would be built" in text
    assert "-j N, --process=N number of parallel workers, as make's -j" in text
    assert "'thread' (the default; storytree builds run only in threads)" in text
    assert "[default: thread]" in text


def test_the_load_time_parse_reads_j_as_a_flag_with_its_value() -> None:
    invocation = argv.parse(["-j", "4", "-n", STORY, "provider=stub"], DOIT_COMMANDS)
    assert (invocation.command, invocation.names) == ("run", [STORY])
