"""Identifier rules (facts doc §3.1–§3.3) and the path-safety guard for ids used in folders and task names."""

from __future__ import annotations

import pytest

from storytree_build.core.errors import InputError
from storytree_build.core.ids import normalize_name_for_path, normalize_name_to_id, require_safe_id

# facts doc §3.3, verified against the original TypeScript functions
TABLE = [
    ("Señor Jalapeño", "se-or-jalape-o", "senor-jalapeno"),
    ("Dr. O'Reilly", "dr-oreilly", "dr-o-reilly"),
    ("Cosmo's Jungle Workshop", "cosmos-jungle-workshop", "cosmo-s-jungle-workshop"),
    ("snake_case_name", "snake-case-name", "snake-case-name"),
    ("环境-1", "1", "环境-1"),
    ("Café #2", "caf-2", "cafe-2"),
    ("Ünïcode", "n-code", "unicode"),
    ("NARRATOR", "narrator", "narrator"),
    ("R2-D2", "r2-d2", "r2-d2"),
    ("scenelet-1", "scenelet-1", "scenelet-1"),
]


@pytest.mark.parametrize(("name", "expected_id", "_path"), TABLE)
def test_normalize_name_to_id_matches_original(name, expected_id, _path):
    assert normalize_name_to_id(name) == expected_id


@pytest.mark.parametrize(("name", "_id", "expected_path"), TABLE)
def test_normalize_name_for_path_matches_original(name, _id, expected_path):
    assert normalize_name_for_path(name) == expected_path


@pytest.mark.parametrize("name", ["---", ""])
def test_normalize_name_to_id_returns_empty_instead_of_raising(name):
    assert normalize_name_to_id(name) == ""


@pytest.mark.parametrize("name", ["---", "", "   ", "#!?"])
def test_normalize_name_for_path_raises_on_names_without_letters(name):
    with pytest.raises(InputError, match="Name must contain at least one alphanumeric character"):
        normalize_name_for_path(name)


def test_name_to_id_drops_quotes_and_collapses_separators():
    assert normalize_name_to_id('  "The"   `Big`  --  Top  ') == "the-big-top"


@pytest.mark.parametrize("identifier", ["narrator", "r2-d2", "scenelet-12", "wren-quillfeather", "a1"])
def test_path_normalisation_is_identity_on_ids(identifier):
    # ids come from normalizeNameToId, so putting them through normalizeNameForPath must not change them
    assert normalize_name_for_path(normalize_name_to_id(identifier)) == identifier


def test_two_names_can_collide_on_one_id():
    assert normalize_name_to_id("Cosmo's Workshop") == normalize_name_to_id("Cosmos Workshop")


@pytest.mark.parametrize(
    "value",
    ["5e1f0c2a-7b3d-4c8e-9a61-0d2f4b6c8e10", "scenelet-1", "wren-quillfeather", "v1.2_final", "A", "7"],
)
def test_require_safe_id_accepts_plain_ids(value):
    assert require_safe_id(value, "story id") == value


def test_ids_with_surrounding_blanks_are_rejected_never_trimmed():
    """Other documents name an id exactly; a trimmed copy would silently point elsewhere (issue: task `image: x _1`)."""
    with pytest.raises(InputError, match="surrounding whitespace; remove it"):
        require_safe_id("  scenelet-3 ", "scenelet_id")
    assert require_safe_id("scenelet-3", "scenelet_id") == "scenelet-3"


def test_ids_are_at_most_128_characters():
    assert require_safe_id("a" * 128, "scenelet_id") == "a" * 128
    with pytest.raises(InputError, match="129 characters long; ids are at most 128"):
        require_safe_id("a" * 129, "scenelet_id")


@pytest.mark.parametrize(
    "value",
    ["..", "../etc", "a/../b", "a..b", "a/b", "/abs", "a\\b", "\\", "..\\x", "with space", ".", ".hidden", "-x", "a\nb"],
)
def test_require_safe_id_rejects_path_escapes(value):
    with pytest.raises(InputError) as info:
        require_safe_id(value, "design id")
    message = str(info.value)
    assert "design id" in message
    assert repr(value) in message
    assert "not path-safe" in message


@pytest.mark.parametrize("value", ["", "   ", "\t", None, 12, ["a"]])
def test_require_safe_id_rejects_empty_or_non_strings(value):
    with pytest.raises(InputError, match=r"story id must be a non-empty string"):
        require_safe_id(value, "story id")
