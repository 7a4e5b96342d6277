"""A key frame's earlier versions on the review page, and restoring one from it: the sample story built with the stub
provider, one key frame approved and then rebuilt with `doit -a` (real doit subprocesses, the SQLite store), served
by `storytree serve`'s server on 127.0.0.1 (real HTTP). The browser test is in test_gallery_browser.py."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from storytree_build.bootstrap import Workspace
from storytree_build.objects.local import LocalObjects
from support.gallery import SAMPLE_ID, build_sample, new_project, parse_page, run_doit, settings_for
from support.project import ASSETS, records_of
from test_review_api import TOKEN, request, serve

FRAME = "image:scenelet-1_1"
PAGE = f"apps/story-tree-ui/public/stories/{SAMPLE_ID}/index.html"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def frame_file(root: Path) -> Path:
    return root / ASSETS / records_of(root)[FRAME].output


def versions_of(root: Path, task: str = FRAME) -> list:
    workspace = Workspace(settings_for(root))
    try:
        return workspace.state().versions(SAMPLE_ID).all(task)
    finally:
        workspace.close()


@pytest.fixture(scope="module")
def forced_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The sample built; FRAME approved, then rebuilt (`doit -a`): version 1 (approved) is kept, version 2 current."""
    root = new_project(tmp_path_factory.mktemp("versions") / "project")
    build_sample(root)
    first = sha(frame_file(root))
    workspace = Workspace(settings_for(root))
    try:
        workspace.review_desk(SAMPLE_ID).approve(FRAME)
    finally:
        workspace.close()
    run_doit(root, "-a", FRAME, "provider=stub")
    run_doit(root, f"gallery:{SAMPLE_ID}", "provider=stub")
    second = sha(frame_file(root))
    assert second != first
    return root, first, second


@pytest.fixture
def forced(forced_template: tuple[Path, str, str], tmp_path: Path) -> tuple[Path, str, str]:
    root, first, second = forced_template
    copy = tmp_path / "project"
    shutil.copytree(root, copy, symlinks=True)
    return copy, first, second


@pytest.fixture
def server(forced: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch):
    import storytree_build.providers.registry as registry

    def no_provider(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("restoring called a provider")

    for name in ("make_images", "make_videos", "make_batches"):
        monkeypatch.setattr(registry, name, no_provider)
    server, thread = serve(forced[0])
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def restore(version: object = 1, task: str = FRAME, story_id: str = SAMPLE_ID) -> dict:
    return {"story_id": story_id, "task": task, "version": version}


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest(method, path, skip_accept_encoding=True)  # the raw path: no client-side normalisation
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), body


def version_items(root: Path) -> dict[str, str]:
    """version number → the HTML of its list item in FRAME's block."""
    html = (root / PAGE).read_text()
    block = html.split(f'<div class="versions" data-task="{FRAME}">')[1].split("</ol>")[0]
    return {item.split('"')[0]: item for item in block.split('<li class="version" data-version="')[1:]}


# -- the page lists the versions --------------------------------------------------------------------------------
def test_the_page_lists_a_key_frames_earlier_versions_with_their_verdicts(forced):
    root, first, second = forced
    items = version_items(root)
    assert list(items) == ["1"]
    item = items["1"]
    assert f'data-sha256="{first}"' in item and 'data-review="approved"' in item
    assert f'src="../../objects/{first}"' in item  # from the local objects, not a path under the served folder
    assert "stub" in item and "by " in item and "replaced " in item
    assert '<button type="button" class="restore"' in item and " hidden>" in item  # shown only with the token
    html = (root / PAGE).read_text()
    assert "now: version 2" in html.split(f'<div class="versions" data-task="{FRAME}">')[1]
    assert html.count('<div class="versions"') == 1  # only key frames with earlier versions have the list
    assert parse_page(root / PAGE).targets  # the page still parses


