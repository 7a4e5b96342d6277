"""Shot videos with the real Gemini provider, through the real SDK and the real doit build, against the fake server.

The key frames and references every video needs are built once per module with the same fake (the provider is
part of every signature, so they must be `gemini` assets too); each test copies that project. The full sample
build and the kill-while-polling test run doit in a subprocess (the real process boundary); the scenarios run it
in-process. Poll interval and backoff are tiny via STORYTREE_VIDEO_POLL_INTERVAL and the `[gemini]` block.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest

from storytree_build.store.sqlite_records import SqliteBuildState as RecordStore
from storytree_build.providers.gemini_video import GeminiVideos
from storytree_build.providers.google_http import origin
from storytree_build.settings import GeminiSettings
from support.fakes.gemini_server import FakeGemini
from support.project import (CONSENT_VAR, story_db, ASSETS, SAMPLE_ID, SECRET_ENV, doit, import_story, new_project, project_env, run_doit,
                             session_for, storytree)
from test_gemini_images import KEY, assert_clean_failure, db_values, manifest, price_of, record, write_config

VIDEO = "video:scenelet-1_1"
OMNI = "gemini-omni-1.1-flash"
VEO = "veo-3.1-generate-preview"
POLL_ENV = {"STORYTREE_VIDEO_POLL_INTERVAL": "0.01"}


# -- fixtures and helpers -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample story imported, its manifest written and every reference and key frame built with the gemini
    provider against a fake server, once per module (tests copy it)."""
    root = new_project(tmp_path_factory.mktemp("videos") / "project")
    write_config(root)
    import_story(root)
    with pytest.MonkeyPatch.context() as mp, FakeGemini() as fake:
        for name in [*SECRET_ENV, "CI", *(n for n in os.environ if n.startswith("STORYTREE_"))]:
            mp.delenv(name, raising=False)
        mp.setenv("GEMINI_API_KEY", KEY)
        mp.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
        mp.setenv(*CONSENT_VAR)
        mp.setenv("STORYTREE_ROOT", str(root))
        mp.setenv("STORYTREE_STATE_DIR", str(root / ".storytree"))
        mp.chdir(root)
        run = run_doit(root, "ref", "image")
        assert run.code == 0, run.output
        assert fake.video.submit_calls == []
    return root


@pytest.fixture
def fake() -> FakeGemini:
    with FakeGemini(slow_seconds=1.5) as server:
        yield server


