"""core/consent.py: which facts let a build pay, ask first, or stop before paying."""

from __future__ import annotations

import pytest

from storytree_build.core.consent import ConsentFacts, Decision, confirmed, decide

PAID = dict(provider="gemini", paid_provider=True, to_pay=14, estimate=12.80)

CASES = [
    # (facts beyond PAID, decision)
    (dict(provider="stub", paid_provider=False, estimate=0.0), Decision.PROCEED),  # offline never asks
    (dict(provider="stub", paid_provider=False, estimate=5.0, terminal=True, confirm_above=0.0), Decision.PROCEED),
    (dict(to_pay=0, estimate=0.0), Decision.PROCEED),  # nothing to pay
    (dict(estimate=0.0), Decision.PROCEED),  # priced at nothing
    (dict(yes=True), Decision.PROCEED),
    (dict(yes=True, terminal=True), Decision.PROCEED),
    (dict(cap=25.0), Decision.PROCEED),  # the cap is the consent
    (dict(cap=1.0), Decision.PROCEED),  # over the cap: refused by the budget check, not here
    (dict(terminal=True), Decision.ASK),
    (dict(terminal=True, estimate=1.0), Decision.PROCEED),  # at confirm_above: not above it
    (dict(terminal=True, estimate=1.01), Decision.ASK),
    (dict(terminal=True, estimate=0.5, confirm_above=0.0), Decision.ASK),
    (dict(terminal=True, estimate=0.07, unpriced=1), Decision.ASK),  # an unknown price is never small
    (dict(estimate=0.0, unpriced=2), Decision.REFUSE),
    (dict(), Decision.REFUSE),
    (dict(estimate=0.07), Decision.REFUSE),  # no terminal: any paid build needs consent
]


@pytest.mark.parametrize("extra, expected", CASES, ids=[str(c[0]) for c in CASES])
def test_the_decision(extra: dict, expected: Decision) -> None:
    assert decide(ConsentFacts(**{**PAID, **extra})).decision is expected


def test_the_refusal_is_one_line_saying_how_to_consent() -> None:
    consent = decide(ConsentFacts(**PAID))
    assert consent.line == ("storytree: this build would pay ~12.80 USD (gemini); without a terminal, consent with "
                            "max_cost=<USD> or yes=1 (STORYTREE_YES=1)")
    assert decide(ConsentFacts(**{**PAID, "terminal": True})).line == ""


def test_unpriced_calls_are_named_in_the_refusal() -> None:
    line = decide(ConsentFacts(**{**PAID, "estimate": 0.0, "unpriced": 2})).line
    assert "~0.00 USD and 2 call(s) with no price (gemini)" in line and "\n" not in line


@pytest.mark.parametrize("answer, proceeds", [
    ("y\n", True), ("Y", True), ("yes\n", True), (" YES ", True),
    ("n\n", False), ("\n", False), ("", False), (None, False), ("yep", False), ("no", False),
])
def test_only_y_or_yes_proceeds(answer: str | None, proceeds: bool) -> None:
    assert confirmed(answer) is proceeds
