"""Paid files against cheaper builds and a remote that fails: a stub build over a Gemini-built story changes no paid
file; a remote that is down, refuses or hands back wrong bytes never stops a build, loses nothing or pays anything;
`storytree push` later sends what is missing; a no-op never asks the remote."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from support.fakes.gemini_server import FakeGemini
from support.project import ASSETS, SAMPLE_ID, doit, import_story, manifest_of, new_project, project_env, records_of
from test_gemini_images import KEY, write_config

STORY = f"story:{SAMPLE_ID}"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_of(root: Path) -> dict[str, str]:
    return {p.relative_to(root / ASSETS).as_posix(): sha(p) for p in (root / ASSETS).rglob("*") if p.is_file()}


# -- a cheaper provider never replaces a paid file ---------------------------------------------------------------
@pytest.fixture(scope="module")
def gemini_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's references and key frames paid for through the real SDK against the fake Gemini server."""
    root = new_project(tmp_path_factory.mktemp("paid") / "project")
    write_config(root)
    import_story(root)
    with FakeGemini() as fake:
        run = doit(root, "ref", "image", env=project_env(root, GEMINI_API_KEY=KEY, GOOGLE_GEMINI_BASE_URL=fake.url))
        assert run.returncode == 0, run.stdout + run.stderr
        assert len(fake.image_calls()) == 24
    return root


def test_a_stub_build_over_a_gemini_built_story_changes_no_paid_file(gemini_built: Path, tmp_path: Path):
    project = tmp_path / "project"
    shutil.copytree(gemini_built, project)
    paid = files_of(project)
    plan = doit(project, "dryrun", "--json", STORY, "provider=stub")
    items = {t["task"]: t for t in json.loads(plan.stdout)["targets"]}
    kept = [t for t, item in items.items() if item["action"] == "keep"]
    assert len(kept) == 24 and all("kept: a paid gemini file; the stub provider does not replace it" in
                                   items[t]["reason"] for t in kept)
    calls = tmp_path / "calls.log"
    run = doit(project, STORY, "provider=stub", env=project_env(project, STORYTREE_STUB_CALL_LOG=str(calls)))
    assert run.returncode == 0, run.stdout + run.stderr
    assert {p: h for p, h in files_of(project).items() if p in paid} == paid  # 0 paid files changed
    stubbed = calls.read_text().split()
    assert stubbed and all(task.startswith("video:") for task in stubbed)  # only what nobody had paid for yet
    assert "24 kept" in run.stdout
    forced = doit(project, "-a", next(iter(kept)), "provider=stub")  # -a still forces
    assert forced.returncode == 0 and files_of(project) != {**files_of(project), **paid}


# -- a remote that fails ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stub_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = import_story(new_project(tmp_path_factory.mktemp("remote") / "project"))
    assert doit(root, STORY, "provider=stub").returncode == 0
    return root


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """The sample story imported, nothing built."""
    return import_story(new_project(tmp_path / "project"))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Refusing(BaseHTTPRequestHandler):
    """An S3 endpoint that answers 403 to everything (a wrong key, a bucket policy)."""

    def _refuse(self) -> None:
        body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _refuse

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def refusing_endpoint():  # noqa: ANN201
    server = HTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def s3_env(endpoint: str, secret: str = "do-not-show-this-secret-9f8e7d") -> dict[str, str]:
    return {"STORYTREE_REMOTE": "s3://team/objects", "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "id",
            "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}


@pytest.mark.parametrize("how", ["unreachable", "refused"])
def test_a_remote_that_fails_never_stops_a_build_and_push_sends_everything_later(fresh: Path, tmp_path: Path,
                                                                                how: str, refusing_endpoint: str,
                                                                                s3_server):  # noqa: ANN001
    endpoint = f"http://127.0.0.1:{closed_port()}" if how == "unreachable" else refusing_endpoint
    secret = "do-not-show-this-secret-9f8e7d"
    calls = tmp_path / "calls.log"
    env = project_env(fresh, STORYTREE_STUB_CALL_LOG=str(calls), **s3_env(endpoint, secret))
    run = doit(fresh, STORY, "provider=stub", env=env, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Traceback" not in output and secret not in output
    assert "36 built" in run.stdout and "not on the remote s3://team/objects yet" in run.stdout
    remote_lines = [line for line in output.splitlines() if "remote" in line.lower()]
    assert len(remote_lines) <= 3, remote_lines  # said once or twice, not once per target
    assert all(r.pushed_to == "" for r in records_of(fresh).values())
    # later, with the remote back: `storytree push` sends every object the remote lacks
    good = project_env(fresh, STORYTREE_REMOTE=s3_server.fresh_url("push"),
                       **{k: v for k, v in s3_server.env.items()})
    pushed = doit_cli(fresh, good, "push", SAMPLE_ID)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "36 sent" in pushed.stderr
    assert {r.pushed_to for r in records_of(fresh).values()} == {good["STORYTREE_REMOTE"]}
    again = doit_cli(fresh, good, "push", SAMPLE_ID)
    assert "0 sent, 36 already there" in again.stderr
    assert len(calls.read_text().split()) == 36  # nothing was paid twice on the way


def doit_cli(root: Path, env: dict[str, str], *args: str):  # noqa: ANN201
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "storytree_build.cli", *args], cwd=root, env=env, text=True,
                          capture_output=True, timeout=120, check=False)


