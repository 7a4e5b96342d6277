"""The review page in a real browser: headless Debian Chromium driven by Playwright, on the sample story built with
the stub provider and served by `storytree serve`'s server on 127.0.0.1.

Skipped (loudly) when /usr/bin/chromium or the playwright package is missing, unless REQUIRE_BROWSER_TESTS=1 (CI),
which turns the skip into a failure. `.ci/browser-install` installs Chromium; never `playwright install`.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import pytest

from support.project import REPO
from support.gallery import SAMPLE_ID, build_sample, new_project, run_doit, settings_for

from storytree_build.gallery.serve import make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"


def require_browser():
    problems = []
    if not CHROMIUM.exists():
        problems.append(f"{CHROMIUM} is missing (run .ci/browser-install as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        problems.append("the playwright package is missing (.venv/bin/pip install -e '.[test]')")
    if problems:
        message = "!!! BROWSER TEST NOT RUN: " + "; ".join(problems) + " !!!"
        if os.environ.get("REQUIRE_BROWSER_TESTS") == "1":
            pytest.fail(message + " (REQUIRE_BROWSER_TESTS=1)")
        warnings.warn(message)
        pytest.skip(message)
    return sync_playwright


@pytest.fixture
def served(tmp_path: Path):
    root = new_project(tmp_path / "project")
    build_sample(root)
    server = make_server(settings_for(root).public_root, 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


BROKEN_IMAGES = "[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'))"
ALL_IMAGES_SETTLED = "[...document.images].every(i => i.complete)"
ALL_VIDEOS_HAVE_METADATA = "[...document.querySelectorAll('video')].every(v => v.readyState >= 1)"
# Images are lazy: scrolled through once, every one of them is asked for.
SCROLL_THROUGH = """async () => {
  for (let y = 0; y < document.documentElement.scrollHeight; y += innerHeight / 2) {
    scrollTo(0, y);
    await new Promise(r => requestAnimationFrame(() => setTimeout(r, 20)));
  }
  scrollTo(0, 0);
}"""
SEEK = """v => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('no seeked event')), 10000);
  v.addEventListener('seeked', () => { clearTimeout(timer); resolve(v.currentTime); }, {once: true});
  v.currentTime = Math.min(0.5, v.duration / 2);
})"""


def test_sample_story_page_in_chromium(served):
    sync_playwright = require_browser()
    root, base = served
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    bad_responses: list[str] = []
    partial_videos: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url} {r.failure}")
                    if ".mp4" not in r.url else None)  # the player cancels its own range requests while seeking
            page.on("response", lambda r: bad_responses.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("response", lambda r: partial_videos.append(r.url) if r.status == 206 and ".mp4" in r.url else None)

            # the index links to the story page
            page.goto(f"{base}/")
            assert "Wren and the Runaway Weathervane" in page.inner_text("body")
            page.click(f"a[href='stories/{SAMPLE_ID}/index.html']")
            page.wait_for_load_state("load")
            assert page.url.endswith(f"/stories/{SAMPLE_ID}/index.html")

            page.evaluate(SCROLL_THROUGH)
            page.wait_for_function(ALL_IMAGES_SETTLED)
            n_images = page.evaluate("document.images.length")
            assert n_images >= 36
            assert page.evaluate(BROKEN_IMAGES) == []
            assert page.evaluate("document.querySelectorAll('video').length") == 0  # pictures until clicked
            assert page.evaluate("document.querySelectorAll('a.play').length") == 12
            assert page.evaluate("document.querySelectorAll('details[open]').length") == 0
            assert page.locator(".badge.stub").count() >= 36
            # a click plays the video in place; it seeks: the server answers byte ranges
            page.locator("a.play").first.click()
            page.wait_for_function("document.querySelectorAll('video').length === 1")
            page.wait_for_function(ALL_VIDEOS_HAVE_METADATA)
            video = page.locator("video").first
            assert video.evaluate(SEEK) > 0
            assert partial_videos, "no 206 answer for any video"
            page.screenshot(path=str(ARTIFACTS / "gallery.png"), full_page=True)

            # missing assets: placeholders, never a broken image
            generated = root / f"apps/story-tree-ui/public/generated/{SAMPLE_ID}/shots/scenelet-2"
            (generated / "shot-1_key_frame.png").unlink()
            (generated / "shot-1.mp4").unlink()
            run_doit(root, f"gallery:{SAMPLE_ID}", "provider=stub")
            page.reload()
            page.wait_for_load_state("load")
            page.evaluate(SCROLL_THROUGH)
            page.wait_for_function(ALL_IMAGES_SETTLED)
            assert page.evaluate(BROKEN_IMAGES) == []
            assert page.evaluate("document.querySelectorAll('a.play').length") == 11
            assert page.locator(".placeholder[data-task='image:scenelet-2_1']").is_visible()
            assert page.locator(".placeholder[data-task='video:scenelet-2_1']").is_visible()
            page.locator("#shot-scenelet-2_1").screenshot(path=str(ARTIFACTS / "gallery-missing-shot.png"))
        finally:
            browser.close()
    assert errors == []
    assert bad_responses == []


def test_missing_browser_is_a_loud_skip_or_a_failure_in_ci(monkeypatch, tmp_path):
    import test_gallery_browser as me

    monkeypatch.setattr(me, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("REQUIRE_BROWSER_TESTS", raising=False)
    with pytest.warns(UserWarning, match="BROWSER TEST NOT RUN"), pytest.raises(pytest.skip.Exception, match="!!!"):
        me.require_browser()
    monkeypatch.setenv("REQUIRE_BROWSER_TESTS", "1")
    with pytest.raises(pytest.fail.Exception, match="REQUIRE_BROWSER_TESTS=1"):
        me.require_browser()


def test_approve_and_reject_on_the_served_page_in_chromium(tmp_path):
    """`[review] key_frames = "required"`: the build stops before the videos; a reviewer opens the address `storytree
    serve` prints, approves one key frame and rejects another with a note; the approved shot's video becomes
    buildable and the rejected frame's next prompt carries the note."""
    import json

    from storytree_build.bootstrap import Workspace

    sync_playwright = require_browser()
    root = new_project(tmp_path / "project")
    (root / "storytree.toml").write_text('[review]\nkey_frames = "required"\n')
    assert build_sample_unchecked(root).returncode == 4
    settings = settings_for(root)
    token = "browser-test-token"
    server = make_server(settings.public_root, 0, quiet=True, api=Workspace(settings).review_api(token, False))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/stories/{SAMPLE_ID}/"
    errors: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.set_default_timeout(30_000)
                page.on("pageerror", lambda e: errors.append(f"page error: {e}"))

                page.goto(base)  # without the token: the forms stay hidden and the page says why
                page.wait_for_function("document.body.dataset.review === 'no-token'")
                assert page.locator("form.review:visible").count() == 0
                assert "open the address with the token" in page.inner_text("#review-help")

                page.goto(f"{base}?token={token}")
                page.wait_for_function("document.body.dataset.review === 'on'")
                assert "token" not in page.url  # taken out of the address bar (and out of the history)
                assert page.locator("form.review:visible").count() == 12
                assert page.inner_text("#to-review").strip().lower() == "12 to review"
                # waiting videos are waiting, never failed
                assert page.locator(".target[data-task^='video:'] .badge.failed").count() == 0
                assert page.locator(".target[data-task^='video:'] .badge.waiting").count() == 12
                page.evaluate("window.notReloaded = true")  # a reload would lose it
                approve = page.locator("form.review[data-task='image:scenelet-1_1']")
                approve.locator("button[data-verdict='approve']").click()
                badge = page.locator(".target[data-task='image:scenelet-1_1'] .badge[data-review]")
                page.wait_for_function("document.querySelector('#to-review').textContent.startsWith('11 ')")
                assert badge.inner_text().strip().lower() == "approved"
                video = page.locator(".target[data-task='video:scenelet-1_1'] .badge.state")
                assert video.inner_text().strip().lower() == "would build"
                assert page.locator(".target[data-task='video:scenelet-1_2'] .badge.state").inner_text().strip().lower() \
                    == "waiting for review"

                reject = page.locator("form.review[data-task='image:scenelet-1_2']")
                reject.locator("textarea").fill("Wren's scarf must be red.")
                reject.locator("button[data-verdict='reject']").click()
                page.wait_for_function("document.querySelector('#to-review').textContent.startsWith('10 ')")
                assert "Director's note: Wren's scarf must be red." in page.inner_text(
                    ".target[data-task='image:scenelet-1_2']")
                assert page.evaluate("window.notReloaded") is True

                # keys: j twice reaches the second shot (scenelet-1_2, rejected), j again the third; a approves it
                page.keyboard.press("j")
                page.keyboard.press("j")
                page.keyboard.press("j")
                assert page.locator("article.shot.current").get_attribute("id") == "shot-scenelet-1_3"
                page.locator("form.review[data-task='image:scenelet-2_1'] textarea").focus()
                page.keyboard.press("a")  # typed into the note, not a verdict
                page.locator("form.review[data-task='image:scenelet-2_1'] textarea").fill("")
                page.locator("body").focus()
                page.evaluate("document.activeElement.blur()")
                page.keyboard.press("a")
                page.wait_for_function("document.querySelector('#to-review').textContent.startsWith('9 ')")
                assert page.locator(".target[data-task='image:scenelet-1_3'] .badge[data-review]").inner_text() \
                    .strip().lower() == "approved"

                # filter by state, then approve all shown: only the shown ones
                page.select_option("#filter", "approved")
                assert page.locator("article.shot:visible").count() == 2
                page.select_option("#filter", "rejected")
                assert page.locator("article.shot:visible").count() == 1
                page.select_option("#filter", "unreviewed")
                assert page.locator("article.shot:visible").count() == 9
                page.click("#approve-shown")
                page.wait_for_function("document.querySelector('#to-review').textContent.startsWith('0 ')")
                assert page.locator(".target[data-task^='video:'] .badge.would-build").count() == 11
                assert page.evaluate("window.notReloaded") is True
                page.screenshot(path=str(ARTIFACTS / "gallery-review.png"), full_page=False)
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert errors == []
    plan = run_doit(root, "dryrun", "--json", f"story:{SAMPLE_ID}", "provider=stub")
    items = {item["task"]: item for item in json.loads(plan.stdout)["targets"]}
    assert items["video:scenelet-1_1"]["action"] == "run"  # approved: its video may be paid for now
    assert items["image:scenelet-1_2"]["action"] == "run" and items["video:scenelet-1_2"]["action"] == "wait"
    assert items["video:scenelet-1_3"]["action"] == "run"  # approved with the key a
    assert sum(1 for task, item in items.items() if task.startswith("video:") and item["action"] == "run") == 11


