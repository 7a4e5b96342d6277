"""The review endpoints of `storytree serve` over real HTTP on 127.0.0.1: a state change needs the token, this server's
own Host and Origin and a JSON body; read-only servers change nothing; the token never reaches a log line."""

from __future__ import annotations

import http.client
import io
import json
import shutil
import threading
from contextlib import redirect_stderr
from pathlib import Path

import pytest

from storytree_build.bootstrap import Workspace
from storytree_build.gallery.serve import make_server
from support.gallery import SAMPLE_ID, parse_page, settings_for
from test_review import built_template, review_rows, video_using_its_key_frame  # noqa: F401 - fixture

TOKEN = "t0ken-for-tests-only"
PAGE = f"apps/story-tree-ui/public/stories/{SAMPLE_ID}/index.html"


@pytest.fixture
def built(built_template: Path, tmp_path: Path) -> Path:  # noqa: F811
    root = tmp_path / "project"
    shutil.copytree(built_template, root)
    return root


def serve(root: Path, read_only: bool = False, quiet: bool = True, verbose: bool = False):  # noqa: ANN201
    api = Workspace(settings_for(root)).review_api(TOKEN, read_only)
    server = make_server(settings_for(root).public_root, 0, quiet=quiet, api=api, verbose=verbose)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def server(built: Path):
    server, thread = serve(built)
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def request(port: int, method: str, path: str, body: dict | bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    payload = json.dumps(body).encode() if isinstance(body, dict) else body
    base = {"Content-Type": "application/json", "X-Storytree-Token": TOKEN} if method == "POST" else {}
    conn.request(method, path, body=payload, headers={**base, **(headers or {})})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, json.loads(data) if data.startswith(b"{") else {"raw": data.decode()}


def approve(task: str, note: str = "", verdict: str = "approve") -> dict:
    return {"story_id": SAMPLE_ID, "task": task, "verdict": verdict, "note": note}


def test_approve_on_the_page_stores_the_review_and_renders_the_page_again(built: Path, server: int):
    task = video_using_its_key_frame(built).replace("video:", "image:")
    assert request(server, "GET", "/api/session") == (200, {"read_only": False})
    status, answer = request(server, "POST", "/api/review", approve(task))
    assert status == 200, answer
    assert answer["review"]["verdict"] == "approved" and answer["now_out_of_date"] == []
    assert review_rows(built) == [(task, "approved", "")]
    html = (built / PAGE).read_text()
    assert f'data-review="approved"' in html.split(f'data-task="{task}" data-state')[1].split("</div>")[0]

    status, answer = request(server, "POST", "/api/review", approve(task, "a wider shot", "reject"))
    assert status == 200 and answer["now_out_of_date"] == [task]
    assert "Director's note: a wider shot" in (built / PAGE).read_text()


@pytest.mark.parametrize(("headers", "status", "error"), [
    ({"X-Storytree-Token": ""}, 403, "missing or wrong token"),
    ({"X-Storytree-Token": "guess"}, 403, "missing or wrong token"),
    ({"Host": "evil.example:80"}, 421, "answers to Host 127.0.0.1:"),  # refused before the API sees it
    ({"Origin": "http://evil.example"}, 403, "another site"),
    ({"Content-Type": "text/plain"}, 415, "send JSON"),
])
def test_a_state_change_without_the_token_or_from_elsewhere_is_refused(built: Path, server: int, headers: dict,
                                                                       status: int, error: str):
    got, answer = request(server, "POST", "/api/review", approve("image:scenelet-1_1"), headers)
    assert got == status and error in answer.get("error", answer.get("raw", ""))
    assert review_rows(built) == []


@pytest.mark.parametrize(("body", "error"), [
    (b"not json", "not JSON"),
    (approve("image:scenelet-1_1", verdict="maybe"), "expected"),
    (approve("image:scenelet-9_9"), "is not a target of story"),
    (approve("image:scenelet-1_1", "x" * 2001, "reject"), "notes are at most 2000"),
    (b"{" + b" " * 20_000 + b"}", "at most 16384 bytes"),
])
def test_bad_requests_get_a_clear_error_and_write_nothing(built: Path, server: int, body, error: str):  # noqa: ANN001
    status, answer = request(server, "POST", "/api/review", body)
    assert status in (400, 413) and error in answer["error"], answer
    assert review_rows(built) == []


def test_a_read_only_server_shows_reviews_and_changes_nothing(built: Path):
    server, thread = serve(built, read_only=True)
    try:
        port = server.server_address[1]
        assert request(port, "GET", "/api/session") == (200, {"read_only": True})
        status, answer = request(port, "POST", "/api/review", approve("image:scenelet-1_1"))
        assert status == 403 and "read-only" in answer["error"]
        assert review_rows(built) == []
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_token_never_reaches_the_log(built: Path):
    log = io.StringIO()
    with redirect_stderr(log):
        server, thread = serve(built, quiet=False, verbose=True)  # every request's line, with its URL
        try:
            port = server.server_address[1]
            status, _ = request(port, "GET", f"/stories/{SAMPLE_ID}/?token={TOKEN}")
            assert status == 200
            request(port, "POST", f"/api/review?token={TOKEN}", approve("image:scenelet-1_1"))
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
    assert f"/stories/{SAMPLE_ID}/?token=***" in log.getvalue()
    assert TOKEN not in log.getvalue()


def test_the_page_hides_the_review_forms_until_a_served_page_has_the_token(built: Path):
    page = parse_page(built / PAGE)
    assert page.targets  # the static page renders
    html = (built / PAGE).read_text()
    # the forms are made by the script (from one <template>) only on a served page with the token: 12 key frames
    assert html.count('<form class="review"') == 1 and html.count('<template id="review-form">') == 1
    assert html.index('<template id="review-form">') < html.index('<form class="review"') < html.index("</template>")
    assert [t for t in page.targets if f'data-task="{t}" data-state="current" data-reviewable' in html] == [
        t for t in page.targets if t.startswith("image:")]
