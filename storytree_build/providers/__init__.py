"""Provider registry. Built-ins register through the same door an extension would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError
from .base import ImageRequest, ImageResult, Provider, ReferenceImage, VideoRequest, VideoStatus


@dataclass(frozen=True)
class ProviderEntry:
    name: str
    desc: str
    factory: Callable[..., Provider]
    needs_key: bool


PROVIDERS: dict[str, ProviderEntry] = {}


def register(name: str, desc: str, factory: Callable[..., Provider], needs_key: bool) -> None:
    PROVIDERS[name] = ProviderEntry(name, desc, factory, needs_key)


def _stub(settings) -> Provider:  # noqa: ANN001
    from .stub import StubProvider

    return StubProvider(delay_seconds=settings.stub_delay_seconds, call_log=settings.stub_call_log)


def _gemini(settings) -> Provider:  # noqa: ANN001
    if settings.gemini_api_key is None or not settings.gemini_api_key.get_secret_value().strip():
        raise ConfigError(
            "The gemini provider needs an API key: set GEMINI_API_KEY (or GOOGLE_API_KEY). "
            "To build offline placeholders instead, choose the stub provider explicitly: "
            "`doit story:<id> provider=stub` or STORYTREE_PROVIDER=stub.")
    from .gemini import GeminiProvider

    return GeminiProvider.from_settings(settings)


register("stub", "offline placeholders: labelled PNGs and a tiny playable MP4, no network", _stub, needs_key=False)
register("gemini", "Google Gemini image models and the configured video model (needs GEMINI_API_KEY)", _gemini,
         needs_key=True)


def make_provider(settings, name: str | None = None) -> Provider:  # noqa: ANN001
    name = name or settings.provider
    entry = PROVIDERS.get(name)
    if entry is None:
        raise ConfigError(f"Unknown provider {name!r}; choose one of: {', '.join(sorted(PROVIDERS))}.")
    return entry.factory(settings)


__all__ = ["ImageRequest", "ImageResult", "Provider", "ReferenceImage", "VideoRequest", "VideoStatus",
           "PROVIDERS", "register", "make_provider"]
