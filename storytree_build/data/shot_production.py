"""Parse Gemini shot-production responses (facts doc §2.6) into `shots` rows.

Conversion: snake_case Gemini form → the (at most 8) camelCase keys of `shots.storyboard_payload`.
`referenced_designs` becomes `referencedDesigns`; when a response has none (absent or `null`) the key is left out, so
"unknown" stays distinguishable from "explicitly no designs" and the manifest can refuse the shot as the original
build did. `audio_and_narrative` becomes `audioAndNarrative`. Every error names the file, scenelet, shot and field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..core.models import MAX_REFERENCES, VisualDesignDocument, loads_json
from ..store import StoryStore
from ..core.tree import derive_tree
from .input_files import MAX_RESPONSE_BYTES, read_text_file

TEXT_FIELDS = (
    ("framing_and_angle", "framingAndAngle"),
    ("composition_and_content", "compositionAndContent"),
    ("character_action_and_emotion", "characterActionAndEmotion"),
    ("camera_dynamics", "cameraDynamics"),
    ("lighting_and_atmosphere", "lightingAndAtmosphere"),
    ("continuity_notes", "continuityNotes"),
)


class ShotProductionError(InputError):
    pass


def _pick(obj: dict[str, Any], snake: str, camel: str) -> Any:
    return obj[snake] if snake in obj else obj.get(camel)


def _parse_index(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        digits = value.strip()
        # parseInt semantics: leading integer part ("1.5" → 1)
        head = ""
        for ch in digits:
            if ch.isdigit() or (not head and ch in "+-"):
                head += ch
            else:
                break
        try:
            return int(head)
        except ValueError:
            return None
    return None


def parse_response(raw: str, *, expected_scenelet: str, vdd: VisualDesignDocument | None, where: str) -> list[dict[str, Any]]:
    """Return storyboard payloads (index order) or raise ShotProductionError."""

    def fail(message: str) -> ShotProductionError:
        return ShotProductionError(f"{where}: {message}")

    try:
        data = loads_json(raw, where)
    except json.JSONDecodeError:
        raise fail(f"Gemini shot production response contained invalid JSON: {raw[:200]}") from None
    except ValueError as exc:  # nested deeper than any response needs
        raise ShotProductionError(str(exc)) from None
    if not isinstance(data, dict):
        raise fail(f"Gemini shot production response must be a JSON object: {raw[:200]}")
    if not isinstance(expected_scenelet, str) or not expected_scenelet.strip():
        raise fail("Shot production validator requires a target scenelet.")
    scenelet_id = _pick(data, "scenelet_id", "sceneletId")
    if isinstance(scenelet_id, (int, float)):
        scenelet_id = str(scenelet_id)
    if not isinstance(scenelet_id, str) or not scenelet_id.strip():
        raise fail("Gemini shot production response must include scenelet_id.")
    scenelet_id = scenelet_id.strip()
    if scenelet_id != expected_scenelet:
        raise fail(f"Gemini shot production response scenelet_id {scenelet_id} does not match requested {expected_scenelet}.")
    shots = data.get("shots")
    if not isinstance(shots, list) or not shots:
        raise fail("Gemini shot production response must include at least one shot.")
    if vdd is None:
        raise fail("Visual design document is required before validating shot production.")
    characters = set(vdd.character_ids())
    environments = set(vdd.environment_ids())
    if not characters:
        raise fail("Visual design document must include at least one character design.")

    payloads = []
    for position, shot in enumerate(shots, start=1):
        if not isinstance(shot, dict):
            raise fail("Gemini shot production response contains a non-object shot entry.")
        index = _parse_index(_pick(shot, "shot_index", "shotIndex"))
        if index is None:
            raise fail(f"shot #{position}: Each shot must include a numeric shot_index.")
        if index != position:
            raise fail(f"Shot indices must be sequential starting at 1. Expected {position} but received {index}.")
        at = f"{scenelet_id} shot {index}"
        entry = _pick(shot, "storyboard_entry", "storyboardEntry")
        if not isinstance(entry, dict):
            raise fail(f"{at}: Each shot must include a storyboard_entry object.")
        payload: dict[str, Any] = {}
        for snake, camel in TEXT_FIELDS:
            value = _pick(entry, snake, camel)
            if not isinstance(value, str) or not value.strip():
                raise fail(f"{at}: storyboard_entry.{snake} must be a non-empty string.")
            payload[camel] = value.strip()
        referenced = _referenced(entry, at, characters, environments, fail)
        if referenced is not None:
            payload["referencedDesigns"] = referenced
        payload["audioAndNarrative"] = _audio(entry, at, characters, fail)
        payloads.append(payload)
    return payloads


def _referenced(entry: dict[str, Any], at: str, characters: set[str], environments: set[str],
                fail: Callable[[str], ShotProductionError]) -> dict[str, list[str]] | None:
    """The shot's designs, or None when the response does not say (absent or null): storing empty lists would claim
    "no designs" for a shot nobody checked."""
    refs = entry.get("referenced_designs")
    if refs is None:  # null-coalescing like the original (`a ?? b`): a null snake key falls back to the camel one
        refs = entry.get("referencedDesigns")
    if refs is None:
        return None
    if not isinstance(refs, dict):
        raise fail(f"{at}: referenced_designs must be an object.")
    out: dict[str, list[str]] = {}
    for key, roster in (("characters", characters), ("environments", environments)):
        values = refs.get(key)
        if values is None:
            out[key] = []
            continue
        if not isinstance(values, list):
            raise fail(f"{at}: referenced_designs.{key} must be an array when provided.")
        if any(not isinstance(v, str) or not v.strip() for v in values):
            raise fail(f"{at}: referenced_designs.{key} array entries must be non-empty strings.")
        if len(values) > MAX_REFERENCES:
            raise fail(f"{at}: referenced_designs.{key} lists {len(values)} designs; a shot references at most "
                       f"{MAX_REFERENCES}.")
        ids = [v.strip() for v in values]
        unknown = [v for v in ids if v not in roster]
        if unknown and (key == "characters" or roster):
            raise fail(f"{at}: referenced_designs.{key} includes unknown design ids: {', '.join(unknown)}.")
        out[key] = ids
    return out


def _audio(entry: dict[str, Any], at: str, characters: set[str],
           fail: Callable[[str], ShotProductionError]) -> list[dict[str, str]]:
    items = _pick(entry, "audio_and_narrative", "audioAndNarrative")
    if not isinstance(items, list):
        raise fail(f"{at}: storyboard_entry.audio_and_narrative must be an array.")
    out = []
    for n, item in enumerate(items, start=1):
        field = f"{at}: audio_and_narrative[{n}]"
        if not isinstance(item, dict):
            raise fail(f"{field}: audio_and_narrative entries must be objects.")
        kind = item.get("type")
        if not isinstance(kind, str) or not kind.strip():
            raise fail(f"{field}: type must be provided.")
        kind = kind.strip().lower()
        if kind not in ("monologue", "dialogue"):
            raise fail(f'{field}: type must be either "monologue" or "dialogue".')
        clean = {"type": kind}
        for key in ("source", "line", "delivery"):
            value = item.get(key)
            if not isinstance(value, str) or not value.strip():
                raise fail(f"{field}: {key} must be a non-empty string.")
            clean[key] = value.strip()
        if kind == "monologue" and clean["source"] != "narrator":
            raise fail(f'{field}: Monologue entries must use source "narrator".')
        if kind == "dialogue" and clean["source"] not in characters:
            raise fail(f"{field}: Dialogue references unknown character design id {clean['source']}.")
        out.append(clean)
    return out


def ingest_files(store: StoryStore, story_id: str, files: list[Path]) -> list[dict[str, Any]]:
    """Parse every file first; write nothing unless all of them are valid."""
    snapshot = store.load_story(story_id)
    vdd_raw = snapshot.story.get("visual_design_document")
    vdd = VisualDesignDocument.model_validate(vdd_raw) if vdd_raw is not None else None
    nodes = derive_tree(story_id, snapshot.scenelets)
    by_label = {node.label: node for node in nodes.values()}
    existing = {(s["scenelet_id"], s["shot_index"]) for s in snapshot.shots}
    rows: list[dict[str, Any]] = []
    seen_scenelets: set[str] = set()
    for path in files:
        try:
            raw = read_text_file(Path(path), MAX_RESPONSE_BYTES, "shot-production response")
        except InputError as exc:
            raise ShotProductionError(str(exc)) from None
        try:
            data = loads_json(raw, str(path))
            label = (data.get("scenelet_id") or data.get("sceneletId")) if isinstance(data, dict) else None
        except ValueError:  # malformed or too deep: parse_response below says which
            label = None
        label = str(label).strip() if label is not None else ""
        node = by_label.get(label)
        if node is None:
            known = ", ".join(sorted(by_label, key=lambda x: by_label[x].sequence)) or "none"
            parse_response(raw, expected_scenelet="<unknown>", vdd=vdd, where=str(path)) if not label else None
            raise ShotProductionError(f"{path}: scenelet {label!r} is not a scenelet of story {story_id} (known: {known}).")
        if label in seen_scenelets:
            raise ShotProductionError(f"{path}: scenelet {label} appears in more than one file.")
        seen_scenelets.add(label)
        payloads = parse_response(raw, expected_scenelet=label, vdd=vdd, where=str(path))
        if any(key[0] == label for key in existing):
            raise ShotProductionError(
                f"{path}: scenelet {label} of story {story_id} already has shots; delete them before ingesting again.")
        for index, payload in enumerate(payloads, start=1):
            rows.append({
                "id": None, "story_id": story_id, "scenelet_ref": node.id, "scenelet_id": label,
                "scenelet_sequence": node.sequence, "shot_index": index, "storyboard_payload": payload,
                "key_frame_image_path": None, "audio_file_path": None, "video_file_path": None,
                "created_at": None, "updated_at": None,
            })
    store.import_rows({"stories": [], "scenelets": [], "shots": rows})
    return rows
