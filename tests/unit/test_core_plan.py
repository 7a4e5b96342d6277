"""core/plan.py `make_plan`: what a build of a selection would do, why, and what it would cost."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from storytree_build.core.manifest import ReferenceEntry, Target
from storytree_build.core.plan import Action, Plan, PlanItem, make_plan
from storytree_build.core.status import Reason, Status

STORY = "story-1"
UP_TO_DATE = Status(Reason.UP_TO_DATE)
MISSING = Status(Reason.MISSING)
PUBLISH = Status(Reason.PUBLISH_ONLY)
RESUME = Status(Reason.IN_FLIGHT, {"operation": "operations/1", "submitted_at": "2026-11-21T10:00:00+00:00"})
PROMPT_CHANGED = Status(Reason.INPUTS_CHANGED, {"difference": "prompt changed"})
PRICES = {"ref": 0.1, "image": 0.067, "video": 3.2}

SHEET = "ref:character.wren.character-model-sheet-1"
GORGE = "ref:environment.gorge.keyframe_1"
IMAGE = "image:scenelet-1_1"
VIDEO = "video:scenelet-1_1"


@pytest.fixture
def targets(make_target: Callable[..., Target]) -> dict[str, Target]:
    """A sheet and an environment keyframe, one key frame using both, one video using the sheet and the key frame."""
    sheet = make_target(SHEET, kind="character_plate", output="s/visuals/characters/wren/character-model-sheet-1.png")
    gorge = make_target(GORGE, kind="environment_keyframe", output="s/visuals/environments/gorge/keyframe_1.png")
    image = make_target(IMAGE, kind="key_frame", output="s/shots/scenelet-1/shot-1_key_frame.png",
                        references=[ReferenceEntry(kind="CHARACTER", id="wren", path=sheet.output, task=SHEET),
                                    ReferenceEntry(kind="ENVIRONMENT", id="gorge", path=gorge.output, task=GORGE)],
                        depends_on=[SHEET, GORGE])
    video = make_target(VIDEO, kind="video", output="s/shots/scenelet-1/shot-1.mp4",
                        references=[ReferenceEntry(kind="CHARACTER", id="wren", path=sheet.output, task=SHEET),
                                    ReferenceEntry(kind="KEY_FRAME", id="scenelet-1_1", path=image.output, task=IMAGE)],
                        depends_on=[IMAGE, SHEET])
    return {t.task: t for t in (sheet, gorge, image, video)}


class CostOf:
    """`cost_of` that prices by stage and remembers which targets were priced."""

    def __init__(self, prices: dict[str, float | None] | None = None) -> None:
        self.prices = PRICES if prices is None else prices
        self.asked: list[str] = []

    def __call__(self, target: Target) -> float | None:
        self.asked.append(target.task)
        return self.prices[target.task.partition(":")[0]]


def plan_of(targets: dict[str, Target], statuses: dict[str, Status], cost_of: CostOf | None = None,
            forced: set[str] | None = None) -> tuple[Plan, dict[str, PlanItem]]:
    entries = [(targets[t], statuses.get(t, UP_TO_DATE)) for t in (SHEET, GORGE, IMAGE, VIDEO)]
    plan = make_plan(STORY, entries, cost_of or CostOf(), forced)
    return plan, {i.task: i for i in plan.items}


def test_everything_up_to_date_skips_everything_at_no_cost(targets) -> None:  # noqa: ANN001
    cost_of = CostOf()
    plan, items = plan_of(targets, {}, cost_of)
    assert [i.task for i in plan.items] == [SHEET, GORGE, IMAGE, VIDEO]  # build order kept
    assert {t: (i.action.word, i.reason, i.cost) for t, i in items.items()} == {
        t: ("skip", "up to date", 0.0) for t in items}
    assert plan.to_run == [] and plan.total == 0.0 and cost_of.asked == []
    assert plan.story_id == STORY


def test_item_carries_kind_output_reference_paths_and_units(targets) -> None:  # noqa: ANN001
    _, items = plan_of(targets, {IMAGE: MISSING})
    item = items[IMAGE]
    assert (item.kind, item.output) == ("key_frame", targets[IMAGE].output)
    assert item.references == [targets[SHEET].output, targets[GORGE].output]
    assert item.units == {"images": 1, "image_size": "1K"}


def test_forced_targets_run_and_pay_even_when_up_to_date(targets) -> None:  # noqa: ANN001
    cost_of = CostOf()
    plan, items = plan_of(targets, {}, cost_of, forced={IMAGE})
    assert (items[IMAGE].action.word, items[IMAGE].reason, items[IMAGE].cost) == ("run", "forced", 0.067)
    # forcing never forces what the target merely depends on; what depends on it follows
    assert items[SHEET].action.word == items[GORGE].action.word == "skip"
    assert (items[VIDEO].action.word, items[VIDEO].reason) == ("run", f"upstream will run: {IMAGE}")
    assert cost_of.asked == [IMAGE, VIDEO]


def test_forced_wins_over_any_status(targets) -> None:  # noqa: ANN001
    _, items = plan_of(targets, {VIDEO: RESUME, SHEET: PUBLISH}, forced={VIDEO, SHEET})
    assert (items[VIDEO].action.word, items[VIDEO].reason, items[VIDEO].cost) == ("run", "forced", 3.2)
    assert (items[SHEET].action.word, items[SHEET].reason, items[SHEET].cost) == ("run", "forced", 0.1)


def test_stale_target_runs_with_its_status_reason_and_propagates_upstream(targets) -> None:  # noqa: ANN001
    plan, items = plan_of(targets, {SHEET: PROMPT_CHANGED})
    assert (items[SHEET].action.word, items[SHEET].reason, items[SHEET].cost) == ("run", "prompt changed", 0.1)
    assert (items[GORGE].action.word, items[GORGE].cost) == ("skip", 0.0)
    assert (items[IMAGE].action.word, items[IMAGE].reason) == ("run", f"upstream will run: {SHEET}")
    assert (items[VIDEO].action.word, items[VIDEO].reason) == ("run", f"upstream will run: {IMAGE}, {SHEET}")
    assert items[IMAGE].cost == 0.067 and items[VIDEO].cost == 3.2
    assert [i.task for i in plan.to_run] == [SHEET, IMAGE, VIDEO]


def test_upstream_reason_lists_every_running_dependency_in_depends_on_order(targets) -> None:  # noqa: ANN001
    _, items = plan_of(targets, {SHEET: MISSING, GORGE: MISSING})
    assert items[IMAGE].reason == f"upstream will run: {SHEET}, {GORGE}"


def test_own_reason_wins_over_upstream(targets) -> None:  # noqa: ANN001
    _, items = plan_of(targets, {SHEET: MISSING, IMAGE: PROMPT_CHANGED})
    assert items[IMAGE].reason == "prompt changed"


def test_publish_only_without_upstream_is_published_for_free(targets) -> None:  # noqa: ANN001
    cost_of = CostOf()
    plan, items = plan_of(targets, {IMAGE: PUBLISH}, cost_of)
    assert (items[IMAGE].action.word, items[IMAGE].reason, items[IMAGE].cost) == ("publish", PUBLISH.reason, 0.0)
    assert items[VIDEO].action.word == "skip"  # a publish does not change the file the video was built from
    assert plan.to_run == [items[IMAGE]]
    assert plan.total == 0.0 and cost_of.asked == []


def test_publish_only_with_upstream_running_is_rebuilt_and_paid(targets) -> None:  # noqa: ANN001
    cost_of = CostOf()
    plan, items = plan_of(targets, {SHEET: MISSING, IMAGE: PUBLISH}, cost_of)
    assert (items[IMAGE].action.word, items[IMAGE].cost) == ("run", 0.067)
    assert items[VIDEO].reason == f"upstream will run: {IMAGE}, {SHEET}"
    assert cost_of.asked == [SHEET, IMAGE, VIDEO]
    assert plan.total == round(0.1 + 0.067 + 3.2, 4)


def test_publish_only_with_upstream_running_says_why_it_runs(targets) -> None:  # noqa: ANN001
    _, items = plan_of(targets, {SHEET: MISSING, IMAGE: PUBLISH})
    assert items[IMAGE].cost == 0.067
    assert items[IMAGE].reason == f"upstream will run: {SHEET}"


def test_resumed_operation_runs_at_no_new_cost(targets) -> None:  # noqa: ANN001
    cost_of = CostOf()
    plan, items = plan_of(targets, {VIDEO: RESUME}, cost_of)
    assert (items[VIDEO].action.word, items[VIDEO].reason, items[VIDEO].cost) == ("run", RESUME.reason, 0.0)
    assert cost_of.asked == [] and plan.total == 0.0 and plan.unpriced == []


def test_unknown_price_is_unpriced_and_not_counted(targets) -> None:  # noqa: ANN001
    plan, items = plan_of(targets, {SHEET: MISSING, VIDEO: MISSING}, CostOf({**PRICES, "video": None}))
    assert items[VIDEO].cost is None
    assert plan.unpriced == [items[VIDEO]]
    assert plan.total == 0.167  # sheet 0.1 + image (upstream) 0.067; the unknown video price adds nothing
    assert plan.subtotals()["video"] == 0.0
    assert items[VIDEO] not in plan.biggest()


def test_total_subtotals_and_biggest(targets) -> None:  # noqa: ANN001
    prices = {"ref": 0.5, "image": 0.067, "video": 3.2}
    plan, items = plan_of(targets, {SHEET: MISSING, GORGE: MISSING}, CostOf(prices))
    assert plan.total == 4.267
    assert plan.subtotals() == {"character_plate": 0.5, "environment_keyframe": 0.5, "key_frame": 0.067,
                                "video": 3.2}
    # by cost, highest first; equal costs by task name
    assert [i.task for i in plan.biggest()] == [VIDEO, SHEET, GORGE, IMAGE]
    assert [i.task for i in plan.biggest(2)] == [VIDEO, SHEET]


def test_biggest_leaves_out_free_items(targets) -> None:  # noqa: ANN001
    plan, _ = plan_of(targets, {IMAGE: PUBLISH, VIDEO: MISSING})
    assert [i.task for i in plan.biggest()] == [VIDEO]


def test_total_rounds_away_float_noise() -> None:
    items = [PlanItem(task=f"image:s_{n}", kind="key_frame", output=f"o{n}", action="run", reason="missing", references=[], units={}, cost=0.1) for n in range(3)]
    plan = Plan(STORY, items)
    assert plan.total == 0.3 and plan.subtotals() == {"key_frame": 0.3}


ADOPT = Status(Reason.ADOPTABLE)
CLAIMED = Status(Reason.CLAIMED, {"owner": "box-b:/p (pid 7)", "claimed_at": "2026-12-01T09:00:00+00:00"})
ELSEWHERE = Status(Reason.BUILT_ELSEWHERE, {"built_by": "box-b:/p", "built_at": "2026-11-29T10:00:00+00:00"})


@pytest.mark.parametrize("status", [ADOPT, Status(Reason.SAVED_UNRECORDED)], ids=["adoptable", "saved-unrecorded"])
def test_an_adoptable_file_without_upstream_is_adopted_for_free(targets, status: Status) -> None:  # noqa: ANN001
    cost_of = CostOf()
    plan, items = plan_of(targets, {IMAGE: status}, cost_of)
    assert (items[IMAGE].action.word, items[IMAGE].reason, items[IMAGE].cost) == ("adopt", status.reason, 0.0)
    assert items[VIDEO].action.word == "skip"  # adopting does not change the file the video was made from
    assert plan.to_run == [items[IMAGE]] and plan.paid == [] and plan.total == 0.0 and cost_of.asked == []


def test_an_adoptable_file_with_upstream_running_is_rebuilt_and_paid(targets) -> None:  # noqa: ANN001
    _, items = plan_of(targets, {SHEET: MISSING, IMAGE: ADOPT})
    assert (items[IMAGE].action.word, items[IMAGE].reason, items[IMAGE].cost) == ("run", f"upstream will run: {SHEET}",
                                                                                   0.067)


def test_a_target_another_worker_builds_runs_at_no_new_cost(targets) -> None:  # noqa: ANN001
    cost_of = CostOf()
    plan, items = plan_of(targets, {IMAGE: CLAIMED}, cost_of)
    item = items[IMAGE]
    assert (item.action.word, item.reason, item.costs, item.cost) == ("run", CLAIMED.reason, False, 0.0)
    assert plan.paid == [items[VIDEO]]  # the video depends on it and is paid here
    assert cost_of.asked == [VIDEO] and plan.total == 3.2


def test_paid_lists_only_the_runs_this_build_pays_for(targets) -> None:  # noqa: ANN001
    plan, items = plan_of(targets, {SHEET: MISSING, GORGE: PUBLISH, VIDEO: RESUME})
    assert [i.task for i in plan.paid] == [SHEET, IMAGE]
    assert [i.costs for i in plan.items] == [True, True, True, False]


def test_a_target_built_elsewhere_is_not_priced_unless_forced(targets) -> None:  # noqa: ANN001
    plan, items = plan_of(targets, {GORGE: ELSEWHERE})
    assert items[GORGE].cost == 0.0 and GORGE not in {i.task for i in plan.paid}


def test_a_target_built_elsewhere_is_listed_with_its_reason(targets) -> None:  # noqa: ANN001
    _, items = plan_of(targets, {GORGE: ELSEWHERE})
    assert (items[GORGE].action.word, items[GORGE].reason) == ("blocked", ELSEWHERE.reason)


class HeldBack:
    """`held_back` that holds every video and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, set[str]]] = []

    def __call__(self, target: Target, will_run: set[str]) -> str | None:
        self.asked.append((target.task, set(will_run)))
        return "key frame not approved" if target.kind == "video" else None


