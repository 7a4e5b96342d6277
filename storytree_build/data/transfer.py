"""`storytree import` / `export`: the Supabase table-export form {"stories": [...], "scenelets": [...], "shots": [...]}.

Import validates every row before it writes anything, then upserts in one transaction.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..core.errors import InputError, collect
from ..core.ids import require_safe_id, safe_id_problem
from ..core.models import (
    AudioDesignDocument,
    SceneletRow,
    ShotRow,
    StoryRow,
    VisualDesignDocument,
    VisualReferencePackage,
)
from ..store import StoryStore
from ..store.ports import ROW_TABLES, RowOwner, foreign_row_problems
from ..store.build_state import BuildState, Operation, Record
from ..review.verdicts import VERDICTS, Review, clean_note
from .input_files import MAX_EXPORT_BYTES, read_json_file
from ..core.tree import derive_tree

TABLES = ("stories", "scenelets", "shots")
# optional: what was built (so it stays paid for) and how reviewers judged it
BUILD_TABLES = ("storytree_records", "storytree_operations", "storytree_reviews")


def describe_validation(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(row)"
        out.append(f"{loc}: {err['msg']}")
    return out


def read_export_file(path: Path) -> dict[str, list[dict[str, Any]]]:
    data = read_json_file(path, MAX_EXPORT_BYTES, "table export")
    if not isinstance(data, dict) or not any(t in data for t in TABLES):
        raise InputError(f'{path}: expected a table export object {{"stories": [...], "scenelets": [...], "shots": [...]}}.')
    unknown = sorted(set(data) - set(TABLES) - set(BUILD_TABLES))
    if unknown:
        raise InputError(f"{path}: unknown top-level keys {unknown}; allowed: {list(TABLES + BUILD_TABLES)}.")
    for table in TABLES + BUILD_TABLES:
        rows = data.setdefault(table, [])
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InputError(f"{path}: {table} must be an array of row objects.")
    return data


def _parsed(model: Any, row: dict[str, Any], where: str, id_field: str | None, id_label: str,
            problems: list[str]) -> Any:
    """The row as `model`, with its id checked to be path-safe; None (and the problems noted) when it is not valid."""
    try:
        parsed = model.model_validate(row)
        if id_field is not None:
            require_safe_id(getattr(parsed, id_field), f"{where}: {id_label}")
    except ValidationError as exc:
        problems += [f"{where}: {m}" for m in describe_validation(exc)]
        return None
    except InputError as exc:
        problems.append(str(exc))
        return None
    return parsed


def validate_export(data: dict[str, list[dict[str, Any]]], store: StoryStore, source: str) -> dict[str, list[dict[str, Any]]]:
    """Check every row; return the rows normalised for storage (JSON-string documents parsed)."""
    problems: list[str] = []
    clean: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
    vdd_by_story: dict[str, VisualDesignDocument | None] = {}

    for i, row in enumerate(data["stories"]):
        where = f"stories[{i}] (id {row.get('id')!r})"
        story = _parsed(StoryRow, row, where, "id", "story id", problems)
        if story is None:
            continue
        normalised = story.model_dump(exclude={"display_name_upper"})
        vdd: VisualDesignDocument | None = None
        for column, model in (("visual_design_document", VisualDesignDocument),
                              ("visual_reference_package", VisualReferencePackage),
                              ("audio_design_document", AudioDesignDocument)):
            if normalised[column] is None:
                continue
            try:
                parsed = model.model_validate(normalised[column])
            except ValidationError as exc:
                problems += [f"{where}: {column}.{m}" for m in describe_validation(exc)]
                continue
            if isinstance(parsed, VisualDesignDocument):  # the visual_design_document column
                vdd = parsed
                ids = [*parsed.character_ids(), *parsed.environment_ids()]
                problems += [p for p in (safe_id_problem(i, f"{where}: visual_design_document design id")
                                         for i in ids) if p]
            if isinstance(parsed, VisualReferencePackage):
                ids = [*(sheet.character_id for sheet in parsed.character_model_sheets),
                       *(entry.environment_id for entry in parsed.environment_keyframes)]
                problems += [p for p in (safe_id_problem(i, f"{where}: visual_reference_package design id")
                                         for i in ids) if p]
        vdd_by_story[story.id] = vdd
        clean["stories"].append(normalised)

    stored_ids = set(store.list_story_ids())
    # Story rows that failed validation are still "in this file": their own problems are reported above.
    in_file = {r.get("id") for r in data["stories"] if isinstance(r.get("id"), str)}
    known_stories = set(vdd_by_story) | stored_ids | in_file
    stored_rows: dict[str, Any] = {}

    def stored(story_id: str) -> Any:
        # Rows already in the store (shots-only files add to a stored story); loaded once per story.
        if story_id not in stored_rows:
            stored_rows[story_id] = store.load_story(story_id)
        return stored_rows[story_id]

    scenelet_story: dict[str, str] = {}
    scenelet_index: dict[str, int] = {}
    for i, row in enumerate(data["scenelets"]):
        where = f"scenelets[{i}] (id {row.get('id')!r})"
        scenelet = _parsed(SceneletRow, row, where, None, "", problems)
        if scenelet is None:
            continue
        if scenelet.story_id not in known_stories:
            problems.append(f"{where}: story_id {scenelet.story_id} is neither in this file nor in the store.")
        if scenelet_story.get(scenelet.id, scenelet.story_id) != scenelet.story_id:
            # (twice in one story is reported by the tree check below)
            problems.append(f"{where}: the same id is scenelets[{scenelet_index[scenelet.id]}] of story "
                            f"{scenelet_story[scenelet.id]}; a row id belongs to one story.")
        scenelet_story.setdefault(scenelet.id, scenelet.story_id)
        scenelet_index.setdefault(scenelet.id, i)
        out = dict(row)
        out["content"] = json.loads(json.dumps(row["content"])) if not isinstance(row["content"], str) else json.loads(row["content"])
        out.setdefault("parent_id", None)
        clean["scenelets"].append({k: out.get(k) for k in SceneletRow.model_fields})

    for story_id in sorted(set(scenelet_story.values())):
        # The tree that will exist after the upsert: stored scenelets, replaced or extended by this file's.
        rows = {r["id"]: r for r in (stored(story_id).scenelets if story_id in stored_ids else [])}
        rows.update({r["id"]: r for r in clean["scenelets"] if r["story_id"] == story_id})
        try:
            derive_tree(story_id, list(rows.values()))
        except InputError as exc:
            problems.append(str(exc))

    natural_keys: dict[tuple[str, str, int], int] = {}
    shot_index_of_id: dict[str, int] = {}

    for i, row in enumerate(data["shots"]):
        where = f"shots[{i}] ({row.get('scenelet_id')!r} #{row.get('shot_index')!r})"
        shot = _parsed(ShotRow, row, where, "scenelet_id", "scenelet_id", problems)
        if shot is None:
            continue
        if shot.story_id not in known_stories:
            problems.append(f"{where}: story_id {shot.story_id} is neither in this file nor in the store.")
        key = (shot.story_id, shot.scenelet_id, shot.shot_index)
        if key in natural_keys:
            problems.append(f"{where}: duplicates shots[{natural_keys[key]}] (same story, scenelet_id and shot_index).")
        natural_keys.setdefault(key, i)
        if shot.id is not None and shot.id in shot_index_of_id:
            problems.append(f"{where}: id {shot.id} is also the id of shots[{shot_index_of_id[shot.id]}].")
        if shot.id is not None:
            shot_index_of_id.setdefault(shot.id, i)
        if scenelet_story.get(shot.scenelet_ref, shot.story_id) != shot.story_id:
            problems.append(f"{where}: scenelet_ref {shot.scenelet_ref} is a scenelet of story "
                            f"{scenelet_story[shot.scenelet_ref]}, not of story {shot.story_id}.")
        elif shot.scenelet_ref not in scenelet_story and not (
                shot.story_id in stored_ids
                and shot.scenelet_ref in {r["id"] for r in stored(shot.story_id).scenelets}):
            problems.append(f"{where}: scenelet_ref {shot.scenelet_ref} is not a scenelet of this file or of "
                            f"story {shot.story_id} in the store.")
        if shot.story_id not in vdd_by_story and shot.story_id in stored_ids:
            raw_vdd = stored(shot.story_id).story.get("visual_design_document")
            try:
                vdd_by_story[shot.story_id] = None if raw_vdd is None else VisualDesignDocument.model_validate(raw_vdd)
            except ValidationError:
                vdd_by_story[shot.story_id] = None
        vdd = vdd_by_story.get(shot.story_id)
        if vdd is not None:
            problems += [f"{where}: {p}" for p in referenced_design_problems(shot.storyboard_payload.referenced(), vdd)]
        out = dict(row)
        payload = row["storyboard_payload"]
        out["storyboard_payload"] = json.loads(payload) if isinstance(payload, str) else payload
        clean["shots"].append({k: out.get(k) for k in ShotRow.model_fields})

    if stored_ids:
        problems += foreign_row_problems(data, stored_owners(store, data))
    collect(problems, f"{source}: nothing was imported")
    return clean


def stored_owners(store: StoryStore, data: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str], RowOwner]:
    """(table, row id) -> the stored story that row id belongs to, for the file's scenelet and shot ids."""
    owners: dict[tuple[str, str], RowOwner] = {}
    for table in ROW_TABLES:
        row_ids = sorted({row["id"] for row in data[table] if isinstance(row.get("id"), str)})
        if row_ids:
            owners.update({(table, row_id): owner for row_id, owner in store.row_owners(table, row_ids).items()})
    return owners


