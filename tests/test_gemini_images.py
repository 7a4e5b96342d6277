"""The real Gemini provider, through the real SDK and the real doit build, against the fake Gemini server.

One full sample-story image build runs in a subprocess (the real process boundary); the scenarios run
doit in-process with the project's own dodo.py, which keeps the suite fast. Delays are tiny via the
`[gemini]` block of the temp project's storytree.toml.
"""

from __future__ import annotations

import io
import logging
import shutil
import socket
from pathlib import Path

import pytest
from PIL import Image

from storytree_build.store.sqlite_records import SqliteBuildState as RecordStore
from storytree_build.core.manifest import Target
from storytree_build.core.manifest.file import load_manifest_file
from storytree_build.core.exit_codes import ExitCode
from storytree_build.store import SqliteStoryStore
from support.fakes.gemini_server import FakeGemini
from support.project import (CONSENT_VAR, story_db, ASSETS, SAMPLE_ID, Run, doit, import_story, new_project, project_env, run_doit,
                             session_for, storytree)

KEY = "AIza" + "SyTEST-0000-secret-do-not-leak-7f3c9e"  # key-shaped fake; split so secret scanners stay quiet
MODEL = "gemini-3.1-flash-image"
PLATE = "ref:character.wren-quillfeather.character-model-sheet-1"
FAST = {
    "timeout_seconds": 5.0, "deadline_seconds": 30.0, "backoff_base_seconds": 0.01, "backoff_cap_seconds": 0.02,
    "rate_limit_base_seconds": 0.01, "rate_limit_cap_seconds": 0.02,
}
FAST_ATTEMPTS = 4  # [gemini] max_attempts by default


# -- fixtures and helpers -----------------------------------------------------------------------------
@pytest.fixture
def fake() -> FakeGemini:
    with FakeGemini(slow_seconds=1.5) as server:
        yield server


def write_config(project: Path, generation: dict[str, dict[str, str]] | None = None, **gemini: object) -> None:
    def value(v: object) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f'"{k}" = {value(x)}' for k, x in v.items()) + " }"
        return f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)

    lines = ["[gemini]"] + [f"{k} = {value(v)}" for k, v in {**FAST, **gemini}.items()]
    for kind, table in (generation or {}).items():
        lines += ["", f"[generation.{kind}]"] + [f"{k} = {value(v)}" for k, v in table.items()]
    (project / "storytree.toml").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def imported_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample story imported and its manifest written, once per module (tests copy it)."""
    root = new_project(tmp_path_factory.mktemp("gemini") / "project")
    write_config(root)
    return import_story(root)


@pytest.fixture
def gemini_project(project: Path, imported_template: Path, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the imported sample project, the real provider pointed at the fake."""
    shutil.rmtree(project)
    shutil.copytree(imported_template, project)
    monkeypatch.setenv("STORYTREE_ROOT", str(project))
    monkeypatch.setenv("STORYTREE_STATE_DIR", str(project / ".storytree"))
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
    monkeypatch.setenv(*CONSENT_VAR)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.chdir(project)
    return project


def manifest(project: Path):  # noqa: ANN201
    return load_manifest_file(project / "manifests" / f"{SAMPLE_ID}.yaml")


def record(project: Path, task: str):  # noqa: ANN201
    return RecordStore(story_db(project)).records(SAMPLE_ID).get(task)


def db_values(project: Path, target: Target) -> list[object]:
    store = SqliteStoryStore(story_db(project))
    try:
        snapshot = store.load_story(SAMPLE_ID)
    finally:
        store.close()
    values = []
    for loc in target.db:
        if loc.path is not None:
            node = snapshot.story[loc.column]
            for key in loc.path:
                node = node.get(key) if isinstance(node, dict) else node[key]
            values.append(node)
        else:
            row = next(s for s in snapshot.shots
                       if s["scenelet_id"] == loc.scenelet_id and s["shot_index"] == loc.shot_index)
            values.append(row[loc.column])
    return values