def build_sample_unchecked(root):  # noqa: ANN001, ANN201
    return run_doit(root, "--continue", f"story:{SAMPLE_ID}", "provider=stub", check=False)


def test_restore_an_earlier_key_frame_on_the_served_page_in_chromium(tmp_path):
    """`doit -a` pays for a new key frame and keeps the first one as version 1; the page lists it with its image from
    the local objects; "Restore this version" brings the first file back (free) and the page shows it current."""
    import hashlib

    from storytree_build.bootstrap import Workspace
    from support.project import ASSETS, records_of

    sync_playwright = require_browser()
    frame = "image:scenelet-1_1"
    root = new_project(tmp_path / "project")
    build_sample(root)
    asset = root / ASSETS / records_of(root)[frame].output
    first = hashlib.sha256(asset.read_bytes()).hexdigest()
    run_doit(root, "-a", frame, "provider=stub")
    run_doit(root, f"gallery:{SAMPLE_ID}", "provider=stub")
    assert hashlib.sha256(asset.read_bytes()).hexdigest() != first
    settings = settings_for(root)
    token = "browser-test-token"
    server = make_server(settings.public_root, 0, quiet=True, api=Workspace(settings).review_api(token, False))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/stories/{SAMPLE_ID}/"
    versions = f".versions[data-task='{frame}']"
    errors: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.set_default_timeout(30_000)
                page.on("pageerror", lambda e: errors.append(f"page error: {e}"))

                # from disk: a static page without script errors; the version's image says it is not loaded
                page.goto((settings.public_root / "stories" / SAMPLE_ID / "index.html").as_uri())
                page.locator(versions).scroll_into_view_if_needed()  # the image is lazy: tried once in view
                page.wait_for_function(f"!document.querySelector(\"{versions} img\")")
                assert "not loaded" in page.inner_text(versions)

                page.goto(f"{base}?token={token}")
                page.wait_for_function("document.body.dataset.review === 'on'")
                item = page.locator(f"{versions} li[data-version='1']")
                item.scroll_into_view_if_needed()  # the version's image loads lazily
                item.locator("img").evaluate("i => i.decode()")  # served from the objects: a real image
                assert item.locator("img").evaluate("i => i.naturalWidth") > 0
                assert "approved" not in item.inner_text().lower()  # unreviewed when it was replaced
                with page.expect_navigation():
                    item.locator("button.restore").click()
                page.wait_for_function("document.body.dataset.review === 'on'")
                assert hashlib.sha256(asset.read_bytes()).hexdigest() == first  # the first file is back
                block = page.locator(f".target[data-task='{frame}']")
                assert block.locator(".head .badge.origin").inner_text().strip().lower() == "restored"
                assert "now: version 3 (restored: version 1)" in page.inner_text(versions).lower()
                current = page.locator(f"img[alt='key frame {frame}']")
                assert (current.get_attribute("src") or "") == f"thumbs/{first[:32]}.webp"  # the thumbnail of that file
                assert f"?v={first[:12]}" in (current.locator("xpath=..").get_attribute("href") or "")
                assert page.locator(f"{versions} li[data-version='2'] button.restore").is_visible()
                assert page.locator(f"{versions} li[data-version='1'] button.restore").count() == 0
                page.locator(versions).screenshot(path=str(ARTIFACTS / "gallery-versions.png"))
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert errors == []
