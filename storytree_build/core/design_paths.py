"""Whether publishing writes a target's path into a design-document field that already holds one (issue 22 §4).

The original system keeps each character's model sheet at `<story>/visuals/characters/<id>/character-model-sheet.png`
and each environment's reference at `generated/<story>/visuals/environments/<id>/environment-reference.png`, and the
visual design document's `character_model_sheet_image_path` / `environment_reference_image_path` are those images'
only pointer (the UI and the original's shot tasks read them). storytree's plate for the same field is another file,
so a build never replaces a path that points at an existing file storytree did not make:

    the field is empty                                        FILL     write ours
    it points at our file, at another target's output, at a   UPDATE   write ours
      file the records know as built, or at a file whose PNG
      provenance says storytree made it (for another story)
    it points at an existing file in the asset folder that    KEEP     leave it (said once per field; verify lists it)
      is not ours
    it points at no file in the asset folder and is not ours  REPOINT  write ours and say so: it pointed nowhere

REPOINT is the decision for a dangling pointer: nothing is shown for it today, so storytree's plate is the better
value, and the line the build prints keeps the old value on record.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from .redact import scrub_userinfo

# The story document columns whose path fields the rule guards: only the visual design document holds paths the
# original system names differently from storytree (its plates and shots have storytree's names).
GUARDED_COLUMNS = frozenset({"visual_design_document"})


class FieldChoice(Enum):
    FILL = "fill"
    UPDATE = "update"
    KEEP = "keep"
    REPOINT = "repoint"

    @property
    def writes(self) -> bool:
        return self is not FieldChoice.KEEP


@dataclass(frozen=True)
class FieldFacts:
    """What the decision for one field uses, each gathered by the caller."""

    current: str | None  # the stored value as readers take it (`naming.from_stored`): None when empty
    ours: str  # the target's output path
    current_is_file: bool  # a regular file is at `current`, inside the asset folder
    current_is_ours: bool  # a target's or recorded output of this story, or a file storytree's provenance marks


def choose(facts: FieldFacts) -> FieldChoice:
    if facts.current is None:
        return FieldChoice.FILL
    if facts.current == facts.ours or facts.current_is_ours:
        return FieldChoice.UPDATE
    if facts.current_is_file:
        return FieldChoice.KEEP
    return FieldChoice.REPOINT


def field_name(column: str, path: list[Any]) -> str:
    """`visual_design_document.character_designs[0].character_model_sheet_image_path`: how messages name a field."""
    return column + "".join(f"[{segment}]" if isinstance(segment, int) else f".{segment}" for segment in path)


MAX_SHOWN = 200  # a stored value is quoted in build lines and verify notes: a pasted document must not flood them


def shown(value: Any) -> str:
    """A stored field value as messages quote it: URL user-info scrubbed, cut to MAX_SHOWN characters."""
    text = scrub_userinfo(str(value))
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"
