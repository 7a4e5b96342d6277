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


def run(ctx: Context) -> list[Verdict]:
    n = SIZE if SIZE in ctx.sizes else max(ctx.sizes)
    if importlib.util.find_spec("snakemake") is None:
        return [info("dryrun-vs-snakemake", f"dry-run {n:,} vs Snakemake -n",
                     "not measured: snakemake is not installed (`.venv/bin/pip install snakemake`)")]
    project = ctx.project(ctx.current, n)
    folder = ctx.current.out / f"snakemake-n{n}"
    shutil.rmtree(folder, ignore_errors=True)  # no output and no .snakemake/ state: every job is listed
    jobs = write_workflow(project.manifest, folder)

    def check_snakemake(run: Run) -> str | None:
        listed = re.search(r"^asset\s+(\d+)$", run.out, re.M)
        if run.rc != 0 or not listed or int(listed.group(1)) != jobs:
            return f"snakemake -n did not list {jobs} asset jobs (rc {run.rc})"
        return None

    commands = [
        Command(f"doit dryrun {n}", project.dryrun_all_argv(), project.proj, project.env(), project.check_dryrun_all),
        Command(f"snakemake -n {n}", [ctx.current.python, "-m", "snakemake", "-n", "--cores", "1"], folder,
                ctx.current.env(), check_snakemake),
    ]
    ctx.log(f"dry-run row: {ctx.extra_reps} alternating repetitions at {n:,} targets "
            f"(Snakemake {importlib.metadata.version('snakemake')})")
    series = alternate(commands, ctx.extra_reps, "dry-run")
    ours, theirs = series[f"doit dryrun {n}"], series[f"snakemake -n {n}"]
    ctx.results["dryrun"] = {key: {"wall": s.wall, "cpu": s.cpu, "spread": s.spread} for key, s in series.items()}
    speedup = theirs.wall / ours.wall
    shown = (f"{ours.wall:.2f} s vs {theirs.wall:.2f} s (Snakemake {importlib.metadata.version('snakemake')}) = "
             f"{speedup:.1f}× faster (cpu {theirs.cpu / ours.cpu:.1f}×)")
    return [at_least("dryrun-vs-snakemake", f"dry-run listing {n:,}: Snakemake -n / doit dryrun", speedup, GOAL, "×",
                     shown)]
