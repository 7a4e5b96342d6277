"""core/design_paths.py: publishing never replaces a design-document path that points at an existing file storytree
did not make (issue 22 §4); it fills an empty field, updates one of ours, and repoints one that points nowhere."""

from __future__ import annotations

import pytest

from storytree_build.core.design_paths import FieldChoice, FieldFacts, choose, field_name, shown

STORY = "5e1f0c2a-7b3d-4c8e-9a61-0d2f4b6c8e10"
OURS = f"{STORY}/visuals/characters/rhea/character-model-sheet-1.png"
ORIGINAL_SHEET = f"{STORY}/visuals/characters/rhea/character-model-sheet.png"


def facts(current: str | None, *, is_file: bool = False, is_ours: bool = False) -> FieldFacts:
    return FieldFacts(current=current, ours=OURS, current_is_file=is_file, current_is_ours=is_ours)


@pytest.mark.parametrize(("given", "expected"), [
    (facts(None), FieldChoice.FILL),
    (facts(OURS, is_file=True, is_ours=True), FieldChoice.UPDATE),
    (facts(OURS), FieldChoice.UPDATE),  # our own path, its file not built yet (or lost): still ours
    (facts(f"{STORY}/visuals/characters/rhea/character-model-sheet-2.png", is_file=True, is_ours=True),
     FieldChoice.UPDATE),  # another target's output
    (facts(ORIGINAL_SHEET, is_file=True), FieldChoice.KEEP),  # the original system's model sheet
    (facts(ORIGINAL_SHEET), FieldChoice.REPOINT),  # an original path whose file is gone points nowhere
    (facts("../outside.png"), FieldChoice.REPOINT),  # out of the asset folder: the caller finds no file there
])
def test_the_choice_follows_from_the_four_facts(given: FieldFacts, expected: FieldChoice) -> None:
    assert choose(given) is expected


def test_a_file_that_is_ours_is_updated_even_when_it_also_exists() -> None:
    """Ours wins over "an existing file": storytree's own files are never frozen in place."""
    assert choose(facts(f"{STORY}/visuals/characters/rhea/character-action-shot-1.png", is_file=True,
                        is_ours=True)) is FieldChoice.UPDATE


@pytest.mark.parametrize(("choice", "writes"), [
    (FieldChoice.FILL, True), (FieldChoice.UPDATE, True), (FieldChoice.REPOINT, True), (FieldChoice.KEEP, False)])
def test_only_keep_leaves_the_field_alone(choice: FieldChoice, writes: bool) -> None:
    assert choice.writes is writes


def test_fields_are_named_as_a_reader_writes_them() -> None:
    assert field_name("visual_design_document", ["character_designs", 0, "character_model_sheet_image_path"]) == \
        "visual_design_document.character_designs[0].character_model_sheet_image_path"


def test_a_quoted_value_never_shows_url_credentials_and_is_cut_short() -> None:
    assert shown("https://user:secret@example.com/a.png") == "https://***@example.com/a.png"
    long = "x" * 500
    assert shown(long) == "x" * 200 + "…"
    assert shown(ORIGINAL_SHEET) == ORIGINAL_SHEET
