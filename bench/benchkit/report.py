"""Verdicts (one line of the closing table: row, what was measured, the goal, met or missed) and the table itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    row: str  # the suite row that measured it (noop-vs-plain, memory, ...)
    measure: str  # what, in words
    value: float | None  # the number compared with the goal (None: not measured)
    shown: str  # the measurement as printed, with its context (both times of a ratio)
    goal: str  # "≤ 1.8×", "≥ 20×", "—"
    met: bool | None  # None: informational, or not measured

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: "—"}[self.met]


def at_most(row: str, measure: str, value: float, limit: float, unit: str, shown: str) -> Verdict:
    return Verdict(row, measure, value, shown, f"≤ {limit:g}{unit}", value <= limit)


def at_least(row: str, measure: str, value: float, limit: float, unit: str, shown: str) -> Verdict:
    return Verdict(row, measure, value, shown, f"≥ {limit:g}{unit}", value >= limit)


def info(row: str, measure: str, shown: str, value: float | None = None) -> Verdict:
    return Verdict(row, measure, value, shown, "—", None)


def table(verdicts: list[Verdict]) -> str:
    """A compact markdown table (it pastes into bench/RESULTS.md as it is)."""
    lines = ["| row | measure | measured | goal | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {v.row} | {v.measure} | {v.shown} | {v.goal} | {'**MISSED**' if v.met is False else v.verdict} |"
              for v in verdicts]
    return "\n".join(lines)
