"""core/plan.py `make_plan`: what a build of a selection would do, why, and what it would cost."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from storytree_build.core.manifest import ReferenceEntry, Target
from storytree_build.core.plan import Plan, PlanItem, make_plan
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
