"""Is a target up to date? The decision and its reason, from facts gathered elsewhere (`build/checker.py`): the
pay-once record, the hashes of the output and reference files, and any in-flight video operation. Never doit's
database.

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
    adoptable: bool = False  # the file is there and was made from exactly these inputs, only unrecorded (free)


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
    """What a pay-once record says about a built target (build/records.py `Record`)."""

    signature: str
    inputs: dict[str, Any]
    output_sha256: str
    published: bool


class OperationFacts(Protocol):
    """An in-flight or uncertain video submission (build/records.py `Operation`)."""

    state: str
    operation: str | None
    submitted_at: str


def decide(story_id: str, task: str, output_sha256: str | None, record: RecordFacts | None,
           current_inputs: Callable[[], dict[str, Any] | None], operation: OperationFacts | None = None,
           provenance: Callable[[], dict[str, str]] = dict) -> Status:
    """The status of one target. `current_inputs()` (called only when needed: it hashes reference files) is None
    when a reference file is missing (not built yet); `provenance()` (read only for an unrecorded file) is what the
    file says about how it was made (`storytree:task`, `storytree:signature`, …)."""
    if operation is not None:
        if operation.state == "submitted":
            return Status(False, f"operation {operation.operation} in flight since {operation.submitted_at}: "
                                 "will resume (no new cost)")
        return Status(False, f"a submit at {operation.submitted_at} may have reached the provider: blocked until "
                             f"`storytree resubmit {story_id} {task}`")
    if output_sha256 is None:
        return Status(False, "missing")
    if record is None:
        carried = provenance()
        if carried.get("storytree:task") == task and carried.get("storytree:signature"):
            inputs = current_inputs()
            if inputs is not None and signature_of(inputs) == carried["storytree:signature"]:
                return Status(False, "saved earlier but not recorded: will be recorded (no cost)", adoptable=True)
        return Status(False, "no record (an existing file would be replaced)")
    if record.output_sha256 != output_sha256:
        return Status(False, "output file changed since it was built")
    inputs = current_inputs()
    if inputs is None:
        return Status(False, "references not built yet")
    if signature_of(inputs) != record.signature:
        return Status(False, explain_difference(record.inputs, inputs))
    if not record.published:
        return Status(False, "built but path not yet written to the story database (no cost)", publish_only=True)
    return Status(True, "up to date")
