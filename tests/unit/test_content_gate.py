"""files/content.py: a file is what it claims to be — decoded by Pillow, or walked box by box — never by its name."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import pytest
from PIL import Image

from storytree_build.files.content import check


def png(width: int = 32, height: int = 18) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def box(name: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), name) + payload


MP4 = box(b"ftyp", b"isom\0\0\2\0isomiso2mp41") + box(b"moov", b"\0" * 40) + box(b"mdat", b"\1" * 64)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_real_png_passes_and_says_its_type_from_the_content(tmp_path: Path) -> None:
    verdict = check(write(tmp_path, "sheet.png", png()))
    assert verdict.ok and verdict.media_type == "image/png"
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8)).save(jpeg, format="JPEG")
    assert check(write(tmp_path, "named-png-but-jpeg.png", jpeg.getvalue())).media_type == "image/jpeg"


@pytest.mark.parametrize(("data", "why"), [
    (b"", "empty"),
    (png()[:60], "not a valid image"),
    (b"just some text, named .png", "not a valid image"),
])
def test_what_is_not_a_whole_image_is_refused(tmp_path: Path, data: bytes, why: str) -> None:
    verdict = check(write(tmp_path, "frame.png", data))
    assert not verdict.ok and why in verdict.why


def test_an_image_format_no_provider_takes_is_refused(tmp_path: Path) -> None:
    gif = io.BytesIO()
    Image.new("P", (8, 8)).save(gif, format="GIF")
    verdict = check(write(tmp_path, "frame.png", gif.getvalue()))
    assert not verdict.ok and "GIF" in verdict.why


def test_a_complete_mp4_passes(tmp_path: Path) -> None:
    assert check(write(tmp_path, "shot-1.mp4", MP4)) == check(write(tmp_path, "b.mp4", MP4))
    assert check(tmp_path / "shot-1.mp4").ok and check(tmp_path / "shot-1.mp4").media_type == "video/mp4"


@pytest.mark.parametrize(("data", "why"), [
    (b"", "too small"),
    (b"\0" * 10, "too small"),
    (MP4[: len(MP4) - 20], "claims"),  # the last box runs past the end of the file
    (box(b"moov", b"\0" * 80) + box(b"ftyp", b"isom"), "ftyp"),  # does not start with ftyp
    (box(b"ftyp", b"isom\0\0\2\0") + box(b"mdat", b"\1" * 80), "moov"),  # no movie header
    (box(b"ftyp", b"isom\0\0\2\0") + b"\0\0\0\3abcd" + b"\0" * 80, "claims"),  # a box smaller than its header
])
def test_what_is_not_a_whole_mp4_is_refused(tmp_path: Path, data: bytes, why: str) -> None:
    verdict = check(write(tmp_path, "shot-1.mp4", data))
    assert not verdict.ok and why in verdict.why


def test_a_symlink_out_of_the_asset_folder_is_refused_and_one_inside_is_followed(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    outside = write(tmp_path, "secret.png", png())
    os.symlink(outside, assets / "planted.png")
    assert not check(assets / "planted.png", inside=assets).ok
    assert "leads out" in check(assets / "planted.png", inside=assets).why
    os.symlink("/etc/passwd", assets / "passwd.png")
    assert not check(assets / "passwd.png", inside=assets).ok
    real = write(assets, "real.png", png())
    os.symlink(real, assets / "alias.png")
    assert check(assets / "alias.png", inside=assets).ok


def test_a_folder_or_a_missing_path_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "dir.png").mkdir()
    assert check(tmp_path / "dir.png").why == "not a regular file"
    assert check(tmp_path / "none.png").why == "missing"
