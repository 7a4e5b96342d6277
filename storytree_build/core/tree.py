"""Scenelet tree: derive the `scenelet-N` labels the original computes on every read (facts doc §3.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InputError


@dataclass(frozen=True)
class SceneletNode:
    id: str
    label: str
    sequence: int
    parent_id: str | None
    children: tuple[str, ...]
    row: dict[str, Any]



def derive_tree(story_id: str, scenelets: list[dict[str, Any]]) -> dict[str, SceneletNode]:
    """Pre-order DFS from the single root; children newest first (ties by id). Keyed by scenelet UUID."""
    if not scenelets:
        return {}
    by_id: dict[str, dict[str, Any]] = {}
    for row in scenelets:
        if row["id"] in by_id:
            raise InputError(f"Story {story_id}: scenelet id {row['id']} appears twice.")
        by_id[row["id"]] = row
    roots = [r for r in scenelets if not r.get("parent_id")]
    if len(roots) != 1:
        raise InputError(f"Story {story_id}: the scenelet tree needs exactly one root (parent_id null); found {len(roots)}.")
    children: dict[str, list[dict[str, Any]]] = {r["id"]: [] for r in scenelets}
    for row in scenelets:
        parent = row.get("parent_id")
        if parent:
            if parent not in by_id:
                raise InputError(f"Story {story_id}: scenelet {row['id']} has unknown parent_id {parent}.")
            children[parent].append(row)
    for kids in children.values():
        # newest first; equal timestamps fall back to the id, as the original did
        kids.sort(key=lambda r: (_neg(r), str(r["id"])))
    nodes: dict[str, SceneletNode] = {}
    stack = [roots[0]]
    seen: set[str] = set()
    while stack:
        row = stack.pop()
        if row["id"] in seen:
            raise InputError(f"Story {story_id}: the scenelet tree has a cycle at {row['id']}.")
        seen.add(row["id"])
        seq = len(nodes) + 1
        kids = children[row["id"]]
        nodes[row["id"]] = SceneletNode(row["id"], f"scenelet-{seq}", seq, row.get("parent_id"),
                                        tuple(k["id"] for k in kids), row)
        stack.extend(reversed(kids))
    if len(seen) != len(by_id):
        orphans = sorted(set(by_id) - seen)
        raise InputError(f"Story {story_id}: scenelets not reachable from the root (cycle?): {', '.join(orphans)}.")
    return nodes


class _Desc(str):
    """Reverses string order so a single ascending sort gives created_at descending."""

    def __lt__(self, other: str) -> bool:
        return str.__gt__(self, other)

    def __gt__(self, other: str) -> bool:
        return str.__lt__(self, other)


def _neg(row: dict[str, Any]) -> _Desc:
    return _Desc(str(row.get("created_at") or ""))
