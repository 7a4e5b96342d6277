"""Quota-bound builds: the real gemini provider and doit with 8 workers against a fake Gemini that allows a few calls
per second per model (a token bucket) and answers the rest with a per-minute 429 (QuotaFailure + RetryInfo)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from support.fakes.gemini_server import FakeGemini
from support.project import SAMPLE_ID, doit, manifest_of, records_of, run_doit
from test_gemini_images import (MODEL, gemini_project, imported_template, write_config)  # noqa: F401 - fixtures
from test_gemini_videos import VIDEO, assert_video_built, built_template, vproject  # noqa: F401 - fixtures
from test_quota import env_for

IMAGES = 24  # the sample story: 12 references and 12 key frames, all with the same image model


@pytest.fixture
def fake() -> FakeGemini:
    with FakeGemini(latency=0.02) as server:
        yield server


def image_tasks(project: Path) -> list[str]:
    return [t.task for t in manifest_of(project).targets if t.kind != "video"]


def test_more_targets_than_the_quota_allows_all_build_each_paid_once(gemini_project: Path, fake: FakeGemini) -> None:
    bucket = fake.limit_rate(20, burst=1)
    write_config(gemini_project, initial_rate_per_minute=6000, max_concurrency=8)  # start far above the limit
    run = run_doit(gemini_project, "-j", "8", "ref", "image")
    assert run.code == 0, run.output
    assert "24 built" in run.output and "0 failed" in run.output
    assert bucket.refused.get(MODEL, 0) > 0  # the limit was hit and learnt ...
    assert bucket.accepted[MODEL] == IMAGES  # ... and every target was paid for exactly once
    assert sorted(records_of(gemini_project)) == sorted(image_tasks(gemini_project))
    assert (f"quota {MODEL}: {IMAGES + bucket.refused[MODEL]} calls, {bucket.refused[MODEL]} rate-limited (429)"
            in run.output)


def test_a_configured_limit_sends_nothing_over_it(gemini_project: Path, fake: FakeGemini) -> None:
    bucket = fake.limit_rate(10, burst=2)
    write_config(gemini_project, max_concurrency=8, rate_limits={MODEL: "8/s"})
    run = run_doit(gemini_project, "-j", "8", "ref", "image")
    assert run.code == 0, run.output
    assert bucket.refused.get(MODEL, 0) == 0 and bucket.accepted[MODEL] == IMAGES
    assert f"quota {MODEL}: {IMAGES} calls, 0 rate-limited (429)" in run.output


def test_a_configured_daily_count_stops_the_run_before_googles_quota(gemini_project: Path, fake: FakeGemini) -> None:
    write_config(gemini_project, rate_limits={MODEL: "100/s, 5/day"})
    run = run_doit(gemini_project, "-j", "4", "ref")
    assert run.code == 75, run.output
    assert len(fake.image_calls()) == 5 and len(records_of(gemini_project)) == 5
    assert "configured 5 calls today" in run.output and "[gemini.rate_limits]" in run.output
    again = run_doit(gemini_project, "ref")  # the count is shared with later runs of the same day
    assert again.code == 75, again.output
    assert len(fake.image_calls()) == 5


def test_video_submits_wait_for_the_quota_instead_of_failing(vproject: Path, fake: FakeGemini) -> None:
    bucket = fake.limit_rate(5, burst=1)
    write_config(vproject, max_attempts=1)  # a 429 is not an attempt: one attempt is enough
    run = run_doit(vproject, "-j", "4", VIDEO, "video:scenelet-1_2", "video:scenelet-2_1")
    assert run.code == 0, run.output
    assert len(fake.video.operations) == 3 and sum(bucket.accepted.values()) == 3
    assert_video_built(vproject, fake)


def test_killed_while_waiting_for_quota_the_next_run_pays_nothing_twice(gemini_project: Path,
                                                                      fake: FakeGemini) -> None:
    write_config(gemini_project, max_concurrency=4, rate_limits={MODEL: "1/min"})  # one call, then a minute's wait
    env = env_for(gemini_project, fake)
    waiting = doit(gemini_project, "-j", "4", "ref", env=env, wait=False)
    try:
        deadline = time.monotonic() + 60
        while len(records_of(gemini_project)) < 1:  # the first call paid and recorded; the others wait for slots
            assert waiting.poll() is None, waiting.communicate()
            assert time.monotonic() < deadline, "the first reference was never built"
            time.sleep(0.05)
        os.kill(waiting.pid, signal.SIGKILL)
        waiting.wait(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    paid_before = len(fake.image_calls())
    assert paid_before == 1
    write_config(gemini_project, max_concurrency=4, rate_limits={MODEL: "100/s"})  # the quota came back
    # The killed run's waiting calls left no debt: the rate limit of the new run is the only wait (a run that had
    # to wait out the killed one's queue, 4 × 1 minute, would time out here).
    again = doit(gemini_project, "-j", "4", "ref", env=env, timeout=90)
    assert again.returncode == 0, again.stdout + again.stderr
    texts = [call.text for call in fake.image_calls()]
    assert len(texts) == 12 and len(set(texts)) == 12  # 12 references, each paid for once across both runs
    assert len(records_of(gemini_project)) == 12
