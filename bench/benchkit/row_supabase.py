"""Row `supabase-noop-requests` (optional): HTTP requests of a no-op build on the Supabase store at two sizes.

A throwaway PostgreSQL cluster with supabase/migrations applied and a real PostgREST in front of it, started with
tests/support/pg_services.py (the test services); storytree talks to it through that module's /rest/v1 proxy, which
counts every request. Each story is imported, its manifest written and built with the stub provider, then the no-op
runs twice: the second run's requests are reported (the first may still settle caches). Goal: the same count at both
sizes. When PostgreSQL or PostgREST is not installed the row says so and measures nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from noop import synthetic_export

from .context import Context
from .report import Verdict, info
from .timing import Run, timed

SIZES = (34, 498)


def _unavailable(reason: str) -> list[Verdict]:
    return [info("supabase-noop-requests", "HTTP requests of a no-op build", f"not measured: {reason}")]


def _must(what: str, run: Run) -> Run:
    if run.rc != 0:
        raise SystemExit(f"supabase row: {what} failed (rc {run.rc}):\n{run.out[-3000:]}")
    return run


def run(ctx: Context) -> list[Verdict]:
    try:
        import pytest
        from support import pg_services as pg
    except ImportError as exc:
        return _unavailable(f"tests/support/pg_services.py cannot be imported ({exc})")
    pg_bin, postgrest = pg.find_pg_bin(), pg.find_postgrest()
    if pg_bin is None or postgrest is None:
        return _unavailable("PostgreSQL or PostgREST is not installed (`.ci/services-install`)")
    stops = []
    try:
        try:
            cluster = pg.PgCluster(pg_bin)
            cluster.start()
            stops.append(cluster.stop)
            cluster.apply_migrations()
            server = pg.PostgrestServer(postgrest, cluster, "postgres", cluster.root)
            server.start()
            stops.append(server.stop)
            proxy = pg.PrefixStrippingProxy(server.port)
            proxy.start()
            stops.append(proxy.stop)
        except (Exception, pytest.skip.Exception) as exc:  # services_unavailable() skips, as in the tests
            return _unavailable(f"the test services did not start ({exc})")
        store_env = {"STORYTREE_STORE": "supabase", "SUPABASE_URL": proxy.url,
                     "SUPABASE_SERVICE_ROLE_KEY": pg.mint_jwt("service_role")}
        counts = {}
        for n in SIZES:
            counts[n] = _noop_requests(ctx, n, store_env, proxy)
            ctx.log(f"supabase row: {n} targets: {counts[n]} requests in a no-op")
    finally:
        for stop in reversed(stops):
            stop()
    ctx.results["supabase_noop_requests"] = counts
    values = list(counts.values())
    constant = len(set(values)) == 1
    shown = ", ".join(f"{n} targets: {c}" for n, c in counts.items())
    return [Verdict("supabase-noop-requests", "HTTP requests of a no-op build (Supabase store)", values[-1], shown,
                    "the same at every size", constant)]


def _noop_requests(ctx: Context, n: int, store_env: dict[str, str], proxy) -> int:  # noqa: ANN001 - the test proxy
    story_id, export = synthetic_export(n)
    proj = ctx.current.out / f"supabase-n{n}"
    shutil.rmtree(proj, ignore_errors=True)
    (proj / "manifests").mkdir(parents=True)
    for folder in ("templates", "system_prompts"):
        shutil.copytree(ctx.current.root / folder, proj / folder)
    shutil.copy2(ctx.current.root / "dodo.py", proj / "dodo.py")
    export_file = proj / "story-export.json"
    export_file.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    env = ctx.current.env(STORYTREE_ROOT=str(proj), **store_env)
    cur = ctx.current

    def step(what: str, argv: list[str]) -> Run:
        return _must(what, timed(argv, Path(proj), env))

    step("import", [cur.storytree, "import", str(export_file)])
    step("manifest", [cur.storytree, "manifest", story_id])
    noop = [cur.doit, f"story:{story_id}", "provider=stub"]
    step("build", [cur.doit, "--process", str(ctx.workers), "-P", "thread", f"story:{story_id}", "provider=stub"])
    step("first no-op", noop)
    before = proxy.requests
    second = step("no-op", noop)
    if "storytree: 0 built" not in second.out:
        raise SystemExit(f"supabase row: the {n}-target no-op built something:\n{second.out[-3000:]}")
    return proxy.requests - before
