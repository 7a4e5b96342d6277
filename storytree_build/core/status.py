"""Is a target up to date? The decision and its reason, from facts gathered elsewhere (`build/checker.py`): the
pay-once record, the hashes of the output and reference files, an in-flight video operation, a claim by another
worker, what an unrecorded file says about itself. Never doit's database.

A target's *signature* is the hash of everything that decides what a paid call would produce: prompt hash, model,
config, provider, and the content hash of every reference image in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Protocol

from .hashing import sha256_json
from .manifest import Target


@dataclass(frozen=True)
class Status:
    current: bool
    reason: str  # missing | no record | output changed | prompt changed | ... | up to date
    publish_only: bool = False  # built and recorded; only its path must still be written (free)
    adoptable: bool = False  # the file is there and is taken as built from these inputs, only unrecorded (free)
    elsewhere: bool = False  # another checkout built it; this one lacks the file (never paid for again here)
    claimed_by: str | None = None  # another worker holds a live claim on it (this build would wait)
    unknown_references: tuple[str, ...] = ()  # reference paths the record never knew: rebuilding them changes nothing


def signature_inputs(target: Target, provider: str, reference_hashes: list[list[str]]) -> dict[str, Any]:
    return {
        "prompt_sha256": target.prompt_sha256,
        "model": target.model,
        "config": target.config,
        "provider": provider,
        "references": reference_hashes,
    }


def signature_of(inputs: dict[str, Any]) -> str:
    return sha256_json(inputs)


def as_recorded(current: dict[str, Any], recorded: dict[str, Any]) -> dict[str, Any]:
    """The current inputs with every reference hash the record did not know (None: a video downloaded before its
    references existed) left unknown, so that building a reference later does not make the download stale."""
    known = {path: digest for path, digest in recorded.get("references") or []}
    if None not in known.values():
        return current
    references = [[path, None if path in known and known[path] is None else digest]
                  for path, digest in current.get("references") or []]
    return {**current, "references": references}


def explain_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
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


def content_key(inputs: dict[str, Any]) -> str:
    """The signature without reference paths: equal keys mean the same paid request."""
    return sha256_json({**inputs, "references": [r[1] for r in inputs.get("references", [])]})


class RecordFacts(Protocol):
    """What a pay-once record says about a built target (store/records.py `Record`)."""

    signature: str
    inputs: dict[str, Any]
    output_sha256: str
    published: bool
    built_by: str
    built_at: str


class OperationFacts(Protocol):
    """An in-flight or uncertain video submission (store/records.py `Operation`)."""

    state: str
    operation: str | None
    submitted_at: str


class ClaimFacts(Protocol):
    """A live lease another worker holds on the target (store/records.py `Claim`)."""

    owner: str
    claimed_at: str


@dataclass(frozen=True)
class Here:
    """Who is asking: this checkout, and whether it takes existing files the database points at as built."""

    checkout: str = ""
    adopt_existing: bool = True


def decide(story_id: str, task: str, output_sha256: str | None, record: RecordFacts | None,
           current_inputs: Callable[[], dict[str, Any] | None], operation: OperationFacts | None = None,
           provenance: Callable[[], dict[str, str]] = dict, here: Here = Here(),
           points_here: Callable[[], bool] = lambda: False,
           claim: Callable[[], ClaimFacts | None] = lambda: None,
           rejection: Callable[[], tuple[str, str] | None] = lambda: None) -> Status:
    """The status of one target. The callables are asked only when needed: `current_inputs()` hashes reference
    files (None when one is missing: not built yet); `provenance()` reads what an unrecorded file says about how it
    was made; `points_here()` reads whether the story database points at the file; `claim()` is another worker's
    live claim on the target; `rejection()` is (sha256, note) of a file a reviewer rejected."""
    status = _decide(story_id, task, output_sha256, record, current_inputs, operation, provenance, here,
                     points_here)
    if status.current or status.publish_only:
        rejected = rejection()
        if rejected is not None and rejected[0] == output_sha256:  # a person said no to this very file
            status = Status(False, "rejected in review" + (f": {rejected[1]}" if rejected[1] else ""))
    held = None if status.current else claim()
    if held is not None:
        return Status(False, f"being built by {held.owner} since {held.claimed_at}: this build would wait for it "
                             "(no new cost)", claimed_by=held.owner)
    return status


def _decide(story_id: str, task: str, output_sha256: str | None, record: RecordFacts | None,
            current_inputs: Callable[[], dict[str, Any] | None], operation: OperationFacts | None,
            provenance: Callable[[], dict[str, str]], here: Here, points_here: Callable[[], bool]) -> Status:
    if operation is not None:
        if operation.state == "submitted":
            return Status(False, f"operation {operation.operation} in flight since {operation.submitted_at}: "
                                 "will resume (no new cost)")
        return Status(False, f"a submit at {operation.submitted_at} may have reached the provider: blocked until "
                             f"`storytree resubmit {story_id} {task}`")
    if output_sha256 is None:
        if record is not None and record.built_by and record.built_by != here.checkout:
            return Status(False, f"built elsewhere by {record.built_by} at {record.built_at}; sync the asset folder "
                                 "(or force a rebuild here with -a)", elsewhere=True)
        return Status(False, "missing")
    if record is None:
        return _unrecorded(task, current_inputs, provenance, here, points_here)
    if record.output_sha256 != output_sha256:
        return Status(False, "output file changed since it was built")
    inputs = current_inputs()
    if inputs is None:
        return Status(False, "references not built yet")
    if signature_of(as_recorded(inputs, record.inputs)) != record.signature:
        return Status(False, explain_difference(record.inputs, inputs))
    unknown = tuple(path for path, digest in record.inputs.get("references") or [] if digest is None)
    if not record.published:
        return Status(False, "built but path not yet written to the story database (no cost)", publish_only=True,
                      unknown_references=unknown)
    return Status(True, "up to date", unknown_references=unknown)


def _unrecorded(task: str, current_inputs: Callable[[], dict[str, Any] | None],
                provenance: Callable[[], dict[str, str]], here: Here, points_here: Callable[[], bool]) -> Status:
    """A file without a record: made by storytree and only its record lost (its provenance matches), made by the
    original system or by hand (adopted when the database points at it), or unknown (replaced)."""
    carried = provenance()
    if carried.get("storytree:task") == task:
        inputs = current_inputs()
        if inputs is None:
            return Status(False, "references not built yet")
        if carried.get("storytree:signature") == signature_of(inputs):
            return Status(False, "saved earlier but not recorded: will be recorded (no cost)", adoptable=True)
        said = {**inputs, **{key: carried[f"storytree:{key}"] for key in ("prompt_sha256", "model", "provider")
                             if f"storytree:{key}" in carried}}
        if said != inputs:
            return Status(False, explain_difference(said, inputs))  # e.g. the prompt changed since it was made
        if carried.get("storytree:signature"):
            return Status(False, "references or config changed since the file was made")
    if here.adopt_existing and points_here():
        return Status(False, "an existing file the story database points at, without a record: will be adopted "
                             "(no cost)", adoptable=True)
    return Status(False, "no record (an existing file would be replaced)")
