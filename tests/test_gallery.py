"""The review gallery: what the page shows (statuses, stub labels, placeholders, prompts, commands, the tree) and
the `gallery:<story-id>` build target (rebuilt when its inputs change, a no-op otherwise, never paying)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urljoin, urlsplit, unquote

import pytest
from PIL import Image

from support.gallery import SAMPLE_ID, build_sample, context, new_project, parse_page, run_doit, settings_for
from support.project import SAMPLE

from storytree_build.building.summary import Failure
from storytree_build.doit_glue.tasks import GalleryCheck, task_dicts
from storytree_build.gallery import freshness, page as gallery
from storytree_build.store.build_state import Operation, utc_now
from storytree_build.store import SqliteStoryStore
from storytree_build.review.verdicts import Review
from storytree_build.store.sqlite_records import SqliteBuildState as RecordStore, SqliteRecords
from storytree_build.store.sqlite_reviews import SqliteReviews

PAGE_REL = f"apps/story-tree-ui/public/stories/{SAMPLE_ID}/index.html"
ASSETS_REL = "apps/story-tree-ui/public/generated"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """The sample story built once with the stub provider through `doit story:<id>` (assets + review page)."""
    root = new_project(tmp_path_factory.mktemp("gallery") / "project")
    return root, build_sample(root)


@pytest.fixture
def proj(built, tmp_path: Path) -> Path:
    """A private copy of the built project (mtimes kept, so the records still match) for tests that change it."""
    root = tmp_path / "project"
    shutil.copytree(built[0], root, symlinks=True)
    return root


def page_of(root: Path):
    return parse_page(root / PAGE_REL)


def local_file(root: Path, src: str) -> Path:
    """The file a URL on the story page points to (relative URL resolved like a browser does)."""
    url = urljoin(f"http://127.0.0.1/stories/{SAMPLE_ID}/index.html", src)
    return root / "apps/story-tree-ui/public" / unquote(urlsplit(url).path).lstrip("/")


# --- the page after a stub build ------------------------------------------------------------------


def test_story_build_renders_the_page_last_and_counts_only_assets(built):
    root, proc = built
    assert (root / PAGE_REL).is_file()
    assert (root / "apps/story-tree-ui/public/index.html").is_file()
    assert f"gallery:{SAMPLE_ID}: review page {PAGE_REL}" in proc.stderr
    assert "storytree: 36 built, 0 up to date, 0 failed" in proc.stdout
    # the page is rendered after every asset: its log line comes after the last "built" line
    assert proc.stderr.rindex("review page") > proc.stderr.rindex(": built ")


def test_every_asset_is_shown_with_a_url_that_resolves(built):
    root, _ = built
    page = page_of(root)
    manifest = context(root).manifest
    assert len(page.targets) == len(manifest.targets) == 36
    assert page.placeholders == []
    videos = [t for t in manifest.targets if t.kind == "video"]
    # a video is its key frame's picture until clicked (the script puts the player there): no 250 video fetches
    plays = [a for a in page.anchors if "play" in (a.get("class") or "").split()]
    assert page.videos == [] and len(plays) == len(videos) == 12
    assert {str(local_file(root, a["href"]).relative_to(root / ASSETS_REL)) for a in plays} == {v.output for v in videos}
    assert page.imgs, "no images on the page"
    for img in page.imgs:  # thumbnails next to the page, lazily loaded; never the full file, never in generated/
        assert img["src"].startswith("thumbs/") and img["loading"] == "lazy", img
        with Image.open(local_file(root, img["src"])) as thumb:
            assert thumb.format == "WEBP" and thumb.width <= 480
    full = [a["href"] for a in page.anchors if "media-link" in (a.get("class") or "").split()]
    assert all("?v=" in href and local_file(root, href).is_file() for href in full)
    shown = {str(local_file(root, href).relative_to(root / ASSETS_REL)) for href in full}
    assert shown == {t.output for t in manifest.targets}  # every file one click away at full size
    assert not any(p.suffix == ".webp" for p in (root / ASSETS_REL).rglob("*"))  # the shipped assets stay as they are


def test_statuses_stub_labels_and_rebuild_commands(built):
    root, _ = built
    page = page_of(root)
    html = (root / PAGE_REL).read_text()
    assert set(page.targets.values()) == {"current"}
    assert html.count('<span class="badge stub"') == 36 + 1 + 1  # one per target, the summary, the banner
    assert "36 assets on this page were made by the offline stub provider" in page.all_text
    for task in ("image:scenelet-1_1", "video:scenelet-5_2", "ref:character.captain-clank.character-model-sheet-1",
                 "ref:environment.thunderpot-gorge.keyframe_2"):
        assert f"Rebuild: doit -a -s {task} story={SAMPLE_ID}" in target_page(root, page, task).all_text
    assert f"doit story:{SAMPLE_ID}" in page.all_text


def target_page(root: Path, page, task: str):  # noqa: ANN001, ANN201 - support.gallery.PageParser
    """The page of one target, reached by its link on the story page."""
    href = gallery.details_href(task)
    assert href in page.links, f"no link to the page of {task}"
    return parse_page(local_file(root, href))


def test_exact_prompt_and_references_are_on_each_targets_own_page(built):
    root, _ = built
    page = page_of(root)
    assert not any(d["open"] for d in page.details)
    assert "System instruction" not in page.all_text and "User prompt" not in page.all_text  # not on the long page
    ctx = context(root)
    for task in ("image:scenelet-1_2", "video:scenelet-2_1", "ref:character.wren-quillfeather.character-model-sheet-1"):
        user, system = ctx.requests.render(ctx.target(task))
        own = target_page(root, page, task)
        holder = [d["text"] for d in own.details if user in d["text"]]
        assert holder, f"the exact prompt of {task} is not inside a <details>"
        if system:
            assert system in holder[0]
        for ref in ctx.target(task).references:
            assert ref.path in holder[0] and ref.task in holder[0]
        for img in own.imgs:  # the references' thumbnails, relative to the story page (the <base> of the page)
            assert local_file(root, img["src"]).is_file() and img["loading"] == "lazy"


def test_the_page_model_holds_no_prompt_each_is_rendered_while_its_own_page_is_written(proj):
    """A long story's page model must not hold every prompt and system instruction at once (at 20,000 targets that
    was a few hundred MB at the end of a build): prompts are rendered one target at a time, when its page is written."""
    source = context(proj).gallery()
    rendered: list[str] = []
    real_render = source.render

    def counting_render(target):  # noqa: ANN001, ANN202
        rendered.append(target.task)
        return real_render(target)

    source = dataclasses.replace(source, render=counting_render)
    thumbs = gallery.Thumbnails(freshness.page_path(source.settings, SAMPLE_ID).parent)
    _, model = gallery.render_story_page(source, thumbs=thumbs)
    assert rendered == []
    assert all(tv.prompt_user is None and tv.prompt_system is None for tv in model["targets"])
    gallery.write_target_pages(source, model)
    assert sorted(rendered) == sorted(t.task for t in source.manifest.targets)  # once each
    user, _ = real_render(source.manifest.by_task()["image:scenelet-1_2"])
    assert user.splitlines()[0] in local_file(proj, gallery.details_href("image:scenelet-1_2")).read_text()


def test_the_page_indexes_the_manifest_once_not_once_per_reference(proj, monkeypatch):
    """The page looks a target up for every reference and every video: indexing the manifest for each lookup made a
    20,002-target review page quadratic (over ten minutes at the end of a build)."""
    from storytree_build.core.manifest import model

    source = context(proj).gallery()
    calls: list[int] = []
    real = model.index_by_task
    monkeypatch.setattr(model, "index_by_task", lambda targets: calls.append(1) or real(targets))
    gallery.build_gallery(source)
    assert len(calls) <= 1


def test_scenelet_tree_with_labelled_choices(built):
    root, _ = built
    page = page_of(root)
    text = page.all_text
    assert "Branch point: Which way should Wren and Clank search for the littlest lost gust?" in text
    assert "Choice: Follow the Cloud Shepherd's lantern" in text
    assert "Choice: Ride a cloud-sheep down into Thunderpot Gorge" in text
    assert "#scenelet-3" in page.links and "#scenelet-5" in page.links
    html = (root / PAGE_REL).read_text()
    # pre-order with the labels derive_tree gives them; the choice sits on the first scenelet of its branch
    positions = [html.index(f'<section class="scenelet" id="scenelet-{n}"') for n in range(1, 6)]
    assert positions == sorted(positions)
    assert positions[2] < html.index("Choice: Follow the Cloud Shepherd&#39;s lantern") < positions[3]
    assert positions[4] < html.index("Choice: Ride a cloud-sheep down into Thunderpot Gorge")


def test_index_lists_the_story(built):
    root, _ = built
    index = parse_page(root / "apps/story-tree-ui/public/index.html")
    assert f"stories/{SAMPLE_ID}/index.html" in index.links
    assert "Wren and the Runaway Weathervane" in index.all_text
    assert index.imgs and all((root / "apps/story-tree-ui/public" / unquote(i["src"].split("?")[0])).is_file()
                              for i in index.imgs)


# --- missing, stale, failed, other provider -----------------------------------------------------------


def test_missing_asset_gets_a_placeholder_not_a_broken_image(proj):
    kf = "shots/scenelet-1/shot-1_key_frame.png"
    (proj / f"apps/story-tree-ui/public/generated/{SAMPLE_ID}/{kf}").unlink()
    (proj / f"apps/story-tree-ui/public/generated/{SAMPLE_ID}/shots/scenelet-2/shot-3.mp4").unlink()
    gallery.build_gallery(context(proj).gallery())
    page = page_of(proj)
    assert not [a for a in page.anchors if kf in (a.get("href") or "")]
    assert len(page.imgs) == 36 - 2 - 1  # no picture for the missing frame, its missing video, nor its video's poster
    assert all(local_file(proj, i["src"]).is_file() for i in page.imgs)
    assert {p["data-task"] for p in page.placeholders} == {"image:scenelet-1_1", "video:scenelet-2_3"}
    assert page.targets["image:scenelet-1_1"] == "missing"
    assert page.targets["video:scenelet-2_3"] == "missing"
    # its reference (the key frame) is gone, but a copy is kept: the build restores it first, so the video stays
    assert page.targets["video:scenelet-1_1"] == "current"
    assert "file missing: will be restored from the local objects (no cost)" in page.all_text
    assert '<span class="thumb">missing</span>' in (local_file(proj, gallery.details_href("video:scenelet-1_1"))
                                                     .read_text())


def test_thumbnails_are_made_once_kept_out_of_the_assets_and_remade_when_deleted(proj):
    thumbs = proj / PAGE_REL.replace("index.html", "thumbs")
    made = {p.name: p.stat().st_mtime_ns for p in thumbs.glob("*.webp")}
    assert len(made) == 24  # one per image target, named by its file's sha256
    ctx = context(proj)
    gallery.build_gallery(ctx.gallery())
    assert {p.name: p.stat().st_mtime_ns for p in thumbs.glob("*.webp")} == made  # not made again
    shutil.rmtree(thumbs)  # a cache: deleting it costs nothing
    assert not GalleryCheck(context(proj))()
    gallery.build_gallery(context(proj).gallery())
    assert {p.name for p in thumbs.glob("*.webp")} == set(made)


def test_an_image_pillow_cannot_read_is_shown_as_its_file_not_a_broken_thumbnail(proj):
    plate = f"{SAMPLE_ID}/visuals/characters/captain-clank/character-model-sheet-1.png"
    (proj / ASSETS_REL / plate).write_bytes(b"not a png at all")
    gallery.build_gallery(context(proj).gallery())
    page = page_of(proj)
    shown = [i for i in page.imgs if i["src"].startswith("../../generated/")]
    assert [local_file(proj, i["src"]) for i in shown] == [proj / ASSETS_REL / plate]
    assert shown[0]["loading"] == "lazy"


def test_changed_file_is_stale_and_failures_show_until_rebuilt(proj):
    plate = proj / f"apps/story-tree-ui/public/generated/{SAMPLE_ID}/visuals/characters/captain-clank/character-model-sheet-1.png"
    plate.write_bytes(plate.read_bytes() + b"edited")
    ctx = context(proj)
    ctx.summary.fail(Failure("video:scenelet-2_1", "video:scenelet-2_1: the provider filtered the video (SAFETY); "
                             "not charged.", "refused", False, 1))
    gallery.build_gallery(ctx.gallery())
    page = page_of(proj)
    assert page.targets["ref:character.captain-clank.character-model-sheet-1"] == "stale"
    assert "edited by hand since it was built: kept as a new version (no cost)" in page.all_text
    assert page.targets["video:scenelet-2_1"] == "failed"
    assert "the provider filtered the video (SAFETY)" in page.all_text

    # a later process (no failure in memory) still shows it: the sidecar remembers it until the target is rebuilt
    later = context(proj)
    assert freshness.is_current(later.gallery())
    gallery.build_gallery(later.gallery())
    assert page_of(proj).targets["video:scenelet-2_1"] == "failed"
    later.builder.build("video:scenelet-2_1", force=True)
    assert not freshness.is_current(later.gallery())
    gallery.build_gallery(later.gallery())
    assert page_of(proj).targets["video:scenelet-2_1"] == "current"
    later.close()


def test_uncertain_video_submit_is_failed_with_the_way_out(proj):
    records = RecordStore(settings_for(proj).db_path)
    records.operations(SAMPLE_ID).put(Operation(story_id=SAMPLE_ID, task="video:scenelet-3_1", signature="sig", provider="gemini", model="m", state="uncertain", operation=None, submitted_at=utc_now(),
                                    download_uri=None, error=None))
    ctx = context(proj)
    assert not freshness.is_current(ctx.gallery())
    gallery.build_gallery(ctx.gallery())
    page = page_of(proj)
    assert page.targets["video:scenelet-3_1"] == "failed"
    assert f"storytree resubmit {SAMPLE_ID} video:scenelet-3_1" in page.all_text


def test_stub_assets_are_stale_for_the_real_provider_and_still_labelled_stub(proj):
    ctx = context(proj, "gemini")
    assert not freshness.is_current(ctx.gallery())
    gallery.build_gallery(ctx.gallery())
    page = page_of(proj)
    assert set(page.targets.values()) == {"stale"}
    assert "provider changed (stub → gemini)" in page.all_text
    assert (proj / PAGE_REL).read_text().count('<span class="badge stub"') == 38


def test_page_text_is_escaped(tmp_path):
    export = json.loads(SAMPLE.read_text())
    export["scenelets"][0]["content"]["description"] = "<script>alert('x')</script> & friends"
    root = new_project(tmp_path / "project", export)
    gallery.build_gallery(context(root).gallery())
    html = (root / PAGE_REL).read_text()
    assert "<script>alert" not in html and html.count("<script>") == 1  # only the page's own review script
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; friends" in html


# --- the build target -----------------------------------------------------------------------------


def test_gallery_task_is_last_in_the_story_group_and_depends_on_nothing(proj):
    tasks = list(task_dicts(context(proj)))
    by_name = {f"{t['basename']}:{t['name']}": t for t in tasks}
    page_task = by_name[f"gallery:{SAMPLE_ID}"]
    assert not page_task.get("task_dep") and not page_task.get("file_dep")
    assert page_task["targets"] == [str(proj / PAGE_REL)]
    story = by_name[f"story:{SAMPLE_ID}"]
    assert story["task_dep"][-1] == f"gallery:{SAMPLE_ID}"
    assert len(story["task_dep"]) == 37


def test_gallery_alone_never_builds_or_pays(tmp_path):
    """`doit gallery:<id>` on a story with nothing built: no asset is generated, every target is missing."""
    root = new_project(tmp_path / "project")
    proc = run_doit(root, f"gallery:{SAMPLE_ID}", "provider=stub")
    assert "0 built" in proc.stdout
    generated = root / "apps/story-tree-ui/public/generated"
    assert not [p for p in generated.rglob("*") if p.is_file()]
    page = page_of(root)
    assert set(page.targets.values()) == {"missing"}
    assert page.imgs == [] and page.videos == [] and len(page.placeholders) == 36


def test_building_the_page_never_touches_the_provider(proj):
    class Boom:
        def __getattr__(self, name):
            raise AssertionError(f"the gallery used the provider ({name})")

    (proj / PAGE_REL).unlink()
    ctx = context(proj, "stub", images=Boom(), videos=Boom())
    gallery.build_gallery(ctx.gallery())
    assert (proj / PAGE_REL).is_file() and freshness.is_current(ctx.gallery())


def test_noop_check_reuses_cached_records_and_never_loads_the_story(proj, monkeypatch):
    calls = []
    original = SqliteRecords.all

    def counting(self):
        calls.append(self.story_id)
        return original(self)

    def no_load(self, story_id):
        raise AssertionError("a no-op build parsed the whole story")

    monkeypatch.setattr(SqliteRecords, "all", counting)
    monkeypatch.setattr(SqliteStoryStore, "load_story", no_load)
    ctx = context(proj)
    for target in ctx.manifest.targets:  # what the assets' RecordChecks do first in a no-op build
        assert ctx.facts.status(target.task).current
    assert GalleryCheck(ctx)() is True  # the page shows story text: it reads the story's fingerprint, not the story
    assert calls == [SAMPLE_ID]
    assert not (ctx.view.made or ctx.images.made or ctx.videos.made)


def test_check_sees_every_kind_of_input_change(proj):
    settings = settings_for(proj)
    page = proj / PAGE_REL
    assert freshness.is_current(context(proj).gallery())

    def changed(step) -> None:
        step()
        assert not freshness.is_current(context(proj).gallery())
        gallery.build_gallery(context(proj).gallery())
        assert freshness.is_current(context(proj).gallery())

    template = proj / "templates/gallery/story.html.j2"
    changed(lambda: template.write_text(template.read_text() + "\n{# edited #}\n"))
    manifest = proj / f"manifests/{SAMPLE_ID}.yaml"
    changed(lambda: manifest.write_text(manifest.read_text() + "# touched\n"))
    asset = proj / f"apps/story-tree-ui/public/generated/{SAMPLE_ID}/shots/scenelet-4/shot-2.mp4"
    changed(asset.unlink)
    records = RecordStore(settings.db_path)
    rec = records.records(SAMPLE_ID).get("image:scenelet-4_1")
    changed(lambda: records.records(SAMPLE_ID).put(dataclasses.replace(rec, built_at="2030-01-01T00:00:00+00:00")))
    store = SqliteStoryStore(settings.db_path)  # story text only (no prompt shows it): the page shows it
    changed(lambda: store.import_rows({"stories": [], "scenelets": [
        {**store.load_story(SAMPLE_ID).scenelets[0], "choice_prompt": "A new question for the reader?"}],
        "shots": []}))
    reviews = RecordStore(settings.db_path).reviews(SAMPLE_ID)
    changed(lambda: reviews.put(Review(SAMPLE_ID, "image:scenelet-4_1", rec.output_sha256, "approved", "",
                                              "someone@here", "2030-01-01T00:00:00+00:00")))
    changed(lambda: page.write_text(page.read_text().replace("Scenelet tree", "Edited by hand")))
    changed(page.unlink)
    changed((proj / "apps/story-tree-ui/public/index.html").unlink)


def test_doit_noop_leaves_the_page_alone_and_rebuilds_it_when_an_input_changes(proj):
    page = proj / PAGE_REL
    before = page.stat().st_mtime_ns
    proc = build_sample(proj)
    assert "storytree: 0 built, 36 up to date, 0 failed" in proc.stdout
    assert "review page" not in proc.stderr
    assert page.stat().st_mtime_ns == before

    (proj / f"apps/story-tree-ui/public/generated/{SAMPLE_ID}/shots/scenelet-1/shot-1.mp4").unlink()
    proc = run_doit(proj, f"gallery:{SAMPLE_ID}", "provider=stub")
    assert "review page" in proc.stderr
    assert page_of(proj).targets["video:scenelet-1_1"] == "missing"
    after = page.stat().st_mtime_ns
    proc = run_doit(proj, f"gallery:{SAMPLE_ID}", "provider=stub")
    assert "review page" not in proc.stderr and page.stat().st_mtime_ns == after


def test_unrendered_stories_are_listed_on_the_index(proj):
    settings = settings_for(proj)
    (settings.manifests_dir / "another-story.yaml").write_text(
        (settings.manifests_dir / f"{SAMPLE_ID}.yaml").read_text())
    gallery.write_index(settings)
    index = parse_page(proj / "apps/story-tree-ui/public/index.html")
    assert "doit gallery:another-story" in index.all_text
    assert f"stories/{SAMPLE_ID}/index.html" in index.links
    assert os.path.exists(settings.public_root / "stories" / SAMPLE_ID / freshness.SIDECAR_NAME)


def test_parallel_build_ends_with_a_current_page(tmp_path):
    """With `-n 2 -P thread` the page may render while assets are still being built; its teardown renders it again
    once every task has finished."""
    root = new_project(tmp_path / "project")
    proc = run_doit(root, "-j", "2", f"story:{SAMPLE_ID}", "provider=stub")
    assert "storytree: 36 built" in proc.stdout
    assert freshness.is_current(context(root).gallery())
    assert set(page_of(root).targets.values()) == {"current"}


def test_missing_gallery_templates_are_a_clear_error(proj):
    from storytree_build.core.errors import InputError

    shutil.rmtree(proj / "templates/gallery")
    with pytest.raises(InputError, match="story.html.j2 or index.html.j2"):
        gallery.build_gallery(context(proj).gallery())
