"""Where setting values come from, each a pydantic-settings source: `storytree.toml` in the project root, the
environment (the mapping `load_settings` is given, normally `os.environ`) and doit's command-line variables.

The two text sources read flags here (true/false, yes/no, on/off, 1/0, any case) and leave numbers to the model's
validation. Every source can say where a setting's value came from (`origin_of`), so a bad value is told by the name
the user wrote: `STORYTREE_MAX_COST`, doit's `max_cost=`, or `[gemini] max_attempts` in storytree.toml.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, TomlConfigSettingsSource

from ..core.errors import ConfigError

FieldPath = tuple[str | int, ...]  # a setting's place in the model, as pydantic reports it: ("gemini", "max_attempts")

FLAG_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
FLAG_FORM = "true/false, yes/no, on/off or 1/0"


@dataclass(frozen=True)
class Origin:
    """Where one value came from, worded for an error line: `STORYTREE_MAX_COST='abc' is not a number ...`,
    `storytree.toml: [gemini] max_attempts = 0: must be at least 1`."""

    prefix: str  # before the name: "", "doit variable ", "storytree.toml: [gemini] "
    name: str  # as the user writes it: "STORYTREE_MAX_COST", "max_cost", "max_attempts"
    equals: str = "="  # how a value is written after the name
    after_value: str = " "  # between the value and what is wrong with it
    example: str | None = None  # a good value, for "(e.g. NAME=12.50)"
    quote: Literal["python", "toml"] = "python"

    def describe(self, value: Any, complaint: str, show_value: bool = True) -> str:
        shown = self._shown(value) if show_value else None
        if shown is None:
            return f"{self.prefix}{self.name}: {complaint}"
        return f"{self.prefix}{self.name}{self.equals}{shown}{self.after_value}{complaint}"

    def written(self, value: str) -> str:
        return f"{self.name}{self.equals}{value}"

    def _shown(self, value: Any) -> str | None:
        if self.quote == "python":
            return repr(value) if isinstance(value, str) else None
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, (int, float)):
            return str(value)
        return json.dumps(value) if isinstance(value, str) else None  # a table or list: the key says enough


@dataclass(frozen=True)
class Variable:
    """One name a text source reads and the settings its text sets."""

    name: str
    paths: tuple[FieldPath, ...]
    kind: Literal["text", "number", "flag", "ci"] = "text"
    example: str | None = None  # numbers: a good value for the error line
    meaning: str = ""  # doit variables: what it does, for `doit help run`


def _one(name: str, *path: str, kind: Literal["text", "number", "flag", "ci"] = "text",
         example: str | None = None, meaning: str = "") -> Variable:
    return Variable(name, (path,), kind, example, meaning)


IMAGE_KINDS = ("character_plate", "environment_keyframe", "key_frame")

# Every environment variable storytree reads (STORYTREE_ROOT, which says where storytree.toml is, is read before the
# sources, by `project_root`). Later rows win: GOOGLE_API_KEY over GEMINI_API_KEY, as in the google-genai SDK.
ENVIRONMENT: tuple[Variable, ...] = (
    _one("STORYTREE_STATE_DIR", "state_dir"),
    _one("STORYTREE_DATA_DIR", "data_dir"),
    _one("STORYTREE_DB", "db_path"),
    _one("STORYTREE_STORE", "store"),
    _one("STORYTREE_PROVIDER", "provider"),
    Variable("STORYTREE_IMAGE_MODEL", tuple(("generation", kind, "model") for kind in IMAGE_KINDS)),
    _one("STORYTREE_VIDEO_MODEL", "generation", "video", "model"),
    _one("GEMINI_API_KEY", "gemini_api_key"),
    _one("GOOGLE_API_KEY", "gemini_api_key"),
    _one("GOOGLE_GEMINI_BASE_URL", "gemini_base_url"),
    _one("SUPABASE_URL", "supabase_url"),
    _one("SUPABASE_SERVICE_ROLE_KEY", "supabase_service_role_key"),
    _one("STORYTREE_STORY", "story"),
    _one("STORYTREE_STUB_CALL_LOG", "stub_call_log"),
    _one("STORYTREE_STUB_DELAY", "stub_delay_seconds", kind="number", example="0.5"),
    _one("STORYTREE_MAX_COST", "max_cost", kind="number", example="12.50"),
    _one("STORYTREE_YES", "yes", kind="flag"),
    _one("STORYTREE_VIDEO_POLL_INTERVAL", "video_poll_interval_seconds", kind="number", example="10"),
    _one("STORYTREE_VIDEO_POLL_DEADLINE", "video_poll_deadline_seconds", kind="number", example="1200"),
    _one("STORYTREE_BATCH", "generation", "batch", kind="flag"),
    _one("STORYTREE_BATCH_POLL", "generation", "batch_poll_seconds", kind="number", example="30"),
    _one("STORYTREE_VERBOSE", "verbose", kind="flag"),
    _one("STORYTREE_REBUILD", "build", "rebuild", example="missing"),
    _one("STORYTREE_PROMPTS_DIR", "prompts", "dir"),
    _one("STORYTREE_FROZEN", "frozen", kind="flag"),
    _one("STORYTREE_REMOTE", "remote", "url"),
    # The standard variables of S3 clients, for the remote (see settings.model.RemoteSettings); later rows win.
    _one("AWS_ENDPOINT", "remote", "endpoint"),
    _one("AWS_ENDPOINT_URL", "remote", "endpoint"),
    _one("AWS_ENDPOINT_URL_S3", "remote", "endpoint"),
    _one("AWS_DEFAULT_REGION", "remote", "region"),
    _one("AWS_REGION", "remote", "region"),
    _one("AWS_ACCESS_KEY_ID", "remote", "access_key_id"),
    _one("AWS_SECRET_ACCESS_KEY", "remote", "secret_access_key"),
    _one("AWS_SESSION_TOKEN", "remote", "session_token"),
    _one("AWS_ALLOW_HTTP", "remote", "allow_http", kind="flag"),
    _one("CI", "ci", kind="ci"),
)

# doit command-line variables that configure a run (`doit story:<id> provider=stub max_cost=25 verbose=1 yes=1`).
RUN_VARIABLE_TABLE: tuple[Variable, ...] = (
    _one("provider", "provider", example="stub",
         meaning="who generates: gemini (the default; needs GEMINI_API_KEY) or stub (offline placeholders)"),
    _one("story", "story", example="<story-id>",
         meaning="the story to build when several have manifests (scenelet ids repeat across stories)"),
    _one("max_cost", "max_cost", kind="number", example="12.50",
         meaning="refuse to start when the estimate is higher; every paid call also reserves its estimate"),
    _one("verbose", "verbose", kind="flag", example="1", meaning="log every request a build sends"),
    _one("batch", "generation", "batch", kind="flag", example="1",
         meaning="images through the Gemini Batch API at half price (minutes to 24 hours)"),
    _one("rebuild", "build", "rebuild", example="missing",
         meaning="outdated (the default: everything whose inputs changed) or missing (only targets without a file)"),
    _one("yes", "yes", kind="flag", example="1",
         meaning="consent to pay without being asked (scripts, CI); without a terminal a paid build needs it or max_cost"),
    _one("frozen", "frozen", kind="flag", example="1",
         meaning="refuse when the manifest is behind the story store instead of regenerating it (the default under CI)"),
)
RUN_VARIABLES = tuple(variable.name for variable in RUN_VARIABLE_TABLE)


def run_variables_help() -> str:
    """The doit variables storytree reads, one paragraph each (`doit help run`), with the environment variable
    that sets the same thing."""
    lines = ["storytree's variables (NAME=VALUE after the task names; they win over the environment and "
             "storytree.toml):"]
    for variable in RUN_VARIABLE_TABLE:
        same = [env.name for env in ENVIRONMENT if env.paths == variable.paths]
        also = f"; env {' / '.join(same)}" if same else ""
        lines.append(f"{variable.name}={variable.example}: {variable.meaning}{also}")
    return "\n".join(lines)


class TextSource(PydanticBaseSettingsSource):
    """Settings from named text values: the environment, or doit's command-line variables.

    A blank value is unset, except that a doit variable given blank (`verbose=`) means false for a flag and is
    reported for a number, as it always has been.
    """

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, str | None],
                 table: tuple[Variable, ...], prefix: str = "", blank_is_unset: bool = True) -> None:
        super().__init__(settings_cls)
        self.prefix = prefix
        self.values: dict[str, Any] = {}
        self.origins: dict[FieldPath, Variable] = {}
        self.problems: list[str] = []  # values no setting can take (a flag that is no flag word)
        for variable in table:
            text = values.get(variable.name)
            if text is None or (text == "" and (blank_is_unset or variable.kind == "text")):
                continue
            value = self._read(variable, text)
            if value is None:
                continue
            for path in variable.paths:
                self._put(path, value)
                self.origins[path] = variable

    def _read(self, variable: Variable, text: str) -> Any:
        word = text.strip().lower()
        if variable.kind == "ci":  # not ours: CI systems set CI=true, CI=1 or their own name (CI=woodpecker)
            return word not in ("", "0", "false", "no", "off")
        if variable.kind != "flag":
            return text
        if word in FLAG_WORDS or word == "":
            return FLAG_WORDS.get(word, False)
        self.problems.append(f"{self.prefix}{variable.name}={text!r} is not true or false (use {FLAG_FORM})")
        return None

    def _put(self, path: FieldPath, value: Any) -> None:
        table = self.values
        for key in path[:-1]:
            table = table.setdefault(str(key), {})
        table[str(path[-1])] = value

    def origin_of(self, loc: FieldPath) -> Origin | None:
        paths = [path for path in self.origins if loc[:len(path)] == path]
        if not paths:
            return None
        variable = self.origins[max(paths, key=len)]
        return Origin(self.prefix, variable.name, example=variable.example)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ answers for every field at once

    def __call__(self) -> dict[str, Any]:
        return self.values


def environment_source(settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> TextSource:
    return TextSource(settings_cls, environ, ENVIRONMENT)


def run_variable_source(settings_cls: type[BaseSettings], variables: Mapping[str, str | None]) -> TextSource:
    return TextSource(settings_cls, variables, RUN_VARIABLE_TABLE, prefix="doit variable ", blank_is_unset=False)


BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class StorytreeToml(TomlConfigSettingsSource):
    """`storytree.toml` in the project root (none: no settings from it). Text that is not TOML is one error line."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        self.path = path
        try:
            super().__init__(settings_cls, toml_file=path)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}, {_toml_position(exc)}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.__class__.__name__}: {exc})") from None

    def origin_of(self, loc: FieldPath) -> Origin | None:
        node: Any = self.toml_data
        for key in loc:
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and key < len(node):
                node = node[key]
            else:
                return None
        keys = _toml_keys(loc)
        table = f"[{'.'.join(keys[:-1])}] " if len(keys) > 1 else ""
        return Origin(f"{self.path.name}: {table}", keys[-1], equals=" = ", after_value=": ", quote="toml")


def _toml_keys(loc: FieldPath) -> list[str]:
    """("gemini", "rate_limits", "gemini-3.1") -> ["gemini", "rate_limits", "gemini-3.1"]; list indices join the key
    they index (`image_size_models[0]`); keys TOML cannot write bare are quoted."""
    keys: list[str] = []
    for key in loc:
        if isinstance(key, int) and keys:
            keys[-1] += f"[{key}]"
        else:
            keys.append(str(key) if BARE_KEY.fullmatch(str(key)) else json.dumps(str(key)))
    return keys


def _toml_position(exc: tomllib.TOMLDecodeError) -> str:
    """"line 3, column 7: not valid TOML (Expected '=' after a key ...)" from the decoder's message."""
    message = str(exc)
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", message)
    if match is not None:
        return f"line {match[1]}, column {match[2]}: not valid TOML ({message[:match.start()]})"
    return f"not valid TOML ({message.replace(' (at end of document)', '')} at the end of the file)"
