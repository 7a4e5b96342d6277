"""Is a file what it claims to be? The one check for every file the build did not just write itself — a file it
would adopt, send as a reference, restore or keep as a hand edit:

    a regular file (a symlink only when it resolves inside `inside`), within the kind's size bounds,
    an image decoded completely by Pillow (its format read from the content, never from the extension),
    a video whose ISO BMFF boxes (`ftyp`, then `moov` and `mdat`) are present and sized consistently.

`check(path, kind)` returns a `Verdict`: `ok`, the format found, and why not in words a person reads.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
MAX_IMAGE_BYTES = 64 * 1024 * 1024
MAX_IMAGE_PIXELS = 64_000_000  # Pillow's decompression-bomb guard, made explicit
MAX_VIDEO_BYTES = 2 * 1024 * 1024 * 1024
MIN_VIDEO_BYTES = 64


@dataclass(frozen=True)
class Verdict:
    ok: bool
    why: str = ""  # what is wrong, e.g. "not a valid PNG (truncated)"
    media_type: str | None = None  # from the content: image/png, image/jpeg, image/webp, video/mp4

    def __bool__(self) -> bool:
        return self.ok


def kind_of(path: str | Path) -> str:
    """`image` or `video`, by the target's file name (what the file must turn out to be)."""
    return "video" if str(path).lower().endswith((".mp4", ".m4v", ".mov")) else "image"


def check(path: Path, kind: str | None = None, inside: Path | None = None) -> Verdict:
    """Whether `path` is a complete, genuine file of `kind` (default: by its name)."""
    kind = kind or kind_of(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Verdict(False, "missing")
    except OSError as exc:
        return Verdict(False, f"cannot be read ({exc.strerror or exc})")
    if stat.S_ISLNK(st.st_mode):
        target = Path(os.path.realpath(path))
        if inside is None or not _within(target, inside):
            return Verdict(False, "a symbolic link that leads out of the asset folder")
        try:
            st = os.stat(path)
        except OSError:
            return Verdict(False, "a broken symbolic link")
    if not stat.S_ISREG(st.st_mode):
        return Verdict(False, "not a regular file")
    if kind == "video":
        return _video(path, st.st_size)
    return _image(path, st.st_size)


def _within(target: Path, folder: Path) -> bool:
    try:
        target.relative_to(Path(os.path.realpath(folder)))
    except ValueError:
        return False
    return True


def _image(path: Path, size: int) -> Verdict:
    if size == 0:
        return Verdict(False, "empty (0 bytes)")
    if size > MAX_IMAGE_BYTES:
        return Verdict(False, f"{size:,} bytes, more than an image may be ({MAX_IMAGE_BYTES:,})")
    from PIL import Image

    try:
        with Image.open(path) as image:
            found = image.format or "unknown"
            if found not in IMAGE_FORMATS:
                return Verdict(False, f"a {found} image, not PNG, JPEG or WebP")
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                return Verdict(False, f"{width}×{height} pixels, more than an image may have")
            image.load()  # every pixel decoded: a truncated or corrupt file fails here
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds; any of them means "not a valid image"
        return Verdict(False, f"not a valid image ({_short(exc)})")
    return Verdict(True, media_type=IMAGE_FORMATS[found])


def _video(path: Path, size: int) -> Verdict:
    if size < MIN_VIDEO_BYTES:
        return Verdict(False, f"{size} bytes, too small to be a video")
    if size > MAX_VIDEO_BYTES:
        return Verdict(False, f"{size:,} bytes, more than a video may be")
    seen: list[str] = []
    try:
        with open(path, "rb") as handle:
            offset = 0
            while offset < size:
                head = handle.read(8)
                if len(head) < 8:
                    return Verdict(False, f"not a valid MP4 (a box header is cut off at byte {offset})")
                length, name = struct.unpack(">I4s", head)
                header = 8
                if length == 1:  # 64-bit size follows
                    large = handle.read(8)
                    if len(large) < 8:
                        return Verdict(False, "not a valid MP4 (a large box header is cut off)")
                    length, header = struct.unpack(">Q", large)[0], 16
                elif length == 0:  # the box runs to the end of the file
                    length = size - offset
                box = name.decode("latin-1")
                if length < header or offset + length > size:
                    return Verdict(False, f"not a valid MP4 (box {box!r} at byte {offset} claims {length} bytes; the "
                                          f"file has {size})")
                if not seen and box != "ftyp":
                    return Verdict(False, "not an MP4 (it does not start with an ftyp box)")
                seen.append(box)
                offset += length
                handle.seek(offset)
    except OSError as exc:
        return Verdict(False, f"cannot be read ({exc.strerror or exc})")
    missing = [box for box in ("moov", "mdat") if box not in seen]
    if missing:
        return Verdict(False, f"not a complete MP4 (no {' or '.join(missing)} box)")
    return Verdict(True, media_type="video/mp4")


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]
