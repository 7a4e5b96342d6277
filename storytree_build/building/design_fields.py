"""The design-document fields publishing guards (core/design_paths.py): gathers the facts of one field, asks the pure
decision, and says once per field and run when publishing leaves a field alone or repoints a dangling one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core import naming
from ..core.design_paths import GUARDED_COLUMNS, FieldChoice, FieldFacts, choose, field_name, shown
from ..core.errors import EnvironmentFault
from ..core.manifest import DbLocation, Target
from .facts import FactGatherer
from .files import inside, read_provenance

log = logging.getLogger("storytree")


class DesignFields:
    def __init__(self, story_id: str, assets_root: Path, facts: FactGatherer, stored: Callable[[DbLocation], Any]):
        self.story_id = story_id
        self.assets_root = assets_root
        self.facts = facts
        self._stored = stored  # location → the value the story database holds there (the session's story snapshot)
        self._said: set[str] = set()
        self._lock = threading.Lock()

    @staticmethod
    def guards(location: DbLocation) -> bool:
        return location.path is not None and location.column in GUARDED_COLUMNS

    def facts_of(self, target: Target, value: Any) -> FieldFacts:
        current = naming.from_stored(value)
        if current is None:
            return FieldFacts(current=None, ours=target.output, current_is_file=False, current_is_ours=False)
        is_file = self._is_file(current)
        # Ours: a file storytree makes for this story, or one it made for any story (its PNG says so: the field of a
        # story imported as a copy of a built one names the first story's plate).
        is_ours = self.facts.is_ours(current) or (is_file and self._made_by_storytree(current))
        return FieldFacts(current=current, ours=target.output, current_is_file=is_file, current_is_ours=is_ours)

    def choice(self, target: Target, location: DbLocation, value: Any) -> FieldChoice:
        """The decision for `location` of `target` when the database holds `value` there (unguarded: UPDATE)."""
        if not self.guards(location):
            return FieldChoice.UPDATE
        return choose(self.facts_of(target, value))

    def writes(self, target: Target, location: DbLocation) -> bool:
        """Whether publishing writes `target`'s path into `location`; a kept or repointed field is said once."""
        value = self._stored(location)
        choice = self.choice(target, location, value)
        if choice in (FieldChoice.KEEP, FieldChoice.REPOINT):
            self._say_once(target, location, value, choice)
        return choice.writes

    def _say_once(self, target: Target, location: DbLocation, value: Any, choice: FieldChoice) -> None:
        assert location.path is not None  # only guarded (JSON path) locations get here
        name = field_name(location.column, location.path)
        with self._lock:
            if name in self._said:
                return
            self._said.add(name)
        if choice is FieldChoice.KEEP:
            log.info("story %s: kept original-system path %s in %s (an existing file storytree did not make); "
                     "storytree's %s is at %s. To show storytree's file there instead, clear the field and run "
                     "`storytree verify %s`.", self.story_id, shown(value), name, target.task, target.output,
                     self.story_id)
        else:
            log.info("story %s: %s pointed at %s, which is no file in the asset folder; it now points at "
                     "storytree's %s (%s).", self.story_id, name, shown(value), target.output, target.task)

    def _is_file(self, rel: str) -> bool:
        try:
            return inside(self.assets_root, rel).is_file()
        except (EnvironmentFault, OSError, ValueError):  # out of the asset folder, or no valid path: not a file here
            return False

    def _made_by_storytree(self, rel: str) -> bool:
        return "storytree:task" in read_provenance(self.assets_root / rel)
