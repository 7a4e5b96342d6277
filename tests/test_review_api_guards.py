"""The review endpoints of `storytree serve` against bad and hostile bodies, over real HTTP on 127.0.0.1 with a built
project: every body that cannot be a review is a 400 with a one-line JSON error (never a dropped connection or a
traceback), story ids follow the id rule before they become a path, only key frames take a verdict, and the log says
what matters."""

from __future__ import annotations

import http.client
import io
import json
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path

import pytest

from storytree_build.bootstrap import Workspace
from storytree_build.gallery.serve import make_server
from support.gallery import SAMPLE_ID, settings_for
from support.project import manifest_of, project_env
from test_review import built_template, review_rows, video_using_its_key_frame  # noqa: F401 - fixture
from test_review_api import TOKEN, approve, built, request, serve, server  # noqa: F401 - fixture

FRAME = "image:scenelet-1_1"


@contextmanager
def logged(built: Path, verbose: bool = False) -> Iterator[tuple[int, io.StringIO]]:  # noqa: F811
    """A server that logs as `storytree serve` does (by default, or --verbose), and what it wrote. Entered in the
    test itself: pytest puts its own sys.stderr back between a fixture's setup and the test."""
    log = io.StringIO()
    with redirect_stderr(log):
        server, thread = serve(built, quiet=False, verbose=verbose)
        try:
            yield server.server_address[1], log
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def post_on(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json", "X-Storytree-Token": TOKEN})
    response = conn.getresponse()
    return response.status, response.read()


# -- bodies ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "error"), [
    (b"[" * 16_000, "nested too deeply"),
    (b'{"a": ' * 2_000 + b"1" + b"}" * 2_000, "nested too deeply"),
    (b'{"story_id": "\xff\xfe", "task": "image:scenelet-1_1", "verdict": "approve"}', "not UTF-8"),
    (b'{"story_id": "\\ud800", "task": "image:scenelet-1_1", "verdict": "approve"}', "lone surrogate"),
    (b'{"story_id": "x", "task": "image:scenelet-1_1", "verdict": "approve", "note": "\\udfff"}', "lone surrogate"),
    (b'{"story_id": {"a": 1}, "task": "image:scenelet-1_1", "verdict": "approve"}', "plain value"),
    (b'{"story_id": [1, [2]], "task": "image:scenelet-1_1", "verdict": "approve"}', "plain value"),
    (b"[1, 2]", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
    (b'{"story_id": "x"', "not JSON"),
    (b"1" * 5_000, "not JSON"),  # past Python's limit on digits in an int
    (b"", "not JSON"),
])
@pytest.mark.parametrize("path", ["/api/review", "/api/restore"])
def test_a_body_that_cannot_be_a_request_is_a_400_on_a_connection_that_stays_open(built: Path, path: str,  # noqa: F811
                                                                                 body: bytes, error: str):
    with logged(built) as (port, log):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        status, answer = post_on(conn, path, body)
        assert status == 400 and error in json.loads(answer)["error"] and b"\n" not in answer, answer
        conn.request("GET", "/api/session")  # the same connection answers the next request
        assert conn.getresponse().read() == b'{"read_only": false}'
        conn.close()
    assert review_rows(built) == []
    assert "Traceback" not in log.getvalue()
    assert [line for line in log.getvalue().splitlines() if "refused (400" in line] != []


# -- story ids ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("story_id", ["../../etc/passwd", "a/b", "a\\b", "..", ".hidden", " " + SAMPLE_ID, "a b", "",
                                      "x" * 129, "\x00", "é"])
@pytest.mark.parametrize("path", ["/api/review", "/api/restore"])
def test_a_story_id_that_breaks_the_id_rule_is_a_400_naming_the_field(built: Path, server: int, story_id: str,  # noqa: F811
                                                                      path: str):
    body = {**approve(FRAME), "story_id": story_id, "version": 1}
    status, answer = request(server, "POST", path, body)
    assert status == 400 and answer["error"].startswith("story_id "), answer
    assert review_rows(built) == []


@pytest.mark.parametrize("path", ["/api/review", "/api/restore"])
def test_an_unknown_story_is_a_404(built: Path, server: int, path: str):  # noqa: F811
    status, answer = request(server, "POST", path, {**approve(FRAME), "story_id": "no-such-story", "version": 1})
    assert status == 404 and "'no-such-story': no such story" in answer["error"], answer
    assert not (built / "manifests/no-such-story.yaml").exists()


# -- only key frames are reviewed --------------------------------------------------------------------------
def test_a_verdict_on_anything_but_a_key_frame_is_refused(built: Path, server: int):  # noqa: F811
    video = video_using_its_key_frame(built)
    plate = next(t.task for t in manifest_of(built).targets if t.kind == "character_plate")
    for task, kind in ((video, "video"), (plate, "character plate")):
        for verdict in ("approve", "reject"):
            status, answer = request(server, "POST", "/api/review", approve(task, "no", verdict))
            assert status == 400, answer
            assert answer["error"].startswith(f"{task} of story {SAMPLE_ID} is a {kind}: only key frames"), answer
    assert review_rows(built) == []
    assert request(server, "POST", "/api/review", approve(FRAME))[0] == 200  # a key frame is


