"""`storytree serve`: a small static server for `apps/story-tree-ui/public/` (the review gallery and its assets).

Binds 127.0.0.1 only and serves nothing outside the public folder: `..` segments (also percent-encoded), NUL bytes,
backslashes and dot-files are refused, and every path is resolved (symlinks included) and must stay inside the folder.
Byte ranges are honoured (206 / 416) so browsers can seek in MP4 videos; directories serve their index.html.
`/api/…` are the review endpoints (review/web_api.py): approve / reject / restore on the page, with the token printed
at start; `/objects/<sha256>` serves the local object store read-only (object_files.py) for the earlier versions.
Under load: a listen queue of 1,024 connections, a bounded pool of worker threads, and connections idle for more than
10 seconds are closed (a worker is never held forever by a client that sends nothing).
"""

from __future__ import annotations

import email.utils
import json
import os
import posixpath
import secrets
import socket
import sys
from http import HTTPStatus
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from socketserver import BaseServer
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from ..core.errors import InputError
from ..files.mime import content_type
from ..review.web_api import MAX_BODY, POST_PATHS, ReviewApi
from .object_files import PREFIX as OBJECTS_PREFIX, object_file

CHUNK = 256 * 1024
LISTEN_QUEUE = 1024
WORKERS = 32
IDLE_TIMEOUT = 10.0  # seconds a connection may sit without sending a request


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
    quiet = False
    api: "ReviewApi | None" = None  # the review endpoints (None: static files only)

    # -- request handling ---------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if urlsplit(self.path).path == "/api/session":  # a server without the review endpoints is read-only
            self._send_json(*(self.api.session() if self.api is not None else (HTTPStatus.OK, {"read_only": True})))
            return
        self._serve(send_body=True)

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if path not in POST_PATHS or self.api is None:
            self.close_connection = True  # the body was not read
            self._refuse(HTTPStatus.METHOD_NOT_ALLOWED, f"only {' and '.join(POST_PATHS)} accept POST")
            return
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"a request is at most {MAX_BODY} bytes"})
            return
        body = self.rfile.read(length)
        self._send_json(*self.api.post(path, self.headers, body, inet_address(self.server)[1]))

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
        if not self.quiet:
            line = format % args
            if self.api is not None:  # the token is a secret: never in a log line (it is in a page's first URL)
                line = line.replace(self.api.token, "***")
            sys.stderr.write(f"storytree serve: {self.address_string()} {line}\n")


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

    def __init__(self, address: tuple[str, int], handler: type, workers: int = WORKERS):
        super().__init__(address, handler)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="storytree-serve")

    def process_request(self, request: _Request, client_address: Any) -> None:  # socketserver's signature
        self._pool.submit(self._handle, request, client_address)

    def _handle(self, request: _Request, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one broken connection must not stop the server
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def make_server(root: Path, port: int = 8000, quiet: bool = False, workers: int = WORKERS,
                idle_timeout: float = IDLE_TIMEOUT, api: ReviewApi | None = None) -> PooledHTTPServer:
    """A server bound to 127.0.0.1 (port 0 picks a free port); call serve_forever() on it."""
    resolved = Path(root).resolve(strict=True)
    # `timeout` is the socket timeout of each connection: a client silent for that long is disconnected.
    handler = type("Handler", (PublicHandler,), {"root": resolved, "quiet": quiet, "timeout": idle_timeout,
                                                 "api": api})
    return PooledHTTPServer(("127.0.0.1", port), handler, workers)


def new_token() -> str:
    return secrets.token_urlsafe(24)


def serve(root: Path, api: ReviewApi, port: int = 8000) -> int:
    """Serve `root` (the UI's public folder) with the review API until Ctrl-C."""
    read_only = api.read_only
    if not root.is_dir():
        raise InputError(f"{root} does not exist: build a story first (`doit story:<story-id>`).")
    try:
        server = make_server(root, port, api=api)
    except OSError as exc:
        raise InputError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; pick another with --port.") from None
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
