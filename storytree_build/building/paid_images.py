"""A paid image, from its bytes to a recorded, published asset — shared by interactive builds and batch jobs.

The asset is written atomically; when that fails (a full disk, a folder turned read-only) the bytes go to the
recovery folder and the next build writes them without paying again. After the file is in place it is recorded
(with the signature it was paid for), a kept copy is forgotten and the path is published.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ContextManager

from ..core.errors import EnvironmentFault
from ..core.manifest import Target
from ..core.status import Inputs, signature_of
from .outputs import Outputs
from .recovery import Recovery
from .space import describe
from .summary import Outcome


class PaidImages:
    def __init__(self, outputs: Outputs, recovery: Recovery, room_for: Callable[[Target], ContextManager[None]]):
        self.outputs = outputs
        self.recovery = recovery
        self.room_for = room_for

    def write(self, target: Target, data: bytes, signature: str) -> None:
        """Write a paid result (temp + rename) with room held; when that fails it is kept in the recovery folder."""
        with self.room_for(target):
            self.write_or_keep(target, data, signature, already_kept=False)

    def write_or_keep(self, target: Target, data: bytes, signature: str, already_kept: bool) -> None:
        try:
            self.outputs.write_image(target, data, signature)
        except OSError as exc:
            if already_kept:
                raise EnvironmentFault(f"{target.task}: the kept result could not be written to "
                                       f"{self.outputs.path(target)} ({describe(exc)}); it stays kept, nothing is "
                                       "paid again. Free space or make the folder writable and build again.") from None
            try:
                where = self.recovery.keep(target.task, signature, data)
            except OSError as again:
                raise EnvironmentFault(
                    f"{target.task}: the generated image was paid for but could be saved neither to "
                    f"{self.outputs.path(target)} ({describe(exc)}) nor to the recovery folder ({describe(again)}); "
                    "it is lost. Free space or make the folders writable before building again.") from None
            raise EnvironmentFault(
                f"{target.task}: the generated image was paid for but could not be written to "
                f"{self.outputs.path(target)} ({describe(exc)}); it is kept in {where}. Free space or make the folder "
                "writable and build again: it is written then without paying again.") from None

    def finish(self, target: Target, inputs: Inputs, signature: str, action: str, recovered: bool = False,
               detail: str = "") -> Outcome:
        """After the file is in place: record it (the signature it was paid for), forget a kept copy, publish."""
        recorded = inputs if signature_of(inputs) == signature else {**inputs, "submitted_signature": signature}
        # Reference hashes unknown here (collected on a machine without them): recorded as what is known.
        unknown = any(digest is None for _, digest in inputs.get("references") or [])
        self.outputs.record(target, recorded, signature_of(inputs) if unknown else signature,
                            origin="recovered" if recovered else "built")
        self.recovery.discard(target.task)
        self.outputs.publish(target)
        return Outcome(target.task, action, detail or target.output)
