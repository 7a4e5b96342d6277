"""Where a story's review page lives and whether it is current: the page's inputs hashed and compared with its
sidecar. Apart from the renderer (page.py) so a no-op build checks the page without importing the page model,
its templates' engine or the thumbnails (issue 25)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import StorytreeError
from ..core.hashing import sha256_json
from ..core.manifest.file import manifest_path
from ..settings import Settings

if TYPE_CHECKING:
    from .source import GallerySource

FORMAT = 3  # 2: review state and the story's fingerprint are inputs of the page; 3: thumbnails, one page per target
SIDECAR_NAME = ".gallery.json"
TEMPLATE_FOLDER = "gallery"


def page_path(settings: Settings, story_id: str) -> Path:
    return settings.public_root / "stories" / story_id / "index.html"


def sidecar_path(settings: Settings, story_id: str) -> Path:
    return page_path(settings, story_id).parent / SIDECAR_NAME


def index_path(settings: Settings) -> Path:
    return settings.public_root / "index.html"


# --- inputs and the up-to-date check -------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _source_sha() -> str:
    here = Path(__file__).parent
    return hashlib.sha256(b"".join((here / name).read_bytes()
                                   for name in ("freshness.py", "page.py", "versions.py", "thumbnails.py"))).hexdigest()


def _template_hashes(settings: Settings) -> dict[str, str]:
    folder = settings.templates_dir / TEMPLATE_FOLDER
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*")) if p.is_file()}


def _manifest_sha(src: GallerySource) -> str:
    path = manifest_path(src.settings.manifests_dir, src.manifest.story_id)
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:  # a session made from a manifest object (tests, tools)
        return sha256_json(src.manifest.model_dump(mode="json"))


def read_sidecar(settings: Settings, story_id: str) -> dict[str, Any]:
    try:
        data = json.loads(sidecar_path(settings, story_id).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def known_failures(src: GallerySource, sidecar: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Failures of this run, plus earlier ones whose target has not been built since (its record is unchanged)."""
    out: dict[str, dict[str, Any]] = {}
    tasks = src.manifest.by_task()
    for task, entry in (sidecar.get("failures") or {}).items():
        if task in tasks and isinstance(entry, dict):
            if _record_key(src, task) == entry.get("record"):
                out[task] = entry
    for task, message in sorted(src.failures().items()):
        if task in tasks:
            out[task] = {"message": message, "record": _record_key(src, task)}
    return out


def _record_key(src: GallerySource, task: str) -> str | None:
    rec = src.facts.record(task)
    return f"{rec.output_sha256}:{rec.output_mtime_ns}:{rec.built_at}" if rec else None


def gallery_inputs(src: GallerySource, failures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    facts = src.facts
    targets = []
    for target in src.manifest.targets:
        rec = facts.record(target.task)
        targets.append([target.task, facts.file_hash(target.output),
                        [rec.signature, rec.output_sha256, rec.provider, rec.published, rec.built_at] if rec else None])
    operations = src.operations()
    reviews = src.reviews()
    return {
        "format": FORMAT,
        "story": _fingerprint(src),
        "reviews": sorted([r.task, r.output_sha256, r.verdict, r.note, r.reviewed_by, r.reviewed_at]
                          for r in reviews.values()),
        "code": _source_sha(),
        "templates": _template_hashes(src.settings),
        "manifest": _manifest_sha(src),
        "provider": src.provider_name,
        "targets": targets,
        "operations": sorted([op.task, op.state, op.submitted_at, op.error] for op in operations.values()),
        "failures": {task: entry["message"] for task, entry in failures.items()},
    }


def _fingerprint(src: GallerySource) -> str:
    try:
        return src.story_fingerprint()
    except StorytreeError as exc:  # the page says the store could not be read; the next build tries again
        return f"unavailable: {exc}"


def inputs_hash(src: GallerySource, failures: dict[str, dict[str, Any]]) -> str:
    return sha256_json(gallery_inputs(src, failures))


def is_current(src: GallerySource) -> bool:
    settings, sid = src.settings, src.manifest.story_id
    sidecar = read_sidecar(settings, sid)
    if sidecar.get("format") != FORMAT:
        return False
    try:
        st = os.stat(page_path(settings, sid))
    except FileNotFoundError:
        return False
    if [st.st_size, st.st_mtime_ns] != sidecar.get("page") or not index_path(settings).exists():
        return False
    folder = page_path(settings, sid).parent
    if not all((folder / name).is_file() for name in sidecar.get("files") or []):  # thumbnails are a deletable cache
        return False
    return sidecar.get("inputs") == inputs_hash(src, known_failures(src, sidecar))
