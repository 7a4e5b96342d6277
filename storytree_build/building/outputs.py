"""What happens to a result, in this order: its bytes become an object (the durable copy: temp + fsync + rename,
read-only), the object goes to the remote when one is set, the asset is materialised from the object, the target is
recorded (so it is never paid for again; the record it replaces is kept as a version), then its relative path is
written back into the story database (publishing; free to repeat).

A result whose asset cannot be written is still recorded: its file is missing, so the next build restores it from the
object for free. Only when the object store cannot be written either does a result go straight to the asset path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import EnvironmentFault, StoreError, StorytreeError
from ..core.manifest import DbLocation, Target
from ..core.status import identity_of, signature_of
from ..files.atomic import replacing, write_bytes_atomic
from ..files.content import check
from ..store.build_state import Record, RecordsPort, Version, utc_now, utc_now_precise
from .design_fields import DesignFields
from .facts import FactGatherer
from .files import inside, to_png_with_provenance, verify_mp4
from .space import describe
from .vault import Restored, Vault

if TYPE_CHECKING:
    from ..store import StoryStore


class Outputs:
    def __init__(self, assets_root: Path, provider: str, records: RecordsPort, facts: FactGatherer,
                 store: Callable[[], "StoryStore"], vault: Vault, *, stored: Callable[[DbLocation], Any],
                 checkout: str = "", verdicts: Callable[[str, str], str] = lambda task, sha256: ""):
        self.story_id = records.story_id
        self.assets_root = assets_root
        self.provider = provider
        self.records = records
        self.facts = facts
        self.hasher = facts.hasher
        self._store = store  # opened on first publish: a no-op build never touches the story database
        self.vault = vault
        self.checkout = checkout  # who built it, in the record: another checkout without the file says so
        self._verdict = verdicts  # (task, sha256) → the review verdict that holds for that file ('' when none)
        # An original-system path in the visual design document is never replaced (design_fields.py).
        self.design_fields = DesignFields(self.story_id, assets_root, facts, stored)

    def path(self, target: Target) -> Path:
        return inside(self.assets_root, target.output)

    # -- new files --------------------------------------------------------------------------------------------
    def write_image(self, target: Target, data: bytes, signature: str) -> Placed:
        """A generated image, with its provenance, kept and placed. Raises EnvironmentFault when the asset could
        not be written: then the object is kept (see `record`, which still works from it)."""
        png = to_png_with_provenance(data, target, self.provider, utc_now_precise(), signature)
        return self._place(target, lambda: self.vault.keep_bytes(png), lambda: write_bytes_atomic(self.path(target), png))

    def write_video(self, target: Target, fill: Callable[[Path], None]) -> Placed:
        """`fill(temp_path)` writes the video beside its target path; it is checked to be an MP4, kept as an object,
        sent to the remote, and renamed into place (the downloaded file itself is the asset: no second copy)."""
        path = self.path(target)
        only_copy: list[bool] = []  # synced only when the object store failed: then the asset is the one copy
        with replacing(path, durable=lambda: bool(only_copy)) as tmp:
            fill(tmp)
            verify_mp4(tmp, target.task)
            self.keep_current_file(target)
            try:
                sha = self.vault.keep_file(tmp)
            except StorytreeError:  # no object store: the asset itself is the only copy
                only_copy.append(True)
                return Placed("", True)
            pushed_to = self.vault.upload(sha, target.task)
        return Placed(sha, True, pushed_to)

    def keep_existing(self, target: Target) -> str:
        """The file at the target path (adopted, edited, downloaded), kept as an object; its sha256."""
        return self.vault.keep_file(self.path(target))

    def _place(self, target: Target, keep: Callable[[], str], direct: Callable[[], None]) -> Placed:
        self.keep_current_file(target)  # the file this one replaces stays restorable
        try:
            sha = keep()
        except StorytreeError:  # the object store cannot be written: the asset path is the only place left
            direct()
            return Placed("", True)
        pushed_to = self.vault.upload(sha, target.task)
        try:
            self.vault.place(sha, self.path(target))
        except (StorytreeError, OSError) as exc:
            return Placed(sha, False, pushed_to, str(exc) if isinstance(exc, StorytreeError) else describe(exc))
        return Placed(sha, True, pushed_to)

    def ensure_kept(self, target: Target) -> None:
        """A current target's file is an object (one stat when it is): files built before the object store existed
        are taken in on the first build that finds them current."""
        current = self.facts.record(target.task)
        if current is not None and not self.vault.has_local(current.output_sha256):
            try:
                self.vault.keep_file(self.path(target), current.output_sha256)
            except StorytreeError:
                pass  # not the file its record says (a race with an edit), or no room: the next build tries again

    def keep_current_file(self, target: Target) -> None:
        """Before a target's file is replaced: make sure the recorded one is an object (files made before the object
        store existed are taken in when they still hash to their record)."""
        current = self.facts.record(target.task)
        if current is None or self.vault.has_local(current.output_sha256):
            return
        path = self.path(target)
        if self.facts.file_hash(target.output) == current.output_sha256:
            try:
                self.vault.keep_file(path, current.output_sha256)
            except StorytreeError:
                pass  # it cannot be kept: the replacement goes on (the old behaviour), nothing is paid twice

    # -- restoring ----------------------------------------------------------------------------------------------
    def restore(self, target: Target) -> Restored:
        """Bring the recorded file back (local objects, then the remote); the record follows the new file's stat."""
        record = self.facts.record(target.task)
        assert record is not None  # the status said it is restorable
        done = self.vault.restore(record.output_sha256, self.path(target), record.pushed_to, target.task)
        st = os.stat(self.path(target))
        self.records.put(replace(record, output_size=st.st_size, output_mtime_ns=st.st_mtime_ns,
                                 pushed_to=record.pushed_to or ""))
        self.facts.note_built(replace(record, output_size=st.st_size, output_mtime_ns=st.st_mtime_ns))
        return done

    # -- recording ----------------------------------------------------------------------------------------------
    def record(self, target: Target, inputs: dict[str, Any], signature: str | None = None, origin: str = "built",
               detail: str = "", *, placed: Placed | None = None, cost: float | None = 0.0) -> Record:
        """Record the target's file (the one placed, or the one at its path): the record it replaces is kept as a
        version in the same transaction."""
        out = self.path(target)
        if placed is not None and not placed.written:
            size, mtime_ns, sha = self.vault.object_path(placed.sha256).stat().st_size, 0, placed.sha256
        else:
            st = os.stat(out)
            size, mtime_ns = st.st_size, st.st_mtime_ns
            sha = placed.sha256 if placed is not None and placed.sha256 else self.hasher.sha256(out, st)
        current = self.facts.record(target.task)
        replaced = None
        version = 1
        if current is not None:
            version = current.version
            if current.output_sha256 != sha:
                version = current.version + 1
                replaced = Version.of(current, self._verdict(target.task, current.output_sha256), utc_now())
        record = Record(
            story_id=self.story_id, task=target.task, output=target.output,
            signature=signature or signature_of(inputs), inputs=inputs, output_sha256=sha, output_size=size,
            output_mtime_ns=mtime_ns, provider=self.provider, model=target.model, prompt_sha256=target.prompt_sha256,
            built_at=utc_now(), published=False, identity=identity_of(target), origin=origin,
            built_by=self.checkout, detail=detail, cost=cost, version=version,
            pushed_to=placed.pushed_to if placed is not None else "")
        self.records.put(record, replaced)
        self.facts.note_built(record)
        return record

    def publish(self, target: Target, reread: bool = True) -> None:
        """Write the relative path into every DB location of the target, then mark the record published. A design
        document field that points at an existing file storytree did not make is left alone (said once). `reread`
        False: the caller has just recorded the file through `record` (the facts hold that record), so only the
        published flag changes and nothing is read back."""
        store = self._store()
        for location in target.db:
            if self.design_fields.guards(location) and not self.design_fields.writes(target, location):
                continue
            if location.path is not None:
                store.set_document_path(self.story_id, location.column, location.path, target.output)
            elif location.scenelet_id is not None and location.shot_index is not None:
                store.set_shot_path(self.story_id, location.scenelet_id, location.shot_index, location.column,
                                    target.output)
            else:  # only a hand-edited manifest: the store would find no shot to write to either
                raise StoreError(f"{target.task}: the manifest names neither a JSON path nor a shot for "
                                 f"{location.column}; regenerate it with `storytree manifest`.")
        self.records.mark_published(target.task)
        if reread:
            self.facts.refresh(target.task)
        else:
            self.facts.note_published(target.task)

    def valid_file(self, target: Target) -> bool:
        return check(self.path(target), inside=self.assets_root).ok


@dataclass(frozen=True)
class Placed:
    """Where a new result ended up: its object (sha256; '' when the object store could not be written), whether the
    asset path holds it (`why` not, when not), and which remote holds it."""

    sha256: str
    written: bool
    pushed_to: str = ""
    why: str = ""

    def unwritten_fault(self, task: str, path: Path) -> EnvironmentFault:
        return EnvironmentFault(
            f"{task}: the result is kept (object {self.sha256[:12]}…) but could not be written to {path} "
            f"({self.why}); nothing is paid again: free space or make the folder writable and build again, and it is "
            "written then.")
