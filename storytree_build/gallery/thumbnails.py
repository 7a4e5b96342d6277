"""Small pictures for the review page: made once by Pillow from an image asset, named by the asset's sha256, in
`stories/<story-id>/thumbs/` next to the page (a cache: deleting it costs nothing, the next render makes them again).
They are kept out of `generated/`, the asset folder the UI ships, and the page links each one to its full file.

A picture that Pillow cannot read gets no thumbnail: the page then shows the full file (lazily), never a broken one.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from ..files.atomic import write_bytes_atomic

log = logging.getLogger("storytree")

WIDTH = 480  # px: two columns on a laptop, the whole width of a phone at 2x
FOLDER = "thumbs"
SUFFIX = ".webp"


class Thumbnails:
    """The thumbnails of one story page; `url` makes a missing one, `prune` removes those no longer shown."""

    def __init__(self, page_folder: Path):
        self.folder = page_folder / FOLDER
        self.used: set[str] = set()  # file names the page being rendered shows

    def url(self, source: Path, sha256: str | None) -> str | None:
        """URL (relative to the page) of the thumbnail of `source`, whose content hash is `sha256`; None when there
        is no file or Pillow cannot read it."""
        if sha256 is None:
            return None
        name = sha256[:32] + SUFFIX  # 128 bits of the sha256: unique enough, and 250 shots' names stay short
        path = self.folder / name
        if not path.is_file():
            data = _thumbnail_bytes(source)
            if data is None:
                return None
            write_bytes_atomic(path, data)
        self.used.add(name)
        return f"{FOLDER}/{name}"

    def prune(self) -> None:
        """Remove thumbnails of files the page no longer shows (an older version of a key frame, a deleted story
        target); the current ones stay, so a re-render makes nothing again."""
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if path.suffix == SUFFIX and path.name not in self.used:
                path.unlink(missing_ok=True)


def _thumbnail_bytes(source: Path) -> bytes | None:
    from PIL import Image, UnidentifiedImageError  # only when a page is rendered

    try:
        with Image.open(source) as image:
            image.draft("RGB", (WIDTH, WIDTH))  # JPEG: decode at a smaller scale directly
            picture = image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        log.warning("no thumbnail for %s (%s): the page shows the full file", source, exc)
        return None
    if picture.width > WIDTH:
        picture = picture.resize((WIDTH, max(1, round(picture.height * WIDTH / picture.width))), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()
