"""Where a prompt is assembled: Jinja templates over the story documents, plus reference-image selection.

`PromptRenderer.for_kind` is the one place that decides which prompt a kind of target gets; the manifest (when it
hashes prompts) and the builder (when it re-renders them before paying) both go through it.

Everything here is pure: the same story documents give byte-identical prompts. Paths written back into
the documents are stripped before rendering, so a build never changes the prompts it was built from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import orjson

from .errors import ConfigError, InputError
from . import naming
from .hashing import sha256_json
from .story import ShotView, StoryView, global_aesthetic, raw_designs

if TYPE_CHECKING:
    from .manifest import Target

CHARACTER_PATH_KEYS = {"character_model_sheet_image_path", "characterModelSheetImagePath"}
ENVIRONMENT_DROP_KEYS = {"associated_scenelet_ids", "associatedSceneletIds",
                         "environment_reference_image_path", "environmentReferenceImagePath"}
MODEL_SHEET_TYPE = "CHARACTER_MODEL_SHEET"


@dataclass(frozen=True)
class Reference:
    kind: str  # CHARACTER | ENVIRONMENT | KEY_FRAME
    id: str
    path: str  # relative to the assets root
    task: str  # the task that produces it

    @property
    def label(self) -> str:
        names = {"CHARACTER": "character model sheet", "ENVIRONMENT": "environment keyframe", "KEY_FRAME": "key frame"}
        return f"{names[self.kind]} for {self.id}"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id, "path": self.path, "task": self.task}


@dataclass(frozen=True)
class RenderedPrompt:
    template: str
    user: str
    system: str | None = None
    system_file: str | None = None

    @cached_property
    def sha256(self) -> str:
        return sha256_json({"system": self.system, "user": self.user})


# Prompt text is hashed into every pay-once record: a changed byte re-pays every asset. `_pretty` must give exactly
# `json.dumps(value, ensure_ascii=False, indent=2)`, whose indented form runs in pure Python (~0.15 ms per prompt).
# orjson writes the same layout in C; it is used only when its compact output equals the C-accelerated compact
# json.dumps byte for byte (same strings, numbers and key order), otherwise json.dumps writes the prompt.
# What orjson writes differently (1e-7 for json's 1e-07, null for NaN and ±Infinity) or refuses (ints beyond 64 bits,
# lone surrogates, nesting deeper than 254) takes the json.dumps path: bench/check_identity.py checks adversarial
# values and compares every prompt and manifest byte with the code before this change.
_JSON_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_JSON_TEMPLATE = json.JSONEncoder(ensure_ascii=False)  # = json.dumps(value, ensure_ascii=False), without the set-up


def _pretty(value: Any) -> str:
    try:  # orjson.JSONEncodeError is a TypeError
        same = orjson.dumps(value) == _JSON_COMPACT.encode(value).encode("utf-8")
    except (TypeError, ValueError):
        same = False
    if same:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8")
    return json.dumps(value, ensure_ascii=False, indent=2)


def _compact(value: Any) -> str:
    return _JSON_TEMPLATE.encode(value)


class PromptRenderer:
    def __init__(self, templates_dir: Path, system_prompts_dir: Path, overrides: Path | None = None):
        """`overrides`: the project's own prompt folder (`[prompts] dir`); a file there wins over the same-named
        template or system prompt, every other file comes from the repository's folders."""
        if overrides is not None and not overrides.is_dir():
            raise ConfigError(f"[prompts] dir = {str(overrides)!r} (storytree.toml or STORYTREE_PROMPTS_DIR): no "
                              "such folder; create it with your replacement prompt files (docs/prompts.md) or "
                              "remove the setting.")
        folders = [str(templates_dir)] if overrides is None else [str(overrides), str(templates_dir)]
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folders),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
        )
        self.env.filters["pretty_json"] = _pretty
        self.env.filters["compact_json"] = _compact
        self.templates_dir = templates_dir
        self.system_prompts_dir = system_prompts_dir
        self.overrides = overrides
        self._system_cache: dict[str, str] = {}

    def _template(self, name: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateNotFound:
            raise ConfigError(f"the prompt template {name} is not in {self.templates_dir}; run storytree from the "
                              "project root (the folder with templates/ and system_prompts/) or set "
                              "STORYTREE_ROOT to it.") from None

    def _system(self, name: str) -> str:
        if name not in self._system_cache:
            try:
                own = self.overrides / name if self.overrides is not None else None
                source = own if own is not None and own.is_file() else self.system_prompts_dir / name
                self._system_cache[name] = source.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise ConfigError(f"the system prompt {name} is not in {self.system_prompts_dir}; run storytree from "
                                  "the project root or set STORYTREE_ROOT to it.") from None
        return self._system_cache[name]

    def for_kind(self, story: StoryView, kind: str, *, shot: ShotView | None = None, plate_prompt: str | None = None,
                 max_key_frame_references: int = 5) -> RenderedPrompt:
        """The prompt of one target: plates and keyframes from their own text, shots from the story."""
        if kind in ("character_plate", "environment_keyframe"):
            assert plate_prompt is not None
            return self.visual_reference(plate_prompt)
        assert shot is not None
        if kind == "key_frame":
            return self.key_frame(story, shot, key_frame_references(story, shot, max_key_frame_references))
        if kind == "video":
            return self.video(story, shot)
        raise ValueError(f"unknown target kind {kind!r}")

    def for_target(self, story: StoryView, target: "Target", max_key_frame_references: int = 5) -> RenderedPrompt:
        """Re-render a manifest target's prompt from the story; raises StaleTarget when its source is gone."""
        if target.kind in ("character_plate", "environment_keyframe"):
            return self.for_kind(story, target.kind, plate_prompt=plate_prompt_of(story, target))
        assert target.shot is not None
        shot = story.shot(target.shot.scenelet_id, target.shot.shot_index)
        if shot is None:
            raise StaleTarget("its shot no longer exists in the story store")
        return self.for_kind(story, target.kind, shot=shot, max_key_frame_references=max_key_frame_references)

    def visual_reference(self, image_generation_prompt: str) -> RenderedPrompt:
        template = "visual_reference.j2"
        text = self._template(template).render(image_generation_prompt=image_generation_prompt.strip())
        return RenderedPrompt(template=template, user=text)

    def key_frame(self, story: StoryView, shot: ShotView, references: list[Reference]) -> RenderedPrompt:
        template = "key_frame.j2"
        scene = {
            "global_aesthetic": global_aesthetic(story.vdd_raw or {}),
            "character_designs": referenced_designs(story, shot, "character"),
            "environment_designs": referenced_designs(story, shot, "environment"),
        }
        scene.update({k: v for k, v in shot.raw_payload.items() if k != "audioAndNarrative"})
        user = self._template(template).render(
            scenelet_id=shot.scenelet_id, shot_index=shot.shot_index, references=references, scene=scene,
            director_note=story.director_notes.get(naming.image_task(shot.key), ""))
        system_file = "create_shot_images.md"
        return RenderedPrompt(template=template, user=user, system=self._system(system_file), system_file=system_file)

    def video(self, story: StoryView, shot: ShotView) -> RenderedPrompt:
        template = "video.j2"
        rendered = self._template(template).render(
            global_aesthetic=global_aesthetic(story.vdd_raw or {}),
            character_designs=referenced_designs(story, shot, "character"),
            environment_designs=referenced_designs(story, shot, "environment"),
            audio_design=video_audio_design(story, shot),
            storyboard_payload=shot.raw_payload,
        )
        try:
            document = json.loads(rendered)
        except json.JSONDecodeError as exc:
            raise InputError(f"templates/{template} did not render valid JSON for shot {shot.key}: {exc}") from exc
        return RenderedPrompt(template=template, user=_pretty(document))


class StaleTarget(Exception):
    """A manifest target whose source (shot, plate) is no longer in the story: the manifest must be regenerated."""


def plate_prompt_of(story: StoryView, target: "Target") -> str:
    """The `image_generation_prompt` of a plate or keyframe target, found by its JSON path in the package."""
    path = target.db[0].path or []
    if story.vrp is None:
        raise StaleTarget("the visual reference package is gone")
    try:
        group, item = path[1], path[3]
        if not isinstance(group, int) or not isinstance(item, int):  # a key where the package holds a list
            raise StaleTarget("its plate no longer exists")
        if target.kind == "character_plate":
            return story.vrp.character_model_sheets[group].reference_plates[item].image_generation_prompt
        return story.vrp.environment_keyframes[group].keyframes[item].image_generation_prompt
    except (IndexError, TypeError):
        raise StaleTarget("its plate no longer exists") from None


def referenced_designs(story: StoryView, shot: ShotView, kind: str) -> list[dict[str, Any]]:
    """Designs named in `referencedDesigns`, in reference order, without paths the build writes back."""
    refs = shot.payload.referenced()
    wanted = refs.characters if kind == "character" else refs.environments
    by_id = {design_id: design for design_id, design, _ in raw_designs(story.vdd_raw, kind)}
    drop = CHARACTER_PATH_KEYS if kind == "character" else ENVIRONMENT_DROP_KEYS
    return [{k: v for k, v in by_id[i].items() if k not in drop} for i in wanted if i in by_id]


def video_audio_design(story: StoryView, shot: ShotView) -> dict[str, Any]:
    add = story.add_raw or {}
    lines = shot.payload.audioAndNarrative
    speakers = {entry.source for entry in lines}
    out: dict[str, Any] = {}
    sonic = add.get("sonic_identity", add.get("sonicIdentity")) or {}
    philosophy = sonic.get("sound_effect_philosophy", sonic.get("soundEffectPhilosophy"))
    if philosophy:
        out["sonic_identity"] = {"sound_effect_philosophy": philosophy}
    if "narrator" in speakers:
        narrator = add.get("narrator_voice_profile", add.get("narratorVoiceProfile"))
        if narrator:
            out["narrator_voice_profile"] = narrator
    profiles = {}
    for profile in add.get("character_voice_profiles", add.get("characterVoiceProfiles")) or []:
        if isinstance(profile, dict):
            pid = profile.get("character_id", profile.get("characterId"))
            profiles[pid] = {("character_id" if k == "characterId" else k): v for k, v in profile.items()}
    # A narrator line selects the narrator profile only, even where a character's id is "narrator" (video brief).
    characters_speaking = speakers - {"narrator"}
    out["character_voice_profiles"] = [
        profiles[c] for c in shot.payload.referenced().characters if c in characters_speaking and c in profiles
    ]
    return out


# --- reference selection ----------------------------------------------------------------------


def model_sheet_reference(story: StoryView, character_id: str) -> Reference | None:
    """The character's first CHARACTER_MODEL_SHEET plate in the visual reference package."""
    if story.vrp is None:
        return None
    for sheet in story.vrp.character_model_sheets:
        if sheet.character_id == character_id:
            for plate in sheet.reference_plates:
                if plate.type.strip().upper() == MODEL_SHEET_TYPE:
                    path = naming.character_plate(story.story_id, character_id, plate.type, 1)
                    return Reference("CHARACTER", character_id, path, naming.plate_task(character_id, plate.type, 1))
    return None


def environment_reference(story: StoryView, environment_id: str) -> Reference | None:
    if story.vrp is None:
        return None
    for entry in story.vrp.environment_keyframes:
        if entry.environment_id == environment_id and entry.keyframes:
            path = naming.environment_keyframe(story.story_id, environment_id, 1)
            return Reference("ENVIRONMENT", environment_id, path, naming.keyframe_task(environment_id, 1))
    return None


def design_references(story: StoryView, shot: ShotView) -> list[Reference]:
    refs = shot.payload.referenced()
    found = [model_sheet_reference(story, c) for c in refs.characters]
    found += [environment_reference(story, e) for e in refs.environments]
    out: list[Reference] = []
    for ref in found:
        if ref is not None and ref.path not in {r.path for r in out}:
            out.append(ref)
    return out


def key_frame_references(story: StoryView, shot: ShotView, limit: int) -> list[Reference]:
    return design_references(story, shot)[:limit]


def video_references(story: StoryView, shot: ShotView, limit: int) -> list[Reference]:
    refs = design_references(story, shot)[:limit]
    if len(refs) < limit:
        refs.append(Reference("KEY_FRAME", shot.key, naming.shot_key_frame(story.story_id, shot.scenelet_id, shot.shot_index),
                              naming.image_task(shot.key)))
    return refs
