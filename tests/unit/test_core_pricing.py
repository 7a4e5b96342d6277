"""core/pricing.py: estimates from manifest units × the price table, and how units are described."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from storytree_build.core.manifest import Target
from storytree_build.core.pricing import PriceTable, describe_units, estimate

PRICES = PriceTable(
    images={
        "img-model": {"512": 0.01, "1K": 0.02, "2K": 0.05, "*": 0.10},
        "img-flat": {"*": 0.03},
        "img-no-fallback": {"1K": 0.07},
    },
    video_per_second={
        "vid-model": {"720p": 0.25, "1080p": 0.40, "*": 0.75},
        "vid-flat": {"*": 0.15},
    },
)


def image(make_target: Callable[..., Target], model: str, size: str | None, images: int = 1) -> Target:
    return make_target("image:scenelet-1_1", model=model, units={"images": images, "image_size": size})


def video(make_target: Callable[..., Target], model: str, seconds: int, resolution: str) -> Target:
    return make_target("video:scenelet-1_1", model=model,
                       units={"video_seconds": seconds, "resolution": resolution})


@pytest.mark.parametrize(("size", "expected"), [("512", 0.01), ("1K", 0.02), ("2K", 0.05)])
def test_image_price_is_per_model_and_size(make_target, size: str, expected: float) -> None:  # noqa: ANN001
    assert estimate(image(make_target, "img-model", size), PRICES, "gemini") == expected


def test_image_price_times_image_count(make_target) -> None:  # noqa: ANN001
    assert estimate(image(make_target, "img-model", "2K", images=3), PRICES, "gemini") == 0.15


@pytest.mark.parametrize("size", ["4K", None])
def test_unknown_or_absent_size_falls_back_to_the_star_price(make_target, size: str | None) -> None:  # noqa: ANN001
    assert estimate(image(make_target, "img-model", size), PRICES, "gemini") == 0.10
    assert estimate(image(make_target, "img-flat", size), PRICES, "gemini") == 0.03


def test_unknown_model_or_size_without_fallback_has_no_price(make_target) -> None:  # noqa: ANN001
    assert estimate(image(make_target, "no-such-model", "1K"), PRICES, "gemini") is None
    assert estimate(image(make_target, "img-no-fallback", "2K"), PRICES, "gemini") is None
    assert estimate(video(make_target, "no-such-video-model", 8, "1080p"), PRICES, "gemini") is None
    # an image model is not a video model: tables are separate
    assert estimate(video(make_target, "img-flat", 8, "1080p"), PRICES, "gemini") is None


def test_video_price_is_seconds_times_the_resolution_price(make_target) -> None:  # noqa: ANN001
    assert estimate(video(make_target, "vid-model", 8, "1080p"), PRICES, "gemini") == 3.2
    assert estimate(video(make_target, "vid-model", 4, "720p"), PRICES, "gemini") == 1.0
    assert estimate(video(make_target, "vid-model", 8, "4k"), PRICES, "gemini") == 6.0  # "*" fallback
    assert estimate(video(make_target, "vid-flat", 6, "1080p"), PRICES, "gemini") == 0.9


def test_stub_provider_is_free_even_for_unknown_models(make_target) -> None:  # noqa: ANN001
    assert estimate(image(make_target, "img-model", "2K"), PRICES, "stub") == 0.0
    assert estimate(image(make_target, "no-such-model", "1K"), PRICES, "stub") == 0.0
    assert estimate(video(make_target, "vid-model", 8, "1080p"), PRICES, "stub") == 0.0


def test_units_without_images_or_video_seconds_have_no_price(make_target) -> None:  # noqa: ANN001
    assert estimate(make_target(model="img-model", units={"pages": 1}), PRICES, "gemini") is None


def test_default_price_table_prices_the_default_models(make_target) -> None:  # noqa: ANN001
    table = PriceTable()
    assert estimate(image(make_target, "gemini-3.1-flash-image", "1K"), table, "gemini") == 0.067
    assert estimate(video(make_target, "gemini-omni-1.1-flash", 8, "1080p"), table, "gemini") == 3.2


@pytest.mark.parametrize(("units", "text"), [
    ({"images": 1, "image_size": "1K"}, "1 image (1K)"),
    ({"images": 2, "image_size": "4K"}, "2 images (4K)"),
    ({"images": 1, "image_size": None}, "1 image"),
    ({"images": 1}, "1 image"),
    ({"video_seconds": 8, "resolution": "1080p"}, "8 s video (1080p)"),
    ({"video_seconds": 4, "resolution": "720p"}, "4 s video (720p)"),
])
def test_describe_units(units: dict, text: str) -> None:
    assert describe_units(units) == text