def test_a_no_op_build_never_asks_the_remote(stub_built: Path, tmp_path: Path):
    project = tmp_path / "project"
    shutil.copytree(stub_built, project)
    env = project_env(project, **s3_env(f"http://127.0.0.1:{closed_port()}"))
    run = doit(project, STORY, "provider=stub", env=env)
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "0 built" in run.stdout, output
    assert "remote" not in output.lower()  # a dead remote would have been reported had it been asked


def test_a_corrupt_remote_copy_is_never_written_and_nothing_is_paid(stub_built: Path, tmp_path: Path, s3_server):  # noqa: ANN001
    project = tmp_path / "project"
    shutil.copytree(stub_built, project)
    url = s3_server.fresh_url("corrupt")
    env = project_env(project, STORYTREE_REMOTE=url, **s3_server.env)
    assert doit_cli(project, env, "push", SAMPLE_ID).returncode == 0
    sheet = next(t for t in manifest_of(project).targets if t.kind == "character_plate")
    record = records_of(project)[sheet.task]
    prefix = url.split("/", 3)[3]
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=f"{prefix}/sha256/{record.output_sha256[:2]}/"
                                  f"{record.output_sha256[2:]}", Body=b"not the paid bytes")
    (project / ASSETS / sheet.output).unlink()
    shutil.rmtree(project / ".storytree-data" / "objects")  # only the remote has it now
    calls = tmp_path / "calls.log"
    run = doit(project, sheet.task, "provider=stub", env={**env, "STORYTREE_STUB_CALL_LOG": str(calls)})
    output = run.stdout + run.stderr
    assert run.returncode != 0 and not calls.exists(), output
    assert "could not be pulled from the remote" in output and "Traceback" not in output
    assert not (project / ASSETS / sheet.output).exists()


# -- settings from storytree.toml reach the build ------------------------------------------------------------------
SHEET = "ref:character.wren-quillfeather.character-model-sheet-1"


def without_aws(env: dict[str, str]) -> dict[str, str]:
    """Only storytree.toml configures the remote: no AWS_* variable of the test process leaks in."""
    return {k: v for k, v in env.items() if not k.startswith("AWS_")}


def test_objects_link_hardlink_from_storytree_toml_makes_the_asset_a_name_of_its_object(fresh: Path):
    (fresh / "storytree.toml").write_text('[objects]\nlink = "hardlink"\n')
    run = doit(fresh, SHEET, "provider=stub")
    assert run.returncode == 0, run.stdout + run.stderr
    record = records_of(fresh)[SHEET]
    asset = fresh / ASSETS / record.output
    stored = fresh / ".storytree-data" / "objects" / "sha256" / record.output_sha256[:2] / record.output_sha256[2:]
    assert sha(asset) == record.output_sha256
    assert os.stat(asset).st_ino == os.stat(stored).st_ino and os.stat(stored).st_nlink == 2  # one copy on disk


def remote_toml(root: Path, url: str, endpoint: str, secret: str, region: str = "us-east-1",
                key_id: str = "test") -> None:
    (root / "storytree.toml").write_text(
        f'[remote]\nurl = "{url}"\nendpoint = "{endpoint}"\nregion = "{region}"\n'
        f'access_key_id = "{key_id}"\nsecret_access_key = "{secret}"\n')


def test_remote_endpoint_and_credentials_from_storytree_toml_reach_the_remote(fresh: Path, s3_server):  # noqa: ANN001
    from support.s3_server import SECRET_KEY

    url = s3_server.fresh_url("toml")
    remote_toml(fresh, url, s3_server.endpoint, SECRET_KEY)
    run = doit(fresh, SHEET, "provider=stub", env=without_aws(project_env(fresh)))
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "remote" not in output.lower(), output  # uploaded without a word
    record = records_of(fresh)[SHEET]
    assert record.pushed_to == url  # the record names the remote, never a credential
    prefix = url.split("/", 3)[3]
    head = s3_server.client().head_object(Bucket=s3_server.bucket, Key=f"{prefix}/sha256/{record.output_sha256[:2]}/"
                                          f"{record.output_sha256[2:]}")
    assert head["ContentLength"] == record.output_size
    assert SECRET_KEY not in output and SECRET_KEY not in json.dumps(record.to_row())


class Recording(Refusing):
    """The refusing endpoint, keeping each request's Authorization header (its credential scope names the key id
    and region the client signed with)."""

    seen: list[str] = []

    def _refuse(self) -> None:
        Recording.seen.append(self.headers.get("Authorization", ""))
        super()._refuse()

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _refuse


