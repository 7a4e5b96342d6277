"""The settings in effect and where each value came from (`storytree config`): a default, storytree.toml, an
environment variable or a doit variable — asked of the same sources `load_settings` layers. Secrets are masked and
URLs shown without their user-info.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from ..core.redact import redact_url
from .model import Settings
from .problems import HIDDEN_FIELDS
from .sources import FieldPath, StorytreeToml, TextSource

MASK = "********"
FOLDERS = ("db_path", "state_dir", "data_dir")  # defaults derived from the project root


@dataclass(frozen=True)
class Effective:
    path: tuple[str, ...]
    shown: str  # the value as TOML would write it, secrets masked
    source: str  # "default", "storytree.toml", "env STORYTREE_PROVIDER", "doit variable provider=", ...

    @property
    def name(self) -> str:
        return ".".join(self.path)


def effective_settings(settings: Settings, env: Mapping[str, str] | None = None,
                       variables: Mapping[str, str | None] | None = None) -> list[Effective]:
    """Every setting a user can write, its value in `settings` and the source it came from (`env` and `variables`
    as given to `load_settings`)."""
    from . import layered_sources

    environ = os.environ if env is None else env
    sources = layered_sources(settings.root, environ, variables)
    return [Effective(path, _shown(value), _source(path, sources)) for path, value in _leaves(settings)]


def _leaves(model: BaseModel, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name in type(model).model_fields:
        if not prefix and name in HIDDEN_FIELDS:
            continue
        value = getattr(model, name)
        if isinstance(value, BaseModel) and not isinstance(value, SecretStr):
            yield from _leaves(value, (*prefix, name))
        else:
            yield (*prefix, name), value


def _source(path: FieldPath, sources: tuple[TextSource, TextSource, StorytreeToml]) -> str:
    for source in sources:
        origin = source.origin_of(path)
        if origin is None:
            continue
        if isinstance(source, StorytreeToml):
            return source.path.name
        return f"doit variable {origin.name}=" if origin.prefix else f"env {origin.name}"
    return "default (under the project root)" if path[0] in FOLDERS else "default"


def _shown(value: Any) -> str:
    if isinstance(value, SecretStr):
        return json.dumps(MASK if value.get_secret_value() else "")
    if value is None:
        return "(not set)"
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, str):
        return json.dumps(redact_url(value) if "://" in value else value)
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_none=True)
    if isinstance(value, dict):
        value = {key: item.model_dump(exclude_none=True) if isinstance(item, BaseModel) else item
                 for key, item in value.items()}
    return json.dumps(value)
