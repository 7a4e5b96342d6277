"""`storytree serve` against hostile clients, on a real server on 127.0.0.1: a page of another site (DNS rebinding:
a foreign Host), clients that trickle a request byte by byte, a port already taken."""

from __future__ import annotations

import http.client
import io
import socket
import threading
import time
from pathlib import Path

import pytest

from storytree_build.cli import main
from storytree_build.gallery.request_deadline import DeadlineReader
from storytree_build.gallery.serve import make_server
from test_serve import PNG, get, site  # noqa: F401 - fixture

ASSET = "/generated/story/shots/scenelet-1/shot-1_key_frame.png"


def get_as(port: int, host: str, path: str, method: str = "GET") -> tuple[http.client.HTTPResponse, bytes]:
    """A request with this Host header (and no other), the path sent as it is."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", host)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


def raw(port: int, request: bytes) -> bytes:
    """Send `request` as it is and read the answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


# -- Host: only this server's own names ----------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/stories/story/", ASSET, "/api/session", "/nope.png"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost", "127.0.0.2:{port}"])
def test_a_foreign_host_gets_421_and_no_data(site, path: str, method: str, host: str):  # noqa: F811
    resp, body = get_as(site, host.format(port=site), path, method)
    assert resp.status == 421
    assert b"<title>" not in body and PNG[:64] not in body and b"read_only" not in body
    if method == "GET":
        assert b"answers to Host 127.0.0.1:" in body


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LocalHost:{port}"])
def test_this_servers_own_names_are_answered(site, host: str):  # noqa: F811
    resp, body = get_as(site, host.format(port=site), "/stories/story/")
    assert resp.status == 200 and b"<title>story</title>" in body


def test_no_host_two_hosts_or_a_full_url_are_refused(site):  # noqa: F811
    assert raw(site, b"GET / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 421 ")
    two = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{site}\r\nHost: evil.example\r\n\r\n".encode()
    assert raw(site, two).startswith(b"HTTP/1.1 421 ")
    absolute = f"GET http://evil.example/ HTTP/1.1\r\nHost: 127.0.0.1:{site}\r\n\r\n".encode()
    answer = raw(site, absolute)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"<title>" not in answer


def test_a_post_with_a_foreign_host_is_421_before_anything_else(site):  # noqa: F811
    conn = http.client.HTTPConnection("127.0.0.1", site, timeout=30)
    conn.request("POST", "/api/review", body=b"{}", headers={"Host": "evil.example", "Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 421 and b"answers to Host" in resp.read()
    conn.close()


# -- a deadline for each whole request ----------------------------------------------------------------------
def trickle(sockets: list[socket.socket], stop: threading.Event) -> None:
    """Send one byte of an endless header to each slow socket every 0.1 s, until told to stop (at most 60 s)."""
    header = b"GET / HTTP/1.1\r\nX-Slow: " + b"a" * 10_000
    for index in range(600):
        if stop.is_set():
            return
        for sock in sockets:
            try:
                sock.sendall(header[index:index + 1])
            except OSError:  # the server closed it
                pass
        time.sleep(0.1)


def closed_by_server(sock: socket.socket) -> bool:
    """The server closed the connection without answering (a reset: it closed with bytes of ours unread)."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def test_clients_that_trickle_bytes_are_dropped_and_never_block_the_others(tmp_path: Path):
    (tmp_path / "index.html").write_text("<title>x</title>")
    server = make_server(tmp_path, 0, quiet=True, workers=2, request_deadline=1.0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = server.server_address[1]
    slow = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(6)]  # 3 × the workers
    stop = threading.Event()
    trickler = threading.Thread(target=trickle, args=(slow, stop), daemon=True)
    trickler.start()
    try:
        resp, body = get(port, "/index.html")  # queued behind the slow ones, answered once they are dropped
        assert resp.status == 200 and b"<title>x</title>" in body
        assert trickler.is_alive()  # the slow clients kept sending all along
        assert all(closed_by_server(sock) for sock in slow)  # each was dropped, none answered
    finally:
        stop.set()
        trickler.join(timeout=10)
        for sock in slow:
            sock.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_past_its_deadline_what_has_arrived_is_still_read_and_nothing_is_waited_for():
    """A connection that waited in the queue longer than its deadline, its request there whole, is answered; one
    whose request has not arrived is dropped at once (a worker is never held past the deadline)."""
    ours, client = socket.socketpair()
    with ours, client:
        client.sendall(b"GET / HTTP/1.1\r\n")
        reader = DeadlineReader(ours)
        reader.start(1.0, since=time.monotonic() - 60)  # accepted a minute ago
        rfile = io.BufferedReader(reader)
        assert rfile.readline() == b"GET / HTTP/1.1\r\n"
        with pytest.raises(TimeoutError):
            rfile.readline()  # nothing more has arrived
        reader.stop(5.0)
        client.sendall(b"Host: x\r\n")
        assert rfile.readline() == b"Host: x\r\n"  # no deadline once the request is read (writing the answer)


# -- a port already taken ----------------------------------------------------------------------------------
def test_a_busy_port_is_one_line_naming_the_port_and_exit_1(tmp_path: Path, capsys, monkeypatch):  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    for folder in ("templates", "system_prompts", "apps/story-tree-ui/public"):
        (tmp_path / folder).mkdir(parents=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"storytree: error: port {port} on 127.0.0.1 is in use (another server listens "
                                "there); choose another with --port."]


def test_a_port_out_of_range_is_refused(tmp_path: Path, capsys, monkeypatch):  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    for folder in ("templates", "system_prompts", "apps/story-tree-ui/public"):
        (tmp_path / folder).mkdir(parents=True)
    assert main(["serve", "--port", "70000"]) == 1
    assert capsys.readouterr().err.splitlines() == ["storytree: error: --port 70000 is not a port; choose one from "
                                                    "1 to 65535."]
