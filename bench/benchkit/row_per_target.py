"""Row `per-target`: the builder's own work per built target, stub provider without delay, serial doit.

Time: a slope over two sizes (98 and 196 targets, the same 12 references): each repetition builds a fresh copy of
an unbuilt project of each size in turn (`doit ref image video provider=stub`: every asset, not the review page)
and then runs the same command again (a no-op). Per target = ((build − no-op) at 196 − (build − no-op) at 98) / 98,
so what a first build does once (its lazy imports, the schema, the provider's client) cancels out, as start-up and
the up-to-date checks do. The time inside the stub provider (drawing and encoding its placeholder images: what a
real API does on its own machines) is counted in the counted run and taken off; both figures are printed, and the
older measure, (build − no-op) / 98 with the provider in it, too.

Counts: one more fresh copy of each project, built kind by kind (`doit ref`, `doit image`, `doit video`), each run
and then its no-op under bench/benchkit/count_build.py (SQL statements per SQLite file, port calls, Python fsyncs,
time in Builder.build and in the provider), and when strace is installed under `strace -f -e trace=fsync,fdatasync`
with file names (every fsync, SQLite's included, attributed to a file). Per key frame and per video: the slope of
(the kind's run − its no-op) over the two sizes; per reference (12 at both sizes): the smaller one's over its 12."""

from __future__ import annotations

import json
import os
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

N, N2 = 98, 196  # N2 − N shots more (a key frame and a video each), the same references
KINDS = (("ref", ("character_plate", "environment_keyframe")), ("image", ("key_frame",)), ("video", ("video",)))
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


def _kinds(manifest: Path) -> Counter[str]:
    """Targets of each kind in a manifest (its `kind:` lines)."""
    found: Counter[str] = Counter()
    for line in manifest.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("kind: "):
            found[stripped.removeprefix("kind: ").strip()] += 1
    return found


def _counted_run(ctx: Context, proj: Path, step: str, argv_tail: list[str]) -> tuple[dict, Counter]:
    env = ctx.current.env(STORYTREE_ROOT=str(proj), STORYTREE_STUB_DELAY="0")
    strace = shutil.which("strace")
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
    return counts, fs


def _counted(ctx: Context, template, work: Path) -> dict[str, tuple[dict, Counter, dict, Counter]]:  # noqa: ANN001
    """{kind: (counts, strace fsyncs) of building only that kind, then the same of running it again (a no-op)}."""
    proj = _fresh_copy(template.proj, work)
    found = {}
    for step, _ in KINDS:
        argv_tail = [step, "provider=stub"]
        found[step] = (*_counted_run(ctx, proj, step, argv_tail), *_counted_run(ctx, proj, f"{step}-noop", argv_tail))
    return found


def _difference(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a.get(k, 0) - b.get(k, 0) for k in sorted(set(a) | set(b))}


def _per_target(build: dict[str, int], noop: dict[str, int], n: int) -> dict[str, float]:
    return {k: (build.get(k, 0) - noop.get(k, 0)) / n for k in sorted(set(build) | set(noop))}


def _split(per: dict[str, float], is_doit) -> tuple[float, float]:  # noqa: ANN001
    ours = sum(v for k, v in per.items() if not is_doit(k))
    return ours, sum(per.values()) - ours


def _fmt(per: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in per.items() if abs(v) >= 0.005) or "none"


def _timed_builds(ctx: Context, template, work: Path, argv_tail: list[str], rep: int) -> tuple[float, float, float, float]:  # noqa: ANN001
    """One fresh build of `template` and its no-op: (build wall, no-op wall, build cpu, no-op cpu)."""
    n = template.targets
    proj = _fresh_copy(template.proj, work)
    env = ctx.current.env(STORYTREE_ROOT=str(proj), STORYTREE_STUB_DELAY="0")
    argv = [ctx.current.doit, *argv_tail]
    os.sync()  # the copy's and the previous build's dirty pages written out now, not during this build's fsyncs
    build = timed(argv, proj, env)
    if build.rc != 0 or f"storytree: {n} built" not in build.out:
        raise SystemExit(f"per-target: the build did not build {n} targets (rc {build.rc}):\n{build.out[-3000:]}")
    noop = timed(argv, proj, env)
    if noop.rc != 0 or "storytree: 0 built" not in noop.out:
        raise SystemExit(f"per-target: the second run was not a no-op (rc {noop.rc}):\n{noop.out[-3000:]}")
    ctx.log(f"  per-target rep {rep + 1}/{ctx.extra_reps}, {n} targets: build {build.wall:.2f}s, no-op "
            f"{noop.wall:.2f}s")
    return build.wall, noop.wall, build.cpu, noop.cpu


