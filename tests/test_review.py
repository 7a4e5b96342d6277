"""Review before the expensive step: key frames are approved or rejected (with a note) before their videos are paid
for; a note becomes the director's note of the shot's next key frame. Real doit subprocesses, the stub provider, the
SQLite store; the served page's API without a browser (the browser test is in test_gallery_browser.py)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from storytree_build.core.manifest.file import load_manifest_file
from support.gallery import SAMPLE_ID, new_project, parse_page, settings_for
from support.project import ASSETS, doit, manifest_of, project_env, records_of, storytree

REVIEW_ON = '[review]\nkey_frames = "required"\n'
PAGE = f"apps/story-tree-ui/public/stories/{SAMPLE_ID}/index.html"


def env(root: Path, calls: Path | None = None) -> dict[str, str]:
    return project_env(root, **({"STORYTREE_STUB_CALL_LOG": str(calls)} if calls else {}))


def build(root: Path, *targets: str, calls: Path | None = None, keep_going: bool = True):  # noqa: ANN201
    args = (["--continue"] if keep_going else []) + list(targets or [f"story:{SAMPLE_ID}"]) + ["provider=stub"]
    return doit(root, *args, env=env(root, calls), timeout=300)


def dryrun(root: Path, *targets: str) -> dict[str, dict]:
    run = doit(root, "dryrun", "--json", *(targets or [f"story:{SAMPLE_ID}"]), "provider=stub", env=env(root))
    assert run.returncode == 0, run.stdout + run.stderr
    return {item["task"]: item for item in json.loads(run.stdout)["targets"]}


def paid(calls: Path) -> list[str]:
    return calls.read_text().split() if calls.exists() else []


def review_rows(root: Path) -> list[tuple]:
    with sqlite3.connect(settings_for(root).db_path) as conn:
        return conn.execute("select task, verdict, note from storytree_reviews order by task").fetchall()


@pytest.fixture(scope="module")
def built_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = new_project(tmp_path_factory.mktemp("review") / "project")
    run = build(root, keep_going=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return root


@pytest.fixture
def built(built_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    shutil.copytree(built_template, root)
    monkeypatch.chdir(root)
    return root


def video_using_its_key_frame(root: Path) -> str:
    """A shot whose video is sent its own key frame as a reference (fewer than three designs in the shot)."""
    return next(t.task for t in manifest_of(root).targets
                if t.kind == "video" and any(r.kind == "KEY_FRAME" for r in t.references))


def frame(video: str) -> str:
    return video.replace("video:", "image:", 1)


# -- the gate ------------------------------------------------------------------------------------------
def test_with_required_review_no_video_is_paid_for_until_its_frame_is_approved(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch):
    root = new_project(tmp_path / "project")
    (root / "storytree.toml").write_text(REVIEW_ON)
    calls = tmp_path / "calls.log"
    plan = dryrun(root)
    videos = [t for t, item in plan.items() if item["kind"] == "video"]
    assert len(videos) == 12 and {plan[v]["action"] for v in videos} == {"wait"}
    assert all(f"waiting for review of {frame(v)}" in plan[v]["reason"] for v in videos)

    run = build(root, calls=calls)
    assert run.returncode == 4, run.stdout + run.stderr  # everything else built; videos wait for a person
    assert not any(c.startswith("video:") for c in paid(calls)) and len(paid(calls)) == 24
    assert "12 videos wait for review of their key frames" in run.stdout and "12 waiting for review" in run.stdout
    assert "0 failed" in run.stdout

    first = videos[0]
    monkeypatch.chdir(root)
    assert storytree(root, "review", "approve", SAMPLE_ID, frame(first), monkeypatch=monkeypatch) == 0
    plan = dryrun(root)
    assert plan[first]["action"] == "run" and plan[videos[1]]["action"] == "wait"
    again = build(root, calls=calls)
    assert again.returncode == 4
    assert [c for c in paid(calls) if c.startswith("video:")] == [first]  # exactly the approved shot's video


def test_waiting_videos_read_as_review_and_approve_all_pays_for_exactly_their_videos(tmp_path: Path,
                                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                                     capsys: pytest.CaptureFixture):
    root = new_project(tmp_path / "project")
    (root / "storytree.toml").write_text(REVIEW_ON)
    calls = tmp_path / "calls.log"
    run = build(root, calls=calls, keep_going=False)  # without --continue: a waiting video must not stop the build
    said = run.stdout + run.stderr
    assert run.returncode == 4, said  # WAITING_FOR_REVIEW, as documented
    for word in ("TaskFailed", "UnmetDependency", "FAILED", "Traceback"):
        assert word not in said, said
    waiting_lines = [line for line in said.splitlines() if "videos wait for review" in line]  # (the opening line counts them too)
    assert waiting_lines == ["storytree: 12 videos wait for review of their key frames: 0.00 USD held back; "
                             f"`storytree serve` (or `storytree review list {SAMPLE_ID}`)"], said
    assert len(paid(calls)) == 24 and not any(c.startswith("video:") for c in paid(calls))
    page = parse_page(root / PAGE)
    assert {state for task, state in page.targets.items() if task.startswith("video:")} == {"waiting"}
    assert 'class="badge state failed' not in (root / PAGE).read_text() and "Generation failed" not in page.all_text
    assert "12 to review" in page.all_text and "12 waiting for review" in page.all_text

    monkeypatch.chdir(root)
    assert storytree(root, "review", "approve", SAMPLE_ID, "--all", monkeypatch=monkeypatch) == 0
    assert "12 targets approved" in capsys.readouterr().err
    assert {verdict for _, verdict, _ in review_rows(root)} == {"approved"} and len(review_rows(root)) == 12
    again = build(root, calls=calls, keep_going=False)
    assert again.returncode == 0, again.stdout + again.stderr
    videos = sorted(c for c in paid(calls) if c.startswith("video:"))
    assert videos == sorted(t.task for t in manifest_of(root).targets if t.kind == "video")
    assert "0 to review" in parse_page(root / PAGE).all_text


def test_review_takes_doit_style_wildcards(built: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    scenelet_2 = sorted(t.task for t in manifest_of(built).targets if t.task.startswith("image:scenelet-2_"))
    assert len(scenelet_2) == 3
    capsys.readouterr()
    assert storytree(built, "review", "approve", SAMPLE_ID, "image:scenelet-2_*", monkeypatch=monkeypatch) == 0
    err = capsys.readouterr().err
    assert all(f"approved {task} " in err for task in scenelet_2), err
    assert review_rows(built) == [(task, "approved", "") for task in scenelet_2]
    assert storytree(built, "review", "reject", SAMPLE_ID, "image:scenelet-1_[12]", "--note", "too dark",
                     monkeypatch=monkeypatch) == 0
    assert [row for row in review_rows(built) if row[1] == "rejected"] == [
        ("image:scenelet-1_1", "rejected", "too dark"), ("image:scenelet-1_2", "rejected", "too dark")]
    # --all takes only frames nobody has reviewed: the rejected ones stay rejected
    assert storytree(built, "review", "approve", SAMPLE_ID, "--all", monkeypatch=monkeypatch) == 0
    assert sum(1 for row in review_rows(built) if row[1] == "approved") == 10
    assert [row[0] for row in review_rows(built) if row[1] == "rejected"] == ["image:scenelet-1_1", "image:scenelet-1_2"]


def test_a_regenerated_key_frame_needs_a_new_review(built: Path, monkeypatch: pytest.MonkeyPatch):
    (built / "storytree.toml").write_text(REVIEW_ON)
    video = video_using_its_key_frame(built)
    assert storytree(built, "review", "approve", SAMPLE_ID, frame(video), monkeypatch=monkeypatch) == 0
    approved = records_of(built)[frame(video)].output_sha256
    run = build(built, "-a", frame(video))  # forced: a new file for the same key frame
    assert run.returncode == 0, run.stdout + run.stderr
    assert records_of(built)[frame(video)].output_sha256 != approved  # a new file, even within the same second
    listed = review_states(built)
    assert listed[frame(video)]["state"] == "unreviewed"


def test_two_writes_of_one_target_are_never_the_same_file(built: Path) -> None:
    """The stub draws the same pixels for the same request; the file's provenance says when it was written, to the
    microsecond, so a rebuild within one second is still another file (a review is about one exact file)."""
    from support.project import session_for

    session = session_for(built)
    try:
        target = session.target(frame(video_using_its_key_frame(built)))
        data = session.images().generate(session.requests.image(target)).data
        written = set()
        for _ in range(5):  # well within one second
            session.outputs.write_image(target, data, "signature")
            written.add((built / ASSETS / target.output).read_bytes())
        assert len(written) == 5
    finally:
        session.close()


def review_states(root: Path) -> dict[str, dict]:
    from storytree_build.bootstrap import Workspace

    workspace = Workspace(settings_for(root))
    try:
        return {row.task: row.__dict__ for row in workspace.review_desk(SAMPLE_ID).list()}
    finally:
        workspace.close()


# -- notes -----------------------------------------------------------------------------------------
def test_a_rejection_note_changes_only_that_shots_key_frame_and_video(built: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path):
    video = video_using_its_key_frame(built)
    before = {t.task: t.prompt_sha256 for t in manifest_of(built).targets}
    note = "Wren's scarf must be red, as on the model sheet."
    assert storytree(built, "review", "reject", SAMPLE_ID, frame(video), "--note", note, monkeypatch=monkeypatch) == 0
    after = {t.task: t.prompt_sha256 for t in manifest_of(built).targets}
    assert [t for t in after if after[t] != before[t]] == [frame(video)]  # the manifest was rewritten at once
    plan = dryrun(built)
    assert {t for t, item in plan.items() if item["action"] != "skip"} == {frame(video), video}
    assert plan[frame(video)]["reason"] == "prompt changed"

    prompt = doit(built, "dryrun", "--requests", frame(video), "provider=stub", env=env(built)).stdout
    assert f"Director's note on the previous version of this frame, from its review (follow it): {note}" in prompt

    calls = tmp_path / "calls.log"
    run = build(built, calls=calls)
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(paid(calls)) == sorted([frame(video), video])
    # The new frame was made with the note: approving it keeps the note, and the manifest does not change.
    manifest_text = (built / "manifests" / f"{SAMPLE_ID}.yaml").read_text()
    assert storytree(built, "review", "approve", SAMPLE_ID, frame(video), monkeypatch=monkeypatch) == 0
    assert (built / "manifests" / f"{SAMPLE_ID}.yaml").read_text() == manifest_text
    assert review_rows(built) == [(frame(video), "approved", note)]
    assert {item["action"] for item in dryrun(built).values()} == {"skip"}


def test_approving_the_rejected_frame_after_all_clears_the_note(built: Path, monkeypatch: pytest.MonkeyPatch):
    video = video_using_its_key_frame(built)
    original = (built / "manifests" / f"{SAMPLE_ID}.yaml").read_text()
    assert storytree(built, "review", "reject", SAMPLE_ID, frame(video), "--note", "darker", monkeypatch=monkeypatch) == 0
    assert (built / "manifests" / f"{SAMPLE_ID}.yaml").read_text() != original
    assert storytree(built, "review", "approve", SAMPLE_ID, frame(video), monkeypatch=monkeypatch) == 0
    assert (built / "manifests" / f"{SAMPLE_ID}.yaml").read_text() == original  # a change of mind costs nothing
    assert review_rows(built) == [(frame(video), "approved", "")]
    assert {item["action"] for item in dryrun(built).values()} == {"skip"}


def test_a_frame_rejected_without_a_note_is_out_of_date(built: Path, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path):
    video = video_using_its_key_frame(built)
    assert storytree(built, "review", "reject", SAMPLE_ID, frame(video), monkeypatch=monkeypatch) == 0
    plan = dryrun(built)
    assert plan[frame(video)]["action"] == "run" and plan[frame(video)]["reason"] == "rejected in review"
    calls = tmp_path / "calls.log"
    assert build(built, calls=calls).returncode == 0
    assert sorted(paid(calls)) == sorted([frame(video), video])
    assert review_states(built)[frame(video)]["state"] == "unreviewed"


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["approve", "no-such-story", "image:scenelet-1_1"], "story no-such-story has no manifest"),
    (["approve", SAMPLE_ID, "image:scenelet-9_9"], "image:scenelet-9_9 is not a target of story"),
    (["reject", SAMPLE_ID, "image:scenelet-1_1", "--note", "x" * 2001], "notes are at most 2000"),
    (["reject", SAMPLE_ID, "image:scenelet-1_1", "--note", "red\x1b[31m scarf"], "control characters (U+001B)"),
    (["approve", SAMPLE_ID], "needs the targets"),
    (["approve", SAMPLE_ID, "image:scenelet-1_1", "image:scenelet-9_*"], "'image:scenelet-9_*' matches no built key frame"),
    (["approve", SAMPLE_ID, "image:nope"], "image:nope is not a target"),
    (["approve", SAMPLE_ID, "image:scenelet-1_1", "--note", "why"], "--note goes with"),
    (["approve", SAMPLE_ID, "video:scenelet-1_1"], "video:scenelet-1_1 of story " + SAMPLE_ID + " is a video: only key "
                                                   "frames (image:<scenelet>_<n>) are reviewed"),
    (["reject", SAMPLE_ID, "video:scenelet-1_1", "--note", "no"], "is a video: only key frames"),
])
def test_bad_review_input_is_refused_and_nothing_is_written(built: Path, monkeypatch: pytest.MonkeyPatch, capsys,
                                                           args: list[str], message: str):
    manifest = (built / "manifests" / f"{SAMPLE_ID}.yaml").read_text()
    capsys.readouterr()
    assert storytree(built, "review", *args, monkeypatch=monkeypatch) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert review_rows(built) == []
    assert (built / "manifests" / f"{SAMPLE_ID}.yaml").read_text() == manifest


def test_reviewing_a_target_that_is_not_built_is_refused(built: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    video = video_using_its_key_frame(built)
    output = built / "apps/story-tree-ui/public/generated" / manifest_of(built).by_task()[frame(video)].output
    output.unlink()
    capsys.readouterr()
    assert storytree(built, "review", "approve", SAMPLE_ID, frame(video), monkeypatch=monkeypatch) == 1
    assert "is not built yet" in capsys.readouterr().err
    assert review_rows(built) == []


# -- moving and listing ----------------------------------------------------------------------------
def test_reviews_travel_with_export_and_import(built: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    video = video_using_its_key_frame(built)
    assert storytree(built, "review", "reject", SAMPLE_ID, frame(video), "--note", "closer", monkeypatch=monkeypatch) == 0
    exported = tmp_path / "export.json"
    assert storytree(built, "export", SAMPLE_ID, "-o", str(exported), monkeypatch=monkeypatch) == 0
    assert json.loads(exported.read_text())["storytree_reviews"][0]["note"] == "closer"
    other = tmp_path / "other.sqlite"
    monkeypatch.setenv("STORYTREE_DB", str(other))
    assert storytree(built, "import", str(exported), monkeypatch=monkeypatch) == 0
    with sqlite3.connect(other) as conn:
        assert conn.execute("select task, verdict, note from storytree_reviews").fetchall() == [
            (frame(video), "rejected", "closer")]


def test_review_list_shows_states_and_notes(built: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    video = video_using_its_key_frame(built)
    assert storytree(built, "review", "reject", SAMPLE_ID, frame(video), "--note", "closer", monkeypatch=monkeypatch) == 0
    capsys.readouterr()
    assert storytree(built, "review", "list", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("rejected") and frame(video) in line and "note: closer" in line for line in lines)
    assert sum(1 for line in lines if line.startswith("unreviewed") and "image:" in line) == 11
    assert len(lines) == len(load_manifest_file(built / "manifests" / f"{SAMPLE_ID}.yaml").targets)


def test_approving_every_key_frame_indexes_the_manifest_once(built: Path, monkeypatch: pytest.MonkeyPatch):
    """`storytree review approve --all` names thousands of key frames in a long story: one index, not one per frame."""
    from storytree_build.bootstrap import Workspace
    from storytree_build.core.manifest import model

    workspace = Workspace(settings_for(built))
    try:
        desk = workspace.review_desk(SAMPLE_ID)
        calls: list[int] = []
        real = model.index_by_task
        monkeypatch.setattr(model, "index_by_task", lambda targets: calls.append(1) or real(targets))
        tasks = desk.select([], every=True)
        assert len(tasks) == 12
        for task in tasks:
            assert desk.approve(task).review.verdict == "approved"
        assert len(calls) <= 1
    finally:
        workspace.close()
