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


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True)
class BatchItem:
    """One request's outcome in a finished batch job: an image, or why there is none (that target fails alone)."""

    result: ImageResult | None = None
    error: str | None = None
    refused: bool = False  # withheld on policy grounds: never retried as-is


@dataclass(frozen=True)
class BatchStatus:
    """A batch job as last seen. `items` (task → outcome) is filled once the job is done."""

    done: bool
    state: str
    items: dict[str, BatchItem] = field(default_factory=dict)
    error: str | None = None  # the whole job failed, expired or was cancelled: every task without an item fails


class ImageBatchProvider(Protocol):
    """Images through a batch API: many requests in one paid job, collected later (half the price, hours)."""

    name: str

    def submit_batch(self, model: str, requests: list[ImageRequest], display_name: str) -> str:
        """Start one paid job for `requests` (one model) and return its name. Never retried after it may have
        reached the server."""
        ...

    def poll_batch(self, name: str) -> BatchStatus: ...

    def close(self) -> None: ...
