"""The JSON body of a review request, decoded so that no body can do more than earn a 400: the server reads at most
MAX_BODY bytes (serve.py), the bytes must be UTF-8, the JSON an object of plain values (nothing nested, so no deep
structure is ever walked) whose strings are all encodable (a lone surrogate escape such as `\\ud800` cannot reach a
file name, the store or the log).
"""

from __future__ import annotations

import json
from typing import Any

MAX_BODY = 16 * 1024
Scalar = str | int | float | bool | None


def json_object(body: bytes) -> dict[str, Scalar] | str:
    """The object `body` holds, or why it holds none (one line, for a 400 answer)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"the body is not UTF-8 (byte {exc.start} is not valid); send JSON in UTF-8"
    try:
        value: Any = json.loads(text)
    except RecursionError:  # json's C scanner stops a deep body at the recursion limit; it is just a bad body
        return "the body is not JSON that this server takes: it is nested too deeply"
    except ValueError as exc:
        return f"the body is not JSON ({exc})"[:200]
    if not isinstance(value, dict):
        return f"the body must be a JSON object, not {type(value).__name__}"
    for key, item in value.items():
        if isinstance(item, (dict, list)):
            return f"field {key[:40]!r} must be a plain value (a string or a number), not a JSON {type(item).__name__}"
        for text_value in (key, item):
            if isinstance(text_value, str) and not _encodable(text_value):
                return f"field {key[:40]!r} has a lone surrogate escape (\\ud800-\\udfff); send real characters"
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
