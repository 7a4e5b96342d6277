"""Reviews of built assets, kept in the story store beside the records (so a teammate sees them):

    Review      a verdict on one exact file of one target: approved | rejected (with a note), by whom and when.
                It holds only while the file is the one reviewed (its sha256): a regenerated key frame is unreviewed.
                `note` is also the target's director's note while it stands (see review.py for when it is cleared).
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Protocol

from ..core.errors import InputError

Verdict = Literal["approved", "rejected"]
VERDICTS: tuple[str, ...] = ("approved", "rejected")
MAX_NOTE = 2000  # characters: a director's note, not a document


@dataclass(frozen=True)
class Review:
    story_id: str
    task: str
    output_sha256: str  # the file the verdict is about
    verdict: str  # approved | rejected
    note: str  # the rejection note, kept as the director's note while it applies ("" when none)
    reviewed_by: str
    reviewed_at: str

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Review":
        return cls(**{f.name: row.get(f.name) or "" for f in fields(cls)})

    def holds_for(self, output_sha256: str | None) -> bool:
        return output_sha256 is not None and self.output_sha256 == output_sha256


def clean_note(task: str, note: str | None) -> str:
    """A note as stored: trimmed, at most MAX_NOTE characters, no control characters except line breaks and tabs."""
    text = (note or "").strip()
    if len(text) > MAX_NOTE:
        raise InputError(f"{task}: the note is {len(text)} characters long; notes are at most {MAX_NOTE}. Shorten it; "
                         "nothing was written.")
    bad = sorted({f"U+{ord(c):04X}" for c in text if c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cf")})
    if bad:
        raise InputError(f"{task}: the note contains control characters ({', '.join(bad)}); write plain text. "
                         "Nothing was written.")
    return text


class ReviewsPort(Protocol):
    """The reviews of one story (bound when opened). Every write is one transaction."""

    story_id: str

    def all(self) -> dict[str, Review]: ...
    def put(self, review: Review) -> None: ...
    def import_missing(self, reviews: list[Review]) -> None:
        """Add reviews that are not there yet (existing ones win)."""
        ...


def director_notes(reviews: dict[str, Review]) -> dict[str, str]:
    """Key-frame task → the note its next prompt carries: every standing note (a rejection's, or one an approved frame
    was made with; review.py clears notes that no longer apply)."""
    return {task: r.note for task, r in reviews.items() if r.note and task.startswith("image:")}
