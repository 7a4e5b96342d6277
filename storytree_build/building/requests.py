"""What a target sends: its prompt re-rendered from the story store (and checked against the manifest's hash, so a
stale manifest never spends money) and its reference images read from disk, as a provider request. The dry-run asks
the same questions without loading image bytes."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.manifest import Target
from ..core.errors import InputError, StorytreeError
from ..files.content import Verdict, check
from ..files.mime import REFERENCE_IMAGE_TYPES
from .files import inside

if TYPE_CHECKING:
    from ..providers.base import ImageRequest, ReferenceImage, VideoRequest  # the prompt machinery (jinja2) is imported when a prompt is rendered, never on a no-op build
    from ..core.prompts import PromptRenderer
    from ..core.story import StoryView


def reference_log_lines(target: Target, references: Iterable[ReferenceImage]) -> list[str]:
    """The original shot-image task's verbose lines (facts doc §6.7), character for character."""
    assert target.shot is not None
    lines = [f"[Shot {target.shot.scenelet_id} #{target.shot.shot_index}] Using reference images:"]
    return lines + [f"  - {r.kind}: {r.id} -> {r.path}" for r in references]


def print_reference_log(target: Target, references: Iterable[ReferenceImage]) -> None:
    """On stdout, without the `storytree: ` prefix of the logger (the original used console.log). doit does not
    capture task output at the verbosity storytree runs it with, so the lines reach the terminal. One write per
    shot, so parallel threads (`-j N`) never interleave lines inside a block."""
    sys.stdout.write("\n".join(reference_log_lines(target, references)) + "\n")
    sys.stdout.flush()


def stale(target: Target, why: str) -> InputError:
    story = target.output.split("/", 1)[0]
    return InputError(f"{target.task}: the manifest is out of date ({why}). Run `storytree manifest {story}` "
                      "and check the dry-run before building.")


class RequestFactory:
    def __init__(self, root: Path, assets_root: Path, story_view: Callable[[], "StoryView"],
                 renderer: Callable[[], "PromptRenderer"], max_key_frame_references: int, verbose: bool = False):
        self.root = root
        self.assets_root = assets_root
        self._view = story_view
        self._renderer = renderer
        self.max_key_frame_references = max_key_frame_references
        self.verbose = verbose
        # Reference files found valid in this run, by what their stat says: a reference shared by many shots is
        # decoded once, not once per shot; any rewrite (new inode, size, mtime or ctime) is checked again.
        self._valid: dict[Path, tuple[tuple[int, ...], Verdict]] = {}
        self._valid_lock = threading.Lock()

    def render(self, target: Target) -> tuple[str, str | None]:
        """(user prompt, system instruction), re-rendered from the store; must match the manifest's hash."""
        from ..core.prompts import StaleTarget

        view = self._view()
        try:
            prompt = self._renderer().for_target(view, target, self.max_key_frame_references)
        except StaleTarget as exc:
            raise stale(target, str(exc)) from None
        if prompt.sha256 != target.prompt_sha256:
            raise stale(target, "its prompt changed")
        return prompt.user, prompt.system

    def missing_reference(self, target: Target, ref: Any) -> InputError:
        path = self.assets_root / ref.path
        return InputError(f"{target.task}: reference image for {ref.kind} {ref.id} is missing; expected "
                          f"{path.relative_to(self.root)} (built by `doit {ref.task}`).")

    def references(self, target: Target) -> tuple[ReferenceImage, ...]:
        """Every reference image, read only after the file is checked: a regular file inside the asset folder (a link
        only when it resolves inside it), decoded completely, its type taken from its content — never a planted or
        broken file sent to a paid model."""
        from ..providers.base import ReferenceImage

        loaded = []
        for ref in target.references:
            path = inside(self.assets_root, ref.path)
            verdict = self._checked_reference(path)
            if verdict.why == "missing":
                raise self.missing_reference(target, ref)
            if not verdict.ok or verdict.media_type not in REFERENCE_IMAGE_TYPES:
                raise InputError(f"{target.task}: the reference image for {ref.kind} {ref.id} at "
                                 f"{path.relative_to(self.root)} is {verdict.why or 'not PNG, JPEG or WebP'}; it is "
                                 f"not sent and nothing is paid. Build it again (`doit -a {ref.task}`) or put the "
                                 "right file back.")
            data = path.read_bytes()
            loaded.append(ReferenceImage(ref.kind, ref.id, ref.path, verdict.media_type or "image/png", data))
        if self.verbose and target.kind == "key_frame" and loaded:
            print_reference_log(target, loaded)
        return tuple(loaded)

    def _checked_reference(self, path: Path) -> Verdict:
        key = _stat_key(path)
        with self._valid_lock:
            known = self._valid.get(path)
        if key is not None and known is not None and known[0] == key:
            return known[1]
        verdict = check(path, "image", inside=self.assets_root)
        if verdict.ok and key is not None and _stat_key(path) == key:  # unchanged while it was decoded
            with self._valid_lock:
                self._valid[path] = (key, verdict)
        return verdict

    def image(self, target: Target) -> ImageRequest:
        from ..providers.base import ImageRequest

        user, system = self.render(target)
        return ImageRequest(
            task=target.task, model=target.model, prompt=user, prompt_sha256=target.prompt_sha256,
            system_instruction=system, references=self.references(target),
            aspect_ratio=target.config.get("aspect_ratio", "16:9"), image_size=target.config.get("image_size"),
            kind=target.kind)

    def video(self, target: Target) -> VideoRequest:
        from ..providers.base import VideoRequest

        user, _ = self.render(target)
        return VideoRequest(task=target.task, model=target.model, prompt=user, prompt_sha256=target.prompt_sha256,
                            references=self.references(target), config=target.config)

    def preview(self, target: Target, will_run: set[str]) -> tuple[list[str], dict[str, Any] | None]:
        """What the dry-run shows and checks: the request that would be sent (prompt rendered from the store) and
        the problems that would stop it (stale prompt, missing reference files not built in the same run)."""
        problems = []
        request = None
        try:
            user, system = self.render(target)
            request = {"model": target.model, "config": target.config, "system_instruction": system,
                       "prompt": user, "references": [r.model_dump() for r in target.references]}
        except StorytreeError as exc:
            problems.append(str(exc))
        for ref in target.references:
            if ref.task in will_run:
                continue
            path = self.assets_root / ref.path
            if not path.is_file() or path.stat().st_size == 0:
                problems.append(f"{target.task}: reference image for {ref.kind} {ref.id} is missing: expected "
                                f"{path.relative_to(self.root)} (built by `doit {ref.task}`).")
        return problems, request


def _stat_key(path: Path) -> tuple[int, ...] | None:
    """What changes whenever the file (or the link at `path`) is replaced or rewritten; None when it cannot be read."""
    try:
        link, st = os.lstat(path), os.stat(path)
    except OSError:
        return None
    return (link.st_ino, link.st_mtime_ns, link.st_ctime_ns, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
            st.st_ctime_ns)
