"""Reading the JSON files users hand to storytree (table exports, shot-production responses) with limits, so hostile
or broken input gets a clear error instead of a traceback or a runaway build: a size limit checked before reading,
strict UTF-8, and a nesting limit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.models import loads_json
from ..core.errors import InputError

MAX_EXPORT_BYTES = 256 * 1024 * 1024
MAX_RESPONSE_BYTES = 8 * 1024 * 1024


def read_json_file(path: Path, max_bytes: int, what: str) -> Any:
    text = read_text_file(path, max_bytes, what)
    try:
        return loads_json(text, f"{path}")
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}.") from None
    except ValueError as exc:
        raise InputError(str(exc)) from None


def read_text_file(path: Path, max_bytes: int, what: str) -> str:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(f"{path}: {size / 2**20:.1f} MB is larger than a {what} may be "
                             f"({max_bytes / 2**20:.0f} MB); nothing was read.")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a {what} file.") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid UTF-8 (byte {exc.start}); save the {what} as UTF-8.") from None
