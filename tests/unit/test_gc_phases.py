"""The collector around doit's phases: high thresholds while thousands of task dicts are loaded, then what was loaded
frozen and the usual thresholds back, so a dry-run's rendering garbage is collected as it is made."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from storytree_build.doit_glue.gc_phases import LOADING_GC_THRESHOLDS, loading_done, loading_starts


@pytest.fixture
def collector_restored() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_garbage_made_after_loading_is_collected_as_it_is_made(collector_restored: None) -> None:
    loading_starts()
    assert gc.get_threshold() == LOADING_GC_THRESHOLDS
    loaded = [Node() for _ in range(10)]
    loading_done()
    assert gc.get_freeze_count() >= len(loaded)  # the loaded objects are not scanned again
    gc.collect()
    cycles = []
    for _ in range(5_000):  # a rendering's worth of short-lived cycles
        node = Node()
        cycles.append(weakref.ref(node))
        del node
    alive = sum(1 for ref in cycles if ref() is not None)
    assert alive < 1_000, f"{alive} of 5,000 dropped cycles still held: the loading thresholds are still in force"
