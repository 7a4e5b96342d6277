"""The JSON body of a review request, decoded so that no body can do more than earn a 400: the server reads at most
MAX_BODY bytes (serve.py), the bytes must be UTF-8, nested at most MAX_DEPTH deep (counted before parsing, so no
deep structure is ever built or walked), the JSON an object of plain values whose strings are all encodable (a lone surrogate escape such as `\\ud800` cannot reach a
file name, the store or the log).
"""

from __future__ import annotations

import json
from typing import Any

MAX_BODY = 16 * 1024
MAX_DEPTH = 8  # a review is one flat object; a little more nesting is parsed so that its error can name the field
Scalar = str | int | float | bool | None


def json_object(body: bytes) -> dict[str, Scalar] | str:
    """The object `body` holds, or why it holds none (one line, for a 400 answer)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"the body is not UTF-8 (byte {exc.start} is not valid); send JSON in UTF-8"
    too_deep = f"the body is nested too deeply (more than {MAX_DEPTH} levels); send one flat JSON object"
    if _depth(text) > MAX_DEPTH:
        return too_deep
    try:
        value: Any = json.loads(text)
    except RecursionError:  # not reached past the depth check; json's own limit, should the check ever miss
        return too_deep
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


def _depth(text: str) -> int:
    """How deep `[` and `{` nest in `text`, outside strings (it need not be valid JSON: json.loads judges that)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
