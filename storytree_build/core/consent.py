"""Whether a build may start paying: the user's say-so before the first paid call (the `terraform apply` convention).

Pure: the caller gathers the facts (the plan's estimate, `max_cost`, `[build] confirm_above`, `yes=`, whether stdin
and stderr are a terminal) and acts on the answer — asks `Proceed? [y/N]`, refuses with the line, or builds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

PROMPT = "Proceed? [y/N] "
YES_WORDS = ("y", "yes")


class Decision(Enum):
    PROCEED = "proceed"
    ASK = "ask"  # on a terminal: `Proceed? [y/N]`
    REFUSE = "refuse"  # no terminal and no consent: stop before paying (exit REFUSED)


@dataclass(frozen=True, kw_only=True)
class ConsentFacts:
    provider: str
    paid_provider: bool  # False for the offline stub: it never asks
    to_pay: int  # paid calls the plan makes
    estimate: float  # what they are estimated to cost
    unpriced: int = 0  # paid calls the price table has no price for: the estimate may be low
    currency: str = "USD"
    cap: float | None = None  # max_cost: the cap is the consent (going over it is refused elsewhere)
    confirm_above: float = 1.0  # [build] confirm_above: a terminal asks above this estimate
    yes: bool = False  # yes=1 / STORYTREE_YES=1
    terminal: bool = False  # stdin and stderr are both a terminal


@dataclass(frozen=True)
class Consent:
    decision: Decision
    line: str = ""  # the refusal, for REFUSE

    @property
    def proceeds(self) -> bool:
        return self.decision is Decision.PROCEED


def decide(facts: ConsentFacts) -> Consent:
    if not facts.paid_provider or facts.to_pay == 0 or facts.yes or facts.cap is not None:
        return Consent(Decision.PROCEED)
    if facts.estimate <= 0 and not facts.unpriced:
        return Consent(Decision.PROCEED)  # nothing this run pays costs anything by the price table
    if facts.terminal:
        above = facts.estimate > facts.confirm_above or facts.unpriced > 0  # an unknown price is never "small"
        return Consent(Decision.ASK if above else Decision.PROCEED)
    return Consent(Decision.REFUSE, refusal_line(facts))


def refusal_line(facts: ConsentFacts) -> str:
    unknown = f" and {facts.unpriced} call(s) with no price" if facts.unpriced else ""
    return (f"storytree: this build would pay ~{facts.estimate:.2f} {facts.currency}{unknown} ({facts.provider}); "
            "without a terminal, consent with max_cost=<USD> or yes=1 (STORYTREE_YES=1)")


def declined_line(facts: ConsentFacts) -> str:
    return (f"storytree: not confirmed: nothing was paid (~{facts.estimate:.2f} {facts.currency} with "
            f"{facts.provider}); answer y to build, or pass yes=1 or max_cost=<USD>")


def confirmed(answer: str | None) -> bool:
    """Only `y` / `yes` (any case) proceeds; anything else, or no answer at all (EOF), does not."""
    return answer is not None and answer.strip().lower() in YES_WORDS
