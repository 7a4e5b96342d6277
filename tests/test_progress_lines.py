"""Progress a person can read, in a real `doit` process with the offline provider: without a terminal one plain line
per finished paid target (`[k/N] built <task> (cost; spent/estimate)`); on a terminal (a real pty) the live line
instead, drawn by rich."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.project import SAMPLE_ID, doit, import_story, project_env
from test_consent import on_a_terminal

PLAIN = re.compile(r"^storytree: \[(\d+)/(\d+)\] (built|failed) (\S+) \(0\.00 USD; 0\.00/0\.00 USD\)$")


@pytest.fixture
def imported(project: Path) -> Path:
    return import_story(project)


def test_without_a_terminal_each_finished_target_is_one_plain_line(imported: Path) -> None:
    run = doit(imported, "-j", "2", "ref", "provider=stub")
    assert run.returncode == 0, run.stderr
    lines = [PLAIN.match(line) for line in run.stderr.splitlines() if re.match(r"^storytree: \[\d", line)]
    assert lines and all(lines), run.stderr
    ks, ns, tasks = [int(m[1]) for m in lines], {int(m[2]) for m in lines}, [m[4] for m in lines]
    built = int(re.search(r"storytree: (\d+) built", run.stdout)[1])
    assert ns == {built} and ks == list(range(1, built + 1))  # k counts up to N, once per target
    assert len(set(tasks)) == built and all(task.startswith("ref:") for task in tasks)
    assert "\x1b[" not in run.stderr  # no terminal: no escape codes

    again = doit(imported, "ref", "provider=stub")  # a no-op: no progress at all
    assert again.returncode == 0 and "[0/" not in again.stderr and not re.search(r"\[\d+/\d+\]", again.stderr)


def test_on_a_terminal_the_live_line_replaces_the_plain_lines(imported: Path) -> None:
    code, shown = on_a_terminal(imported, ("ref", "provider=stub"), project_env(imported), None)
    assert code == 0, shown
    assert not re.search(r"\[\d+/\d+\] built ref:", shown)  # no plain lines
    n = int(re.search(r"storytree: (\d+) built", shown)[1])
    assert f"[{n}/{n}] built, 0.00/0.00 USD, elapsed " in shown  # the live line, at its end
    assert f"storytree: story {SAMPLE_ID}: {n} to generate (0.00 USD, offline)" in shown
    # the build's log lines are printed whole above the live line (not wrapped, not lost)
    assert re.search(r"storytree: ref:\S+: built \S+\.png\n", shown)
