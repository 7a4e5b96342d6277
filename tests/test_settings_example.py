"""`storytree.toml.example` (issue 23 §7): every setting, its default and one line saying what it does, kept equal
to the settings model by these tests."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from storytree_build.settings import Settings, load_settings
from storytree_build.settings.problems import HIDDEN_FIELDS

EXAMPLE = Path(__file__).resolve().parents[1] / "storytree.toml.example"
HEADER = re.compile(r"^#?\s*\[([^\]]+)\]\s*(#.*)?$")
KEY = re.compile(r"^(#\s*)?([A-Za-z0-9_]+)\s*=\s*(.*)$")


def leaf_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every setting a user can write, by its path ("gemini", "max_attempts"), with its default."""
    out: dict[tuple[str, ...], Any] = {}
    for name, field in model.model_fields.items():
        if not prefix and name in HIDDEN_FIELDS:
            continue
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out.update(leaf_fields(kind, (*prefix, name)))
        else:
            out[(*prefix, name)] = field.get_default(call_default_factory=True)
    return out


def listed_lines() -> dict[tuple[str, ...], str]:
    """Each setting the example writes (or shows commented out), with the line that writes it."""
    table: tuple[str, ...] = ()
    found: dict[tuple[str, ...], str] = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        header = HEADER.match(line)
        if header:
            table = tuple(header[1].split("."))
            continue
        key = KEY.match(line)
        if key:
            found[(*table, key[2])] = line
    return found


def test_the_example_lists_every_setting_with_a_one_line_explanation() -> None:
    listed = listed_lines()
    missing = sorted(".".join(path) for path in leaf_fields(Settings) if path not in listed)
    assert not missing, f"storytree.toml.example lacks {missing}"
    unknown = sorted(".".join(path) for path in listed if path not in leaf_fields(Settings))
    assert not unknown, f"storytree.toml.example lists settings that do not exist: {unknown}"
    unexplained = [line for line in listed.values() if not re.search(r"\s#\s+\S", line.lstrip("# "))]
    assert not unexplained, f"settings without an explanation: {unexplained}"


def test_every_value_the_example_sets_is_the_default() -> None:
    written = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    defaults = leaf_fields(Settings)

    def values(table: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
        out: dict[tuple[str, ...], Any] = {}
        for key, value in table.items():
            path = (*prefix, key)
            if isinstance(value, dict) and path not in defaults:
                out.update(values(value, path))
            else:
                out[path] = value
        return out

    differing = {".".join(path): (value, defaults[path]) for path, value in values(written).items()
                 if value != defaults[path]}
    assert not differing, f"storytree.toml.example differs from the defaults (written, default): {differing}"


def test_the_example_as_storytree_toml_changes_nothing(tmp_path: Path) -> None:
    bare = load_settings(root=tmp_path, env={})
    shutil.copy(EXAMPLE, tmp_path / "storytree.toml")
    assert load_settings(root=tmp_path, env={}).model_dump() == bare.model_dump()
