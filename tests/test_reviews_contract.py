"""One contract for reviews in every store (SQLite and Supabase over a real PostgREST): stored, replaced, imported
without overwriting, and gone with their story."""

from __future__ import annotations

import copy

import pytest

from storytree_build.data.transfer import validate_export
from storytree_build.review.verdicts import Review
from support.project import SAMPLE_ID

TASK = "image:scenelet-1_1"


@pytest.fixture(params=["sqlite", "supabase"])
def reviews(request, sample_export):
    """The reviews port of a store holding the sample story, and the store."""
    if request.param == "sqlite":
        from storytree_build.store.sqlite_reviews import SqliteReviews

        store = request.getfixturevalue("store")
        port = SqliteReviews(store.path)
    else:
        from storytree_build.store.supabase_reviews import SupabaseReviews

        store = request.getfixturevalue("supabase_store")
        port = SupabaseReviews(store)
    store.import_rows(validate_export(copy.deepcopy(sample_export), store, "test"))
    yield port
    port.close()


def review(task: str = TASK, **changes) -> Review:  # noqa: ANN003
    values = dict(story_id=SAMPLE_ID, task=task, output_sha256="a" * 64, verdict="rejected",
                  note="Wren's scarf is red — «always».\nSecond line.", reviewed_by="ana@laptop",
                  reviewed_at="2026-11-29T12:00:00+00:00")
    values.update(changes)
    return Review(**values)


def test_reviews_round_trip_exactly_and_are_replaced(reviews) -> None:
    assert reviews.reviews(SAMPLE_ID) == {}
    mine = review()
    reviews.put_review(mine)
    assert reviews.reviews(SAMPLE_ID) == {TASK: mine}
    approved = review(verdict="approved", note="", output_sha256="b" * 64)
    reviews.put_review(approved)
    assert reviews.reviews(SAMPLE_ID) == {TASK: approved}


def test_import_keeps_what_is_there(reviews) -> None:
    reviews.put_review(review())
    reviews.import_reviews([review(verdict="approved", note=""), review("image:scenelet-1_2")])
    found = reviews.reviews(SAMPLE_ID)
    assert found[TASK] == review() and set(found) == {TASK, "image:scenelet-1_2"}


def test_reviews_of_an_unknown_story_are_empty(reviews) -> None:
    reviews.put_review(review())
    assert reviews.reviews("00000000-0000-4000-8000-000000000000") == {}
