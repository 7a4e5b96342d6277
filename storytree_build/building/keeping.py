"""The commands around the object store: `storytree pull`, `push`, `history`, `restore` (one story) and `gc` (the
whole local store). None of them calls a provider; each says what it did in lines a person reads.

    pull      every current record's file made present (local objects, then the remote), verified, published
    push      the objects of current records and kept versions the remote lacks; the records then say so
    history   a target's current file and its earlier versions, newest first
    restore   an earlier version made current again, for free (the current one is kept as a version)
    gc        local objects no current record and none of the newest kept versions needs (never a current one)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..core.errors import InputError, OtherInputs, StorytreeError
from ..core.status import as_recorded, explain_difference, signature_of
from ..store.build_state import Record, Version, utc_now

if TYPE_CHECKING:
    from ..core.manifest import Target
    from ..bootstrap import Session
    from ..objects.local import LocalObjects
    from ..store.build_state import BuildState
    from .vault import Vault


@dataclass
class Report:
    done: list[str] = field(default_factory=list)  # one line per thing done
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


# -- pull ---------------------------------------------------------------------------------------------------------
def pull(session: Session) -> Report:
    """Make every current record's file present, without building anything (whatever its provider)."""
    report = Report()
    facts, outputs = session.facts, session.outputs
    for target in session.manifest.targets:
        record = facts.record(target.task)
        if record is None:
            report.count("not built")
            continue
        if facts.file_hash(target.output) == record.output_sha256:
            report.count("present")
            continue
        if facts.file_hash(target.output) is not None and not facts.damaged(target.output):
            report.problems.append(f"{target.task}: {target.output} was edited by hand since it was built; left as "
                                   "it is (a build keeps it as a new version)")
            continue
        try:
            done = outputs.restore(target)
        except StorytreeError as exc:
            report.problems.append(str(exc))
            continue
        if not record.published:
            outputs.publish(target)
        report.count(f"pulled from {'the local objects' if done.source == 'local' else 'the remote'}")
        report.done.append(f"{target.task}: {target.output}")
    return report


# -- push ---------------------------------------------------------------------------------------------------------
def push(session: Session) -> Report:
    """Send the objects of the story's current records and kept versions that the remote lacks."""
    report = Report()
    vault = session.workspace.vault
    remote = vault.remote()
    if remote is None:
        raise InputError("no remote is set (or it cannot be reached): set `[remote] url` in storytree.toml or "
                         "STORYTREE_REMOTE (file:///folder or s3://bucket/prefix); nothing was sent.")
    wanted: dict[str, str] = {}  # sha256 → what it is, for messages
    for target in session.manifest.targets:
        record = session.facts.record(target.task)
        if record is None:
            continue
        session.outputs.keep_current_file(target)  # files made before objects existed
        wanted[record.output_sha256] = target.task
    for version in session.versions.all():
        wanted.setdefault(version.output_sha256, f"{version.task} (version {version.version})")
    here = {sha: what for sha, what in wanted.items() if vault.has_local(sha)}
    for sha, what in wanted.items():
        if sha not in here:
            report.problems.append(f"{what}: object {sha[:12]}… is not in the local objects; nothing to send")
    missing = remote.missing(here)
    results = remote.put_many([(sha, vault.object_path(sha)) for sha in sorted(missing)])
    sent = [r.sha256 for r in results if r.ok]
    for result in results:
        if not result.ok:
            report.problems.append(f"{here[result.sha256]}: {result.error}")
        else:
            report.done.append(f"{here[result.sha256]}: sent {result.sha256[:12]}…")
    already = [sha for sha in here if sha not in missing]
    session.records.mark_pushed(sorted([*sent, *already]), vault.remote_url)
    report.count("sent", len(sent))
    report.count("already there", len(already))
    return report


# -- history and restore --------------------------------------------------------------------------------------------
def history(session: Session, task: str) -> tuple[Record | None, list[Version]]:
    target_of(session, task)
    return session.facts.record(task), session.versions.all(task)


