"""How a bad setting is told: pydantic's validation errors become one line each, naming where the value came from
and the form it must take. No pydantic dump, and never the value of a secret.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from .sources import FieldPath, Origin

HIDDEN_FIELDS = ("root", "db_path_is_default")  # decided by load_settings, not written by a user
PATH_EXAMPLE = '"folder/file"'


class Traceable(Protocol):
    def origin_of(self, loc: FieldPath) -> Origin | None: ...


def problem_lines(error: ValidationError, model: type[BaseModel], sources: Sequence[Traceable],
                  overrides: dict[str, Any]) -> list[str]:
    """One line per problem in `error`; `sources` highest precedence first, `overrides` above them all."""
    return [_line(detail, model, sources, overrides) for detail in error.errors(include_url=False)]


def _line(detail: ErrorDetails, model: type[BaseModel], sources: Sequence[Traceable], overrides: dict[str, Any]) -> str:
    loc = tuple(detail["loc"])
    origin = _origin(loc, sources, overrides)
    field = _field_at(model, loc)
    example = origin.example if origin.example is not None else _default_example(field)
    complaint = _complaint(detail, model, loc, origin, example)
    shows_value = bool(loc) and detail["type"] not in ("extra_forbidden", "value_error") and not _is_secret(field)
    return origin.describe(detail["input"], complaint, show_value=shows_value)


def _origin(loc: FieldPath, sources: Sequence[Traceable], overrides: dict[str, Any]) -> Origin:
    if loc and loc[0] in overrides:
        return Origin("setting ", ".".join(map(str, loc)))
    for source in sources:
        origin = source.origin_of(loc)
        if origin is not None:
            return origin
    return Origin("setting ", ".".join(map(str, loc)) or "storytree settings")


def _complaint(detail: ErrorDetails, model: type[BaseModel], loc: FieldPath, origin: Origin,
               example: str | None) -> str:
    kind, ctx = detail["type"], detail.get("ctx", {})
    like = f" (e.g. {origin.written(example)})" if example is not None else ""
    if kind in ("float_parsing", "float_type", "finite_number"):
        return f"is not a number{like}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"is not a whole number{like}"
    if kind in ("bool_parsing", "bool_type"):
        return "is not true or false (use true or false)"
    bounds = {"greater_than": "more than", "greater_than_equal": "at least", "less_than": "less than",
              "less_than_equal": "at most"}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {f'{limit:g}' if isinstance(limit, float) else limit}"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    if kind == "extra_forbidden":
        return _unknown(model, loc)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a table"
    if kind in ("list_type", "tuple_type"):
        return "must be a list"
    if kind == "string_type":
        return "must be text"
    if kind == "path_type":
        return f"must be a path, written as text (e.g. {origin.written(PATH_EXAMPLE)})"
    if kind == "value_error":
        return str(detail["msg"]).removeprefix("Value error, ")
    return str(detail["msg"]).lower()


def _unknown(model: type[BaseModel], loc: FieldPath) -> str:
    parent = _model_at(model, loc[:-1])
    if parent is None:
        return "unknown setting"
    known = sorted(name for name in parent.model_fields if not (parent is model and name in HIDDEN_FIELDS))
    import difflib  # only when there is a problem to tell: not on every run's start-up path

    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown setting ({hint}known: {', '.join(known)})"


def _model_at(model: type[BaseModel], path: FieldPath) -> type[BaseModel] | None:
    """The model class that holds the settings at `path` (a key into a dict of models steps into its value type)."""
    current: Any = model
    for key in path:
        if _is_model(current):
            field = current.model_fields.get(str(key))
            if field is None:
                return None
            current = _unoptional(field.annotation)
        elif typing.get_origin(current) is dict:
            current = _unoptional(typing.get_args(current)[1])
        else:
            return None
    return current if _is_model(current) else None


def _field_at(model: type[BaseModel], loc: FieldPath) -> FieldInfo | None:
    parent = _model_at(model, loc[:-1]) if loc else None
    return parent.model_fields.get(str(loc[-1])) if parent is not None else None


def _default_example(field: FieldInfo | None) -> str | None:
    """The field's default when it is a number, else a number of its type."""
    if field is None:
        return None
    if isinstance(field.default, (int, float)) and not isinstance(field.default, bool):
        return str(field.default)
    kind = _unoptional(field.annotation)
    return {float: "12.5", int: "3"}.get(kind) if isinstance(kind, type) else None


def _is_secret(field: FieldInfo | None) -> bool:
    return field is not None and SecretStr in (field.annotation, *typing.get_args(field.annotation))


def _is_model(candidate: Any) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, BaseModel)


def _unoptional(annotation: Any) -> Any:
    """`X | None` -> X."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return annotation
    members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    return members[0] if len(members) == 1 else annotation
