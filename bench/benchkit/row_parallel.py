"""Row `parallel-sdk`: N text-only shot key frames (bench/parallel.py's story) built by `doit -n 8 -P thread image`
with the gemini provider — the real google-genai SDK — against the fake Gemini server of tests/support/fakes on
127.0.0.1, which answers every image call after L seconds. `[gemini] max_concurrency = 8` and a configured rate
limit a hundred times the test rate, so the limiter admits every call at once and never paces: the ideal wall time
is N·L/8. Then the same with the stub provider and STORYTREE_STUB_DELAY=L. Each repetition builds a fresh copy of
one unbuilt project; the gemini and stub builds alternate. Reported: wall / (N·L/8), and the same without the
command's own no-op time (start-up, manifest, checks)."""

from __future__ import annotations

import shutil
import statistics

import yaml
from parallel import scratch_project
from support.fakes.gemini_server import FakeGemini

from .context import Context
from .report import Verdict, at_most, info
from .timing import Run, timed

WORKERS = 8
GOALS = {0.2: 1.5, 1.0: 1.10, 2.0: 1.05}  # wall / (N·L/8), issue 25
KEY = "bench-key-not-secret"


def _template(ctx: Context, n: int) -> tuple[str, str]:
    """(project folder, key-frame model) of the unbuilt project, with its storytree.toml."""
    root = ctx.current.out / f"parallel-sdk-n{n}"
    scratch_project(root, n)
    with open(next((root / "manifests").glob("*.yaml")), "rb") as handle:
        manifest = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    frames = [t for t in manifest["targets"] if t["kind"] == "key_frame"]  # the `image` group (videos not built)
    models = {t["model"] for t in frames}
    if len(models) != 1 or len(frames) != n:
        raise SystemExit(f"parallel-sdk: expected {n} key frames of one model, found {len(frames)} of {sorted(models)}")
    model = models.pop()
    rate = 100 * WORKERS / min(GOALS)  # far above what 8 threads can ask for at any latency measured
    (root / "storytree.toml").write_text(
        f'[gemini]\nmax_concurrency = {WORKERS}\n\n[gemini.rate_limits]\n"{model}" = "{rate:g}/s"\n', encoding="utf-8")
    return str(root), model


def _build(ctx: Context, template: str, env_extra: dict[str, str], argv_tail: list[str], n: int) -> tuple[Run, Run]:
    """(fresh build, its no-op) in a new copy of the template."""
    proj = ctx.current.out / "parallel-sdk-run"
    shutil.rmtree(proj, ignore_errors=True)
    shutil.copytree(template, proj)
    env = ctx.current.env(STORYTREE_ROOT=str(proj), STORYTREE_STATE_DIR=str(proj / ".storytree"), **env_extra)
    argv = [ctx.current.doit, "--process", str(WORKERS), "-P", "thread", "image", *argv_tail]
    build = timed(argv, proj, env)
    if build.rc != 0 or f"storytree: {n} built" not in build.out:
        raise SystemExit(f"parallel-sdk: the build did not build {n} targets (rc {build.rc}):\n{build.out[-3000:]}")
    noop = timed(argv, proj, env)
    if noop.rc != 0 or "storytree: 0 built" not in noop.out:
        raise SystemExit(f"parallel-sdk: the second run was not a no-op (rc {noop.rc}):\n{noop.out[-3000:]}")
    return build, noop


def run(ctx: Context, latencies: list[float], n: int) -> list[Verdict]:
    template, model = _template(ctx, n)
    verdicts: list[Verdict] = []
    figures = ctx.results.setdefault("parallel", {})
    for latency in latencies:
        ideal = n * latency / WORKERS
        runs: dict[str, list[tuple[Run, Run]]] = {"gemini": [], "stub": []}
        in_flight = []
        ctx.log(f"parallel-sdk row: N={n}, L={latency:g} s, {WORKERS} threads, ideal {ideal:.2f} s; "
                f"{ctx.extra_reps} repetitions of gemini (real SDK, fake server) and stub")
        for rep in range(ctx.extra_reps):
            with FakeGemini(latency=latency) as fake:
                env = {"GEMINI_API_KEY": KEY, "STORYTREE_PROVIDER": "gemini", "GOOGLE_GEMINI_BASE_URL": fake.url,
                       "STORYTREE_YES": "1"}  # consent: no terminal here
                runs["gemini"].append(_build(ctx, template, env, [], n))
                calls = len(fake.image_calls(model))
                in_flight.append(fake.max_in_flight.get(model, 0))
            if calls != n:
                raise SystemExit(f"parallel-sdk: the fake server answered {calls} image calls for {n} targets")
            runs["stub"].append(_build(ctx, template, {"STORYTREE_STUB_DELAY": str(latency)}, ["provider=stub"], n))
            ctx.log(f"  L={latency:g} rep {rep + 1}/{ctx.extra_reps}: gemini {runs['gemini'][-1][0].wall:.2f}s "
                    f"(max {in_flight[-1]} in flight), stub {runs['stub'][-1][0].wall:.2f}s")
        for provider, pairs in runs.items():
            wall = statistics.median(b.wall for b, _ in pairs)
            noop = statistics.median(o.wall for _, o in pairs)
            ratio = wall / ideal
            shown = (f"{wall:.2f} s / {ideal:.2f} s = {ratio:.2f}× (without its {noop:.2f} s no-op: "
                     f"{(wall - noop) / ideal:.2f}×)" + (f"; max {max(in_flight)} calls in flight, {n} calls"
                                                         if provider == "gemini" else ""))
            figures[f"{provider} L={latency:g}"] = {"wall": wall, "noop": noop, "ideal": ideal, "ratio": ratio,
                                                     "walls": [b.wall for b, _ in pairs]}
            measure = (f"{n} key frames, real SDK, L = {latency:g} s: wall / (N·L/8)" if provider == "gemini" else
                       f"{n} key frames, stub provider, delay {latency:g} s: wall / (N·L/8)")
            if provider == "gemini" and latency in GOALS:
                verdicts.append(at_most("parallel-sdk", measure, ratio, GOALS[latency], "×", shown))
            else:
                verdicts.append(info("parallel-sdk", measure, shown, ratio))
    shutil.rmtree(ctx.current.out / "parallel-sdk-run", ignore_errors=True)
    return verdicts