@pytest.fixture
def vproject(project: Path, built_template: Path, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the built sample project; the real provider points at this test's fake."""
    shutil.rmtree(project)
    shutil.copytree(built_template, project)
    monkeypatch.setenv("STORYTREE_ROOT", str(project))
    monkeypatch.setenv("STORYTREE_STATE_DIR", str(project / ".storytree"))
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
    monkeypatch.setenv(*CONSENT_VAR)
    for name, value in POLL_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.chdir(project)
    return project


def use_api(project: Path, api: str, monkeypatch: pytest.MonkeyPatch, **gemini: object) -> str:
    """Configure the video API (and its model) and rewrite the manifest; returns the model id."""
    model = OMNI if api == "interactions" else VEO
    write_config(project, generation={"video": {"api": api, "model": model}}, **gemini)
    assert storytree(project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    return model


def operations(project: Path) -> RecordStore:
    return RecordStore(story_db(project))


def output_of(project: Path, task: str = VIDEO) -> Path:
    return project / ASSETS / manifest(project).by_task()[task].output


def assert_video_built(project: Path, fake: FakeGemini, task: str = VIDEO) -> bytes:
    target = manifest(project).by_task()[task]
    data = output_of(project, task).read_bytes()
    assert data[4:8] == b"ftyp" and data in fake.video.files.values()
    rec = record(project, task)
    assert rec is not None and rec.provider == "gemini" and rec.model == target.model and rec.published
    assert db_values(project, target) == [target.output]
    assert operations(project).operations(SAMPLE_ID).get(task) is None
    assert not list((project / ASSETS).rglob("*.part"))
    return data


def submitted_images(call) -> list[tuple[str, bytes]]:  # noqa: ANN001
    """(mime type, bytes) of the reference images of one submit, for either wire format."""
    if call.path.endswith("/interactions"):
        content = call.body["input"][0]["content"]
        return [(c["mime_type"], base64.b64decode(c["data"])) for c in content if c["type"] == "image"]
    refs = call.body["instances"][0].get("referenceImages", [])
    return [(r["image"]["mimeType"], base64.b64decode(r["image"]["bytesBase64Encoded"])) for r in refs]


def submitted_prompt(call) -> str:  # noqa: ANN001
    if call.path.endswith("/interactions"):
        return next(c["text"] for c in call.body["input"][0]["content"] if c["type"] == "text")
    return call.body["instances"][0]["prompt"]


def rendered_prompts(project: Path, tasks: list[str]) -> dict[str, str]:
    session = session_for(project, "gemini")
    try:
        return {task: session.requests.render(session.target(task))[0] for task in tasks}
    finally:
        session.close()


def foreign_host() -> str:
    """Another loopback address where the OS has one (Linux), else the same address (a different port is a
    different origin too)."""
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
        return "127.0.0.2"
    except OSError:
        return "127.0.0.1"


def assert_no_key_in_urls(fake: FakeGemini) -> None:
    for call in fake.requests:
        assert KEY not in call.url and "key" not in call.query
        assert all(KEY not in v for k, v in call.headers.items() if k != "x-goog-api-key")


# -- the full build -----------------------------------------------------------------------------------
def test_sample_story_videos_build_against_the_fake_server(vproject: Path, fake: FakeGemini) -> None:
    project = vproject
    targets = [t for t in manifest(project).targets if t.kind == "video"]
    assert targets and all(t.model == OMNI and t.config["api"] == "interactions" for t in targets)
    env = project_env(project, GEMINI_API_KEY=KEY, GOOGLE_GEMINI_BASE_URL=fake.url, CI="1", **POLL_ENV)
    result = doit(project, "video", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"{len(targets)} built" in result.stdout

    assert len(fake.video.submit_calls) == len(targets)  # one paid submit per video, nothing else
    assert len(fake.video.poll_calls) == 2 * len(targets)  # the default script: one pending answer, then done
    assert len(fake.video.download_calls) == len(targets)
    videos = {t.task: assert_video_built(project, fake, t.task) for t in targets}
    assert len(set(videos.values())) == len(targets)  # each target got its own operation's video

    # The wire, per target: mapped by the exact prompt text.
    prompts = rendered_prompts(project, [t.task for t in targets])
    by_prompt = {submitted_prompt(c): c for c in fake.video.submit_calls}
    for target in targets:
        call = by_prompt[prompts[target.task]]
        assert call.method == "POST" and call.path == "/v1beta/interactions"
        body = call.body
        assert body["model"] == OMNI and body["background"] is True and body["response_modalities"] == ["video"]
        assert body["response_format"] == {"type": "video", "aspect_ratio": "16:9", "resolution": "1080p",
                                           "duration": "8s", "delivery": "uri"}
        content = body["input"][0]["content"]
        assert body["input"][0]["type"] == "user_input" and content[-1]["type"] == "text"
        expected = [(project / ASSETS / r.path).read_bytes() for r in target.references]
        assert 1 <= len(expected) <= 3
        assert submitted_images(call) == [("image/png", data) for data in expected]  # references before the text
        assert call.headers["x-goog-api-key"] == KEY
        assert call.headers["connection"] == "close"  # a fresh connection: no stale one can fake a lost answer
        assert f"{target.task}: download link {fake.url}/v1beta/files/" in output
    assert_no_key_in_urls(fake)
    assert "videos in flight: video:" in output
    assert KEY not in output
    for path in [story_db(project), story_db(project),
                 *(project / ASSETS).rglob("*.mp4")]:
        assert KEY.encode() not in path.read_bytes()

    again = doit(project, "video", env=env)
    assert again.returncode == 0 and "0 built" in again.stdout, again.stdout + again.stderr
    assert len(fake.video.submit_calls) == len(targets)  # a second build pays for nothing


def test_predict_long_running_wire_format(vproject: Path, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> None:
    use_api(vproject, "predict_long_running", monkeypatch)
    fake.video.next_outcome("done", pending=2)
    run = run_doit(vproject, VIDEO)
    assert run.code == 0, run.output
    assert_video_built(vproject, fake)
    target = manifest(vproject).by_task()[VIDEO]
    [call] = fake.video.submit_calls
    assert call.path == f"/v1beta/models/{VEO}:predictLongRunning"
    assert call.body["parameters"] == {"aspectRatio": "16:9", "resolution": "1080p", "durationSeconds": 8,
                                       "personGeneration": "allow_adult", "sampleCount": 1}
    assert submitted_prompt(call) == rendered_prompts(vproject, [VIDEO])[VIDEO]
    refs = call.body["instances"][0]["referenceImages"]
    assert [r["referenceType"] for r in refs] == ["ASSET"] * len(target.references)
    assert submitted_images(call) == [("image/png", (vproject / ASSETS / r.path).read_bytes())
                                      for r in target.references]
    polls = fake.video.poll_calls
    assert len(polls) == 3 and all(p.path.startswith(f"/v1beta/models/{VEO}/operations/") for p in polls)
    assert all(c.headers["x-goog-api-key"] == KEY for c in [call, *polls, *fake.video.download_calls])
    assert_no_key_in_urls(fake)


# -- operation outcomes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("api", ["interactions", "predict_long_running"])
def test_pending_for_n_polls_then_done(vproject: Path, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch,
                                       api: str) -> None:
    use_api(vproject, api, monkeypatch)
    fake.video.next_outcome("done", pending=4)
    run = run_doit(vproject, VIDEO)
    assert run.code == 0, run.output
    assert len(fake.video.submit_calls) == 1 and len(fake.video.poll_calls) == 5
    assert run.output.count(f"videos in flight: {VIDEO}") == 4  # which shot is pending, and for how long
    assert "1 built" in run.output
    assert_video_built(vproject, fake)


@pytest.mark.parametrize("api", ["interactions", "predict_long_running"])
def test_inline_video_data_is_saved(vproject: Path, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch,
                                    api: str) -> None:
    use_api(vproject, api, monkeypatch)
    fake.video.next_outcome("done_inline")
    run = run_doit(vproject, VIDEO)
    assert run.code == 0, run.output
    assert_video_built(vproject, fake)
    assert fake.video.download_calls == []


@pytest.mark.parametrize("api", ["interactions", "predict_long_running"])
@pytest.mark.parametrize(("outcome", "expected"), [
    ("error", ["failed", "internal error"]),
    ("rai", ["filtered", "not charged", "storyboard"]),
])
def test_operation_error_and_safety_filter_fail_the_target(vproject: Path, fake: FakeGemini,
                                                           monkeypatch: pytest.MonkeyPatch, api: str, outcome: str,
                                                           expected: list[str]) -> None:
    use_api(vproject, api, monkeypatch)
    fake.video.next_outcome(outcome, pending=1)
    run = run_doit(vproject, VIDEO)
    assert_clean_failure(vproject, VIDEO, run)
    for fragment in expected:
        assert fragment in run.output, run.output
    assert operations(vproject).operations(SAMPLE_ID).get(VIDEO) is None  # finished: nothing left to resume
    assert len(fake.video.submit_calls) == 1 and fake.video.download_calls == []


@pytest.mark.parametrize("api", ["interactions", "predict_long_running"])
def test_a_retired_model_names_the_setting(vproject: Path, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch,
                                           api: str) -> None:
    model = use_api(vproject, api, monkeypatch)
    fake.video.play_submit("retired")
    run = run_doit(vproject, VIDEO)
    assert_clean_failure(vproject, VIDEO, run)
    for fragment in (repr(model), "retired", "no longer available", "STORYTREE_VIDEO_MODEL",
                     "[generation.video] model", "storytree manifest", "Nothing was charged"):
        assert fragment in run.output, run.output
    assert len(fake.video.submit_calls) == 1
    assert operations(vproject).operations(SAMPLE_ID).get(VIDEO) is None  # refused: no job, nothing to resume

    # With --continue, later videos of that model fail without another request.
    fake.video.play_submit("retired")
    again = run_doit(vproject, "--continue", VIDEO, "video:scenelet-1_2")
    assert again.code != 0 and again.output.count("no longer available") >= 2, again.output
    assert len(fake.video.submit_calls) == 2


# -- submit: refused (no job) versus uncertain (maybe a job) --------------------------------------------------
def test_429_on_submit_is_retried_after_the_servers_delay(vproject: Path, fake: FakeGemini) -> None:
    fake.retry_delay = "0.07s"  # longer than any backoff the test settings allow, so it shows if honoured
    fake.video.play_submit("rate_limited")
    run = run_doit(vproject, VIDEO)
    assert run.code == 0, run.output
    assert "paused for 0.07s" in run.output and "nothing was started" in run.output
    assert len(fake.video.submit_calls) == 2 and len(fake.video.operations) == 1
    assert_video_built(vproject, fake)


def test_per_minute_429s_never_use_up_the_attempts(vproject: Path, fake: FakeGemini) -> None:
    fake.video.play_submit(*["rate_limited"] * 6)  # more than max_attempts: a per-minute limit is not a failure
    run = run_doit(vproject, VIDEO)
    assert run.code == 0, run.output
    assert len(fake.video.submit_calls) == 7 and len(fake.video.operations) == 1
    assert_video_built(vproject, fake)


def test_a_model_that_stays_rate_limited_ends_in_a_clean_retryable_error(vproject: Path, fake: FakeGemini) -> None:
    write_config(vproject, quota_wait_minutes=0.01)
    fake.video.play_submit(*["rate_limited"] * 10_000)
    run = run_doit(vproject, VIDEO)
    assert_clean_failure(vproject, VIDEO, run)
    assert "429" in run.output and "nothing was started" in run.output and "gave up waiting" in run.output
    assert len(fake.video.submit_calls) >= 1 and fake.video.operations == {}
    assert operations(vproject).operations(SAMPLE_ID).get(VIDEO) is None


@pytest.mark.parametrize(("step", "config"), [("internal", {}), ("slow", {"timeout_seconds": 0.5}), ("hang_up", {}),
                                               ("truncated", {})])
@pytest.mark.parametrize("api", ["interactions", "predict_long_running"])
def test_an_uncertain_submit_is_never_sent_twice(vproject: Path, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch,
                                                 step: str, config: dict, api: str) -> None:
    """A 5xx, a timeout or an answer lost after the request went out may mean a paid job: exactly one request, the
    target marked, and its price counted as spent."""
    use_api(vproject, api, monkeypatch, **config)
    fake.video.play_submit(step)
    run = run_doit(vproject, VIDEO)
    assert_clean_failure(vproject, VIDEO, run)
    assert "may exist" in run.output and f"storytree resubmit <story-id> {VIDEO}" in run.output
    assert len(fake.video.submit_calls) == 1  # the SDK's own retries are off
    pending = operations(vproject).operations(SAMPLE_ID).get(VIDEO)
    assert pending is not None and pending.state == "uncertain"
    price = price_of(vproject, VIDEO)
    assert f"estimated spend this run: {price:.2f} USD" in run.output
    assert f"paid, nothing received: 1 video(s), ~{price:.2f} USD (Gemini may have billed them)" in run.output

    blocked = run_doit(vproject, VIDEO)
    assert blocked.code != 0 and f"storytree resubmit {SAMPLE_ID} {VIDEO}" in blocked.output
    assert len(fake.video.submit_calls) == 1
    assert "estimated spend this run: 0.00" in blocked.output and "nothing received" not in blocked.output

    use_api(vproject, api, monkeypatch)  # the short timeout off again
    assert storytree(vproject, "resubmit", SAMPLE_ID, VIDEO, monkeypatch=monkeypatch) == 0
    again = run_doit(vproject, VIDEO)
    assert again.code == 0, again.output
    assert len(fake.video.submit_calls) == 2
    assert_video_built(vproject, fake)


# -- polling ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("api", ["interactions", "predict_long_running"])
def test_5xx_and_429_while_polling_are_retried(vproject: Path, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch,
                                               api: str) -> None:
    use_api(vproject, api, monkeypatch)
    fake.video.play_poll("unavailable", "rate_limited", "unavailable")
    run = run_doit(vproject, VIDEO)
    assert run.code == 0, run.output
    assert "503" in run.output and "retrying" in run.output
    assert len(fake.video.submit_calls) == 1
    assert_video_built(vproject, fake)


def test_an_operation_the_server_forgot_stays_recorded(vproject: Path, fake: FakeGemini) -> None:
    fake.video.play_poll("gone")
    run = run_doit(vproject, VIDEO)
    assert_clean_failure(vproject, VIDEO, run)
    assert "unknown to the provider" in run.output and "storytree resubmit" in run.output
    pending = operations(vproject).operations(SAMPLE_ID).get(VIDEO)
    assert pending is not None and pending.state == "submitted"  # never forgotten silently, never re-paid
    assert len(fake.video.submit_calls) == 1


def test_killed_while_polling_then_rerun_submits_exactly_once(vproject: Path, fake: FakeGemini) -> None:
    fake.video.next_outcome("pending")
    env = project_env(vproject, GEMINI_API_KEY=KEY, GOOGLE_GEMINI_BASE_URL=fake.url, **POLL_ENV)
    proc = doit(vproject, VIDEO, env=env, wait=False)
    try:
        end = time.monotonic() + 60
        while len(fake.video.poll_calls) < 3 and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()
        assert len(fake.video.poll_calls) >= 3
    finally:
        proc.send_signal(signal.SIGKILL)  # only the doit process this test started
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    [op] = fake.video.operations.values()
    pending = operations(vproject).operations(SAMPLE_ID).get(VIDEO)
    assert pending is not None and pending.state == "submitted" and pending.operation == f"interactions/{op.name}"
    assert not output_of(vproject).exists() and not list((vproject / ASSETS).rglob("*.part"))

    fake.video.release()
    run = run_doit(vproject, VIDEO)
    assert run.code == 0, run.output
    assert f"resuming operation interactions/{op.name}" in run.output and "1 resumed" in run.output
    assert len(fake.video.submit_calls) == 1  # across both runs
    assert_video_built(vproject, fake)


# -- downloading -----------------------------------------------------------------------------------------
def test_an_interrupted_download_is_retried_from_scratch(vproject: Path, fake: FakeGemini) -> None:
    fake.video.play_download("cut", "cut")
    run = run_doit(vproject, VIDEO)
    assert run.code == 0, run.output
    assert "interrupted" in run.output and len(fake.video.download_calls) == 3
    data = assert_video_built(vproject, fake)
    [op] = fake.video.operations.values()
    assert data == fake.video.files[op.file_id]  # complete, not a spliced partial


def test_a_download_that_keeps_failing_leaves_nothing_and_resumes_later(vproject: Path, fake: FakeGemini) -> None:
    fake.video.play_download("cut", "unavailable", "cut", "cut")
    run = run_doit(vproject, VIDEO)
    assert_clean_failure(vproject, VIDEO, run)
    assert "gave up after 4 attempt(s)" in run.output and "without paying" in run.output
    pending = operations(vproject).operations(SAMPLE_ID).get(VIDEO)
    assert pending is not None and pending.state == "submitted"

    again = run_doit(vproject, VIDEO)
    assert again.code == 0, again.output
    assert "1 resumed" in again.output and len(fake.video.submit_calls) == 1
    assert_video_built(vproject, fake)


def test_a_download_that_is_not_an_mp4_is_not_saved(vproject: Path, fake: FakeGemini) -> None:
    fake.video.play_download("not_mp4")
    run = run_doit(vproject, VIDEO)
    assert_clean_failure(vproject, VIDEO, run)
    assert "not an MP4" in run.output


def test_a_redirect_to_another_host_never_receives_the_key(vproject: Path, fake: FakeGemini) -> None:
    with FakeGemini(host=foreign_host()) as other:
        fake.video.redirect_to = other
        fake.video.play_download("redirect")
        run = run_doit(vproject, VIDEO)
        assert run.code == 0, run.output
        assert_video_built(vproject, fake)
        [first] = fake.video.download_calls
        assert first.headers["x-goog-api-key"] == KEY
        [redirected] = other.requests
        assert redirected.path == first.path
        assert "x-goog-api-key" not in redirected.headers
        assert all(KEY not in v for v in redirected.headers.values()) and KEY not in redirected.url
        assert "without the API key" in run.output


# -- download-only mode ------------------------------------------------------------------------------------
def test_download_link_fills_one_shot_and_refuses_the_rest(vproject: Path, fake: FakeGemini) -> None:
    link = fake.video.add_file()
    # doit reads NAME=VALUE arguments as variables, so a link with "?alt=media" must be attached to the option.
    hint = run_doit(vproject, VIDEO, "--download-link", link)
    assert hint.code == 3 and "--download-link=URL" in hint.output, hint.output
    run = run_doit(vproject, VIDEO, f"--download-link={link}")
    assert run.code == 0, run.output
    assert "1 downloaded" in run.output and f"download link {link}" in run.output
    assert fake.video.submit_calls == [] and fake.video.poll_calls == []
    [call] = fake.video.download_calls
    assert call.headers["x-goog-api-key"] == KEY
    assert output_of(vproject).read_bytes() == fake.video.files[link.split("/files/")[1].split(":")[0]]
    target = manifest(vproject).by_task()[VIDEO]
    assert record(vproject, VIDEO).published and db_values(vproject, target) == [target.output]

    for args in (["video:scenelet-1_1", "video:scenelet-1_2"], ["video:*"], ["shot:scenelet-1_2"]):
        refused = run_doit(vproject, *args, f"--download-link={link}")
        assert refused.code == 3 and "exactly one shot" in refused.output, refused.output
    assert len(fake.video.download_calls) == 1

    other = "video:scenelet-1_2"
    with FakeGemini() as elsewhere:
        for foreign in ("https://elsewhere.example/v.mp4", elsewhere.video.add_file(),
                        link.replace("http://", "https://")):
            refused = run_doit(vproject, other, f"--download-link={foreign}")
            assert_clean_failure(vproject, other, refused)
            assert "refused" in refused.output and "configured Gemini API host" in refused.output
        assert elsewhere.requests == []
    assert len(fake.video.download_calls) == 1 and fake.video.submit_calls == []


def test_a_download_link_needs_no_consent_it_pays_nothing(vproject: Path, fake: FakeGemini,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORYTREE_YES")  # no terminal and no consent: a download is no model call
    run = run_doit(vproject, VIDEO, f"--download-link={fake.video.add_file()}")
    assert run.code == 0, run.output
    assert "consent" not in run.output and "1 downloaded" in run.output
    assert fake.video.submit_calls == []


def test_credentials_in_a_download_link_or_the_base_url_never_show(vproject: Path, fake: FakeGemini,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url.replace("http://", "http://robot:base-pw-1@"))
    link = fake.video.add_file().replace("http://", "http://robot:link-pw-2@")
    run = run_doit(vproject, VIDEO, f"--download-link={link}")
    assert run.code == 0, run.output
    assert "download link http://***@127.0.0.1" in run.output
    foreign = run_doit(vproject, "video:scenelet-1_2", "--download-link=https://robot:link-pw-3@elsewhere.example/v")
    assert "refused to download 'https://***@elsewhere.example/v'" in foreign.output
    for output in (run.output, foreign.output):
        assert "-pw-" not in output and KEY not in output
    videos = GeminiVideos(KEY, GeminiSettings(), fake.url.replace("http://", "http://robot:base-pw-1@"))
    try:
        assert "-pw-" not in repr(videos) and "***@" in repr(videos)
    finally:
        videos.close()


# -- dry-run -----------------------------------------------------------------------------------------------
def test_dry_run_shows_each_video_request_and_calls_nothing(vproject: Path, fake: FakeGemini) -> None:
    run = run_doit(vproject, "dryrun", "--json", "video:*")
    assert run.code == 0, run.output
    plan = json.loads(run.out)
    videos = [t for t in manifest(vproject).targets if t.kind == "video"]
    assert plan["would_run"] == len(videos) and plan["provider"] == "gemini"
    prompts = rendered_prompts(vproject, [t.task for t in videos])
    items = {i["task"]: i for i in plan["targets"]}
    for target in videos:
        request = items[target.task]["request"]
        assert request["model"] == OMNI and request["prompt"] == prompts[target.task]
        assert request["config"] == {"api": "interactions", "aspect_ratio": "16:9", "resolution": "1080p",
                                     "duration_seconds": 8, "person_generation": "allow_adult"}
        assert [r["path"] for r in request["references"]] == [r.path for r in target.references]
    assert fake.requests == []


# -- units ---------------------------------------------------------------------------------------------------
def test_the_key_is_bound_to_the_api_origin() -> None:
    assert origin("https://generativelanguage.googleapis.com") == origin(
        "https://GenerativeLanguage.googleapis.com:443/v1beta/files/abc:download?alt=media")
    assert origin("http://127.0.0.1:8080/x") != origin("http://localhost:8080/x")
    assert origin("http://127.0.0.1:8080/x") != origin("http://127.0.0.1:8081/x")
    assert origin("https://generativelanguage.googleapis.com") != origin("http://generativelanguage.googleapis.com")
    video = GeminiVideos(KEY, GeminiSettings(), "https://generativelanguage.googleapis.com")
    try:
        video.check_link("https://generativelanguage.googleapis.com/v1beta/files/abc:download?alt=media")
        for foreign in ("https://generativelanguage.googleapis.com.evil.example/v.mp4",
                        "https://user@evil.example/generativelanguage.googleapis.com", "file:///etc/passwd"):
            with pytest.raises(Exception, match="refused"):
                video.check_link(foreign)
        assert KEY not in repr(video)
    finally:
        video.close()
