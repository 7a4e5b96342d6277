"""Reviews in Supabase: the table and RPCs of supabase/migrations/000015_storytree_reviews.sql, one story per port."""

from __future__ import annotations

from ..review.verdicts import Review
from .supabase_tables import SupabaseTables

MIGRATION = "supabase/migrations/000015_storytree_reviews.sql"
COLUMNS = list(Review.__dataclass_fields__)


class SupabaseReviews(SupabaseTables):
    migration = MIGRATION
    tables = "reviews table"  # (the message reads "… lacks storytree's reviews table or functions")

    def all(self) -> dict[str, Review]:
        rows = self._select(f"read the reviews of story {self.story_id}", "storytree_reviews", COLUMNS)
        return {r["task"]: Review.from_row(r) for r in rows}

    def put(self, review: Review) -> None:
        self._rpc(f"record the review of {review.task}", "storytree_put_review", {"p_review": self._own([review])[0]})

    def import_missing(self, reviews: list[Review]) -> None:
        if reviews:
            self._rpc(f"import {len(reviews)} reviews", "storytree_import_reviews", {"p_reviews": self._own(reviews)})
