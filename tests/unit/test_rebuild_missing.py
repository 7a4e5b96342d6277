"""rebuild=missing (the briefs' "default (skip if exists)") and the cascade a rebuild sets off: pure decisions.

A file at the target path stays when only its inputs changed; a missing, damaged, invalid or rejected one is still
built; the plan lists the stale ones with what bringing them up to date costs, and what a rebuild puts out of date
is counted before anything is paid."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from storytree_build.core.manifest import Target
from storytree_build.core.plan import Action, cascade, make_plan
from storytree_build.core.status import Reason, Rejection, Status, TargetFacts, decide, signature_of

STORY = "story-1"
TASK = "image:scenelet-1_1"
HERE = "host:/here"
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


def decided(output: str | None, record: Rec | None, keep_stale: bool, **facts: Any) -> Status:
    base: dict[str, Any] = {"inputs": inputs(prompt_sha256="p2"), "checkout": HERE, "provider": "gemini"}
    return decide(TargetFacts(story_id=STORY, task=TASK, output_sha256=output, record=record, keep_stale=keep_stale,
                              **{**base, **facts}))


# -- the decision -------------------------------------------------------------------------------------------------
def test_a_file_whose_prompt_changed_stays_and_says_why_it_is_stale() -> None:
    assert decided(OUT, Rec(), keep_stale=False).why is Reason.INPUTS_CHANGED
    status = decided(OUT, Rec(), keep_stale=True)
    assert status.why is Reason.STALE_KEPT and status.current
    assert status.reason == ("out of date (prompt changed) but kept: rebuild=missing builds only missing files "
                             "(-a replaces it)")


def test_a_file_without_a_record_stays() -> None:
    assert decided("b" * 64, None, keep_stale=True).why is Reason.STALE_KEPT


@pytest.mark.parametrize(("output", "record", "facts", "why"), [
    pytest.param(None, None, {}, Reason.MISSING, id="never-built"),
    pytest.param(None, Rec(), {}, Reason.INPUTS_CHANGED, id="recorded-file-gone-no-copy"),
    pytest.param("b" * 64, Rec(), {"damaged": "truncated PNG"}, Reason.INPUTS_CHANGED, id="damaged"),
    pytest.param("b" * 64, None, {"damaged": "empty file"}, Reason.INVALID_FILE, id="invalid-unrecorded"),
    pytest.param(OUT, Rec(), {"inputs": inputs(), "rejection": Rejection(OUT, "too dark")}, Reason.REJECTED,
                 id="rejected"),
])
def test_what_is_missing_invalid_or_rejected_is_still_built(output: str | None, record: Rec | None,
                                                             facts: dict[str, Any], why: Reason) -> None:
    status = decided(output, record, keep_stale=True, **facts)
    assert status.why is why and not status.current


def test_a_missing_file_whose_old_copy_is_kept_is_restored_not_paid_for() -> None:
    assert decided(None, Rec(), keep_stale=False, object_local=True).why is Reason.INPUTS_CHANGED
    assert decided(None, Rec(), keep_stale=True, object_local=True).why is Reason.RESTORE


# -- the plan -----------------------------------------------------------------------------------------------------
def chain(make_target: Callable[..., Target]) -> dict[str, Target]:
    """A model sheet used by two key frames, each used by its video."""
    sheet = make_target("ref:wren", kind="character_plate", output="s/wren.png")
    frames = [make_target(f"image:scenelet-1_{n}", output=f"s/kf{n}.png", depends_on=["ref:wren"]) for n in (1, 2)]
    videos = [make_target(f"video:scenelet-1_{n}", kind="video", output=f"s/v{n}.mp4",
                          depends_on=[f"image:scenelet-1_{n}"]) for n in (1, 2)]
    return {t.task: t for t in [sheet, *frames, *videos]}


PRICE = {"character_plate": 0.067, "key_frame": 0.067, "video": 3.2}


def price(target: Target) -> float:
    return PRICE[target.kind]


def test_a_changed_sheet_under_rebuild_missing_keeps_what_uses_it(make_target) -> None:  # noqa: ANN001
    targets = chain(make_target)
    stale = Status(Reason.STALE_KEPT, {"was": "prompt changed"})
    entries = [(targets["ref:wren"], stale)] + [(t, Status(Reason.UP_TO_DATE)) for t in list(targets.values())[1:]]
    plan = make_plan(STORY, entries, price, keep_existing=True)
    assert [i.action for i in plan.items] == [Action.STALE, Action.SKIP, Action.SKIP, Action.SKIP, Action.SKIP]
    assert plan.to_run == [] and plan.total == 0.0
    assert [i.task for i in plan.stale] == ["ref:wren"] and plan.stale_cost == 0.067


def test_a_missing_sheet_under_rebuild_missing_is_built_and_its_users_stay(make_target) -> None:  # noqa: ANN001
    targets = chain(make_target)
    entries = [(targets["ref:wren"], Status(Reason.MISSING))] + [
        (t, Status(Reason.UP_TO_DATE)) for t in list(targets.values())[1:]]
    plan = make_plan(STORY, entries, price, keep_existing=True)
    assert [(i.task, i.action) for i in plan.items] == [
        ("ref:wren", Action.RUN), ("image:scenelet-1_1", Action.STALE), ("image:scenelet-1_2", Action.STALE),
        ("video:scenelet-1_1", Action.SKIP), ("video:scenelet-1_2", Action.SKIP)]
    assert plan.total == 0.067 and plan.stale_cost == 0.134
    assert "kept though ref:wren will run" in plan.items[1].reason

    default = make_plan(STORY, entries, price)
    assert [i.action for i in default.items] == [Action.RUN] * 5 and default.total == round(0.067 * 3 + 6.4, 4)


# -- the cascade --------------------------------------------------------------------------------------------------
def test_a_rebuilt_sheet_counts_every_existing_file_it_puts_out_of_date(make_target) -> None:  # noqa: ANN001
    targets = chain(make_target)
    entries = [(targets["ref:wren"], Status(Reason.INPUTS_CHANGED, {"difference": "prompt changed"}))] + [
        (t, Status(Reason.UP_TO_DATE)) for t in list(targets.values())[1:]]
    plan = make_plan(STORY, entries, price)
    found = cascade(plan, targets, lambda target: True, price)
    assert found.causes == ("ref:wren",)
    assert [(d.task, d.in_run) for d in found.dependents] == [
        ("image:scenelet-1_1", True), ("image:scenelet-1_2", True), ("video:scenelet-1_1", True),
        ("video:scenelet-1_2", True)]
    assert found.by_kind() == {"key_frame": 2, "video": 2} and found.cost(found.dependents) == 6.534


def test_forcing_only_the_sheet_leaves_its_users_out_of_date_and_says_so(make_target) -> None:  # noqa: ANN001
    targets = chain(make_target)
    plan = make_plan(STORY, [(targets["ref:wren"], Status(Reason.UP_TO_DATE))], price, forced={"ref:wren"})
    existing = {"image:scenelet-1_1", "video:scenelet-1_1", "ref:wren"}  # shot 2 was never built
    found = cascade(plan, targets, lambda target: target.task in existing, price)
    assert [(d.task, d.in_run, d.cost) for d in found.dependents] == [
        ("image:scenelet-1_1", False, 0.067), ("video:scenelet-1_1", False, 3.2)]
    assert found.later == list(found.dependents) and found.in_run == []


def test_a_build_that_changes_nothing_sets_off_no_cascade(make_target) -> None:  # noqa: ANN001
    targets = chain(make_target)
    plan = make_plan(STORY, [(t, Status(Reason.UP_TO_DATE)) for t in targets.values()], price)
    assert cascade(plan, targets, lambda target: True, price).dependents == ()


def test_a_free_step_stays_free_when_a_reference_is_rebuilt_under_rebuild_missing(make_target) -> None:  # noqa: ANN001
    targets = chain(make_target)
    entries = [(targets["ref:wren"], Status(Reason.MISSING)), (targets["image:scenelet-1_1"], Status(Reason.PUBLISH_ONLY))]
    assert [i.action for i in make_plan(STORY, entries, price, keep_existing=True).items] == [Action.RUN, Action.PUBLISH]
    assert [i.action for i in make_plan(STORY, entries, price).items] == [Action.RUN, Action.RUN]
