"""Where money is spent: every paid call passes `SpendGate.paid_call`, which refuses calls to a model whose daily quota
ran out and reserves the call's estimate against `max_cost`, so parallel workers never overrun the cap. Also the
refusal a build over `max_cost` gets before it starts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..core.errors import BudgetExceeded, QuotaExhausted

if TYPE_CHECKING:
    from ..core.plan import Plan


class Budget:
    """Reserves each paid call's estimate before it is made, so parallel workers never overrun max_cost."""

    def __init__(self, limit: float | None = None):
        self.limit = limit
        self.spent = 0.0  # estimated cost of what was paid for in this run
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
        except BaseException:
            with self._lock:
                self._reserved -= cost
            raise
        with self._lock:
            self._reserved -= cost
            self.spent += cost


class SpendGate:
    def __init__(self, budget: Budget):
        self.budget = budget
        self.exhausted: dict[str, QuotaExhausted] = {}  # model → the per-day quota error that stopped it

    @contextmanager
    def paid_call(self, task: str, model: str, cost: float | None) -> Iterator[None]:
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
