"""core/status.py: signatures, identities and `decide`, the up-to-date decision with its reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from storytree_build.core.manifest import ShotKey, Target
from storytree_build.core.status import (
    HeldClaim,
    Reason,
    Rejection,
    Status,
    TargetFacts,
    as_recorded,
    content_key,
    decide,
    explain_difference,
    identity_of,
    signature_inputs,
    signature_of,
    unknown_reference_paths,
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


# -- decide as a table: one value in, one decision out --------------------------------------------------
HERE = "box-a:/work/project"
THERE = "box-b:/home/ann/project"
CLAIM = HeldClaim("box-b:/home/ann/project (pid 7)", "2026-12-01T09:00:00+00:00")
CLAIMED = Status(Reason.CLAIMED, {"owner": CLAIM.owner, "claimed_at": CLAIM.claimed_at})
THIS_FILE = Rejection(OUT, "too dark")
REJECTED = Status(Reason.REJECTED, {"note": ": too dark"})
PARTLY_KNOWN = inputs(references=[list(SHEET), [KEYFRAME[0], None]])  # a download made before the keyframe existed


def unbuilt_references(given: TargetFacts) -> TargetFacts:
    """The same facts with a reference file missing (current inputs unknown)."""
    return replace(given, inputs=None)


def carried(**changes: str) -> dict[str, str]:
    """What a PNG storytree made from the current inputs says about itself (building/files.py provenance)."""
    now = inputs()
    said = {"storytree:task": TASK, "storytree:prompt_sha256": now["prompt_sha256"], "storytree:model": now["model"],
            "storytree:provider": now["provider"], "storytree:signature": signature_of(now)}
    return {**said, **{f"storytree:{key}": value for key, value in changes.items()}}


@pytest.mark.parametrize(("given", "expected"), [
    # another worker's live claim: a reason to wait (no new cost) whenever the target is not current
    pytest.param(facts(None, None, claim=CLAIM), CLAIMED, id="missing-and-claimed"),
    pytest.param(facts(OUT, FakeRecord(), claim=CLAIM), Status(Reason.UP_TO_DATE), id="current-ignores-a-claim"),
    pytest.param(facts(OUT, FakeRecord(published=False), claim=CLAIM), CLAIMED, id="publish-only-and-claimed"),
    pytest.param(facts(OUT, None, claim=CLAIM), CLAIMED, id="unrecorded-and-claimed"),
    pytest.param(facts(OUT, FakeRecord(), inputs(prompt_sha256="p2"), claim=CLAIM), CLAIMED, id="stale-and-claimed"),
    pytest.param(facts(None, None, operation=FakeOperation("submitted"), claim=CLAIM), CLAIMED,
                 id="in-flight-and-claimed"),
    pytest.param(facts(OUT, FakeRecord(), claim=CLAIM, rejection=THIS_FILE), CLAIMED, id="rejected-and-claimed"),
    # a reviewer's rejection of this very file: not current any more
    pytest.param(facts(OUT, FakeRecord(), rejection=THIS_FILE), REJECTED, id="rejected"),
    pytest.param(facts(OUT, FakeRecord(published=False), rejection=THIS_FILE), REJECTED, id="publish-only-rejected"),
    pytest.param(facts(OUT, FakeRecord(), rejection=Rejection(OUT)), Status(Reason.REJECTED, {"note": ""}),
                 id="rejected-without-a-note"),
    pytest.param(facts(OUT, FakeRecord(), rejection=Rejection("b" * 64, "too dark")), Status(Reason.UP_TO_DATE),
                 id="an-earlier-file-was-rejected"),
    pytest.param(facts(None, FakeRecord(), rejection=THIS_FILE), Status(Reason.LOST, {"file": "file", "state": "missing", "sha256": OUT[:12] + "…", "task": TASK}), id="rejected-file-gone"),
    pytest.param(facts(OUT, FakeRecord(), inputs(prompt_sha256="p2"), rejection=THIS_FILE),
                 Status(Reason.INPUTS_CHANGED, {"difference": "prompt changed"}), id="rejected-and-stale"),
    # a record without its file: built by another checkout (never paid again here) or lost here (blocked: no copy)
    pytest.param(facts(None, FakeRecord(built_by=THERE), checkout=HERE),
                 Status(Reason.BUILT_ELSEWHERE, {"built_by": THERE, "built_at": "2026-11-29T10:00:00+00:00"}),
                 id="built-elsewhere"),
    pytest.param(facts(None, FakeRecord(built_by=HERE), checkout=HERE), Status(Reason.LOST, {"file": "file", "state": "missing", "sha256": OUT[:12] + "…", "task": TASK}), id="lost-here"),
    pytest.param(facts(None, FakeRecord(built_by=""), checkout=HERE), Status(Reason.LOST, {"file": "file", "state": "missing", "sha256": OUT[:12] + "…", "task": TASK}),
                 id="record-of-an-older-version"),
    pytest.param(facts(None, FakeRecord(built_by=THERE), checkout=HERE, claim=CLAIM), CLAIMED,
                 id="built-elsewhere-and-claimed"),
    # a record that never knew some reference hashes (a downloaded video): building them later changes nothing
    pytest.param(facts(OUT, FakeRecord(inputs=PARTLY_KNOWN), inputs()),
                 Status(Reason.UP_TO_DATE, unknown_references=(KEYFRAME[0],)), id="unknown-reference-built-later"),
    pytest.param(facts(OUT, FakeRecord(inputs=PARTLY_KNOWN), PARTLY_KNOWN),
                 Status(Reason.UP_TO_DATE, unknown_references=(KEYFRAME[0],)), id="unknown-reference-still-missing"),
    pytest.param(facts(OUT, FakeRecord(inputs=PARTLY_KNOWN, published=False), inputs()),
                 Status(Reason.PUBLISH_ONLY, unknown_references=(KEYFRAME[0],)), id="unknown-reference-publish-only"),
    # a file without a record: storytree's own (its provenance says so), the original system's, or unknown
    pytest.param(facts(OUT, None, provenance=carried()), Status(Reason.SAVED_UNRECORDED), id="saved-unrecorded"),
    pytest.param(facts(OUT, None, provenance=carried(), adopt_existing=False, points_here=False),
                 Status(Reason.SAVED_UNRECORDED), id="saved-unrecorded-without-adoption"),
    pytest.param(unbuilt_references(facts(OUT, None, provenance=carried())), Status(Reason.REFERENCES_NOT_BUILT),
                 id="saved-unrecorded-references-missing"),
    pytest.param(facts(OUT, None, provenance=carried(prompt_sha256="p0", signature="s0")),
                 Status(Reason.INPUTS_CHANGED, {"difference": "prompt changed"}), id="provenance-older-prompt"),
    pytest.param(facts(OUT, None, provenance=carried(model="m0", signature="s0")),
                 Status(Reason.INPUTS_CHANGED, {"difference": "model/config changed"}), id="provenance-older-model"),
    pytest.param(facts(OUT, None, provenance=carried(provider="stub", signature="s0")),
                 Status(Reason.INPUTS_CHANGED, {"difference": "provider changed (stub → gemini)"}),
                 id="provenance-other-provider"),
    pytest.param(facts(OUT, None, provenance=carried(signature="s0"), points_here=True),
                 Status(Reason.MADE_FROM_OTHER_INPUTS), id="provenance-other-references-or-config"),
    pytest.param(facts(OUT, None, provenance={"storytree:task": TASK}, points_here=True), Status(Reason.ADOPTABLE),
                 id="provenance-saying-only-its-task"),
    pytest.param(facts(OUT, None, provenance={"storytree:task": TASK}), Status(Reason.UNRECORDED),
                 id="provenance-saying-only-its-task-not-pointed-at"),
    pytest.param(facts(OUT, None, provenance=carried(task="image:scenelet-9_9"), points_here=True),
                 Status(Reason.ADOPTABLE), id="provenance-of-another-target-pointed-at"),
    pytest.param(facts(OUT, None, provenance=carried(task="image:scenelet-9_9")), Status(Reason.UNRECORDED),
                 id="provenance-of-another-target"),
    pytest.param(facts(OUT, None, points_here=True), Status(Reason.ADOPTABLE), id="original-system-file"),
    pytest.param(facts(OUT, None, points_here=True, adopt_existing=False), Status(Reason.UNRECORDED),
                 id="original-system-file-adoption-off"),
    # adopted with the inputs it has now, so they must all be known: its references first (was an assertion error)
    pytest.param(unbuilt_references(facts(OUT, None, points_here=True)), Status(Reason.REFERENCES_NOT_BUILT),
                 id="original-system-file-references-missing"),
])
def test_decide(given: TargetFacts, expected: Status) -> None:
    assert decide(given) == expected


STALE_BESIDE_AN_UNKNOWN_REFERENCE = [
    pytest.param(inputs(references=[[SHEET[0], "h2"], list(KEYFRAME)]), f"references changed: {SHEET[0]}",
                 id="a-known-reference-changed"),
    pytest.param(inputs(prompt_sha256="p2"), "prompt changed", id="prompt-changed"),
]


@pytest.mark.parametrize(("now", "words"), STALE_BESIDE_AN_UNKNOWN_REFERENCE)
def test_a_change_beside_an_unknown_reference_is_stale(now: dict[str, Any], words: str) -> None:
    status = status_of(OUT, FakeRecord(inputs=PARTLY_KNOWN), now)
    assert status.why is Reason.INPUTS_CHANGED and words in status.reason


@pytest.mark.parametrize(("now", "words"), STALE_BESIDE_AN_UNKNOWN_REFERENCE)
def test_a_reference_the_record_never_knew_is_not_named_as_changed(now: dict[str, Any], words: str) -> None:
    assert status_of(OUT, FakeRecord(inputs=PARTLY_KNOWN), now).reason == words


# -- what each decision means for the build -----------------------------------------------------------
FLAGS = ("current", "publish_only", "adoptable", "elsewhere", "restorable", "lost", "costs_nothing_new")


@pytest.mark.parametrize(("why", "flags"), [
    (Reason.UP_TO_DATE, {"current"}),
    (Reason.PUBLISH_ONLY, {"publish_only"}),
    (Reason.SAVED_UNRECORDED, {"adoptable"}),
    (Reason.ADOPTABLE, {"adoptable"}),
    (Reason.BUILT_ELSEWHERE, {"elsewhere"}),
    (Reason.CLAIMED, {"costs_nothing_new"}),
    (Reason.IN_FLIGHT, {"costs_nothing_new"}),
    (Reason.RESTORE, {"restorable"}),
    (Reason.PULL, {"restorable"}),
    (Reason.LOST, {"lost"}),
    (Reason.KEPT, {"current"}),
    (Reason.STALE_KEPT, {"current"}),
    *[(why, set()) for why in (Reason.MISSING, Reason.UNRECORDED, Reason.INVALID_FILE, Reason.EDITED, Reason.REFERENCES_NOT_BUILT,
                               Reason.INPUTS_CHANGED, Reason.MADE_FROM_OTHER_INPUTS, Reason.REJECTED,
                               Reason.SUBMIT_UNCERTAIN)],
])
def test_what_a_reason_means(why: Reason, flags: set[str]) -> None:
    status = Status(why, {"owner": "w"})
    seen = {flag for flag in FLAGS if (getattr(status.why, flag) if flag == "costs_nothing_new"
                                       else getattr(status, flag))}
    assert seen == flags
    assert status.claimed_by == ("w" if why is Reason.CLAIMED else None)


def test_every_reason_is_in_the_table() -> None:
    table = test_what_a_reason_means.pytestmark[0].args[1]
    assert {why for why, _ in table} == set(Reason)


@pytest.mark.parametrize(("status", "words"), [
    (CLAIMED, "being built by box-b:/home/ann/project (pid 7) since 2026-12-01T09:00:00+00:00: this build would wait "
              "for it (no new cost)"),
    (REJECTED, "rejected in review: too dark"),
    (Status(Reason.REJECTED, {"note": ""}), "rejected in review"),
    (Status(Reason.BUILT_ELSEWHERE, {"built_by": THERE, "built_at": "2026-11-29T10:00:00+00:00"}),
     "built elsewhere by box-b:/home/ann/project at 2026-11-29T10:00:00+00:00 and not on this build's remote yet: run "
     "`storytree push` there, or force a rebuild here with -a"),
    (Status(Reason.SAVED_UNRECORDED), "saved earlier but not recorded: will be recorded (no cost)"),
    (Status(Reason.MADE_FROM_OTHER_INPUTS), "references or config changed since the file was made"),
    (Status(Reason.ADOPTABLE), "an existing file the story database points at, without a record: will be adopted "
                               "(no cost)"),
    (Status(Reason.INPUTS_CHANGED, {"difference": "prompt changed"}), "prompt changed"),
])
def test_reason_words(status: Status, words: str) -> None:
    assert status.reason == words


# -- unknown reference hashes ---------------------------------------------------------------------------
def test_unknown_reference_paths_are_those_recorded_without_a_hash() -> None:
    assert unknown_reference_paths(PARTLY_KNOWN) == {KEYFRAME[0]}
    assert unknown_reference_paths(inputs()) == frozenset()
    assert unknown_reference_paths({"prompt_sha256": "p1"}) == frozenset()  # a record without references
    assert unknown_reference_paths({"references": None}) == frozenset()


def test_as_recorded_forgets_only_the_hashes_the_record_never_knew() -> None:
    assert as_recorded(inputs(), PARTLY_KNOWN) == PARTLY_KNOWN
    changed = inputs(references=[[SHEET[0], "h2"], list(KEYFRAME)])
    assert as_recorded(changed, PARTLY_KNOWN) == inputs(references=[[SHEET[0], "h2"], [KEYFRAME[0], None]])
    # a reference added since keeps its hash
    added = inputs(references=[list(SHEET), list(KEYFRAME), ["new.png", "h-new"]])
    assert as_recorded(added, PARTLY_KNOWN)["references"] == [list(SHEET), [KEYFRAME[0], None], ["new.png", "h-new"]]


@pytest.mark.parametrize("current", [inputs(), {"prompt_sha256": "p1", "model": "m1"}],
                         ids=["with-references", "without-references"])
def test_as_recorded_leaves_inputs_alone_when_the_record_knew_every_hash(current: dict[str, Any]) -> None:
    assert as_recorded(current, inputs()) == current
    assert signature_of(as_recorded(current, inputs())) == signature_of(current)


def test_content_key_of_inputs_without_references() -> None:
    bare = {"prompt_sha256": "p1", "model": "m1"}
    assert content_key(bare) == content_key({**bare, "references": []})
