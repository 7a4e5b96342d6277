"""Timed child processes: one run (wall, CPU, peak RSS of exactly that child), a run with its RSS sampled while it
works, and alternating repetitions of several commands with medians."""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class Run:
    wall: float  # seconds, elapsed
    cpu: float  # seconds, user + sys of the child (and its children it waited for)
    # ru_maxrss (KiB): on Linux at least the parent's RSS when it forked, so a small child of a big bench process
    # reports the bench's size; memory figures come from sampled()'s VmHWM instead.
    rss_kib: int
    rc: int
    out: str  # stdout and stderr, interleaved


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """os.wait4 gives the rusage of exactly this child, not of every child this process ever waited for."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = child.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    child.stdout.close()  # type: ignore[union-attr]
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, child.returncode, out.decode(errors="replace"))


@dataclass(frozen=True)
class Sample:
    seconds: float  # since the start
    rss_kib: int  # VmRSS now
    hwm_kib: int  # VmHWM: the peak RSS of the child's own address space so far (not inflated by the parent)
    lines: int  # output lines so far (doit prints one per task): how far the build got


@dataclass(frozen=True)
class SampledRun:
    run: Run
    samples: list[Sample]

    @property
    def peak_kib(self) -> int:
        """The child's own peak RSS up to the last sample (0 when it ended before the first)."""
        return max((s.hwm_kib for s in self.samples), default=0)


def _memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a running process, or None once it is gone."""
    found = {}
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith((b"VmRSS:", b"VmHWM:")):
                    found[line[:5]] = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return (found[b"VmRSS"], found[b"VmHWM"]) if len(found) == 2 else None


def sampled(argv: list[str], cwd: Path, env: dict[str, str], every: float = 0.25) -> SampledRun:
    """Like timed(), and the child's RSS read from /proc every `every` seconds with the number of output lines so far,
    to show whether memory grows as the build proceeds."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks: list[bytes] = []
    lines = [0]

    def read() -> None:
        for line in child.stdout:  # type: ignore[union-attr]
            chunks.append(line)
            lines[0] += 1

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    samples: list[Sample] = []
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(every):
            memory = _memory_kib(child.pid)
            if memory is not None:
                samples.append(Sample(time.perf_counter() - started, *memory, lines[0]))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    finished.set()
    watcher.join()
    reader.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    child.stdout.close()  # type: ignore[union-attr]
    run = Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, child.returncode,
              b"".join(chunks).decode(errors="replace"))
    return SampledRun(run, samples)


@dataclass(frozen=True)
class Command:
    """One command of an alternating measurement; `check` says whether its output is what the bench expects
    (a no-op that built something is not a no-op) and returns a complaint, or None."""

    key: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    check: Callable[[Run], str | None] = lambda run: None if run.rc == 0 else f"exit code {run.rc}"
    reps: int | None = None  # fewer repetitions for slow commands (None: all)


@dataclass
class Series:
    runs: list[Run] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    @property
    def spread(self) -> str:
        walls = [r.wall for r in self.runs]
        return f"{min(walls):.3f}–{max(walls):.3f}"


class BenchFailure(SystemExit):
    """A command did not do what the bench measures (a no-op that builds, a build that fails): the figures would lie."""


def checked(command: Command, run: Run) -> Run:
    complaint = command.check(run)
    if complaint:
        raise BenchFailure(f"{command.key}: {complaint}\n  command: {' '.join(command.argv)}\n  in {command.cwd}\n"
                           f"{run.out[-3000:]}")
    return run


def alternate(commands: list[Command], reps: int, label: str, log: Callable[[str], None] = print) -> dict[str, Series]:
    """One warm-up run of each command (page cache, .pyc files, caches; and each is checked), then `reps`
    repetitions in which the commands alternate, rotated so that none always goes first."""
    series = {c.key: Series() for c in commands}
    for command in commands:
        checked(command, timed(command.argv, command.cwd, command.env))
    for rep in range(reps):
        shift = rep % len(commands)
        for command in commands[shift:] + commands[:shift]:
            if command.reps is not None and rep >= command.reps:
                continue
            run = checked(command, timed(command.argv, command.cwd, command.env))
            series[command.key].runs.append(replace(run, out=""))  # a 40 MB dry-run × reps would swell the bench
        log(f"  {label} rep {rep + 1}/{reps} (load {os.getloadavg()[0]:.1f}): " + ", ".join(
            f"{key} {s.runs[-1].wall:.2f}" for key, s in series.items() if len(s.runs) > rep))
    return series
