"""Row `memory`: peak RSS of `doit dryrun --json` listing every target at 5,002 (provider=gemini: all would run), and
of the first stub build of the largest size, with the RSS sampled every half second while it builds.

The first build is the one that made the kept scratch project when it was made by this run or by the same code
(the marker stores the code digest); otherwise a throwaway project is built from scratch to measure it. "Flat" means
the RSS at the end of the build is at most FLAT × the RSS a quarter of the way through it."""

from __future__ import annotations

import statistics

from .context import Context
from .projects import FirstBuild, fresh_first_build
from .report import Verdict, at_most, info
from .timing import Command, alternate

DRYRUN_SIZE = 5002
FLAT = 1.10


def _series(first: FirstBuild, points: int = 8) -> str:
    if not first.samples:
        return "no samples"
    step = max(1, len(first.samples) // points)
    chosen = first.samples[step - 1::step][:points]
    if chosen[-1] is not first.samples[-1]:
        chosen.append(first.samples[-1])
    return ", ".join(f"{s.seconds:.0f}s {s.rss_kib / 1024:.0f}" for s in chosen) + " MiB"


def flatness(first: FirstBuild) -> float | None:
    """RSS at the last sample / RSS at a quarter of the build's time (None: too few samples)."""
    if len(first.samples) < 4:
        return None
    quarter = min(first.samples, key=lambda s: abs(s.seconds - first.wall / 4))
    return first.samples[-1].rss_kib / quarter.rss_kib


def run(ctx: Context) -> list[Verdict]:
    verdicts = []
    n = DRYRUN_SIZE if DRYRUN_SIZE in ctx.sizes else max(ctx.sizes)
    project = ctx.project(ctx.current, n)
    command = Command(f"dryrun --json {n}", project.dryrun_all_argv("--json"), project.proj, project.env(),
                      lambda run: None if run.rc == 0 and run.out.lstrip().startswith(("{", "[")) else
                      f"not a JSON dry-run (rc {run.rc})")
    ctx.log(f"memory row: `doit dryrun --json` at {n:,}, {ctx.extra_reps} runs")
    runs = alternate([command], ctx.extra_reps, "memory")[command.key].runs
    rss = statistics.median(r.rss_kib for r in runs) / 1024
    size_mb = len(runs[-1].out.encode()) / 1e6
    verdicts.append(at_most("memory", f"peak RSS, `doit dryrun --json` at {n:,}", rss, 150, " MiB",
                            f"{rss:.0f} MiB (median of {len(runs)}; {size_mb:.1f} MB of JSON; "
                            f"{statistics.median(r.wall for r in runs):.2f} s)"))

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
        verdicts.append(at_most("memory", "RSS at the end / a quarter of the way (flat)", flat, FLAT, "×",
                                f"{flat:.2f}× ({_series(first)})"))
    return verdicts
