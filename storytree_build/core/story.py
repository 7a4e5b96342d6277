"""One story as stored (`StorySnapshot`) and its parsed, validated view (`StoryView`): what the manifest and the
prompts read. Stores produce snapshots; nothing here reads a store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import ValidationError

from .errors import InputError
from .ids import normalize_name_to_id
from .models import (
    AudioDesignDocument,
    StoryboardPayload,
    VisualDesignDocument,
    VisualReferencePackage,
    parse_json_document,
)
from .tree import SceneletNode, derive_tree


@dataclass(frozen=True)
class StorySnapshot:
    """One story's rows exactly as stored (raw JSON values, stored key order)."""

    story: dict[str, Any]
    scenelets: list[dict[str, Any]] = field(default_factory=list)
    shots: list[dict[str, Any]] = field(default_factory=list)

    @property
    def story_id(self) -> str:
        return cast(str, self.story["id"])

    def to_export(self) -> dict[str, list[dict[str, Any]]]:
        return {"stories": [self.story], "scenelets": list(self.scenelets), "shots": list(self.shots)}


def _errors(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}" for e in exc.errors()]


def raw_designs(vdd_raw: dict[str, Any] | None, kind: str) -> list[tuple[str, dict[str, Any], str]]:
    """[(design id, raw design dict, container key)] in stored order; ids from the id key or the legacy name."""
    if not isinstance(vdd_raw, dict):
        return []
    snake, camel = f"{kind}_designs", f"{kind}Designs"
    key = snake if snake in vdd_raw else camel
    out = []
    for design in vdd_raw.get(key) or []:
        if not isinstance(design, dict):
            continue
        design_id = design.get(f"{kind}_id") or design.get(f"{kind}Id")
        if not design_id:
            name = design.get(f"{kind}_name") or design.get(f"{kind}Name")
            design_id = normalize_name_to_id(name) if isinstance(name, str) else None
        if design_id:
            out.append((design_id, design, key))
    return out


def global_aesthetic(vdd_raw: dict[str, Any]) -> dict[str, Any]:
    if "global_aesthetic" in vdd_raw or "globalAesthetic" in vdd_raw:
        key = "global_aesthetic" if "global_aesthetic" in vdd_raw else "globalAesthetic"
        return dict(vdd_raw[key])
    return {
        "visual_style": vdd_raw.get("visual_style", vdd_raw.get("visualStyle")),
        "master_color_palette": vdd_raw.get("master_color_palette", vdd_raw.get("masterColorPalette")),
    }


@dataclass
class ShotView:
    row: dict[str, Any]
    payload: StoryboardPayload

    @property
    def scenelet_id(self) -> str:
        return cast(str, self.row["scenelet_id"])

    @property
    def shot_index(self) -> int:
        return int(self.row["shot_index"])

    @property
    def key(self) -> str:
        return f"{self.scenelet_id}_{self.shot_index}"

    @property
    def raw_payload(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.row["storyboard_payload"])


@dataclass(kw_only=True)
class StoryView:
    snapshot: StorySnapshot
    vdd_raw: dict[str, Any] | None
    vdd: VisualDesignDocument | None
    vrp_raw: dict[str, Any] | None
    vrp: VisualReferencePackage | None
    add: AudioDesignDocument | None
    add_raw: dict[str, Any] | None
    nodes: dict[str, SceneletNode]
    shots: list[ShotView]
    problems: list[str]
    # key-frame task → a reviewer's note on an earlier frame, rendered into that shot's next key-frame prompt
    director_notes: dict[str, str] = field(default_factory=dict)

    @property
    def story_id(self) -> str:
        return self.snapshot.story_id

    def shot(self, scenelet_id: str, shot_index: int) -> "ShotView | None":
        """Indexed once per view: rendering every target would otherwise scan all shots per target."""
        index = self.__dict__.get("_shot_index")
        if index is None:
            index = self.__dict__["_shot_index"] = {(s.scenelet_id, s.shot_index): s for s in self.shots}
        return index.get((scenelet_id, shot_index))

    @classmethod
    def from_snapshot(cls, snapshot: StorySnapshot, director_notes: dict[str, str] | None = None) -> "StoryView":
        problems: list[str] = []
        story = snapshot.story

        def parse(column: str, model: Any) -> tuple[Any, Any]:
            raw = story.get(column)
            if raw is None:
                return None, None
            try:
                raw = parse_json_document(raw, column)
                parsed = model.model_validate(raw)
            except (ValidationError, ValueError) as exc:
                details = _errors(exc) if isinstance(exc, ValidationError) else [str(exc)]
                problems.extend(f"{column}: {d}" for d in details)
                return None, None
            for wrapper in (column, _camel(column)):
                if isinstance(raw, dict) and set(raw) == {wrapper}:
                    raw = raw[wrapper]
            return raw, parsed

        vdd_raw, vdd = parse("visual_design_document", VisualDesignDocument)
        vrp_raw, vrp = parse("visual_reference_package", VisualReferencePackage)
        add_raw, add = parse("audio_design_document", AudioDesignDocument)
        try:
            nodes = derive_tree(snapshot.story_id, snapshot.scenelets)
        except InputError as exc:  # reported with the rest
            problems.append(str(exc))
            nodes = {}
        shots = []
        for row in snapshot.shots:
            try:
                payload = StoryboardPayload.model_validate(parse_json_document(row["storyboard_payload"], "storyboard_payload"))
            except (ValidationError, ValueError) as exc:
                details = _errors(exc) if isinstance(exc, ValidationError) else [str(exc)]
                problems.extend(f"shot {row['scenelet_id']}#{row['shot_index']} storyboard_payload.{d}" for d in details)
                continue
            shots.append(ShotView(row, payload))
        return cls(snapshot=snapshot, vdd_raw=vdd_raw, vdd=vdd, vrp_raw=vrp_raw, vrp=vrp, add=add, add_raw=add_raw,
                   nodes=nodes, shots=shots, problems=problems, director_notes=director_notes or {})


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p.title() for p in rest)
