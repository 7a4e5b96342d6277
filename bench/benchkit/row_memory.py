"""Row `memory`: peak RSS of `doit dryrun --json` listing every target at 5,002 (provider=gemini: all would run), and
of the first stub build of the largest size, with the RSS sampled every half second while it builds.

The first build is the one that made the kept scratch project when it was made by this run or by the same code
(the marker stores the code digest); otherwise a throwaway project is built from scratch to measure it. "Flat" means
no RSS sampled after a quarter of the build exceeds FLAT × the RSS a quarter of the way through it. Peaks are
the child's own VmHWM read from /proc while it runs (ru_maxrss would count the bench's own RSS: a forked child starts
with its parent's high-water mark)."""

from __future__ import annotations

import statistics

from .context import Context
from .projects import FirstBuild, fresh_first_build
from .report import Verdict, at_most, info
from .timing import sampled

DRYRUN_SIZE = 5002
FLAT = 1.10


def _series(first: FirstBuild, points: int = 8) -> str:
    """RSS at evenly spaced moments of the build, and the highest sample."""
    if not first.samples:
        return "no samples"
    step = max(1, len(first.samples) // points)
    chosen = first.samples[step - 1::step][:points]
    if chosen[-1] is not first.samples[-1]:
        chosen.append(first.samples[-1])
    top = max(first.samples, key=lambda s: s.rss_kib)
    return (", ".join(f"{s.seconds:.0f}s {s.rss_kib / 1024:.0f}" for s in chosen) +
            f" MiB; highest sample {top.rss_kib / 1024:.0f} MiB at {top.seconds:.0f}s")


def flatness(first: FirstBuild) -> float | None:
    """The highest RSS sampled after a quarter of the build / the RSS a quarter of the way (None: too few samples)."""
    if len(first.samples) < 4:
        return None
    quarter = min(first.samples, key=lambda s: abs(s.seconds - first.wall / 4))
    later = max(s.rss_kib for s in first.samples if s.seconds >= quarter.seconds)
    return later / quarter.rss_kib


def run(ctx: Context) -> list[Verdict]:
    verdicts = []
    n = DRYRUN_SIZE if DRYRUN_SIZE in ctx.sizes else max(ctx.sizes)
    project = ctx.project(ctx.current, n)
    ctx.log(f"memory row: `doit dryrun --json` at {n:,}, {ctx.extra_reps} runs")
    peaks, walls = [], []
    for rep in range(ctx.extra_reps):
        result = sampled(project.dryrun_all_argv("--json"), project.proj, project.env(), every=0.05)
        if result.run.rc != 0 or not result.run.out.lstrip().startswith(("{", "[")):
            raise SystemExit(f"memory row: not a JSON dry-run (rc {result.run.rc}):\n{result.run.out[-2000:]}")
        peaks.append(result.peak_kib)
        walls.append(result.run.wall)
        size_mb = len(result.run.out.encode()) / 1e6
        ctx.log(f"  memory rep {rep + 1}/{ctx.extra_reps}: {result.run.wall:.2f}s, peak {result.peak_kib / 1024:.0f} "
                f"MiB (ru_maxrss {result.run.rss_kib / 1024:.0f} MiB)")
    rss = statistics.median(peaks) / 1024
    verdicts.append(at_most("memory", f"peak RSS, `doit dryrun --json` at {n:,}", rss, 150, " MiB",
                            f"{rss:.0f} MiB (median of {len(peaks)}; {size_mb:.1f} MB of JSON; "
                            f"{statistics.median(walls):.2f} s)"))

    big = max(ctx.sizes)
    kept = ctx.project(ctx.current, big).first_build
    digest = ctx.current.code_digest()
    if kept is not None and (kept.this_run or kept.code == digest):
        first, where = kept, "this run" if kept.this_run else f"{kept.measured_at}, same code"
    else:
        ctx.log(f"memory row: the kept {big:,}-target project was built by other code: a fresh first build")
        first, where = fresh_first_build(ctx.current, big, ctx.workers, log=ctx.log), "this run, throwaway project"
    flat = flatness(first)
    mb = first.rss_kib * 1024 / 1e6
    ctx.results["memory"] = {"dryrun_json_rss_mib": rss, "dryrun_json_mb": size_mb, "first_build": first.to_json(),
                             "flatness": flat}
    verdicts.append(at_most("memory", f"peak RSS, first stub build of {first.targets:,} (-n {first.workers})", mb,
                            400, " MB", f"{mb:.0f} MB in {first.wall:.0f} s ({where})"))
    if flat is None:
        verdicts.append(info("memory", "RSS during that build", f"too short to sample ({_series(first)})"))
    else:
        verdicts.append(at_most("memory", "highest RSS after a quarter of the build / RSS at a quarter (flat)", flat, FLAT, "×",
                                f"{flat:.2f}× ({_series(first)})"))
    return verdicts
