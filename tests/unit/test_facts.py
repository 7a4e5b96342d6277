"""building/facts.py `FactGatherer`: which facts are gathered when, counted on in-memory ports and a counting hasher.

A no-op build reads the story's records and operations once and its claims never; a missing output hashes no
reference; a file's provenance and whether the story database points at it are asked for unrecorded files only; a
claim of a process that is gone from this machine is not a reason to wait. The files are real, in a temp folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from storytree_build.building import facts as facts_module
from storytree_build.building.facts import Asker, FactGatherer, StoryState
from storytree_build.building.files import to_png_with_provenance
from storytree_build.core.claim_liveness import owner_name
from storytree_build.core.hashing import FileHasher
from storytree_build.core.manifest import Manifest, ReferenceEntry, Target
from storytree_build.core.status import (HeldClaim, Inputs, Reason, Rejection, Status, signature_inputs,
                                         signature_of)
from storytree_build.store.build_state import Operation, Record
from support.fakes.build_state import MemoryBuildState, MemoryClaims, MemoryOperations, MemoryRecords
from support.processes import dead_pid

STORY = "story-1"
HOST = socket.gethostname()
HERE = f"{HOST}:/work/project"
REMOTE = "otherhost:/somewhere (pid 1)"  # a claim owner on another machine: never judged dead from here


def me() -> str:
    """This process as a claim owner, asked at test time (a mutation-testing runner imports this module in another
    process than the one that runs the test)."""
    return owner_name(HERE, os.getpid())
PROVIDER = "stub"
SHEET = "ref:character.wren.character-model-sheet-1"
IMAGE = "image:scenelet-1_1"
VIDEO = "video:scenelet-1_1"
BUILT_AT = "2026-11-29T10:00:00+00:00"


class CountingHasher(FileHasher):
    """The real hasher, remembering which files it was asked to hash (relative to `root`)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.asked: list[str] = []

    def sha256(self, path: Path, stat: os.stat_result | None = None) -> str:
        self.asked.append(path.relative_to(self.root).as_posix())
        return super().sha256(path, stat)


def fake_flaw(path: Path) -> str:
    """The content check, for these fakes: their files are `bytes of <task>` (or real PNGs)."""
    data = path.read_bytes()
    return "" if data.startswith((b"bytes of ", b"\x89PNG")) else "not an image"


