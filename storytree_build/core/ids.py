"""Identifier rules shared with the original system (facts doc §3)."""

import re
import unicodedata
from typing import cast

from .errors import InputError

_ID_DROP = re.compile(r"['\"`]")
_ID_NON_ALLOWED = re.compile(r"[^a-z0-9\s-]")
_ID_RUNS = re.compile(r"[\s-]+")


def normalize_name_to_id(name: str) -> str:
    """`normalizeNameToId`: ids of characters and environments. Never raises; may return ''."""
    value = _ID_DROP.sub("", name.lower())
    value = _ID_NON_ALLOWED.sub(" ", value)
    value = _ID_RUNS.sub("-", value)
    return value.strip("-")


def normalize_name_for_path(name: str) -> str:
    """`normalizeNameForPath`: folder names; keeps non-Latin letters, strips accents."""
    trimmed = name.strip()
    if not trimmed:
        raise InputError("Name must contain at least one alphanumeric character.")
    decomposed = unicodedata.normalize("NFKD", trimmed)
    stripped = "".join(ch for ch in decomposed if not ("\u0300" <= ch <= "\u036f")).lower()
    out: list[str] = []
    for ch in stripped:
        cat = unicodedata.category(ch)
        out.append(ch if cat[0] in ("L", "N") else "-")
    value = re.sub(r"-+", "-", "".join(out)).strip("-")
    if not value:
        raise InputError("Name must contain at least one alphanumeric character.")
    return value


_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_ID_LENGTH = 128


def safe_id_problem(value: object, what: str) -> str | None:
    """Why `value` cannot be an id that becomes a folder or a doit task name, or None. Ids are never trimmed: one
    with surrounding spaces is refused, because every other document must name it exactly."""
    if not isinstance(value, str) or not value.strip():
        return f"{what} must be a non-empty string (got {value!r})."
    if len(value) > MAX_ID_LENGTH:
        return f"{what} {value[:40]!r}… is {len(value)} characters long; ids are at most {MAX_ID_LENGTH}."
    if value != value.strip():
        return f"{what} {value!r} has surrounding whitespace; remove it (ids are never trimmed)."
    if ".." in value or "/" in value or "\\" in value or not _SAFE.match(value):
        return (f"{what} {value!r} is not path-safe: use letters, digits, '.', '_' or '-' "
                "(no '..', '/', '\\\\' or spaces).")
    return None


def require_safe_id(value: object, what: str) -> str:
    """Reject ids that could escape a folder or break a doit task name (`..`, `/`, `\\`, spaces, over 128)."""
    problem = safe_id_problem(value, what)
    if problem is not None:
        raise InputError(problem)
    return cast(str, value)  # safe_id_problem refuses every non-string


def resolve_prefix(given: str, known: list[str], what: str = "story id") -> str:
    """`given` as typed, or the one known id it starts (like git's short hashes). An ambiguous prefix is an error
    listing every match; no match is returned as typed, so the caller's own "does not exist" error names it."""
    if given in known or not given:
        return given
    matches = sorted(k for k in known if k.startswith(given))
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InputError(f"{what} {given!r} is ambiguous: it starts {len(matches)} ids ({', '.join(matches)}); "
                         "type more of it.")
    return given
