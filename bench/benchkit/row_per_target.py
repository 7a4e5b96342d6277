"""Row `per-target`: the builder's own work per built target, stub provider without delay, serial doit, 98 targets.

Time: each repetition builds a fresh copy of an unbuilt project (`doit ref image video provider=stub`: every asset,
not the review page) and then runs the same command again (a no-op); (build − no-op) / targets is what building
adds per target beyond start-up, manifest and up-to-date checks. The repetitions alternate nothing (one command
measured against its own no-op), so the medians of both are taken.

Counts: one more fresh build, and its no-op, under bench/benchkit/count_build.py (SQL statements per SQLite file,
port calls, Python fsyncs, time in Builder.build) and, when strace is installed, `strace -f -e trace=fsync,fdatasync`
with file names (every fsync, SQLite's included, attributed to a file). Per target = (build − no-op) / targets."""

from __future__ import annotations

import json
import re
import shutil
import statistics
from collections import Counter
from pathlib import Path

from .context import Context
from .projects import prepare
from .report import Verdict, at_most, info
from .timing import timed
from .toolchain import REPO

N = 98
COUNTER = REPO / "bench" / "benchkit" / "count_build.py"
FSYNC_LINE = re.compile(r"\b(fsync|fdatasync)\((\d+)<([^>]*)>\)\s+=\s+0")
TEMP_SUFFIX = re.compile(r"[-.][A-Za-z0-9_]{6,}$")
DOIT_STATE = "doit"  # doit's own dependency file (.storytree/doit.sqlite): doit's cost, not storytree's


def classify_fsync(path: str, assets: Path) -> str:
    """What an fsync made durable: an asset (or its temp file), a folder, a SQLite file (its WAL), or something else."""
    name = Path(path).name
    if Path(path).is_dir():
        return "folder"
    if Path(path).is_relative_to(assets):
        return "asset file"
    for suffix in ("-wal", "-journal", "-shm"):
        if name.endswith(suffix):
            return f"sqlite {name.removesuffix(suffix)}"
    if name.endswith((".sqlite", ".db", ".sqlite3")):
        return f"sqlite {name}"
    if name.endswith(".part") and Path(path).parent.name == "tmp":
        return "object file"  # the local object store's temp file (`<objects>/tmp/.<random>.part`), before its rename
    return "other " + TEMP_SUFFIX.sub("-*", name)  # probes and temp files: one line per kind, not per file


def strace_fsyncs(trace: Path, assets: Path) -> Counter[str]:
    found: Counter[str] = Counter()
    for line in trace.read_text(errors="replace").splitlines():
        match = FSYNC_LINE.search(line)
        if match:
            found[classify_fsync(match.group(3), assets)] += 1
    return found


