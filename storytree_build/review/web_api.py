"""The JSON endpoints `storytree serve` adds to the static pages, so a reviewer can approve or reject key frames and
bring back an earlier version of one on the page:

    GET  /api/session   {"read_only": bool} — the page shows its forms only when reviews can be written
    POST /api/review    {"story_id", "task", "verdict": "approve" | "reject", "note"} → the review, the targets whose
                        prompt changed; then the story's page is rendered again
    POST /api/restore   {"story_id", "task", "version": int} → an earlier version made current again, for free (409
                        when it was made from other inputs: accepting it anyway is `storytree restore --keep`); then
                        the story's page is rendered again

The earlier versions' images are served from `objects` (the local object store) by serve.py.

A state change needs the token printed when the server starts, in the `X-Storytree-Token` header of a JSON request
whose Host (and Origin, when sent) is this server: another web page can neither read the token nor send that header
without a CORS preflight, which this server never grants; a DNS-rebinding page fails the Host check.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from dataclasses import asdict
from http import HTTPStatus
from pathlib import Path
from typing import Any

from ..core.errors import OtherInputs, StorytreeError
from ..core.ids import safe_id_problem
from ..gallery.hosts import local_hosts
from .desk import ReviewDesk
from .request_body import MAX_BODY, json_object

__all__ = ["MAX_BODY", "POST_PATHS", "ReviewApi", "TOKEN_HEADER"]

TOKEN_HEADER = "X-Storytree-Token"
POST_PATHS = ("/api/review", "/api/restore")

Answer = tuple[HTTPStatus, dict[str, Any]]
Restore = Callable[[str, str, str], str]  # (story id, task, version number) → what was done; raises StorytreeError


class ReviewApi:
    def __init__(self, token: str, read_only: bool, *, has_story: Callable[[str], bool],
                 desk: Callable[[str], ReviewDesk], render_page: Callable[[str], None], restore: Restore,
                 objects: Path | None = None):
        self.token = token
        self.read_only = read_only
        self.objects = objects  # the local object store, whose earlier versions the page shows (None: not served)
        self._has_story = has_story  # a valid story id → whether this project has the story (its manifest)
        self._desk = desk  # story id → its review desk (bootstrap.Workspace.review_desk)
        self._render_page = render_page  # story id → render its review page again
        self._restore = restore  # bootstrap.Workspace.restore_version (building.keeping.restore)
        self._lock = threading.Lock()  # one change at a time: each may rewrite a manifest, an asset and a page

    def session(self) -> tuple[HTTPStatus, dict[str, Any]]:
        return HTTPStatus.OK, {"read_only": self.read_only}

    def refuse_origin(self, headers: Any, port: int) -> str | None:
        """Why the request does not come from one of this server's own pages (None when it does). serve.py has
        already answered 421 to a request with another Host; this is the same rule once more, where it matters."""
        if (headers.get("Host") or "").lower() not in local_hosts(port):
            return "the Host header is not this server"
        origin = headers.get("Origin")
        if origin is not None and origin.lower().removeprefix("http://") not in local_hosts(port):
            return "the request comes from another site"
        return None

    def post(self, path: str, headers: Any, body: bytes, port: int) -> Answer:
        """Answer a POST to one of POST_PATHS."""
        request = self._accepted(headers, body, port)
        if not isinstance(request, dict):
            return request
        return self.review(request) if path == "/api/review" else self.restore(request)

    def _accepted(self, headers: Any, body: bytes, port: int) -> dict[str, Any] | Answer:
        """The JSON object of a state change this server may make, or the answer that refuses it."""
        if self.read_only:
            return HTTPStatus.FORBIDDEN, {"error": "this server is read-only (storytree serve --read-only)"}
        refused = self.refuse_origin(headers, port)
        if refused:
            return HTTPStatus.FORBIDDEN, {"error": refused}
        if not hmac.compare_digest(headers.get(TOKEN_HEADER, "").encode(), self.token.encode()):
            return HTTPStatus.FORBIDDEN, {"error": "missing or wrong token: open the address `storytree serve` "
                                                   "printed (it ends in ?token=…)"}
        if (headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send JSON (Content-Type: application/json)"}
        request = json_object(body)
        if isinstance(request, str):
            return HTTPStatus.BAD_REQUEST, {"error": request}
        if not all(isinstance(request.get(k), str) for k in ("story_id", "task")):
            return HTTPStatus.BAD_REQUEST, {"error": 'expected a JSON object with "story_id" and "task" (strings)'}
        story_id = request["story_id"]
        problem = safe_id_problem(story_id, "story_id")  # before the id becomes part of any path
        if problem is not None:
            return HTTPStatus.BAD_REQUEST, {"error": problem}
        if not self._has_story(str(story_id)):
            return HTTPStatus.NOT_FOUND, {"error": f"story_id {story_id!r}: no such story in this project (it has "
                                                   f"no manifest); `storytree manifest {story_id}` makes one"}
        return request

    def review(self, request: dict[str, Any]) -> Answer:
        if request.get("verdict") not in ("approve", "reject") or not isinstance(request.get("note", ""), str):
            return HTTPStatus.BAD_REQUEST, {"error": 'expected {"story_id": str, "task": str, "verdict": "approve" | '
                                                     '"reject", "note": str}'}
        with self._lock:
            try:
                return HTTPStatus.OK, self._decide(request)
            except StorytreeError as exc:
                return HTTPStatus.BAD_REQUEST, {"error": str(exc)}

    def _decide(self, request: dict[str, Any]) -> dict[str, Any]:
        desk = self._desk(request["story_id"])
        if request["verdict"] == "approve":
            outcome = desk.approve(request["task"])
        else:
            outcome = desk.reject(request["task"], request.get("note"))
        self._render_page(request["story_id"])
        return {"review": asdict(outcome.review), "now_out_of_date": outcome.now_out_of_date}

    def restore(self, request: dict[str, Any]) -> Answer:
        version = request.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            return HTTPStatus.BAD_REQUEST, {"error": 'expected {"story_id": str, "task": str, "version": a version '
                                                     'number (1 or more)}'}
        story_id, task = request["story_id"], request["task"]
        with self._lock:
            try:
                done = self._restore(story_id, task, str(version))
            except OtherInputs as exc:  # accepting it for the present inputs is a decision for the CLI (--keep)
                return HTTPStatus.CONFLICT, {"error": str(exc)}
            except StorytreeError as exc:
                return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
            self._render_page(story_id)
        return HTTPStatus.OK, {"restored": done}


def describe(path: str, answer: Answer) -> str:
    """The one line `storytree serve` logs for a review or restore request (its outcome, or why it was refused)."""
    status, payload = answer
    if status == HTTPStatus.OK and isinstance(payload.get("review"), dict):
        review = payload["review"]
        return f"{review['verdict']} {review['task']} of story {review['story_id']} (on the page)"
    if status == HTTPStatus.OK and "restored" in payload:
        return f"restored {payload['restored']} (on the page)"
    return f"{path} refused ({status.value} {status.phrase}): {payload.get('error', '')}"
