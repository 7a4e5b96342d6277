"""Whose claim is it, and does it still hold? Decided here and nowhere else, from plain facts, for every reader of
claims: the build (wait, take over, or report), the dry-run, `storytree verify` and the review page.

A claim is a lease a worker takes in the story store before it pays for a target. Its owner is written
`<host>:<project folder> (pid <n>)`. The store answers only claims whose lease has not expired (by the database's
clock where there is one); this module adds what only this machine can know: whether the owning process, when it
runs here, is still alive. A claim of a dead process on this machine does not hold — nobody waits for its lease.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

OWNER = re.compile(r"^(?P<host>[^:]+):.* \(pid (?P<pid>\d+)\)$")


class Liveness(Enum):
    OURS = "ours"  # this process holds it: not a reason to wait
    LIVE = "live"  # another worker holds it and may be paying right now
    DEAD_HERE = "dead here"  # its process ran on this machine and is gone: take it over at once


@dataclass(frozen=True)
class ClaimOwner:
    host: str
    pid: int | None  # None for an owner written in another form (then only its lease decides)


def owner_name(checkout: str, pid: int) -> str:
    """A process as a claim owner: `<host>:<project folder> (pid <n>)`; `checkout` is `<host>:<project folder>`."""
    return f"{checkout} (pid {pid})"


def parse_owner(owner: str) -> ClaimOwner:
    match = OWNER.match(owner)
    if match is None:
        return ClaimOwner(owner.split(":", 1)[0], None)
    return ClaimOwner(match["host"], int(match["pid"]))


def runs_here(owner: str, host: str) -> int | None:
    """The pid to look for on this machine when `owner` is a process of `host` (this machine), else None."""
    parsed = parse_owner(owner)
    return parsed.pid if parsed.host == host else None


def liveness(owner: str, me: str, pid_alive: bool | None) -> Liveness:
    """`pid_alive`: whether the owner's process still runs, known only for owners on this machine (None elsewhere:
    then the lease decides, and the store returns only unexpired leases)."""
    if owner == me:
        return Liveness.OURS
    if pid_alive is False:
        return Liveness.DEAD_HERE
    return Liveness.LIVE
