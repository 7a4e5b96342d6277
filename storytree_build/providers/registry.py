"""Which providers exist, and how to make them. Built-ins register through the same door an extension would.

A provider is a pair of ports (`ImageProvider`, `VideoProvider`) under one name; the name is part of every record's
signature, so assets of one provider are out of date for another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ..core.errors import ConfigError
from .base import ImageBatchProvider, ImageProvider, VideoProvider

T = TypeVar("T")

if TYPE_CHECKING:  # providers (the stub's Pillow, the SDK) are imported only when chosen
    from ..settings import Settings
    from .rate_limit import RateLimiter
    from .stub import StubImages

# How a provider is made: (settings, the session's rate limiter) → provider.
Factory = Callable[["Settings", "RateLimiter | None"], T]


@dataclass(frozen=True, kw_only=True)  # eight fields: by name, never by position
class ProviderEntry:
    name: str
    desc: str
    images: Factory[ImageProvider]
    videos: Factory[VideoProvider]
    needs_key: bool
    paid: bool  # its calls cost money: a build asks for consent first (core/consent.py); the offline stub never asks
    batches: Factory[ImageBatchProvider] | None = None  # images through a batch API (batch=1)
    # What the provider needs before any paid call (its key, its endpoint): raises ConfigError, checked once per build.
    check: Callable[["Settings"], None] | None = None


PROVIDERS: dict[str, ProviderEntry] = {}


def register(entry: ProviderEntry) -> None:
    PROVIDERS[entry.name] = entry


def entry(name: str) -> ProviderEntry:
    found = PROVIDERS.get(name)
    if found is None:
        raise ConfigError(f"Unknown provider {name!r}; choose one of: {', '.join(sorted(PROVIDERS))}.")
    return found


def check(settings: Settings, name: str) -> None:
    """Refuse now, once, what every paid call of provider `name` would fail on (a missing API key)."""
    found = entry(name)
    if found.check is not None:
        found.check(settings)


def make_images(settings: Settings, name: str, limiter: RateLimiter | None = None) -> ImageProvider:
    return entry(name).images(settings, limiter)


def make_batches(settings: Settings, name: str, limiter: RateLimiter | None = None) -> ImageBatchProvider:
    found = entry(name)
    if found.batches is None:
        raise ConfigError(f"provider {name!r} has no batch mode; build without batch=1 (or choose "
                          f"{', '.join(sorted(n for n, e in PROVIDERS.items() if e.batches))}).")
    return found.batches(settings, limiter)


def make_videos(settings: Settings, name: str, limiter: RateLimiter | None = None) -> VideoProvider:
    return entry(name).videos(settings, limiter)


def _stub_images(settings: Settings, limiter: RateLimiter | None) -> StubImages:  # images one by one and in batches
    from .stub import StubImages

    return StubImages(delay_seconds=settings.stub_delay_seconds, call_log=settings.stub_call_log,
                      batch_dir=settings.state_dir / "stub-batches")


def _stub_videos(settings: Settings, limiter: RateLimiter | None) -> VideoProvider:
    from .stub import StubVideos

    return StubVideos(delay_seconds=settings.stub_delay_seconds, call_log=settings.stub_call_log)


def _gemini_check(settings: Settings) -> None:
    from .google_http import endpoint

    endpoint(settings)


def _gemini_batches(settings: Settings, limiter: RateLimiter | None) -> ImageBatchProvider:
    from .gemini_batch import GeminiImageBatches

    return GeminiImageBatches.from_settings(settings, limiter)


def _gemini_images(settings: Settings, limiter: RateLimiter | None) -> ImageProvider:
    from .gemini_image import GeminiImages

    return GeminiImages.from_settings(settings, limiter)


def _gemini_videos(settings: Settings, limiter: RateLimiter | None) -> VideoProvider:
    from .gemini_video import GeminiVideos

    return GeminiVideos.from_settings(settings, limiter)


register(ProviderEntry(name="stub", desc="offline placeholders: labelled PNGs and a tiny playable MP4, no network",
                       images=_stub_images, videos=_stub_videos, needs_key=False, paid=False,
                       batches=_stub_images))
register(ProviderEntry(name="gemini",
                       desc="Google Gemini image models and the configured video model (needs GEMINI_API_KEY)",
                       images=_gemini_images, videos=_gemini_videos, needs_key=True, paid=True,
                       batches=_gemini_batches, check=_gemini_check))
