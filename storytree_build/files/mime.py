"""The one table of media types: which files the server sends with which Content-Type, and which reference images a
provider accepts (PNG, JPEG, WebP)."""

from __future__ import annotations

from pathlib import Path

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json", ".txt": "text/plain; charset=utf-8", ".svg": "image/svg+xml",
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif",
    ".ico": "image/x-icon", ".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4", ".wav": "audio/wav", ".ogg": "audio/ogg", ".woff2": "font/woff2",
}
REFERENCE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})


def content_type(path: Path | str) -> str:
    return CONTENT_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


def reference_image_type(path: Path | str) -> str | None:
    """The media type of a reference image file, or None when providers do not accept that format."""
    kind = CONTENT_TYPES.get(Path(path).suffix.lower())
    return kind if kind in REFERENCE_IMAGE_TYPES else None
