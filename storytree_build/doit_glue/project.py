"""A storytree project as doit sees it: `dodo.py` gets its DOIT_CONFIG and its task creator from here.

At task-load time (after doit has read its command line) the settings are built with doit's variables, the story is
chosen, and a `Session` (bootstrap.py) is opened; the session rides along on the `story:<id>` task's `meta`, which
is how the `run` and `dryrun` commands and the reporter reach it — no module global.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doit.exceptions import InvalidCommand

from ..files.atomic import private_folder
from ..files.sqlite_file import damage, set_aside
from ..bootstrap import Session
from ..core.errors import StorytreeError
from ..core.ids import resolve_prefix
from ..settings import RUN_VARIABLES, Settings, load_settings, state_dir
from . import argv
from .interrupts import Interrupts
from .reporter import SummaryReporter
from .gc_phases import loading_starts

log = logging.getLogger("storytree")

DOIT_COMMANDS = {"run", "list", "info", "forget", "ignore", "help", "clean", "dumpdb", "strace", "reset-dep",
                 "tabcompletion", "dryrun"}


class DoitProject:
    def __init__(self) -> None:
        self.session: Session | None = None
        self.interrupts = Interrupts()  # Ctrl-C / SIGTERM: wind down, no traceback (interrupts.py)

    def doit_config(self) -> dict[str, Any]:
        """doit opens its database before it loads any task, so its folder must exist first, and a database doit
        could not read is set aside here, before doit sees it."""
        folder = private_folder(state_dir())
        dep_file = folder / "doit.sqlite"
        check_doit_db(dep_file)
        return {
            "default_tasks": [],  # a bare `doit` builds nothing: every paid build is asked for by name
            "backend": "sqlite3",
            "dep_file": str(dep_file),
            "minversion": "0.37.0",
            "reporter": SummaryReporter,
            "verbosity": 2,
        }

    def tasks(self, args: list[str] | None = None) -> Iterator[dict[str, Any]]:
        from doit import get_var

        configure_process()
        try:
            settings = load_settings(variables={name: get_var(name) for name in RUN_VARIABLES})
            private_folder(settings.state_dir)
            invocation = argv.parse(list(sys.argv[1:] if args is None else args), DOIT_COMMANDS)
            story_id = choose_story(settings, invocation)
            if story_id is None:
                return
            self.session = Session.open(settings, story_id, link_task=invocation.link_task,
                                        read_only=not invocation.builds)
            self.session.builds = invocation.builds
            self.interrupts.attach(self.session.stop, settings.build.stop_grace_seconds)
        except StorytreeError as exc:
            raise InvalidCommand(str(exc)) from None
        from .tasks import task_dicts

        yield from task_dicts(self.session)

    def close(self) -> None:
        self.interrupts.uninstall()
        if self.session is not None:
            self.session.close()
            self.session = None


def check_doit_db(path: Path) -> None:
    """doit's database is a cache (what storytree decides from is in the story store): one that cannot be read —
    garbage bytes, a truncated file, a row that is not JSON — is renamed aside with one line naming it, and doit
    starts a new one (which only means a first run that looks at every target again, paying for nothing)."""
    why = damage(path, "select task_id, task_data from doit")
    if why is None:
        why = _unreadable_row(path)
    if why is None:
        return
    try:
        aside = set_aside(path)
    except FileNotFoundError:
        return  # another process set it aside first
    except OSError as exc:  # doit then reports the file itself
        _say(f"doit's database {path} cannot be read ({why}) and cannot be moved aside ({exc}); delete it (it is a "
             "cache) and run again")
        return
    _say(f"doit's database {path} could not be read ({why}); set aside as {aside.name}, a new one is started "
         "(nothing is rebuilt or paid for because of it)")


def _unreadable_row(path: Path) -> str | None:
    """A row whose task_data doit could not decode (doit reads rows lazily, mid-run, with a traceback)."""
    try:
        conn = sqlite3.connect(path, timeout=5.0)
    except sqlite3.Error:
        return None
    try:
        for task_id, data in conn.execute("select task_id, task_data from doit"):
            try:
                json.loads(data if isinstance(data, str) else bytes(data).decode("utf-8"))
            except (TypeError, ValueError):
                return f"the row of {task_id!r} is not JSON"
    except sqlite3.Error:
        return None  # busy: another doit holds it; leave it alone
    finally:
        conn.close()
    return None


def _say(line: str) -> None:
    _log_handler()
    log.warning("%s", line)


def choose_story(settings: Settings, invocation: argv.Invocation) -> str | None:
    """One story per invocation: `story=<id>`, STORYTREE_STORY, a `story:<id>` argument, or the only manifest."""
    chosen = settings.story
    named = invocation.named_stories()
    if len(named) > 1:
        raise InvalidCommand(f"one story per invocation, but {len(named)} were named: {', '.join(named)}.")
    if named:
        if chosen and chosen != named[0]:
            raise InvalidCommand(f"story={chosen} conflicts with story:{named[0]}.")
        chosen = named[0]
    manifests = sorted(p.stem for p in settings.manifests_dir.glob("*.yaml"))
    if chosen:
        return resolve_prefix(chosen, manifests)  # `story=5e1f`: a unique prefix of a manifest's story id
    if len(manifests) == 1:
        return manifests[0]
    if manifests and invocation.names:
        raise InvalidCommand((
            f"{len(manifests)} stories have manifests ({', '.join(manifests)}); scenelet ids repeat across stories, "
            "so name one: `doit story:<id>` or add `story=<id>` (e.g. `doit shot:scenelet-1_1 story=<id>`)."))
    return None


def configure_process() -> None:
    loading_starts()
    _log_handler()


def _log_handler() -> None:
    if not logging.getLogger("storytree").handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("storytree: %(message)s"))
        logging.getLogger("storytree").addHandler(handler)
        logging.getLogger("storytree").setLevel(logging.INFO)


def dodo_namespace() -> tuple[dict[str, Any], Any, DoitProject]:
    """(DOIT_CONFIG, task creator, project) for dodo.py."""
    project = DoitProject()
    project.interrupts.install()

    def task_storytree() -> Iterator[dict[str, Any]]:
        yield from project.tasks()

    return project.doit_config(), task_storytree, project


