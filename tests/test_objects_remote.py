"""The object remote, against a real shared folder (file://) and a real S3-protocol server (moto, s3://): round trips,
verified downloads, conditional puts, and every fault typed, quick and free of credentials."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from storytree_build.core.errors import ConfigError, StorytreeError
from storytree_build.objects.errors import (InvalidObjectId, ObjectCorrupt, ObjectNotFound, ObjectStoreFault,
                                            RemoteCorrupt, RemoteError, RemoteNotFound, RemoteOutOfSpace,
                                            RemoteRefused, RemoteUnreachable)
from storytree_build.objects.keys import relative_key
from storytree_build.objects.local import LocalObjects
from storytree_build.objects.remote import FEW, ObstoreRemote, Remote, open_remote
from support.mounts import read_only, tmpfs
from support.s3_server import SECRET_KEY, S3Server

FRAME = b"\x89PNG\r\n\x1a\n" + os.urandom(300_000)  # bigger than one stream chunk is not needed; a real-ish size
SECRET = "s3cr3t-Value-That-Must-Never-Show-9f8e7d"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Place:
    """A remote under test plus a way to plant bytes under a key behind its back."""

    remote: ObstoreRemote
    plant: Callable[[str, bytes], None]
    kind: str


@pytest.fixture(params=["file", "s3"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    if request.param == "file":
        folder = tmp_path / "shared" / "objects"  # created by open_remote
        remote = open_remote(f"file://{folder}")

        def plant(key: str, data: bytes) -> None:
            (folder / key).parent.mkdir(parents=True, exist_ok=True)
            (folder / key).write_bytes(data)

        return Place(remote, plant, "file")
    server: S3Server = request.getfixturevalue("s3_server")
    url = server.fresh_url()
    remote = open_remote(url, env=server.env)
    prefix = urlsplit(url).path.strip("/")

    def plant_s3(key: str, data: bytes) -> None:
        server.client().put_object(Bucket=server.bucket, Key=f"{prefix}/{key}", Body=data)

    return Place(remote, plant_s3, "s3")


@pytest.fixture
def local(tmp_path: Path) -> LocalObjects:
    return LocalObjects(tmp_path / "data" / "objects")


def stored(local: LocalObjects, data: bytes) -> tuple[str, Path]:
    digest = local.add_bytes(data)
    return digest, local.path(digest)


def parts_left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.part"))


# -- round trips ------------------------------------------------------------------------------------------------
def test_put_has_get_list_delete_round_trip(place: Place, local: LocalObjects, tmp_path: Path) -> None:
    remote = place.remote
    assert isinstance(remote, Remote)
    digest, path = stored(local, FRAME)
    assert not remote.has(digest) and list(remote.list()) == []

    remote.put(digest, path)

    assert remote.has(digest)
    assert list(remote.list()) == [(digest, len(FRAME))]
    dest = tmp_path / "clone" / "public" / "frame.png"
    remote.get(digest, dest)
    assert dest.read_bytes() == FRAME and parts_left(tmp_path / "clone") == []
    remote.delete(digest)
    remote.delete(digest)  # deleting what is gone is fine
    assert not remote.has(digest)


def test_keys_use_the_local_layout_under_the_prefix(place: Place, local: LocalObjects, s3_server: S3Server) -> None:
    digest, path = stored(local, FRAME)
    place.remote.put(digest, path)
    if place.kind == "file":
        root = Path(urlsplit(place.remote.url).path)
        assert (root / "sha256" / digest[:2] / digest[2:]).read_bytes() == FRAME
    else:
        prefix = urlsplit(place.remote.url).path.strip("/")
        listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)
        assert [o["Key"] for o in listed["Contents"]] == [f"{prefix}/sha256/{digest[:2]}/{digest[2:]}"]


def test_a_second_put_of_the_same_key_is_fine(place: Place, local: LocalObjects, tmp_path: Path) -> None:
    digest, path = stored(local, FRAME)
    place.remote.put(digest, path)
    place.remote.put(digest, path)  # conditional create: AlreadyExists means done
    assert list(place.remote.list()) == [(digest, len(FRAME))]
    assert place.remote._conditional  # the service answered the condition, no fallback


def test_a_put_over_a_damaged_upload_of_another_size_replaces_it(place: Place, local: LocalObjects,
                                                                 tmp_path: Path) -> None:
    digest, path = stored(local, FRAME)
    place.plant(relative_key(digest), FRAME[:1000])  # an upload cut short by a proxy, say
    place.remote.put(digest, path)
    place.remote.get(digest, tmp_path / "back.png")
    assert (tmp_path / "back.png").read_bytes() == FRAME


def test_overwrite_repairs_a_damaged_remote_copy_of_the_same_size(place: Place, local: LocalObjects,
                                                                  tmp_path: Path) -> None:
    digest, path = stored(local, FRAME)
    place.plant(relative_key(digest), b"X" * len(FRAME))
    with pytest.raises(RemoteCorrupt):
        place.remote.get(digest, tmp_path / "x.png")
    place.remote.put(digest, path, overwrite=True)
    place.remote.get(digest, tmp_path / "x.png")
    assert (tmp_path / "x.png").read_bytes() == FRAME


def test_a_damaged_local_object_is_never_uploaded(place: Place, tmp_path: Path) -> None:
    src = tmp_path / "object"
    src.write_bytes(b"not what the key says")
    with pytest.raises(ObjectCorrupt, match="not uploaded"):
        place.remote.put(sha(FRAME), src)
    with pytest.raises(ObjectNotFound):
        place.remote.put(sha(FRAME), tmp_path / "absent")
    assert list(place.remote.list()) == []


def test_missing_and_list_ignore_other_keys(place: Place, local: LocalObjects) -> None:
    blobs = [f"frame {i}".encode() for i in range(FEW + 4)]
    digests = [local.add_bytes(b) for b in blobs]
    for digest in digests[::2]:
        place.remote.put(digest, local.path(digest))
    place.plant("sha256/zz/not-an-object", b"x")
    place.plant("notes.txt", b"x")

    assert sorted(place.remote.list()) == sorted((d, len(b)) for d, b in zip(digests, blobs) if d in digests[::2])
    assert place.remote.missing(digests) == set(digests[1::2])  # many: one listing
    assert place.remote.missing(digests[:3]) == {digests[1]}  # few: one check each
    assert place.remote.missing([]) == set()
    with pytest.raises(InvalidObjectId):
        place.remote.missing(["../x"])


def test_fetch_many_into_the_local_store(place: Place, local: LocalObjects, tmp_path: Path) -> None:
    digests = [local.add_bytes(f"sheet {i}".encode()) for i in range(5)]
    for digest in digests:
        place.remote.put(digest, local.path(digest))
    clone = LocalObjects(tmp_path / "clone" / "objects")

    results = clone.fetch_many(place.remote, digests)

    assert [r.ok for r in results] == [True] * 5
    assert sorted(s for s, _ in clone) == sorted(digests)
    assert all(clone.verify(d) and (clone.path(d).stat().st_mode & 0o777) == 0o444 for d in digests)
    assert (clone.root.stat().st_mode & 0o777) == 0o700


def test_fetch_puts_a_verified_read_only_object_in_the_store_or_nothing(place: Place, local: LocalObjects,
                                                                        tmp_path: Path) -> None:
    digest, path = stored(local, FRAME)
    place.remote.put(digest, path)
    damaged = sha(b"genuine")
    place.plant(relative_key(damaged), b"damaged")
    clone = LocalObjects(tmp_path / "clone" / "objects")

    assert clone.fetch(place.remote, digest) == clone.path(digest)
    with pytest.raises(RemoteCorrupt):
        clone.fetch(place.remote, damaged)

    assert clone.verify(digest) and (clone.path(digest).stat().st_mode & 0o777) == 0o444
    assert not clone.has(damaged) and [s for s, _ in clone] == [digest] and parts_left(clone.root) == []


# -- damage and absence -----------------------------------------------------------------------------------------
def test_a_corrupt_remote_object_is_a_typed_error_and_leaves_nothing(place: Place, tmp_path: Path) -> None:
    digest = sha(FRAME)
    place.plant(relative_key(digest), FRAME[:-1] + b"!")
    dest = tmp_path / "public" / "frame.png"
    dest.parent.mkdir()
    dest.write_bytes(b"the previous file")

    with pytest.raises(RemoteCorrupt) as caught:
        place.remote.get(digest, dest)

    assert isinstance(caught.value, ObjectCorrupt) and isinstance(caught.value, RemoteError)
    assert caught.value.sha256 == digest and caught.value.actual_sha256 == sha(FRAME[:-1] + b"!")
    assert digest[:12] in str(caught.value) and place.remote.url in str(caught.value)
    assert dest.read_bytes() == b"the previous file" and parts_left(tmp_path) == []


def test_an_object_not_on_the_remote(place: Place, tmp_path: Path) -> None:
    digest = sha(b"never pushed")
    with pytest.raises(RemoteNotFound, match=digest[:12]) as caught:
        place.remote.get(digest, tmp_path / "x.png")
    assert isinstance(caught.value, ObjectNotFound)
    assert not (tmp_path / "x.png").exists() and parts_left(tmp_path) == []


def test_get_many_reports_each_object_and_never_raises_for_one(place: Place, local: LocalObjects,
                                                               tmp_path: Path) -> None:
    good = [local.add_bytes(f"key frame {i}".encode()) for i in range(6)]
    for digest in good:
        place.remote.put(digest, local.path(digest))
    bad = sha(b"the genuine bytes")
    place.plant(relative_key(bad), b"other bytes")
    absent = sha(b"never pushed")
    wanted = good[:3] + [bad, absent] + good[3:]

    results = place.remote.get_many([(d, tmp_path / "out" / f"{i}.png") for i, d in enumerate(wanted)],
                                    max_workers=4)

    assert [r.sha256 for r in results] == wanted
    assert {r.sha256: type(r.error).__name__ for r in results if not r.ok} == {bad: "RemoteCorrupt",
                                                                               absent: "RemoteNotFound"}
    for i, result in enumerate(results):
        assert result.path.exists() == result.ok
        if result.ok:
            assert sha(result.path.read_bytes()) == wanted[i]


def test_put_many_uploads_every_object(place: Place, local: LocalObjects) -> None:
    digests = [local.add_bytes(f"video {i}".encode()) for i in range(5)]
    results = place.remote.put_many([(d, local.path(d)) for d in digests])
    assert all(r.ok for r in results) and place.remote.missing(digests) == set()


def test_a_full_destination_disk_is_a_local_fault(place: Place, local: LocalObjects, tmp_path: Path) -> None:
    big = os.urandom(200_000)
    digest, path = stored(local, big)
    place.remote.put(digest, path)
    with tmpfs(tmp_path / "small", size_kb=64) as small:
        with pytest.raises(ObjectStoreFault, match="cannot write"):
            place.remote.get(digest, small / "video.mp4")
        assert list(small.iterdir()) == []


# -- faults of a remote -----------------------------------------------------------------------------------------
@dataclass
class Scripted:
    """A tiny HTTP server answering every request from a script; it counts what it saw."""

    answer: Callable[[BaseHTTPRequestHandler], tuple[int, bytes]]
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[BaseHTTPRequestHandler], tuple[int, bytes]]], Scripted]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Callable[[BaseHTTPRequestHandler], tuple[int, bytes]]) -> Scripted:
        script = Scripted(answer)

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                script.seen.append((self.command, self.path, dict(self.headers)))
                status, body = script.answer(self)
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.send_header("etag", '"scripted"')  # obstore reads it from every successful put
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _any

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        script.url = f"http://127.0.0.1:{server.server_port}"
        return script

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def s3_env(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": SECRET}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket closes


def test_an_unreachable_remote_is_a_retry_safe_error(local: LocalObjects, tmp_path: Path) -> None:
    remote = open_remote("s3://assets/team", env=s3_env(f"http://127.0.0.1:{closed_port()}"))
    digest, path = stored(local, FRAME)
    for call in (lambda: remote.has(digest), lambda: remote.put(digest, path),
                 lambda: remote.get(digest, tmp_path / "x"), lambda: list(remote.list())):
        with pytest.raises(RemoteUnreachable) as caught:
            call()
        assert caught.value.retry_safe and "s3://assets/team" in str(caught.value)
    assert not (tmp_path / "x").exists()


def test_a_remote_that_never_answers_times_out_instead_of_hanging(scripted, local: LocalObjects) -> None:
    release = threading.Event()

    def hang(_: BaseHTTPRequestHandler) -> tuple[int, bytes]:
        release.wait(30)
        return 200, b""

    server = scripted(hang)
    remote = open_remote("s3://assets/team", options={"timeout": "1", "max_retries": "1"}, env=s3_env(server.url))
    try:
        with pytest.raises(RemoteUnreachable):
            remote.has(sha(FRAME))
    finally:
        release.set()
    assert len(server.seen) == 2  # the request and its one retry, each cut by the timeout


def test_once_a_remote_is_down_the_rest_of_a_pull_is_not_tried(scripted, tmp_path: Path) -> None:
    server = scripted(lambda _: (503, b"<Error><Code>SlowDown</Code></Error>"))
    remote = open_remote("s3://assets/team", options={"max_retries": "0"}, env=s3_env(server.url))
    wanted = [sha(str(i).encode()) for i in range(10)]

    results = remote.get_many([(d, tmp_path / d) for d in wanted], max_workers=1)

    assert all(isinstance(r.error, RemoteUnreachable) for r in results)
    assert len(server.seen) == 1  # nine objects failed at once instead of each waiting out the remote
    assert "not tried" in str(results[-1].error)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusing_remote_names_the_bucket_and_the_credentials(scripted, local: LocalObjects, tmp_path: Path,
                                                                status: int) -> None:
    body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
    server = scripted(lambda _: (status, body))
    remote = open_remote("s3://team-assets/story", env=s3_env(server.url))
    digest, path = stored(local, FRAME)
    for call in (lambda: remote.has(digest), lambda: remote.put(digest, path),
                 lambda: remote.get(digest, tmp_path / "x"), lambda: list(remote.list()),
                 lambda: remote.delete(digest)):
        with pytest.raises(RemoteRefused) as caught:
            call()
        message = str(caught.value)
        assert "bucket team-assets" in message and "AWS_ACCESS_KEY_ID" in message and str(status) in message
        assert not caught.value.retry_safe
    assert not (tmp_path / "x").exists()


def test_a_service_without_conditional_puts_gets_plain_puts(scripted, local: LocalObjects) -> None:
    """Supabase Storage does not promise If-None-Match on PUT: a 501 falls back to a plain put, once."""

    def answer(request: BaseHTTPRequestHandler) -> tuple[int, bytes]:
        if request.command == "PUT" and request.headers.get("if-none-match"):
            return 501, b"<Error><Code>NotImplemented</Code><Message>A header you provided is not implemented</Message></Error>"
        return 200, b""

    server = scripted(answer)
    remote = open_remote("s3://assets/team", options={"max_retries": "0"}, env=s3_env(server.url))  # exact counts
    first, first_path = stored(local, b"first")
    second, second_path = stored(local, b"second")

    remote.put(first, first_path)
    remote.put(second, second_path)

    puts = [(path, "if-none-match" in {k.lower() for k in headers}) for cmd, path, headers in server.seen
            if cmd == "PUT"]
    assert puts == [(f"/assets/team/{relative_key(first)}", True), (f"/assets/team/{relative_key(first)}", False),
                    (f"/assets/team/{relative_key(second)}", False)]


def test_a_missing_bucket_says_so(s3_server: S3Server, local: LocalObjects) -> None:
    remote = open_remote("s3://no-such-bucket/x", env=s3_server.env)
    digest, path = stored(local, FRAME)
    with pytest.raises(RemoteRefused, match="bucket no-such-bucket does not exist"):
        remote.put(digest, path)


def test_a_read_only_shared_folder_is_refused(tmp_path: Path, local: LocalObjects) -> None:
    folder = tmp_path / "shared"
    remote = open_remote(f"file://{folder}")
    digest, path = stored(local, FRAME)
    with read_only(folder):
        with pytest.raises(RemoteRefused, match="read-only or no permission") as caught:
            remote.put(digest, path)
    assert caught.value.sha256 == digest and not remote.has(digest)


def test_a_full_shared_folder_is_out_of_space(tmp_path: Path, local: LocalObjects) -> None:
    digest, path = stored(local, os.urandom(200_000))
    with tmpfs(tmp_path / "shared", size_kb=64) as folder:
        remote = open_remote(f"file://{folder}")
        with pytest.raises(RemoteOutOfSpace) as caught:
            remote.put(digest, path)
        assert caught.value.retry_safe and "out of space" in str(caught.value)
        assert list(remote.list()) == []


# -- credentials ------------------------------------------------------------------------------------------------
def test_credentials_never_appear_in_messages_reprs_or_logs(scripted, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture, local: LocalObjects,
                                                            tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)  # in the process environment, where obstore reads it too
    monkeypatch.setenv("AWS_SESSION_TOKEN", SECRET + "-token")
    server = scripted(lambda _: (403, b"<Error><Code>AccessDenied</Code></Error>"))
    messages: list[str] = []
    digest, path = stored(local, FRAME)

    for env in (None, {**s3_env(server.url), "AWS_SESSION_TOKEN": SECRET + "-token"}):
        endpoint_env = {"AWS_ENDPOINT_URL": server.url, "AWS_ACCESS_KEY_ID": "AKIDTEST"} if env is None else env
        if env is None:
            for name, value in endpoint_env.items():
                monkeypatch.setenv(name, value)
        remote = open_remote("s3://assets/team", env=env)
        messages += [repr(remote), remote.url]
        for call in (lambda: remote.has(digest), lambda: remote.put(digest, path),
                     lambda: remote.get(digest, tmp_path / "x")):
            with pytest.raises(RemoteError) as caught:
                call()
            messages += [str(caught.value), repr(caught.value)]
    # a secret in the endpoint's user-info, the remote down
    down = open_remote("s3://assets/team", env={"AWS_ENDPOINT_URL": f"http://user:{SECRET}@127.0.0.1:{closed_port()}"})
    with pytest.raises(RemoteUnreachable) as caught:
        down.has(digest)
    messages += [str(caught.value), repr(down)]
    # a secret in the remote URL's user-info is refused without being echoed
    for url in (f"s3://AKIDTEST:{SECRET}@assets/team", f"file://user:{SECRET}@/srv/objects"):
        with pytest.raises(ConfigError) as refused:
            open_remote(url)
        messages.append(str(refused.value))
        assert "***@" in str(refused.value)

    assert len(messages) > 10
    for text in messages + [caplog.text]:
        assert SECRET not in text and SECRET_KEY not in text


# -- opening ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url, fragment", [
    ("https://example.com/bucket", "not supported"),
    ("gs://bucket/prefix", "not supported"),
    ("/srv/objects", "not supported"),
    ("file://relative/folder", "absolute path"),
    ("file:///", "absolute path"),
    ("s3:///prefix-without-bucket", "no bucket"),
])
def test_unsupported_urls_are_config_errors_naming_the_accepted_forms(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as caught:
        open_remote(url, env={})
    assert "file:///" in str(caught.value) or "s3://" in str(caught.value)


@pytest.mark.parametrize("options, fragment", [
    ({"colour": "blue"}, "unknown option"),
    ({"timeout": "soon"}, "number of seconds"),
    ({"max_retries": "-1"}, "number of retries"),
])
def test_bad_options_are_config_errors(options: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        open_remote("s3://assets/team", options=options, env={})


def test_s3_options_on_a_folder_remote_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="s3:// remotes only"):
        open_remote(f"file://{tmp_path}", options={"region": "eu-west-1"})


def test_an_http_endpoint_needs_no_extra_switch(s3_server: S3Server, local: LocalObjects) -> None:
    """AWS_ENDPOINT (the older name) and AWS_DEFAULT_REGION work too; an http:// endpoint is allowed as given."""
    env = {"AWS_ENDPOINT": s3_server.endpoint, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    remote = open_remote(s3_server.fresh_url("endpoint"), env=env)
    digest, path = stored(local, FRAME)
    remote.put(digest, path)
    assert remote.has(digest)


def test_explicit_options_win_over_the_environment(s3_server: S3Server, local: LocalObjects) -> None:
    remote = open_remote(s3_server.fresh_url("options"),
                         options={"endpoint": s3_server.endpoint, "access_key_id": "test",
                                  "secret_access_key": SECRET_KEY},
                         env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}"})
    digest, path = stored(local, FRAME)
    remote.put(digest, path)
    assert remote.missing([digest]) == set()


def test_a_folder_remote_is_created_when_missing(tmp_path: Path) -> None:
    folder = tmp_path / "nas" / "team" / "objects"
    remote = open_remote(f"file://{folder}")
    assert folder.is_dir() and remote.url == f"file://{folder}" and list(remote.list()) == []


def test_every_remote_error_is_a_storytree_error() -> None:
    for cls in (RemoteUnreachable, RemoteRefused, RemoteNotFound, RemoteCorrupt, RemoteOutOfSpace):
        assert issubclass(cls, RemoteError) and issubclass(cls, StorytreeError)
    assert RemoteUnreachable.retry_safe and RemoteOutOfSpace.retry_safe and not RemoteRefused.retry_safe


def test_the_remote_module_loads_obstore_only_when_a_remote_is_opened() -> None:
    import subprocess
    import sys

    script = ("import sys, storytree_build.objects.remote, storytree_build.objects.local\n"
              "print('obstore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
