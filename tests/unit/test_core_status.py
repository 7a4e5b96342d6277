"""core/status.py: signatures, identities and `decide`, the up-to-date decision with its reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from storytree_build.core.manifest import ShotKey, Target
from storytree_build.core.status import (
    Reason,
    Status,
    TargetFacts,
    content_key,
    decide,
    explain_difference,
    identity_of,
    signature_inputs,
    signature_of,
)

STORY = "story-1"
TASK = "video:scenelet-2_1"
OUT = "a" * 64
SHEET = ["s/visuals/characters/wren/character-model-sheet-1.png", "h-sheet"]
KEYFRAME = ["s/visuals/environments/gorge/keyframe_1.png", "h-gorge"]


def inputs(**changes: Any) -> dict[str, Any]:
    base = {"prompt_sha256": "p1", "model": "m1", "config": {"aspect_ratio": "16:9", "resolution": "1080p"},
            "provider": "gemini", "references": [list(SHEET), list(KEYFRAME)]}
    return {**base, **changes}


@dataclass
class FakeRecord:
    inputs: dict[str, Any] = field(default_factory=inputs)
    output_sha256: str = OUT
    published: bool = True
    signature: str = ""
    built_by: str = ""
    built_at: str = "2026-11-29T10:00:00+00:00"
    provider: str = "gemini"
    origin: str = "built"
    cost: float | None = 0.067
    pushed_to: str = ""

    def __post_init__(self) -> None:
        self.signature = self.signature or signature_of(self.inputs)


@dataclass
class FakeOperation:
    state: str
    operation: str | None = "operations/abc"
    submitted_at: str = "2026-11-21T10:00:00+00:00"


def facts(output: str | None = OUT, record: FakeRecord | None = None, now: dict[str, Any] | None = None,
          **more: Any) -> TargetFacts:
    """The facts of TASK: its file, record and current inputs (default: unchanged), anything else by keyword."""
    return TargetFacts(story_id=STORY, task=TASK, output_sha256=output, record=record, inputs=inputs() if now is None else now, **more)


def status_of(output: str | None = OUT, record: FakeRecord | None = None, now: dict[str, Any] | None = None,
              **more: Any) -> Status:
    return decide(facts(output, record, now, **more))


# -- decide: every reason, in order of precedence ---------------------------------------------------
def test_submitted_operation_resumes_at_no_new_cost_before_anything_else() -> None:
    status = status_of(None, None, operation=FakeOperation("submitted"))
    assert status == Status(Reason.IN_FLIGHT, {"operation": "operations/abc",
                                               "submitted_at": "2026-11-21T10:00:00+00:00"})
    assert status.reason == "operation operations/abc in flight since 2026-11-21T10:00:00+00:00: will resume (no new cost)"
    assert status.why.costs_nothing_new
    # even with an up-to-date file and record, an in-flight operation decides
    assert status_of(OUT, FakeRecord(), operation=FakeOperation("submitted")).why is Reason.IN_FLIGHT


@pytest.mark.parametrize("state", ["uncertain", "submitting"])
def test_uncertain_submit_is_blocked_until_resubmit(state: str) -> None:
    status = status_of(OUT, FakeRecord(), operation=FakeOperation(state, operation=None))
    assert not status.current and not status.publish_only and not status.why.costs_nothing_new
    assert status.reason == ("a submit at 2026-11-21T10:00:00+00:00 may have reached the provider: blocked until "
                             f"`storytree resubmit {STORY} {TASK}`")


def test_missing_output_is_missing() -> None:
    assert status_of(None, None, None) == Status(Reason.MISSING)
    assert status_of(None, None, None).reason == "missing"


def test_existing_file_without_record_would_be_replaced() -> None:
    status = status_of(OUT, None)
    assert status == Status(Reason.UNRECORDED)
    assert status.reason == "no record (an existing file would be replaced)"


def test_a_valid_file_with_other_bytes_is_a_hand_edit_whatever_else_changed() -> None:
    status = status_of("b" * 64, FakeRecord(), inputs(prompt_sha256="p2"))
    assert status.why is Reason.EDITED and not status.current


def test_references_not_built_yet_when_current_inputs_is_none() -> None:
    status = decide(TargetFacts(story_id=STORY, task=TASK, output_sha256=OUT, record=FakeRecord(published=False), inputs=None))
    assert status == Status(Reason.REFERENCES_NOT_BUILT) and status.reason == "references not built yet"


@pytest.mark.parametrize(("now", "reason"), [
    (inputs(prompt_sha256="p2"), "prompt changed"),
    (inputs(references=[list(SHEET), [KEYFRAME[0], "h-gorge-2"]]), f"references changed: {KEYFRAME[0]}"),
    (inputs(references=[[SHEET[0], "x"], [KEYFRAME[0], "y"]]), f"references changed: {SHEET[0]}, {KEYFRAME[0]}"),
    (inputs(references=[list(KEYFRAME), list(SHEET)]), "reference list changed"),
    (inputs(references=[list(SHEET)]), "reference list changed"),
    (inputs(model="m2"), "model/config changed"),
    (inputs(config={"aspect_ratio": "9:16", "resolution": "1080p"}), "model/config changed"),
    (inputs(provider="stub"), "provider changed (gemini → stub)"),
    (inputs(prompt_sha256="p2", model="m2", provider="stub"),
     "prompt changed; model/config changed; provider changed (gemini → stub)"),
])
def test_changed_inputs_are_explained(now: dict[str, Any], reason: str) -> None:
    # published=False: an input change must win over publish-only
    status = status_of(OUT, FakeRecord(published=False), now)
    assert status.why is Reason.INPUTS_CHANGED and status.reason == reason and not status.publish_only


def test_record_provider_is_named_in_provider_change() -> None:
    record = FakeRecord(inputs=inputs(provider="stub"))
    assert status_of(OUT, record, inputs(provider="gemini")).reason == "provider changed (stub → gemini)"


def test_signature_mismatch_without_a_visible_difference_says_inputs_changed() -> None:
    record = FakeRecord(signature="0" * 64)
    assert status_of(OUT, record).reason == "inputs changed"


def test_built_but_unpublished_is_publish_only() -> None:
    status = status_of(OUT, FakeRecord(published=False))
    assert status == Status(Reason.PUBLISH_ONLY) and status.publish_only and not status.current
    assert status.reason == "built but path not yet written to the story database (no cost)"


def test_up_to_date() -> None:
    status = status_of(OUT, FakeRecord())
    assert status == Status(Reason.UP_TO_DATE) and status.current and not status.publish_only
    assert status.reason == "up to date"


def test_explain_difference_reads_records_written_without_some_keys() -> None:
    old = {"prompt_sha256": "p1", "references": []}
    assert explain_difference(old, inputs(prompt_sha256="p1", references=[])) == \
        "model/config changed; provider changed (None → gemini)"
    assert explain_difference({"prompt_sha256": "p1"}, inputs()) == \
        "reference list changed; model/config changed; provider changed (None → gemini)"


def test_explain_difference_without_old_references_for_a_target_without_references() -> None:
    assert explain_difference({"prompt_sha256": "p1"}, inputs(references=[])) == \
        "model/config changed; provider changed (None → gemini)"


# -- signatures, content keys and identities --------------------------------------------------------
def test_signature_of_is_stable_under_dict_key_order() -> None:
    a = inputs()
    b = {k: a[k] for k in reversed(list(a))}
    b["config"] = {"resolution": "1080p", "aspect_ratio": "16:9"}
    assert list(a) != list(b)
    assert signature_of(a) == signature_of(b)
    assert len(signature_of(a)) == 64 and int(signature_of(a), 16) >= 0


@pytest.mark.parametrize("change", [
    {"prompt_sha256": "p2"}, {"model": "m2"}, {"config": {"aspect_ratio": "16:9"}}, {"provider": "stub"},
    {"references": [list(KEYFRAME), list(SHEET)]}, {"references": [[SHEET[0], "h2"], list(KEYFRAME)]},
])
def test_signature_of_changes_with_every_input(change: dict[str, Any]) -> None:
    assert signature_of(inputs(**change)) != signature_of(inputs())


def test_signature_inputs_collects_what_decides_a_paid_call(make_target: Callable[..., Target]) -> None:
    target = make_target("image:scenelet-1_1", prompt_sha256="abc", model="m", config={"k": 1})
    assert signature_inputs(target, "gemini", [["r", "h"]]) == {
        "prompt_sha256": "abc", "model": "m", "config": {"k": 1}, "provider": "gemini", "references": [["r", "h"]]}


def test_content_key_ignores_reference_paths_but_not_their_hashes() -> None:
    renamed = inputs(references=[["s/visuals/characters/wren/other-name.png", SHEET[1]], list(KEYFRAME)])
    assert signature_of(renamed) != signature_of(inputs())  # the signature does see the path ...
    assert content_key(renamed) == content_key(inputs())  # ... the content key does not
    rehashed = inputs(references=[[SHEET[0], "h-sheet-2"], list(KEYFRAME)])
    assert content_key(rehashed) != content_key(inputs())
    assert content_key(inputs(references=[list(KEYFRAME), list(SHEET)])) != content_key(inputs())  # order matters
    assert content_key(inputs(prompt_sha256="p2")) != content_key(inputs())


def test_identity_of_shots_follows_the_scenelet_uuid_and_index(make_target: Callable[..., Target]) -> None:
    shot = ShotKey(scenelet_id="scenelet-2", shot_index=1, scenelet_ref="uuid-2")
    image = make_target("image:scenelet-2_1", kind="key_frame", shot=shot)
    renamed = make_target("image:scenelet-3_1", kind="key_frame", output="elsewhere.png",
                          shot=ShotKey(scenelet_id="scenelet-3", shot_index=1, scenelet_ref="uuid-2"))
    video = make_target("video:scenelet-2_1", kind="video", shot=shot)
    other_index = make_target("image:scenelet-2_2", kind="key_frame",
                              shot=ShotKey(scenelet_id="scenelet-2", shot_index=2, scenelet_ref="uuid-2"))
    assert identity_of(image) == "key_frame|uuid-2|1"
    assert identity_of(renamed) == identity_of(image)  # a relabelled scenelet keeps its shots' identities
    assert identity_of(video) == "video|uuid-2|1" != identity_of(image)
    assert identity_of(other_index) != identity_of(image)


def test_identity_of_references_is_their_task_name(make_target: Callable[..., Target]) -> None:
    plate = make_target("ref:character.wren.character-model-sheet-1", kind="character_plate")
    keyframe = make_target("ref:environment.gorge.keyframe_1", kind="environment_keyframe")
    assert identity_of(plate) == "character_plate|ref:character.wren.character-model-sheet-1"
    assert identity_of(keyframe) == "environment_keyframe|ref:environment.gorge.keyframe_1"
