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
def state(request, sample_export):
    """The build state of a store holding the sample story."""
    if request.param == "sqlite":
        from storytree_build.store.sqlite_records import SqliteBuildState

        store = request.getfixturevalue("store")
        opened = SqliteBuildState(store.path)
    else:
        from storytree_build.store.supabase_records import SupabaseBuildState

        store = request.getfixturevalue("supabase_store")
        opened = SupabaseBuildState(store)
    store.import_rows(validate_export(copy.deepcopy(sample_export), store, "test"))
    yield opened
    opened.close()


@pytest.fixture
def reviews(state):  # noqa: ANN001, ANN201 - the reviews port of the sample story
    return state.reviews(SAMPLE_ID)


def review(task: str = TASK, **changes) -> Review:  # noqa: ANN003
    values = dict(story_id=SAMPLE_ID, task=task, output_sha256="a" * 64, verdict="rejected",
                  note="Wren's scarf is red — «always».\nSecond line.", reviewed_by="ana@laptop",
                  reviewed_at="2026-11-29T12:00:00+00:00")
    values.update(changes)
    return Review(**values)


def test_reviews_round_trip_exactly_and_are_replaced(reviews) -> None:
    assert reviews.all() == {}
    mine = review()
    reviews.put(mine)
    assert reviews.all() == {TASK: mine}
    approved = review(verdict="approved", note="", output_sha256="b" * 64)
    reviews.put(approved)
    assert reviews.all() == {TASK: approved}


def test_import_keeps_what_is_there(reviews) -> None:
    reviews.put(review())
    reviews.import_missing([review(verdict="approved", note=""), review("image:scenelet-1_2")])
    found = reviews.all()
    assert found[TASK] == review() and set(found) == {TASK, "image:scenelet-1_2"}


def test_reviews_of_an_unknown_story_are_empty(state, reviews) -> None:  # noqa: ANN001
    reviews.put(review())
    assert state.reviews("00000000-0000-4000-8000-000000000000").all() == {}