def referenced_design_problems(refs: Any, vdd: VisualDesignDocument) -> list[str]:
    problems = []
    unknown_chars = [c for c in refs.characters if c not in vdd.character_ids()]
    unknown_envs = [e for e in refs.environments if e not in vdd.environment_ids()]
    if unknown_chars:
        problems.append(f"referencedDesigns.characters includes unknown design ids: {', '.join(unknown_chars)}.")
    if unknown_envs:
        problems.append(f"referencedDesigns.environments includes unknown design ids: {', '.join(unknown_envs)}.")
    return problems


def build_rows(data: dict[str, list[dict[str, Any]]], story_ids: set[str],
               source: str) -> tuple[list[Record], list[Operation], list[Review]]:
    """The records, operations and reviews of an export, checked (every row parses and belongs to a known story)."""
    problems: list[str] = []
    found: dict[str, list[Any]] = {table: [] for table in BUILD_TABLES}
    for table, kind in (("storytree_records", Record), ("storytree_operations", Operation),
                        ("storytree_reviews", Review)):
        for i, row in enumerate(data.get(table) or []):
            try:
                item = kind.from_row(row)
                if isinstance(item, Review):
                    if item.verdict not in VERDICTS:
                        raise ValueError(f"verdict {item.verdict!r} is not one of {', '.join(VERDICTS)}")
                    clean_note(item.task, item.note)
            except (TypeError, ValueError, InputError) as exc:
                problems.append(f"{table}[{i}]: {exc}")
                continue
            if item.story_id not in story_ids:
                problems.append(f"{table}[{i}]: story_id {item.story_id} is neither in this file nor in the store.")
            found[table].append(item)
    collect(problems, f"{source}: nothing was imported")
    return found["storytree_records"], found["storytree_operations"], found["storytree_reviews"]


