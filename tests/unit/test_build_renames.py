"""building/renames.py `planned_moves`: records whose target now has another name (pure over the loaded records)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from storytree_build.store.build_state import Record
from storytree_build.building.renames import Move, planned_moves
from storytree_build.core.manifest import Manifest, ShotKey, Target
from storytree_build.core.status import identity_of

STORY = "story-1"


class FakeFacts:
    """The one thing planned_moves asks of a FactGatherer."""

    def __init__(self, *records: Record) -> None:
        self.loaded = {r.task: r for r in records}
        self.calls = 0

    def records(self) -> dict[str, Record]:
        self.calls += 1
        return self.loaded


def record(task: str, output: str, identity: str) -> Record:
    return Record(story_id=STORY, task=task, output=output, signature="sig", inputs={}, output_sha256="0" * 64,
                  output_size=1, output_mtime_ns=1, provider="stub", model="m", prompt_sha256="p",
                  built_at="2026-11-21T10:00:00+00:00", published=True, identity=identity)


@pytest.fixture
def shot_target(make_target: Callable[..., Target]) -> Callable[[str, str, int, str], Target]:
    def make(kind: str, scenelet_id: str, n: int, scenelet_ref: str) -> Target:
        stage, ext = ("image", "_key_frame.png") if kind == "key_frame" else ("video", ".mp4")
        return make_target(f"{stage}:{scenelet_id}_{n}", kind=kind, output=f"{STORY}/shots/{scenelet_id}/shot-{n}{ext}",
                           shot=ShotKey(scenelet_id=scenelet_id, shot_index=n, scenelet_ref=scenelet_ref))
    return make


def manifest_of(*targets: Target) -> Manifest:
    return Manifest(story_id=STORY, display_name="Story", targets=list(targets))


def test_a_recorded_shot_whose_scenelet_was_relabelled_moves_to_its_new_name(shot_target) -> None:  # noqa: ANN001
    new = shot_target("key_frame", "scenelet-4", 1, "uuid-a")
    old = record("image:scenelet-3_1", f"{STORY}/shots/scenelet-3/shot-1_key_frame.png", "key_frame|uuid-a|1")
    assert identity_of(new) == old.identity
    assert planned_moves(manifest_of(new), FakeFacts(old)) == [
        Move(old_task="image:scenelet-3_1", new_task="image:scenelet-4_1",
             old_output=f"{STORY}/shots/scenelet-3/shot-1_key_frame.png",
             new_output=f"{STORY}/shots/scenelet-4/shot-1_key_frame.png")]


def test_a_record_under_its_current_name_does_not_move(shot_target) -> None:  # noqa: ANN001
    target = shot_target("video", "scenelet-3", 2, "uuid-a")
    rec = record(target.task, target.output, identity_of(target))
    assert planned_moves(manifest_of(target), FakeFacts(rec)) == []


def test_records_of_unknown_or_no_identity_do_not_move(shot_target, make_target) -> None:  # noqa: ANN001
    target = shot_target("key_frame", "scenelet-4", 1, "uuid-a")
    plate = make_target("ref:character.wren.character-model-sheet-1", kind="character_plate", output="p.png")
    checker = FakeFacts(
        record("image:scenelet-3_1", "old.png", "key_frame|uuid-gone|1"),  # a shot no longer in the story
        record("image:scenelet-3_2", "old2.png", "key_frame|uuid-a|2"),  # same scenelet, other index
        record("video:scenelet-3_1", "old3.mp4", "video|uuid-b|1"),  # same index, other scenelet
        record("image:scenelet-9_1", "old4.png", ""),  # written before identities existed
        record("ref:character.rhea.character-model-sheet-1", "old5.png",
               "character_plate|ref:character.rhea.character-model-sheet-1"),
    )
    assert planned_moves(manifest_of(target, plate), checker) == []


def test_kind_is_part_of_the_identity(shot_target) -> None:  # noqa: ANN001
    video = shot_target("video", "scenelet-4", 1, "uuid-a")
    checker = FakeFacts(record("image:scenelet-3_1", "old.png", "key_frame|uuid-a|1"))
    assert planned_moves(manifest_of(video), checker) == []


def test_moves_are_sorted_by_new_task_and_chains_are_all_listed(shot_target) -> None:  # noqa: ANN001
    # scenelet-3 → scenelet-4 while scenelet-4 → scenelet-5 (a branch was inserted before both)
    targets = [shot_target("video", "scenelet-5", 1, "uuid-b"), shot_target("key_frame", "scenelet-5", 1, "uuid-b"),
               shot_target("video", "scenelet-4", 1, "uuid-a"), shot_target("key_frame", "scenelet-4", 1, "uuid-a")]
    checker = FakeFacts(
        record("video:scenelet-4_1", "v4", "video|uuid-b|1"),
        record("image:scenelet-3_1", "i3", "key_frame|uuid-a|1"),
        record("video:scenelet-3_1", "v3", "video|uuid-a|1"),
        record("image:scenelet-4_1", "i4", "key_frame|uuid-b|1"),
    )
    moves = planned_moves(manifest_of(*targets), checker)
    assert [(m.old_task, m.new_task) for m in moves] == [
        ("image:scenelet-3_1", "image:scenelet-4_1"),
        ("image:scenelet-4_1", "image:scenelet-5_1"),
        ("video:scenelet-3_1", "video:scenelet-4_1"),
        ("video:scenelet-4_1", "video:scenelet-5_1"),
    ]
    assert [m.new_output for m in moves] == [f"{STORY}/shots/scenelet-4/shot-1_key_frame.png",
                                             f"{STORY}/shots/scenelet-5/shot-1_key_frame.png",
                                             f"{STORY}/shots/scenelet-4/shot-1.mp4",
                                             f"{STORY}/shots/scenelet-5/shot-1.mp4"]
    assert [m.old_output for m in moves] == ["i3", "i4", "v3", "v4"]
    assert checker.calls == 1  # one pass over the already loaded records


def test_moves_are_sorted_by_new_task_not_by_old_task(shot_target) -> None:  # noqa: ANN001
    targets = [shot_target("key_frame", "scenelet-1", 1, "uuid-x"), shot_target("key_frame", "scenelet-8", 1, "uuid-y")]
    checker = FakeFacts(record("image:scenelet-2_1", "y", "key_frame|uuid-y|1"),
                          record("image:scenelet-9_1", "x", "key_frame|uuid-x|1"))
    moves = planned_moves(manifest_of(*targets), checker)
    assert [(m.old_task, m.new_task) for m in moves] == [("image:scenelet-9_1", "image:scenelet-1_1"),
                                                         ("image:scenelet-2_1", "image:scenelet-8_1")]
