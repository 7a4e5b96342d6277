"""Reviews in Supabase: the table and RPCs of supabase/migrations/000015_storytree_reviews.sql."""

from __future__ import annotations

from ..review.verdicts import Review
from .supabase_records import SupabaseTables

MIGRATION = "supabase/migrations/000015_storytree_reviews.sql"
COLUMNS = list(Review.__dataclass_fields__)


class SupabaseReviews(SupabaseTables):
    migration = MIGRATION
    tables = "reviews table"  # (the message reads "… lacks storytree's reviews table or functions")

    def reviews(self, story_id: str) -> dict[str, Review]:
        rows = self._select(f"read the reviews of story {story_id}", "storytree_reviews", COLUMNS, story_id)
        return {r["task"]: Review.from_row(r) for r in rows}

    def put_review(self, review: Review) -> None:
        self._rpc(f"record the review of {review.task}", "storytree_put_review", {"p_review": review.to_row()})

    def import_reviews(self, reviews: list[Review]) -> None:
        if reviews:
            self._rpc(f"import {len(reviews)} reviews", "storytree_import_reviews",
                      {"p_reviews": [r.to_row() for r in reviews]})
