"""Manifests, in one place: what a manifest is (`model`), how one is made from a story (`build`), and its file form
(`file`: `manifests/<story-id>.yaml` and the JSON cache a no-op build reads)."""

from .model import (SCHEMA_VERSION, TEXT_ONLY, DbLocation, Manifest, ReferenceEntry, ShotKey, Target, TargetKind,
                    summary)

__all__ = ["SCHEMA_VERSION", "TEXT_ONLY", "summary", "DbLocation", "Manifest", "ReferenceEntry", "ShotKey", "Target", "TargetKind"]
