"""Claims: before a worker pays for a target it takes a lease on it in the story store, so no other worker — another
thread, process or machine sharing the store — pays for the same target at the same time. The lease is renewed while
the worker works (a video may poll for minutes) and released when it is done; a worker that died leaves a lease that
expires, and the next worker takes it over (a video then resumes its recorded operation, never submits again)."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..core.errors import ClaimedElsewhere
from ..store.build_state import RecordsPort

log = logging.getLogger("storytree")


class Claims:
    def __init__(self, records: RecordsPort, story_id: str, owner: str, lease_seconds: float, poll_seconds: float):
        self.records = records
        self.story_id = story_id
        self.owner = owner
        self.lease = lease_seconds
        self.poll = poll_seconds
        self.wait = True  # False under `doit --continue`: report a claimed target instead of waiting for it

    @contextmanager
    def hold(self, task: str, wait: bool | None = None) -> Iterator[None]:
        """Hold the claim on `task` while the body pays for it (renewed in the background). `wait` overrides
        `self.wait` (False: raise ClaimedElsewhere at once when another worker holds it)."""
        self._take(task, self.wait if wait is None else wait)
        done = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(task, done), name=f"claim {task}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()
            self.records.release(self.story_id, task, self.owner)

    def _take(self, task: str, wait: bool) -> None:
        told = False
        while True:
            held = self.records.claim(self.story_id, task, self.owner, self.lease)
            if held is None:
                return
            if _dead_here(held.owner):
                log.info("%s: taking over the claim of %s, which is no longer running", task, held.owner)
                self.records.release(self.story_id, task, held.owner)
                continue
            if not wait:
                raise ClaimedElsewhere(
                    f"{task}: being built by {held.owner} since {held.claimed_at}; not paid for here. Build again "
                    "later (without --continue a build waits for it); if that worker is gone for good, "
                    f"`storytree release {self.story_id} {task}` frees the claim.")
            if not told:
                log.info("%s: being built by %s since %s; waiting for it (nothing is paid here; if that worker is "
                         "gone for good, `storytree release %s %s` frees the claim)", task, held.owner,
                         held.claimed_at, self.story_id, task)
                told = True
            time.sleep(self.poll)

    def _renew(self, task: str, done: threading.Event) -> None:
        while not done.wait(self.lease / 3):
            try:
                self.records.claim(self.story_id, task, self.owner, self.lease)
            except Exception as exc:  # noqa: BLE001 - the worker itself reports store failures
                log.warning("%s: could not renew the claim (%s)", task, exc)


OWNER = re.compile(r"^(?P<host>[^:]+):.* \(pid (?P<pid>\d+)\)$")


def owner_name(checkout: str) -> str:
    """This process as a claim owner: `<host>:<project folder> (pid <n>)`."""
    return f"{checkout} (pid {os.getpid()})"


def _dead_here(owner: str) -> bool:
    """A claim of a process on this machine that no longer runs (killed, crashed): no need to wait for its lease."""
    match = OWNER.match(owner)
    if match is None or match["host"] != socket.gethostname():
        return False
    try:
        os.kill(int(match["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
