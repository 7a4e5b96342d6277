"""What happens to a paid result, in this order: the asset is written atomically, recorded (so it is never paid for
again), then its relative path is written back into the story database (publishing; free to repeat)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import StoreError
from ..files.atomic import replacing, write_bytes_atomic
from ..core.manifest import Target
from ..core.status import identity_of, signature_of
from .facts import FactGatherer
from .files import to_png_with_provenance, verify_mp4
from ..store.build_state import Record, RecordsPort, utc_now

if TYPE_CHECKING:
    from ..store import StoryStore


class Outputs:
    def __init__(self, assets_root: Path, provider: str, records: RecordsPort, facts: FactGatherer,
                 store: Callable[[], "StoryStore"], *, checkout: str = ""):
        self.story_id = records.story_id
        self.assets_root = assets_root
        self.provider = provider
        self.records = records
        self.facts = facts
        self.hasher = facts.hasher
        self._store = store  # opened on first publish: a no-op build never touches the story database
        self.checkout = checkout  # who built it, in the record: another checkout without the file says so

    def path(self, target: Target) -> Path:
        return self.assets_root / target.output

    def write_image(self, target: Target, data: bytes, signature: str) -> None:
        png = to_png_with_provenance(data, target, self.provider, utc_now(), signature)
        write_bytes_atomic(self.path(target), png)

    def write_video(self, target: Target, fill: Callable[[Path], None]) -> None:
        """`fill(temp_path)` writes the video; it is checked to be an MP4 before it replaces the target."""
        with replacing(self.path(target)) as tmp:
            fill(tmp)
            verify_mp4(tmp, target.task)

    def record(self, target: Target, inputs: dict[str, Any], signature: str | None = None, origin: str = "built",
               detail: str = "") -> Record:
        out = self.path(target)
        st = os.stat(out)
        record = Record(
            story_id=self.story_id, task=target.task, output=target.output,
            signature=signature or signature_of(inputs), inputs=inputs, output_sha256=self.hasher.sha256(out, st),
            output_size=st.st_size, output_mtime_ns=st.st_mtime_ns, provider=self.provider,
            model=target.model, prompt_sha256=target.prompt_sha256, built_at=utc_now(), published=False,
            identity=identity_of(target), origin=origin, built_by=self.checkout, detail=detail)
        self.records.put(record)
        self.facts.note_built(record)
        return record

    def publish(self, target: Target) -> None:
        """Write the relative path into every DB location of the target, then mark the record published."""
        store = self._store()
        for location in target.db:
            if location.path is not None:
                store.set_document_path(self.story_id, location.column, location.path, target.output)
            elif location.scenelet_id is not None and location.shot_index is not None:
                store.set_shot_path(self.story_id, location.scenelet_id, location.shot_index, location.column,
                                    target.output)
            else:  # only a hand-edited manifest: the store would find no shot to write to either
                raise StoreError(f"{target.task}: the manifest names neither a JSON path nor a shot for "
                                 f"{location.column}; regenerate it with `storytree manifest`.")
        self.records.mark_published(target.task)
        self.facts.refresh(target.task)
