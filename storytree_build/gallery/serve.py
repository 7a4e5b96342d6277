"""`storytree serve`: a small static server for `apps/story-tree-ui/public/` (the review gallery and its assets).

Binds 127.0.0.1 only and serves nothing outside the public folder: `..` segments (also percent-encoded), NUL bytes,
backslashes and dot-files are refused, and every path is resolved (symlinks included) and must stay inside the folder.
Byte ranges are honoured (206 / 416) so browsers can seek in MP4 videos; directories serve their index.html.
`/api/…` are the review endpoints (review/web_api.py): approve / reject / restore on the page, with the token printed
at start; `/objects/<sha256>` serves the local object store read-only (object_files.py) for the earlier versions.
Every request must name this server in its Host header (hosts.py; 421 otherwise), so a DNS-rebinding page reads
nothing. Under load: a listen queue of 1,024 connections, a bounded pool of worker threads, and a deadline of 10
seconds for reading each whole request — the wait for it, its headers and its body (request_deadline.py) — so a
client that sends nothing, or trickles bytes, loses its connection and never holds a worker for long. What it logs:
serve_log.py (request lines only with --verbose).
"""

from __future__ import annotations

import email.utils
import errno
import io
import json
import os
import posixpath
import secrets
import socket
import sys
import threading
import time
import traceback
from http import HTTPStatus
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from socketserver import BaseServer
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from ..core.errors import InputError
from ..files.mime import content_type
from ..review.web_api import MAX_BODY, POST_PATHS, ReviewApi, describe
from .hosts import host_problem
from .object_files import PREFIX as OBJECTS_PREFIX, object_file
from .request_deadline import DeadlineReader
from .serve_log import ServeLog

CHUNK = 256 * 1024
LISTEN_QUEUE = 1024
WORKERS = 32
REQUEST_DEADLINE = 10.0  # seconds to wait for a request and read it whole (headers and body)
SEND_TIMEOUT = 10.0  # seconds one write of an answer may block (a client that stops reading is dropped)


