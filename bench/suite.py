"""One bench for every speed and memory goal of issue 25, each printed as a ratio measured in this one run.

    .venv/bin/python bench/suite.py                                   # every row, sizes 34,498,5002
    .venv/bin/python bench/suite.py --sizes 34,498,5002,20002 --reps 7 --json out.json
    .venv/bin/python bench/suite.py --rows noop-vs-doit-version,noop-vs-plain --baseline c6f1d3e
    .venv/bin/python bench/suite.py --rows parallel-sdk --latencies 0.2,1,2

Rows (--rows, comma-separated; default all):
  noop-vs-doit-version   no-op of the 34-target story and `storytree --help` against `doit --version`
  noop-vs-plain          no-op at every size against plain doit over the same manifest (bench/plain_dodo.py)
  dryrun-vs-snakemake    `doit dryrun` listing all targets at 5,002 against Snakemake `-n` on the same graph
                         (only when snakemake is importable: `pip install snakemake`, a bench-only extra)
  parallel-sdk           160 key frames through the real google-genai SDK against the fake Gemini server with
                         latency L, 8 threads, max_concurrency 8, a rate limit far above the test rate: wall/(N·L/8);
                         and the stub provider with STORYTREE_STUB_DELAY=L
  per-target             builder work per built target (stub, 98 targets): ms, record-port calls, SQL statements,
                         fsyncs (strace when available)
  memory                 peak RSS of `doit dryrun --json` at 5,002, and of the first stub build of the largest size,
                         with RSS sampled while it builds
  supabase-noop-requests HTTP requests of a no-op build on the Supabase store at two sizes (when the test
                         Postgres + PostgREST of tests/support/pg_services.py can start)

Scratch projects live in bench/out/ (git-ignored) and are reused when their story export is byte-identical; the first
stub build of 20,002 targets takes minutes, so that size is built only when --sizes names it. With --baseline REV the
no-op rows (and `storytree manifest` at 498/5,002) also run REV's code, exported to bench/out/baseline-<rev>/ with its
own venv and its own scratch projects, and current/baseline ratios are checked against 1.05.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "tests")]

from benchkit import (row_dryrun, row_memory, row_noop, row_parallel, row_per_target,  # noqa: E402
                      row_supabase)
from benchkit.context import Context  # noqa: E402
from benchkit.report import Verdict, table  # noqa: E402
from benchkit.timing import BenchFailure  # noqa: E402
from benchkit.toolchain import OUT, baseline, current  # noqa: E402

ROWS = ("noop-vs-doit-version", "noop-vs-plain", "dryrun-vs-snakemake", "parallel-sdk", "per-target", "memory",
        "supabase-noop-requests")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="34,498,5002",
                    help="target counts of the generated stories (default 34,498,5002; 20002 when asked)")
    ap.add_argument("--rows", default=",".join(ROWS), help=f"rows to run (default all): {', '.join(ROWS)}")
    ap.add_argument("--reps", type=int, default=7, help="alternating repetitions of the quick commands (default 7)")
    ap.add_argument("--extra-reps", type=int, default=3,
                    help="repetitions of slow commands: Snakemake, dry-run listings, builds (default 3)")
    ap.add_argument("--latencies", default="0.2,1,2", help="parallel-sdk: server latencies L in seconds")
    ap.add_argument("--parallel-targets", type=int, default=160, help="parallel-sdk: key frames N (default 160)")
    ap.add_argument("--baseline", metavar="REV", help="also run the no-op rows with this revision's code")
    ap.add_argument("--workers", type=int, default=4, help="doit -n of the first builds of scratch projects")
    ap.add_argument("--fresh", action="store_true", help="rebuild the scratch projects instead of reusing them")
    ap.add_argument("--resync", action="store_true",
                    help="copy the current templates and system prompts into reused projects (may rebuild a lot)")
    ap.add_argument("--json", help="also write every figure to this file")
    args = ap.parse_args(argv)
    args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown:
        ap.error(f"unknown rows {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    args.latencies = [float(x) for x in args.latencies.split(",") if x.strip()]
    if args.reps < 1 or args.extra_reps < 1:
        ap.error("--reps and --extra-reps must be at least 1")
    return args


def machine_line() -> str:
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in ("doit", "PyYAML", "pydantic",
                                                                                    "google-genai"))
    return (f"{time.strftime('%Y-%m-%d %H:%M %Z')} · nproc {os.cpu_count()} · Python {platform.python_version()} · "
            f"{platform.machine()} · {versions}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)
    rows = set(args.rows)
    cur = current()
    ctx = Context(cur, baseline(args.baseline) if args.baseline else None, args.sizes, args.reps, args.extra_reps,
                  args.workers, reuse=not args.fresh, resync=args.resync)
    load_before = os.getloadavg()
    print(f"bench/suite.py {' '.join(argv)}\n{machine_line()}\ncode: current storytree_build {cur.code_digest()}"
          + (f", baseline {ctx.baseline.name} {ctx.baseline.code_digest()}" if ctx.baseline else ""), flush=True)
    verdicts: list[Verdict] = []
    steps = [
        (rows & {"noop-vs-doit-version", "noop-vs-plain"}, lambda: row_noop.run(ctx, rows)),
        ("dryrun-vs-snakemake" in rows, lambda: row_dryrun.run(ctx)),
        ("per-target" in rows, lambda: row_per_target.run(ctx)),
        ("memory" in rows, lambda: row_memory.run(ctx)),
        ("parallel-sdk" in rows, lambda: row_parallel.run(ctx, args.latencies, args.parallel_targets)),
        ("supabase-noop-requests" in rows, lambda: row_supabase.run(ctx)),
    ]
    try:
        for wanted, step in steps:
            if wanted:
                verdicts += step()
    except BenchFailure as failure:
        print(f"\nbench stopped: {failure}", file=sys.stderr)
        return 2
    load_after = os.getloadavg()
    print(f"\n== results · {machine_line()}\nload average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} "
          f"after · medians of {args.reps} alternating repetitions ({args.extra_reps} for slow commands) · "
          f"wall time; cpu = user+sys of the child · bench took {time.perf_counter() - started:.0f} s\n")
    print(table(verdicts))
    missed = sum(1 for v in verdicts if v.met is False)
    print(f"\n{sum(1 for v in verdicts if v.met)} met, {missed} missed, "
          f"{sum(1 for v in verdicts if v.met is None)} informational")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "argv": argv, "machine": machine_line(), "load": [load_before, load_after],
            "verdicts": [v.__dict__ | {"verdict": v.verdict} for v in verdicts], "figures": ctx.results},
            indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
