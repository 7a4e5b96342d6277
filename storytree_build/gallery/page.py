"""Review gallery: one static HTML page per story, plus an index, under `apps/story-tree-ui/public/`.

The page is a build target of its own (`gallery:<story-id>`) that never calls a provider. It is rendered from the
manifest, the pay-once records, the files on disk and the story store (names, scenelet tree, prompts), and is
current while a hash of its inputs (the manifest, the story's records, every output's existence and hash, the
provider of this run, known failures, the gallery templates and their code) equals the hash kept in a sidecar
next to the page (freshness.py). That check reuses the fact gatherer's cached records and stats each output once; it never opens
the story store, so it adds almost nothing to a no-op build.

What the story store alone decides (scenelet descriptions, choice labels) is not part of that hash: prompts are,
through the manifest. After editing only such text, `doit -a gallery:<story-id>` renders the page again.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from ..files.atomic import write_text_atomic
from ..store.build_state import utc_now
from ..core import naming
from ..core.manifest import TEXT_ONLY, Target
from ..core.errors import InputError, StorytreeError
from ..review.gate import frame_of
from ..settings import Settings
from .freshness import (FORMAT, SIDECAR_NAME, TEMPLATE_FOLDER, index_path, inputs_hash, known_failures, page_path,
                        read_sidecar, sidecar_path)
from .source import GallerySource
from .thumbnails import Thumbnails
from .versions import VersionView, versions_by_task

if TYPE_CHECKING:
    import jinja2

    from ..core.story import StoryView

log = logging.getLogger("storytree")

STATE_LABELS = {"current": "up to date", "stale": "stale", "missing": "missing", "waiting": "waiting for review",
                "failed": "failed"}
TARGETS_FOLDER = "targets"  # stories/<id>/targets/<stage>/<name>.html: a target's prompt, references and settings
KIND_LABELS = {"character_plate": "character plate", "environment_keyframe": "environment keyframe",
               "key_frame": "key frame", "video": "video"}


# --- where things go ----------------------------------------------------------------------------
def asset_url(output: str, digest: str | None, prefix: str = "../../generated/") -> str:
    """URL of an asset relative to a page; `?v=` changes whenever the file does, so browsers never show an old one."""
    url = prefix + quote(output, safe="/")
    return f"{url}?v={digest[:12]}" if digest else url


def details_href(task: str) -> str:
    """URL (relative to the story page) of the target's own page: the prompt and references live there, so a long
    story's page stays small."""
    stage, name = naming.split_task(task)
    return f"{TARGETS_FOLDER}/{quote(stage)}/{quote(name)}.html"


def rebuild_command(task: str, story_id: str) -> str:
    return f"doit -a -s {shlex.quote(task)} story={shlex.quote(story_id)}"


# --- the page model ------------------------------------------------------------------------------


@dataclass
class RefView:
    kind: str
    id: str
    path: str
    task: str
    url: str | None
    state: str
    thumb: str | None = None

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]


@dataclass(kw_only=True)
class TargetView:
    task: str
    kind: str
    output: str
    url: str | None
    thumb: str | None  # the small picture the page shows (None: a video, or Pillow could not read it)
    state: str  # current | stale | missing | waiting (a video held back for its key frame's review) | failed
    reason: str
    stub: bool
    model: str
    provider: str | None
    built_at: str | None
    command: str
    config: str
    prompt_user: str | None = None
    prompt_system: str | None = None
    system_file: str | None = None
    prompt_error: str | None = None
    references: list[RefView] = field(default_factory=list)
    note: str | None = None
    origin: str | None = None  # built | recovered | adopted | downloaded | edited | restored (from the record)
    detail: str = ""  # the record's detail, e.g. "version 1" for a restored file
    version: int | None = None  # the current file's version number
    versions: list[VersionView] = field(default_factory=list)  # earlier versions, newest first (key frames)
    review: str | None = None  # approved | rejected | unreviewed (None: not built, or not a reviewed kind)
    review_note: str = ""  # the standing director's note (a rejection's, or one this frame was made with)
    reviewed_by: str = ""
    text_only: bool = False  # a shot that references no designs (a legacy shot): drawn from its text alone
    description: str = ""  # a reference plate's description (the full text is on the target's own page)
    frame: str | None = None  # a video's key-frame task (the page's script updates the video when it is reviewed)

    @property
    def details_href(self) -> str:
        return details_href(self.task)

    @property
    def reviewable(self) -> bool:
        """Key frames get the approve / reject form (their videos wait for it under [review] key_frames)."""
        return self.kind == "key_frame" and self.exists
    @property
    def origin_title(self) -> str:
        return {"adopted": "an existing file, recorded without generating it",
                "downloaded": "fetched with --download-link, not generated by this build",
                "recovered": "written from the recovery folder after a failed write",
                "edited": "edited by hand after it was built; kept as a version of its own",
                "restored": f"an earlier file made current again ({self.detail})"}.get(self.origin or "", "")

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def exists(self) -> bool:
        return self.url is not None


