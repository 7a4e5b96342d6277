"""The provider ports: `ImageProvider` (one call per image) and `VideoProvider` (submit → poll → download).

Requests and results are small typed values; providers never touch the story store, the records, the manifest or
the target paths except the temp file they are handed, and never parse task names (the task is only a label for
messages).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class ReferenceImage:
    kind: str  # CHARACTER | ENVIRONMENT | KEY_FRAME
    id: str
    path: str  # relative to the assets root, for logs
    mime_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class ImageRequest:
    task: str
    model: str
    prompt: str
    prompt_sha256: str
    system_instruction: str | None = None
    references: tuple[ReferenceImage, ...] = ()
    aspect_ratio: str = "16:9"
    image_size: str | None = None
    kind: str = "key_frame"  # the target kind, for messages that name its setting ([generation.<kind>])


@dataclass(frozen=True)
class ImageResult:
    data: bytes = field(repr=False)
    mime_type: str
    text: str | None = None


@dataclass(frozen=True)
class VideoRequest:
    task: str
    model: str
    prompt: str
    prompt_sha256: str
    references: tuple[ReferenceImage, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VideoStatus:
    done: bool
    uri: str | None = None
    data: bytes | None = field(default=None, repr=False)
    error: str | None = None
    refused: bool = False  # safety / RAI filtering: not charged, never retried as-is


class ImageProvider(Protocol):
    """One paid call per image."""

    name: str

    def generate(self, request: ImageRequest) -> ImageResult: ...

    def close(self) -> None: ...


class VideoProvider(Protocol):
    """Videos are paid jobs: submitted once, polled, then downloaded."""

    name: str

    def submit(self, request: VideoRequest) -> str:
        """Start a paid video job and return its operation name. Never retried automatically."""
        ...

    def poll(self, operation: str) -> VideoStatus: ...

    def download(self, status: VideoStatus, destination: Path) -> None:
        """Stream the finished video to `destination` (a temp path the caller renames)."""
        ...

    def close(self) -> None: ...
