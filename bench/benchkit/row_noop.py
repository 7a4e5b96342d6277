"""Rows `noop-vs-doit-version` and `noop-vs-plain`, and with --baseline the "no slower than before" checks.

All no-op commands run in one alternating measurement: `doit --version` (the floor of any doit tool),
`storytree --help`, and at every size the storytree no-op, plain doit over the same manifest (bench/plain_dodo.py) and
the baseline revision's no-op of its own project. `storytree manifest` (current and baseline) is timed afterwards in
its own alternation, since rewriting a manifest makes the next no-op a cold one."""

from __future__ import annotations

from .context import Context
from .report import Verdict, at_most, info
from .timing import Command, Series, alternate

SMALL = 34  # the sample-sized story of the doit --version row
BASELINE_RATIO = 1.05  # issues 20 and 21: current / baseline
MANIFEST_SIZES = (498, 5002)


def _ratio(a: Series, b: Series) -> str:
    return f"{a.wall:.3f} s / {b.wall:.3f} s = {a.wall / b.wall:.2f}× (cpu {a.cpu / b.cpu:.2f}×)"


def run(ctx: Context, rows: set[str]) -> list[Verdict]:
    cur, base = ctx.current, ctx.baseline
    sizes = [n for n in ctx.sizes if "noop-vs-plain" in rows or n == SMALL]
    small = ctx.project(cur, SMALL) if "noop-vs-doit-version" in rows and SMALL in ctx.sizes else None
    commands: list[Command] = []
    if small is not None:
        commands += [Command("doit --version", [cur.doit, "--version"], small.proj, small.env()),
                     Command("storytree --help", [cur.storytree, "--help"], small.proj, small.env())]
        if base is not None:
            bsmall = ctx.project(base, SMALL)
            commands.append(Command(f"{base.name} storytree --help", [base.storytree, "--help"], bsmall.proj,
                                    bsmall.env()))
    for n in sizes:
        project = ctx.project(cur, n)
        commands += [Command(f"no-op {n}", project.noop_argv(), project.proj, project.env(), project.check_noop),
                     Command(f"plain {n}", project.plain_argv(), project.proj, project.env(), project.check_plain)]
        if base is not None:
            old = ctx.project(base, n)
            commands.append(Command(f"{base.name} no-op {n}", old.noop_argv(), old.proj, old.env(), old.check_noop))
    if not commands:
        return []
    ctx.log(f"no-op rows: warm-up, then {ctx.reps} alternating repetitions of {len(commands)} commands")
    series = alternate(commands, ctx.reps, "no-op")
    if base is not None:
        series.update(_manifests(ctx, sizes))
    ctx.results["noop"] = {key: {"wall": s.wall, "cpu": s.cpu, "spread": s.spread,
                                 "runs": len(s.runs)} for key, s in series.items()}
    return _verdicts(ctx, series, small is not None, sizes)


def _manifests(ctx: Context, sizes: list[int]) -> dict[str, Series]:
    assert ctx.baseline is not None
    commands = []
    for n in (n for n in MANIFEST_SIZES if n in sizes):
        for tc in ctx.toolchains:
            project = ctx.project(tc, n)
            prefix = "" if tc is ctx.current else f"{tc.name} "
            commands.append(Command(f"{prefix}manifest {n}", project.manifest_argv(), project.proj, project.env()))
    if not commands:
        return {}
    ctx.log(f"`storytree manifest`: {ctx.reps} alternating repetitions, current and {ctx.baseline.name}")
    return alternate(commands, ctx.reps, "manifest")


def _verdicts(ctx: Context, series: dict[str, Series], small: bool, sizes: list[int]) -> list[Verdict]:
    verdicts = []
    if small:
        floor = series["doit --version"]
        noop, help_ = series[f"no-op {SMALL}"], series["storytree --help"]
        verdicts += [
            at_most("noop-vs-doit-version", f"no-op, {SMALL} targets / `doit --version`", noop.wall / floor.wall, 1.8,
                    "×", _ratio(noop, floor)),
            at_most("noop-vs-doit-version", "`storytree --help` / `doit --version`", help_.wall / floor.wall, 1.8,
                    "×", _ratio(help_, floor)),
        ]
    for n in sizes:
        noop, plain = series[f"no-op {n}"], series[f"plain {n}"]
        ratio = noop.wall / plain.wall
        if n >= 5000:
            verdicts.append(at_most("noop-vs-plain", f"no-op {n:,} / plain doit", ratio, 0.4, "×", _ratio(noop, plain)))
        elif n >= 400:
            verdicts.append(at_most("noop-vs-plain", f"no-op {n:,} / plain doit", ratio, 1.0, "×", _ratio(noop, plain)))
        else:
            verdicts.append(info("noop-vs-plain", f"no-op {n:,} / plain doit", _ratio(noop, plain), ratio))
    base = ctx.baseline
    if base is not None:
        pairs = [(f"no-op {n}", f"{base.name} no-op {n}", f"no-op {n:,}") for n in sizes]
        if small:
            pairs.append(("storytree --help", f"{base.name} storytree --help", "`storytree --help`"))
        pairs += [(f"manifest {n}", f"{base.name} manifest {n}", f"`storytree manifest` {n:,}")
                  for n in MANIFEST_SIZES if f"manifest {n}" in series]
        for now, before, label in pairs:
            verdicts.append(at_most("baseline", f"{label}: current / {base.name}", series[now].wall / series[before].wall,
                                    BASELINE_RATIO, "×", _ratio(series[now], series[before])))
    return verdicts
