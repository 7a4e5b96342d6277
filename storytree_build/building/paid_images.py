"""A paid image, from its bytes to a recorded, published asset — shared by interactive builds and batch jobs.

The bytes become an object first (outputs.py), then the asset; when the asset cannot be written (a full disk, a folder
turned read-only) the target is still recorded, pointing at its object, and the next build writes the file without
paying again. After the file is in place it is recorded (with the signature it was paid for), a copy an earlier
version kept in the recovery folder is forgotten, and the path is published.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ContextManager

from ..core.errors import EnvironmentFault
from ..core.manifest import Target
from ..core.status import Inputs, signature_of
from .outputs import Outputs, Placed
from .recovery import Recovery
from .space import describe
from .summary import Outcome


class PaidImages:
    def __init__(self, outputs: Outputs, recovery: Recovery, room_for: Callable[[Target], ContextManager[None]]):
        self.outputs = outputs
        self.recovery = recovery  # read only: paid results an earlier version could not write
        self.room_for = room_for

    def write(self, target: Target, data: bytes, signature: str) -> Placed:
        """Keep and place a paid result with room held."""
        with self.room_for(target):
            return self.place(target, data, signature)

    def place(self, target: Target, data: bytes, signature: str) -> Placed:
        try:
            return self.outputs.write_image(target, data, signature)
        except OSError as exc:  # neither the object store nor the asset folder could take it
            raise EnvironmentFault(
                f"{target.task}: the generated image was paid for but could be saved neither to the object store "
                f"nor to {self.outputs.path(target)} ({describe(exc)}); it is lost. Free space or make the folders "
                "writable before building again.") from None

    def finish(self, target: Target, inputs: Inputs, signature: str, action: str, placed: Placed, *,
               cost: float | None, recovered: bool = False, detail: str = "") -> Outcome:
        """After the result is kept: record it (the signature it was paid for), forget a kept copy, publish."""
        recorded = inputs if signature_of(inputs) == signature else {**inputs, "submitted_signature": signature}
        # Reference hashes unknown here (collected on a machine without them): recorded as what is known.
        unknown = any(digest is None for _, digest in inputs.get("references") or [])
        self.outputs.record(target, recorded, signature_of(inputs) if unknown else signature,
                            origin="recovered" if recovered else "built", placed=placed, cost=cost)
        self.recovery.discard(target.task)
        if not placed.written:
            raise placed.unwritten_fault(target.task, self.outputs.path(target))
        self.outputs.publish(target, reread=False)  # recorded just above
        return Outcome(target.task, action, detail or target.output)