def test_a_video_held_back_for_review_waits_and_costs_nothing_this_run(targets) -> None:  # noqa: ANN001
    held = HeldBack()
    plan = make_plan(STORY, [(targets[t], MISSING) for t in (SHEET, GORGE, IMAGE, VIDEO)], CostOf(), None, held)
    items = {i.task: i for i in plan.items}
    assert (items[VIDEO].action.word, items[VIDEO].reason, items[VIDEO].cost) == ("wait", "key frame not approved",
                                                                                   3.2)
    assert plan.waiting == [items[VIDEO]] and items[VIDEO] not in plan.to_run and items[VIDEO] not in plan.paid
    assert plan.total == round(0.1 + 0.1 + 0.067, 4) and plan.held_back == 3.2
    assert "video" not in plan.subtotals()
    # asked only for what would run, with what runs before it
    assert held.asked == [(SHEET, set()), (GORGE, {SHEET}), (IMAGE, {SHEET, GORGE}), (VIDEO, {SHEET, GORGE, IMAGE})]


def test_nothing_up_to_date_is_held_back(targets) -> None:  # noqa: ANN001
    held = HeldBack()
    plan = make_plan(STORY, [(targets[t], UP_TO_DATE) for t in (SHEET, GORGE, IMAGE, VIDEO)], CostOf(), None, held)
    assert plan.waiting == [] and held.asked == []