def restore(session: Session, task: str, which: str, keep: bool = False) -> str:
    """Make an earlier version of `task` current again, for free. `which`: a version number or a sha256 prefix."""
    target = target_of(session, task)
    current, versions = history(session, task)
    version = _choose(versions, which, task, session.story_id)
    record = version.record
    inputs = session.facts.current_inputs(target)
    if inputs is not None:  # the manifest's inputs (the provider is the one that made the version, not this run's)
        inputs = {**inputs, "provider": record.inputs.get("provider", record.provider)}
    differs = inputs is not None and signature_of(as_recorded(inputs, record.inputs)) != record.signature
    if differs and not keep:
        assert inputs is not None
        raise OtherInputs(
            f"{task}: version {version.version} ({version.output_sha256[:12]}…) was made from other inputs than the "
            f"manifest's now ({explain_difference(record.inputs, inputs)}); the next build would replace it. "
            f"`storytree restore {session.story_id} {task} {which} --keep` makes it current for the present inputs "
            "anyway. Nothing was changed.")
    outputs, vault = session.outputs, session.workspace.vault
    path = outputs.path(target)
    outputs.keep_current_file(target)
    done = vault.restore(version.output_sha256, path, record.pushed_to, task)
    st = path.stat()
    chosen_inputs = inputs if (differs and inputs is not None) else record.inputs
    new = replace(record, inputs=chosen_inputs, signature=signature_of(chosen_inputs) if differs else record.signature,
                  output_size=st.st_size, output_mtime_ns=st.st_mtime_ns, published=False, built_at=utc_now(),
                  origin="restored", detail=f"version {version.version}" + (" kept for changed inputs" if differs else ""),
                  version=(current.version + 1) if current is not None else record.version,
                  built_by=session.checkout)
    replaced = None
    if current is not None and current.output_sha256 != version.output_sha256:
        replaced = Version.of(current, session.verdict_of(task, current.output_sha256), utc_now())
    session.records.put(new, replaced)
    session.facts.refresh(task)
    outputs.publish(target)
    source = "the local objects" if done.source == "local" else "the remote"
    return (f"{task}: version {version.version} ({version.output_sha256[:12]}…, {record.built_at}, "
            f"{record.provider}) is current again, from {source}; no provider was called")


def _choose(versions: list[Version], which: str, task: str, story_id: str) -> Version:
    # A version number or a sha256 prefix (at least 4 characters); a prefix may be all digits ("22985113").
    by_number = [v for v in versions if which.isdigit() and v.version == int(which)]
    by_prefix = [v for v in versions if len(which) >= 4 and v.output_sha256.startswith(which.lower())]
    found = by_number + [v for v in by_prefix if v not in by_number]
    if len(found) == 1:
        return found[0]
    listed = ", ".join(f"{v.version} ({v.output_sha256[:12]})" for v in versions) or "none"
    what = "matches more than one version" if found else "is no earlier version"
    raise InputError(f"{task}: {which!r} {what} (earlier versions: {listed}; `storytree history {story_id} {task}` "
                     "lists them). Nothing was changed.")


def target_of(session: Session, task: str) -> Target:
    target = session.manifest.by_task().get(task)
    if target is None:
        raise InputError(f"{task} is not a target of story {session.story_id}; `doit list --all` shows the names.")
    return target


# -- garbage --------------------------------------------------------------------------------------------------------
def needed_objects(state: BuildState, story_ids: Iterable[str], keep_versions: int) -> set[str]:
    """Every object a current record, or one of the newest `keep_versions` versions of a target, needs."""
    needed: set[str] = set()
    for story_id in story_ids:
        needed.update(r.output_sha256 for r in state.records(story_id).all().values())
        per_task: dict[str, int] = {}
        for version in state.versions(story_id).all():  # newest first within each task
            per_task[version.task] = per_task.get(version.task, 0) + 1
            if per_task[version.task] <= keep_versions:
                needed.add(version.output_sha256)
    return needed


def collect_garbage(objects: LocalObjects, needed: set[str], dry_run: bool) -> tuple[int, int]:
    """Free local objects nothing needs: (count, bytes)."""
    count = freed = 0
    for sha, size in objects.list():
        if sha in needed:
            continue
        if dry_run or objects.remove(sha):
            count += 1
            freed += size
    return count, freed


def remote_garbage(vault: Vault, needed: set[str]) -> list[tuple[str, int]]:
    remote = vault.remote()
    if remote is None:
        raise InputError("no remote is set (or it cannot be reached); nothing was looked at.")
    return [(sha, size) for sha, size in remote.list() if sha not in needed]