@dataclass
class Plate:
    title: str
    description: str
    target: TargetView


@dataclass
class Design:
    id: str
    subtitle: str
    plates: list[Plate]


@dataclass
class ShotCard:
    key: str
    shot_index: int
    image: TargetView | None
    video: TargetView | None
    caption: str = ""
    lines: list[dict[str, str]] = field(default_factory=list)


@dataclass(kw_only=True)
class SceneletCard:
    anchor: str
    label: str
    level: int
    description: str = ""
    choice_label: str | None = None
    choice_prompt: str | None = None
    choices: list[tuple[str, str, str]] = field(default_factory=list)  # (anchor, label, choice text)
    terminal: bool = False
    shots: list[ShotCard] = field(default_factory=list)


def _waiting_for(src: GallerySource, target: Target, reviews: dict[str, Any]) -> str | None:
    """Why an unbuilt video waits under `[review] key_frames = "required"` (None: it does not wait)."""
    if target.kind != "video" or src.settings.review.key_frames != "required":
        return None
    frame = frame_of(target.task)
    frame_target = src.manifest.by_task().get(frame)
    if frame_target is None:
        return None
    review = reviews.get(frame)
    if review is not None and review.holds_for(src.facts.file_hash(frame_target.output)):
        if review.verdict == "approved":
            return None
        return f"waiting for a new {frame}: its key frame was rejected"
    return f"waiting for review of {frame}"


