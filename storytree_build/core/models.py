"""Pydantic models of the stored story documents (facts doc §2), parsed at the edge.

Stored documents keep unknown keys (`extra="allow"`): storytree only ever writes single JSON paths back,
and a round trip through these models must not drop a field they do not know. Our own formats
(manifest, records) live elsewhere and forbid unknown fields.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from .ids import normalize_name_to_id, safe_id_problem

MAX_REFERENCES = 32  # designs one shot may reference (the prompt and the request stay sane)
MAX_SHOT_INDEX = 100_000

_OPEN = ConfigDict(extra="allow", populate_by_name=True)


MAX_DEPTH = 64  # JSON nesting: story documents need fewer than 10 levels


def json_depth_problem(value: Any, what: str) -> str | None:
    """Why `value` nests too deeply (walked without recursion, so no depth can crash the check), or None."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                return f"{what} nests JSON deeper than {MAX_DEPTH} levels."
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return None


def loads_json(text: str, what: str) -> Any:
    """json.loads with the nesting limit (the parser itself would crash with RecursionError on hostile input)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"{what} nests JSON deeper than {MAX_DEPTH} levels.") from None
    problem = json_depth_problem(value, what)
    if problem:
        raise ValueError(problem)
    return value


def parse_json_document(value: Any, what: str) -> Any:
    """Readers tolerate a JSON string in place of an object (the original `JSON.parse`d it)."""
    if isinstance(value, str):
        try:
            return loads_json(value, what)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{what} is a string that is not valid JSON: {exc}") from exc
    return value


def _unwrap(value: Any, *keys: str) -> Any:
    if isinstance(value, dict):
        for key in keys:
            if key in value and isinstance(value[key], (dict, str)) and len(value) == 1:
                return parse_json_document(value[key], key)
    return value


# --- visual design document (VDD) -------------------------------------------------------------


class CharacterDesign(BaseModel):
    model_config = _OPEN
    character_id: str = Field(validation_alias=AliasChoices("character_id", "characterId"))
    character_model_sheet_image_path: str | None = Field(
        default=None,
        validation_alias=AliasChoices("character_model_sheet_image_path", "characterModelSheetImagePath"),
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_name(cls, data: Any) -> Any:
        # Legacy rows carry a name instead of an id; the original parser derived the id from it.
        if isinstance(data, dict) and not (data.get("character_id") or data.get("characterId")):
            name = data.get("character_name") or data.get("characterName")
            if isinstance(name, str):
                data = {**data, "character_id": normalize_name_to_id(name)}
        return data


class EnvironmentDesign(BaseModel):
    model_config = _OPEN
    environment_id: str = Field(validation_alias=AliasChoices("environment_id", "environmentId"))
    associated_scenelet_ids: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("associated_scenelet_ids", "associatedSceneletIds")
    )
    environment_reference_image_path: str | None = Field(
        default=None,
        validation_alias=AliasChoices("environment_reference_image_path", "environmentReferenceImagePath"),
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not (data.get("environment_id") or data.get("environmentId")):
            name = data.get("environment_name") or data.get("environmentName")
            if isinstance(name, str):
                data = {**data, "environment_id": normalize_name_to_id(name)}
        return data


class VisualDesignDocument(BaseModel):
    model_config = _OPEN
    global_aesthetic: dict[str, Any] = Field(validation_alias=AliasChoices("global_aesthetic", "globalAesthetic"))
    character_designs: list[CharacterDesign] = Field(
        default_factory=list, validation_alias=AliasChoices("character_designs", "characterDesigns")
    )
    environment_designs: list[EnvironmentDesign] = Field(
        default_factory=list, validation_alias=AliasChoices("environment_designs", "environmentDesigns")
    )

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _unwrap(parse_json_document(data, "visual_design_document"), "visual_design_document", "visualDesignDocument")
        if isinstance(data, dict) and "global_aesthetic" not in data and "globalAesthetic" not in data:
            # Legacy form: visual_style / master_color_palette at the top level.
            style = data.get("visual_style", data.get("visualStyle"))
            palette = data.get("master_color_palette", data.get("masterColorPalette"))
            if style is not None or palette is not None:
                data = {**data, "global_aesthetic": {"visual_style": style, "master_color_palette": palette}}
        return data

    @field_validator("global_aesthetic")
    @classmethod
    def _aesthetic_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        missing = [k for k in ("visual_style", "master_color_palette") if value.get(k) in (None, "", [], {})]
        if missing:
            raise ValueError(
                "Visual design document is missing global aesthetic fields (visual_style or master_color_palette): "
                + ", ".join(missing)
            )
        return value

    def character_ids(self) -> list[str]:
        return [c.character_id for c in self.character_designs]

    def environment_ids(self) -> list[str]:
        return [e.environment_id for e in self.environment_designs]


# --- visual reference package (VRP) -----------------------------------------------------------


class ReferencePlate(BaseModel):
    model_config = _OPEN
    plate_description: str = Field(validation_alias=AliasChoices("plate_description", "plateDescription"))
    type: str = Field(validation_alias=AliasChoices("type", "plate_type"))
    image_generation_prompt: str = Field(
        validation_alias=AliasChoices("image_generation_prompt", "imageGenerationPrompt"), min_length=1
    )
    image_path: str | None = None


class CharacterModelSheet(BaseModel):
    model_config = _OPEN
    character_id: str = Field(validation_alias=AliasChoices("character_id", "characterId"))
    reference_plates: list[ReferencePlate] = Field(
        validation_alias=AliasChoices("reference_plates", "referencePlates"), min_length=1
    )


class EnvironmentKeyframe(BaseModel):
    model_config = _OPEN
    keyframe_description: str = Field(validation_alias=AliasChoices("keyframe_description", "keyframeDescription"))
    image_generation_prompt: str = Field(
        validation_alias=AliasChoices("image_generation_prompt", "imageGenerationPrompt"), min_length=1
    )
    image_path: str | None = None


class EnvironmentKeyframes(BaseModel):
    model_config = _OPEN
    environment_id: str = Field(validation_alias=AliasChoices("environment_id", "environmentId"))
    keyframes: list[EnvironmentKeyframe] = Field(
        validation_alias=AliasChoices("keyframes", "environment_keyframes_entries"), min_length=1
    )


class VisualReferencePackage(BaseModel):
    model_config = _OPEN
    character_model_sheets: list[CharacterModelSheet] = Field(
        default_factory=list, validation_alias=AliasChoices("character_model_sheets", "characterModelSheets")
    )
    environment_keyframes: list[EnvironmentKeyframes] = Field(
        default_factory=list, validation_alias=AliasChoices("environment_keyframes", "environmentKeyframes")
    )

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        return _unwrap(parse_json_document(data, "visual_reference_package"), "visual_reference_package", "visualReferencePackage")


# --- audio design document (ADD) --------------------------------------------------------------


class VoiceProfile(BaseModel):
    model_config = _OPEN
    character_id: str = Field(validation_alias=AliasChoices("character_id", "characterId"))


class AudioDesignDocument(BaseModel):
    """Stored wrapped as {"audio_design_document": {...}} by the original, unwrapped by some tools: accept both."""

    model_config = _OPEN
    sonic_identity: dict[str, Any] = Field(
        default_factory=dict, validation_alias=AliasChoices("sonic_identity", "sonicIdentity")
    )
    narrator_voice_profile: dict[str, Any] | None = Field(
        default=None, validation_alias=AliasChoices("narrator_voice_profile", "narratorVoiceProfile")
    )
    character_voice_profiles: list[VoiceProfile] = Field(
        default_factory=list, validation_alias=AliasChoices("character_voice_profiles", "characterVoiceProfiles")
    )

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        return _unwrap(parse_json_document(data, "audio_design_document"), "audio_design_document", "audioDesignDocument")


# --- scenelets and shots ----------------------------------------------------------------------


class DialogueLine(BaseModel):
    model_config = _OPEN
    character: str
    line: str


class SceneletContent(BaseModel):
    model_config = _OPEN
    description: str
    dialogue: list[DialogueLine] = Field(default_factory=list)
    shot_suggestions: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("shot_suggestions", "shotSuggestions")
    )
    choice_label: str | None = None


class ReferencedDesigns(BaseModel):
    model_config = ConfigDict(extra="forbid")
    characters: list[str] = Field(default_factory=list)
    environments: list[str] = Field(default_factory=list)

    @field_validator("characters", "environments", mode="before")
    @classmethod
    def _absent_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("characters", "environments")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        if any(not isinstance(v, str) or not v.strip() for v in value):
            raise ValueError("array entries must be non-empty strings")
        if len(value) > MAX_REFERENCES:
            raise ValueError(f"{len(value)} entries; a shot references at most {MAX_REFERENCES} designs")
        problems = [p for p in (safe_id_problem(v, "design id") for v in value) if p]
        if problems:
            raise ValueError(problems[0])
        return value


class AudioNarrativeEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["monologue", "dialogue"]
    source: str = Field(min_length=1)
    line: str = Field(min_length=1)
    delivery: str = Field(min_length=1)


class StoryboardPayload(BaseModel):
    """`shots.storyboard_payload`: at most these 8 camelCase keys. `referencedDesigns` may be absent or null (legacy
    rows, responses that did not say): such a shot is built from its text alone, as one that references nothing."""

    model_config = ConfigDict(extra="forbid")
    framingAndAngle: str = Field(min_length=1)
    compositionAndContent: str = Field(min_length=1)
    characterActionAndEmotion: str = Field(min_length=1)
    cameraDynamics: str = Field(min_length=1)
    lightingAndAtmosphere: str = Field(min_length=1)
    continuityNotes: str = Field(min_length=1)
    referencedDesigns: ReferencedDesigns | None = None
    audioAndNarrative: list[AudioNarrativeEntry] = Field(default_factory=list)

    @property
    def designs_unknown(self) -> bool:
        """No `referencedDesigns` (absent or null): a legacy shot (the original shot tasks refused it; the
        reference-image brief builds it text-only)."""
        return self.referencedDesigns is None

    def referenced(self) -> ReferencedDesigns:
        """The named designs; empty when unknown (a legacy shot references nothing)."""
        return self.referencedDesigns or ReferencedDesigns()


# --- table rows -------------------------------------------------------------------------------

from .columns import DOCUMENT_COLUMNS, SHOT_PATH_COLUMNS  # noqa: E402 - re-exported: the tables' column names


class StoryRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    display_name: str
    initial_prompt: str
    story_constitution: Any = None
    visual_design_document: Any = None
    audio_design_document: Any = None
    visual_reference_package: Any = None
    created_at: str | None = None
    updated_at: str | None = None
    display_name_upper: str | None = None  # generated column in Postgres; accepted and ignored

    @field_validator("display_name")
    @classmethod
    def _display_name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("display_name must not be blank")
        return value

    @field_validator("story_constitution", "visual_design_document", "audio_design_document", "visual_reference_package", mode="before")
    @classmethod
    def _objects(cls, value: Any, info: Any) -> Any:
        return parse_json_document(value, info.field_name)


class SceneletRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    story_id: str
    parent_id: str | None = None
    choice_label_from_parent: str | None = None
    choice_prompt: str | None = None
    content: SceneletContent | dict[str, Any]
    is_branch_point: bool = False
    is_terminal_node: bool = False
    branch_audio_file_path: str | None = None
    created_at: str

    @field_validator("content", mode="before")
    @classmethod
    def _content(cls, value: Any) -> Any:
        return SceneletContent.model_validate(parse_json_document(value, "content"))


class ShotRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    story_id: str
    scenelet_ref: str
    scenelet_id: str
    scenelet_sequence: int = Field(gt=0, le=MAX_SHOT_INDEX)
    shot_index: int = Field(gt=0, le=MAX_SHOT_INDEX)
    storyboard_payload: StoryboardPayload
    key_frame_image_path: str | None = None
    audio_file_path: str | None = None
    video_file_path: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @field_validator("storyboard_payload", mode="before")
    @classmethod
    def _payload(cls, value: Any) -> Any:
        return parse_json_document(value, "storyboard_payload")
