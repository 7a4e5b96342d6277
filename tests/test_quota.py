"""A 429 that names a per-minute quota is waited out; one that names a per-day quota stops new submissions to
that model, lets the rest of the build go on, and ends the build with exit code 75 and a reset hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.project import SAMPLE_ID, doit, project_env
from support.fakes.gemini_server import FakeGemini
from storytree_build.providers.google_http import daily_reset_hint, quota_window
from test_gemini_images import KEY, gemini_project, imported_template, record  # noqa: F401 - fixtures
from test_gemini_videos import POLL_ENV, VIDEO, built_template, vproject  # noqa: F401 - fixtures


@pytest.fixture
def fake() -> FakeGemini:
    with FakeGemini(slow_seconds=1.5) as server:
        yield server


def env_for(project: Path, fake: FakeGemini) -> dict[str, str]:
    return project_env(project, GEMINI_API_KEY=KEY, GOOGLE_GEMINI_BASE_URL=fake.url, **POLL_ENV)


def test_quota_window_reads_the_quota_failure_details() -> None:
    day = {"error": {"details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                  "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel"}]}]}}
    minute = {"error": {"details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                     "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]}]}}
    assert quota_window(day) == "day" and quota_window(minute) == "minute"
    assert quota_window({"error": {"details": []}}) is None and quota_window(None) is None
    assert "midnight Pacific" in daily_reset_hint()


def test_a_daily_image_quota_stops_that_model_and_exits_75(gemini_project: Path, fake: FakeGemini) -> None:  # noqa: F811
    fake.default_step = "quota_per_day"
    result = doit(gemini_project, "--continue", "ref", env=env_for(gemini_project, fake))
    assert result.returncode == 75, result.stdout + result.stderr
    assert len(fake.image_calls()) == 1  # one refusal; the other eleven references were never sent
    assert "daily quota" in result.stdout and "midnight Pacific" in result.stdout
    assert KEY not in result.stdout + result.stderr
    assert record(gemini_project, "ref:character.wren-quillfeather.character-model-sheet-1") is None
    # The quota came back: the same command builds everything, nothing was lost or half-written.
    fake.default_step = "ok_png"
    again = doit(gemini_project, "ref", env=env_for(gemini_project, fake))
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(fake.image_calls()) == 1 + 12


def test_a_per_minute_limit_is_waited_out(gemini_project: Path, fake: FakeGemini) -> None:  # noqa: F811
    fake.play("rate_limited", "rate_limited", then="ok_png")
    result = doit(gemini_project, "ref:environment.thunderpot-gorge.keyframe_1", env=env_for(gemini_project, fake))
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(fake.image_calls()) == 3


def test_a_daily_video_quota_submits_nothing_more_and_exits_75(vproject: Path, fake: FakeGemini) -> None:  # noqa: F811
    fake.video.play_submit("quota_per_day")
    result = doit(vproject, "--continue", "video:scenelet-1_1", "video:scenelet-1_2", env=env_for(vproject, fake))
    assert result.returncode == 75, result.stdout + result.stderr
    assert len(fake.video.submit_calls) == 1 and fake.video.operations == {}
    assert "not submitted: the daily quota" in result.stdout
    assert not (vproject / "apps/story-tree-ui/public/generated" / SAMPLE_ID / "shots/scenelet-1/shot-1.mp4").exists()
