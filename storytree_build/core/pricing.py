"""Cost estimates: manifest units × a dated price table from configuration.

Responses never say what was billed, so every amount here is an estimate (an upper bound where prices
vary by size). Caps are enforced on these estimates before anything is spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from .manifest import Target


class PriceTable(BaseModel):
    """USD prices per output image (by model and image size) and per video second (by model and resolution).

    Defaults transcribe the Gemini API pricing page as recorded in docs/gemini-api.md §1.5/§2.5; where a price
    is only known as a range, the table takes the top of it. Override in storytree.toml `[prices]`.
    """

    model_config = ConfigDict(extra="forbid")
    as_of: str = "2026-11-21"
    currency: str = "USD"
    images: dict[str, dict[str, float]] = Field(default_factory=lambda: {
        "gemini-3.1-flash-image": {"512": 0.045, "1K": 0.067, "2K": 0.101, "4K": 0.151, "*": 0.151},
        "gemini-3-pro-image": {"1K": 0.134, "2K": 0.134, "4K": 0.24, "*": 0.24},
        "gemini-3.1-flash-lite-image": {"*": 0.0336},
        "gemini-2.5-flash-image": {"*": 0.039},
    })
    # Batch API price as a share of the interactive one, for images (pricing page: "Batch API (50% cost
    # reduction)", e.g. 0.0195 instead of 0.039 USD per 2.5-flash image; docs/gemini-api.md §5).
    image_batch_factor: float = Field(0.5, gt=0, le=1)
    video_per_second: dict[str, dict[str, float]] = Field(default_factory=lambda: {
        "gemini-omni-1.1-flash": {"720p": 0.40, "1080p": 0.40, "4k": 0.60, "*": 0.60},
        "veo-3.1-generate-001": {"720p": 0.40, "1080p": 0.40, "4k": 0.60, "*": 0.60},
        "veo-3.1-generate-preview": {"720p": 0.40, "1080p": 0.40, "4k": 0.60, "*": 0.60},
        "veo-3.1-fast-generate-001": {"*": 0.15},
    })


FREE_PROVIDERS = {"stub"}


def estimate(target: "Target", prices: PriceTable, provider: str, batch: bool = False) -> float | None:
    """Estimated cost of building `target` once (`batch`: an image through the Batch API); None when the price table
    does not know the model."""
    if provider in FREE_PROVIDERS:
        return 0.0
    units: dict[str, Any] = target.units
    for count_key, tier_key, tables in (("images", "image_size", prices.images),
                                        ("video_seconds", "resolution", prices.video_per_second)):
        if count_key in units:
            table = tables.get(target.model) or {}
            price = table.get(str(units.get(tier_key)), table.get("*"))
            if price is not None and batch and count_key == "images":
                price *= prices.image_batch_factor
            return None if price is None else round(price * units[count_key], 4)
    return None


def describe_units(units: dict[str, Any]) -> str:
    if "images" in units:
        size = f" ({units['image_size']})" if units.get("image_size") else ""
        return f"{units['images']} image{'s' if units['images'] != 1 else ''}{size}"
    if "video_seconds" in units:
        return f"{units['video_seconds']} s video ({units.get('resolution')})"
    return str(units)


@dataclass(frozen=True)
class Pricing:
    """What building a target costs in this run: images at the batch price in batch mode."""

    prices: PriceTable
    provider: str
    batch_mode: bool = False

    def cost(self, target: Target) -> float | None:
        return estimate(target, self.prices, self.provider, self.batch_mode)

    def interactive_cost(self, target: Target) -> float | None:
        return estimate(target, self.prices, self.provider)

    def batch_cost(self, target: Target) -> float | None:
        return estimate(target, self.prices, self.provider, batch=True)
