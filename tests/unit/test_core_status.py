"""core/status.py: signatures, identities and `decide`, the up-to-date decision with its reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from storytree_build.core.manifest import ShotKey, Target
from storytree_build.core.status import (
    Status,
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

    def __post_init__(self) -> None:
        self.signature = self.signature or signature_of(self.inputs)


@dataclass
class FakeOperation:
    state: str
    operation: str | None = "operations/abc"
    submitted_at: str = "2026-11-21T10:00:00+00:00"


class Calls:
    """A `current_inputs` callable that counts its calls."""

    def __init__(self, value: dict[str, Any] | None) -> None:
        self.value, self.count = value, 0

    def __call__(self) -> dict[str, Any] | None:
        self.count += 1
        return self.value


def must_not_be_called() -> dict[str, Any] | None:
    raise AssertionError("current_inputs() was called although the decision did not need it")


# -- decide: every reason, in order of precedence ---------------------------------------------------
def test_submitted_operation_resumes_at_no_new_cost_before_anything_else() -> None:
    status = decide(STORY, TASK, None, None, must_not_be_called, FakeOperation("submitted"))
    assert status == Status(False, "operation operations/abc in flight since 2026-11-21T10:00:00+00:00: "
                                   "will resume (no new cost)")
    assert status.reason.endswith("(no new cost)")
    # even with an up-to-date file and record, an in-flight operation decides
    assert decide(STORY, TASK, OUT, FakeRecord(), must_not_be_called, FakeOperation("submitted")).reason \
        .endswith("will resume (no new cost)")


@pytest.mark.parametrize("state", ["uncertain", "submitting"])
def test_uncertain_submit_is_blocked_until_resubmit(state: str) -> None:
    status = decide(STORY, TASK, OUT, FakeRecord(), must_not_be_called, FakeOperation(state, operation=None))
    assert not status.current and not status.publish_only
    assert status.reason == ("a submit at 2026-11-21T10:00:00+00:00 may have reached the provider: blocked until "
                             f"`storytree resubmit {STORY} {TASK}`")
    assert "no new cost" not in status.reason


def test_missing_output_is_missing_without_hashing_references() -> None:
    assert decide(STORY, TASK, None, FakeRecord(), must_not_be_called) == Status(False, "missing")
    assert decide(STORY, TASK, None, None, must_not_be_called) == Status(False, "missing")


def test_existing_file_without_record_would_be_replaced() -> None:
    status = decide(STORY, TASK, OUT, None, must_not_be_called)
    assert status == Status(False, "no record (an existing file would be replaced)")


def test_output_changed_since_built_wins_over_reference_and_input_changes() -> None:
    status = decide(STORY, TASK, "b" * 64, FakeRecord(), must_not_be_called)
    assert status == Status(False, "output file changed since it was built")


def test_references_not_built_yet_when_current_inputs_is_none() -> None:
    calls = Calls(None)
    assert decide(STORY, TASK, OUT, FakeRecord(published=False), calls) == Status(False, "references not built yet")
    assert calls.count == 1


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
    status = decide(STORY, TASK, OUT, FakeRecord(published=False), Calls(now))
    assert status == Status(False, reason, publish_only=False)


def test_record_provider_is_named_in_provider_change() -> None:
    record = FakeRecord(inputs=inputs(provider="stub"))
    assert decide(STORY, TASK, OUT, record, Calls(inputs(provider="gemini"))).reason == \
        "provider changed (stub → gemini)"


def test_signature_mismatch_without_a_visible_difference_says_inputs_changed() -> None:
    record = FakeRecord(signature="0" * 64)
    assert decide(STORY, TASK, OUT, record, Calls(inputs())).reason == "inputs changed"


def test_built_but_unpublished_is_publish_only() -> None:
    status = decide(STORY, TASK, OUT, FakeRecord(published=False), Calls(inputs()))
    assert status == Status(False, "built but path not yet written to the story database (no cost)", publish_only=True)


def test_up_to_date() -> None:
    calls = Calls(inputs())
    assert decide(STORY, TASK, OUT, FakeRecord(), calls) == Status(True, "up to date", publish_only=False)
    assert calls.count == 1


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
