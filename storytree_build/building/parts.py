"""What every flow that may pay for a target works with — made once per story by the composition root
(bootstrap.py) and handed to the builder, the video flow and the batch flow as one value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ContextManager

from ..core.manifest import Target
from ..core.pricing import Pricing
from ..store.build_state import OperationsPort
from .claims import Claims
from .facts import FactGatherer
from .outputs import Outputs
from .recovery import Recovery
from .requests import RequestFactory
from .spend import SpendGate
from .summary import RunSummary


@dataclass(frozen=True, kw_only=True)
class BuildParts:
    story_id: str
    provider: str
    targets: dict[str, Target]
    facts: FactGatherer
    requests: RequestFactory
    outputs: Outputs
    operations: OperationsPort
    spend: SpendGate
    pricing: Pricing
    room_for: Callable[[Target], ContextManager[None]]  # writable folders and free space, held while paying
    claims: Claims
    summary: RunSummary
    recovery: Recovery