def assert_clean_failure(project: Path, task: str, run: Run, refused: bool = False) -> None:
    """A failed target leaves no file, no temp file, no record and no DB path; the key never leaks. `refused`: the
    build stopped before any target started (one line, exit 3), so no target is named."""
    target = manifest(project).by_task()[task]
    assert run.code == ExitCode.REFUSED if refused else run.code != 0, run.output
    assert (task not in run.output) if refused else (task in run.output), run.output
    assert not (project / ASSETS / target.output).exists()
    assert not list((project / ASSETS).rglob("*.part"))
    assert record(project, task) is None
    assert target.output not in db_values(project, target)
    assert KEY not in run.output


def price_of(project: Path, task: str) -> float:
    """The estimate the build reserves for one paid call of `task`."""
    session = session_for(project, provider="gemini")
    try:
        return session.pricing.cost(session.target(task)) or 0.0
    finally:
        session.close()


def assert_valid_png(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()


# -- the full build -----------------------------------------------------------------------------------
def test_full_image_build_against_the_fake_server(gemini_project: Path, fake: FakeGemini) -> None:
    project = gemini_project
    fake.play("ok_jpeg", "ok_jpeg")  # the first two images come back as JPEG and must be stored as PNG
    env = project_env(project, GEMINI_API_KEY=KEY, GOOGLE_GEMINI_BASE_URL=fake.url, CI="1")
    result = doit(project, "ref", "image", "verbose=1", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert not fake.rules[0].steps  # both JPEG replies were used

    targets = [t for t in manifest(project).targets if t.kind != "video"]
    assert len(targets) == 24 and len(fake.image_calls()) == 24
    for target in targets:
        assert_valid_png(project / ASSETS / target.output)
        rec = record(project, target.task)
        assert rec is not None and rec.provider == "gemini" and rec.model == MODEL and rec.published
        assert db_values(project, target) == [target.output] * len(target.db)

    # The wire, per target: map each recorded call to its target by the exact prompt text.
    session = session_for(project, "gemini")
    try:
        rendered = {t.task: session.requests.render(t) for t in targets}
    finally:
        session.close()
    by_text = {c.text: c for c in fake.image_calls()}
    system_file = (project / "system_prompts" / "create_shot_images.md").read_text()
    for target in targets:
        user, system = rendered[target.task]
        call = by_text[user]
        assert call.method == "POST" and call.path == f"/v1beta/models/{MODEL}:generateContent"
        parts = call.parts
        assert "text" in parts[-1] and all("inlineData" in p for p in parts[:-1])  # references before the text
        expected = [(project / ASSETS / r.path).read_bytes() for r in target.references]
        assert call.inline_images == [("image/png", data) for data in expected]
        if target.kind == "key_frame":
            assert target.references and call.system_instruction == system == system_file
        else:
            assert not target.references and "systemInstruction" not in call.body
        config = call.generation_config
        assert config["responseModalities"] == ["IMAGE"] and config["candidateCount"] == 1
        assert config["imageConfig"] == {"aspectRatio": target.config["aspect_ratio"], "imageSize": "1K"}
        assert call.headers["x-goog-api-key"] == KEY
        assert KEY not in call.url and "key" not in call.query
        assert all(KEY not in v for k, v in call.headers.items() if k != "x-goog-api-key")

    # Verbose output lists each key frame's references exactly.
    for target in targets:
        if target.kind == "key_frame":
            lines = [f"[Shot {target.shot.scenelet_id} #{target.shot.shot_index}] Using reference images:"]
            lines += [f"  - {r.kind}: {r.id} -> {r.path}" for r in target.references]
            assert "\n".join(lines) in output
    # The key is nowhere: output, records, story database, manifest, images.
    assert KEY not in output
    for path in [story_db(project), story_db(project),
                 project / "manifests" / f"{SAMPLE_ID}.yaml", *(project / ASSETS).rglob("*.png")]:
        assert KEY.encode() not in path.read_bytes()

    again = doit(project, "ref", "image", env=env)
    assert again.returncode == 0 and "0 built" in again.stdout, again.stdout + again.stderr
    assert len(fake.image_calls()) == 24  # a second build makes zero requests


def test_parallel_doit_never_exceeds_the_per_model_limit(gemini_project: Path, fake: FakeGemini) -> None:
    write_config(gemini_project, max_concurrency=2)
    fake.latency = 0.05  # let calls overlap
    run = run_doit(gemini_project, "-j", "6", "ref")
    assert run.code == 0, run.output
    assert len(fake.image_calls()) == 12
    assert 1 <= fake.max_in_flight[MODEL] <= 2
    for target in manifest(gemini_project).targets:
        if target.task.startswith("ref:"):
            assert_valid_png(gemini_project / ASSETS / target.output)


# -- scenarios that end in a retry ----------------------------------------------------------------------
# Fake steps whose call Gemini may have billed: answered with HTTP 200, or lost after the request was sent.
BILLED_STEPS = frozenset({"slow", "malformed", "text_only", "no_image", "corrupt_image", "prompt_blocked",
                          "image_safety", "truncated", "cut_json", "hang_up", "reset"})


@pytest.mark.parametrize("steps", [
    ("rate_limited", "ok_png"),           # 429 with RetryInfo.retryDelay
    ("unavailable", "unavailable", "ok_png"),  # 503 burst
    ("internal", "ok_png"),
    ("slow", "ok_png"),                   # past the per-call timeout
    ("malformed", "ok_png"),              # 200 with a non-JSON body
    ("text_only", "ok_png"),              # no image: asked again
    ("no_image", "no_image", "ok_png"),   # at most twice
    ("corrupt_image", "ok_png"),          # inline data that does not decode
])
def test_transient_failures_are_retried_until_an_image_arrives(gemini_project: Path, fake: FakeGemini,
                                                              steps: tuple[str, ...]) -> None:
    if "slow" in steps:
        write_config(gemini_project, timeout_seconds=0.5)
    fake.retry_delay = "0.07s"  # longer than any backoff the test settings allow, so it shows if honoured
    fake.play(*steps)
    run = run_doit(gemini_project, PLATE)
    assert run.code == 0, run.output
    if steps[0] == "rate_limited":
        # The model pauses for google.rpc.RetryInfo.retryDelay (not our jitter), and the 429 is not a retry.
        assert "paused for 0.07s" in run.output and "not counted as a retry" in run.output
    assert len(fake.image_calls()) == len(steps)
    # Every call Gemini may have billed counts as spend; errors it documents as free (429, 5xx) do not.
    price, billed = price_of(gemini_project, PLATE), sum(step in BILLED_STEPS for step in steps[:-1])
    assert f"estimated spend this run: {(billed + 1) * price:.2f} USD" in run.output
    assert ("paid, nothing received" in run.output) == bool(billed)
    if billed:
        assert f"paid, nothing received: {billed} image(s), ~{billed * price:.2f} USD" in run.output
    target = manifest(gemini_project).by_task()[PLATE]
    assert_valid_png(gemini_project / ASSETS / target.output)
    assert record(gemini_project, PLATE) is not None
    assert db_values(gemini_project, target) == [target.output] * len(target.db)
    assert KEY not in run.output


# -- scenarios that end in a clear per-target error -----------------------------------------------------
@pytest.mark.parametrize(("step", "calls", "config", "expected"), [
    ("prompt_blocked", 1, {}, ["blocked", "PROHIBITED_CONTENT", "change the story text"]),
    ("image_safety", 1, {}, ["policy", "IMAGE_SAFETY"]),
    ("text_only", 3, {}, ["no usable image", "I can't draw that"]),
    ("no_image", 3, {}, ["no usable image", "NO_IMAGE"]),
    ("rate_limited", None, {"quota_wait_minutes": 0.01}, ["gave up waiting", "quota_wait_minutes", "Nothing was paid",
                                                         "429", "RESOURCE_EXHAUSTED"]),
    ("unavailable", 3, {"max_attempts": 3}, ["gave up", "503"]),
    # A 200 that cannot be read and an answer lost after sending may be billed: asked again once per build, counted.
    ("malformed", 2, {}, ["not valid JSON", "may have billed", "paid, nothing received: 2 image(s)"]),
    ("slow", 2, {"timeout_seconds": 0.3, "deadline_seconds": 0.8}, ["timed out", "lost after the request was sent",
                                                                    "paid, nothing received: 2 image(s)"]),
    ("unavailable", None, {"max_attempts": 50, "deadline_seconds": 0.3, "backoff_base_seconds": 0.05,
                           "backoff_cap_seconds": 0.1}, ["gave up", "deadline", "503"]),
    ("bad_request", 1, {}, ["400", "INVALID_ARGUMENT", "not retried"]),
    ("bad_key", 1, {}, ["rejected the API key", "GEMINI_API_KEY"]),
])
def test_failures_end_in_a_clear_per_target_error(gemini_project: Path, fake: FakeGemini, step: str,
                                                   calls: int | None, config: dict, expected: list[str]) -> None:
    write_config(gemini_project, **config)
    fake.play(then=step)
    run = run_doit(gemini_project, PLATE)
    assert_clean_failure(gemini_project, PLATE, run)
    for fragment in expected:
        assert fragment in run.output, run.output
    if calls is not None:
        assert len(fake.image_calls()) == calls
    else:
        assert len(fake.image_calls()) >= 1
    if step in BILLED_STEPS:  # answered (or lost after sending): every call counts
        price = price_of(gemini_project, PLATE)
        assert f"paid, nothing received: {calls} image(s), ~{calls * price:.2f} USD" in run.output
        assert f"estimated spend this run: {calls * price:.2f} USD" in run.output
    else:  # refused before generation or never answered 200: free, never counted
        assert "estimated spend this run: 0.00 USD" in run.output and "nothing received" not in run.output


# -- answers that may have been billed: counted, asked again at most once per build ---------------------------
@pytest.mark.parametrize("step", ["truncated", "cut_json", "hang_up", "reset", "corrupt_image"])
def test_a_lost_or_unusable_answer_is_counted_and_asked_again_once_per_build(gemini_project: Path, fake: FakeGemini,
                                                                            step: str) -> None:
    fake.play(then=step)
    price = price_of(gemini_project, PLATE)
    run = run_doit(gemini_project, PLATE)
    assert_clean_failure(gemini_project, PLATE, run)
    assert len(fake.image_calls()) == 2  # the call and one more: never the 4 attempts of a free failure
    assert "may have been billed" in run.output or "may have billed" in run.output
    assert "Asked again 1 time(s) in this build" in run.output
    assert f"estimated spend this run: {2 * price:.2f} USD" in run.output
    assert f"storytree: paid, nothing received: 2 image(s), ~{2 * price:.2f} USD (Gemini may have billed them)" \
        in run.output

    again = run_doit(gemini_project, PLATE)  # building again is the user's say-so: again at most two calls
    assert_clean_failure(gemini_project, PLATE, again)
    assert len(fake.image_calls()) == 4


@pytest.mark.parametrize("step", ["truncated", "hang_up"])
def test_a_lost_answer_then_an_image_builds_and_counts_both_calls(gemini_project: Path, fake: FakeGemini,
                                                                 step: str) -> None:
    fake.play(step, "ok_png")
    price = price_of(gemini_project, PLATE)
    run = run_doit(gemini_project, PLATE)
    assert run.code == 0, run.output
    assert len(fake.image_calls()) == 2 and record(gemini_project, PLATE) is not None
    assert f"estimated spend this run: {2 * price:.2f} USD" in run.output
    assert f"paid, nothing received: 1 image(s), ~{price:.2f} USD" in run.output


@pytest.mark.parametrize("step", ["truncated", "hang_up"])
def test_max_cost_counts_a_lost_answer_and_refuses_the_second_call(gemini_project: Path, fake: FakeGemini,
                                                                  step: str) -> None:
    price = price_of(gemini_project, PLATE)
    fake.play(then=step)
    run = run_doit(gemini_project, PLATE, f"max_cost={price}")  # room for exactly one call
    assert_clean_failure(gemini_project, PLATE, run)
    assert len(fake.image_calls()) == 1
    assert "Not asked again" in run.output and f"past max_cost={price:g}" in run.output
    assert f"paid, nothing received: 1 image(s), ~{price:.2f} USD" in run.output


def test_a_connection_never_established_is_retried_and_costs_nothing(gemini_project: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on: the connection is refused before a byte is sent
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", f"http://127.0.0.1:{port}")
    run = run_doit(gemini_project, PLATE)
    assert_clean_failure(gemini_project, PLATE, run)
    assert "before anything was sent" in run.output and f"{FAST_ATTEMPTS} call(s) failed" in run.output
    assert "estimated spend this run: 0.00 USD" in run.output and "nothing received" not in run.output


def test_a_failure_before_the_request_is_sent_costs_nothing(gemini_project: Path, fake: FakeGemini,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from storytree_build.providers.rate_limit import RateLimiter

    def broken(self: RateLimiter, model: str, task: str) -> float:
        raise RuntimeError("the limiter tripped")

    monkeypatch.setattr(RateLimiter, "acquire", broken)
    run = run_doit(gemini_project, PLATE)
    assert_clean_failure(gemini_project, PLATE, run)
    assert "could not be prepared" in run.output and "nothing was sent or paid" in run.output
    assert fake.image_calls() == [] and "estimated spend this run: 0.00 USD" in run.output


def test_every_image_call_has_a_connection_of_its_own(gemini_project: Path, fake: FakeGemini) -> None:
    """A pooled connection the server dropped while idle would fail "after sending" and look possibly billed."""
    fake.play("unavailable")
    assert run_doit(gemini_project, PLATE).code == 0
    assert [call.headers.get("connection") for call in fake.image_calls()] == ["close", "close"]


def test_credentials_in_the_base_url_never_show(gemini_project: Path, fake: FakeGemini,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    base = fake.url.replace("http://", "http://robot:base-pw-1@")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", base)
    fake.play("unavailable", then="hang_up")  # a retried failure and a lost answer: warnings and an error
    run = run_doit(gemini_project, PLATE)
    assert_clean_failure(gemini_project, PLATE, run)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "ftp://robot:base-pw-2@127.0.0.1/")
    refused = run_doit(gemini_project, PLATE)
    assert refused.code != 0 and "GOOGLE_GEMINI_BASE_URL must be an http(s) URL" in refused.output
    assert "ftp://***@127.0.0.1/" in refused.output
    for output in (run.output, refused.output):
        assert "-pw-" not in output and KEY not in output
    from storytree_build.providers.gemini_batch import GeminiImageBatches
    from storytree_build.providers.gemini_image import GeminiImages
    from storytree_build.settings import GeminiSettings

    for provider in (GeminiImages(KEY, GeminiSettings(), base), GeminiImageBatches(KEY, GeminiSettings(), base)):
        assert "-pw-" not in repr(provider) and "***@127.0.0.1" in repr(provider)
        provider.close()


def test_the_redactor_keeps_url_credentials_out_of_any_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """The handler filter the providers install also covers SDK and httpx lines that quote a URL."""
    from storytree_build.providers.google_http import Redactor

    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, 'HTTP Request: POST %s "%s"', (
        "http://robot:base-pw-1@127.0.0.1:9/v1beta/models/m:generateContent", KEY), None)
    assert Redactor(KEY).filter(record)
    assert record.getMessage() == 'HTTP Request: POST http://***@127.0.0.1:9/v1beta/models/m:generateContent ' \
                                  '"[redacted]"'


def test_a_retired_model_stops_the_build_and_names_the_setting(gemini_project: Path, fake: FakeGemini) -> None:
    fake.play(model=MODEL, then="retired")
    run = run_doit(gemini_project, "ref")
    assert run.code != 0
    assert len(fake.image_calls()) == 1  # doit stops at the first failure
    first = next(t for t in manifest(gemini_project).targets if t.task.startswith("ref:character."))
    assert_clean_failure(gemini_project, first.task, run)
    for fragment in (repr(MODEL), "retired", "no longer available", "STORYTREE_IMAGE_MODEL",
                     "[generation.character_plate] model", "storytree manifest"):
        assert fragment in run.output, run.output
    assert not list((gemini_project / ASSETS).rglob("*.png"))

    # Even with --continue, the retired model is asked once; every other target fails without a call.
    again = run_doit(gemini_project, "--continue", "ref")
    assert again.code != 0 and len(fake.image_calls()) == 2
    assert not list((gemini_project / ASSETS).rglob("*.png"))


def test_image_size_is_sent_only_to_models_that_support_it(gemini_project: Path, fake: FakeGemini,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(gemini_project, generation={"character_plate": {"model": "gemini-2.5-flash-image"}})
    assert storytree(gemini_project, "manifest", SAMPLE_ID, monkeypatch=monkeypatch) == 0
    run = run_doit(gemini_project, PLATE, "ref:environment.thunderpot-gorge.keyframe_1")
    assert run.code == 0, run.output
    calls = {c.model: c for c in fake.image_calls()}
    assert calls["gemini-2.5-flash-image"].generation_config["imageConfig"] == {"aspectRatio": "16:9"}
    assert calls[MODEL].generation_config["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "1K"}


def test_verbose_env_logs_the_references_of_a_key_frame(gemini_project: Path, fake: FakeGemini,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYTREE_VERBOSE", "1")
    run = run_doit(gemini_project, "image:scenelet-1_1")
    assert run.code == 0, run.output
    target = manifest(gemini_project).by_task()["image:scenelet-1_1"]
    lines = [f"[Shot {target.shot.scenelet_id} #{target.shot.shot_index}] Using reference images:"]
    lines += [f"  - {r.kind}: {r.id} -> {r.path}" for r in target.references]
    assert "\n".join(lines) in run.output
    assert len(fake.image_calls()) == 1 + len(target.depends_on)
    assert KEY not in run.output


# -- configuration and secrets ----------------------------------------------------------------------------
def test_ci_refuses_a_non_loopback_endpoint(gemini_project: Path, fake: FakeGemini,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "https://generativelanguage.googleapis.com")
    run = run_doit(gemini_project, PLATE)
    assert_clean_failure(gemini_project, PLATE, run, refused=True)  # checked once, before any target
    assert run.output.count("CI is set") == 1 and "generativelanguage.googleapis.com" in run.output
    assert fake.requests == []


def test_missing_key_fails_clearly_without_falling_back_to_the_stub(gemini_project: Path, fake: FakeGemini,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY")
    run = run_doit(gemini_project, PLATE)
    assert_clean_failure(gemini_project, PLATE, run, refused=True)  # checked once, before any target
    assert run.output.count("GEMINI_API_KEY") == 1
    assert fake.requests == []
    assert not list((gemini_project / ASSETS).rglob("*.png"))


def test_the_key_is_redacted_from_anything_logged(fake: FakeGemini) -> None:
    from storytree_build.providers.gemini_image import GeminiImages
    from storytree_build.settings import GeminiSettings

    logger = logging.getLogger("storytree")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        provider = GeminiImages(KEY, GeminiSettings(), fake.url)
        logger.warning("header was x-goog-api-key: %s", KEY)
        provider.close()
    finally:
        logger.removeHandler(handler)
    assert KEY not in stream.getvalue() and "[redacted]" in stream.getvalue()
    assert KEY not in repr(provider)