def test_a_version_not_on_this_machine_says_where_it_is_instead_of_a_broken_image(forced):
    root, first, _ = forced
    settings = settings_for(root)
    object_file = LocalObjects(settings.objects_dir).path(first)
    object_file.unlink()
    run_doit(root, "-a", f"gallery:{SAMPLE_ID}", "provider=stub")
    item = version_items(root)["1"]
    assert "<img" not in item and "not on this machine" in item and "no copy kept" in item
    assert 'class="restore"' not in item  # nothing to restore from

    state = Workspace(settings)
    try:
        state.state().records(SAMPLE_ID).mark_pushed([first], "s3://team-bucket/objects")
    finally:
        state.close()
    run_doit(root, "-a", f"gallery:{SAMPLE_ID}", "provider=stub")
    item = version_items(root)["1"]
    assert "<img" not in item and "on the remote s3://team-bucket/objects" in item
    assert 'class="restore"' in item  # restoring fetches it from the remote


# -- POST /api/restore ------------------------------------------------------------------------------------------
def test_restore_on_the_page_makes_the_earlier_file_current_and_renders_the_page_again(forced, server: int):
    root, first, second = forced
    status, answer = request(server, "POST", "/api/restore", restore(1))
    assert status == 200, answer
    assert "version 1" in answer["restored"] and "no provider was called" in answer["restored"]
    assert sha(frame_file(root)) == first
    record = records_of(root)[FRAME]
    assert (record.output_sha256, record.origin, record.detail, record.version) == (first, "restored", "version 1", 3)
    assert [(v.version, v.output_sha256) for v in versions_of(root)] == [(2, second), (1, first)]
    html = (root / PAGE).read_text()
    block = html.split(f'<div class="target" data-task="{FRAME}"')[1].split('<details class="prompt">')[0]
    assert 'title="an earlier file made current again (version 1)">restored</span>' in block
    assert "now: version 3 (restored: version 1)" in block
    items = version_items(root)
    assert list(items) == ["2", "1"]
    assert 'class="restore"' in items["2"] and 'class="restore"' not in items["1"]  # 1 is the current file now
    assert f"../../generated/{records_of(root)[FRAME].output}?v={first[:12]}" in html  # the current image


@pytest.mark.parametrize(("headers", "status", "error"), [
    ({"X-Storytree-Token": ""}, 403, "missing or wrong token"),
    ({"X-Storytree-Token": "guess"}, 403, "missing or wrong token"),
    ({"Host": "evil.example:80"}, 421, "answers to Host 127.0.0.1:"),  # refused before the API sees it
    ({"Origin": "http://evil.example"}, 403, "another site"),
    ({"Content-Type": "text/plain"}, 415, "send JSON"),
])
def test_a_restore_without_the_token_or_from_elsewhere_is_refused(forced, server: int, headers: dict, status: int,
                                                                  error: str):
    root, _, second = forced
    got, answer = request(server, "POST", "/api/restore", restore(1), headers)
    assert got == status and error in answer.get("error", answer.get("raw", ""))
    assert sha(frame_file(root)) == second and records_of(root)[FRAME].version == 2


@pytest.mark.parametrize(("body", "status", "error"), [
    (b"not json", 400, "not JSON"),
    (restore("1"), 400, "a version number"),
    (restore(0), 400, "a version number"),
    (restore(True), 400, "a version number"),
    ({"story_id": SAMPLE_ID, "version": 1}, 400, '"task"'),
    (restore(1, story_id="../../etc/passwd"), 400, "story_id '../../etc/passwd' is not path-safe"),
    (restore(9), 400, "'9' is no earlier version (earlier versions: 1 ("),
    (restore(1, task="image:scenelet-9_9"), 400, "is not a target of story"),
    (b'{"story_id": "' + b" " * 20_000 + b'"}', 413, "at most 16384 bytes"),
])
def test_a_bad_restore_request_gets_a_clear_error_and_changes_nothing(forced, server: int, body, status: int,  # noqa: ANN001
                                                                      error: str):
    root, _, second = forced
    got, answer = request(server, "POST", "/api/restore", body)
    assert got == status and error in answer["error"], answer
    assert sha(frame_file(root)) == second and records_of(root)[FRAME].version == 2