def _target_view(src: GallerySource, target: Target, failures: dict[str, dict[str, Any]],
                 operations: dict[str, Any], reviews: dict[str, Any],
                 versions: list[VersionView], thumbs: Thumbnails) -> TargetView:
    facts, sid = src.facts, src.manifest.story_id
    digest = facts.file_hash(target.output)
    rec = facts.record(target.task)
    status = facts.status(target.task)
    note = None
    if target.task in failures:
        state, reason = "failed", failures[target.task]["message"]
    elif digest is None and (waiting := _waiting_for(src, target, reviews)):
        state, reason = "waiting", waiting
    elif digest is None:
        state, reason = "missing", status.reason if rec else "not built yet"
    elif status.current:
        state, reason = "current", ""
    else:
        state, reason = "stale", status.reason
    op = operations.get(target.task)
    if op is not None:
        if op.state in ("uncertain", "failed") and state != "failed":
            state = "failed"
            reason = (op.error or f"a paid submit at {op.submitted_at} may have reached the provider but no operation "
                      f"name came back; check the provider's console, then `storytree resubmit {sid} {target.task}`.")
        elif op.state in ("submitting", "submitted"):
            what = "batch job" if (op.operation or "").startswith("batches/") else "video operation"
            note = f"{what} {op.operation or '(submitting)'} in flight since {op.submitted_at}"
    review = reviews.get(target.task)
    verdict = reviewed_by = None
    if digest is not None and review is not None and review.holds_for(digest):
        verdict, reviewed_by = review.verdict, f"{review.reviewed_by} at {review.reviewed_at}"
    elif digest is not None and target.kind == "key_frame":
        verdict = "unreviewed"
    references = []
    for ref in target.references:
        ref_digest = facts.file_hash(ref.path)
        producer = ref.task if ref.task in src.manifest.by_task() else None
        ref_state = "missing" if ref_digest is None else (
            "current" if producer and facts.status(producer).current else "stale")
        references.append(RefView(ref.kind, ref.id, ref.path, ref.task,
                                  asset_url(ref.path, ref_digest) if ref_digest else None, ref_state,
                                  thumbs.url(src.settings.assets_root / ref.path, ref_digest)))
    return TargetView(
        task=target.task, kind=target.kind, output=target.output,
        url=asset_url(target.output, digest) if digest else None, state=state, reason=reason,
        thumb=thumbs.url(src.settings.assets_root / target.output, digest) if target.kind != "video" else None,
        frame=frame_of(target.task) if target.kind == "video" else None,
        stub=rec is not None and rec.provider == "stub" and rec.output_sha256 == digest,
        origin=rec.origin if rec is not None and rec.output_sha256 == digest else None,
        detail=rec.detail if rec is not None else "",
        version=rec.version if rec is not None and rec.output_sha256 == digest else None, versions=versions,
        model=target.model, provider=rec.provider if rec else None, built_at=rec.built_at if rec else None,
        command=rebuild_command(target.task, sid), config=json.dumps(target.config, sort_keys=True), note=note,
        review=verdict, reviewed_by=reviewed_by or "", review_note=review.note if review is not None else "",
        references=references, text_only=target.text_only)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _designs(view: "StoryView | None", targets: list[TargetView], by_task: dict[str, Target], kind: str) -> list[Design]:
    """Characters (kind "character") or environments, in design order, each with its plates/keyframes."""
    from ..core.story import raw_designs

    groups: dict[str, list[Plate]] = {}
    for tv in targets:
        kind_and_id = naming.design_of_reference_task(tv.task)
        if kind_and_id is None or kind_and_id[0] != kind:
            continue
        design_id = kind_and_id[1]
        title, description = tv.task.rsplit(".", 1)[1], ""
        path = by_task[tv.task].db[0].path or []
        group, item = (path[1], path[3]) if len(path) >= 4 else (None, None)
        if view is not None and view.vrp is not None and isinstance(group, int) and isinstance(item, int):
            try:
                if kind == "character":
                    sheet = view.vrp.character_model_sheets[group]
                    plate = sheet.reference_plates[item]
                    design_id, title, description = sheet.character_id, plate.type, plate.plate_description
                else:
                    entry = view.vrp.environment_keyframes[group]
                    frame = entry.keyframes[item]
                    design_id, title, description = entry.environment_id, f"keyframe {item + 1}", frame.keyframe_description
            except IndexError:
                pass
        tv.description = description
        groups.setdefault(design_id, []).append(Plate(title.replace("_", " ").lower(), description, tv))
    subtitles: dict[str, str] = {}
    order: list[str] = []
    for design_id, design, _ in raw_designs(view.vdd_raw if view else None, kind):
        order.append(design_id)
        if kind == "character":
            subtitles[design_id] = _text(design.get("role"))
        else:
            detail = design.get("detailed_description") or design.get("detailedDescription") or {}
            subtitles[design_id] = _text(detail.get("overall_description") if isinstance(detail, dict) else "")
    order += [d for d in groups if d not in order]
    return [Design(d, subtitles.get(d, ""), groups.get(d, [])) for d in order]


def _scenelets(src: GallerySource, view: "StoryView | None", shot_targets: dict[tuple[str, int], dict[str, TargetView]]
               ) -> list[SceneletCard]:
    payloads = {(s.scenelet_id, s.shot_index): s.raw_payload for s in (view.shots if view else [])}
    shots_by_scenelet: dict[str, list[ShotCard]] = {}
    ref_of: dict[str, str] = {}
    for target in src.manifest.targets:
        if target.shot is not None:
            ref_of[target.shot.scenelet_id] = target.shot.scenelet_ref
    for (scenelet_id, index), pair in shot_targets.items():
        payload = payloads.get((scenelet_id, index)) or {}
        lines = [{"source": _text(e.get("source")), "line": _text(e.get("line"))}
                 for e in payload.get("audioAndNarrative") or [] if isinstance(e, dict)]
        shot_card = ShotCard(f"{scenelet_id}_{index}", index, pair.get("key_frame"), pair.get("video"),
                             _text(payload.get("compositionAndContent")), lines)
        shots_by_scenelet.setdefault(scenelet_id, []).append(shot_card)
    for cards in shots_by_scenelet.values():
        cards.sort(key=lambda c: c.shot_index)

    out: list[SceneletCard] = []
    if view is not None and view.nodes:
        nodes = view.nodes
        levels: dict[str, int] = {}
        for node in nodes.values():  # pre-order: a parent comes before its children
            parent = nodes.get(node.parent_id) if node.parent_id else None
            levels[node.id] = 0 if parent is None else levels[parent.id] + (1 if len(parent.children) > 1 else 0)
        for node in nodes.values():
            row = node.row
            content = row.get("content")
            if not isinstance(content, dict):
                content = {}
            card = SceneletCard(anchor=node.label, label=node.label, level=levels[node.id],
                                description=_text(content.get("description")),
                                choice_label=_text(row.get("choice_label_from_parent")) or None,
                                choice_prompt=_text(row.get("choice_prompt")) or None,
                                terminal=bool(row.get("is_terminal_node")) or not node.children,
                                shots=shots_by_scenelet.pop(node.label, []))
            for child_id in node.children:
                child = nodes[child_id]
                card.choices.append((child.label, child.label,
                                     _text(child.row.get("choice_label_from_parent")) or child.label))
            out.append(card)
    for scenelet_id, cards in shots_by_scenelet.items():  # no tree (store unavailable) or shots of unknown scenelets
        out.append(SceneletCard(anchor=scenelet_id, label=scenelet_id, level=0, shots=cards))
    return out