def _fresh_copy(template: Path, work: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(template, work, symlinks=True)
    return work


def _counted(ctx: Context, template, work: Path, argv_tail: list[str]) -> tuple[dict, dict, Counter, Counter]:  # noqa: ANN001
    """(counts of the build, counts of its no-op, strace fsyncs of the build, of the no-op)."""
    proj = _fresh_copy(template.proj, work)
    env = ctx.current.env(STORYTREE_ROOT=str(proj), STORYTREE_STUB_DELAY="0")
    strace = shutil.which("strace")
    results = []
    for step in ("build", "noop"):
        out, trace = proj / f"counts-{step}.json", proj / f"strace-{step}.txt"
        argv = [ctx.current.python, str(COUNTER), str(out), *argv_tail]
        if strace:
            argv = [strace, "-f", "-qq", "-y", "--seccomp-bpf", "-e", "trace=fsync,fdatasync", "-e", "signal=none",
                    "-o", str(trace), *argv]
        run = timed(argv, proj, env)
        if run.rc != 0:
            raise SystemExit(f"per-target: counted {step} failed (rc {run.rc}):\n{run.out[-3000:]}")
        counts = json.loads(out.read_text(encoding="utf-8"))
        fs = strace_fsyncs(trace, proj / "apps/story-tree-ui/public/generated") if strace else Counter()
        results.append((counts, fs))
    (build, build_fs), (noop, noop_fs) = results
    return build, noop, build_fs, noop_fs


def _per_target(build: dict[str, int], noop: dict[str, int], n: int) -> dict[str, float]:
    return {k: (build.get(k, 0) - noop.get(k, 0)) / n for k in sorted(set(build) | set(noop))}


def _split(per: dict[str, float], is_doit) -> tuple[float, float]:  # noqa: ANN001
    ours = sum(v for k, v in per.items() if not is_doit(k))
    return ours, sum(per.values()) - ours


def _fmt(per: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in per.items() if abs(v) >= 0.005) or "none"


def run(ctx: Context) -> list[Verdict]:
    template = prepare(ctx.current, N, reuse=False, build=False, folder=f"n{N}-unbuilt", plain=False, log=ctx.log)
    n = template.targets
    argv_tail = ["ref", "image", "video", "provider=stub"]
    work = ctx.current.out / f"n{N}-per-target"
    builds, noops = [], []
    ctx.log(f"per-target row: {ctx.extra_reps} fresh builds of {n} targets (serial, stub, no delay), each with its no-op")
    for rep in range(ctx.extra_reps):
        proj = _fresh_copy(template.proj, work)
        env = ctx.current.env(STORYTREE_ROOT=str(proj), STORYTREE_STUB_DELAY="0")
        argv = [ctx.current.doit, *argv_tail]
        build = timed(argv, proj, env)
        if build.rc != 0 or f"storytree: {n} built" not in build.out:
            raise SystemExit(f"per-target: the build did not build {n} targets (rc {build.rc}):\n{build.out[-3000:]}")
        noop = timed(argv, proj, env)
        if noop.rc != 0 or "storytree: 0 built" not in noop.out:
            raise SystemExit(f"per-target: the second run was not a no-op (rc {noop.rc}):\n{noop.out[-3000:]}")
        builds.append(build)
        noops.append(noop)
        ctx.log(f"  per-target rep {rep + 1}/{ctx.extra_reps}: build {build.wall:.2f}s, no-op {noop.wall:.2f}s")
    build_wall = statistics.median(r.wall for r in builds)
    noop_wall = statistics.median(r.wall for r in noops)
    build_cpu = statistics.median(r.cpu for r in builds)
    noop_cpu = statistics.median(r.cpu for r in noops)
    ms = (build_wall - noop_wall) / n * 1000
    ms_cpu = (build_cpu - noop_cpu) / n * 1000

    counted_build, counted_noop, build_fs, noop_fs = _counted(ctx, template, work, argv_tail)
    shutil.rmtree(work, ignore_errors=True)
    sql = _per_target(counted_build["sql"], counted_noop["sql"], n)
    sql_ours, sql_doit = _split(sql, lambda k: k.startswith(DOIT_STATE))
    port_calls = _per_target(counted_build["ports"], counted_noop["ports"], n)
    state_calls = sum(v for k, v in port_calls.items() if not k.startswith("StoryStore."))
    py_fsync = _per_target(counted_build["py_fsync"], counted_noop["py_fsync"], n)
    in_builder = counted_build["builder"]
    ctx.results["per_target"] = {
        "targets": n, "build_wall": build_wall, "noop_wall": noop_wall, "build_cpu": build_cpu, "noop_cpu": noop_cpu,
        "ms_per_target": ms, "cpu_ms_per_target": ms_cpu, "sql": sql, "ports": port_calls, "py_fsync": py_fsync,
        "strace_fsync_build": build_fs, "strace_fsync_noop": noop_fs, "builder": in_builder}
    verdicts = [
        at_most("per-target", f"builder work per built target (stub, {n})", ms, 3.0, " ms",
                f"{ms:.1f} ms = ({build_wall:.2f} s build − {noop_wall:.2f} s no-op) / {n} (cpu {ms_cpu:.1f} ms); "
                f"inside Builder.build, counters on: {in_builder['seconds'] / max(1, in_builder['calls']) * 1000:.1f} "
                f"ms a call"),
        info("per-target", "record-port calls per built target",
             f"{state_calls:.1f} ({_fmt({k: v for k, v in port_calls.items() if not k.startswith('StoryStore.')})}); "
             f"story store: {_fmt({k: v for k, v in port_calls.items() if k.startswith('StoryStore.')})}", state_calls),
        at_most("per-target", "SQL statements per built target (storytree's files)", sql_ours, 6, "",
                f"{sql_ours:.1f} ({_fmt({k: v for k, v in sql.items() if not k.startswith(DOIT_STATE)})}); "
                f"doit's own state: {sql_doit:.1f} more"),
    ]
    if build_fs or noop_fs:
        fs = _per_target(build_fs, noop_fs, n)
        ours, doit = _split(fs, lambda k: DOIT_STATE in k)
        verdicts.append(at_most("per-target", "fsyncs per built target (strace; storytree's)", ours, 2, "",
                                f"{ours:.2f} ({_fmt(fs)}); doit's own state: {doit:.2f}; "
                                f"Python os.fsync calls: {sum(py_fsync.values()):.2f}"))
    else:
        verdicts.append(info("per-target", "fsyncs per built target", f"Python os.fsync calls only (no strace): "
                             f"{sum(py_fsync.values()):.2f}; SQLite's own are not seen", sum(py_fsync.values())))
    return verdicts
