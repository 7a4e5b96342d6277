"""Is a target up to date? A pure decision over one value: `TargetFacts`, everything gathered about the target
beforehand (`building/facts.py`) — its pay-once record, the hash of its output file, its current inputs, an
in-flight operation, what an unrecorded file says about itself, whether the story database points at it, another
worker's claim (its liveness already decided) and a reviewer's rejection. Never doit's database.

A target's *signature* is the hash of everything that decides what a paid call would produce: prompt hash, model,
config, provider, and the content hash of every reference image in order.

The reason of every status is an enum member (`Reason`); its words are beside it, for people. Code never branches
on the words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from .hashing import sha256_json
from .manifest import Target
from .pricing import FREE_PROVIDERS

Inputs = dict[str, Any]


class Reason(Enum):
    """Why a target is current or not. `template` is what a person reads (filled from `Status.detail`)."""

    UP_TO_DATE = "up to date"
    MISSING = "missing"
    BUILT_ELSEWHERE = ("built elsewhere by {built_by} at {built_at} and not on this build's remote yet: run "
                       "`storytree push` there, or force a rebuild here with -a")
    UNRECORDED = "no record (an existing file would be replaced)"
    INVALID_FILE = "present but not a valid file ({why}): will be rebuilt"
    REFERENCES_NOT_BUILT = "references not built yet"
    INPUTS_CHANGED = "{difference}"
    PUBLISH_ONLY = "built but path not yet written to the story database (no cost)"
    SAVED_UNRECORDED = "saved earlier but not recorded: will be recorded (no cost)"
    MADE_FROM_OTHER_INPUTS = "references or config changed since the file was made"
    ADOPTABLE = "an existing file the story database points at, without a record: will be adopted (no cost)"
    REJECTED = "rejected in review{note}"
    CLAIMED = ("being built by {owner} since {claimed_at}: this build would wait for it (no new cost)")
    IN_FLIGHT = "operation {operation} in flight since {submitted_at}: will resume (no new cost)"
    SUBMIT_UNCERTAIN = ("a submit at {submitted_at} may have reached the provider: blocked until "
                        "`storytree resubmit {story_id} {task}`")
    RESTORE = "file {state}: will be restored from {source} (no cost)"
    PULL = "built by {built_by} at {built_at}: will be pulled from the remote {source} (no cost)"
    LOST = ("{file} {state} and no copy of {sha256} is kept (not in the local objects, not on a remote): "
            "`doit -a {task}` pays for a new one")
    EDITED = "edited by hand since it was built: kept as a new version (no cost); what uses it goes out of date"
    KEPT = ("kept: a paid {provider} file; the {run_provider} provider does not replace it (-a replaces it)")
    STALE_KEPT = "out of date ({was}) but kept: rebuild=missing builds only missing files (-a replaces it)"

    def __init__(self, template: str) -> None:
        self.template = template

    @property
    def costs_nothing_new(self) -> bool:
        """Building it now pays nothing new: another worker or a recorded operation is already paying."""
        return self in (Reason.CLAIMED, Reason.IN_FLIGHT)


@dataclass(frozen=True)
class Status:
    why: Reason
    detail: Mapping[str, str] = field(default_factory=dict)
    unknown_references: tuple[str, ...] = ()  # reference paths the record never knew: rebuilding them changes nothing

    @property
    def reason(self) -> str:
        return self.why.template.format(**self.detail)

    @property
    def current(self) -> bool:
        """Nothing to do in this run (up to date, or a paid file another provider's build leaves in place)."""
        return self.why in (Reason.UP_TO_DATE, Reason.KEPT, Reason.STALE_KEPT)

    @property
    def publish_only(self) -> bool:
        """Built and recorded; only its path must still be written (free)."""
        return self.why is Reason.PUBLISH_ONLY

    @property
    def adoptable(self) -> bool:
        """The file is there and is taken as built from these inputs, only unrecorded (free)."""
        return self.why in (Reason.SAVED_UNRECORDED, Reason.ADOPTABLE)

    @property
    def elsewhere(self) -> bool:
        """Another checkout built it; this one lacks the file and no remote has it (never paid for again here)."""
        return self.why is Reason.BUILT_ELSEWHERE

    @property
    def restorable(self) -> bool:
        """Its recorded file is missing or damaged and a copy is kept: brought back for free."""
        return self.why in (Reason.RESTORE, Reason.PULL)

    @property
    def lost(self) -> bool:
        """Its recorded file is gone and no copy is kept: blocked until forced (`-a` pays for a new one)."""
        return self.why is Reason.LOST

    @property
    def claimed_by(self) -> str | None:
        """Another worker holds a live claim on it (this build would wait)."""
        return self.detail["owner"] if self.why is Reason.CLAIMED else None


# -- signatures -----------------------------------------------------------------------------------------
def signature_inputs(target: Target, provider: str, reference_hashes: list[list[str | None]]) -> Inputs:
    return {
        "prompt_sha256": target.prompt_sha256,
        "model": target.model,
        "config": target.config,
        "provider": provider,
        "references": reference_hashes,
    }


def signature_of(inputs: Inputs) -> str:
    return sha256_json(inputs)


def unknown_reference_paths(recorded: Inputs) -> frozenset[str]:
    """Reference paths a record was made without knowing (None: a video downloaded before its references existed)."""
    return frozenset(path for path, digest in recorded.get("references") or [] if digest is None)


def as_recorded(current: Inputs, recorded: Inputs) -> Inputs:
    """The current inputs with every reference hash the record did not know left unknown, so that building a
    reference later does not make the download stale."""
    unknown = unknown_reference_paths(recorded)
    if not unknown:
        return current
    references = [[path, None if path in unknown else digest] for path, digest in current.get("references") or []]
    return {**current, "references": references}


def explain_difference(old: Inputs, new: Inputs) -> str:
    reasons = []
    if old.get("prompt_sha256") != new["prompt_sha256"]:
        reasons.append("prompt changed")
    old_references = old.get("references") or []
    if [r[0] for r in old_references] != [r[0] for r in new["references"]]:
        reasons.append("reference list changed")
    elif old_references != new["references"]:
        changed = [n[0] for o, n in zip(old_references, new["references"]) if o != n]
        reasons.append("references changed: " + ", ".join(changed))
    if old.get("model") != new["model"] or old.get("config") != new["config"]:
        reasons.append("model/config changed")
    if old.get("provider") != new["provider"]:
        reasons.append(f"provider changed ({old.get('provider')} → {new['provider']})")
    return "; ".join(reasons) or "inputs changed"


def identity_of(target: Target) -> str:
    """What a target is, whatever it is called: shots by scenelet uuid and index, references by name."""
    if target.shot is not None:
        return f"{target.kind}|{target.shot.scenelet_ref}|{target.shot.shot_index}"
    return f"{target.kind}|{target.task}"


def content_key(inputs: Inputs) -> str:
    """The signature without reference paths: equal keys mean the same paid request."""
    return sha256_json({**inputs, "references": [r[1] for r in inputs.get("references", [])]})


# -- the facts ------------------------------------------------------------------------------------------
class RecordFacts(Protocol):
    """What a pay-once record says about a built target (store/build_state.py `Record`)."""

    @property
    def signature(self) -> str: ...
    @property
    def inputs(self) -> Inputs: ...
    @property
    def output_sha256(self) -> str: ...
    @property
    def published(self) -> bool: ...
    @property
    def built_by(self) -> str: ...
    @property
    def built_at(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def origin(self) -> str: ...
    @property
    def cost(self) -> float | None: ...
    @property
    def pushed_to(self) -> str: ...


def worth_keeping(record: RecordFacts) -> bool:
    """A file another provider's build must not replace on its own: money was spent on it, or a person made or chose
    it (a downloaded or hand-edited file). Records from before costs were kept, and adopted files, count by their
    provider."""
    if record.origin in ("downloaded", "edited"):
        return True
    if record.cost is not None:
        return record.cost > 0
    return record.provider not in FREE_PROVIDERS


class OperationFacts(Protocol):
    """An in-flight or uncertain paid submission (store/build_state.py `Operation`)."""

    @property
    def state(self) -> str: ...
    @property
    def operation(self) -> str | None: ...
    @property
    def submitted_at(self) -> str: ...


@dataclass(frozen=True)
class HeldClaim:
    """A live lease another worker holds on the target (liveness decided by core/claim_liveness.py)."""

    owner: str
    claimed_at: str


@dataclass(frozen=True)
class Rejection:
    """A reviewer rejected this very file (its sha256)."""

    output_sha256: str
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class TargetFacts:
    """Everything one status decision uses. `inputs`, `provenance` and `points_here` are gathered only where they
    can matter (see `building/facts.py`); their defaults say "not asked"."""

    story_id: str
    task: str
    output_sha256: str | None  # the file at the target path now (None: no file)
    record: RecordFacts | None = None
    inputs: Inputs | None = None  # current inputs; None when a reference file is missing (not built yet)
    operation: OperationFacts | None = None  # a recorded paid submission (video job, image in a batch job)
    provenance: Mapping[str, str] = field(default_factory=dict)  # what an unrecorded PNG says about itself
    points_here: bool = False  # the story database points at the file (asked for unrecorded files only)
    claim: HeldClaim | None = None  # another worker's live claim
    rejection: Rejection | None = None  # the latest rejection of this target, whatever file it was about
    checkout: str = ""  # who is asking: records of another checkout without a file are "built elsewhere"
    adopt_existing: bool = True  # take unrecorded files the database points at as built
    provider: str = ""  # the provider this build uses ('' : not known, e.g. in old tests: never "another provider")
    damaged: str = ""  # why the file at the path, other bytes than recorded, is not a valid file of its kind
    object_local: bool = False  # the record's file is in the local objects (asked when it is missing or damaged)
    remote: str = ""  # this build's remote (display URL, '' when none): a record pushed there can be pulled
    keep_stale: bool = False  # rebuild=missing: a file at the path stays even when its inputs changed
    shown_path: str = ""  # the target's file as a person finds it (relative to the project), for messages


# Statuses of a file at the target path that only its inputs (or the lack of a record) make out of date: what
# rebuild=missing leaves in place. A rejected file is not among them (a person asked for a new one), nor an invalid one.
STALE_BUT_PRESENT = frozenset({Reason.INPUTS_CHANGED, Reason.MADE_FROM_OTHER_INPUTS, Reason.UNRECORDED,
                               Reason.REFERENCES_NOT_BUILT})


def decide(facts: TargetFacts) -> Status:
    """The status of one target, from its facts alone."""
    status = _from_files(facts)
    if facts.keep_stale and facts.output_sha256 is not None and not facts.damaged and status.why in STALE_BUT_PRESENT:
        status = Status(Reason.STALE_KEPT, {"was": status.reason})
    if status.current or status.publish_only:
        rejected = facts.rejection
        if rejected is not None and rejected.output_sha256 == facts.output_sha256:  # a person said no to this file
            status = Status(Reason.REJECTED, {"note": f": {rejected.note}" if rejected.note else ""})
    if not status.current and facts.claim is not None:
        return Status(Reason.CLAIMED, {"owner": facts.claim.owner, "claimed_at": facts.claim.claimed_at})
    return status


def _from_files(facts: TargetFacts) -> Status:
    operation, record, output = facts.operation, facts.record, facts.output_sha256
    if operation is not None:
        if operation.state == "submitted":
            return Status(Reason.IN_FLIGHT, {"operation": str(operation.operation),
                                             "submitted_at": operation.submitted_at})
        return Status(Reason.SUBMIT_UNCERTAIN, {"submitted_at": operation.submitted_at, "story_id": facts.story_id,
                                                "task": facts.task})
    if record is None:
        return Status(Reason.MISSING) if output is None else _unrecorded(facts)
    if output is None or facts.damaged:
        return _gone(facts, record, "missing" if output is None else f"damaged ({facts.damaged})")
    if record.output_sha256 != output:
        return Status(Reason.EDITED)
    if _kept_from(facts, record):
        return Status(Reason.KEPT, {"provider": record.provider, "run_provider": facts.provider})
    if facts.inputs is None:
        return Status(Reason.REFERENCES_NOT_BUILT)
    if signature_of(as_recorded(facts.inputs, record.inputs)) != record.signature:
        return Status(Reason.INPUTS_CHANGED, {"difference": explain_difference(record.inputs, as_recorded(facts.inputs, record.inputs))})
    unknown = tuple(path for path, digest in record.inputs.get("references") or [] if digest is None)
    if not record.published:
        return Status(Reason.PUBLISH_ONLY, unknown_references=unknown)
    return Status(Reason.UP_TO_DATE, unknown_references=unknown)


def _kept_from(facts: TargetFacts, record: RecordFacts) -> bool:
    """A file this build's provider must leave alone: another provider made it and it is worth keeping."""
    return bool(facts.provider) and record.provider != facts.provider and worth_keeping(record)


def _gone(facts: TargetFacts, record: RecordFacts, state: str) -> Status:
    """The recorded file is missing or damaged: restored for free where a copy is kept (unless the record no longer
    fits the manifest: then it is rebuilt as any stale target), blocked where none is."""
    stale = facts.inputs is not None and signature_of(as_recorded(facts.inputs, record.inputs)) != record.signature
    copy_kept = facts.object_local or (bool(facts.remote) and record.pushed_to == facts.remote)
    # rebuild=missing: a kept copy of the recorded file is brought back even though its inputs changed (free)
    if stale and not _kept_from(facts, record) and not (facts.keep_stale and copy_kept):
        assert facts.inputs is not None
        return Status(Reason.INPUTS_CHANGED, {"difference": explain_difference(record.inputs, as_recorded(facts.inputs, record.inputs))})
    elsewhere = bool(record.built_by) and record.built_by != facts.checkout
    on_remote = bool(facts.remote) and record.pushed_to == facts.remote
    if facts.object_local:
        return Status(Reason.RESTORE, {"state": state, "source": "the local objects"})
    if on_remote and elsewhere:
        return Status(Reason.PULL, {"built_by": record.built_by, "built_at": record.built_at, "source": facts.remote})
    if on_remote:
        return Status(Reason.RESTORE, {"state": state, "source": f"the remote {facts.remote}"})
    if elsewhere:
        return Status(Reason.BUILT_ELSEWHERE, {"built_by": record.built_by, "built_at": record.built_at})
    return Status(Reason.LOST, {"file": facts.shown_path or "file", "state": state,
                                "sha256": record.output_sha256[:12] + "…", "task": facts.task})


def _unrecorded(facts: TargetFacts) -> Status:
    """A file without a record: made by storytree and only its record lost (its provenance matches), made by the
    original system or by hand (adopted when the database points at it), or unknown (replaced). One that is not a
    valid file of its kind (empty, truncated, another format, a link out of the asset folder) is never adopted."""
    if facts.damaged:
        return Status(Reason.INVALID_FILE, {"why": facts.damaged})
    carried = facts.provenance
    if carried.get("storytree:task") == facts.task:
        inputs = facts.inputs
        if inputs is None:
            return Status(Reason.REFERENCES_NOT_BUILT)
        if carried.get("storytree:signature") == signature_of(inputs):
            return Status(Reason.SAVED_UNRECORDED)
        said = {**inputs, **{key: carried[f"storytree:{key}"] for key in ("prompt_sha256", "model", "provider")
                             if f"storytree:{key}" in carried}}
        if said != inputs:
            return Status(Reason.INPUTS_CHANGED, {"difference": explain_difference(said, inputs)})
        if carried.get("storytree:signature"):
            return Status(Reason.MADE_FROM_OTHER_INPUTS)
    if facts.adopt_existing and facts.points_here:
        # adopted with the inputs it has now: they must all be known (references built) to be recorded
        return Status(Reason.ADOPTABLE) if facts.inputs is not None else Status(Reason.REFERENCES_NOT_BUILT)
    return Status(Reason.UNRECORDED)
