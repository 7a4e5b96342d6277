"""Scenelet labels are derived on every read: pre-order DFS from the single root, children newest first."""

import pytest

from storytree_build.core.errors import InputError
from storytree_build.core.tree import derive_tree


def rows(*specs):
    return [{"id": i, "parent_id": p, "created_at": c} for i, p, c in specs]


def labels(nodes):
    return {k: v.label for k, v in nodes.items()}


def test_children_newest_first_in_preorder():
    nodes = derive_tree("s", rows(("r", None, "1"), ("a", "r", "2"), ("b", "r", "3"), ("c", "a", "4")))
    assert labels(nodes) == {"r": "scenelet-1", "b": "scenelet-2", "a": "scenelet-3", "c": "scenelet-4"}
    assert nodes["a"].sequence == 3 and nodes["r"].children == ("b", "a")


def test_equal_timestamps_fall_back_to_the_id():
    nodes = derive_tree("s", rows(("r", None, "1"), ("y", "r", "2"), ("x", "r", "2")))
    assert labels(nodes) == {"r": "scenelet-1", "x": "scenelet-2", "y": "scenelet-3"}


@pytest.mark.parametrize("specs, message", [
    ((("r", None, "1"), ("q", None, "2")), "exactly one root"),
    ((("r", None, "1"), ("a", "zz", "2")), "unknown parent_id"),
    ((("r", None, "1"), ("a", "b", "2"), ("b", "a", "3")), "not reachable"),
    ((("r", None, "1"), ("r", None, "2")), "appears twice"),
])
def test_broken_trees_are_rejected_with_the_story_named(specs, message):
    with pytest.raises(InputError, match=message) as info:
        derive_tree("story-7", rows(*specs))
    assert "story-7" in str(info.value)