def run(ctx: Context) -> list[Verdict]:
    small = prepare(ctx.current, N, reuse=False, build=False, folder=f"n{N}-unbuilt", plain=False, log=ctx.log)
    large = prepare(ctx.current, N2, reuse=False, build=False, folder=f"n{N2}-unbuilt", plain=False, log=ctx.log)
    n, n2 = small.targets, large.targets
    argv_tail = ["ref", "image", "video", "provider=stub"]
    work = ctx.current.out / f"n{N}-per-target"
    ctx.log(f"per-target row: {ctx.extra_reps} fresh builds of {n} and of {n2} targets (serial, stub, no delay), "
            "alternating, each with its no-op")
    runs: dict[int, list[tuple[float, float, float, float]]] = {n: [], n2: []}
    for rep in range(ctx.extra_reps):
        for template in (small, large):
            runs[template.targets].append(_timed_builds(ctx, template, work, argv_tail, rep))
    med = {size: [statistics.median(r[i] for r in found) for i in range(4)] for size, found in runs.items()}
    build_wall, noop_wall, build_cpu, noop_cpu = med[n]
    ms_old = (build_wall - noop_wall) / n * 1000
    slope = ((med[n2][0] - med[n2][1]) - (build_wall - noop_wall)) / (n2 - n) * 1000
    slope_cpu = ((med[n2][2] - med[n2][3]) - (build_cpu - noop_cpu)) / (n2 - n) * 1000

    counted = {size: _counted(ctx, template, work) for size, template in ((n, small), (n2, large))}
    shutil.rmtree(work, ignore_errors=True)
    in_kind = {size: _kinds(template.manifest) for size, template in ((n, small), (n2, large))}
    provider_s = sum(found[0]["provider"]["seconds"] for found in counted[n].values())
    provider_ms = provider_s / n * 1000
    builder_s = sum(found[0]["builder"]["seconds"] for found in counted[n].values())
    builder_calls = sum(found[0]["builder"]["calls"] for found in counted[n].values())
    ms = slope - provider_ms
    per_kind = {}
    for step, kind_names in KINDS:
        # (a kind's run − its no-op) per target of that kind; a slope over the two sizes where their counts differ
        # (key frames, videos), so what the first run of a kind does once cancels out; references are the same 12
        # at both sizes, so theirs is the smaller story's over its references.
        sizes = [n, n2] if step != "ref" else [n]
        deltas = []
        for size in sizes:
            build, build_fs, noop, noop_fs = counted[size][step]
            deltas.append((sum(in_kind[size][k] for k in kind_names), {
                "sql": _difference(build["sql"], noop["sql"]), "ports": _difference(build["ports"], noop["ports"]),
                "py_fsync": _difference(build["py_fsync"], noop["py_fsync"]),
                "strace_fsync": _difference(build_fs, noop_fs)}))
        if len(deltas) == 2:
            (t1, d1), (t2, d2) = deltas
            per_kind[step] = {"targets": f"{t1}→{t2}", **{key: {k: v / (t2 - t1) for k, v in _difference(d2[key], d1[key]).items()}
                                                         for key in d1}}
        else:
            (t1, d1), = deltas
            per_kind[step] = {"targets": str(t1), **{key: {k: v / t1 for k, v in d1[key].items()} for key in d1}}
    ctx.results["per_target"] = {
        "targets": [n, n2], "medians": {str(k): v for k, v in med.items()}, "ms_slope": slope,
        "cpu_ms_slope": slope_cpu, "provider_ms_per_target": provider_ms, "ms_per_target": ms, "ms_old": ms_old,
        "kinds": per_kind, "builder": {"seconds": builder_s, "calls": builder_calls}}
    verdicts = [
        at_most("per-target", f"builder work per built target (stub, slope {n}→{n2}, less the provider's own time)",
                ms, 3.0, " ms",
                f"{ms:.1f} ms = {slope:.1f} ms slope (cpu {slope_cpu:.1f} ms) − {provider_ms:.1f} ms in the stub "
                f"provider; the older measure, (build {build_wall:.2f} s − no-op {noop_wall:.2f} s) / {n}: "
                f"{ms_old:.1f} ms; inside Builder.build, counters on: "
                f"{builder_s / max(1, builder_calls) * 1000:.1f} ms a call")]
    for step, _ in KINDS:
        found = per_kind[step]
        sql = found["sql"]
        sql_ours, sql_doit = _split(sql, lambda k: k.startswith(DOIT_STATE))
        ports = found["ports"]
        state_calls = sum(v for k, v in ports.items() if not k.startswith("StoryStore."))
        label = {"ref": "reference", "image": "key frame", "video": "video"}[step]
        verdicts.append(info(
            "per-target", f"record-port calls per {label} ({found['targets']})",
            f"{state_calls:.1f} ({_fmt({k: v for k, v in ports.items() if not k.startswith('StoryStore.')})}); "
            f"story store: {_fmt({k: v for k, v in ports.items() if k.startswith('StoryStore.')})}", state_calls))
        limit = 9 if step == "video" else 6  # a video's operation row: written twice before it is recorded, deleted
        verdicts.append(at_most("per-target", f"SQL statements per {label} (storytree's files)", sql_ours, limit, "",
                                f"{sql_ours:.1f} ({_fmt({k: v for k, v in sql.items() if not k.startswith(DOIT_STATE)})}); "
                                f"doit's own state: {sql_doit:.1f} more"))
        py_fsync = sum(found["py_fsync"].values())
        if found["strace_fsync"]:
            ours, doit = _split(found["strace_fsync"], lambda k: DOIT_STATE in k)
            verdicts.append(at_most("per-target", f"fsyncs per {label} (strace; storytree's)", ours, 2, "",
                                    f"{ours:.2f} ({_fmt(found['strace_fsync'])}); doit's own state: {doit:.2f}; "
                                    f"Python os.fsync calls: {py_fsync:.2f}"))
        else:
            verdicts.append(info("per-target", f"fsyncs per {label}", f"Python os.fsync calls only (no strace): "
                                 f"{py_fsync:.2f}; SQLite's own are not seen", py_fsync))
    return verdicts
