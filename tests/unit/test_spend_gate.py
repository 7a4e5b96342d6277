"""The spend gate: a paid call that may have been billed and delivered nothing stays spent, is named, and is made
again only within the build's allowance for its target and max_cost."""

from __future__ import annotations

import pytest

from storytree_build.building.spend import Budget, SpendGate
from storytree_build.core.errors import (BudgetExceeded, PaidNothingReceived, ProviderError, RetryableProviderError,
                                         SubmitUncertain)

TASK, VIDEO, MODEL, COST = "ref:character.wren.plate-1", "video:scenelet-1_1", "gemini-3.1-flash-image", 0.07


class Provider:
    """Raises the scripted errors in turn, then returns 'image'; counts its calls."""

    def __init__(self, *errors: Exception):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "image"


def lost(retries: int = 1, allowance: str = "lost") -> PaidNothingReceived:
    return PaidNothingReceived(f"{TASK}: the answer was lost after sending.", allowance, retries)


def test_a_lost_answer_is_asked_again_once_and_both_calls_count() -> None:
    gate = SpendGate(Budget())
    provider = Provider(lost(), lost(), lost())
    with pytest.raises(PaidNothingReceived, match="Asked again 1 time"):
        gate.paid_calls(TASK, MODEL, COST, provider)
    assert provider.calls == 2
    assert gate.budget.spent == pytest.approx(2 * COST)
    assert gate.unreceived_line("USD", "gemini") == \
        "paid, nothing received: 2 image(s), ~0.14 USD (Gemini may have billed them)"


def test_the_allowance_is_per_build_and_per_target() -> None:
    gate = SpendGate(Budget())
    first = Provider(lost())
    assert gate.paid_calls(TASK, MODEL, COST, first) == "image" and first.calls == 2
    second = Provider(lost())  # the same target again in the same build: its one retry is used
    with pytest.raises(PaidNothingReceived):
        gate.paid_calls(TASK, MODEL, COST, second)
    assert second.calls == 1
    other = Provider(lost())  # another target has its own
    assert gate.paid_calls("ref:other", MODEL, COST, other) == "image" and other.calls == 2
    fresh_build = Provider(lost())
    assert SpendGate(Budget()).paid_calls(TASK, MODEL, COST, fresh_build) == "image" and fresh_build.calls == 2


def test_no_image_answers_use_their_own_allowance() -> None:
    gate = SpendGate(Budget())
    provider = Provider(lost(2, "no_image"), lost(2, "no_image"), lost(2, "no_image"), lost(2, "no_image"))
    with pytest.raises(PaidNothingReceived, match="Asked again 2 time"):
        gate.paid_calls(TASK, MODEL, COST, provider)
    assert provider.calls == 3 and gate.budget.spent == pytest.approx(3 * COST)


def test_max_cost_refuses_the_second_call_and_says_so() -> None:
    gate = SpendGate(Budget(limit=COST))
    provider = Provider(lost())
    with pytest.raises(PaidNothingReceived, match="Not asked again: another call's estimated 0.07 would take this run "
                                                  "past max_cost=0.07") as raised:
        gate.paid_calls(TASK, MODEL, COST, provider)
    assert provider.calls == 1 and gate.budget.spent == pytest.approx(COST)
    with pytest.raises(BudgetExceeded):  # what was possibly billed keeps counting against the cap
        gate.paid_calls("ref:other", MODEL, COST, Provider())
    assert "the answer was lost" in str(raised.value)


def test_a_failure_that_may_not_be_asked_again_is_raised_at_once_and_counted() -> None:
    gate = SpendGate(Budget())
    provider = Provider(lost(retries=0))
    with pytest.raises(PaidNothingReceived):
        gate.paid_calls(TASK, MODEL, COST, provider)
    assert provider.calls == 1 and gate.budget.spent == pytest.approx(COST)


@pytest.mark.parametrize("error", [ProviderError("refused"), RetryableProviderError("503s")])
def test_free_failures_are_released_not_counted(error: Exception) -> None:
    gate = SpendGate(Budget(limit=COST))
    with pytest.raises(type(error)):
        gate.paid_calls(TASK, MODEL, COST, Provider(error))
    assert gate.budget.spent == 0 and gate.unreceived_line("USD", "gemini") is None
    assert gate.paid_calls(TASK, MODEL, COST, Provider()) == "image"  # the cap has its room back


def test_an_uncertain_video_submit_counts_as_a_video() -> None:
    gate = SpendGate(Budget())
    with pytest.raises(SubmitUncertain):
        with gate.paid_call(VIDEO, "gemini-omni-1.1-flash", 3.2):
            raise SubmitUncertain("the job may exist")
    with pytest.raises(PaidNothingReceived):
        gate.paid_calls(TASK, MODEL, COST, Provider(lost(0)))
    assert gate.budget.spent == pytest.approx(3.27)
    assert gate.unreceived_line("USD", "stub") == \
        "paid, nothing received: 1 image(s), 1 video(s), ~3.27 USD (the stub provider may have billed them)"
