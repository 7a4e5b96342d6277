"""One copy of each equal part of a loaded manifest.

A story's shots repeat the same reference entries, model, template, config and cost units, and pydantic gives every
target its own copy of each, and its own set of the field names that were set. Those copies are most of what the
manifest holds: 5.2 → 1.4 kB a target (tracemalloc, 5,002 targets; the pass takes ~35 ms there, so only a run that
builds makes it). A manifest is never changed once loaded (nothing assigns to a target or a reference;
`Manifest.by_task` already shares its index), so equal parts can be one object. The values are written into the
models' own `__dict__`, as pydantic's `model_construct` does: nothing is validated again, and each model's set of
given fields is an equal set.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .model import Manifest, ReferenceEntry

_STRING_FIELDS = ("kind", "model", "template", "system_prompt")


def compact(manifest: Manifest) -> Manifest:
    """`manifest`, its equal parts shared (in place; returned for chaining). Its dump is unchanged."""
    strings: dict[str, str] = {}
    parts: dict[Any, Any] = {}
    field_sets: dict[frozenset[str], set[str]] = {}

    def share_fields_set(value: BaseModel) -> None:
        # pydantic keeps this set per instance; it changes only when a field is assigned, which no code does
        names = value.__pydantic_fields_set__
        object.__setattr__(value, "__pydantic_fields_set__", field_sets.setdefault(frozenset(names), names))

    for target in manifest.targets:
        fields = target.__dict__
        for name in _STRING_FIELDS:
            item = fields[name]
            if item is not None:
                fields[name] = strings.setdefault(item, item)
        if target.references:
            refs = []
            for ref in target.references:
                key = (ReferenceEntry, *ref.__dict__.values())  # four strings
                shared = parts.get(key)
                if shared is None:
                    shared = parts[key] = ref
                    share_fields_set(ref)
                refs.append(shared)
            fields["references"] = parts.setdefault(("references", *map(id, refs)), refs)
        if target.depends_on:
            fields["depends_on"] = parts.setdefault(("depends_on", *target.depends_on), target.depends_on)
        for name in ("config", "units"):
            value = fields[name]
            try:
                # the types too: 1, 1.0 and True are equal keys but dump differently
                fields[name] = parts.setdefault((name, *value.items(), *map(type, value.values())), value)
            except TypeError:  # a list or dict inside: not shared (no such value is written today)
                pass
        for location in target.db:
            share_fields_set(location)
            column = location.column
            location.__dict__["column"] = strings.setdefault(column, column)
        if target.shot is not None:
            share_fields_set(target.shot)
        share_fields_set(target)
    return manifest
