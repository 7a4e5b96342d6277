"""The offline provider: deterministic placeholder images and a tiny playable MP4. Costs nothing."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import struct
import time
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..files.atomic import write_text_atomic
from ..core.errors import InputError
from .base import BatchItem, BatchStatus, ImageRequest, ImageResult, VideoRequest, VideoStatus

_SIZES = {"16:9": (640, 360), "9:16": (360, 640), "1:1": (512, 512), "4:3": (640, 480), "3:4": (480, 640),
          "3:2": (600, 400), "2:3": (400, 600), "21:9": (840, 360)}


def stub_size(aspect_ratio: str) -> tuple[int, int]:
    if aspect_ratio in _SIZES:
        return _SIZES[aspect_ratio]
    w, h = (int(x) for x in aspect_ratio.split(":"))
    return (512, max(1, round(512 * h / w)))


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


class _CallLog:
    """The stub appends one line per "paid" call to a file, so tests can count re-payments across processes."""

    def __init__(self, path: Path | None):
        self.path = path

    def note(self, task: str) -> None:
        if self.path is not None:
            # O_APPEND: lines from concurrent processes never interleave
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, f"{task}\n".encode())
            finally:
                os.close(fd)


class StubImages:
    name = "stub"

    def __init__(self, delay_seconds: float = 0.0, call_log: Path | None = None, batch_dir: Path | None = None) -> None:
        self.delay_seconds = delay_seconds
        self.calls = _CallLog(call_log)
        self.batch_dir = batch_dir  # where stub batch jobs keep their requests until they are collected

    def generate(self, request: ImageRequest) -> ImageResult:
        self.calls.note(request.task)
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        return draw_stub(request.task, request.prompt_sha256, request.aspect_ratio, len(request.references))

    # -- batch mode: the same images, collected from a job that is done at once ---------------------------
    def submit_batch(self, model: str, requests: list[ImageRequest], display_name: str) -> str:
        if self.batch_dir is None:
            raise InputError("the stub provider was made without a folder for batch jobs.")
        for request in requests:
            self.calls.note(request.task)
        kept = [{"task": r.task, "model": r.model, "prompt_sha256": r.prompt_sha256, "aspect_ratio": r.aspect_ratio,
                 "references": len(r.references)} for r in requests]
        text = json.dumps({"display_name": display_name, "requests": kept}, sort_keys=True)
        name = "batches/stub-" + hashlib.sha256(text.encode()).hexdigest()[:24]
        write_text_atomic(self.batch_dir / (name.split("/", 1)[1] + ".json"), text)
        return name

    def poll_batch(self, name: str) -> BatchStatus:
        path = (self.batch_dir or Path("/nonexistent")) / (name.split("/", 1)[-1] + ".json")
        try:
            kept = json.loads(path.read_text())
        except FileNotFoundError:
            return BatchStatus(done=True, state="JOB_STATE_FAILED", error=f"the stub knows no batch job {name}")
        items = {entry["task"]: BatchItem(result=draw_stub(entry["task"], entry["prompt_sha256"], entry["aspect_ratio"],
                                                           entry["references"]))
                 for entry in kept["requests"]}
        return BatchStatus(done=True, state="JOB_STATE_SUCCEEDED", items=items)

    def close(self) -> None:
        pass


def draw_stub(task: str, prompt_sha256: str, aspect_ratio: str, references: int) -> ImageResult:
    """A labelled placeholder: the same bytes for the same request, interactive or batch."""
    width, height = stub_size(aspect_ratio)
    digest = hashlib.sha256(prompt_sha256.encode()).digest()
    background = (60 + digest[0] % 120, 60 + digest[1] % 120, 60 + digest[2] % 120)
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    draw.rectangle([8, 8, width - 9, height - 9], outline=(255, 255, 255), width=4)
    draw.text((24, 20), "STUB", fill=(255, 255, 255), font=_font(max(24, height // 6)))
    small = _font(max(12, height // 24))
    y = height // 2
    for line in (task, f"prompt {prompt_sha256[:16]}", f"{references} reference image(s)"):
        draw.text((24, y), line, fill=(255, 255, 255), font=small)
        y += max(16, height // 18)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return ImageResult(data=buffer.getvalue(), mime_type="image/png", text=None)


class StubVideos:
    name = "stub"

    def __init__(self, delay_seconds: float = 0.0, call_log: Path | None = None) -> None:
        self.delay_seconds = delay_seconds
        self.calls = _CallLog(call_log)

    def submit(self, request: VideoRequest) -> str:
        self.calls.note(request.task)
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        return f"stub-operations/{request.prompt_sha256[:24]}"

    def poll(self, operation: str) -> VideoStatus:
        return VideoStatus(done=True, uri=f"stub://{operation}")

    def download(self, status: VideoStatus, destination: Path) -> None:
        if not (status.uri or "").startswith("stub://"):
            raise InputError(f"the stub provider only downloads its own stub:// links, not {status.uri!r}; "
                             "links to other hosts are refused.")
        fixture = resources.files("storytree_build.providers").joinpath("stub_video.mp4").read_bytes()
        label = f"storytree STUB video {status.uri}".encode()
        # A top-level `free` box: players skip it, and each stub video stays distinguishable.
        destination.write_bytes(fixture + struct.pack(">I4s", 8 + len(label), b"free") + label)

    def close(self) -> None:
        pass