def page_model(src: GallerySource, failures: dict[str, dict[str, Any]], thumbs: Thumbnails) -> dict[str, Any]:
    manifest = src.manifest
    problems: list[str] = []
    view: StoryView | None
    try:
        view = src.story_view()
    except StorytreeError as exc:
        view = None
        problems.append(f"The story could not be read from the story store, so names, the scenelet tree and prompts "
                        f"are missing: {exc}")
    operations = src.operations()
    by_task = manifest.by_task()
    reviews = src.reviews()
    key_frames = {t.task: t.output for t in manifest.targets if t.kind == "key_frame"}
    try:
        versions = versions_by_task(src.versions(), set(key_frames),
                                    lambda task: src.facts.file_hash(key_frames[task]), src.object_here)
    except StorytreeError as exc:
        versions = {}
        problems.append(f"The earlier versions of the key frames could not be read, so they are not listed: {exc}")
    # Without their prompts: a target's prompt is rendered when its own page is written (write_target_pages), so a
    # long story's page model does not hold every prompt and system instruction at once.
    views = [_target_view(src, t, failures, operations, reviews, versions=versions.get(t.task, []), thumbs=thumbs)
             for t in manifest.targets]
    shot_targets: dict[tuple[str, int], dict[str, TargetView]] = {}
    for target, tv in zip(manifest.targets, views):
        if target.shot is not None:
            shot_targets.setdefault((target.shot.scenelet_id, target.shot.shot_index), {})[target.kind] = tv
    counts = {label: 0 for label in STATE_LABELS.values()}
    for tv in views:
        counts[tv.state_label] += 1
    stub = sum(1 for tv in views if tv.stub)
    thumbnail = next((tv.output for tv in views if tv.kind == "key_frame" and tv.exists), None) or next(
        (tv.output for tv in views if tv.exists and tv.kind != "video"), None)
    return {
        "story_id": manifest.story_id,
        "story_readable": view is not None,  # prompts can be rendered (target pages)
        "display_name": manifest.display_name,
        "provider": src.provider_name,
        "rendered_at": utc_now(),
        "problems": problems,
        "counts": counts,
        "stub_count": stub,
        "total": len(views),
        "to_review": sum(1 for tv in views if tv.review == "unreviewed" and tv.reviewable),
        "review_required": src.settings.review.key_frames == "required",
        "targets": views,
        "characters": _designs(view, views, by_task, "character"),
        "environments": _designs(view, views, by_task, "environment"),
        "scenelets": _scenelets(src, view, shot_targets),
        "story_command": f"doit story:{manifest.story_id}",
        "gallery_command": f"doit -a {naming.gallery_task(manifest.story_id)}",
        "thumbnail": thumbnail,
    }


# --- rendering -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _environment(folder: Path) -> "jinja2.Environment":
    """One Jinja environment per templates folder (it recompiles a template whose file changed)."""
    import jinja2  # only when a page is rendered, never on a no-op build

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, auto_reload=True)
    env.globals["TEXT_ONLY"] = TEXT_ONLY  # the dry-run's words for a shot without referenced designs
    return env


def _templates(settings: Settings) -> "jinja2.Environment":
    return _environment(settings.templates_dir / TEMPLATE_FOLDER)


def render_story_page(src: GallerySource, failures: dict[str, dict[str, Any]] | None = None,
                      thumbs: Thumbnails | None = None) -> tuple[str, dict[str, Any]]:
    if failures is None:
        failures = known_failures(src, read_sidecar(src.settings, src.manifest.story_id))
    if thumbs is None:
        thumbs = Thumbnails(page_path(src.settings, src.manifest.story_id).parent)
    model = page_model(src, failures, thumbs)
    html = _templates(src.settings).get_template("story.html.j2").render(**model).lstrip()
    # The template's indentation is a quarter of a long story's page: HTML collapses it anyway (the page has no <pre>).
    return re.sub(r"\n\s+", "\n", html), model


