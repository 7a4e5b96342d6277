"""Batch mode: out-of-date images go into Gemini Batch API jobs at half the price. The real SDK against the fake's
batch routes (tests/support/fakes/batch_server.py), real doit subprocesses, the SQLite store; and the stub provider,
whose batch build must make the same files and records as an interactive one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from support.fakes.gemini_server import FakeGemini
from support.gallery import new_project
from support.project import ASSETS, SAMPLE_ID, doit, manifest_of, project_env, records_of, storytree
from test_gemini_images import FAST, KEY

MODEL = "gemini-3.1-flash-image"
REFS = 12  # the sample story's character plates and environment keyframes
IMAGES = 24  # ... and its key frames


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_project(tmp_path_factory.mktemp("batch") / "project")


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(template, root)
    configure(root)
    return root


@pytest.fixture
def fake():
    with FakeGemini(slow_seconds=1.5) as server:
        yield server


def configure(root: Path, **generation: object) -> None:
    lines = ["[gemini]"] + [f"{k} = {v}" for k, v in FAST.items()] + ["", "[generation]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in {"batch_poll_seconds": 0.05, **generation}.items()]
    (root / "storytree.toml").write_text("\n".join(lines) + "\n")


def env(root: Path, fake: FakeGemini | None = None, **extra: str) -> dict[str, str]:
    if fake is None:
        return project_env(root, **extra)
    return project_env(root, GEMINI_API_KEY=KEY, GOOGLE_GEMINI_BASE_URL=fake.url, **extra)


def build(root: Path, fake: FakeGemini | None, *args: str, batch: bool = True):  # noqa: ANN201
    provider = "provider=gemini" if fake is not None else "provider=stub"
    return doit(root, "--continue", *(args or (f"story:{SAMPLE_ID}",)), provider, *(["batch=1"] if batch else []),
                env=env(root, fake), timeout=300)


def output(run) -> str:  # noqa: ANN001
    return run.stdout + run.stderr


def image_tasks(root: Path, kinds: tuple[str, ...] = ("character_plate", "environment_keyframe", "key_frame")):
    return [t.task for t in manifest_of(root).targets if t.kind in kinds]


# -- same result as interactive --------------------------------------------------------------------
def test_a_stub_batch_build_makes_the_same_files_and_records_as_an_interactive_one(template: Path, tmp_path: Path):
    runs = {}
    for mode in ("interactive", "batch"):
        root = tmp_path / mode
        shutil.copytree(template, root)
        calls = tmp_path / f"{mode}.log"
        result = doit(root, f"story:{SAMPLE_ID}", "provider=stub", *(["batch=1"] if mode == "batch" else []),
                      env=env(root, STORYTREE_STUB_CALL_LOG=str(calls)), timeout=300)
        assert result.returncode == 0, output(result)
        files = {p.relative_to(root / ASSETS).as_posix(): content(p)
                 for p in sorted((root / ASSETS).rglob("*")) if p.is_file()}
        records = {task: comparable(r.to_row()) for task, r in records_of(root).items()}
        runs[mode] = (files, records, sorted(calls.read_text().split()))
        dry = doit(root, "dryrun", "--check", f"story:{SAMPLE_ID}", "provider=stub", env=env(root))
        assert dry.returncode == 0, output(dry)  # every record matches its files: all up to date
    assert runs["batch"][0] == runs["interactive"][0]  # the same pixels and provenance; videos byte for byte
    assert runs["batch"][1] == runs["interactive"][1]
    assert runs["batch"][2] == runs["interactive"][2]  # one paid call per target either way


# A PNG carries the moment it was written, so two builds of the same story differ in every file's hash, and a key
# frame's signature (made of its references' hashes) with them: those are compared as "present", the rest exactly.
MOMENT = {"storytree:built_at", "storytree:signature"}


def content(path: Path) -> object:
    """What a file is: a video's bytes; an image's pixels and provenance (without the moment it was written)."""
    if path.suffix != ".png":
        return path.read_bytes()
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.tobytes(), image.size, {k: v for k, v in image.text.items() if k not in MOMENT}


def comparable(record: dict) -> dict:
    inputs = dict(record["inputs"])
    inputs["references"] = [[path, bool(digest)] for path, digest in inputs.get("references") or []]
    dropped = {"built_at", "output_mtime_ns", "built_by", "signature", "output_sha256", "output_size"}
    return {**{k: v for k, v in record.items() if k not in dropped}, "inputs": inputs}


# -- the Gemini Batch API ---------------------------------------------------------------------------
def test_one_job_per_n_images_each_image_submitted_once(project: Path, fake: FakeGemini):
    configure(project, batch_max_requests=5)
    run = build(project, fake, "ref")
    assert run.returncode == 0, output(run)
    assert [len(job.requests) for job in fake.batches.jobs.values()] == [5, 5, 2]
    assert sorted(fake.batches.submitted_keys()) == sorted(image_tasks(project, ("character_plate",
                                                                                  "environment_keyframe")))
    assert interactive_calls(fake) == []  # nothing interactive
    assert f"{REFS} built" in run.stdout and "0 failed" in run.stdout
    # the request of a target is the interactive one: references inline before the text, the image config
    request = next(iter(fake.batches.jobs.values())).requests[0]["request"]
    assert request["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "1K"}
    assert request["contents"][0]["parts"][-1]["text"]
    again = build(project, fake, "ref")
    assert again.returncode == 0 and len(fake.batches.jobs) == 3  # up to date: nothing submitted


def test_key_frames_go_into_a_later_wave_once_their_references_exist(project: Path, fake: FakeGemini):
    run = build(project, fake, "ref", "image")
    assert run.returncode == 0, output(run)
    waves = [sorted(job.keys) for job in fake.batches.jobs.values()]
    assert len(waves) == 2 and all(k.startswith("ref:") for k in waves[0]) and all(k.startswith("image:")
                                                                                  for k in waves[1])
    assert len(fake.batches.submitted_keys()) == IMAGES and len(records_of(project)) == IMAGES


def test_a_refused_request_fails_that_target_only(project: Path, fake: FakeGemini):
    refused = "ref:character.captain-clank.character-model-sheet-1"
    fake.batches.outcome_for[refused] = "image_safety"
    fake.batches.outcome_for["ref:environment.thunderpot-gorge.keyframe_2"] = "error"
    run = build(project, fake, "ref")
    assert run.returncode != 0  # (2 here: doit also reports the `ref` group's unmet dependency)
    assert f"failed {refused}" in run.stdout and "IMAGE_SAFETY" in run.stdout
    assert "failed ref:environment.thunderpot-gorge.keyframe_2" in run.stdout
    assert len(records_of(project)) == REFS - 2 and "10 built" in run.stdout
    assert interactive_calls(fake) == []  # the failed ones are not paid for again interactively
    assert not list((project / ASSETS).rglob("*.tmp*"))


def test_killed_while_polling_the_rerun_collects_the_job_and_submits_nothing(project: Path, fake: FakeGemini):
    fake.batches.hold()
    running = doit(project, "--continue", "ref", "provider=gemini", "batch=1", env=env(project, fake), wait=False)
    try:
        deadline = time.monotonic() + 60
        while not any(op.get("operation") for op in operations(project)):
            assert running.poll() is None, running.communicate()
            assert time.monotonic() < deadline, "the job was never recorded"
            time.sleep(0.05)
        os.kill(running.pid, signal.SIGKILL)
        running.wait(timeout=30)
    finally:
        if running.poll() is None:
            running.kill()
    assert len(fake.batches.jobs) == 1 and records_of(project) == {}
    dry = doit(project, "dryrun", "--json", "ref", "provider=gemini", "batch=1", env=env(project, fake))
    items = json.loads(dry.stdout)["targets"]
    assert all("in flight" in item["reason"] and "no new cost" in item["reason"] for item in items)
    assert json.loads(dry.stdout)["estimate"]["total"] == 0
    fake.batches.release()
    again = build(project, fake, "ref")
    assert again.returncode == 0, output(again)
    assert len(fake.batches.jobs) == 1 and sorted(fake.batches.submitted_keys()) == sorted(records_of(project))
    assert operations(project) == []


@pytest.mark.parametrize("step", ["internal", "hang_up", "truncated"])  # the job was created; its answer lost
def test_a_lost_submit_answer_blocks_its_targets_until_resubmit(project: Path, fake: FakeGemini,
                                                                 monkeypatch: pytest.MonkeyPatch, step: str):
    fake.batches.play_submit(step)
    run = build(project, fake, "ref")
    assert run.returncode != 0 and "may exist and be charged" in output(run)
    assert len(fake.batches.jobs) == 1 and {op["state"] for op in operations(project)} == {"uncertain"}
    # The job may be billed: its batch price counts as spent and is named.
    assert "estimated spend this run: 0.40 USD" in run.stdout
    assert f"paid, nothing received: {REFS} image(s), ~0.40 USD (Gemini may have billed them)" in run.stdout
    again = build(project, fake, "ref")
    assert again.returncode != 0 and len(fake.batches.jobs) == 1  # blocked: nothing submitted again
    assert "nothing received" not in again.stdout
    assert interactive_calls(fake) == []  # ... not even interactively
    task = "ref:character.wren-quillfeather.character-model-sheet-1"
    monkeypatch.chdir(project)
    assert storytree(project, "resubmit", SAMPLE_ID, task, monkeypatch=monkeypatch) == 0
    third = build(project, fake, task)
    assert third.returncode == 0, output(third)
    assert fake.batches.submitted_keys().count(task) == 2 and len(fake.batches.jobs) == 2  # paid again on purpose


def test_a_run_ends_with_jobs_pending_and_the_next_one_collects_them(project: Path, fake: FakeGemini):
    configure(project, batch_wait_minutes=0.002)
    fake.batches.hold()
    run = build(project, fake, "ref")
    assert run.returncode == 75, output(run)
    assert "1 batch job(s) still running" in run.stdout and records_of(project) == {}
    fake.batches.release()
    again = build(project, fake, "ref", batch=False)  # even without batch=1: collected, never paid interactively
    assert again.returncode == 0, output(again)
    assert interactive_calls(fake) == [] and len(fake.batches.jobs) == 1 and len(records_of(project)) == REFS


def test_an_image_named_with_dash_a_is_batched_once_and_not_paid_again(project: Path, fake: FakeGemini):
    assert build(project, fake, "ref").returncode == 0
    forced = "ref:character.captain-clank.character-model-sheet-1"
    run = doit(project, "-a", forced, "provider=gemini", "batch=1", env=env(project, fake), timeout=300)
    assert run.returncode == 0, output(run)
    assert fake.batches.submitted_keys().count(forced) == 2 and len(fake.batches.jobs) == 2  # the first build + -a
    assert interactive_calls(fake) == [] and "1 built" in run.stdout and "0 failed" in run.stdout


def test_a_result_kept_in_the_recovery_folder_is_written_free_in_batch_mode(project: Path, fake: FakeGemini):
    from storytree_build.building.recovery import Recovery
    from storytree_build.core.status import signature_of
    from support.project import session_for

    task = "ref:character.captain-clank.character-model-sheet-1"
    session = session_for(project, "gemini")
    try:
        target = session.target(task)
        signature = signature_of(session.facts.current_inputs(target))
        Recovery(session.settings.recovery_dir / SAMPLE_ID).keep(task, signature, tiny_png())
    finally:
        session.close()
    run = build(project, fake, task)
    assert run.returncode == 0, output(run)
    assert fake.batches.jobs == {} and interactive_calls(fake) == []  # nothing paid: the kept image was written
    assert records_of(project)[task].origin == "recovered"


def tiny_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_dry_run_shows_interactive_and_batch_totals_and_max_cost_uses_the_batch_price(project: Path,
                                                                                         fake: FakeGemini):
    dry = doit(project, "dryrun", "ref", "provider=gemini", "batch=1", env=env(project, fake))
    assert "interactive: 0.80 USD · batch mode (batch=1, images at 50%" in dry.stdout and "this run: batch" in dry.stdout
    assert "estimated total: 0.40 USD" in dry.stdout
    refused = doit(project, "ref", "provider=gemini", "max_cost=0.5", env=env(project, fake))
    assert refused.returncode == 3 and interactive_calls(fake) == []  # interactive: 0.80 > 0.50
    allowed = build(project, fake, "ref", "max_cost=0.5")
    assert allowed.returncode == 0, output(allowed)
    assert len(records_of(project)) == REFS and "estimated spend this run: 0.40 USD" in allowed.stdout


def interactive_calls(fake: FakeGemini) -> list:
    return [call for call in fake.image_calls() if call.path.endswith(":generateContent")]


def operations(root: Path) -> list[dict]:
    import sqlite3

    from support.gallery import settings_for

    with sqlite3.connect(settings_for(root).db_path) as conn:
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("select * from storytree_operations")]
        except sqlite3.OperationalError:  # the build has not created the table yet
            return []


def test_a_submit_failure_the_sdk_cannot_explain_is_uncertain_not_a_traceback(fake: FakeGemini,
                                                                               monkeypatch: pytest.MonkeyPatch):
    """Any SDK failure that says nothing of whether the request went out may hide a paid job: SubmitUncertain."""
    from storytree_build.core.errors import SubmitUncertain
    from storytree_build.providers.base import ImageRequest
    from storytree_build.providers.gemini_batch import GeminiImageBatches
    from storytree_build.settings import GeminiSettings

    batches = GeminiImageBatches(KEY, GeminiSettings(**FAST), fake.url)
    try:
        def broken(**_: object) -> None:
            raise RuntimeError("the SDK tripped over the answer")

        monkeypatch.setattr(batches._submit_client.batches, "create", broken)
        request = ImageRequest(task="ref:character.wren.plate-1", model=MODEL, prompt="Wren", prompt_sha256="0" * 64)
        with pytest.raises(SubmitUncertain, match="may exist and be charged") as raised:
            batches.submit_batch(MODEL, [request], "storytree test")
        assert "RuntimeError" in str(raised.value) and KEY not in str(raised.value)
    finally:
        batches.close()
