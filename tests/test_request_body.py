"""The review API's body decoder on its own: what each bad body is told, and that depth is judged before parsing."""

from __future__ import annotations

import pytest

from storytree_build.review.request_body import MAX_DEPTH, json_object


def nested(depth: int) -> bytes:
    return b'{"a": ' * (depth - 1) + b"[1]" + b"}" * (depth - 1)


def test_a_flat_object_is_taken():
    assert json_object(b'{"story_id": "s", "task": "image:x_1", "version": 2, "note": null}') == {
        "story_id": "s", "task": "image:x_1", "version": 2, "note": None}


def test_depth_is_counted_before_parsing_and_brackets_in_strings_do_not_count():
    assert "nested too deeply" not in str(json_object(nested(MAX_DEPTH)))
    assert json_object(nested(MAX_DEPTH + 1)) == f"the body is nested too deeply (more than {MAX_DEPTH} levels); " \
                                                 "send one flat JSON object"
    assert json_object(b'{"note": "' + b"[{" * 100 + b'\\" [[[[[[[[[["}') == {"note": "[{" * 100 + '" [[[[[[[[[['}


@pytest.mark.parametrize(("body", "error"), [
    (b"\xc3", "the body is not UTF-8 (byte 0 is not valid); send JSON in UTF-8"),
    (b"{'a': 1}", "the body is not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    (b"null", "the body must be a JSON object, not NoneType"),
    (b'{"task": {"a": 1}}', "field 'task' must be a plain value (a string or a number), not a JSON dict"),
    (b'{"\\udc80": 1}', "field '\\udc80' has a lone surrogate escape (\\ud800-\\udfff); send real characters"),
])
def test_each_bad_body_gets_one_line_saying_what_is_wrong(body: bytes, error: str):
    assert json_object(body) == error
