"""One settings object, built once at the edge (the CLI or the composition root of a doit run) and passed down.

Order of precedence (lowest first): built-in defaults < `storytree.toml` in the project root < environment variables
< doit command-line variables (`provider=`, `story=`, `max_cost=`, `verbose=`, `batch=`, `rebuild=`, `frozen=`)
< explicit overrides.
Each is a pydantic-settings source (`sources.py`); this package is the only reader of `os.environ`. A bad value
ends in one `ConfigError` with a line per problem naming the variable or key and the accepted form (`problems.py`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..core.errors import ConfigError
from .model import (ASSETS_REL, LAYERED_SOURCES, RATE_UNITS, BuildSettings, GeminiSettings, RateLimit,
                    ReviewSettings, Settings, StorageSettings)
from .problems import problem_lines
from .sources import RUN_VARIABLES, StorytreeToml, TextSource, environment_source, run_variable_source

__all__ = ["ASSETS_REL", "RATE_UNITS", "RUN_VARIABLES", "BuildSettings", "GeminiSettings", "RateLimit",
           "ReviewSettings", "Settings", "StorageSettings", "find_root", "load_settings", "project_root",
           "state_dir"]


def find_root(start: Path | None = None) -> Path:
    """The project root is the nearest folder holding `templates/` and `system_prompts/` (or the cwd)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "templates").is_dir() and (folder / "system_prompts").is_dir():
            return folder
    return here


def project_root(env: Mapping[str, str] | None = None, root: Path | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("STORYTREE_ROOT") or root or find_root())


def state_dir(env: Mapping[str, str] | None = None, root: Path | None = None) -> Path:
    """The state folder (doit's database, caches, locks) without validating the rest of the settings: doit needs it
    before anything else is loaded."""
    env = os.environ if env is None else env
    return Path(env.get("STORYTREE_STATE_DIR") or project_root(env, root) / ".storytree")


def layered_sources(root: Path, environ: Mapping[str, str], variables: Mapping[str, str | None] | None = None,
                    ) -> tuple[TextSource, TextSource, StorytreeToml]:
    """Where settings come from, highest precedence first: doit's variables, the environment, storytree.toml."""
    return (run_variable_source(Settings, variables or {}), environment_source(Settings, environ),
            StorytreeToml(Settings, root / "storytree.toml"))


def load_settings(root: Path | None = None, env: Mapping[str, str] | None = None,
                  variables: Mapping[str, str | None] | None = None, **overrides: Any) -> Settings:
    """The settings of the project at `root` (STORYTREE_ROOT wins; default: found from the cwd). `env` stands for
    the environment (default `os.environ`), `variables` are doit's command-line variables, and `overrides` (None:
    not given) win over everything."""
    environ = os.environ if env is None else env
    root = project_root(environ, root)
    given = {name: value for name, value in overrides.items() if value is not None}
    sources = layered_sources(root, environ, variables)
    problems = [line for source in sources if isinstance(source, TextSource) for line in source.problems]
    token = LAYERED_SOURCES.set(sources)
    try:
        settings = Settings(**given, root=root)
    except ValidationError as exc:
        raise ConfigError("\n".join(problems + problem_lines(exc, Settings, sources, given))) from None
    finally:
        LAYERED_SOURCES.reset(token)
    if problems:
        raise ConfigError("\n".join(problems))
    return settings
