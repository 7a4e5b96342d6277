"""The user's say-so before a build pays (core/consent.py decides): the facts gathered from the session and the plan,
the question asked on a terminal, the one refusal line without one."""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING

from ..core.consent import PROMPT, ConsentFacts, Decision, confirmed, declined_line, decide
from ..core.plan import Plan

if TYPE_CHECKING:
    from ..bootstrap import Session


def is_terminal(stdin: IO[str] | None = None, stderr: IO[str] | None = None) -> bool:
    """A person can answer: both the input and the output the question goes to are a terminal."""
    streams = (stdin or sys.stdin, stderr or sys.stderr)
    return all(stream is not None and _isatty(stream) for stream in streams)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):  # a closed or detached stream
        return False


def facts_of(session: "Session", plan: Plan, terminal: bool) -> ConsentFacts:
    from ..providers.registry import entry  # only when something would be paid: a no-op loads no provider module

    settings = session.settings
    paid = [i for i in plan.paid if i.task != session.link_task]  # `--download-link` fetches: no model call
    free = sum(i.cost or 0.0 for i in plan.paid if i.task == session.link_task)
    return ConsentFacts(provider=session.provider_name, paid_provider=entry(session.provider_name).paid,
                        to_pay=len(paid), estimate=round(plan.total - free, 4),
                        unpriced=sum(1 for i in paid if i.cost is None),
                        currency=settings.prices.currency, cap=settings.max_cost,
                        confirm_above=settings.build.confirm_above, yes=settings.yes, terminal=terminal)


def refusal(session: "Session", plan: Plan) -> str | None:
    """None when the build may pay; else the one line to print (nothing was paid) — after asking, on a terminal."""
    if not plan.paid:
        return None  # nothing to pay: nothing to consent to
    facts = facts_of(session, plan, is_terminal())
    consent = decide(facts)
    if consent.decision is Decision.REFUSE:
        return consent.line
    if consent.decision is Decision.ASK and not confirmed(ask(PROMPT)):
        return declined_line(facts)
    return None


def ask(prompt: str) -> str | None:
    """The answer typed after `prompt` (on stderr, where the build talks); None at end of input."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        sys.stderr.write("\n")
        return None
    return line
