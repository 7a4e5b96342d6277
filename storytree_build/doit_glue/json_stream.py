"""A JSON document written a piece at a time, byte for byte what `json.dumps(document, indent=2)` writes: members
before a long list, its items one by one (each encoded and written, then dropped), members after it. The dry-run's
listing of thousands of targets never exists as one object or one string."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import IO, Any

ITEM_INDENT = "    "  # an item of a list that is a member of the top-level object


def _members(members: dict[str, Any]) -> str:
    """The `  "key": value` lines of `members` as they stand inside the braces of the whole document."""
    return json.dumps(members, indent=2)[2:-2]  # without "{\n" and "\n}"


def _item(item: Any) -> str:
    # A JSON text has no raw newline inside a string, so every line of the item's own text can be indented.
    return "\n".join(ITEM_INDENT + line for line in json.dumps(item, indent=2).split("\n"))


def write_document(out: IO[str], before: dict[str, Any], name: str, items: Iterable[Any],
                   after: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
    """Write `{**before, name: [*items], **after}` followed by a newline. `after` may be a callable returning the
    members that follow, for members known only once every item was written (problems found on the way)."""
    out.write("{\n" + (_members(before) + ",\n" if before else "") + f"  {json.dumps(name)}: [")
    first = True
    for item in items:
        out.write(("\n" if first else ",\n") + _item(item))
        first = False
    out.write("]" if first else "\n  ]")
    tail = after() if callable(after) else after
    out.write((",\n" + _members(tail) if tail else "") + "\n}\n")
