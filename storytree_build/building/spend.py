"""Where money is spent: every paid call passes `SpendGate.paid_call`, which refuses calls to a model whose daily quota
ran out and reserves the call's estimate against `max_cost`, so parallel workers never overrun the cap. Also the
refusal a build over `max_cost` gets before it starts.

A paid call that fails with an error the provider may have charged for all the same (`possibly_billed`: an answer
lost after sending, a 200 that could not be used, a submit whose job may exist) keeps its estimate as spent: it is
named in the closing summary ("paid, nothing received") and counts against `max_cost`. Asking again after such a
failure is a new payment: `SpendGate.paid_calls` makes it only within the build's allowance for that target (the
provider says how many: once for a lost or unreadable answer), and each new call reserves its estimate like the first.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ..core import naming
from ..core.errors import BudgetExceeded, PaidNothingReceived, QuotaExhausted, StorytreeError
from .stopping import StopRequest

log = logging.getLogger("storytree")
T = TypeVar("T")

if TYPE_CHECKING:
    from ..core.plan import Plan


class Budget:
    """Reserves each paid call's estimate before it is made, so parallel workers never overrun max_cost."""

    def __init__(self, limit: float | None = None):
        self.limit = limit
        self.spent = 0.0  # estimated cost of what was paid for in this run (possibly billed failures included)
        self._reserved = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def reserve(self, task: str, cost: float | None) -> Iterator[None]:
        cost = cost or 0.0
        with self._lock:
            if self.limit is not None and self.spent + self._reserved + cost > self.limit + 1e-9:
                raise BudgetExceeded(
                    f"{task}: not started: its estimated {cost:.2f} would take this run past max_cost={self.limit:g} "
                    f"(already spent {self.spent:.2f}, in flight {self._reserved:.2f}).")
            self._reserved += cost
        try:
            yield
        except BaseException as exc:
            with self._lock:
                self._reserved -= cost
                if getattr(exc, "possibly_billed", False):
                    self.spent += cost  # the provider may have charged it: it stays spent
            raise
        with self._lock:
            self._reserved -= cost
            self.spent += cost


@dataclass(frozen=True)
class Unreceived:
    """One paid call that may have been billed and delivered nothing."""

    task: str
    cost: float

    @property
    def video(self) -> bool:
        return naming.split_task(self.task)[0] == "video"


class SpendGate:
    def __init__(self, budget: Budget, stop: StopRequest | None = None):
        self.budget = budget
        self.stop = stop or StopRequest()  # Ctrl-C / SIGTERM: no new paid call starts
        self.exhausted: dict[str, QuotaExhausted] = {}  # model → the per-day quota error that stopped it
        self.unreceived: list[Unreceived] = []  # paid calls that may have been billed and delivered nothing
        self._asked_again: Counter[tuple[str, str]] = Counter()  # (task, allowance) → new calls made this build
        self._lock = threading.Lock()

    @contextmanager
    def paid_call(self, task: str, model: str, cost: float | None) -> Iterator[None]:
        self.stop.refuse(task)
        stopped = self.exhausted.get(model)
        if stopped is not None:
            raise QuotaExhausted(f"{task}: not submitted: the daily quota of {model} is used up "
                                 f"({stopped.reset_hint}).", model, stopped.reset_hint)
        with self.budget.reserve(task, cost):
            try:
                yield
            except QuotaExhausted as exc:
                self.exhausted.setdefault(exc.model or model, exc)
                raise
            except StorytreeError as exc:
                if exc.possibly_billed:
                    with self._lock:
                        self.unreceived.append(Unreceived(task, cost or 0.0))
                raise

    def paid_calls(self, task: str, model: str, cost: float | None, call: Callable[[], T]) -> T:
        """`call()` as one paid call; after a `PaidNothingReceived` it is made again while this build's allowance
        for the target permits and max_cost has room for one more estimate. The last failure is raised, saying why
        it was not asked again."""
        failed: PaidNothingReceived | None = None
        while True:
            try:
                with self.paid_call(task, model, cost):
                    return call()
            except BudgetExceeded as exc:
                if failed is None:
                    raise
                reason = str(exc).removeprefix(f"{task}: not started: its ")
                raise PaidNothingReceived(f"{failed} Not asked again: another call's {reason}", failed.allowance,
                                          failed.retries) from None
            except PaidNothingReceived as exc:
                failed = exc
                key = (task, exc.allowance)
                with self._lock:
                    made = self._asked_again[key]
                    if made < exc.retries:
                        self._asked_again[key] += 1
                if made >= exc.retries:
                    if exc.retries == 0:
                        raise
                    raise PaidNothingReceived(
                        f"{exc} Asked again {made} time(s) in this build, the most one build asks; building again "
                        "tries again (and may be billed again).", exc.allowance, exc.retries) from None
                log.warning("%s Asking again (%d/%d in this build: a new paid call, counted against max_cost).",
                            _first_line(exc), made + 1, exc.retries)

    def unreceived_line(self, currency: str, provider: str) -> str | None:
        """The summary line of paid calls that may have been billed and delivered nothing (None when there were none)."""
        with self._lock:
            calls = list(self.unreceived)
        if not calls:
            return None
        videos = sum(1 for c in calls if c.video)
        counts = [f"{n} {what}(s)" for n, what in ((len(calls) - videos, "image"), (videos, "video")) if n]
        who = "Gemini" if provider == "gemini" else f"the {provider} provider"
        return (f"paid, nothing received: {', '.join(counts)}, ~{sum(c.cost for c in calls):.2f} {currency} "
                f"({who} may have billed them)")


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def budget_refusal(plan: Plan, limit: float, currency: str, selection: list[str],
                   model_of: dict[str, str]) -> str | None:
    """Why a build must not start under `max_cost=limit` (None when it may)."""
    if plan.unpriced:
        models = sorted({model_of[i.task] for i in plan.unpriced})
        return (f"max_cost={limit:g} is set but the price table has no price for {', '.join(models)}; "
                "add it to [prices] in storytree.toml so the cap can be enforced.")
    if plan.total > limit:
        lines = "\n".join(f"  {i.cost:8.2f} {currency}  {i.task}" for i in plan.biggest())
        return (f"refused: this build is estimated at {plan.total:.2f} {currency}, over max_cost={limit:g}.\n"
                f"Biggest items:\n{lines}\nSee `doit dryrun {' '.join(selection)}` for the whole bill; raise max_cost "
                "or build a smaller selection.")
    return None
