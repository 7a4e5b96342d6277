"""The review page of a long story: a 252-shot story built by the stub provider with `[review] key_frames =
"required"` (every key frame built, every video waiting), as a reviewer opens it. Its HTML stays small, it asks for
few images before the reader scrolls, and no page of the gallery scrolls sideways on a 390 px phone (real Chromium;
see test_gallery_browser.py for when browser tests run)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from support.gallery import SAMPLE_ID, long_story_export, new_project, run_doit, settings_for
from support.project import import_story
from support.project import new_project as empty_project
from test_gallery_browser import CHROMIUM, CHROMIUM_ARGS, require_browser

from storytree_build.bootstrap import Workspace
from storytree_build.gallery.freshness import page_path
from storytree_build.gallery.page import details_href
from storytree_build.gallery.serve import make_server

REVIEW_ON = '[review]\nkey_frames = "required"\n'
MAX_HTML = 500 * 1024
MAX_IMAGES_BEFORE_SCROLLING = 60
PHONE = {"width": 390, "height": 844}
TOKEN = "scale-test-token"


@pytest.fixture(scope="module")
def long_story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    story_id, export = long_story_export(530)
    root = import_story(empty_project(tmp_path_factory.mktemp("long") / "project"), export, story_id=story_id)
    (root / "storytree.toml").write_text(REVIEW_ON)
    run = run_doit(root, "--continue", f"story:{story_id}", "provider=stub", check=False)
    assert run.returncode == 4, run.stdout + run.stderr  # every video waits for its key frame's review
    return root, story_id


@pytest.fixture
def served(long_story: tuple[Path, str]) -> Iterator[str]:
    root, _ = long_story
    settings = settings_for(root)
    server = make_server(settings.public_root, 0, quiet=True, api=Workspace(settings).review_api(TOKEN, False))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_a_252_shot_story_page_is_small_and_shows_shots_before_references(long_story):
    root, story_id = long_story
    page = page_path(settings_for(root), story_id)
    html = page.read_text(encoding="utf-8")
    assert html.count('<article class="shot') == 252
    assert len(html.encode()) <= MAX_HTML, f"{len(html.encode())} bytes"
    assert "User prompt" not in html  # prompts are on each target's own page
    assert (page.parent / unquote(details_href("image:scenelet-1_1"))).is_file()
    assert html.index('<article class="shot') < html.index('<h2 id="references">')
    thumbs = list((page.parent / "thumbs").glob("*.webp"))
    assert len(thumbs) == 252 + 2 * 8 + 10  # key frames, character plates, environment keyframes: each made once


def test_a_252_shot_story_asks_for_at_most_60_images_before_scrolling(long_story, served: str):
    sync_playwright = require_browser()
    _, story_id = long_story
    for viewport in ({"width": 1400, "height": 900}, PHONE):
        images: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport=viewport)
                page.set_default_timeout(30_000)
                page.on("request", lambda r: images.append(r.url) if r.resource_type == "image" else None)
                page.goto(f"{served}/stories/{story_id}/?token={TOKEN}")
                page.wait_for_load_state("networkidle")
                page.wait_for_function("document.body.dataset.review === 'on'")
                assert page.inner_text("#to-review").strip().lower() == "252 to review"
                assert 0 < len(images) <= MAX_IMAGES_BEFORE_SCROLLING, (viewport, len(images))
                assert not any("/generated/" in url for url in images)  # thumbnails only; the full file on click
                page.evaluate("scrollTo(0, document.documentElement.scrollHeight / 2)")
                page.wait_for_load_state("networkidle")
                assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            finally:
                browser.close()


def test_no_gallery_page_scrolls_sideways_on_a_phone(tmp_path: Path):
    """The sample story with review on (forms, the review bar, a long note, waiting videos) on a 390 x 844 phone:
    the index, the story page and a target's own page fit the width."""
    sync_playwright = require_browser()
    root = new_project(tmp_path / "project")
    (root / "storytree.toml").write_text(REVIEW_ON)
    assert run_doit(root, "--continue", f"story:{SAMPLE_ID}", "provider=stub", check=False).returncode == 4
    settings = settings_for(root)
    server = make_server(settings.public_root, 0, quiet=True, api=Workspace(settings).review_api(TOKEN, False))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    widths: dict[str, int] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
                page.set_default_timeout(30_000)
                page.goto(f"{base}/stories/{SAMPLE_ID}/?token={TOKEN}")
                page.wait_for_function("document.body.dataset.review === 'on'")
                assert page.locator("form.review:visible").count() == 12
                first_shot = page.locator("article.shot").first.bounding_box()
                assert first_shot is not None and first_shot["y"] < 2 * PHONE["height"]  # shots first, near the top
                page.locator("details.tree-box summary").click()  # the scenelet tree, opened
                widths["story"] = page.evaluate("document.documentElement.scrollWidth")
                page.goto(f"{base}/stories/{SAMPLE_ID}/{details_href('image:scenelet-1_1')}")
                widths["target"] = page.evaluate("document.documentElement.scrollWidth")
                page.goto(f"{base}/")
                widths["index"] = page.evaluate("document.documentElement.scrollWidth")
                page.goto((settings.public_root / "stories" / SAMPLE_ID / "index.html").as_uri())  # from disk too
                widths["story from disk"] = page.evaluate("document.documentElement.scrollWidth")
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert all(width <= PHONE["width"] for width in widths.values()), widths
