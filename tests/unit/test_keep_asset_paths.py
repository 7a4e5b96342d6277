"""keep_asset_paths: an import never erases an asset path a build wrote back (the SQL twin is tested through the
store contract on a real Postgres)."""

from __future__ import annotations

from storytree_build.store.ports import keep_asset_paths


def test_paths_missing_null_or_blank_in_the_incoming_document_are_kept() -> None:
    stored = {"image_path": "a.png", "imagePath": "b.png", "note": "old", "sheet_image_path": "c.png"}
    incoming = {"image_path": None, "imagePath": "  ", "note": "new"}
    assert keep_asset_paths(stored, incoming) == {"image_path": "a.png", "imagePath": "b.png", "note": "new",
                                                  "sheet_image_path": "c.png"}


def test_incoming_paths_and_other_fields_win() -> None:
    assert keep_asset_paths({"image_path": "old.png", "x": 1}, {"image_path": "new.png", "x": 2}) == {
        "image_path": "new.png", "x": 2}
    assert keep_asset_paths({"x": 1}, {"x": None}) == {"x": None}  # only path keys are kept


def test_lists_match_by_position_and_only_the_same_design() -> None:
    stored = {"sheets": [{"character_id": "a", "image_path": "a.png"}, {"character_id": "b", "image_path": "b.png"}]}
    incoming = {"sheets": [{"character_id": "b"}, {"character_id": "a"}, {"character_id": "c"}]}
    # reordered: no entry matches its old position's design, so nothing is carried to the wrong design
    assert keep_asset_paths(stored, incoming) == incoming
    same = {"sheets": [{"character_id": "a"}, {"character_id": "b"}, {"character_id": "c"}]}
    assert keep_asset_paths(stored, same) == {"sheets": [{"character_id": "a", "image_path": "a.png"},
                                                         {"character_id": "b", "image_path": "b.png"},
                                                         {"character_id": "c"}]}


def test_nested_paths_deep_in_the_document_are_kept() -> None:
    stored = {"character_model_sheets": [{"character_id": "a", "reference_plates": [
        {"type": "CHARACTER_MODEL_SHEET", "image_path": "sheet.png"}]}]}
    incoming = {"character_model_sheets": [{"character_id": "a", "reference_plates": [
        {"type": "CHARACTER_MODEL_SHEET"}]}]}
    assert keep_asset_paths(stored, incoming) == stored


def test_a_removed_document_or_a_changed_shape_is_taken_as_given() -> None:
    assert keep_asset_paths({"image_path": "a.png"}, None) is None
    assert keep_asset_paths({"list": [{"image_path": "a.png"}]}, {"list": "text"}) == {"list": "text"}