# -- the log -----------------------------------------------------------------------------------------------
def test_by_default_the_log_has_one_line_per_review_and_no_request_lines(built: Path):  # noqa: F811
    with logged(built) as (port, log):
        assert request(port, "GET", f"/stories/{SAMPLE_ID}/?token={TOKEN}")[0] == 200
        assert request(port, "GET", "/nope.png")[0] == 404
        assert request(port, "POST", "/api/review", approve(FRAME))[0] == 200
        assert request(port, "POST", "/api/review", approve(FRAME), {"X-Storytree-Token": "guess"})[0] == 403
    assert log.getvalue().splitlines() == [
        f"storytree serve: approved {FRAME} of story {SAMPLE_ID} (on the page)",
        "storytree serve: /api/review refused (403 Forbidden): missing or wrong token: open the address "
        "`storytree serve` printed (it ends in ?token=…)",
    ]


def test_with_verbose_every_request_has_its_line(built: Path):  # noqa: F811
    with logged(built, verbose=True) as (port, log):
        assert request(port, "GET", "/nope.png")[0] == 404
        assert request(port, "POST", "/api/review", approve(FRAME))[0] == 200
    lines = log.getvalue().splitlines()
    assert any(re.fullmatch(r'storytree serve: 127\.0\.0\.1 "GET /nope\.png HTTP/1\.1" 404 -?\d*', line) for line in lines)
    assert any('"POST /api/review HTTP/1.1" 200' in line for line in lines)
    assert f"storytree serve: approved {FRAME} of story {SAMPLE_ID} (on the page)" in lines


def test_a_log_line_cannot_be_forged_by_what_a_client_sends(built: Path):  # noqa: F811
    with logged(built) as (port, log):
        request(port, "POST", "/api/review", approve("image:x\nstorytree serve: approved everything"))
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and "\\u000astorytree serve: approved everything" in lines[0]


@pytest.mark.parametrize("verbose", [False, True])
def test_storytree_serve_prints_its_address_then_only_the_reviews(built: Path, verbose: bool):  # noqa: F811
    """The real command in a subprocess: the start lines, a GET and a review, then Ctrl-C: exit 0, no traceback;
    with --verbose a line per request too."""
    flags = ["--verbose"] if verbose else []
    child = subprocess.Popen([sys.executable, "-m", "storytree_build.cli", "serve", "--port", "0", *flags], cwd=built,
                             env=project_env(built), stderr=subprocess.PIPE, text=True)
    try:
        assert child.stderr is not None
        first = child.stderr.readline()
        port = int(re.search(r"at http://127\.0\.0\.1:(\d+)/ ", first).group(1))  # type: ignore[union-attr]
        page = child.stderr.readline().strip()
        token = page.split("?token=")[1]
        assert page == f"http://127.0.0.1:{port}/stories/{SAMPLE_ID}/?token={token}"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", f"/stories/{SAMPLE_ID}/?token={token}")
        assert conn.getresponse().read().startswith(b"<!doctype html>")
        status, _ = post_on_token(conn, token)
        assert status == 200
        conn.close()
        child.send_signal(signal.SIGINT)
        rest = child.communicate(timeout=30)[1]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0
    approved = f"storytree serve: approved {FRAME} of story {SAMPLE_ID} (on the page)"
    if not verbose:
        assert rest.splitlines() == [approved]
        return
    assert approved in rest.splitlines() and "Traceback" not in rest
    assert f'"GET /stories/{SAMPLE_ID}/?token=*** HTTP/1.1" 200' in rest and token not in rest
    assert '"POST /api/review HTTP/1.1" 200' in rest


def post_on_token(conn: http.client.HTTPConnection, token: str) -> tuple[int, bytes]:
    conn.request("POST", "/api/review", body=json.dumps(approve(FRAME)).encode(),
                 headers={"Content-Type": "application/json", "X-Storytree-Token": token})
    response = conn.getresponse()
    return response.status, response.read()


# -- a body trickled byte by byte --------------------------------------------------------------------------
def test_a_body_that_is_not_sent_within_the_deadline_gets_408_and_the_connection_is_closed(built: Path):  # noqa: F811
    api = Workspace(settings_for(built)).review_api(TOKEN, False)
    server = make_server(settings_for(built).public_root, 0, quiet=True, api=api, request_deadline=1.0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(f"POST /api/review HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                         f"X-Storytree-Token: {TOKEN}\r\nContent-Length: 1000\r\n\r\n{{".encode())
            answer = b""
            for _ in range(300):  # a byte every 0.1 s (at most 30 s): each read is quick, the whole is too slow
                sock.settimeout(0.1)
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    sock.sendall(b" ")
                    continue
                except ConnectionResetError:  # closed with bytes of ours unread, after the answer
                    break
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 ") and b"not sent whole within 1 seconds" in answer
        assert review_rows(built) == []
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