def _text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def _with_prompt(src: GallerySource, target: Target, tv: TargetView, story_readable: bool) -> TargetView:
    """The target's view with its prompt and system instruction, for its own page only (let go once written)."""
    if not story_readable:
        return tv
    try:
        user, system = src.render(target)
    except Exception as exc:  # noqa: BLE001 - shown on the page; one broken prompt must not hide the rest
        return replace(tv, prompt_error=str(exc))
    return replace(tv, prompt_user=user, prompt_system=system, system_file=target.system_prompt)


def write_target_pages(src: GallerySource, model: dict[str, Any]) -> list[str]:
    """One small page per target (prompt, system instruction, references, settings, rebuild command), written next to
    the story page; pages of targets no longer in the manifest are removed. Returns their paths, relative."""
    folder = page_path(src.settings, src.manifest.story_id).parent
    template = _templates(src.settings).get_template("target.html.j2")
    written: list[str] = []
    by_task = src.manifest.by_task()
    for tv in model["targets"]:
        rel = unquote(tv.details_href)
        text = template.render(t=_with_prompt(src, by_task[tv.task], tv, model["story_readable"]), **model).lstrip()
        if _text_of(folder / rel) != text:  # a verdict changes one or two of 500 pages: write only those
            write_text_atomic(folder / rel, text)
        written.append(rel)
    keep = {folder / rel for rel in written}
    for old in (folder / TARGETS_FOLDER).glob("*/*.html"):
        if old not in keep:
            old.unlink(missing_ok=True)
    return written


def build_gallery(src: GallerySource) -> Path:
    """Render the story page and the index; write both atomically, then the sidecar that makes the page current."""
    settings, sid = src.settings, src.manifest.story_id
    folder = settings.templates_dir / TEMPLATE_FOLDER
    if not (folder / "story.html.j2").is_file() or not (folder / "index.html.j2").is_file():
        raise InputError(f"{folder} lacks story.html.j2 or index.html.j2: the review page cannot be rendered "
                         "(they live in templates/gallery/ of the storytree-build repository).")
    failures = known_failures(src, read_sidecar(settings, sid))
    digest = inputs_hash(src, failures)
    page = page_path(settings, sid)
    thumbs = Thumbnails(page.parent)
    html, model = render_story_page(src, failures, thumbs)
    files = write_target_pages(src, model)
    thumbs.prune()
    write_text_atomic(page, html)
    st = os.stat(page)
    sidecar = {
        "format": FORMAT, "inputs": digest, "page": [st.st_size, st.st_mtime_ns], "story_id": sid,
        "display_name": model["display_name"], "counts": model["counts"], "stub_count": model["stub_count"],
        "provider": src.provider_name,
        "total": model["total"], "thumbnail": model["thumbnail"], "rendered_at": model["rendered_at"],
        "failures": failures,
        "files": sorted(files) + sorted(f"thumbs/{name}" for name in thumbs.used),
    }
    write_text_atomic(sidecar_path(settings, sid), json.dumps(sidecar, indent=1, sort_keys=True) + "\n")
    write_index(settings)
    log.info("%s: review page %s", naming.gallery_task(sid), page.relative_to(settings.root))
    return page


def write_index(settings: Settings) -> Path:
    stories = []
    for sidecar_file in sorted((settings.public_root / "stories").glob(f"*/{SIDECAR_NAME}")):
        try:
            data = json.loads(sidecar_file.read_text(encoding="utf-8"))
        except ValueError:
            continue
        sid = sidecar_file.parent.name
        if not isinstance(data, dict) or not (sidecar_file.parent / "index.html").exists():
            continue
        stories.append({**data, "story_id": sid, "href": f"stories/{quote(sid)}/index.html",
                        "thumbnail_url": asset_url(data["thumbnail"], None, "generated/") if data.get("thumbnail") else None})
    stories.sort(key=lambda s: (str(s.get("display_name", "")).lower(), s["story_id"]))
    shown = {s["story_id"] for s in stories}
    unrendered = [p.stem for p in sorted(settings.manifests_dir.glob("*.yaml")) if p.stem not in shown]
    html = _templates(settings).get_template("index.html.j2").render(
        stories=stories, unrendered=unrendered, rendered_at=utc_now()).lstrip()
    path = index_path(settings)
    write_text_atomic(path, html)
    return path
