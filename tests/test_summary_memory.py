"""Issue 25: a build's memory stays flat. What the run summary holds after a target is built is a counter, not an
object: after N built targets it holds no Outcome and no more objects than after one."""

from __future__ import annotations

import gc

import pytest

from storytree_build.building.summary import NAMED, Outcome, RunSummary


def _held(summary: RunSummary) -> tuple[int, int]:
    """(objects reachable from the summary, Outcomes among them)."""
    seen: dict[int, object] = {}
    todo: list[object] = [summary.__dict__]
    while todo:
        item = todo.pop()
        if id(item) in seen or isinstance(item, type):
            continue
        seen[id(item)] = item
        todo.extend(gc.get_referents(item))
    return len(seen), sum(isinstance(o, Outcome) for o in seen.values())


def _built(n: int) -> RunSummary:
    summary = RunSummary()
    for i in range(n):
        summary.add(Outcome(f"image:scenelet-{i}_1", "built", f"story/shots/scenelet-{i}/shot-1.png"))
    return summary


def test_built_targets_are_counted_not_kept() -> None:
    one, many = _built(1), _built(2_000)
    assert many.counts()["built"] == 2_000
    assert _held(many) == _held(one)
    assert _held(many)[1] == 0


def test_the_reported_words_keep_their_task_names() -> None:
    summary = _built(3)
    summary.add(Outcome("video:scenelet-1_1", "stale kept", "its prompt changed"))
    summary.add(Outcome("image:scenelet-2_1", "kept", "edited by hand"))
    assert summary.tasks("stale kept") == {"video:scenelet-1_1"}
    assert summary.tasks("kept") == {"image:scenelet-2_1"}
    assert summary.counts() == {"built": 3, "stale kept": 1, "kept": 1, "up to date": 0, "failed": 0}
    assert set(NAMED) == {"kept", "stale kept"}


def test_asking_for_names_that_are_only_counted_is_an_error() -> None:
    with pytest.raises(ValueError, match="only for kept, stale kept, not 'built'"):
        _built(1).tasks("built")
