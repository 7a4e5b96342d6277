"""doit tasks from a session: one task per target file, plus `shot:` and `story:` groups and the review page.

Task names (one story per invocation, so scenelet ids are unambiguous): see core/naming.py. Groups `ref`, `image`,
`video` are doit's own basename groups (CREATE_VISUAL_REFERENCE_IMAGES, CREATE_SHOT_IMAGES, CREATE_SHOT_VIDEO);
wildcards filter them (`doit 'image:scenelet-2_*'`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from doit.exceptions import TaskFailed

from ..bootstrap import Session
from ..building.summary import SAID_CURRENT, Failure, Outcome
from ..core import naming
from ..building.space import describe
from ..core.errors import AwaitingReview, EnvironmentFault, StorytreeError
from ..core.exit_codes import ExitCode

log = logging.getLogger("storytree")
META_KEY = "storytree"  # the story task's meta holds the session (how commands and the reporter reach it)


class RecordCheck:
    """doit `uptodate` item: the pay-once record decides, so losing doit's database rebuilds nothing."""

    def __init__(self, session: Session, task: str):
        self.session, self.task = session, task

    def __call__(self, task: Any) -> bool:
        if (task.options or {}).get("download_link"):
            return False  # an explicit link is always fetched, even over an existing video
        try:
            status = self.session.planned.take(self.task)
            if status is None:  # nothing planned for it, or something was built since the plan
                status = self.session.facts.status(self.task)
            if status.current:
                self.session.outputs.ensure_kept(self.session.target(self.task))
            said = SAID_CURRENT.get(status.why)  # current for this run, but said: a paid file left alone
            if said:
                self.session.summary.add(Outcome(self.task, said, status.reason))
            return status.current
        except Exception:  # noqa: BLE001 - the build action meets the same error and reports it, typed
            return False

    def __repr__(self) -> str:
        return f"RecordCheck({self.task})"


def build_action(session: Session, task: str, download_link: str = "") -> Any:
    # doit runs an action whose uptodate said "current" only under -a; `forced` holds what -a names (cmd_run.py).
    options = session.run_options
    session.planned.forget()  # this build changes files and records: every check after it decides again
    try:
        if download_link:
            outcome = session.builder.download_link(task, download_link)
        else:
            outcome = session.builder.build(task, force=task in options.forced, wait_for_claims=options.wait_for_claims)
    except AwaitingReview as exc:
        # Not a failure: the video did what it should (nothing, nothing paid). The summary counts it and sets the exit
        # code; doit sees success, so it prints no TaskFailed and nothing downstream is an UnmetDependency. No record
        # is written, so RecordCheck still says "not current" and the next run looks at it again.
        session.summary.fail(Failure.of(task, exc))
        return None
    except Exception as exc:  # noqa: BLE001 - every failure is counted; a traceback only for our own bugs
        failure = failure_of(task, exc)
        session.summary.fail(failure)
        if failure.kind == "interrupted":
            # Stopped by Ctrl-C / SIGTERM: counted in the summary ("left for the next run") and in the exit code
            # (130 / 143), not told to doit, whose "unmet dependency" lines would follow for every target after it.
            # doit's database is a cache: the record, which this target lacks, decides the next run.
            return None
        return TaskFailed(failure.message)  # doit prints it once, without a traceback
    if outcome.action != "up to date":
        log.info("%s: %s %s", task, outcome.action, outcome.detail)
    return None


def failure_of(task: str, exc: Exception) -> Failure:
    """A typed failure for any exception of a build: ours as they are, the machine's (OSError) as an environment
    fault, anything else as a storytree bug, with its traceback in the log."""
    if isinstance(exc, StorytreeError):
        return Failure.of(task, exc)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return Failure.of(task, EnvironmentFault(
            f"{task}: {describe(exc)}{where}. Fix the folder or free space and build again; finished targets are kept."))
    log.error("%s: storytree bug: %s", task, exc, exc_info=exc)
    return Failure(task, f"{task}: this is a bug in storytree ({type(exc).__name__}: {exc}); please report it with the "
                         "traceback above. Finished targets are kept.", "bug", False, ExitCode.FAILED)


