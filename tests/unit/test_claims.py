"""Whose claim is it, does it hold, and what a worker does about it: `core/claim_liveness.py` (pure) and
`building/claims.py` (`is_live` with the one fact only this machine has, and `Claims.hold`: take over a dead worker's
claim at once, wait for a live one, or refuse with `--continue`). The leases live in the in-memory claims port."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading

import pytest

from storytree_build.building.claims import Claims, Lease, claim_liveness, is_live, process_running
from storytree_build.core.claim_liveness import ClaimOwner, Liveness, liveness, owner_name, parse_owner, runs_here
from storytree_build.core.errors import ClaimedElsewhere
from support.fakes.build_state import MemoryClaims
from support.processes import dead_pid

STORY = "story-1"
TASK = "video:scenelet-1_1"
HOST = socket.gethostname()
REMOTE = "otherhost:/somewhere (pid 1)"  # a claim owner on another machine: never judged dead from here


def me() -> str:
    """This worker as a claim owner. Asked at test time: the pid is the test process's own (not that of a process
    that imported this module and forked the test, as a mutation-testing runner does)."""
    return owner_name(f"{HOST}:/work/project", os.getpid())


def owner_of(role: str) -> str:
    """A claim owner for a table row, made when the test runs: `me`, `live here` (another project, a live pid),
    `dead here` (a pid that is gone), or an owner written out."""
    if role == "me":
        return me()
    if role == "live here":
        return owner_name(f"{HOST}:/work/other-project", os.getpid())
    if role == "dead here":
        return owner_name(f"{HOST}:/work/other-project", dead_pid())
    return role
NO_WAIT = Lease(seconds=600, poll_seconds=0)  # renewals never come during a test body; waiting never sleeps


# -- core/claim_liveness.py: pure ----------------------------------------------------------------------
def test_an_owner_is_the_checkout_and_the_pid_and_reads_back() -> None:
    owner = owner_name("build-box:/home/ann/story", 4242)
    assert owner == "build-box:/home/ann/story (pid 4242)"
    assert parse_owner(owner) == ClaimOwner("build-box", 4242)


@pytest.mark.parametrize(("owner", "parsed"), [
    ("box:/a folder/with (parens) (pid 7)", ClaimOwner("box", 7)),
    ("box:/a:b (pid 12)", ClaimOwner("box", 12)),  # the host ends at the first colon
    ("box:/project", ClaimOwner("box", None)),  # another form: only its lease decides
    ("box:/a:b", ClaimOwner("box", None)),
    ("box:/project (pid x)", ClaimOwner("box", None)),
    ("box:/project (pid 7) ", ClaimOwner("box", None)),
    ("a worker", ClaimOwner("a worker", None)),
])
def test_owners_in_other_forms_have_no_pid(owner: str, parsed: ClaimOwner) -> None:
    assert parse_owner(owner) == parsed


@pytest.mark.parametrize(("owner", "host", "pid"), [
    ("box:/p (pid 7)", "box", 7),
    ("box:/p (pid 7)", "other-box", None),  # a process of another machine: its pid means nothing here
    ("box:/p", "box", None),
])
def test_runs_here_gives_the_pid_to_look_for_only_on_its_own_machine(owner: str, host: str, pid: int | None) -> None:
    assert runs_here(owner, host) == pid


@pytest.mark.parametrize(("owner", "pid_alive", "expected"), [
    ("me", False, Liveness.OURS),  # our own claim is never a reason to wait, whatever is said of its pid
    ("me", None, Liveness.OURS),
    ("box:/p (pid 7)", False, Liveness.DEAD_HERE),
    ("box:/p (pid 7)", True, Liveness.LIVE),
    ("box:/p (pid 7)", None, Liveness.LIVE),  # elsewhere: the unexpired lease holds
])
def test_liveness(owner: str, pid_alive: bool | None, expected: Liveness) -> None:
    assert liveness(owner_of(owner), me(), pid_alive) is expected


# -- building/claims.py: the fact only this machine has -------------------------------------------------
def test_process_running_tells_a_live_pid_from_a_gone_one() -> None:
    assert process_running(os.getpid())
    assert not process_running(dead_pid())


def test_a_process_of_another_user_counts_as_running(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(pid: int, signal: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", refused)
    assert process_running(12345)


@pytest.mark.parametrize(("owner", "expected"), [
    ("me", Liveness.OURS),
    ("live here", Liveness.LIVE),
    ("dead here", Liveness.DEAD_HERE),
    (REMOTE, Liveness.LIVE),
    (f"{HOST}:/work/project", Liveness.LIVE),  # no pid to look at: the lease decides
])
def test_claim_liveness_and_is_live(owner: str, expected: Liveness) -> None:
    owner = owner_of(owner)
    assert claim_liveness(owner, me()) is expected
    assert is_live(owner, me()) is (expected is Liveness.LIVE)


# -- Claims.hold ------------------------------------------------------------------------------------------
class FinishesAfter(MemoryClaims):
    """Another worker holds the claim and releases it after this worker has asked `polls` times."""

    def __init__(self, holder: str, polls: int) -> None:
        super().__init__(STORY)
        self.hold_for(TASK, holder, claimed_at="2026-12-01T09:00:00+00:00")
        self.polls = polls

    def take(self, task: str, owner: str, lease_seconds: float):  # noqa: ANN201
        if self.calls["take"] == self.polls and task in self.rows and self.rows[task].owner != owner:
            del self.rows[task]  # the other worker is done
        return super().take(task, owner, lease_seconds)


def test_a_free_target_is_held_while_the_body_pays_and_released_after() -> None:
    port = MemoryClaims(STORY)
    with Claims(port, me(), NO_WAIT).hold(TASK, wait=False):
        assert port.rows[TASK].owner == me()
    assert port.rows == {} and [c.owner for c in port.released] == [me()]
    assert port.calls["take"] == 1


def test_the_claim_is_released_when_the_body_fails() -> None:
    port = MemoryClaims(STORY)
    with pytest.raises(RuntimeError, match="provider down"):
        with Claims(port, me(), NO_WAIT).hold(TASK, wait=True):
            raise RuntimeError("provider down")
    assert port.rows == {} and [c.owner for c in port.released] == [me()]


@pytest.mark.parametrize("wait", [True, False])
def test_a_dead_workers_claim_here_is_taken_over_at_once(wait: bool, caplog: pytest.LogCaptureFixture) -> None:
    port = MemoryClaims(STORY)
    dead = port.hold_for(TASK, owner_of("dead here")).owner
    with caplog.at_level(logging.INFO, logger="storytree"):
        with Claims(port, me(), NO_WAIT).hold(TASK, wait=wait):
            assert port.rows[TASK].owner == me()
    assert [c.owner for c in port.released] == [dead, me()]
    assert port.calls["take"] == 2  # once refused, once granted: no waiting round
    assert [r.getMessage() for r in caplog.records] == [
        f"{TASK}: taking over the claim of {dead}, which is no longer running"]


class TakenOverMeanwhile(MemoryClaims):
    """A dead worker's claim that another machine takes over between this worker's look and its release."""

    def __init__(self, dead: str) -> None:
        super().__init__(STORY)
        self.dead = self.hold_for(TASK, dead)

    def take(self, task: str, owner: str, lease_seconds: float):  # noqa: ANN201
        held = super().take(task, owner, lease_seconds)
        if held == self.dead:
            self.hold_for(task, REMOTE, claimed_at="2026-12-01T09:00:00+00:00")  # the other machine was quicker
        return held


def test_taking_over_a_dead_claim_never_drops_the_claim_of_whoever_took_it_first() -> None:
    port = TakenOverMeanwhile(owner_of("dead here"))
    with pytest.raises(ClaimedElsewhere, match=re.escape(f"being built by {REMOTE}")):
        with Claims(port, me(), NO_WAIT).hold(TASK, wait=False):
            pass
    assert port.rows[TASK].owner == REMOTE and port.released == []


@pytest.mark.parametrize("holder", [REMOTE, "live here"])
def test_a_live_claim_with_continue_is_refused_and_left_alone(holder: str) -> None:
    holder = owner_of(holder)
    port = MemoryClaims(STORY)
    port.hold_for(TASK, holder, claimed_at="2026-12-01T09:00:00+00:00")
    ran = False
    with pytest.raises(ClaimedElsewhere) as refused:
        with Claims(port, me(), NO_WAIT).hold(TASK, wait=False):
            ran = True
    assert not ran
    assert str(refused.value) == (
        f"{TASK}: being built by {holder} since 2026-12-01T09:00:00+00:00; not paid for here. Build again later "
        "(without --continue a build waits for it); if that worker is gone for good, "
        f"`storytree release {STORY} {TASK}` frees the claim.")
    assert port.rows[TASK].owner == holder and port.released == []


def test_a_live_claim_is_waited_for_then_taken(caplog: pytest.LogCaptureFixture) -> None:
    holder = REMOTE
    port = FinishesAfter(holder, polls=3)
    with caplog.at_level(logging.INFO, logger="storytree"):
        with Claims(port, me(), NO_WAIT).hold(TASK, wait=True):
            assert port.rows[TASK].owner == me()
    assert port.calls["take"] == 4  # three refusals, then granted
    assert port.taken_by == [me()] and [c.owner for c in port.released] == [me()]  # the holder's claim was not ours to drop
    told = [r.getMessage() for r in caplog.records if "waiting for it" in r.getMessage()]
    assert told == [f"{TASK}: being built by {holder} since 2026-12-01T09:00:00+00:00; waiting for it (nothing is "
                    f"paid here; if that worker is gone for good, `storytree release {STORY} {TASK}` frees the claim)"]


class RenewalsCounted(MemoryClaims):
    """Lets a test body wait (by count, not by time) until the claim has been renewed `renewals` times; `failing`:
    every renewal finds the store unreachable."""

    def __init__(self, renewals: int, failing: bool = False) -> None:
        super().__init__(STORY)
        self.renewals = renewals
        self.failing = failing
        self.renewed = threading.Event()
        self._tries = 0

    def take(self, task: str, owner: str, lease_seconds: float):  # noqa: ANN201
        if not self.rows.get(task) or self.rows[task].owner != owner:
            return super().take(task, owner, lease_seconds)  # the first take, not a renewal
        self._tries += 1
        try:
            if self.failing:
                self._call("take")
                raise ConnectionError("store unreachable")
            return super().take(task, owner, lease_seconds)
        finally:
            if self._tries >= self.renewals:
                self.renewed.set()


def test_the_claim_is_renewed_while_the_body_works() -> None:
    port = RenewalsCounted(renewals=2)
    with Claims(port, me(), Lease(seconds=0.03, poll_seconds=0)).hold(TASK, wait=False):
        first = port.rows[TASK]
        assert port.renewed.wait(10), "the claim was never renewed"
        renewed = port.rows[TASK]
    assert renewed.owner == me() and renewed.claimed_at == first.claimed_at  # extended, not taken anew
    assert renewed.expires_at >= first.expires_at
    assert port.taken_by.count(me()) >= 3 and set(port.taken_by) == {me()} and port.rows == {}


def test_a_failed_renewal_is_logged_and_the_body_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    port = RenewalsCounted(renewals=1, failing=True)
    with caplog.at_level(logging.WARNING, logger="storytree"):
        with Claims(port, me(), Lease(seconds=0.03, poll_seconds=0)).hold(TASK, wait=False):
            assert port.renewed.wait(10), "no renewal was tried"
    warnings = {r.getMessage() for r in caplog.records if r.levelno == logging.WARNING}
    assert warnings == {f"{TASK}: could not renew the claim (store unreachable)"}
    assert port.rows == {}  # released all the same


class Stopwatch(threading.Event):
    """A `done` event that records how long the renewer waits each time and stops it after `rounds`."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.rounds = rounds
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return len(self.waits) > self.rounds


def test_a_claim_is_renewed_well_before_its_lease_runs_out() -> None:
    port = MemoryClaims(STORY)
    lease = Lease(seconds=90, poll_seconds=0)
    claims = Claims(port, me(), lease)
    done = Stopwatch(rounds=2)
    claims._renew(TASK, done)  # the renewer's loop, run here with its waits recorded
    assert port.calls["take"] == 2 and port.taken_by == [me(), me()]
    assert len(done.waits) == 3 and all(w is not None and w <= lease.seconds / 2 for w in done.waits)
