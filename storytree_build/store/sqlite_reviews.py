"""Reviews in the embedded SQLite story store's own file (table `storytree_reviews`), one story per port."""

from __future__ import annotations

from dataclasses import fields

from ..review.verdicts import Review
from .sqlite_tables import _Bound, _guarded

COLUMNS = [f.name for f in fields(Review)]


class SqliteReviews(_Bound):
    @_guarded
    def all(self) -> dict[str, Review]:
        rows = self._conn().execute("select * from storytree_reviews where story_id = ?", (self.story_id,))
        return {r["task"]: Review.from_row(dict(r)) for r in rows}

    def _put(self, review: Review, verb: str) -> None:
        if review.story_id != self.story_id:
            raise ValueError(f"review of story {review.story_id} given to the reviews of story {self.story_id}")
        row = review.to_row()
        self._conn().execute(f"{verb} into storytree_reviews ({', '.join(COLUMNS)}) values "
                             f"({', '.join('?' for _ in COLUMNS)})", [row[c] for c in COLUMNS])

    @_guarded
    def put(self, review: Review) -> None:
        self._put(review, "insert or replace")

    @_guarded
    def import_missing(self, reviews: list[Review]) -> None:
        with self._transaction():
            for review in reviews:
                self._put(review, "insert or ignore")