# Names the row ids `--new-ids` derives (uuid5 of the story id and the old row id).
NEW_IDS_NAMESPACE = uuid.UUID("0d7e3c52-9a41-4f6b-8c2e-5b1a7f3d9e60")


def fresh_ids(story_id: str, old_ids: set[str]) -> dict[str, str]:
    """New ids for one story's rows: derived from (story id, old id), so importing the same file again gives the
    same ids (an upsert that keeps the copy's built paths), and handed out in the old ids' sort order, because the
    scenelet tree orders siblings with equal timestamps by id: the copy keeps every `scenelet-N` label (and with them
    its shots' scenelet_id and target names)."""
    new_ids = sorted(str(uuid.uuid5(NEW_IDS_NAMESPACE, f"{story_id}/{old}")) for old in old_ids)
    return dict(zip(sorted(old_ids), new_ids))


def _fresh_ids_by_story(rows: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(story id, old id) -> new id, for every row with a string id."""
    by_story: dict[str, set[str]] = {}
    for row in rows:
        if isinstance(row.get("id"), str):
            by_story.setdefault(str(row.get("story_id")), set()).add(row["id"])
    return {(story_id, old): new for story_id, olds in by_story.items()
            for old, new in fresh_ids(story_id, olds).items()}


def with_fresh_row_ids(data: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """A copy of an export whose scenelet and shot rows all have new ids (`storytree import --new-ids`): parent_id
    and scenelet_ref follow their scenelet when it is in the file (links to stored scenelets stay), and the build
    records' identities follow the scenelet they name. Rows that are not valid are left for validation to report."""
    fresh = copy.deepcopy(data)
    scenelet_ids = _fresh_ids_by_story(fresh["scenelets"])
    shot_ids = _fresh_ids_by_story(fresh["shots"])

    def renamed(row: dict[str, Any], column: str, mapping: dict[tuple[str, str], str]) -> None:
        if isinstance(row.get(column), str):
            row[column] = mapping.get((str(row.get("story_id")), row[column]), row[column])

    for row in fresh["scenelets"]:
        renamed(row, "id", scenelet_ids)
        renamed(row, "parent_id", scenelet_ids)
    for row in fresh["shots"]:
        renamed(row, "id", shot_ids)
        renamed(row, "scenelet_ref", scenelet_ids)
    for record in fresh.get("storytree_records") or []:
        # identity is `kind|scenelet uuid|shot index` for shots (core/status.py identity_of)
        identity = record.get("identity")
        parts = identity.split("|") if isinstance(identity, str) else []
        if len(parts) == 3 and (str(record.get("story_id")), parts[1]) in scenelet_ids:
            parts[1] = scenelet_ids[(str(record.get("story_id")), parts[1])]
            record["identity"] = "|".join(parts)
    return fresh


def import_file(path: Path, store: StoryStore, state: BuildState | None = None, *,
                new_ids: bool = False) -> dict[str, int]:
    """Story rows first, then the build's records, operations and reviews (so a story moved between stores stays
    paid for and reviewed). `new_ids`: give every scenelet and shot row a new id first (importing a copy)."""
    data = read_export_file(path)
    if new_ids:
        data = with_fresh_row_ids(data)
    clean = validate_export(data, store, str(path))
    story_ids = {row["id"] for row in clean["stories"]} | set(store.list_story_ids())
    built, operations, verdicts = build_rows(data, story_ids, str(path))
    store.import_rows(clean)
    if state is not None:
        stories_with_state = ({r.story_id for r in built} | {o.story_id for o in operations}
                              | {v.story_id for v in verdicts})
        for story_id in sorted(stories_with_state):
            state.records(story_id).import_missing([r for r in built if r.story_id == story_id])
            state.operations(story_id).import_missing([o for o in operations if o.story_id == story_id])
            state.reviews(story_id).import_missing([v for v in verdicts if v.story_id == story_id])
    counts = {t: len(clean[t]) for t in TABLES}
    extra = {"records": len(built), "reviews": len(verdicts)}
    return {**counts, **{k: v for k, v in extra.items() if v}}


def export_story(store: StoryStore, story_id: str, state: BuildState | None = None) -> str:
    snapshot = store.load_story(story_id)
    export: dict[str, Any] = snapshot.to_export()
    if state is not None:
        export["storytree_records"] = [r.to_row() for r in state.records(story_id).all().values()]
        export["storytree_operations"] = [o.to_row() for o in state.operations(story_id).all().values()]
        found = state.reviews(story_id).all()
        if found:
            export["storytree_reviews"] = [found[task].to_row() for task in sorted(found)]
    return json.dumps(export, ensure_ascii=False, indent=2) + "\n"