def test_a_refusing_remote_set_in_storytree_toml_never_shows_its_secret(fresh: Path, tmp_path: Path):
    secret = "toml-secret-never-printed-5a4b3c2d1e"
    server = HTTPServer(("127.0.0.1", 0), Recording)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Recording.seen.clear()
    try:
        remote_toml(fresh, "s3://team/objects", f"http://127.0.0.1:{server.server_address[1]}", secret,
                    region="eu-west-3", key_id="TOMLKEYID")
        calls = tmp_path / "calls.log"
        run = doit(fresh, SHEET, "provider=stub",
                   env=without_aws(project_env(fresh, STORYTREE_STUB_CALL_LOG=str(calls))))
    finally:
        server.shutdown()
        server.server_close()
    output = run.stdout + run.stderr
    assert run.returncode == 0 and calls.read_text().split() == [SHEET], output  # the build goes on, paid once
    assert Recording.seen and all("Credential=TOMLKEYID/" in h and "/eu-west-3/s3/aws4_request" in h
                                  for h in Recording.seen)  # the key id and region of storytree.toml were used
    assert "refused" in output and secret not in output and "Traceback" not in output
    assert records_of(fresh)[SHEET].pushed_to == ""  # `storytree push` sends it later


# -- a slow or full remote during a build -----------------------------------------------------------------------------
class Silent:
    """A TCP server that accepts every connection and never answers (a remote that hangs); it counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.held.append(conn)  # kept open, never read, never answered

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def remote_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "remote" in line.lower()]


def test_a_remote_that_never_answers_costs_one_timeout_and_the_build_goes_on(fresh: Path, tmp_path: Path):
    silent = Silent()
    try:
        (fresh / "storytree.toml").write_text(
            f'[remote]\nurl = "s3://team/objects"\nendpoint = "http://127.0.0.1:{silent.port}"\n'
            'access_key_id = "id"\nsecret_access_key = "slow-remote-secret-77aa"\n'
            "timeout_seconds = 1\nconnect_timeout_seconds = 1\n")
        calls = tmp_path / "calls.log"
        run = doit(fresh, "ref", "provider=stub",
                   env=without_aws(project_env(fresh, STORYTREE_STUB_CALL_LOG=str(calls))), timeout=300)
        connections = len(silent.held)
    finally:
        silent.close()
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "12 built" in run.stdout, output  # README: a remote never fails a build
    paid = calls.read_text().split()
    assert len(paid) == 12 and len(set(paid)) == 12  # nothing paid twice
    said = remote_lines(output)
    assert len([line for line in said if "did not answer" in line and "not asked again in this run" in line]) == 1
    assert "12 new file(s) not on the remote s3://team/objects yet" in run.stdout and len(said) == 2, said
    assert 1 <= connections <= 3  # one upload and its retries, not one per target
    assert "slow-remote-secret-77aa" not in output and "Traceback" not in output
    assert all(r.pushed_to == "" for r in records_of(fresh).values()) and len(records_of(fresh)) == 12


def test_a_full_remote_folder_never_stops_a_build_and_push_sends_everything_once_there_is_room(fresh: Path,
                                                                                            tmp_path: Path):
    from support.mounts import tmpfs
    from test_environment_faults import fill

    with tmpfs(tmp_path / "team", 256) as shared:
        remote = shared / "objects"
        remote.mkdir()
        url = f"file://{remote}"
        (fresh / "storytree.toml").write_text(f'[remote]\nurl = "{url}"\n')
        fill(shared / "filler.bin")  # the shared disk is full
        calls = tmp_path / "calls.log"
        run = doit(fresh, "ref", "provider=stub", env=project_env(fresh, STORYTREE_STUB_CALL_LOG=str(calls)))
        output = run.stdout + run.stderr
        assert run.returncode == 0 and "12 built" in run.stdout, output
        paid = calls.read_text().split()
        assert len(paid) == 12 and len(set(paid)) == 12  # nothing paid twice
        said = remote_lines(output)
        assert len([line for line in said if "out of space" in line and "not asked again in this run" in line]) == 1
        assert f"12 new file(s) not on the remote {url} yet" in run.stdout and len(said) == 2, said
        assert "Traceback" not in output
        assert all(r.pushed_to == "" for r in records_of(fresh).values())
        assert not any(p.is_file() for p in remote.rglob("*"))  # nothing half-written on the remote
        (shared / "filler.bin").unlink()  # room again: `storytree push` sends what the build could not
        pushed = doit_cli(fresh, project_env(fresh), "push", SAMPLE_ID)
        assert pushed.returncode == 0 and "12 sent" in pushed.stderr, pushed.stdout + pushed.stderr
        assert {r.pushed_to for r in records_of(fresh).values()} == {url}
        assert len(calls.read_text().split()) == 12
