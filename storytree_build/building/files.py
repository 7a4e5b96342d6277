"""Asset files: provenance embedded in PNGs, the MP4 sanity check, per-target locks, and the temp files a killed run
left behind."""

from __future__ import annotations

import fcntl
import io
import os
import stat
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.manifest import Target
from ..core.errors import EnvironmentFault, ProviderError

_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


PROVENANCE_PREFIX = "storytree:"


def to_png_with_provenance(data: bytes, target: Target, provider: str, built_at: str, signature: str) -> bytes:
    """Verify the provider's bytes are an image, store PNG, and embed provenance as PNG text chunks (task, prompt
    hash, model, provider, build time, and the signature of every input, which lets a later build recognise the file
    if its record was lost). A PNG keeps its encoded pixels (chunks are spliced in before IEND); other formats are
    converted."""
    from PIL import Image, PngImagePlugin

    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        image: Image.Image = Image.open(io.BytesIO(data))
        image.load()  # decodes every pixel: a truncated or corrupt image fails here
    except Exception as exc:
        raise ProviderError(f"{target.task}: the provider returned bytes that are not a valid image ({exc}).") from exc
    items = (("storytree:task", target.task), ("storytree:prompt_sha256", target.prompt_sha256),
             ("storytree:model", target.model), ("storytree:provider", provider), ("storytree:built_at", built_at),
             ("storytree:signature", signature))
    if image.format == "PNG" and data.endswith(_IEND):
        chunks = b"".join(_png_chunk(b"iTXt", key.encode() + b"\0\0\0\0\0" + value.encode()) for key, value in items)
        return data[: -len(_IEND)] + chunks + _IEND
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA")
    info = PngImagePlugin.PngInfo()
    for key, value in items:
        info.add_itxt(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def read_provenance(path: Path) -> dict[str, str]:
    """The `storytree:*` text chunks of a PNG ({} for anything else), walking the chunks without decoding pixels."""
    found: dict[str, str] = {}
    try:
        with open(path, "rb") as handle:
            if handle.read(8) != b"\x89PNG\r\n\x1a\n":
                return {}
            while True:
                head = handle.read(8)
                if len(head) < 8:
                    return found
                length, kind = struct.unpack(">I4s", head)
                if kind == b"iTXt" and length < 1 << 16:
                    key, _, rest = handle.read(length).partition(b"\0")
                    if key.startswith(PROVENANCE_PREFIX.encode()):
                        # compression flag, method, language tag \0, translated keyword \0, then the text
                        text = rest[2:].split(b"\0", 2)[-1]
                        found[key.decode("latin-1")] = text.decode("utf-8", "replace")
                    handle.seek(4, 1)
                else:
                    handle.seek(length + 4, 1)
                if kind == b"IEND":
                    return found
    except OSError:
        return {}


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def verify_mp4(path: Path, task: str) -> None:
    with open(path, "rb") as handle:
        head = handle.read(12)
    if len(head) < 12 or head[4:8] != b"ftyp":
        size = path.stat().st_size
        raise ProviderError(f"{task}: the downloaded video is not an MP4 ({size} bytes, no ftyp box); nothing was saved.")


def inside(root: Path, rel: str) -> Path:
    """`root / rel`, refused (EnvironmentFault, before anything is written) when a symbolic link in the folders on the
    way leads out of `root`: a build never writes, parks or restores a file outside the asset folder."""
    path = root / rel
    if _no_link_below(root, path.parent):
        return path
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(path.parent)
    if real_parent != real_root and not real_parent.startswith(real_root + os.sep):
        raise EnvironmentFault(
            f"refusing to write {rel}: the folder {path.parent} leads out of the asset folder (a symbolic link to "
            f"{real_parent}); replace the link with a real folder and build again. Nothing was written.")
    return path


def _no_link_below(root: Path, folder: Path) -> bool:
    """True when no folder between `root` and `folder` is a symbolic link: then `folder` is inside `root` without
    resolving every folder from `/` (what realpath does; most of a built target's path work). False for anything
    else (a link, `..`, a path not under root), which `inside` then resolves in full."""
    try:
        parts = folder.relative_to(root).parts
    except ValueError:
        return False
    current = root
    for part in parts:
        if part in ("..", "."):
            return False
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return True  # nothing below exists yet, so no link either: the build creates real folders
        except OSError:
            return False
        if stat.S_ISLNK(mode):
            return False
    return True


def remove_leftovers(output: Path) -> None:
    """Temp files of a run that was killed mid-write; safe to delete while holding the target's lock."""
    if output.parent.is_dir():
        for leftover in output.parent.glob(f".{output.name}.*.part"):
            leftover.unlink(missing_ok=True)


class TargetLocks:
    """Two runs on one story (threads or processes) never build the same target at once."""

    def __init__(self, folder: Path):
        self.folder = folder

    @contextmanager
    def hold(self, task: str) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / (task.replace(":", "__") + ".lock"), "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
