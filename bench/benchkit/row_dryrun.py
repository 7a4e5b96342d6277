"""Row `dryrun-vs-snakemake`: `doit dryrun story:<id> provider=gemini` listing every target of the 5,002-target story
(provider changed: all would run) against `snakemake -n` listing every job of the same graph (bench/benchkit/
snakefile.py), alternating. Runs only when snakemake is importable in this venv (`pip install snakemake`: a
bench-only extra, not a CI dependency)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil

from .context import Context
from .report import Verdict, at_least, info
from .snakefile import write_workflow
from .timing import Command, Run, alternate

SIZE = 5002
GOAL = 20.0  # doit's dry-run at least this many times faster


STYLES = ("wildcard", "per-rule")  # see snakefile.py: the idiomatic workflow, and one rule per target


def _listed_assets(out: str) -> int:
    """Asset jobs in Snakemake's first "Job stats" table (a dry run prints it twice): one `asset` line with the
    count, or one line per asset rule."""
    if "Job stats:" not in out:
        return 0
    out = out.split("Job stats:", 1)[1].split("\ntotal", 1)[0]
    wildcard = re.search(r"^asset\s+(\d+)$", out, re.M)
    if wildcard:
        return int(wildcard.group(1))
    return sum(int(count) for count in re.findall(r"^asset_\d+\s+(\d+)$", out, re.M))


def run(ctx: Context) -> list[Verdict]:
    n = SIZE if SIZE in ctx.sizes else max(ctx.sizes)
    if importlib.util.find_spec("snakemake") is None:
        return [info("dryrun-vs-snakemake", f"dry-run {n:,} vs Snakemake -n",
                     "not measured: snakemake is not installed (`.venv/bin/pip install snakemake`)")]
    version = importlib.metadata.version("snakemake")
    project = ctx.project(ctx.current, n)
    commands = [Command(f"doit dryrun {n}", project.dryrun_all_argv(), project.proj, project.env(),
                        project.check_dryrun_all)]
    for style in STYLES:
        folder = ctx.current.out / f"snakemake-{style}-n{n}"
        shutil.rmtree(folder, ignore_errors=True)  # no output and no .snakemake/ state: every job is listed
        jobs = write_workflow(project.manifest, folder, style)

        def check(run: Run, jobs: int = jobs) -> str | None:
            if run.rc != 0 or _listed_assets(run.out) != jobs:
                return f"snakemake -n did not list {jobs} asset jobs (rc {run.rc})"
            return None

        commands.append(Command(f"snakemake -n {style} {n}", [ctx.current.python, "-m", "snakemake", "-n", "--cores",
                                                              "1"], folder, ctx.current.env(), check))
    ctx.log(f"dry-run row: {ctx.extra_reps} alternating repetitions at {n:,} targets (Snakemake {version})")
    series = alternate(commands, ctx.extra_reps, "dry-run")
    ours = series[f"doit dryrun {n}"]
    ctx.results["dryrun"] = {key: {"wall": s.wall, "cpu": s.cpu, "spread": s.spread} for key, s in series.items()}
    verdicts = []
    for style in STYLES:
        theirs = series[f"snakemake -n {style} {n}"]
        speedup = theirs.wall / ours.wall
        shown = (f"doit {ours.wall:.2f} s, Snakemake {version} {theirs.wall:.2f} s: {speedup:.1f}× faster "
                 f"(cpu {theirs.cpu / ours.cpu:.1f}×)")
        verdicts.append(at_least("dryrun-vs-snakemake", f"dry-run listing {n:,} vs `snakemake -n`, {style} Snakefile",
                                 speedup, GOAL, "×", shown))
    return verdicts
