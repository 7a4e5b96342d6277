"""The opening line a build says before its first paid call, from the plan alone."""

from __future__ import annotations

from storytree_build.core.plan import Action, Plan, PlanItem
from storytree_build.doit_glue.planning import opening_line


def item(task: str, action: Action, cost: float | None = 0.0, costs: bool = True) -> PlanItem:
    return PlanItem(task=task, kind=task.split(":")[0], output=f"{task}.png", action=action, reason="", references=[],
                    units={}, costs=costs, cost=cost)


def story(*items: PlanItem) -> Plan:
    return Plan("tale", list(items))


def test_what_is_paid_free_and_waiting_with_the_estimate_and_the_cap() -> None:
    plan = story(*(item(f"image:p{i}", Action.RUN, 0.8) for i in range(14)),
                 item("video:v0", Action.RUN, None, costs=False),  # a resumed operation: already paid
                 *(item(f"image:r{i}", Action.RESTORE) for i in range(3)),
                 *(item(f"image:a{i}", Action.ADOPT) for i in range(2)),
                 *(item(f"video:w{i}", Action.WAIT, 3.2) for i in range(4)),
                 *(item(f"image:u{i}", Action.SKIP) for i in range(18)))
    assert opening_line(plan, "USD", 25.0, paid_provider=True) == (
        "story tale: 14 to pay (11.20 USD est., cap 25.00 USD), 1 resumed (already paid), 3 restored, 2 adopted, "
        "4 wait for review, 18 up to date")
    assert opening_line(plan, "USD", None, paid_provider=True).startswith("story tale: 14 to pay (11.20 USD est., no cap)")


def test_unpriced_calls_are_said_and_the_offline_provider_says_offline() -> None:
    plan = story(item("image:a", Action.RUN, 0.07), item("image:b", Action.RUN, None))
    assert opening_line(plan, "USD", None, True) == "story tale: 2 to pay (0.07 USD est. + 1 unpriced, no cap)"
    assert opening_line(story(item("image:a", Action.RUN)), "USD", None, False) == (
        "story tale: 1 to generate (0.00 USD, offline)")


def test_a_build_with_nothing_to_run_says_nothing() -> None:
    assert opening_line(story(item("image:a", Action.SKIP), item("video:b", Action.WAIT, 3.2)), "USD", 5, True) is None
    assert opening_line(story(), "USD", None, True) is None