@dataclass
class Story:
    """A built story of three targets (a sheet, a key frame using it, a video using both) on real files, its build
    state in counted in-memory ports, and a gatherer over them."""

    root: Path
    targets: dict[str, Target]
    state: MemoryBuildState
    hasher: CountingHasher
    points_here: list[str] = field(default_factory=list)  # the targets the story database was asked about
    rejected: dict[str, Rejection] = field(default_factory=dict)
    asker: Asker = field(default_factory=lambda: Asker(HERE, me()))
    gatherer: FactGatherer = field(init=False)

    def __post_init__(self) -> None:
        self.gatherer = self.new_gatherer()

    def new_gatherer(self, asker: Asker | None = None, points_here: bool = True) -> FactGatherer:
        def asked(target: Target) -> bool:
            self.points_here.append(target.task)
            return points_here

        manifest = Manifest(story_id=STORY, display_name="Story", targets=list(self.targets.values()))
        state = StoryState(self.records, self.operations, self.claims)
        return FactGatherer(manifest, self.root, state, PROVIDER, hasher=self.hasher, asker=asker or self.asker,
                            points_here=asked, rejections=lambda: self.rejected,
                            flaw=fake_flaw)

    @property
    def records(self) -> MemoryRecords:
        return self.state.records(STORY)

    @property
    def operations(self) -> MemoryOperations:
        return self.state.operations(STORY)

    @property
    def claims(self) -> MemoryClaims:
        return self.state.claims(STORY)

    def path(self, task: str) -> Path:
        return self.root / self.targets[task].output

    def write(self, task: str, content: bytes) -> None:
        self.path(task).parent.mkdir(parents=True, exist_ok=True)
        self.path(task).write_bytes(content)

    def record(self, task: str, **changes: object) -> Record:
        """The record a build here would write for the file at the target path now."""
        target, path = self.targets[task], self.path(task)
        inputs = self.inputs(task)
        st = path.stat()
        values: dict[str, object] = dict(
            story_id=STORY, task=task, output=target.output, signature=signature_of(inputs), inputs=inputs,
            output_sha256=hashlib.sha256(path.read_bytes()).hexdigest(), output_size=st.st_size,
            output_mtime_ns=st.st_mtime_ns, provider=PROVIDER, model=target.model, prompt_sha256=target.prompt_sha256,
            built_at=BUILT_AT, published=True, built_by=HERE)
        values.update(changes)
        return Record(**values)  # type: ignore[arg-type]

    def inputs(self, task: str) -> Inputs:
        """The target's inputs now, worked out here from the files (not by the gatherer under test)."""
        target = self.targets[task]
        hashes: list[list[str | None]] = [[ref.path, hashlib.sha256((self.root / ref.path).read_bytes()).hexdigest()]
                                          for ref in target.references]
        return signature_inputs(target, PROVIDER, hashes)

    def touch(self, task: str) -> None:
        """Same bytes, a new mtime: whoever needs the file's hash must read it again."""
        st = self.path(task).stat()
        os.utime(self.path(task), ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    def forget_counts(self) -> None:
        for port in (self.records, self.operations, self.claims):
            port.calls.clear()
        self.hasher.asked.clear()
        self.points_here.clear()

    def status(self, task: str) -> Status:
        return self.gatherer.status(task)


@pytest.fixture
def story(tmp_path: Path, make_target: Callable[..., Target]) -> Story:
    sheet = make_target(SHEET, kind="character_plate", output="s/sheet.png")
    image = make_target(IMAGE, kind="key_frame", output="s/image.png", depends_on=[SHEET],
                        references=[ReferenceEntry(kind="CHARACTER", id="wren", path=sheet.output, task=SHEET)])
    video = make_target(VIDEO, kind="video", output="s/video.mp4", depends_on=[SHEET, IMAGE],
                        references=[ReferenceEntry(kind="CHARACTER", id="wren", path=sheet.output, task=SHEET),
                                    ReferenceEntry(kind="KEY_FRAME", id="scenelet-1_1", path=image.output, task=IMAGE)])
    built = Story(tmp_path / "assets", {t.task: t for t in (sheet, image, video)}, MemoryBuildState(),
                  CountingHasher(tmp_path / "assets"))
    for task in (SHEET, IMAGE, VIDEO):  # dependencies first: a record's inputs are its references' hashes
        built.write(task, f"bytes of {task}".encode())
        built.records.rows[task] = built.record(task)
    built.forget_counts()
    return built


@pytest.fixture
def provenance_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files whose PNG provenance the gatherer read (the real reader, counted)."""
    read: list[str] = []
    real = facts_module.read_provenance

    def counted(path: Path) -> dict[str, str]:
        read.append(path.name)
        return real(path)

    monkeypatch.setattr(facts_module, "read_provenance", counted)
    return read


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 100, 50)).save(buffer, format="PNG")
    return buffer.getvalue()


def operation(task: str, state: str = "submitted") -> Operation:
    return Operation(story_id=STORY, task=task, signature="sig", provider=PROVIDER, model="m", state=state,
                     operation="operations/abc", submitted_at=BUILT_AT, download_uri=None, error=None)


# -- a no-op build ----------------------------------------------------------------------------------------
def test_a_no_op_status_reads_records_and_operations_once_and_claims_never(story: Story,
                                                                           provenance_reads: list[str]) -> None:
    story.claims.hold_for(IMAGE, REMOTE)  # even a live claim is not read for a current target
    assert [story.status(task) for task in story.targets] == [Status(Reason.UP_TO_DATE)] * 3
    assert story.records.calls == {"all": 1}
    assert story.operations.calls == {"all": 1}
    assert story.claims.calls == {}
    assert story.hasher.asked == []  # sizes and mtimes match the records: no file is read
    assert story.points_here == [] and provenance_reads == []


# -- what a missing or unrecorded output asks for -----------------------------------------------------------
def test_a_missing_output_hashes_no_reference(story: Story) -> None:
    story.touch(SHEET)  # its hash is not known any more: reading the image's inputs would hash it
    assert story.status(IMAGE) == Status(Reason.UP_TO_DATE)
    assert story.hasher.asked == ["s/sheet.png"]
    story.hasher.asked.clear()
    story.path(IMAGE).unlink()
    del story.records.rows[IMAGE]  # never built: nothing to compare its inputs with
    story.gatherer.refresh()
    assert story.status(IMAGE) == Status(Reason.MISSING)
    assert story.gatherer.facts(IMAGE).inputs is None
    assert story.hasher.asked == []


def test_a_recorded_file_that_is_missing_is_compared_with_the_manifest(story: Story) -> None:
    """Restore it (free) only while its record still fits: a stale one is rebuilt like any stale target."""
    story.touch(SHEET)
    story.path(IMAGE).unlink()
    story.gatherer.refresh()
    assert story.status(IMAGE).why is Reason.LOST  # no copy kept in these fakes: blocked, never paid on its own
    assert story.gatherer.facts(IMAGE).inputs is not None and "s/sheet.png" in story.hasher.asked


def test_an_operation_in_flight_needs_no_inputs(story: Story, provenance_reads: list[str]) -> None:
    story.touch(SHEET)
    story.operations.rows[VIDEO] = operation(VIDEO)
    assert story.status(VIDEO).why is Reason.IN_FLIGHT
    assert story.hasher.asked == [] and story.points_here == [] and provenance_reads == []


def test_provenance_and_the_database_are_asked_only_about_unrecorded_files(story: Story,
                                                                          provenance_reads: list[str]) -> None:
    del story.records.rows[IMAGE]
    assert story.status(IMAGE) == Status(Reason.ADOPTABLE)
    assert provenance_reads == ["image.png"] and story.points_here == [IMAGE]
    assert story.status(SHEET).current and story.status(VIDEO).current
    assert provenance_reads == ["image.png"] and story.points_here == [IMAGE]


def test_without_adoption_the_database_is_not_asked(story: Story, provenance_reads: list[str]) -> None:
    del story.records.rows[IMAGE]
    gatherer = story.new_gatherer(Asker(HERE, me(), adopt_existing=False))
    assert gatherer.status(IMAGE) == Status(Reason.UNRECORDED)
    assert story.points_here == [] and provenance_reads == ["image.png"]


def test_a_file_storytree_saved_is_recognised_by_its_provenance(story: Story) -> None:
    target = story.targets[IMAGE]
    story.write(IMAGE, to_png_with_provenance(png(), target, PROVIDER, BUILT_AT, signature_of(story.inputs(IMAGE))))
    del story.records.rows[IMAGE]
    gatherer = story.new_gatherer(points_here=False)
    assert gatherer.status(IMAGE) == Status(Reason.SAVED_UNRECORDED)


# -- claims in the dry-run -------------------------------------------------------------------------------
@pytest.mark.parametrize("owner", ["dead here", "me"], ids=["a-dead-process-here", "this-process"])
def test_a_claim_that_does_not_hold_is_no_reason_to_wait(story: Story, owner: str) -> None:
    owner = owner_name(f"{HOST}:/work/other-project", dead_pid()) if owner == "dead here" else me()
    story.claims.hold_for(IMAGE, owner)
    story.path(IMAGE).unlink()
    assert story.status(IMAGE).why is Reason.LOST  # its own reason, not the claim's
    assert story.gatherer.held_claim(IMAGE) is None


@pytest.mark.parametrize("owner", [REMOTE, "live here"], ids=["another-machine", "another-live-process-here"])
def test_a_live_claim_is_a_reason_to_wait(story: Story, owner: str) -> None:
    owner = owner_name(f"{HOST}:/work/other", os.getpid()) if owner == "live here" else owner
    claim = story.claims.hold_for(IMAGE, owner, claimed_at="2026-12-01T09:00:00+00:00")
    story.path(IMAGE).unlink()
    assert story.status(IMAGE) == Status(Reason.CLAIMED, {"owner": owner, "claimed_at": claim.claimed_at})
    assert story.gatherer.held_claim(IMAGE) == HeldClaim(owner, claim.claimed_at)
    assert story.gatherer.facts(IMAGE).claim == HeldClaim(owner, claim.claimed_at)  # the facts include it unless told
    assert story.gatherer.facts(IMAGE, with_claim=False).claim is None


def test_claims_are_read_once_per_story_until_refreshed(story: Story) -> None:
    remote = REMOTE
    for task in (IMAGE, VIDEO):
        story.claims.hold_for(task, remote)
        story.path(task).unlink()
    assert [story.status(t).why for t in (IMAGE, VIDEO)] == [Reason.CLAIMED, Reason.CLAIMED]
    assert story.claims.calls == {"unexpired": 1}
    story.gatherer.forget_claim(IMAGE)  # this worker now holds it, or waited for it to end
    assert story.status(IMAGE).why is Reason.LOST
    assert story.status(VIDEO).why is Reason.CLAIMED
    assert story.claims.calls == {"unexpired": 1}
    story.gatherer.refresh()
    assert story.status(IMAGE).why is Reason.CLAIMED
    assert story.claims.calls == {"unexpired": 2}


def test_forgetting_a_claim_that_was_not_there_changes_nothing(story: Story) -> None:
    story.claims.hold_for(VIDEO, REMOTE)
    story.path(VIDEO).unlink()
    assert story.status(VIDEO).why is Reason.CLAIMED
    story.gatherer.forget_claim(IMAGE)
    assert story.status(VIDEO).why is Reason.CLAIMED


def test_forgetting_a_claim_before_any_was_read_changes_nothing(story: Story) -> None:
    story.claims.hold_for(IMAGE, REMOTE)
    story.path(IMAGE).unlink()
    story.gatherer.forget_claim(IMAGE)
    assert story.status(IMAGE).why is Reason.CLAIMED


# -- the cache of records, operations and hashes ------------------------------------------------------------
def test_refreshing_one_task_rereads_only_its_record_and_operation(story: Story) -> None:
    assert story.status(IMAGE).current
    story.records.rows[IMAGE] = story.record(IMAGE, published=False)  # another worker's change in the store
    story.operations.rows[VIDEO] = operation(VIDEO)
    assert story.status(IMAGE).current  # read once: the cache answers
    story.gatherer.refresh(IMAGE)
    assert story.status(IMAGE) == Status(Reason.PUBLISH_ONLY)
    assert story.records.calls == {"all": 1, "get": 1} and story.operations.calls == {"all": 1, "get": 1}
    assert story.status(VIDEO).current  # its operation was not re-read
    story.gatherer.refresh(VIDEO)
    assert story.status(VIDEO).why is Reason.IN_FLIGHT


def test_a_record_gone_from_the_store_is_forgotten_on_refresh(story: Story) -> None:
    assert story.status(IMAGE).current
    del story.records.rows[IMAGE]
    story.gatherer.refresh(IMAGE)
    assert story.status(IMAGE) == Status(Reason.ADOPTABLE)


def test_refreshing_one_task_before_anything_was_read_reads_the_whole_story_later(story: Story) -> None:
    story.gatherer.refresh(IMAGE)
    assert story.records.calls == {} and story.operations.calls == {}
    assert story.status(IMAGE).current
    assert story.records.calls == {"all": 1} and story.operations.calls == {"all": 1}


def test_refreshing_one_task_before_operations_were_read(story: Story) -> None:
    assert story.gatherer.record(IMAGE) is not None
    story.gatherer.refresh(IMAGE)
    assert story.operations.calls == {}
    assert story.status(IMAGE).current


def test_a_target_built_in_this_run_is_current_without_reading_it_again(story: Story) -> None:
    assert story.status(IMAGE).current
    story.write(IMAGE, b"the rebuilt key frame")
    rebuilt = story.record(IMAGE)
    story.gatherer.note_built(rebuilt)
    assert story.status(IMAGE).current and story.gatherer.record(IMAGE) == rebuilt
    assert story.status(VIDEO) == Status(Reason.INPUTS_CHANGED, {"difference": "references changed: s/image.png"})
    assert story.records.calls == {"all": 1} and story.hasher.asked == []


def test_the_hasher_is_told_the_hash_of_a_file_just_built(story: Story) -> None:
    story.write(IMAGE, b"the rebuilt key frame")
    rebuilt = story.record(IMAGE)
    story.gatherer.note_built(rebuilt)
    # same size and mtime, other bytes: only a hasher that was told the hash answers without reading the file
    story.path(IMAGE).write_bytes(b"THE REBUILT KEY FRAME")
    os.utime(story.path(IMAGE), ns=(rebuilt.output_mtime_ns, rebuilt.output_mtime_ns))
    assert story.hasher.sha256(story.path(IMAGE)) == rebuilt.output_sha256


def test_noting_a_build_before_the_records_were_read_leaves_them_to_the_store(story: Story) -> None:
    rebuilt = story.record(IMAGE, published=False)
    story.gatherer.note_built(rebuilt)
    assert story.status(IMAGE).current  # the store's record, read now, is the published one
    assert story.records.calls == {"all": 1}


# -- what the files say -----------------------------------------------------------------------------------
def test_a_file_whose_size_and_mtime_match_its_record_is_not_read(story: Story) -> None:
    assert story.gatherer.file_hash("s/image.png") == story.records.rows[IMAGE].output_sha256
    assert story.hasher.asked == []


def test_a_file_whose_mtime_changed_is_hashed_again(story: Story) -> None:
    story.write(IMAGE, b"bytes of image:scenelet-1_X")  # same size, new content
    story.touch(IMAGE)
    assert story.gatherer.file_hash("s/image.png") == hashlib.sha256(b"bytes of image:scenelet-1_X").hexdigest()
    assert story.hasher.asked == ["s/image.png"]
    assert story.status(IMAGE).why is Reason.EDITED  # other valid bytes: a hand edit
    story.write(IMAGE, b"garbage")
    story.gatherer.refresh()
    # bytes that are no file of its kind: damaged, and no copy is kept in these fakes
    assert story.status(IMAGE).why is Reason.LOST and story.status(IMAGE).detail["state"] == "damaged (not an image)"


def test_a_file_without_a_producer_is_hashed(story: Story) -> None:
    (story.root / "s" / "loose.png").write_bytes(b"loose")
    assert story.gatherer.file_hash("s/loose.png") == hashlib.sha256(b"loose").hexdigest()
    assert story.hasher.asked == ["s/loose.png"]


@pytest.mark.parametrize("rel", ["s/nothing.png", "s/sheet.png/inside.png"], ids=["missing", "under-a-file"])
def test_a_path_with_no_file_has_no_hash(story: Story, rel: str) -> None:
    assert story.gatherer.file_hash(rel) is None


def test_the_dry_run_overlay_answers_for_planned_renames(story: Story) -> None:
    assert story.gatherer.file_hash("s/renamed.png", {"s/renamed.png": "h-renamed"}) == "h-renamed"
    assert story.gatherer.file_hash("s/sheet.png", {"s/other.png": "h"}) == story.records.rows[SHEET].output_sha256
    assert story.hasher.asked == []


def test_the_dry_run_overlay_answers_for_references_too(story: Story) -> None:
    inputs = story.gatherer.current_inputs(story.targets[IMAGE], {"s/sheet.png": "h-renamed-sheet"})
    assert inputs is not None and inputs["references"] == [["s/sheet.png", "h-renamed-sheet"]]


def test_current_inputs_are_none_while_a_reference_is_not_built(story: Story) -> None:
    sheet = story.records.rows[SHEET].output_sha256
    assert story.gatherer.current_inputs(story.targets[IMAGE]) == {
        "prompt_sha256": "p" * 64, "model": "gemini-3.1-flash-image", "config": {"aspect_ratio": "16:9"},
        "provider": PROVIDER, "references": [["s/sheet.png", sheet]]}
    story.path(SHEET).unlink()
    assert story.gatherer.current_inputs(story.targets[IMAGE]) is None
    assert story.gatherer.current_inputs(story.targets[IMAGE], unknown_ok=frozenset({"s/sheet.png"}))[
        "references"] == [["s/sheet.png", None]]
    story.gatherer.refresh()
    assert story.status(IMAGE) == Status(Reason.REFERENCES_NOT_BUILT)


def test_a_download_made_before_its_references_needs_none_of_them(story: Story) -> None:
    unknown = story.inputs(VIDEO)
    unknown = {**unknown, "references": [[path, None] for path, _ in unknown["references"]]}
    story.records.rows[VIDEO] = story.record(VIDEO, inputs=unknown, signature=signature_of(unknown))
    story.path(SHEET).unlink()
    story.path(IMAGE).unlink()
    assert story.status(VIDEO) == Status(Reason.UP_TO_DATE, unknown_references=("s/sheet.png", "s/image.png"))


# -- who asks ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("built_by", "why"), [("box-b:/home/ann/project", Reason.BUILT_ELSEWHERE),
                                              (HERE, Reason.LOST)])
def test_a_record_of_another_checkout_without_its_file_is_built_elsewhere(story: Story, built_by: str,
                                                                          why: Reason) -> None:
    story.records.rows[IMAGE] = story.record(IMAGE, built_by=built_by)
    story.path(IMAGE).unlink()
    assert story.status(IMAGE).why is why


def test_the_facts_carry_who_asks_and_the_latest_rejection(story: Story) -> None:
    story.rejected[IMAGE] = Rejection(story.records.rows[IMAGE].output_sha256, "too dark")
    gatherer = story.new_gatherer(Asker("box-c:/p", "box-c:/p (pid 9)", adopt_existing=False))
    facts = gatherer.facts(IMAGE)
    assert (facts.story_id, facts.task, facts.checkout, facts.adopt_existing) == (STORY, IMAGE, "box-c:/p", False)
    assert facts.rejection == story.rejected[IMAGE] and facts.claim is None
    assert gatherer.facts(SHEET).rejection is None
    assert gatherer.status(IMAGE) == Status(Reason.REJECTED, {"note": ": too dark"})


def test_the_facts_of_a_recorded_file_ask_nothing_about_its_provenance(story: Story,
                                                                       provenance_reads: list[str]) -> None:
    facts = story.gatherer.facts(IMAGE)
    assert facts.provenance == {} and facts.points_here is False and facts.inputs is not None
    assert provenance_reads == [] and story.points_here == []
