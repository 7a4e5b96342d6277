"""The review gate: with `[review] key_frames = "required"`, a shot's video (about 3.20 USD) is not submitted until a
person has approved its key frame (about 0.07 USD) — that exact file. Asked before every video submit, by the dry-run
and by the `max_cost` check (a held-back video costs nothing this run)."""

from __future__ import annotations

from collections.abc import Callable

from ..core import naming
from ..core.manifest import Target
from ..core.status import Rejection
from ..core.errors import AwaitingReview
from .verdicts import Review, ReviewsPort


def frame_of(video_task: str) -> str:
    """The key-frame task of a shot video task (`video:scenelet-1_2` → `image:scenelet-1_2`)."""
    return naming.image_task(naming.split_task(video_task)[1])


class ReviewGate:
    def __init__(self, required: bool, story_id: str, reviews: ReviewsPort,
                 frame_hash: Callable[[str], str | None]):
        self.required = required
        self.story_id = story_id
        self._reviews = reviews
        self._frame_hash = frame_hash  # task → sha256 of its file now (None when missing)
        self._known: dict[str, Review] | None = None
        self._rejected: dict[str, Rejection] = {}

    def reviews(self, fresh: bool = False) -> dict[str, Review]:
        if fresh or self._known is None:
            self._known = self._reviews.all()
            self._rejected = {task: Rejection(r.output_sha256, r.note) for task, r in self._known.items()
                              if r.verdict == "rejected"}
        return self._known

    def rejections(self) -> dict[str, Rejection]:
        """task → the file a reviewer rejected (sha256, note): such a file is out of date (see core/status).
        Asked for every current target of a build, so it is derived once per read of the reviews."""
        self.reviews()
        return self._rejected

    def waiting_for(self, video: Target, frame_rebuilt: bool = False, fresh: bool = False) -> str | None:
        """The key frame this video waits for, or None when it may be paid for. `frame_rebuilt`: the plan builds a
        new key frame first, which nobody has seen yet."""
        if not self.required or video.kind != "video":
            return None
        frame = frame_of(video.task)
        if frame_rebuilt:
            return frame
        review = self.reviews(fresh).get(frame)
        if review is not None and review.verdict == "approved" and review.holds_for(self._frame_hash(frame)):
            return None
        return frame

    def reason(self, video: Target, frame: str) -> str:
        review = self.reviews().get(frame)
        if review is not None and review.verdict == "rejected" and review.holds_for(self._frame_hash(frame)):
            return (f"waiting for a new {frame}: its key frame was rejected; build it again (the rejection note is "
                    f"in its prompt once `storytree manifest {self.story_id}` has run)")
        return f"waiting for review of {frame}"

    def check(self, video: Target) -> None:
        """Before a paid submit: raise AwaitingReview (nothing paid) unless the frame is approved right now."""
        frame = self.waiting_for(video, fresh=True)
        if frame is not None:
            raise AwaitingReview(
                f"{video.task}: {self.reason(video, frame)}; not submitted, nothing paid. Approve it with "
                f"`storytree review approve {self.story_id} {frame}` (or on the page of `storytree serve`) and "
                "build again.", frame)
