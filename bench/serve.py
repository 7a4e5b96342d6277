"""`storytree serve` under load: N simultaneous clients, each opening a connection at once and asking for the story
page. Compares, in one run, the server as shipped (listen queue 1,024, 32 pooled workers, a 10 s deadline per request) with the
standard library's ThreadingHTTPServer and its default listen queue of 5 (what storytree used before).

    .venv/bin/python bench/serve.py [N ...]          (default: 200 1000)

Prints answered/N and the wall time until every answer (or the 20 s give-up) per server.

    .venv/bin/python bench/serve.py --trickle [N ...]   (default: 31 32 64 200)

N clients that send a request one byte every 3 s (the slowloris of issue 24), then one normal GET: prints how long
it waited for its page (storytree serve: 32 workers, a 10 s deadline per request counted from the accept).
"""

from __future__ import annotations

import http.client
import selectors
import socket
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storytree_build.gallery.serve import PublicHandler, make_server  # noqa: E402

GIVE_UP = 20.0


def old_server(root: Path) -> ThreadingHTTPServer:
    handler = type("Handler", (PublicHandler,), {"root": root.resolve(), "quiet": True})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    return server


def hammer(port: int, n: int) -> tuple[int, float]:
    started = time.perf_counter()
    request = f"GET /stories/story/ HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n".encode()
    selector = selectors.DefaultSelector()
    answers: dict[socket.socket, bytes] = {}
    for _ in range(n):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        answers[sock] = b""
        selector.register(sock, selectors.EVENT_WRITE)
    pending = len(answers)
    while pending and time.perf_counter() - started < GIVE_UP:
        for key, events in selector.select(timeout=0.5):
            sock = key.fileobj
            if events & selectors.EVENT_WRITE:
                try:
                    sock.send(request)
                except OSError:
                    selector.unregister(sock)
                    pending -= 1
                    continue
                selector.modify(sock, selectors.EVENT_READ)
                continue
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                answers[sock] += chunk
            else:
                selector.unregister(sock)
                pending -= 1
    elapsed = time.perf_counter() - started
    for sock in answers:
        sock.close()
    return sum(1 for data in answers.values() if data.startswith(b"HTTP/1.1 200")), elapsed


def trickled(root: Path, n: int) -> tuple[int, float]:
    """The status and wait of one GET made while `n` clients trickle a request, a byte every 3 s."""
    server = make_server(root, 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = server.server_address[1]
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    stop = threading.Event()

    def trickle() -> None:
        request = f"GET / HTTP/1.1\r\nHost: localhost:{port}\r\nX-Slow: ".encode() + b"a" * 100
        for index in range(len(request)):  # bounded: at most 5 minutes
            for sock in slow:
                try:
                    sock.sendall(request[index:index + 1])
                except OSError:
                    pass
            if stop.wait(3.0):
                return

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=GIVE_UP * 6)
    try:
        conn.request("GET", "/stories/story/")
        status = conn.getresponse().status
    except OSError:
        status = 0
    elapsed = time.perf_counter() - started
    stop.set()
    sender.join()
    for sock in slow:
        sock.close()
    server.shutdown()
    server.server_close()
    return status, elapsed


def main() -> None:
    trickle = "--trickle" in sys.argv[1:]
    counts = [int(a) for a in sys.argv[1:] if a != "--trickle"] or ([31, 32, 64, 200] if trickle else [200, 1000])
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "stories" / "story").mkdir(parents=True)
        (root / "stories" / "story" / "index.html").write_text("<!doctype html><title>story</title>" + "x" * 20_000)
        if trickle:
            for n in counts:
                status, elapsed = trickled(root, n)
                print(f"storytree serve, {n:4d} trickling clients: a GET answered {status} after {elapsed:6.2f} s")
            return
        for name, make in (("storytree serve", lambda: make_server(root, 0, quiet=True)),
                           ("ThreadingHTTPServer, queue 5", lambda: old_server(root))):
            for n in counts:
                server = make()
                thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
                thread.start()
                answered, elapsed = hammer(server.server_address[1], n)
                server.shutdown()
                server.server_close()
                print(f"{name:30s} {n:5d} clients: {answered:5d} answered in {elapsed:6.2f} s")


if __name__ == "__main__":
    main()
