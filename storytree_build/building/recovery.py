"""Paid results that could not be written to their target path (a full disk, a folder that turned read-only) are kept
here, under the private state folder, with the signature of the inputs they were made from. Before paying for a
target, the builder looks here first: a kept result for the same inputs is written without a new call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..files.atomic import private_folder, write_bytes_atomic, write_text_atomic


@dataclass(frozen=True)
class Kept:
    task: str
    signature: str
    data_path: Path


class Recovery:
    def __init__(self, folder: Path):
        self.folder = folder  # <state>/recovery/<story-id>

    def _paths(self, task: str) -> tuple[Path, Path]:
        name = task.replace(":", "__").replace("/", "_")
        return self.folder / f"{name}.bin", self.folder / f"{name}.json"

    def keep(self, task: str, signature: str, data: bytes) -> Path:
        """Save the bytes, then the note that says what they are (a half-saved entry has no note and is ignored)."""
        private_folder(self.folder)
        data_path, note_path = self._paths(task)
        write_bytes_atomic(data_path, data)
        write_text_atomic(note_path, json.dumps({"task": task, "signature": signature}))
        return data_path

    def find(self, task: str, signature: str) -> Kept | None:
        data_path, note_path = self._paths(task)
        try:
            note = json.loads(note_path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if note.get("task") != task or note.get("signature") != signature or not data_path.is_file():
            return None
        return Kept(task, signature, data_path)

    def discard(self, task: str) -> None:
        for path in reversed(self._paths(task)):
            path.unlink(missing_ok=True)