def test_what_depends_on_a_held_back_video_is_not_rebuilt_for_it(make_target: Callable[..., Target],
                                                                targets) -> None:  # noqa: ANN001
    after = make_target("video:scenelet-1_2", kind="video", output="s/shots/scenelet-1/shot-2.mp4",
                        depends_on=[VIDEO])
    entries = [(targets[VIDEO], MISSING), (after, UP_TO_DATE)]
    plan = make_plan(STORY, entries, CostOf(), None, HeldBack())
    assert [i.action.word for i in plan.items] == ["wait", "skip"]


def test_plan_item_as_json_is_what_dryrun_json_prints(targets) -> None:  # noqa: ANN001
    _, items = plan_of(targets, {IMAGE: MISSING})
    assert items[IMAGE].as_json() == {
        "task": IMAGE, "kind": "key_frame", "output": targets[IMAGE].output, "action": "run", "reason": "missing",
        "references": [targets[SHEET].output, targets[GORGE].output], "units": {"images": 1, "image_size": "1K"},
        "cost": 0.067}


def test_subtotals_round_like_the_total() -> None:
    items = [PlanItem(task="image:s_1", kind="key_frame", output="o", action=Action.RUN, reason="missing",
                      references=[], units={}, cost=0.123456)]
    plan = Plan(STORY, items)
    assert plan.total == 0.1235 and plan.subtotals() == {"key_frame": 0.1235}


def test_biggest_lists_five_by_default() -> None:
    items = [PlanItem(task=f"image:s_{n}", kind="key_frame", output=f"o{n}", action=Action.RUN, reason="missing",
                      references=[], units={}, cost=float(n)) for n in range(1, 8)]
    assert [i.task for i in Plan(STORY, items).biggest()] == [f"image:s_{n}" for n in (7, 6, 5, 4, 3)]
