"""The earlier versions of a key frame, as its block on the review page lists them: number, when, who, provider and
model, review verdict and a small image from the local object store (served by `storytree serve` at
`/objects/<sha256>`, object_files.py). A version can be restored from the page when a copy of it is kept somewhere
and it is not the file already current.

The versions are not an input of the page's up-to-date hash: a version is written only in the same transaction as
the record that replaces it, which changes that hash anyway. An object freed by `storytree gc` after the page was
rendered shows as not loaded (the page's script), not as a broken image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..store.build_state import Version
from .object_files import object_url


@dataclass(frozen=True, kw_only=True)
class VersionView:
    number: int
    sha256: str
    built_at: str
    built_by: str
    provider: str
    model: str
    origin: str  # built | edited | restored | …
    verdict: str  # approved | rejected | unreviewed: the review that held for this file when it was replaced
    replaced_at: str
    url: str | None  # the object's URL when it is on this machine
    absent: str  # why there is no image ('' when there is one)
    restorable: bool

    @property
    def short_sha(self) -> str:
        return self.sha256[:12]


def versions_by_task(versions: Iterable[Version], tasks: set[str], current_sha: Callable[[str], str | None],
                     object_here: Callable[[str], bool]) -> dict[str, list[VersionView]]:
    """task → its earlier versions (newest first), for the given tasks only."""
    out: dict[str, list[VersionView]] = {}
    for version in versions:
        if version.task in tasks:
            out.setdefault(version.task, []).append(_view(version, current_sha(version.task), object_here))
    for views in out.values():
        views.sort(key=lambda v: v.number, reverse=True)
    return out


def _view(version: Version, current: str | None, object_here: Callable[[str], bool]) -> VersionView:
    record, sha = version.record, version.output_sha256
    here = object_here(sha)
    if here:
        absent = ""
    elif record.pushed_to:
        absent = f"not on this machine (on the remote {record.pushed_to}: restoring fetches it)"
    else:
        absent = "no copy kept (not in the local objects, never sent to a remote)"
    return VersionView(
        number=version.version, sha256=sha, built_at=record.built_at, built_by=record.built_by or "?",
        provider=record.provider, model=record.model, origin=record.origin, verdict=version.verdict or "unreviewed",
        replaced_at=version.replaced_at, url=object_url(sha) if here else None, absent=absent,
        restorable=(here or bool(record.pushed_to)) and sha != current)
