"""core/status.py, every paid result kept: a missing or damaged file is restored (local, then remote), a teammate's
file pulled, no copy anywhere blocks, a valid edit is kept, a paid file survives another provider's build."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from storytree_build.core.plan import Action, make_plan
from storytree_build.core.status import Reason, Status, TargetFacts, decide, signature_of

STORY = "story-1"
TASK = "ref:character.wren.character-model-sheet-1"
HERE = "host:/here"
REMOTE = "s3://team/objects"
OUT = "a" * 64


def inputs(**changes: Any) -> dict[str, Any]:
    return {"prompt_sha256": "p1", "model": "m1", "config": {}, "provider": "gemini", "references": [], **changes}


@dataclass
class Rec:
    inputs: dict[str, Any] = field(default_factory=inputs)
    output_sha256: str = OUT
    published: bool = True
    built_by: str = HERE
    built_at: str = "2026-12-03T10:00:00+00:00"
    provider: str = "gemini"
    origin: str = "built"
    cost: float | None = 0.067
    pushed_to: str = ""
    signature: str = ""

    def __post_init__(self) -> None:
        self.signature = self.signature or signature_of(self.inputs)


def decided(output: str | None = None, record: Rec | None = None, **facts: Any) -> Status:
    base: dict[str, Any] = {"inputs": inputs(), "checkout": HERE, "provider": "gemini"}
    return decide(TargetFacts(story_id=STORY, task=TASK, output_sha256=output, record=record or Rec(),
                              **{**base, **facts}))


# -- a missing or damaged file comes back for free ----------------------------------------------------------------
def test_a_missing_file_whose_object_is_here_is_restored_from_the_local_objects() -> None:
    status = decided(None, object_local=True)
    assert status.why is Reason.RESTORE and status.restorable and not status.current
    assert status.reason == "file missing: will be restored from the local objects (no cost)"


def test_a_missing_file_on_this_builds_remote_is_restored_from_it() -> None:
    status = decided(None, Rec(pushed_to=REMOTE), remote=REMOTE)
    assert status.why is Reason.RESTORE and status.reason.endswith(f"from the remote {REMOTE} (no cost)")


def test_the_local_copy_is_preferred_to_the_remote() -> None:
    assert "the local objects" in decided(None, Rec(pushed_to=REMOTE), remote=REMOTE, object_local=True).reason


def test_a_damaged_file_is_restored_and_says_why_it_is_damaged() -> None:
    status = decided("b" * 64, damaged="not a valid image (truncated)", object_local=True)
    assert status.why is Reason.RESTORE
    assert status.reason.startswith("file damaged (not a valid image (truncated)): will be restored")


def test_a_teammates_file_on_the_remote_is_pulled_not_built_elsewhere() -> None:
    status = decided(None, Rec(built_by="other:/clone", pushed_to=REMOTE), remote=REMOTE)
    assert status.why is Reason.PULL and status.restorable and not status.elsewhere
    assert status.reason.startswith("built by other:/clone at") and REMOTE in status.reason


def test_a_teammates_file_not_on_the_remote_is_built_elsewhere() -> None:
    for facts in ({"remote": ""}, {"remote": REMOTE}):
        status = decided(None, Rec(built_by="other:/clone", pushed_to=""), **facts)
        assert status.elsewhere and not status.restorable
    other_remote = decided(None, Rec(built_by="other:/clone", pushed_to="file:///elsewhere"), remote=REMOTE)
    assert other_remote.elsewhere  # a record pushed to another remote cannot be pulled from this one


def test_no_copy_anywhere_blocks_and_says_what_to_do() -> None:
    status = decided(None)
    assert status.why is Reason.LOST and status.lost and not status.restorable and not status.current
    assert status.reason == (f"file missing and no copy of {OUT[:12]}… is kept (not in the local objects, not on a "
                             f"remote): `doit -a {TASK}` pays for a new one")
    assert decided("b" * 64, damaged="empty (0 bytes)").lost


def test_a_missing_file_whose_inputs_changed_is_rebuilt_not_restored() -> None:
    status = decided(None, object_local=True, inputs=inputs(prompt_sha256="p2"))
    assert status.why is Reason.INPUTS_CHANGED and status.reason == "prompt changed"
    assert decided(None, inputs=inputs(prompt_sha256="p2")).why is Reason.INPUTS_CHANGED  # not blocked: it is stale


def test_a_missing_file_whose_references_are_not_there_yet_is_still_restorable() -> None:
    assert decided(None, object_local=True, inputs=None).why is Reason.RESTORE


# -- edits and providers --------------------------------------------------------------------------------------------
def test_a_valid_file_with_other_bytes_is_kept_as_an_edit() -> None:
    status = decided("b" * 64)
    assert status.why is Reason.EDITED and not status.current and not status.restorable


@pytest.mark.parametrize(("record", "kept"), [
    (Rec(provider="gemini", cost=0.067), True),  # paid
    (Rec(provider="gemini", cost=None), True),  # recorded before costs were: counted by its provider
    (Rec(provider="stub", cost=0.0), False),  # a placeholder: any provider may replace it
    (Rec(provider="stub", cost=None), False),
    (Rec(provider="stub", cost=0.0, origin="edited"), True),  # a person's retouch
    (Rec(provider="stub", cost=0.0, origin="downloaded"), True),
])
def test_another_providers_build_leaves_a_paid_file_in_place(record: Rec, kept: bool) -> None:
    status = decided(OUT, record, provider="stub" if record.provider == "gemini" else "gemini",
                     inputs=inputs(provider="other"))
    assert (status.why is Reason.KEPT) == kept
    assert status.current == kept
    if kept:
        assert "does not replace it (-a replaces it)" in status.reason


def test_the_same_provider_rebuilds_a_stale_paid_file() -> None:
    assert decided(OUT, Rec(), inputs=inputs(prompt_sha256="p2")).why is Reason.INPUTS_CHANGED


# -- the plan -----------------------------------------------------------------------------------------------------------
def test_the_plan_shows_free_restores_and_edits_blocked_and_kept_files(make_target) -> None:  # noqa: ANN001
    names = ["ref:a", "ref:b", "ref:c", "ref:d", "ref:e"]
    targets = [make_target(n, kind="character_plate", output=f"s/{n}.png") for n in names]
    statuses = [decided(None, object_local=True), decided("b" * 64), decided(None),
                decided(OUT, Rec(), provider="stub"), decided(None, Rec(built_by="x:/y", pushed_to=REMOTE),
                                                              remote=REMOTE)]
    plan = make_plan(STORY, zip(targets, statuses), lambda target: 0.067)
    assert [(i.action, i.cost) for i in plan.items] == [(Action.RESTORE, 0.0), (Action.RECORD, 0.0),
                                                       (Action.BLOCKED, 0.0), (Action.KEEP, 0.0),
                                                       (Action.RESTORE, 0.0)]
    assert plan.total == 0.0 and [i.task for i in plan.blocked] == ["ref:c"] and [i.task for i in plan.kept] == ["ref:d"]
    assert {i.task for i in plan.to_run} == {"ref:a", "ref:b", "ref:e"}