def task_dicts(session: Session) -> Iterator[dict[str, Any]]:
    root = session.settings.assets_root
    manifest = session.manifest
    shots: dict[str, list[str]] = {}
    for target in manifest.targets:
        basename, name = naming.split_task(target.task)
        task: dict[str, Any] = {
            "basename": basename,
            "name": name,
            "actions": [(build_action, [session, target.task])],
            "targets": [str(root / target.output)],
            "uptodate": [RecordCheck(session, target.task)],
            # Download-only mode builds nothing else: the linked video waits for no reference or key frame.
            "task_dep": [] if target.task == session.link_task else list(target.depends_on),
            "doc": f"{target.kind} → {target.output}",
        }
        if target.kind == "video":
            task["params"] = [{"name": "download_link", "long": "download-link", "type": str, "default": "",
                               "help": "download this already generated video instead of calling the model"}]
        if target.shot is not None:
            shots.setdefault(naming.shot_key(target.shot.scenelet_id, target.shot.shot_index), []).append(target.task)
        yield task
    for key, members in shots.items():
        yield {"basename": "shot", "name": key, "actions": None, "task_dep": members,
               "doc": f"key frame and video of shot {key}"}
    yield gallery_task(session)  # the review page: never calls a provider, listed last so it runs after the assets
    yield {"basename": "story", "name": manifest.story_id, "actions": None,
           "task_dep": [t.task for t in manifest.targets] + [naming.gallery_task(manifest.story_id)],
           "doc": f"every asset of {manifest.display_name}, then its review page", "meta": {META_KEY: session}}


def session_of(tasks: Any) -> Session | None:
    """The session behind loaded doit tasks (None when the project is not a storytree project)."""
    for task in tasks:
        meta = getattr(task, "meta", None) or {}
        if META_KEY in meta:
            return meta[META_KEY]
    return None


# -- the review page ----------------------------------------------------------------------------------
class GalleryCheck:
    """doit `uptodate` item of `gallery:<story-id>`."""

    def __init__(self, session: Session):
        self.session = session

    def __call__(self) -> bool:
        from ..gallery.freshness import is_current

        return is_current(self.session.gallery())

    def __repr__(self) -> str:
        return f"GalleryCheck({self.session.story_id})"


def gallery_action(session: Session) -> Any:
    from ..gallery.page import build_gallery

    try:
        build_gallery(session.gallery())
    except (StorytreeError, OSError) as exc:
        message = str(exc) if isinstance(exc, StorytreeError) else f"{describe(exc)} ({exc.filename})"
        log.error("%s: %s", naming.gallery_task(session.story_id), message)
        return TaskFailed(message)
    return None


def gallery_teardown(session: Session, lock: threading.Lock) -> None:
    """doit runs teardowns after every task of the run has finished: with `-j N` the page may have been
    rendered while assets were still being built, so render it again if anything changed since. (Each worker
    thread also runs the teardowns when it stops, so they take turns.)"""
    from ..gallery.freshness import is_current
    from ..gallery.page import build_gallery

    with lock:
        try:
            source = session.gallery()
            if not is_current(source):
                build_gallery(source)
        except (StorytreeError, OSError) as exc:
            log.error("%s: %s", naming.gallery_task(session.story_id), exc)


def gallery_task(session: Session) -> dict[str, Any]:
    from ..gallery.freshness import page_path

    page = page_path(session.settings, session.story_id)
    return {
        "basename": "gallery",
        "name": session.story_id,
        "actions": [(gallery_action, [session])],
        "teardown": [(gallery_teardown, [session, threading.Lock()])],
        "targets": [str(page)],
        "uptodate": [GalleryCheck(session)],
        "doc": f"review page → {page.relative_to(session.settings.root)} (never calls a provider)",
    }
