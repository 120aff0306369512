"""What every detector is to the engine: one small protocol.

A detector scores a whole micro-batch (sorted by stream, then time) at once and keeps its
own per-stream state in arrays; the engine never looks inside. ``state`` and ``restore``
are what checkpoints carry. The shared contract test (tests/analytics/detectors/
test_contract.py) holds every detector to the same promises: batching does not change the
events, a restored state continues exactly, a reading seen twice counts once, NaN and empty
batches are harmless.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy.typing as npt

from analytics.batch import Event, Readings


class Stateful(Protocol):
    """What a checkpoint saves and loads: per-stream state arrays."""

    def state(self) -> dict[str, npt.NDArray[Any]]:
        """Per-stream state arrays, for a checkpoint."""

    def restore(self, state: dict[str, npt.NDArray[Any]]) -> None:
        """Take back what :meth:`state` gave, into a detector configured the same way."""


class Detector(Stateful, Protocol):
    rule: str

    def score(self, batch: Readings) -> list[Event]:
        """Advance the batch's streams; events in (stream, time) order."""