def parse_range(header: str, size: int) -> tuple[int, int] | None | Literal["unsatisfiable"]:
    """One `bytes=` range → (first, last) inclusive; None to ignore it (serve 200); "unsatisfiable" for 416."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # other units and multipart ranges: a server may answer with the whole file
    first_text, sep, last_text = spec.strip().partition("-")
    if not sep:
        return None
    try:
        if first_text == "":
            suffix = int(last_text)
            if suffix <= 0:
                return "unsatisfiable"
            return (max(0, size - suffix), size - 1) if size else "unsatisfiable"
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first < 0:
        return None
    if first >= size:
        return "unsatisfiable"
    if last < first:
        return None
    return first, min(last, size - 1)


class PublicHandler(BaseHTTPRequestHandler):
    server_version = "storytree-serve"
    protocol_version = "HTTP/1.1"
    root: Path  # set on the subclass made by make_server (already resolved)
    log = ServeLog(quiet=True)
    api: "ReviewApi | None" = None  # the review endpoints (None: static files only)
    timeout = SEND_TIMEOUT  # socketserver sets it on the connection; reads are bounded by the deadline instead
    request_deadline = REQUEST_DEADLINE

    # -- the connection: a deadline for each request -------------------------------------------
    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the buffered socket file socketserver made: read through the deadline instead
        self._reader = DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)
        # the first request's deadline counts from the accept: time spent queued for a worker is part of it
        self._accepted_at = self.server.accepted_at() if isinstance(self.server, PooledHTTPServer) else None

    def handle_one_request(self) -> None:
        # from the first byte waited for to the last byte of the body
        self._reader.start(self.request_deadline, since=self._accepted_at)
        self._accepted_at = None  # a kept-alive connection's next request: from now
        super().handle_one_request()

    def parse_request(self) -> bool:
        """http.server's parsing, then the checks every request passes before it is answered (any method)."""
        if not super().parse_request():
            return False
        if self.command != "POST":
            self._reader.stop(self.timeout)  # the request is read (a POST's body is read by do_POST)
        problem = host_problem(self.headers.get_all("Host") or [], inet_address(self.server)[1])
        if problem is not None:
            self._refuse_unread(HTTPStatus.MISDIRECTED_REQUEST, problem)
            return False
        if not self.path.startswith("/"):  # an absolute URL would name another host than the Host header
            self._refuse_unread(HTTPStatus.BAD_REQUEST, "send a path (/…), not a full URL")
            return False
        return True

    def _refuse_unread(self, status: HTTPStatus, message: str, as_json: bool = False) -> None:
        """Refuse a request whose body (if any) is not read: answer, then close the connection."""
        self._reader.stop(self.timeout)
        self.close_connection = True
        if as_json:
            self._send_json(status, {"error": message})
        else:
            self._refuse(status, message)

    # -- request handling ---------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if urlsplit(self.path).path == "/api/session":  # a server without the review endpoints is read-only
            self._send_json(*(self.api.session() if self.api is not None else (HTTPStatus.OK, {"read_only": True})))
            return
        self._serve(send_body=True)

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if path not in POST_PATHS or self.api is None:
            self._refuse_unread(HTTPStatus.METHOD_NOT_ALLOWED, f"only {' and '.join(POST_PATHS)} accept POST")
            return
        if self.headers.get("Transfer-Encoding"):
            self._refuse_unread(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length", as_json=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._refuse_unread(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a request is at most {MAX_BODY} bytes",
                                as_json=True)
            return
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self.log_error("dropped a request whose body was not sent within %g s", self.request_deadline)
            self._refuse_unread(HTTPStatus.REQUEST_TIMEOUT, f"the request was not sent whole within "
                                                            f"{self.request_deadline:g} seconds", as_json=True)
            return
        self._reader.stop(self.timeout)
        if len(body) < length:  # the client closed the connection before sending all it announced
            self.close_connection = True
            return
        try:
            answer = self.api.post(path, self.headers, body, inet_address(self.server)[1])
        except Exception as exc:  # noqa: BLE001 - a bug must cost one request its answer, never the connection
            self.log.say(f"error: {path} failed: {type(exc).__name__}: {exc}")
            self.log.detail(traceback.format_exc())
            answer = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"the server failed ({type(exc).__name__}); the "
                                                                 "output of `storytree serve` says more"}
        self.log.say(describe(path, answer))
        self._send_json(*answer)

    def _send_json(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(send_body=False)

    def _refuse(self, status: HTTPStatus, message: str) -> None:
        body = f"{status.value} {status.phrase}: {message}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def resolve(self, raw_path: str) -> Path | HTTPStatus:
        """The file a URL path names, or the status to answer with. Never a path outside `root`."""
        path = unquote(urlsplit(raw_path).path, errors="strict")
        if "\x00" in path or "\\" in path or not path.startswith("/"):
            return HTTPStatus.BAD_REQUEST
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if any(p == ".." or p.startswith(".") for p in parts):
            return HTTPStatus.NOT_FOUND
        candidate = self.root.joinpath(*parts)
        try:
            real = candidate.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError, RuntimeError, OSError):
            return HTTPStatus.NOT_FOUND
        if real != self.root and self.root not in real.parents:
            return HTTPStatus.NOT_FOUND  # a symlink that leads outside the public folder
        return real

    def _serve(self, send_body: bool) -> None:
        url_path = urlsplit(self.path).path
        store = self.api.objects if self.api is not None else None
        if store is not None and url_path.startswith(OBJECTS_PREFIX):
            found = object_file(store, url_path)
            if isinstance(found, HTTPStatus):
                self._refuse(found, "no such object" if found == HTTPStatus.NOT_FOUND else "not an object id")
                return
            self._send_file(found[0], send_body, media_type=found[1], immutable=True)
            return
        try:
            target = self.resolve(self.path)
        except UnicodeDecodeError:
            target = HTTPStatus.BAD_REQUEST
        if isinstance(target, HTTPStatus):
            self._refuse(target, "not found" if target == HTTPStatus.NOT_FOUND else "bad path")
            return
        if target.is_dir():
            url_path = urlsplit(self.path).path
            if not url_path.endswith("/"):  # relative links on the page need the trailing slash
                self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                self.send_header("Location", quote(posixpath.normpath(unquote(url_path))) + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            index = target / "index.html"
            if not index.is_file():
                self._refuse(HTTPStatus.NOT_FOUND, "no index.html here")
                return
            target = index
        if not target.is_file():
            self._refuse(HTTPStatus.NOT_FOUND, "not a file")
            return
        self._send_file(target, send_body)

    def _send_file(self, path: Path, send_body: bool, media_type: str | None = None, immutable: bool = False) -> None:
        try:
            handle = open(path, "rb")
        except OSError:
            self._refuse(HTTPStatus.NOT_FOUND, "cannot be read")
            return
        with handle:
            st = os.fstat(handle.fileno())
            size = st.st_size
            etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            first, last, status = 0, size - 1, HTTPStatus.OK
            range_header = self.headers.get("Range")
            if_range = self.headers.get("If-Range")
            if range_header and (not if_range or if_range == etag):
                parsed = parse_range(range_header, size)
                if parsed == "unsatisfiable":
                    self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if parsed is not None:
                    first, last = parsed
                    status = HTTPStatus.PARTIAL_CONTENT
            length = max(0, last - first + 1)
            self.send_response(status)
            self.send_header("Content-Type", media_type or content_type(path))
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            if status == HTTPStatus.PARTIAL_CONTENT:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
            # An object's bytes never change under its name; an asset's do: revalidate so a rebuilt one shows at once.
            self.send_header("Cache-Control", "private, max-age=31536000, immutable" if immutable else "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if not send_body:
                return
            handle.seek(first)
            remaining = length
            try:
                while remaining > 0:
                    chunk = handle.read(min(CHUNK, remaining))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # browsers drop video requests all the time

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server signature
        """http.server's lines (each request, a client's protocol error or timeout): only with --verbose."""
        self.log.detail(f"{self.address_string()} {format % args}")


_Request = socket.socket | tuple[bytes, socket.socket]  # what socketserver hands a server for one connection


def inet_address(server: BaseServer) -> tuple[str, int]:
    """(host, port) of a server bound to 127.0.0.1 (the standard types allow an address of any socket family)."""
    address = server.server_address
    if not isinstance(address, tuple):
        raise TypeError(f"the server is not bound to an internet address: {address!r}")
    return address[0], address[1]


class PooledHTTPServer(HTTPServer):
    """An HTTP server whose connections are handled by a fixed pool of threads (the standard ThreadingHTTPServer
    starts one thread per connection, without bound), with a deep listen queue so bursts wait instead of failing."""

    request_queue_size = LISTEN_QUEUE

    def __init__(self, address: tuple[str, int], handler: type[PublicHandler], workers: int = WORKERS):
        # made first: a failed bind calls server_close() from inside HTTPServer.__init__
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="storytree-serve")
        self._worker = threading.local()  # what a worker thread knows of the connection it handles
        self.log = handler.log
        super().__init__(address, handler)

    def process_request(self, request: _Request, client_address: Any) -> None:  # socketserver's signature
        self._pool.submit(self._handle, request, client_address, time.monotonic())

    def accepted_at(self) -> float | None:
        """When the connection this worker thread handles was accepted (time.monotonic())."""
        return getattr(self._worker, "accepted_at", None)

    def _handle(self, request: _Request, client_address: Any, accepted_at: float) -> None:
        self._worker.accepted_at = accepted_at
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one broken connection must not stop the server
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, not socketserver's traceback: a client that went away is no error of the server's."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            self.log.detail(f"{client_address[0]} went away: {type(exc).__name__}")
            return
        self.log.say(f"error while answering {client_address[0]}: {type(exc).__name__}: {exc}")
        self.log.detail(traceback.format_exc())

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def make_server(root: Path, port: int = 8000, quiet: bool = False, workers: int = WORKERS,
                request_deadline: float = REQUEST_DEADLINE, api: ReviewApi | None = None,
                verbose: bool = False) -> PooledHTTPServer:
    """A server bound to 127.0.0.1 (port 0 picks a free port); call serve_forever() on it. `request_deadline`:
    seconds a connection has to send each whole request (from the wait for it to its body's last byte)."""
    resolved = Path(root).resolve(strict=True)
    log = ServeLog(verbose=verbose, quiet=quiet, secret=api.token if api is not None else None)
    handler = type("Handler", (PublicHandler,), {"root": resolved, "log": log, "request_deadline": request_deadline,
                                                 "api": api})
    return PooledHTTPServer(("127.0.0.1", port), handler, workers)


def new_token() -> str:
    return secrets.token_urlsafe(24)


def listen_problem(port: int, exc: OSError) -> str:
    """One line saying why the server cannot listen on `port`, and what to do."""
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on 127.0.0.1 is in use (another server listens there); choose another with --port."
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on port {port} (ports below 1024 need root); choose another with --port."
    return f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; choose another port with --port."


def serve(root: Path, api: ReviewApi, port: int = 8000, verbose: bool = False) -> int:
    """Serve `root` (the UI's public folder) with the review API until Ctrl-C."""
    read_only = api.read_only
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port} is not a port; choose one from 1 to 65535.")
    if not root.is_dir():
        raise InputError(f"{root} does not exist: build a story first (`doit story:<story-id>`).")
    try:
        server = make_server(root, port, api=api, verbose=verbose)
    except OSError as exc:
        raise InputError(listen_problem(port, exc)) from None
    host, bound = inet_address(server)
    mode = "read-only: reviews are shown, not changed" if read_only else \
        "open a page with its ?token= address below to approve or reject key frames"
    print(f"storytree: serving {root} at http://{host}:{bound}/ ({mode}; Ctrl-C to stop)", file=sys.stderr)
    stories = sorted(p.parent.name for p in (root / "stories").glob("*/index.html"))
    for sid in stories:
        suffix = "" if read_only else f"?token={api.token}"
        print(f"  http://{host}:{bound}/stories/{sid}/{suffix}", file=sys.stderr)
    if not (root / "index.html").exists():
        print("  (no review pages yet: `doit story:<story-id>` renders them)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
