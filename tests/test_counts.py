"""Issue 25's count rows as tests: the builder's work per built target (SQL statements, fsyncs) stays within the
goals, and what a no-op build asks of the store (statements on SQLite, HTTP requests on Supabase) does not grow with
the story.

Per-target figures are slopes over two synthetic stories (bench/noop.py's generator: the same 12 references, then
14 or 28 shots of a key frame and a video): (count for the larger − count for the smaller) / (targets more), so
start-up, the schema check and doit's own state cancel out. Each kind is built in its own run (references first,
uncounted), so the figures are per key frame and per video."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from storytree_build.building import facts as facts_module
from storytree_build.core.manifest.file import load_manifest_file
from storytree_build.core.status import Status, TargetFacts
from storytree_build.files import content
from support.counting import Counts, counting
from support.project import REPO, new_project, run_doit, storytree, write_export

SMALL, LARGE = 40, 68
STORY_DB = "story.sqlite"


def _bench_noop() -> ModuleType:
    if "bench_noop" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_noop", REPO / "bench" / "noop.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["bench_noop"] = module
    return sys.modules["bench_noop"]


@dataclass
class Story:
    root: Path
    story_id: str
    shots: int


def new_story(tmp_path: Path, n: int, monkeypatch: pytest.MonkeyPatch, **env: str) -> Story:
    """A project with a synthetic story of about `n` targets, imported and its manifest written; the environment
    (monkeypatch) points storytree at it."""
    for name, value in {"STORYTREE_STUB_DELAY": "0", **env}.items():
        monkeypatch.setenv(name, value)
    story_id, export = _bench_noop().synthetic_export(n)
    root = new_project(tmp_path / f"n{n}")
    exported = write_export(root / "export.json", export)
    assert storytree(root, "import", str(exported), monkeypatch=monkeypatch) == 0
    assert storytree(root, "manifest", story_id, monkeypatch=monkeypatch) == 0
    return Story(root, story_id, len(export["shots"]))


def run(story: Story, *args: str) -> str:
    result = run_doit(story.root, *args, "provider=stub")
    assert result.code == 0, result.output
    return result.output


def counted(story: Story, monkeypatch: pytest.MonkeyPatch, *args: str) -> Counts:
    with monkeypatch.context() as patched, counting(patched) as counts:
        run(story, *args)
    return counts


@dataclass
class Measured:
    story: Story
    references: Counts  # `doit ref`: the story's model sheets and environment keyframes, from nothing
    key_frames: Counts  # `doit image`, references built
    videos: Counts  # `doit video`, key frames built
    noop: Counts  # a second `doit story:<id>` after everything was built
    decodes: int  # full image decodes during `doit image`
    noop_decisions: Counter[str]  # task → how often that no-op decided whether it is current


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Measured]:
    found = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for n in (SMALL, LARGE):
            story = new_story(tmp_path_factory.mktemp("counts"), n, monkeypatch)
            references = counted(story, monkeypatch, "ref")
            decodes = Counter()
            real_image = content._image

            def decoding(path: Path, size: int) -> content.Verdict:
                decodes["image"] += 1
                return real_image(path, size)

            with monkeypatch.context() as patched:
                patched.setattr(content, "_image", decoding)
                key_frames = counted(story, patched, "image")
            videos = counted(story, monkeypatch, "video")
            run(story, f"story:{story.story_id}")  # the review page
            decisions: Counter[str] = Counter()
            real_decide = facts_module.decide

            def deciding(facts: TargetFacts) -> Status:
                decisions[facts.task] += 1
                return real_decide(facts)

            with monkeypatch.context() as patched:
                patched.setattr(facts_module, "decide", deciding)
                noop = counted(story, patched, f"story:{story.story_id}")
            found[n] = Measured(story, references, key_frames, videos, noop, decodes["image"], decisions)
    return found


def per_target(measured: dict[int, Measured], kind: str, value) -> float:  # noqa: ANN001 - Counts → number
    small, large = measured[SMALL], measured[LARGE]
    return (value(getattr(large, kind)) - value(getattr(small, kind))) / (large.story.shots - small.story.shots)


def test_a_key_frame_costs_at_most_six_statements(measured: dict[int, Measured]) -> None:
    # The claim taken, the record and operation read under it, the record, the shot's path, the published flag,
    # the claim released.
    statements = per_target(measured, "key_frames", lambda c: c.of(STORY_DB))
    assert statements <= 6, f"{statements:.2f} statements per key frame:\n{measured[LARGE].key_frames.listing(STORY_DB)}"


def test_a_video_costs_at_most_nine_statements(measured: dict[int, Measured]) -> None:
    # A key frame's six, and the paid job's operation row: written before the paid call and again with the job's
    # name (both durable, so a crash never submits twice), and deleted once the video is recorded.
    statements = per_target(measured, "videos", lambda c: c.of(STORY_DB))
    assert statements <= 9, f"{statements:.2f} statements per video:\n{measured[LARGE].videos.listing(STORY_DB)}"


@pytest.mark.parametrize("kind", ["key_frames", "videos"])
def test_a_built_target_makes_at_most_two_fsync_calls(measured: dict[int, Measured], kind: str) -> None:
    # The object's bytes and its folder (its new name); the asset materialised from it is not synced (a power cut
    # leaves a file the next build restores from the object), nor is the room probe.
    fsyncs = per_target(measured, kind, lambda c: c.fsyncs)
    assert fsyncs <= 2, f"{fsyncs:.2f} os.fsync calls per target ({kind})"


def test_a_key_frame_syncs_one_commit_and_a_video_four(measured: dict[int, Measured]) -> None:
    # Only what must survive a power cut is synced: the record (and for a video its operation's three changes);
    # claims and published paths are not (a lease dies with its worker; a path is published again for free).
    key_frame = per_target(measured, "key_frames", lambda c: c.durable_commits[STORY_DB])
    video = per_target(measured, "videos", lambda c: c.durable_commits[STORY_DB])
    assert (key_frame, video) == (1, 4)


def test_a_reference_syncs_one_commit(measured: dict[int, Measured]) -> None:
    # A model sheet's or environment keyframe's path goes into a design document (set_document_path): published
    # like a shot's path, without a sync, so only its record is synced. Both story sizes have the same references,
    # so this is the whole run's count over the references it built.
    story = measured[LARGE].story
    manifest = load_manifest_file(story.root / "manifests" / f"{story.story_id}.yaml")
    references = sum(1 for t in manifest.targets if t.kind in ("character_plate", "environment_keyframe"))
    commits = measured[LARGE].references.durable_commits[STORY_DB]
    assert references > 0 and commits == references, measured[LARGE].references.listing(STORY_DB)


def test_a_reference_shared_by_many_shots_is_decoded_once_per_run(measured: dict[int, Measured]) -> None:
    # Every key frame uses the story's character and environment references; checking each before it is sent
    # decodes it once in the run (a rewritten file is checked again: test_trust_nothing), not once per shot.
    per_key_frame = per_target(measured, "decodes", lambda decodes: decodes)
    assert per_key_frame < 1, f"{per_key_frame:.2f} image decodes per key frame"


def test_a_no_op_runs_the_same_statements_at_every_size(measured: dict[int, Measured]) -> None:
    small, large = (measured[n].noop.of(STORY_DB) for n in (SMALL, LARGE))
    assert small == large, (f"a no-op ran {small} statements at {SMALL} targets and {large} at {LARGE}:\n"
                            f"{measured[LARGE].noop.listing(STORY_DB)}")
    assert measured[LARGE].noop.fsyncs == 0


def test_a_no_op_decides_each_target_once(measured: dict[int, Measured]) -> None:
    # The pre-flight's plan decides every target; doit's up-to-date check of each reuses that status (nothing was
    # built in between), so no output or reference is stat'ed and compared twice (building/planned.py).
    story = measured[LARGE].story
    targets = [t.task for t in load_manifest_file(story.root / "manifests" / f"{story.story_id}.yaml").targets]
    assert dict(measured[LARGE].noop_decisions) == dict.fromkeys(targets, 1)


def test_a_no_op_on_supabase_sends_the_same_requests_at_every_size(tmp_path: Path, supabase_stack,  # noqa: ANN001
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    requests = {}
    for n in (SMALL, LARGE):
        supabase_stack.reset()  # the synthetic stories share row ids
        story = new_story(tmp_path, n, monkeypatch, **supabase_stack.env())
        run(story, f"story:{story.story_id}")
        assert "0 built" in run(story, f"story:{story.story_id}")
        before = len(supabase_stack.proxy.log)
        assert "0 built" in run(story, f"story:{story.story_id}")
        requests[n] = supabase_stack.proxy.log[before:]
    assert len(requests[SMALL]) == len(requests[LARGE]), requests
