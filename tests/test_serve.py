"""`storytree serve`: a real server on 127.0.0.1 (free port) over a public folder made here."""

from __future__ import annotations

import http.client
import threading
from pathlib import Path

import pytest

from storytree_build.cli import build_parser
from storytree_build.gallery.serve import make_server, parse_range

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes((i * 7) % 251 for i in range(50_000))


@pytest.fixture
def site(tmp_path: Path):
    public = tmp_path / "public"
    (public / "generated/story/shots/scenelet-1").mkdir(parents=True)
    (public / "stories/story").mkdir(parents=True)
    (public / "index.html").write_text("<!doctype html><title>index</title>")
    (public / "stories/story/index.html").write_text("<!doctype html><title>story</title>")
    (public / "generated/story/shots/scenelet-1/shot-1_key_frame.png").write_bytes(PNG)
    (public / "generated/story/shots/scenelet-1/shot-1.mp4").write_bytes(MP4)
    (public / "generated/story/style.css").write_text("body{}")
    (public / "generated/.gitkeep").write_text("")
    (public / "stories/story/.gallery.json").write_text("{}")
    (tmp_path / "secret.txt").write_text("outside the public folder")
    (public / "generated/leak.txt").symlink_to(tmp_path / "secret.txt")
    (public / "generated/leakdir").symlink_to(tmp_path)
    (public / "generated/inside.png").symlink_to(public / "generated/story/shots/scenelet-1/shot-1_key_frame.png")
    server = make_server(public, 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def get(port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_accept_encoding=True)  # the raw path: no client-side normalisation
    for key, value in (headers or {}).items():
        conn.putheader(key, value)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


def test_binds_loopback_only(tmp_path):
    server = make_server(tmp_path, 0, quiet=True)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


@pytest.mark.parametrize("path, ctype", [
    ("/", "text/html; charset=utf-8"),
    ("/index.html", "text/html; charset=utf-8"),
    ("/stories/story/", "text/html; charset=utf-8"),
    ("/generated/story/shots/scenelet-1/shot-1_key_frame.png?v=abc", "image/png"),
    ("/generated/story/shots/scenelet-1/shot-1.mp4", "video/mp4"),
    ("/generated/story/style.css", "text/css; charset=utf-8"),
    ("/generated/inside.png", "image/png"),  # a symlink that stays inside is fine
])
def test_content_types(site, path, ctype):
    resp, body = get(site, path)
    assert resp.status == 200
    assert resp.getheader("Content-Type") == ctype
    assert resp.getheader("Accept-Ranges") == "bytes"
    assert int(resp.getheader("Content-Length")) == len(body) > 0


def test_png_and_mp4_bytes_are_exact(site):
    assert get(site, "/generated/story/shots/scenelet-1/shot-1_key_frame.png")[1] == PNG
    assert get(site, "/generated/story/shots/scenelet-1/shot-1.mp4")[1] == MP4


def test_directory_without_slash_redirects_so_relative_urls_work(site):
    resp, _ = get(site, "/stories/story")
    assert resp.status == 301 and resp.getheader("Location") == "/stories/story/"
    resp, _ = get(site, "/generated/story/")
    assert resp.status == 404  # no listings


@pytest.mark.parametrize("header, first, last", [
    ("bytes=0-99", 0, 99),
    ("bytes=1000-", 1000, len(MP4) - 1),
    ("bytes=-500", len(MP4) - 500, len(MP4) - 1),
    ("bytes=49000-999999", 49000, len(MP4) - 1),
])
def test_range_requests_for_seeking(site, header, first, last):
    resp, body = get(site, "/generated/story/shots/scenelet-1/shot-1.mp4", {"Range": header})
    assert resp.status == 206
    assert resp.getheader("Content-Range") == f"bytes {first}-{last}/{len(MP4)}"
    assert resp.getheader("Content-Type") == "video/mp4"
    assert body == MP4[first:last + 1]
    assert int(resp.getheader("Content-Length")) == last - first + 1


def test_unsatisfiable_and_ignored_ranges(site):
    resp, body = get(site, "/generated/story/shots/scenelet-1/shot-1.mp4", {"Range": f"bytes={len(MP4)}-"})
    assert resp.status == 416 and resp.getheader("Content-Range") == f"bytes */{len(MP4)}" and body == b""
    resp, body = get(site, "/generated/story/shots/scenelet-1/shot-1.mp4", {"Range": "bytes=0-1,5-9"})
    assert resp.status == 200 and body == MP4  # multipart ranges: the whole file is a valid answer
    resp, body = get(site, "/generated/story/shots/scenelet-1/shot-1.mp4", {"Range": "bytes=0-9", "If-Range": '"old"'})
    assert resp.status == 200 and body == MP4  # the file changed since: the whole new file


def test_head_sends_headers_only(site):
    resp, body = get(site, "/generated/story/shots/scenelet-1/shot-1.mp4", method="HEAD")
    assert resp.status == 200 and body == b"" and int(resp.getheader("Content-Length")) == len(MP4)


def test_etag_revalidation(site):
    resp, _ = get(site, "/generated/story/shots/scenelet-1/shot-1_key_frame.png")
    etag = resp.getheader("ETag")
    resp, body = get(site, "/generated/story/shots/scenelet-1/shot-1_key_frame.png", {"If-None-Match": etag})
    assert resp.status == 304 and body == b""


@pytest.mark.parametrize("path", [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/%2e%2e/etc/passwd",
    "/generated/..%2f..%2fsecret.txt",
    "/generated/%2e%2e%2f%2e%2e%2fsecret.txt",
    "/generated/story/../../../secret.txt",
    "/generated/leak.txt",  # symlink to a file outside
    "/generated/leakdir/secret.txt",  # symlink to a folder outside
    "/generated/.gitkeep",  # dot-files are never served
    "/stories/story/.gallery.json",
    "/%252e%252e/secret.txt",  # double-encoded: a literal name that does not exist
    "/nope.png",
])
def test_nothing_outside_the_folder(site, path):
    resp, body = get(site, path)
    assert resp.status == 404, (path, resp.status)
    assert b"outside the public folder" not in body


@pytest.mark.parametrize("path", ["/generated%5c..%5c..%5csecret.txt", "/a%00b", "/%ff%fe"])
def test_bad_paths_are_refused(site, path):
    resp, body = get(site, path)
    assert resp.status == 400
    assert b"outside the public folder" not in body


def test_parse_range_edge_cases():
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range("bytes=-0", 10) == "unsatisfiable"
    assert parse_range("bytes=5-2", 10) is None
    assert parse_range("items=0-1", 10) is None
    assert parse_range("bytes=x-1", 10) is None
    assert parse_range("bytes=0-", 0) == "unsatisfiable"


def test_cli_has_serve_with_a_port_option():
    args = build_parser().parse_args(["serve", "--port", "8123"])
    assert args.port == 8123 and args.func.__name__ == "cmd_serve"
    assert build_parser().parse_args(["serve"]).port == 8000


def test_serve_refuses_a_missing_public_folder(tmp_path, capsys, monkeypatch):
    from storytree_build.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "templates").mkdir()
    (tmp_path / "system_prompts").mkdir()
    assert main(["serve", "--port", "0"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_hundreds_of_simultaneous_clients_are_all_answered(site) -> None:
    """500 connections opened at once, then 500 requests: every one gets its page (the listen queue holds them)."""
    import selectors
    import socket

    port = site
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(500)]
    request = f"GET /stories/story/ HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n".encode()
    for sock in sockets:
        sock.sendall(request)
    answers: dict[socket.socket, bytes] = {sock: b"" for sock in sockets}
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    open_count = len(sockets)
    while open_count:
        events = selector.select(timeout=60)
        assert events, "the server stopped answering"
        for key, _ in events:
            chunk = key.fileobj.recv(65536)
            if chunk:
                answers[key.fileobj] += chunk
            else:
                selector.unregister(key.fileobj)
                key.fileobj.close()
                open_count -= 1
    assert sum(1 for data in answers.values() if data.startswith(b"HTTP/1.1 200") and b"<title>story</title>" in data) == 500


def test_a_silent_connection_is_closed(tmp_path) -> None:
    import socket

    (tmp_path / "index.html").write_text("<title>x</title>")
    server = make_server(tmp_path, 0, quiet=True, workers=2, request_deadline=0.3)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        idle = [socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=30) for _ in range(4)]
        for sock in idle:  # more silent clients than workers: each is dropped, so the workers come free again
            assert sock.recv(1) == b""
            sock.close()
        resp, body = get(server.server_address[1], "/index.html")
        assert resp.status == 200 and b"<title>x</title>" in body
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