def test_a_version_made_from_other_inputs_is_a_conflict_and_changes_nothing(forced, server: int):
    root, _, second = forced
    manifest = root / "manifests" / f"{SAMPLE_ID}.yaml"
    target = next(t for t in Workspace(settings_for(root)).load_manifest(SAMPLE_ID).targets if t.task == FRAME)
    manifest.write_text(manifest.read_text().replace(target.prompt_sha256, "f" * 64))  # the prompt changed since
    page_before = (root / PAGE).read_bytes()
    status, answer = request(server, "POST", "/api/restore", restore(1))
    assert status == 409, answer
    assert "was made from other inputs" in answer["error"] and "--keep" in answer["error"]
    assert sha(frame_file(root)) == second and records_of(root)[FRAME].version == 2
    assert (root / PAGE).read_bytes() == page_before


def test_a_read_only_server_restores_nothing(forced):
    root, _, second = forced
    server, thread = serve(root, read_only=True)
    try:
        status, answer = request(server.server_address[1], "POST", "/api/restore", restore(1))
        assert status == 403 and "read-only" in answer["error"]
        assert sha(frame_file(root)) == second
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- GET /objects/<sha256> --------------------------------------------------------------------------------------
def test_an_object_is_served_with_the_type_its_content_has(forced, server: int):
    root, first, _ = forced
    objects = LocalObjects(settings_for(root).objects_dir)
    status, headers, body = get(server, f"/objects/{first}")
    assert status == 200 and body == objects.path(first).read_bytes() and sha_bytes(body) == first
    assert headers["Content-Type"] == "image/png" and headers["X-Content-Type-Options"] == "nosniff"
    status, headers, body = get(server, f"/objects/{first}?v=1", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == objects.path(first).stat().st_size

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "JPEG")
    jpeg = objects.add_bytes(buffer.getvalue())
    status, headers, body = get(server, f"/objects/{jpeg}")
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body == buffer.getvalue()


def sha_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("path", [
    "/objects/abc",
    "/objects/{upper}",
    "/objects/{sha}/",
    "/objects/{sha}%00",
    "/objects/sha256/{sha2}/{sha62}",
    "/objects/../stories/" + SAMPLE_ID + "/index.html",
    "/objects/%2e%2e/%2e%2e/storytree.toml",
    "/objects/..%2f..%2fstory.sqlite",
    "/objects/%2E%2E/story.sqlite",
])
def test_anything_but_an_object_id_under_objects_is_refused(forced, server: int, path: str):
    _, first, _ = forced
    path = path.format(sha=first, upper=first.upper(), sha2=first[:2], sha62=first[2:])
    status, _, body = get(server, path)
    assert status == 400 and b"not an object id" in body


def test_an_unknown_object_or_one_leading_outside_the_store_is_not_found(forced, server: int):
    root, first, _ = forced
    objects = LocalObjects(settings_for(root).objects_dir)
    assert get(server, f"/objects/{'0' * 64}")[0] == 404
    secret = root / "outside.png"  # a valid image outside the store, reached through a planted link
    shutil.copyfile(objects.path(first), secret)
    planted = objects.path("e" * 64)
    planted.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(secret, planted)
    assert get(server, f"/objects/{'e' * 64}")[0] == 404
    text = objects.add_bytes(b"not an image, not a video")  # in the store, but nothing the page shows
    assert get(server, f"/objects/{text}")[0] == 404


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_object_asked_for_under_another_host_is_421_and_not_sent(forced, server: int, method: str):
    """A DNS-rebinding page (its own name resolving to 127.0.0.1) reads no earlier version of a key frame."""
    root, first, _ = forced
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
    conn.putrequest(method, f"/objects/{first}", skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", f"rebind.example:{server}")
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 421 and response.getheader("Content-Type") == "text/plain; charset=utf-8"
    assert LocalObjects(settings_for(root).objects_dir).path(first).read_bytes()[:64] not in body
