"""Claims: before a worker pays for a target it takes a lease on it in the story store, so no other worker — another
thread, process or machine sharing the store — pays for the same target at the same time. The lease is renewed while
the worker works (a video may poll for minutes) and released when it is done; a worker that died leaves a lease that
expires, and the next worker takes it over (a video then resumes its recorded operation, never submits again).

Whether a claim holds is decided by `is_live` alone (core/claim_liveness.py plus the one fact only this machine
has: whether the owner's process still runs here), for the build, the dry-run, `verify` and the review page alike.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..core.claim_liveness import Liveness, liveness, runs_here
from ..core.errors import ClaimedElsewhere
from ..store.build_state import ClaimsPort

log = logging.getLogger("storytree")


def process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def claim_liveness(owner: str, me: str) -> Liveness:
    pid = runs_here(owner, socket.gethostname())
    return liveness(owner, me, process_running(pid) if pid is not None else None)


def is_live(owner: str, me: str) -> bool:
    """Another worker's claim that holds: not ours, and not of a process on this machine that is gone."""
    return claim_liveness(owner, me) is Liveness.LIVE


@dataclass(frozen=True)
class Lease:
    seconds: float  # how long a claim lives without being renewed
    poll_seconds: float  # how often a waiting worker looks again


class Claims:
    def __init__(self, port: ClaimsPort, owner: str, lease: Lease):
        self.port = port
        self.story_id = port.story_id
        self.owner = owner
        self.lease = lease

    @contextmanager
    def hold(self, task: str, wait: bool) -> Iterator[None]:
        """Hold the claim on `task` while the body pays for it (renewed in the background). `wait` False (`doit
        --continue`): raise ClaimedElsewhere at once when another worker holds it."""
        self._take(task, wait)
        done = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(task, done), name=f"claim {task}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()
            self.port.release(task, self.owner)

    def _take(self, task: str, wait: bool) -> None:
        told = False
        while True:
            held = self.port.take(task, self.owner, self.lease.seconds)
            if held is None:
                return
            if claim_liveness(held.owner, self.owner) is Liveness.DEAD_HERE:
                log.info("%s: taking over the claim of %s, which is no longer running", task, held.owner)
                self.port.release(task, held.owner)
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
            time.sleep(self.lease.poll_seconds)

    def _renew(self, task: str, done: threading.Event) -> None:
        while not done.wait(self.lease.seconds / 3):
            try:
                self.port.take(task, self.owner, self.lease.seconds)
            except Exception as exc:  # noqa: BLE001 - the worker itself reports store failures
                log.warning("%s: could not renew the claim (%s)", task, exc)
