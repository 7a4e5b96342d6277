"""One copy of each repeated string in what a read decodes (records, story documents)."""

from __future__ import annotations

from typing import Any


def shared_strings(value: Any, strings: dict[str, str]) -> Any:
    """`value` with each string replaced by the equal one already in `strings` (added when new): a story's records
    and documents repeat the same reference paths, hashes, models and keys thousands of times: one copy each, not
    one per row (about 1.5 kB less per record held in memory)."""
    if isinstance(value, str):
        return strings.setdefault(value, value)
    if isinstance(value, list):
        return [shared_strings(item, strings) for item in value]
    if isinstance(value, dict):
        return {strings.setdefault(k, k) if isinstance(k, str) else k: shared_strings(v, strings)
                for k, v in value.items()}
    return value
